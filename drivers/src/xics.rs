//! The XICS interrupt presentation controller by hcall: CPU priority, IPIs, accept and EOI.
//!
//! Spindle uses it for one thing: waking a CPU that ceded. An IPI stays pending until the target
//! accepts it, so it cannot be lost in the window between checking a wake flag and ceding, unlike
//! H_PROD, whose latch QEMU clears whenever the target CPU resumes running.

/// H_EOI: end of interrupt (r4 = the XIRR value accepted).
pub const H_EOI: u64 = 0x64;
/// H_CPPR: set the calling CPU's current processor priority (interrupts below it are presented).
pub const H_CPPR: u64 = 0x68;
/// H_IPI: set a CPU's MFRR (r4 = server, r5 = priority; 0xff withdraws the IPI).
pub const H_IPI: u64 = 0x6c;
/// H_XIRR: accept the most favoured pending interrupt; returns the XIRR in r4.
pub const H_XIRR: u64 = 0x74;

/// Interrupt source number of an inter-processor interrupt.
pub const XISR_IPI: u32 = 2;
/// Least favoured priority: as CPPR it admits everything, as MFRR it means "no IPI".
pub const PRIORITY_NONE: u8 = 0xff;
/// Priority Spindle sends its wake-up IPIs with.
pub const PRIORITY_IPI: u8 = 0x04;

/// The source of an accepted interrupt (the low 24 bits of an XIRR value).
pub fn source(xirr: u32) -> u32 {
    xirr & 0x00ff_ffff
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
mod calls {
    use super::*;
    use crate::hcall::{hcall, HcallError};

    fn call(opcode: u64, a: u64, b: u64) -> Result<u64, HcallError> {
        // SAFETY: the XICS hcalls take CPU numbers, priorities and XIRR values, no addresses.
        let (status, out) = unsafe { hcall(opcode, [a, b, 0, 0, 0, 0, 0, 0]) };
        HcallError::check(status).map(|()| out[0])
    }

    /// Sets the calling CPU's priority; [`PRIORITY_NONE`] admits every interrupt.
    pub fn set_priority(cppr: u8) -> Result<(), HcallError> {
        call(H_CPPR, u64::from(cppr), 0).map(drop)
    }

    /// Raises (or with [`PRIORITY_NONE`] withdraws) an IPI at CPU `server`.
    pub fn send_ipi(server: u32, priority: u8) -> Result<(), HcallError> {
        call(H_IPI, u64::from(server), u64::from(priority)).map(drop)
    }

    /// Accepts the pending interrupt; returns its XIRR (source 0: nothing was pending).
    pub fn accept() -> Result<u32, HcallError> {
        call(H_XIRR, 0, 0).map(|xirr| xirr as u32)
    }

    /// Ends the handling of an accepted interrupt.
    pub fn end(xirr: u32) -> Result<(), HcallError> {
        call(H_EOI, u64::from(xirr), 0).map(drop)
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
pub use calls::{accept, end, send_ipi, set_priority};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_the_low_24_bits_of_the_xirr() {
        assert_eq!(source(0xff00_0002), XISR_IPI);
        assert_eq!(source(0x0500_1234), 0x1234);
        assert_eq!(source(0xff00_0000), 0, "no interrupt pending");
    }
}
