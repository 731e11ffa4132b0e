//! Boot entry for `qemu-system-ppc64 -M pseries -bios image.bin`, and the secondary-CPU entry.
//!
//! QEMU loads the flat image at 0 and starts CPU 0 at 0x100 (the reset vector, see
//! [`super::vectors`]) in real mode with r3 = the device tree's address. `_start`:
//! 1. checks that this is the first pass (a later system reset interrupt also lands at 0x100 and
//!    is reported as a crash), then zeroes PMC5 and MMCR0 so PMC5 counts from here;
//! 2. points r13 and SPRG0 at CPU 0's per-CPU block and SPRG1 at its crash stack;
//! 3. sets MSR[SF] (QEMU starts it in 32-bit mode), MSR[FP|VEC|VSX] (compiled code uses vector
//!    registers) and r2 = `.TOC.`; MSR[ME] is the hypervisor's (a guest's `mtmsrd` leaves it,
//!    and QEMU keeps it 0: a machine check stops the CPU, and the runner's timeout reports it);
//! 4. switches to CPU 0's boot stack, clears .bss;
//! 5. calls the board: `extern "C" fn spindle_board_entry(fdt: usize, pmc5_at_entry: u64) -> !`.
//!
//! A secondary CPU started by RTAS `start-cpu` at [`secondary_entry_address`] with r3 = its per-CPU block
//! does steps 1-3 itself, takes the stack recorded in its block and runs the entry function given
//! to [`super::percpu::prepare_secondary`].
//!
//! The board crate must define (unmangled, `extern "C"`): `spindle_board_entry` (above),
//! `spindle_board_exception` (see [`super::vectors`]) and `spindle_board_timer`.

use super::percpu::{self, PerCpu, CPU_STACK_BYTES, CRASH_STACK_BYTES};
use super::timer;
use super::MSR_FP_VEC_VSX;

/// Address a secondary CPU must start at (`__spindle_secondary_start` below), with r3 = its
/// per-CPU block (for RTAS `start-cpu`).
pub use super::percpu::secondary_entry_address;

/// MSR bits below bit 32 that every CPU sets at entry (MSR[SF] is set separately).
const BOOT_MSR: u64 = MSR_FP_VEC_VSX;
const _: () = assert!(BOOT_MSR >> 32 == 0);

core::arch::global_asm!(
    ".section .text.spindle_boot, \"ax\", @progbits",
    ".machine power8",
    ".p2align 4",
    // ---- CPU 0 ----
    ".global __spindle_start",
    "__spindle_start:",
    // A second arrival here is a system reset interrupt (0x100) after boot: report it as a crash.
    "    mtspr 274, 1",
    "    mtspr 275, 3",
    "    lis 3, {booted}@ha",
    "    lbz 3, {booted}@l(3)",
    "    cmpdi 3, 0",
    "    li 3, 0x100",
    "    bne __spindle_crash_entry",
    "    lis 3, {booted}@ha",
    "    li 0, 1",
    "    stb 0, {booted}@l(3)",
    "    mfspr 3, 275",
    "    li 0, 0",
    "    mtspr 791, 0", // PMC5 = 0
    "    mtspr 795, 0", // MMCR0 = 0: count from here on
    "    mr 31, 3",     // device tree address
    "    lis 13, {percpu}@ha",
    "    addi 13, 13, {percpu}@l",
    "    mtspr 272, 13", // SPRG0 = per-CPU block
    "    lis 4, {crash}@ha",
    "    addi 4, 4, {crash}@l",
    "    addis 4, 4, {crash_hi}",
    "    mtspr 273, 4", // SPRG1 = top of CPU 0's crash stack
    "    bl __spindle_cpu_setup",
    "    lis 1, {stacks}@ha",
    "    addi 1, 1, {stacks}@l",
    "    addis 1, 1, {stack_hi}",
    "    li 0, 0",
    "    stdu 0, -32(1)", // terminal back chain
    "    lis 4, __bss_start@ha",
    "    addi 4, 4, __bss_start@l",
    "    lis 5, __bss_end@ha",
    "    addi 5, 5, __bss_end@l",
    "1:  cmpld 4, 5",
    "    bge 2f",
    "    std 0, 0(4)",
    "    addi 4, 4, 8",
    "    b 1b",
    "2:  mfspr 4, 791", // instructions so far: boot-to-Rust
    "    mr 3, 31",
    "    bl spindle_board_entry",
    "    nop",
    "    trap", // the board entry never returns: report it as a crash if it does
    // ---- every CPU: 64-bit mode, facilities and TOC (clobbers r5, r6) ----
    ".global __spindle_cpu_setup",
    ".hidden __spindle_cpu_setup",
    "__spindle_cpu_setup:",
    "    mfmsr 5",
    "    li 6, 1",
    "    sldi 6, 6, 63", // MSR[SF]
    "    oris 6, 6, {msr_hi}",
    "    ori 6, 6, {msr_lo}",
    "    or 5, 5, 6",
    "    mtmsrd 5",
    "    isync",
    "    lis 2, .TOC.@ha",
    "    addi 2, 2, .TOC.@l",
    "    blr",
    // ---- secondary CPUs: r3 = per-CPU block ----
    ".global __spindle_secondary_start",
    "__spindle_secondary_start:",
    "    li 0, 0",
    "    mtspr 791, 0",
    "    mtspr 795, 0",
    "    mr 13, 3",
    "    mtspr 272, 13",
    "    ld 4, {crash_off}(13)",
    "    mtspr 273, 4",
    "    bl __spindle_cpu_setup",
    "    ld 1, {stack_off}(13)",
    "    li 0, 0",
    "    stdu 0, -32(1)",
    "    mr 3, 13",
    "    bl {secondary_main}",
    "    nop",
    "    trap",
    booted = sym SPINDLE_BOOTED,
    percpu = sym percpu::SPINDLE_PERCPU,
    crash = sym percpu::SPINDLE_CRASH_STACKS,
    stacks = sym percpu::SPINDLE_CPU_STACKS,
    crash_hi = const CRASH_STACK_BYTES >> 16,
    stack_hi = const CPU_STACK_BYTES >> 16,
    msr_hi = const (BOOT_MSR >> 16) & 0xffff,
    msr_lo = const BOOT_MSR & 0xffff,
    crash_off = const percpu::offsets::CRASH_STACK_TOP,
    stack_off = const percpu::offsets::STACK_TOP,
    secondary_main = sym secondary_main,
);

/// Set by the first pass through `_start`; initialised data, so clearing .bss cannot reset it.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.spindle_booted")]
static SPINDLE_BOOTED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// First Rust code on a secondary CPU: gives it the boot CPU's tick and runs the entry recorded
/// by [`percpu::prepare_secondary`].
extern "C" fn secondary_main(block: &'static PerCpu) -> ! {
    let entry = block.secondary_entry();
    timer::inherit_boot_tick();
    entry(block.index())
}
