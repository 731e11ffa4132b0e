//! PMC5: instructions completed, the deterministic cost measure under QEMU TCG.
//!
//! With MMCR0 = 0 nothing is frozen and PMC5 counts every completed instruction in every mode.
//! The boot code sets MMCR0 = 0 and PMC5 = 0 as its first instructions on each CPU; QEMU updates
//! the count per translated block, so measure loops, not single instructions.

/// SPR number of PMC5 (supervisor access).
pub const SPR_PMC5: u32 = 791;
/// SPR number of MMCR0.
pub const SPR_MMCR0: u32 = 795;

/// Reads PMC5: instructions completed on this CPU since boot, modulo 2^32.
#[inline(always)]
pub fn instructions() -> u32 {
    let count: u64;
    // SAFETY: reads an SPR; no memory access.
    unsafe {
        core::arch::asm!("mfspr {}, 791", out(reg) count, options(nomem, nostack, preserves_flags))
    };
    count as u32
}

/// Instructions between two [`instructions`] readings, correct across one 32-bit wrap.
#[inline(always)]
pub fn elapsed(start: u32, end: u32) -> u32 {
    end.wrapping_sub(start)
}

/// Starts counting on this CPU (MMCR0 = 0) without resetting PMC5; the boot code already does
/// this, so it only matters after something else changed MMCR0.
pub fn start() {
    // SAFETY: writes MMCR0 = 0 (no freeze, no performance-monitor interrupts); no memory access.
    unsafe {
        core::arch::asm!("mtspr 795, {}", in(reg) 0u64, options(nomem, nostack, preserves_flags))
    };
}
