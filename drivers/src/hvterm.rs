//! The pseries hypervisor virtual terminal (`hvterm`): console output and input by hcall.
//!
//! H_PUT_TERM_CHAR sends up to 16 bytes packed big-endian into two registers; H_GET_TERM_CHAR
//! returns up to 16 the same way. Terminal 0 means "the default vty" to QEMU, so the console
//! works before the device tree is parsed.

use crate::hcall::HcallError;
use core::fmt;

/// Bytes one hcall moves in either direction.
pub const CHUNK: usize = 16;

/// Packs up to [`CHUNK`] bytes big-endian into the two argument registers of H_PUT_TERM_CHAR.
/// Bytes past the 16th are ignored.
pub fn pack(bytes: &[u8]) -> (u64, u64) {
    let mut padded = [0u8; CHUNK];
    let len = bytes.len().min(CHUNK);
    padded[..len].copy_from_slice(&bytes[..len]);
    let (hi, lo) = padded.split_at(8);
    (
        u64::from_be_bytes(hi.try_into().unwrap_or_default()),
        u64::from_be_bytes(lo.try_into().unwrap_or_default()),
    )
}

/// Unpacks the result registers of H_GET_TERM_CHAR (`len` is clamped to [`CHUNK`]).
pub fn unpack(len: u64, hi: u64, lo: u64) -> ([u8; CHUNK], usize) {
    let mut bytes = [0u8; CHUNK];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    (bytes, (len as usize).min(CHUNK))
}

/// Terminals whose input can be buffered at once.
pub const MAX_TERMINALS: usize = 4;

/// Bytes received by one H_GET_TERM_CHAR but not yet handed to a reader.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    bytes: [u8; CHUNK],
    start: usize,
    end: usize,
}

impl Pending {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; CHUNK],
            start: 0,
            end: 0,
        }
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Replaces the (empty) buffer with a fresh chunk.
    pub fn fill(&mut self, bytes: [u8; CHUNK], len: usize) {
        self.bytes = bytes;
        self.start = 0;
        self.end = len.min(CHUNK);
    }

    /// Moves buffered bytes into `out`; returns how many.
    pub fn take(&mut self, out: &mut [u8]) -> usize {
        let n = (self.end - self.start).min(out.len());
        out[..n].copy_from_slice(&self.bytes[self.start..self.start + n]);
        self.start += n;
        n
    }
}

/// A console failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvTermError {
    /// The hypervisor refused a terminal call.
    Hcall(HcallError),
    /// Input was read from more than [`MAX_TERMINALS`] terminals.
    TooManyTerminals,
}

impl fmt::Display for HvTermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hcall(err) => write!(f, "hvterm: {err}"),
            Self::TooManyTerminals => {
                write!(f, "hvterm: input from more than {MAX_TERMINALS} terminals")
            }
        }
    }
}

impl core::error::Error for HvTermError {}

impl embedded_io::Error for HvTermError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// A handle to a hypervisor virtual terminal. `read` blocks (polling) until input arrives.
///
/// Input arrives in chunks of up to 16 bytes; what a read does not take waits in a buffer shared
/// by every handle of the same terminal, so a handle never loses bytes another one fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HvTerm {
    termno: u64,
}

impl HvTerm {
    /// The terminal QEMU treats as the default vty (number 0).
    pub const fn console() -> Self {
        Self::new(0)
    }

    /// Terminal `termno` (the `reg` of a `/vdevice/vty@...` node, or 0 for the default).
    pub const fn new(termno: u32) -> Self {
        Self {
            termno: termno as u64,
        }
    }

    /// The terminal number.
    pub const fn termno(&self) -> u32 {
        self.termno as u32
    }
}

impl embedded_io::ErrorType for HvTerm {
    type Error = HvTermError;
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
mod calls {
    use super::*;
    use crate::hcall::{hcall, H_GET_TERM_CHAR, H_PUT_TERM_CHAR};

    /// Retries of an H_BUSY terminal call before giving up.
    const BUSY_RETRIES: u32 = 1_000_000;

    /// Writes up to 16 bytes in one hcall; returns how many were taken.
    pub fn put_chunk(termno: u64, bytes: &[u8]) -> Result<usize, HvTermError> {
        let len = bytes.len().min(CHUNK);
        let (hi, lo) = pack(&bytes[..len]);
        for _ in 0..BUSY_RETRIES {
            // SAFETY: H_PUT_TERM_CHAR takes its bytes in registers, no addresses.
            let (status, _) =
                unsafe { hcall(H_PUT_TERM_CHAR, [termno, len as u64, hi, lo, 0, 0, 0, 0]) };
            match status {
                0 => return Ok(len),
                1 => core::hint::spin_loop(), // H_BUSY
                other => return Err(HvTermError::Hcall(HcallError(other))),
            }
        }
        Err(HvTermError::Hcall(HcallError(1)))
    }

    /// Reads what the terminal has (possibly nothing) in one hcall.
    fn get_chunk(termno: u64) -> Result<([u8; CHUNK], usize), HvTermError> {
        // SAFETY: H_GET_TERM_CHAR returns its bytes in registers, no addresses.
        let (status, out) = unsafe { hcall(H_GET_TERM_CHAR, [termno, 0, 0, 0, 0, 0, 0, 0]) };
        HcallError::check(status).map_err(HvTermError::Hcall)?;
        Ok(unpack(out[0], out[1], out[2]))
    }

    /// Input fetched but not yet read, per terminal number.
    static INPUT: spin::Mutex<[(Option<u64>, Pending); MAX_TERMINALS]> =
        spin::Mutex::new([const { (None, Pending::new()) }; MAX_TERMINALS]);

    /// Moves available input of `termno` into `out` without waiting (possibly 0 bytes).
    pub fn poll(termno: u64, out: &mut [u8]) -> Result<usize, HvTermError> {
        spindle_arch::powerpc64::irq::without(|| {
            let mut slots = INPUT.lock();
            let index = slots
                .iter()
                .position(|(owner, _)| *owner == Some(termno))
                .or_else(|| slots.iter().position(|(owner, _)| owner.is_none()))
                .ok_or(HvTermError::TooManyTerminals)?;
            let (owner, pending) = &mut slots[index];
            *owner = Some(termno);
            if pending.is_empty() {
                let (bytes, len) = get_chunk(termno)?;
                pending.fill(bytes, len);
            }
            Ok(pending.take(out))
        })
    }

    /// Writes all of `bytes`, ignoring errors: for crash reports, which have nowhere else to go.
    pub fn write_raw(termno: u64, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match put_chunk(termno, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(_) => return,
            }
        }
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl HvTerm {
    /// Writes `bytes` to the default terminal without any lock or error: the crash-report path.
    pub fn write_raw(bytes: &[u8]) {
        calls::write_raw(0, bytes);
    }

    /// Returns what input is available now without waiting (possibly 0 bytes).
    pub fn poll(&mut self, out: &mut [u8]) -> Result<usize, HvTermError> {
        calls::poll(self.termno, out)
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl embedded_io::Write for HvTerm {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        calls::put_chunk(self.termno, buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(()) // the hypervisor takes each chunk synchronously
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl embedded_io::Read for HvTerm {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.poll(buf)?;
            if n > 0 {
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl fmt::Write for HvTerm {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        embedded_io::Write::write_all(self, text.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_is_big_endian_and_zero_padded() {
        assert_eq!(pack(b"AB"), (0x4142_0000_0000_0000, 0));
        assert_eq!(
            pack(b"0123456789abcdef"),
            (0x3031_3233_3435_3637, 0x3839_6162_6364_6566)
        );
        assert_eq!(
            pack(b"0123456789abcdefXYZ"),
            pack(b"0123456789abcdef"),
            "only 16 bytes per call"
        );
        assert_eq!(pack(b""), (0, 0));
    }

    #[test]
    fn unpack_reverses_pack_and_clamps_the_length() {
        let (hi, lo) = pack(b"hello, terminal!");
        let (bytes, len) = unpack(16, hi, lo);
        assert_eq!(&bytes[..len], b"hello, terminal!");
        let (_, len) = unpack(99, hi, lo);
        assert_eq!(len, CHUNK, "a bogus length from the hypervisor is clamped");
    }

    #[test]
    fn pending_hands_out_a_chunk_across_small_reads() {
        let mut pending = Pending::default();
        assert!(pending.is_empty());
        let (hi, lo) = pack(b"run x\n");
        let (bytes, len) = unpack(6, hi, lo);
        pending.fill(bytes, len);
        let mut out = [0u8; 4];
        assert_eq!(pending.take(&mut out), 4);
        assert_eq!(&out, b"run ");
        assert_eq!(pending.take(&mut out), 2);
        assert_eq!(&out[..2], b"x\n");
        assert!(pending.is_empty());
        assert_eq!(pending.take(&mut out), 0);
    }
}
