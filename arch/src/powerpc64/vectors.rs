//! Exception vectors 0x000-0x1800: decrementer and external-interrupt handlers, a crash report for
//! everything else.
//!
//! The table lives in section `.vectors`, which the linker script places at address 0. Each
//! 0x20-byte slot saves r1 and r3 in SPRG2/SPRG3, loads its own offset into r3 and branches to a
//! common crash entry. Three slots differ: 0x100 (system reset, where `-bios` starts CPU 0) jumps
//! to the boot code, 0x900 (decrementer) and 0x500 (external: the wake-up IPI) to interrupt
//! entries.
//!
//! **Crash entry**: switches to the CPU's crash stack (SPRG1), saves all GPRs, SRR0/SRR1, DAR,
//! DSISR, LR, CR, CTR and XER in an [`ExceptionFrame`] and calls the board's
//! `extern "C" fn spindle_board_exception(frame: &ExceptionFrame) -> !`, which prints the report
//! and ends the run with a failure. Nothing returns from an unexpected interrupt.
//!
//! **Interrupt entries**: build an [`InterruptFrame`] on the interrupted stack below the ELFv2
//! 288-byte red zone holding every volatile register (r0, r2-r12, CR, LR, CTR, XER, SRR0, SRR1,
//! FPSCR, VSCR, vs0-vs51; the low halves of vs14-vs31 are volatile too), call the board's hook
//! with interrupts masked, then restore everything and `rfid`. The hooks are
//! `extern "C" fn spindle_board_timer(frame: &mut InterruptFrame)` (decrementer) and
//! `extern "C" fn spindle_board_external(frame: &mut InterruptFrame)` (external). The timer hook
//! may switch to another tasklet and come back much later: the frame stays on the interrupted
//! tasklet's stack meanwhile.

pub use super::crash::ExceptionFrame;
use super::crash::{offsets as ef, EXCEPTION_FRAME_BYTES};
use core::mem::offset_of;

/// Volatile state of code interrupted by the decrementer or an external interrupt, as saved on
/// its stack.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy)]
pub struct InterruptFrame {
    /// r0 and r2-r12 as interrupted; `gpr[1]` is the interrupted stack pointer; r13-r31 are not
    /// saved here (the called Rust code preserves them) and read as zero.
    pub gpr: [u64; 32],
    /// Condition register.
    pub cr: u64,
    /// Link register.
    pub lr: u64,
    /// Count register.
    pub ctr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
    /// Address the interrupted code resumes at.
    pub srr0: u64,
    /// MSR the interrupted code resumes with.
    pub srr1: u64,
    /// Floating-point status and control register.
    pub fpscr: u64,
    _pad: u64,
    /// Vector status and control register (in the last word).
    pub vscr: [u32; 4],
    /// vs0-vs51 (vs32-vs51 are v0-v19).
    pub vsr: [[u64; 2]; 52],
}

/// Offset of the [`InterruptFrame`] from the stack pointer inside the handler: the ELFv2 minimum
/// frame header (back chain, CR, LR and TOC save words) comes first.
const FRAME_HEADER: usize = 32;
/// Bytes the decrementer entry moves the stack pointer down by.
const DEC_FRAME_BYTES: usize = FRAME_HEADER + core::mem::size_of::<InterruptFrame>();
/// The ELFv2 protected zone below r1 that interrupted leaf code may be using.
const RED_ZONE: usize = 288;
/// Bytes of the crash entry's frame on the crash stack.
const CRASH_FRAME_BYTES: usize = (FRAME_HEADER + EXCEPTION_FRAME_BYTES + 15) & !15;

const _: () =
    assert!(DEC_FRAME_BYTES.is_multiple_of(16) && (DEC_FRAME_BYTES + RED_ZONE).is_multiple_of(16));
const _: () = assert!(offset_of!(InterruptFrame, vscr).is_multiple_of(16));

core::arch::global_asm!(
    ".section .vectors, \"ax\", @progbits",
    ".machine power8",
    ".global __spindle_vectors",
    "__spindle_vectors:",
    ".set spindle_vec, 0",
    ".rept 0xc0",
    ".if spindle_vec == 0x100",
    ".global _start",
    "_start:",
    "    b __spindle_start",
    ".elseif spindle_vec == 0x900",
    "    b __spindle_decrementer_entry",
    ".elseif spindle_vec == 0x500",
    "    b __spindle_external_entry",
    ".else",
    "    mtspr 274, 1",
    "    mtspr 275, 3",
    "    li 3, spindle_vec",
    "    b __spindle_crash_entry",
    ".endif",
    ".set spindle_vec, spindle_vec + 0x20",
    ".org spindle_vec",
    ".endr",
    // ---- crash entry: r3 = vector, SPRG2 = r1, SPRG3 = r3 ----
    ".global __spindle_crash_entry",
    ".hidden __spindle_crash_entry",
    "__spindle_crash_entry:",
    "    mfspr 1, 273",
    "    addi 1, 1, -{crash_bytes}",
    "    std 0, {f}+{gpr}+0(1)",
    "    std 2, {f}+{gpr}+16(1)",
    ".irp n, 4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    std \\n, {f}+{gpr}+8*\\n(1)",
    ".endr",
    "    mfspr 0, 274",
    "    std 0, {f}+{gpr}+8(1)",
    "    mfspr 0, 275",
    "    std 0, {f}+{gpr}+24(1)",
    "    std 3, {f}+{vector}(1)",
    "    mfspr 0, 26",
    "    std 0, {f}+{srr0}(1)",
    "    mfspr 0, 27",
    "    std 0, {f}+{srr1}(1)",
    "    mfspr 0, 19",
    "    std 0, {f}+{dar}(1)",
    "    mfspr 0, 18",
    "    std 0, {f}+{dsisr}(1)",
    "    mflr 0",
    "    std 0, {f}+{lr}(1)",
    "    mfcr 0",
    "    std 0, {f}+{cr}(1)",
    "    mfctr 0",
    "    std 0, {f}+{ctr}(1)",
    "    mfxer 0",
    "    std 0, {f}+{xer}(1)",
    "    li 0, 0",
    "    std 0, 0(1)", // terminal back chain: the crash stack stands alone
    "    mfspr 13, 272",
    "    bl __spindle_cpu_setup",
    "    addi 3, 1, {f}",
    "    bl spindle_board_exception",
    "    nop",
    "3:  b 3b", // unreachable: spindle_board_exception never returns
    f = const FRAME_HEADER,
    crash_bytes = const CRASH_FRAME_BYTES,
    gpr = const ef::GPR,
    vector = const ef::VECTOR,
    srr0 = const ef::SRR0,
    srr1 = const ef::SRR1,
    dar = const ef::DAR,
    dsisr = const ef::DSISR,
    lr = const ef::LR,
    cr = const ef::CR,
    ctr = const ef::CTR,
    xer = const ef::XER,
);

/// Emits an interrupt entry that saves the volatile state in an [`InterruptFrame`] on the
/// interrupted stack, calls `$hook(frame)` with interrupts masked, restores and returns.
macro_rules! interrupt_entry {
    ($label:literal, $hook:literal) => {
        core::arch::global_asm!(
            ".section .text.spindle_vectors, \"ax\", @progbits",
            ".machine power8",
            concat!(".global ", $label),
            concat!(".hidden ", $label),
            concat!($label, ":"),
            "    stdu 1, -{dec_total}(1)",
            "    std 0, {f}+0(1)",
            ".irp n, 2,3,4,5,6,7,8,9,10,11,12",
            "    std \\n, {f}+8*\\n(1)",
            ".endr",
            "    addi 0, 1, {dec_total}",
            "    std 0, {f}+8(1)",
            "    mfcr 0",
            "    std 0, {f}+{d_cr}(1)",
            "    mflr 0",
            "    std 0, {f}+{d_lr}(1)",
            "    mfctr 0",
            "    std 0, {f}+{d_ctr}(1)",
            "    mfxer 0",
            "    std 0, {f}+{d_xer}(1)",
            "    mfspr 0, 26",
            "    std 0, {f}+{d_srr0}(1)",
            "    mfspr 0, 27",
            "    std 0, {f}+{d_srr1}(1)",
            // The interrupt cleared MSR[FP|VEC|VSX]; turn them back on (EE stays off) to save them.
            "    mfmsr 3",
            "    lis 4, {msr_hi}",
            "    ori 4, 4, {msr_lo}",
            "    or 3, 3, 4",
            "    mtmsrd 3",
            "    isync",
            "    addi 4, 1, {f}+{d_vsr}",
            "    li 5, 16",
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51",
            "    stxvd2x \\n, 0, 4",
            "    add 4, 4, 5",
            ".endr",
            "    mffs 0",
            "    stfd 0, {f}+{d_fpscr}(1)",
            "    mfvscr 0",
            "    addi 4, 1, {f}+{d_vscr}",
            "    stvx 0, 0, 4",
            "    lis 2, .TOC.@ha",
            "    addi 2, 2, .TOC.@l",
            "    addi 3, 1, {f}",
            concat!("    bl ", $hook),
            "    nop",
            // Mask again before SRR0/SRR1 are reloaded: the hook may have left interrupts enabled.
            "    li 0, {msr_ri}",
            "    mtmsrd 0, 1",
            "    addi 4, 1, {f}+{d_vscr}",
            "    lvx 0, 0, 4",
            "    mtvscr 0",
            "    lfd 0, {f}+{d_fpscr}(1)",
            "    mtfsf 0xff, 0",
            "    addi 4, 1, {f}+{d_vsr}",
            "    li 5, 16",
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51",
            "    lxvd2x \\n, 0, 4",
            "    add 4, 4, 5",
            ".endr",
            "    ld 0, {f}+{d_cr}(1)",
            "    mtcr 0",
            "    ld 0, {f}+{d_lr}(1)",
            "    mtlr 0",
            "    ld 0, {f}+{d_ctr}(1)",
            "    mtctr 0",
            "    ld 0, {f}+{d_xer}(1)",
            "    mtxer 0",
            "    ld 0, {f}+{d_srr0}(1)",
            "    mtspr 26, 0",
            "    ld 0, {f}+{d_srr1}(1)",
            "    mtspr 27, 0",
            "    ld 0, {f}+0(1)",
            ".irp n, 2,3,4,5,6,7,8,9,10,11,12",
            "    ld \\n, {f}+8*\\n(1)",
            ".endr",
            "    addi 1, 1, {dec_total}",
            "    rfid",
            f = const FRAME_HEADER,
            dec_total = const DEC_FRAME_BYTES + RED_ZONE,
            d_cr = const offset_of!(InterruptFrame, cr),
            d_lr = const offset_of!(InterruptFrame, lr),
            d_ctr = const offset_of!(InterruptFrame, ctr),
            d_xer = const offset_of!(InterruptFrame, xer),
            d_srr0 = const offset_of!(InterruptFrame, srr0),
            d_srr1 = const offset_of!(InterruptFrame, srr1),
            d_fpscr = const offset_of!(InterruptFrame, fpscr),
            d_vscr = const offset_of!(InterruptFrame, vscr),
            d_vsr = const offset_of!(InterruptFrame, vsr),
            msr_hi = const super::MSR_FP_VEC_VSX >> 16,
            msr_lo = const super::MSR_FP_VEC_VSX & 0xffff,
            msr_ri = const super::MSR_RI,
        );
    };
}

interrupt_entry!("__spindle_decrementer_entry", "spindle_board_timer");
interrupt_entry!("__spindle_external_entry", "spindle_board_external");
