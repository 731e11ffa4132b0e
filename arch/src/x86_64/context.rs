//! x86_64 System V context switch: a jump between stacks, not a call, so returns stay predicted.
//!
//! A suspended context is a stack pointer whose top words are rbx, rbp and the address to resume
//! at. The switch ([`switch`]) is inline assembly that declares r12-r15 and every caller-saved
//! register clobbered, so the compiler saves exactly the live ones around it, and pushes rbx and
//! rbp itself (LLVM reserves them as operands). Resuming is an indirect `jmp`, never a `ret`:
//! a `ret` into another context would miss the return-stack predictor on every switch, which
//! costs more than the rest of the switch together. The items and what each must do are the
//! [arch contract](crate::contract); the register-preservation self-test is [`selftest`].
//!
//! MXCSR and the x87 control word are not switched: tasklets of one CPU share the
//! floating-point control state (as with corosensei). Code that changes rounding modes must
//! restore them before it can be switched away from.

use core::arch::{asm, global_asm};

/// Bytes [`init_stack`] uses at the top of a fresh stack.
pub const INITIAL_FRAME_BYTES: usize = 24;

/// Bytes the switch itself keeps on a suspended stack.
pub const SWITCH_FRAME_BYTES: usize = 24;

/// Bytes of a suspended context that lie below its stack pointer: none (the switch pushes its
/// frame, so it lies above). Stack slicing copies a suspended stack from this far below it.
pub const SUSPENDED_BYTES_BELOW_SP: usize = 0;

/// Entry of a fresh context: `arg` is what the first switch into it passed, `data` what
/// [`init_stack`] was given. It must never return.
pub type EntryFn = extern "C" fn(arg: usize, data: usize) -> !;

macro_rules! switch_asm {
    ($save_sp:ident => $saver:tt, $resume_sp:ident, $pass_arg:literal, [$($arg_operands:tt)*]) => {
        asm!(
            "lea rax, [rip + 2f]",
            "push rax",
            "push rbp",
            "push rbx",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            $pass_arg,
            "pop rbx",
            "pop rbp",
            "pop rcx",
            "jmp rcx",
            "2:",
            inout("rdi") $save_sp => $saver,
            in("rsi") $resume_sp,
            $($arg_operands)*
            out("rcx") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        )
    };
}

/// Suspends the running context, storing its stack pointer in `*save_sp`, and resumes the context
/// whose stack pointer is `resume_sp`; returns (when something switches back) the `arg` of that
/// switch. A fresh context receives `arg` as its entry argument.
///
/// # Safety
/// `save_sp` must be valid for a write; `resume_sp` must come from a completed suspension or
/// [`init_stack`], with its stack still allocated and not running anywhere else.
#[inline(always)]
pub unsafe fn switch(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize {
    let resumed_with: usize;
    // SAFETY: the caller's contract; every register the other context may change is declared
    // (clobber_abi covers the caller-saved set, r12-r15 explicitly, rbx/rbp saved on the stack).
    unsafe {
        switch_asm!(save_sp => _, resume_sp, "mov rax, rdx", [in("rdx") arg, out("rax") resumed_with,])
    };
    resumed_with
}

/// [`switch`] passing no argument: a fresh context's entry receives an unspecified `arg`. One
/// instruction cheaper, for callers whose contexts ignore it.
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_without_arg(save_sp: *mut usize, resume_sp: usize) {
    // SAFETY: as in `switch`, without the argument register.
    unsafe { switch_asm!(save_sp => _, resume_sp, "", [out("rax") _,]) };
}

/// [`switch_without_arg`] that returns, when something switches back, the `save_sp` of the
/// switch that resumed it: every switch leaves its `save_sp` in rdi as it jumps, so the switches
/// into this context pay nothing for telling it who they were.
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_reporting_saver(save_sp: *mut usize, resume_sp: usize) -> *mut usize {
    let saver: *mut usize;
    // SAFETY: as in `switch`; rdi is read back instead of being discarded.
    unsafe { switch_asm!(save_sp => saver, resume_sp, "", [out("rax") _,]) };
    saver
}

/// [`switch`] for an interrupt handler switching away from the context it interrupted. Hosted
/// x86_64 has no interrupt handlers that switch (preemption is cooperative there), so it is
/// [`switch`]; it exists so that portable code can name the same operation on every CPU.
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_from_interrupt(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize {
    // SAFETY: forwarded contract.
    unsafe { switch(save_sp, resume_sp, arg) }
}

/// [`switch`] as an ordinary function that preserves every callee-saved register, for callers
/// in assembly (the register-preservation probe).
///
/// # Safety
/// As for [`switch`].
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn spindle_switch_context(
    save_sp: *mut usize,
    resume_sp: usize,
    arg: usize,
) -> usize {
    // SAFETY: forwarded contract.
    unsafe { switch(save_sp, resume_sp, arg) }
}

global_asm!(
    ".text",
    ".global spindle_context_trampoline",
    ".type spindle_context_trampoline,@function",
    ".p2align 4",
    "spindle_context_trampoline:",
    // rbx = data, rbp = entry, rax = the arg of the switch that resumed us.
    "    mov rdi, rax",
    "    mov rsi, rbx",
    "    mov rcx, rbp",
    // The context starts with its callee-saved registers cleared rather than holding whatever
    // its creator had: nothing leaks between contexts, and unused save slots stay zero (stack
    // slicing leaves runs of zeros out of saved slices).
    "    xor ebp, ebp",
    "    xor ebx, ebx",
    "    xor r12d, r12d",
    "    xor r13d, r13d",
    "    xor r14d, r14d",
    "    xor r15d, r15d",
    "    call rcx",
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
    // Pop order: rbx (data), rbp (entry), resume address. The trampoline then runs with the
    // stack pointer at the aligned top, so its `call` gives the entry the ABI's alignment.
    let sp = stack_top - INITIAL_FRAME_BYTES;
    let words = sp as *mut u64;
    let frame: [u64; 3] = [
        data as u64,
        entry as *const () as u64,
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
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// Calls `function(data)` with the stack pointer moved to `stack_top`, then restores it.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region large enough for `function`,
/// used by nothing else until this returns. `function` must not unwind.
///
/// Inlined, so that nothing of it lies below the caller's stack pointer: the caller's own
/// stack is live exactly from there up while `function` runs (stack slicing relies on it).
#[inline(always)]
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

/// The register-preservation self-test of this switch (probe and scrambler, in assembly), in a
/// file of its own.
pub use super::selftest;
