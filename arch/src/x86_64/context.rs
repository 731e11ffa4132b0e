//! x86_64 System V context switch: callee-saved registers pushed on the suspended stack.
//!
//! A suspended context is a stack pointer. The switch pushes rbp, rbx, r12-r15, the MXCSR control
//! word and the x87 control word on the outgoing stack, stores the stack pointer, loads the other
//! one and pops the same set. A fresh stack is laid out so that its first resumption "returns"
//! into a trampoline that calls the entry function.

use core::arch::global_asm;

/// Bytes [`init_stack`] uses at the top of a fresh stack.
pub const INITIAL_FRAME_BYTES: usize = 64;

/// Bytes the switch itself keeps on a suspended stack.
pub const SWITCH_FRAME_BYTES: usize = 64;

/// Entry of a fresh context: `arg` is what the first switch into it passed, `data` what
/// [`init_stack`] was given. It must never return.
pub type EntryFn = extern "C" fn(arg: usize, data: usize) -> !;

unsafe extern "C" {
    /// Suspends the running context, storing its stack pointer in `*save_sp`, and resumes the
    /// context whose stack pointer is `resume_sp`; the resumed context's own pending
    /// `switch_context` call returns `arg` (a fresh context receives it as its entry `arg`).
    ///
    /// # Safety
    /// `save_sp` must be valid for a write; `resume_sp` must come from a completed suspension or
    /// [`init_stack`], with its stack still allocated and not running anywhere else.
    pub fn spindle_switch_context(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize;
}

global_asm!(
    ".text",
    ".global spindle_switch_context",
    ".type spindle_switch_context,@function",
    ".p2align 4",
    "spindle_switch_context:",
    "    push rbp",
    "    push rbx",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    sub rsp, 8",
    "    stmxcsr [rsp]",
    "    fnstcw [rsp + 4]",
    "    mov [rdi], rsp",
    "    mov rsp, rsi",
    "    mov rax, rdx",
    "    ldmxcsr [rsp]",
    "    fldcw [rsp + 4]",
    "    add rsp, 8",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbx",
    "    pop rbp",
    "    ret",
    ".size spindle_switch_context, . - spindle_switch_context",
    "",
    ".global spindle_context_trampoline",
    ".type spindle_context_trampoline,@function",
    ".p2align 4",
    "spindle_context_trampoline:",
    // r12 = entry, r13 = data, rax = the arg of the switch that resumed us.
    "    mov rdi, rax",
    "    mov rsi, r13",
    "    xor ebp, ebp",
    "    call r12",
    "    ud2",
    ".size spindle_context_trampoline, . - spindle_context_trampoline",
);

unsafe extern "C" {
    fn spindle_context_trampoline();
}

/// Lays out a fresh context at the top of a stack and returns its stack pointer, ready for
/// [`spindle_switch_context`].
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region of at least
/// [`INITIAL_FRAME_BYTES`] bytes (plus whatever `entry` uses) that nothing else uses.
pub unsafe fn init_stack(stack_top: usize, entry: EntryFn, data: usize) -> usize {
    debug_assert_eq!(stack_top % 16, 0, "stack top must be 16-byte aligned");
    let sp = stack_top - INITIAL_FRAME_BYTES;
    let words = sp as *mut u64;
    // Pop order: [mxcsr | fpcw], r15, r14, r13, r12, rbx, rbp, return address.
    let mxcsr_default: u64 = 0x1f80;
    let fpcw_default: u64 = 0x037f;
    let frame: [u64; 8] = [
        mxcsr_default | (fpcw_default << 32),
        0,
        0,
        data as u64,
        entry as *const () as u64,
        0,
        0,
        spindle_context_trampoline as *const () as u64,
    ];
    for (index, value) in frame.iter().enumerate() {
        // SAFETY: the caller guarantees INITIAL_FRAME_BYTES writable bytes below stack_top.
        unsafe { words.add(index).write(*value) };
    }
    sp
}

/// Reads the stack pointer of the running code.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register; no memory access.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Calls `function(data)` with the stack pointer moved to `stack_top`, then restores it.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region large enough for `function`,
/// used by nothing else until this returns. `function` must not unwind.
pub unsafe fn call_on_stack(stack_top: usize, function: extern "C" fn(usize), data: usize) {
    // SAFETY: the old stack pointer is kept in a callee-saved register across the call; the new
    // stack is exclusively ours per the caller's contract.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {function}",
            "mov rsp, r12",
            top = in(reg) stack_top,
            function = in(reg) function,
            in("rdi") data,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

pub mod selftest {
    //! Register-preservation probe: sentinels in every callee-saved register survive a switch.

    use core::arch::global_asm;

    unsafe extern "C" {
        /// Fills rbx, rbp, r12-r15, MXCSR control bits and the x87 control word with sentinels,
        /// calls `spindle_switch_context(save_sp, resume_sp, 0)`, and on return compares them.
        /// Returns a bit mask of the registers that changed (0 = all preserved).
        pub fn spindle_probe_preservation(save_sp: *mut usize, resume_sp: usize) -> u64;
        /// Overwrites every callee-saved register with garbage, then switches to `*probe_sp`
        /// saving its own stack pointer in `save_sp`; loops forever doing so.
        pub fn spindle_scramble_and_switch(save_sp: *mut usize, probe_sp: *const usize) -> !;
    }

    global_asm!(
        ".text",
        ".global spindle_probe_preservation",
        ".p2align 4",
        "spindle_probe_preservation:",
        "    push rbp",
        "    push rbx",
        "    push r12",
        "    push r13",
        "    push r14",
        "    push r15",
        "    sub rsp, 24",
        "    stmxcsr [rsp]",
        "    fnstcw [rsp + 4]",
        // Sentinels: MXCSR with round-toward-zero (0x7f80), x87 CW with single precision (0x007f).
        "    mov dword ptr [rsp + 8], 0x7f80",
        "    ldmxcsr [rsp + 8]",
        "    mov word ptr [rsp + 12], 0x007f",
        "    fldcw [rsp + 12]",
        "    movabs rbx, 0x5b5b5b5b5b5b0001",
        "    movabs rbp, 0x5b5b5b5b5b5b0002",
        "    movabs r12, 0x5b5b5b5b5b5b0003",
        "    movabs r13, 0x5b5b5b5b5b5b0004",
        "    movabs r14, 0x5b5b5b5b5b5b0005",
        "    movabs r15, 0x5b5b5b5b5b5b0006",
        "    xor edx, edx",
        "    call spindle_switch_context",
        "    xor eax, eax",
        "    movabs rcx, 0x5b5b5b5b5b5b0001",
        "    cmp rbx, rcx",
        "    je 1f",
        "    or rax, 1",
        "1:  movabs rcx, 0x5b5b5b5b5b5b0002",
        "    cmp rbp, rcx",
        "    je 1f",
        "    or rax, 2",
        "1:  movabs rcx, 0x5b5b5b5b5b5b0003",
        "    cmp r12, rcx",
        "    je 1f",
        "    or rax, 4",
        "1:  movabs rcx, 0x5b5b5b5b5b5b0004",
        "    cmp r13, rcx",
        "    je 1f",
        "    or rax, 8",
        "1:  movabs rcx, 0x5b5b5b5b5b5b0005",
        "    cmp r14, rcx",
        "    je 1f",
        "    or rax, 16",
        "1:  movabs rcx, 0x5b5b5b5b5b5b0006",
        "    cmp r15, rcx",
        "    je 1f",
        "    or rax, 32",
        "1:  stmxcsr [rsp + 8]",
        "    mov ecx, dword ptr [rsp + 8]",
        "    and ecx, 0xffc0",
        "    cmp ecx, 0x7f80",
        "    je 1f",
        "    or rax, 64",
        "1:  fnstcw [rsp + 12]",
        "    movzx ecx, word ptr [rsp + 12]",
        "    cmp ecx, 0x007f",
        "    je 1f",
        "    or rax, 128",
        "1:  ldmxcsr [rsp]",
        "    fldcw [rsp + 4]",
        "    add rsp, 24",
        "    pop r15",
        "    pop r14",
        "    pop r13",
        "    pop r12",
        "    pop rbx",
        "    pop rbp",
        "    ret",
        "",
        ".global spindle_scramble_and_switch",
        ".p2align 4",
        "spindle_scramble_and_switch:",
        "    mov r12, rdi",
        "    mov r13, rsi",
        "2:  sub rsp, 8",
        "    mov dword ptr [rsp], 0x1f80",
        "    ldmxcsr [rsp]",
        "    mov word ptr [rsp + 4], 0x037f",
        "    fldcw [rsp + 4]",
        "    add rsp, 8",
        "    movabs rbx, 0xdeaddeaddead0001",
        "    movabs rbp, 0xdeaddeaddead0002",
        "    movabs r14, 0xdeaddeaddead0005",
        "    movabs r15, 0xdeaddeaddead0006",
        "    mov rdi, r12",
        "    mov rsi, [r13]",
        "    push r12",
        "    push r13",
        "    movabs r12, 0xdeaddeaddead0003",
        "    movabs r13, 0xdeaddeaddead0004",
        "    mov rdi, [rsp + 8]",
        "    xor edx, edx",
        "    call spindle_switch_context",
        "    pop r13",
        "    pop r12",
        "    jmp 2b",
    );
}
