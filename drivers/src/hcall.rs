//! PAPR hypervisor calls (`sc 1`): opcodes, status codes and the raw call.
//!
//! QEMU's pseries machine implements the hypervisor itself: an hcall never touches SRR0/SRR1 and
//! returns its status in r3 and results in r4-r12.

use core::fmt;

/// H_GET_TERM_CHAR: read up to 16 bytes from a virtual terminal.
pub const H_GET_TERM_CHAR: u64 = 0x54;
/// H_PUT_TERM_CHAR: write up to 16 bytes to a virtual terminal.
pub const H_PUT_TERM_CHAR: u64 = 0x58;
/// H_CEDE: give up the CPU until an interrupt or H_PROD (sets MSR[EE] as a side effect).
pub const H_CEDE: u64 = 0xe0;
/// H_PROD: wake a CPU that ceded (or make its next cede return at once).
pub const H_PROD: u64 = 0xe8;
/// H_SIGNAL_SYS_RESET: deliver a system reset interrupt to a CPU (r4 = its server number).
pub const H_SIGNAL_SYS_RESET: u64 = 0x380;
/// QEMU's private hcall carrying an RTAS call (r4 = argument buffer address).
pub const KVMPPC_H_RTAS: u64 = 0xf000;

/// A non-success hcall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HcallError(pub i64);

impl HcallError {
    /// Checks an hcall status: `H_SUCCESS` (0) is `Ok`.
    pub fn check(status: i64) -> Result<(), Self> {
        if status == 0 {
            Ok(())
        } else {
            Err(Self(status))
        }
    }

    /// The PAPR name of the status, if it is a common one.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "H_BUSY",
            -1 => "H_HARDWARE",
            -2 => "H_FUNCTION",
            -3 => "H_PRIVILEGE",
            -4 => "H_PARAMETER",
            -5 => "H_BAD_MODE",
            -7 => "H_NOT_FOUND",
            _ => "unknown status",
        }
    }
}

impl fmt::Display for HcallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hypervisor call failed: {} ({})", self.name(), self.0)
    }
}

/// Makes hypervisor call `opcode` with `args` in r4-r11; returns r3 (status) and r4-r11.
///
/// # Safety
/// Arguments the hcall treats as guest physical addresses must be valid for the reads and writes
/// it does there (only [`KVMPPC_H_RTAS`] here: the RTAS buffer and what its call points to).
#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
pub unsafe fn hcall(opcode: u64, args: [u64; 8]) -> (i64, [u64; 8]) {
    let mut out = args;
    let status: u64;
    // SAFETY: `sc 1` enters the hypervisor, which reads r3-r11 and writes r3-r12; every volatile
    // register it may touch is declared. Memory effects are the caller's contract.
    unsafe {
        core::arch::asm!(
            "sc 1",
            inlateout("r3") opcode => status,
            inlateout("r4") out[0], inlateout("r5") out[1], inlateout("r6") out[2],
            inlateout("r7") out[3], inlateout("r8") out[4], inlateout("r9") out[5],
            inlateout("r10") out[6], inlateout("r11") out[7],
            lateout("r0") _, lateout("r12") _, lateout("ctr") _, lateout("xer") _,
            lateout("cr0") _, lateout("cr1") _, lateout("cr5") _, lateout("cr6") _, lateout("cr7") _,
            options(nostack),
        );
    }
    (status as i64, out)
}

/// Gives up the calling CPU until an interrupt arrives or another CPU prods it. Returns with
/// MSR[EE] set (the hypervisor sets it): restore the caller's interrupt state afterwards.
#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
pub fn cede() {
    // SAFETY: H_CEDE takes no addresses.
    let _ = unsafe { hcall(H_CEDE, [0; 8]) };
}

/// Wakes CPU `server` (its interrupt server number) from a cede, or makes its next cede return.
#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
pub fn prod(server: u32) -> Result<(), HcallError> {
    // SAFETY: H_PROD takes a CPU number, no addresses.
    let (status, _) = unsafe { hcall(H_PROD, [u64::from(server), 0, 0, 0, 0, 0, 0, 0]) };
    HcallError::check(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_errors_with_names() {
        assert_eq!(HcallError::check(0), Ok(()));
        assert_eq!(HcallError::check(-4), Err(HcallError(-4)));
        assert_eq!(HcallError(-4).name(), "H_PARAMETER");
        assert_eq!(HcallError(-99).name(), "unknown status");
        extern crate std;
        assert_eq!(
            std::format!("{}", HcallError(-2)),
            "hypervisor call failed: H_FUNCTION (-2)"
        );
    }
}
