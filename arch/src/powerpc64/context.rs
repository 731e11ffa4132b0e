//! PowerPC64 ELFv2 context switch: a jump between stacks, with the compiler saving what is live.
//!
//! The switch ([`switch`]) is inline assembly that declares every non-volatile register the
//! compiler may allocate clobbered — r14-r28, f14-f31, v20-v31, CR2-CR4 — so the compiler saves
//! exactly the live ones around it (once per enclosing function, not per switch, in a loop). The
//! assembly itself saves what the compiler cannot be told about: r29-r31 (reserved by LLVM), r2,
//! FPSCR and VRSAVE. It keeps them in the protected zone below r1, so it allocates no frame.
//! Resuming is a `bctr` to the saved resume address. A fresh stack is laid out so that its first
//! resumption lands in a trampoline that calls the entry function through r12 (ELFv2 global
//! entry). The items and what each must do are the [arch contract](crate::contract); the
//! register-preservation self-test is [`selftest`].
//!
//! **Interrupt state.** A switch leaves MSR[EE] as it is: the context resumed runs with the
//! interrupt state of whoever switched to it. Contexts therefore switch with interrupts enabled
//! (a fresh context enables them before its entry runs), with one exception: an interrupt
//! handler that switches away (preemption) uses [`switch_from_interrupt`], which enables them
//! for the context it resumes and masks them again when the handler's own context is resumed,
//! before it returns through `rfid`.

use core::arch::{asm, global_asm};

/// Bytes the switch itself keeps below a suspended stack pointer: the ELFv2 protected zone
/// (288 bytes below r1, which interrupt handlers skip) holds them, so the switch needs no frame
/// of its own and the suspended r1 is the caller's.
pub const SWITCH_FRAME_BYTES: usize = 56;

/// Bytes of a suspended context that lie below its stack pointer: the whole switch frame (in
/// the protected zone). Stack slicing copies a suspended stack from this far below its pointer.
pub const SUSPENDED_BYTES_BELOW_SP: usize = SWITCH_FRAME_BYTES;

/// Bytes [`init_stack`] uses at the top of a fresh stack: a minimal caller frame (back chain, CR,
/// LR and TOC save words) for the entry function to write its LR into, and the switch frame
/// below it.
pub const INITIAL_FRAME_BYTES: usize = SWITCH_FRAME_BYTES + 32;

/// Entry of a fresh context: `arg` is what the first switch into it passed, `data` what
/// [`init_stack`] was given. It must never return.
pub type EntryFn = extern "C" fn(arg: usize, data: usize) -> !;

// Frame layout (offsets below the suspended r1):
//   -8 r29 | -16 r30 | -24 r31 | -32 r2 | -40 FPSCR | -48 VRSAVE | -56 resume
const OFFSET_R29: usize = 8;
const OFFSET_R30: usize = 16;
const OFFSET_TOC: usize = 32;
const OFFSET_FPSCR: usize = 40;
const OFFSET_VRSAVE: usize = 48;
const OFFSET_RESUME: usize = 56;
const _: () = assert!(SWITCH_FRAME_BYTES <= 288 && OFFSET_RESUME == SWITCH_FRAME_BYTES);

macro_rules! switch_body {
    ($before_resume:literal, $after_resume:literal, $save_sp:ident => $saver:tt, $resume_sp:ident, [$($arg_operand:tt)*]) => {
        // Without `nostack`, the assembly may use the stack below r1: the compiler keeps nothing
        // there across it.
        asm!(
            "std 29, -8(1)",
            "std 30, -16(1)",
            "std 31, -24(1)",
            "std 2, -32(1)",
            "mffs 0",
            "stfd 0, -40(1)",
            "mfvrsave 0",
            "std 0, -48(1)",
            // The link register gets the resume point, the instruction after this one: the
            // rest of the switch lies out of line (at the end of the enclosing function, within
            // reach of bcl's 16-bit displacement), so resuming needs no jump over it.
            "bcl 20, 31, 3f",
            ".subsection 1",
            "3: mflr 12",
            "std 12, -56(1)",
            "std 1, 0(3)",
            "mr 1, 4",
            "ld 0, -56(1)",
            "mtctr 0",
            "ld 0, -48(1)",
            "mtvrsave 0",
            "ld 29, -8(1)",
            "ld 30, -16(1)",
            "ld 31, -24(1)",
            "ld 2, -32(1)",
            "lfd 0, -40(1)",
            "mtfsf 0xff, 0",
            $before_resume,
            "bctr",
            ".subsection 0",
            $after_resume,
            inout("r3") $save_sp => $saver,
            inout("r4") $resume_sp => _,
            $($arg_operand)*
            out("r14") _, out("r15") _, out("r16") _, out("r17") _, out("r18") _,
            out("r19") _, out("r20") _, out("r21") _, out("r22") _, out("r23") _,
            out("r24") _, out("r25") _, out("r26") _, out("r27") _, out("r28") _,
            out("f14") _, out("f15") _, out("f16") _, out("f17") _, out("f18") _,
            out("f19") _, out("f20") _, out("f21") _, out("f22") _, out("f23") _,
            out("f24") _, out("f25") _, out("f26") _, out("f27") _, out("f28") _,
            out("f29") _, out("f30") _, out("f31") _,
            out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _,
            out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
            out("v30") _, out("v31") _,
            out("cr2") _, out("cr3") _, out("cr4") _,
            out("lr") _, out("ctr") _,
            clobber_abi("C"),
        )
    };
}

/// Suspends the running context, storing its stack pointer in `*save_sp`, and resumes the context
/// whose stack pointer is `resume_sp`; returns (when something switches back) the `arg` of that
/// switch. A fresh context receives `arg` as its entry argument. MSR[EE] is not switched (see
/// the module docs).
///
/// # Safety
/// `save_sp` must be valid for a write; `resume_sp` must come from a completed suspension or
/// [`init_stack`], with its stack still allocated and not running anywhere else.
#[inline(always)]
pub unsafe fn switch(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize {
    let resumed_with: usize;
    // SAFETY: the caller's contract; every register the other context may change is declared
    // clobbered or saved in the frame by the assembly.
    unsafe { switch_body!("", "", save_sp => _, resume_sp, [inout("r5") arg => resumed_with,]) };
    resumed_with
}

/// [`switch`] passing no argument: a fresh context's entry receives an unspecified `arg`. One
/// instruction cheaper, for callers whose contexts ignore it.
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_without_arg(save_sp: *mut usize, resume_sp: usize) {
    // SAFETY: as in `switch`; r5 is clobbered (clobber_abi) instead of carrying an argument.
    unsafe { switch_body!("", "", save_sp => _, resume_sp, []) };
}

/// [`switch_without_arg`] that returns, when something switches back, the `save_sp` of the
/// switch that resumed it: every switch leaves its `save_sp` in r3 as it jumps, so the switches
/// into this context pay nothing for telling it who they were.
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_reporting_saver(save_sp: *mut usize, resume_sp: usize) -> *mut usize {
    let saver: *mut usize;
    // SAFETY: as in `switch`; r3 is read back instead of being discarded.
    unsafe { switch_body!("", "", save_sp => saver, resume_sp, []) };
    saver
}

/// [`switch`] for an interrupt handler (interrupts masked) switching away from the context it
/// interrupted: the context resumed runs with interrupts enabled, as every context outside a
/// handler does, and when something switches back here interrupts are masked again at once, so
/// the handler finishes (and reloads SRR0/SRR1) masked. Outside bare metal it is [`switch`].
///
/// # Safety
/// As for [`switch`]; call it only from an interrupt handler's context.
#[inline(always)]
pub unsafe fn switch_from_interrupt(save_sp: *mut usize, resume_sp: usize, arg: usize) -> usize {
    let resumed_with: usize;
    // SAFETY: as in `switch`; `mtmsrd r, 1` changes only MSR[EE] and MSR[RI].
    #[cfg(feature = "bare-metal")]
    unsafe {
        switch_body!(
            // mtmsrd with L=1 reads only bits 48 (EE) and 62 (RI): -32766 sets both.
            "li 0, -32766\nmtmsrd 0, 1",
            "li 0, 2\nmtmsrd 0, 1",
            save_sp => _,
            resume_sp,
            [inout("r5") arg => resumed_with,]
        )
    };
    // SAFETY: as in `switch`.
    #[cfg(not(feature = "bare-metal"))]
    unsafe {
        switch_body!("", "", save_sp => _, resume_sp, [inout("r5") arg => resumed_with,])
    };
    resumed_with
}

/// [`switch`] as an ordinary function that preserves every non-volatile register, for callers
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

/// Emits the trampoline a fresh context starts in; `$enable_interrupts` runs first.
macro_rules! trampoline {
    ($enable_interrupts:literal) => {
        global_asm!(
            ".text",
            ".global spindle_context_trampoline",
            ".type spindle_context_trampoline,@function",
            ".p2align 4",
            "spindle_context_trampoline:",
            $enable_interrupts,
            // The context starts with its callee-saved registers cleared rather than holding
            // whatever its creator had: nothing leaks from one context into another, and the
            // save slots of a register class a context never uses stay zero in its frames
            // (stack slicing leaves runs of zeros out of saved slices).
            "    .irp n, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28",
            "    li \\n, 0",
            "    .endr",
            "    std 28, -8(1)",
            "    lfd 14, -8(1)",
            "    .irp n, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31",
            "    fmr \\n, 14",
            "    .endr",
            "    .irp n, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31",
            "    vxor \\n, \\n, \\n",
            "    .endr",
            // r29 = entry, r30 = data, r5 = the arg of the switch that resumed us.
            "    mr 12, 29",
            "    mtctr 12",
            "    mr 3, 5",
            "    mr 4, 30",
            "    li 29, 0",
            "    li 30, 0",
            "    li 31, 0",
            "    bctrl",
            "    trap",
            ".size spindle_context_trampoline, . - spindle_context_trampoline",
        );
    };
}

// Bare metal: a fresh context runs with interrupts enabled whoever started it (the boot code of
// a secondary CPU may not have enabled them yet). `li 0, -32766` sets EE and RI for mtmsrd L=1.
#[cfg(feature = "bare-metal")]
trampoline!("    li 0, -32766\n    mtmsrd 0, 1");
#[cfg(not(feature = "bare-metal"))]
trampoline!("");

unsafe extern "C" {
    fn spindle_context_trampoline();
}

/// Lays out a fresh context at the top of a stack and returns its stack pointer, ready for
/// [`switch`]. The new context starts with this context's TOC, its other callee-saved registers
/// (r14-r31, f14-f31, v20-v31) cleared, a clear FPSCR and, on bare metal, external interrupts
/// enabled.
///
/// # Safety
/// `stack_top` must be the 16-byte aligned end of a writable region of at least
/// [`INITIAL_FRAME_BYTES`] bytes (plus whatever `entry` uses) that nothing else uses.
pub unsafe fn init_stack(stack_top: usize, entry: EntryFn, data: usize) -> usize {
    debug_assert_eq!(stack_top % 16, 0, "stack top must be 16-byte aligned");
    // The suspended r1 is the caller frame; the switch frame lies below it.
    let sp = stack_top - 32;
    let toc: u64;
    // SAFETY: reads r2; no memory access.
    unsafe { core::arch::asm!("mr {}, 2", out(reg) toc, options(nomem, nostack, preserves_flags)) };
    let word = |offset: usize| (sp - offset) as *mut u64;
    // SAFETY: the caller guarantees INITIAL_FRAME_BYTES writable bytes below stack_top, which
    // covers the caller frame (its back chain left zero: the end of the chain) and the switch
    // frame written here.
    unsafe {
        core::ptr::write_bytes(
            (stack_top - INITIAL_FRAME_BYTES) as *mut u8,
            0,
            INITIAL_FRAME_BYTES,
        );
        word(OFFSET_R29).write(entry as *const () as u64);
        word(OFFSET_R30).write(data as u64);
        word(OFFSET_TOC).write(toc);
        word(OFFSET_FPSCR).write(0);
        word(OFFSET_VRSAVE).write(0);
        word(OFFSET_RESUME).write(spindle_context_trampoline as *const () as u64);
    }
    sp
}

/// Reads the stack pointer of the running code.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads r1; no memory access.
    unsafe { core::arch::asm!("mr {}, 1", out(reg) sp, options(nomem, nostack, preserves_flags)) };
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
    // SAFETY: the old r1 is kept in a non-volatile register (r28) across the call; the new stack
    // gets a minimal caller frame whose back chain points at the old one, so unwinders and the
    // callee's LR save land inside the new region. The new stack is ours per the contract.
    unsafe {
        core::arch::asm!(
            "mr 28, 1",
            "addi 1, {top}, -32",
            "std 28, 0(1)",
            "mtctr {function}",
            "mr 12, {function}",
            "bctrl",
            "mr 1, 28",
            top = in(reg_nonzero) stack_top,
            function = in(reg_nonzero) function,
            in("r3") data,
            out("r28") _,
            clobber_abi("C"),
        );
    }
}

/// The register-preservation self-test of this switch (probe and scrambler, in assembly), in a
/// file of its own.
pub use super::selftest;
