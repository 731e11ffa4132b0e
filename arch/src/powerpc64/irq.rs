//! External and decrementer interrupt masking through MSR[EE].
//!
//! `mtmsrd r, 1` changes only MSR[EE] and MSR[RI], so masking is two instructions and never
//! disturbs the FP/vector facility bits. Every function here is a compiler barrier.

use super::{MSR_EE, MSR_RI};

/// Whether MSR[EE] is set on this CPU.
#[inline(always)]
pub fn enabled() -> bool {
    let msr: u64;
    // SAFETY: reads the MSR; no memory access.
    unsafe { core::arch::asm!("mfmsr {}", out(reg) msr, options(nomem, nostack, preserves_flags)) };
    msr & MSR_EE != 0
}

/// Masks interrupts and returns whether they were enabled before (pass it to [`restore`]).
#[inline(always)]
pub fn disable() -> bool {
    let msr: u64;
    // SAFETY: clearing MSR[EE] (keeping RI) only masks interrupts. The asm is a compiler memory
    // barrier on purpose: no access may move out of the masked section.
    unsafe {
        core::arch::asm!(
            "mfmsr {msr}",
            "mtmsrd {ri}, 1",
            msr = out(reg) msr,
            ri = in(reg) MSR_RI,
            options(nostack, preserves_flags),
        );
    }
    msr & MSR_EE != 0
}

/// Re-enables interrupts if `was_enabled` (the value [`disable`] returned).
#[inline(always)]
pub fn restore(was_enabled: bool) {
    if was_enabled {
        enable();
    }
}

/// Unmasks interrupts: a pending decrementer interrupt is taken at once.
#[inline(always)]
pub fn enable() {
    // SAFETY: sets MSR[EE] and RI; the interrupt handlers save and restore everything they touch.
    // A compiler memory barrier so that no access moves into the interrupt-enabled section.
    unsafe {
        core::arch::asm!("mtmsrd {}, 1", in(reg) MSR_EE | MSR_RI, options(nostack, preserves_flags));
    }
}

/// Runs `f` with interrupts masked, restoring the previous state afterwards.
#[inline]
pub fn without<R>(f: impl FnOnce() -> R) -> R {
    let was_enabled = disable();
    let result = f();
    restore(was_enabled);
    result
}
