//! PowerPC64 ELFv2 context switch: a jump between stacks, with the compiler saving what is live.
//!
//! The switch ([`switch`]) is inline assembly that declares every non-volatile register the
//! compiler may allocate clobbered — r14-r28, f14-f31, v20-v31, CR2-CR4 — so the compiler saves
//! exactly the live ones around it (once per enclosing function, not per switch, in a loop). The
//! assembly itself saves what the compiler cannot be told about: r29-r31 (reserved by LLVM), r2,
//! FPSCR and VRSAVE. It keeps them in the protected zone below r1, so it allocates no frame.
//! Resuming is a `bctr` to the saved resume address. A fresh stack is laid out so that its first
//! resumption lands in a trampoline that calls the entry function through r12 (ELFv2 global
//! entry).
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
    ($before_resume:literal, $after_resume:literal, $save_sp:ident, $resume_sp:ident, [$($arg_operand:tt)*]) => {
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
            inout("r3") $save_sp => _,
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
    unsafe { switch_body!("", "", save_sp, resume_sp, [inout("r5") arg => resumed_with,]) };
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
    unsafe { switch_body!("", "", save_sp, resume_sp, []) };
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
            save_sp,
            resume_sp,
            [inout("r5") arg => resumed_with,]
        )
    };
    // SAFETY: as in `switch`.
    #[cfg(not(feature = "bare-metal"))]
    unsafe {
        switch_body!("", "", save_sp, resume_sp, [inout("r5") arg => resumed_with,])
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
            // r29 = entry, r30 = data, r5 = the arg of the switch that resumed us.
            "    mr 12, 29",
            "    mtctr 12",
            "    mr 3, 5",
            "    mr 4, 30",
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
/// [`switch`]. The new context starts with this context's TOC, a clear FPSCR and, on bare metal,
/// external interrupts enabled.
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

pub mod selftest {
    //! Register-preservation probe: sentinels in every non-volatile register survive a switch.
    //!
    //! The probe fills r14-r31, f14-f31, v20-v31, CR2-CR4, VRSAVE and FPSCR's rounding mode with
    //! sentinels, switches away through [`spindle_switch_context`](super::spindle_switch_context),
    //! and compares on return. The scrambler overwrites all of them before switching back.

    use core::arch::global_asm;

    unsafe extern "C" {
        /// Returns a mask of mismatches: bits 0-17 r14-r31, bit 18 f14-f31 (any), bit 19 v20-v31
        /// (any), bit 20 CR2-CR4, bit 21 VRSAVE, bit 22 FPSCR rounding mode, bit 23 r2.
        pub fn spindle_probe_preservation(save_sp: *mut usize, resume_sp: usize) -> u64;
        /// Overwrites every non-volatile register, then switches to `*probe_sp` saving its own
        /// stack pointer in `save_sp`; loops forever doing so.
        pub fn spindle_scramble_and_switch(save_sp: *mut usize, probe_sp: *const usize) -> !;
    }

    global_asm!(
        ".text",
        ".machine power8",
        ".global spindle_probe_preservation",
        ".p2align 4",
        "spindle_probe_preservation:",
        "    mflr 0",
        "    std 0, 16(1)",
        "    stdu 1, -640(1)",
        // Keep the caller's non-volatiles (we are an ordinary function to our caller).
        "    std 14, 48(1)",
        "    std 15, 56(1)",
        "    std 16, 64(1)",
        "    std 17, 72(1)",
        "    std 18, 80(1)",
        "    std 19, 88(1)",
        "    std 20, 96(1)",
        "    std 21, 104(1)",
        "    std 22, 112(1)",
        "    std 23, 120(1)",
        "    std 24, 128(1)",
        "    std 25, 136(1)",
        "    std 26, 144(1)",
        "    std 27, 152(1)",
        "    std 28, 160(1)",
        "    std 29, 168(1)",
        "    std 30, 176(1)",
        "    std 31, 184(1)",
        "    stfd 14, 192(1)",
        "    stfd 15, 200(1)",
        "    stfd 16, 208(1)",
        "    stfd 17, 216(1)",
        "    stfd 18, 224(1)",
        "    stfd 19, 232(1)",
        "    stfd 20, 240(1)",
        "    stfd 21, 248(1)",
        "    stfd 22, 256(1)",
        "    stfd 23, 264(1)",
        "    stfd 24, 272(1)",
        "    stfd 25, 280(1)",
        "    stfd 26, 288(1)",
        "    stfd 27, 296(1)",
        "    stfd 28, 304(1)",
        "    stfd 29, 312(1)",
        "    stfd 30, 320(1)",
        "    stfd 31, 328(1)",
        "    li 0, 336",
        "    stvx 20, 1, 0",
        "    li 0, 352",
        "    stvx 21, 1, 0",
        "    li 0, 368",
        "    stvx 22, 1, 0",
        "    li 0, 384",
        "    stvx 23, 1, 0",
        "    li 0, 400",
        "    stvx 24, 1, 0",
        "    li 0, 416",
        "    stvx 25, 1, 0",
        "    li 0, 432",
        "    stvx 26, 1, 0",
        "    li 0, 448",
        "    stvx 27, 1, 0",
        "    li 0, 464",
        "    stvx 28, 1, 0",
        "    li 0, 480",
        "    stvx 29, 1, 0",
        "    li 0, 496",
        "    stvx 30, 1, 0",
        "    li 0, 512",
        "    stvx 31, 1, 0",
        "    mfcr 0",
        "    std 0, 528(1)",
        "    mfvrsave 0",
        "    std 0, 536(1)",
        "    mffs 0",
        "    stfd 0, 544(1)",
        "    std 2, 24(1)",
        // Sentinels: GPR n holds 0x5b00 + n; VR n holds bytes n - 16.
        "    li 14, 0x5b0e",
        "    li 15, 0x5b0f",
        "    li 16, 0x5b10",
        "    li 17, 0x5b11",
        "    li 18, 0x5b12",
        "    li 19, 0x5b13",
        "    li 20, 0x5b14",
        "    li 21, 0x5b15",
        "    li 22, 0x5b16",
        "    li 23, 0x5b17",
        "    li 24, 0x5b18",
        "    li 25, 0x5b19",
        "    li 26, 0x5b1a",
        "    li 27, 0x5b1b",
        "    li 28, 0x5b1c",
        "    li 29, 0x5b1d",
        "    li 30, 0x5b1e",
        "    li 31, 0x5b1f",
        // FPRs: all hold the bit pattern 29 (loaded through memory; lfd/stfd/fmr copy bits exactly).
        "    li 0, 29",
        "    std 0, 560(1)",
        "    lfd 14, 560(1)",
        "    fmr 15, 14",
        "    fmr 16, 14",
        "    fmr 17, 14",
        "    fmr 18, 14",
        "    fmr 19, 14",
        "    fmr 20, 14",
        "    fmr 21, 14",
        "    fmr 22, 14",
        "    fmr 23, 14",
        "    fmr 24, 14",
        "    fmr 25, 14",
        "    fmr 26, 14",
        "    fmr 27, 14",
        "    fmr 28, 14",
        "    fmr 29, 14",
        "    fmr 30, 14",
        "    fmr 31, 14",
        "    vspltisb 20, 4",
        "    vspltisb 21, 5",
        "    vspltisb 22, 6",
        "    vspltisb 23, 7",
        "    vspltisb 24, 8",
        "    vspltisb 25, 9",
        "    vspltisb 26, 10",
        "    vspltisb 27, 11",
        "    vspltisb 28, 12",
        "    vspltisb 29, 13",
        "    vspltisb 30, 14",
        "    vspltisb 31, 15",
        // CR2 = 0b1010, CR3 = 0b0101, CR4 = 0b0011 (mtcrf 0x38 writes fields 2, 3, 4).
        "    lis 0, 0x00a5",
        "    ori 0, 0, 0x3000",
        "    mtcrf 0x38, 0",
        "    li 0, 0x1234",
        "    mtvrsave 0",
        // FPSCR rounding mode = round toward zero (RN = 0b01).
        "    mtfsfi 7, 1",
        "    li 5, 0",
        "    bl spindle_switch_context",
        "    nop",
        // Compare: r3 accumulates the mask (r3 is free after the switch returns).
        "    li 3, 0",
        "    li 0, 0x5b0e",
        "    cmpd 14, 0",
        "    beq 1f",
        "    ori 3, 3, 0x1",
        "1:  li 0, 0x5b0f",
        "    cmpd 15, 0",
        "    beq 1f",
        "    ori 3, 3, 0x2",
        "1:  li 0, 0x5b10",
        "    cmpd 16, 0",
        "    beq 1f",
        "    ori 3, 3, 0x4",
        "1:  li 0, 0x5b11",
        "    cmpd 17, 0",
        "    beq 1f",
        "    ori 3, 3, 0x8",
        "1:  li 0, 0x5b12",
        "    cmpd 18, 0",
        "    beq 1f",
        "    ori 3, 3, 0x10",
        "1:  li 0, 0x5b13",
        "    cmpd 19, 0",
        "    beq 1f",
        "    ori 3, 3, 0x20",
        "1:  li 0, 0x5b14",
        "    cmpd 20, 0",
        "    beq 1f",
        "    ori 3, 3, 0x40",
        "1:  li 0, 0x5b15",
        "    cmpd 21, 0",
        "    beq 1f",
        "    ori 3, 3, 0x80",
        "1:  li 0, 0x5b16",
        "    cmpd 22, 0",
        "    beq 1f",
        "    ori 3, 3, 0x100",
        "1:  li 0, 0x5b17",
        "    cmpd 23, 0",
        "    beq 1f",
        "    ori 3, 3, 0x200",
        "1:  li 0, 0x5b18",
        "    cmpd 24, 0",
        "    beq 1f",
        "    ori 3, 3, 0x400",
        "1:  li 0, 0x5b19",
        "    cmpd 25, 0",
        "    beq 1f",
        "    ori 3, 3, 0x800",
        "1:  li 0, 0x5b1a",
        "    cmpd 26, 0",
        "    beq 1f",
        "    ori 3, 3, 0x1000",
        "1:  li 0, 0x5b1b",
        "    cmpd 27, 0",
        "    beq 1f",
        "    ori 3, 3, 0x2000",
        "1:  li 0, 0x5b1c",
        "    cmpd 28, 0",
        "    beq 1f",
        "    ori 3, 3, 0x4000",
        "1:  li 0, 0x5b1d",
        "    cmpd 29, 0",
        "    beq 1f",
        "    ori 3, 3, 0x8000",
        "1:  li 0, 0x5b1e",
        "    cmpd 30, 0",
        "    beq 1f",
        "    oris 3, 3, 0x1",
        "1:  li 0, 0x5b1f",
        "    cmpd 31, 0",
        "    beq 1f",
        "    oris 3, 3, 0x2",
        // FPRs: store each and compare its bits with the sentinel word.
        "1:  ld 4, 560(1)",
        "    li 6, 0",
        "    stfd 14, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 15, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 16, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 17, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 18, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 19, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 20, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 21, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 22, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 23, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 24, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 25, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 26, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 27, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 28, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 29, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 30, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    stfd 31, 568(1)",
        "    ld 0, 568(1)",
        "    xor 0, 0, 4",
        "    or 6, 6, 0",
        "    cmpdi 6, 0",
        "    beq 1f",
        "    oris 3, 3, 0x4",
        // VRs: compare each with its splat (vcmpequb. sets CR6 "all equal" bit).
        "1:  li 6, 0",
        "    vspltisb 0, 4",
        "    vcmpequb. 0, 20, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 5",
        "    vcmpequb. 0, 21, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 6",
        "    vcmpequb. 0, 22, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 7",
        "    vcmpequb. 0, 23, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 8",
        "    vcmpequb. 0, 24, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 9",
        "    vcmpequb. 0, 25, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 10",
        "    vcmpequb. 0, 26, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 11",
        "    vcmpequb. 0, 27, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 12",
        "    vcmpequb. 0, 28, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 13",
        "    vcmpequb. 0, 29, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 14",
        "    vcmpequb. 0, 30, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    vspltisb 0, 15",
        "    vcmpequb. 0, 31, 0",
        "    bc 12, 24, 2f",
        "    li 6, 1",
        "2:",
        "    cmpdi 6, 0",
        "    beq 1f",
        "    oris 3, 3, 0x8",
        // CR2-CR4 (bits 8-19 of the CR image).
        "1:  mfcr 0",
        "    rlwinm 0, 0, 0, 8, 19",
        "    lis 4, 0x00a5",
        "    ori 4, 4, 0x3000",
        "    cmpw 0, 4",
        "    beq 1f",
        "    oris 3, 3, 0x10",
        "1:  mfvrsave 0",
        "    cmpwi 0, 0x1234",
        "    beq 1f",
        "    oris 3, 3, 0x20",
        "1:  mffs 0",
        "    stfd 0, 568(1)",
        "    ld 0, 568(1)",
        "    andi. 0, 0, 3",
        "    cmpdi 0, 1",
        "    beq 1f",
        "    oris 3, 3, 0x40",
        "1:  ld 0, 24(1)",
        "    cmpd 0, 2",
        "    beq 1f",
        "    oris 3, 3, 0x80",
        // Restore the caller's state.
        "1:  ld 2, 24(1)",
        "    lfd 0, 544(1)",
        "    mtfsf 0xff, 0",
        "    ld 0, 536(1)",
        "    mtvrsave 0",
        "    ld 0, 528(1)",
        "    mtcrf 0x38, 0",
        "    li 0, 336",
        "    lvx 20, 1, 0",
        "    li 0, 352",
        "    lvx 21, 1, 0",
        "    li 0, 368",
        "    lvx 22, 1, 0",
        "    li 0, 384",
        "    lvx 23, 1, 0",
        "    li 0, 400",
        "    lvx 24, 1, 0",
        "    li 0, 416",
        "    lvx 25, 1, 0",
        "    li 0, 432",
        "    lvx 26, 1, 0",
        "    li 0, 448",
        "    lvx 27, 1, 0",
        "    li 0, 464",
        "    lvx 28, 1, 0",
        "    li 0, 480",
        "    lvx 29, 1, 0",
        "    li 0, 496",
        "    lvx 30, 1, 0",
        "    li 0, 512",
        "    lvx 31, 1, 0",
        "    lfd 14, 192(1)",
        "    lfd 15, 200(1)",
        "    lfd 16, 208(1)",
        "    lfd 17, 216(1)",
        "    lfd 18, 224(1)",
        "    lfd 19, 232(1)",
        "    lfd 20, 240(1)",
        "    lfd 21, 248(1)",
        "    lfd 22, 256(1)",
        "    lfd 23, 264(1)",
        "    lfd 24, 272(1)",
        "    lfd 25, 280(1)",
        "    lfd 26, 288(1)",
        "    lfd 27, 296(1)",
        "    lfd 28, 304(1)",
        "    lfd 29, 312(1)",
        "    lfd 30, 320(1)",
        "    lfd 31, 328(1)",
        "    ld 14, 48(1)",
        "    ld 15, 56(1)",
        "    ld 16, 64(1)",
        "    ld 17, 72(1)",
        "    ld 18, 80(1)",
        "    ld 19, 88(1)",
        "    ld 20, 96(1)",
        "    ld 21, 104(1)",
        "    ld 22, 112(1)",
        "    ld 23, 120(1)",
        "    ld 24, 128(1)",
        "    ld 25, 136(1)",
        "    ld 26, 144(1)",
        "    ld 27, 152(1)",
        "    ld 28, 160(1)",
        "    ld 29, 168(1)",
        "    ld 30, 176(1)",
        "    ld 31, 184(1)",
        "    addi 1, 1, 640",
        "    ld 0, 16(1)",
        "    mtlr 0",
        "    blr",
        "",
        ".global spindle_scramble_and_switch",
        ".p2align 4",
        "spindle_scramble_and_switch:",
        // Never returns: no need to keep anything. Frame for our own bl.
        "    stdu 1, -64(1)",
        "    std 3, 32(1)",
        "    std 4, 40(1)",
        "2:  li 14, -1",
        "    li 15, -1",
        "    li 16, -1",
        "    li 17, -1",
        "    li 18, -1",
        "    li 19, -1",
        "    li 20, -1",
        "    li 21, -1",
        "    li 22, -1",
        "    li 23, -1",
        "    li 24, -1",
        "    li 25, -1",
        "    li 26, -1",
        "    li 27, -1",
        "    li 28, -1",
        "    li 29, -1",
        "    li 30, -1",
        "    li 31, -1",
        "    li 0, -1",
        "    std 0, 48(1)",
        "    lfd 14, 48(1)",
        "    fmr 15, 14",
        "    fmr 16, 14",
        "    fmr 17, 14",
        "    fmr 18, 14",
        "    fmr 19, 14",
        "    fmr 20, 14",
        "    fmr 21, 14",
        "    fmr 22, 14",
        "    fmr 23, 14",
        "    fmr 24, 14",
        "    fmr 25, 14",
        "    fmr 26, 14",
        "    fmr 27, 14",
        "    fmr 28, 14",
        "    fmr 29, 14",
        "    fmr 30, 14",
        "    fmr 31, 14",
        "    vspltisb 20, -1",
        "    vspltisb 21, -1",
        "    vspltisb 22, -1",
        "    vspltisb 23, -1",
        "    vspltisb 24, -1",
        "    vspltisb 25, -1",
        "    vspltisb 26, -1",
        "    vspltisb 27, -1",
        "    vspltisb 28, -1",
        "    vspltisb 29, -1",
        "    vspltisb 30, -1",
        "    vspltisb 31, -1",
        "    li 0, 0",
        "    mtcrf 0x38, 0",
        "    li 0, 0",
        "    mtvrsave 0",
        "    mtfsfi 7, 0",
        "    li 2, 0",
        "    ld 3, 32(1)",
        "    ld 4, 40(1)",
        "    ld 4, 0(4)",
        "    li 5, 0",
        "    bl spindle_switch_context",
        "    nop",
        "    b 2b",
    );
}
