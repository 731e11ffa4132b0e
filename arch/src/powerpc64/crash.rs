//! Crash reports: the register frame an unexpected interrupt saves, and how it is printed.
//!
//! The frame layout is shared with the vector code in [`super::vectors`]; formatting is plain Rust
//! so the user-mode tier can test it.

use core::fmt;

/// Registers saved by the vector code when an unexpected interrupt arrives.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExceptionFrame {
    /// r0-r31 as they were when the interrupt was taken.
    pub gpr: [u64; 32],
    /// Vector offset of the interrupt (0x700 for a program interrupt, ...).
    pub vector: u64,
    /// Address of the interrupted (or faulting) instruction.
    pub srr0: u64,
    /// MSR at the interrupt, plus interrupt-specific reason bits.
    pub srr1: u64,
    /// Data address of a storage or alignment interrupt.
    pub dar: u64,
    /// Reason of a data storage interrupt.
    pub dsisr: u64,
    /// Link register.
    pub lr: u64,
    /// Condition register.
    pub cr: u64,
    /// Count register.
    pub ctr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
}

/// Bytes of [`ExceptionFrame`] (the vector code reserves this much).
pub const EXCEPTION_FRAME_BYTES: usize = core::mem::size_of::<ExceptionFrame>();

/// Byte offsets into [`ExceptionFrame`] used by the vector assembly.
pub mod offsets {
    use super::ExceptionFrame;
    use core::mem::offset_of;

    /// `gpr[0]`.
    pub const GPR: usize = offset_of!(ExceptionFrame, gpr);
    /// `vector`.
    pub const VECTOR: usize = offset_of!(ExceptionFrame, vector);
    /// `srr0`.
    pub const SRR0: usize = offset_of!(ExceptionFrame, srr0);
    /// `srr1`.
    pub const SRR1: usize = offset_of!(ExceptionFrame, srr1);
    /// `dar`.
    pub const DAR: usize = offset_of!(ExceptionFrame, dar);
    /// `dsisr`.
    pub const DSISR: usize = offset_of!(ExceptionFrame, dsisr);
    /// `lr`.
    pub const LR: usize = offset_of!(ExceptionFrame, lr);
    /// `cr`.
    pub const CR: usize = offset_of!(ExceptionFrame, cr);
    /// `ctr`.
    pub const CTR: usize = offset_of!(ExceptionFrame, ctr);
    /// `xer`.
    pub const XER: usize = offset_of!(ExceptionFrame, xer);
}

/// The architected name of an interrupt vector (Power ISA Book III-S), or "reserved".
pub fn vector_name(vector: u64) -> &'static str {
    match vector {
        0x100 => "system reset",
        0x200 => "machine check",
        0x300 => "data storage",
        0x380 => "data segment",
        0x400 => "instruction storage",
        0x480 => "instruction segment",
        0x500 => "external",
        0x600 => "alignment",
        0x700 => "program",
        0x800 => "floating-point unavailable",
        0x900 => "decrementer",
        0x980 => "hypervisor decrementer",
        0xa00 => "directed privileged doorbell",
        0xc00 => "system call",
        0xd00 => "trace",
        0xe00 => "hypervisor data storage",
        0xe20 => "hypervisor instruction storage",
        0xe40 => "hypervisor emulation assistance",
        0xe60 => "hypervisor maintenance",
        0xe80 => "directed hypervisor doorbell",
        0xea0 => "hypervisor virtualization",
        0xf00 => "performance monitor",
        0xf20 => "vector unavailable",
        0xf40 => "VSX unavailable",
        0xf60 => "facility unavailable",
        0xf80 => "hypervisor facility unavailable",
        0x1500 => "denormalization",
        0x1700 => "vector assist",
        _ => "reserved",
    }
}

/// Why a program interrupt (0x700) happened, decoded from SRR1.
pub fn program_reason(srr1: u64) -> &'static str {
    if srr1 & (1 << 20) != 0 {
        "floating-point enabled exception"
    } else if srr1 & (1 << 19) != 0 {
        "illegal instruction"
    } else if srr1 & (1 << 18) != 0 {
        "privileged instruction"
    } else if srr1 & (1 << 17) != 0 {
        "trap"
    } else {
        "unknown reason"
    }
}

/// The one-line summary that opens a crash report, e.g.
/// `unexpected exception 0x700 (program: illegal instruction) at 0x1234 on CPU 0`.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    /// The saved frame.
    pub frame: &'a ExceptionFrame,
    /// The CPU the interrupt arrived on.
    pub cpu: usize,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        write!(
            f,
            "unexpected exception {:#x} ({}",
            frame.vector,
            vector_name(frame.vector)
        )?;
        if frame.vector == 0x700 {
            write!(f, ": {}", program_reason(frame.srr1))?;
        }
        write!(f, ") at {:#x} on CPU {}", frame.srr0, self.cpu)
    }
}

/// The register dump that follows the summary line.
#[derive(Debug, Clone, Copy)]
pub struct Registers<'a>(pub &'a ExceptionFrame);

impl fmt::Display for Registers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.0;
        writeln!(f, "  SRR0 {:#018x}  SRR1 {:#018x}", frame.srr0, frame.srr1)?;
        writeln!(f, "  DAR  {:#018x}  DSISR {:#010x}", frame.dar, frame.dsisr)?;
        writeln!(f, "  LR   {:#018x}  CTR  {:#018x}", frame.lr, frame.ctr)?;
        writeln!(
            f,
            "  CR   {:#010x}          XER  {:#018x}",
            frame.cr, frame.xer
        )?;
        for row in 0..8 {
            f.write_str(" ")?;
            for col in 0..4 {
                let reg = row * 4 + col;
                write!(f, " r{reg:<2} {:016x}", frame.gpr[reg])?;
            }
            f.write_str("\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn summary_names_the_vector_and_program_reason() {
        let frame = ExceptionFrame {
            vector: 0x700,
            srr0: 0x1234,
            srr1: 1 << 19,
            ..ExceptionFrame::default()
        };
        assert_eq!(
            format!(
                "{}",
                Summary {
                    frame: &frame,
                    cpu: 1
                }
            ),
            "unexpected exception 0x700 (program: illegal instruction) at 0x1234 on CPU 1"
        );
        let frame = ExceptionFrame {
            vector: 0x300,
            dar: 0xdead_0000,
            ..frame
        };
        let text = format!(
            "{}",
            Summary {
                frame: &frame,
                cpu: 0
            }
        );
        assert_eq!(
            text,
            "unexpected exception 0x300 (data storage) at 0x1234 on CPU 0"
        );
    }

    #[test]
    fn register_dump_shows_every_gpr_and_the_fault_registers() {
        let mut frame = ExceptionFrame {
            dar: 0xdead_beef,
            dsisr: 0x4200_0000,
            ..Default::default()
        };
        for (i, reg) in frame.gpr.iter_mut().enumerate() {
            *reg = 0x1111_0000 + i as u64;
        }
        let text = format!("{}", Registers(&frame));
        for i in 0..32u64 {
            assert!(
                text.contains(&format!("r{i:<2} {:016x}", 0x1111_0000 + i)),
                "r{i} missing:\n{text}"
            );
        }
        assert!(text.contains("DAR  0x00000000deadbeef"), "{text}");
        assert!(text.contains("DSISR 0x42000000"), "{text}");
    }

    #[test]
    fn unknown_vectors_are_reported_as_reserved() {
        assert_eq!(vector_name(0x20), "reserved");
        assert_eq!(vector_name(0x1100), "reserved");
        assert_eq!(program_reason(0), "unknown reason");
        assert_eq!(program_reason(1 << 17), "trap");
    }
}
