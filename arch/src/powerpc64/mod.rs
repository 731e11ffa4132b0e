//! PowerPC64 (big-endian, ELFv2): context switch, and bare-metal boot, vectors, timer and counters.
//!
//! Everything that needs supervisor state (MSR, SPRGs, the decrementer, PMC5, the vectors) is
//! compiled only with the `bare-metal` feature (which a board crate turns on), so the same crate still builds and
//! tests under user-mode `qemu-ppc64` (tier 2).

pub mod context;
pub mod crash;
pub mod selftest;
pub mod timebase;

/// Declares modules that exist only in bare-metal images.
macro_rules! bare_metal {
    ($($item:item)*) => { $( #[cfg(feature = "bare-metal")] $item )* };
}

bare_metal! {
    pub mod boot;
    pub mod irq;
    pub mod percpu;
    pub mod pmc;
    pub mod timer;
    pub mod vectors;
}

/// MSR bits the boot code sets so compiled code may use FP, AltiVec and VSX registers.
pub const MSR_FP_VEC_VSX: u64 = MSR_FP | MSR_VEC | MSR_VSX;
/// MSR[SF]: 64-bit mode. QEMU starts the `-bios` image with it clear (32-bit mode, where
/// record-form instructions set CR0 from the low word only), so the boot code sets it.
pub const MSR_SF: u64 = 1 << 63;
/// MSR[FP]: floating-point available.
pub const MSR_FP: u64 = 1 << 13;
/// MSR[VEC]: AltiVec (vector) available.
pub const MSR_VEC: u64 = 1 << 25;
/// MSR[VSX]: VSX available.
pub const MSR_VSX: u64 = 1 << 23;
/// MSR[EE]: external and decrementer interrupts enabled.
pub const MSR_EE: u64 = 1 << 15;
/// MSR[RI]: the interrupt state is recoverable.
pub const MSR_RI: u64 = 1 << 1;
