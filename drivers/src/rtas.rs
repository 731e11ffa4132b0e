//! RTAS (run-time abstraction services) through QEMU's hcall 0xf000: power-off, os-term,
//! start-cpu and the time of day, with tokens read from the device tree's `/rtas` node.
//!
//! An RTAS call is a buffer of big-endian 32-bit words `{token, nargs, nret, args..., rets...}`
//! whose physical address goes in r4; the first return word is the RTAS status (0 = success).

use crate::hcall::HcallError;
use core::fmt;

/// Most argument plus return words one call may carry here.
pub const MAX_WORDS: usize = 16;

/// RTAS tokens the board uses; `None` where the firmware does not offer the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// `power-off`.
    pub power_off: Option<u32>,
    /// `ibm,os-term` (QEMU treats it as a guest panic).
    pub os_term: Option<u32>,
    /// `start-cpu`.
    pub start_cpu: Option<u32>,
    /// `get-time-of-day`.
    pub get_time_of_day: Option<u32>,
    /// `ibm,set-xive`: routes an interrupt source to a CPU server at a priority.
    pub set_xive: Option<u32>,
}

/// Why an RTAS call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtasError {
    /// The device tree did not list the service.
    MissingToken(&'static str),
    /// More argument and return words than [`MAX_WORDS`].
    TooManyWords,
    /// An address argument does not fit the 32-bit RTAS word.
    AddressTooHigh(u64),
    /// The hypervisor refused the RTAS hcall itself.
    Hcall(HcallError),
    /// The service ran and returned a failure status (-1 hardware error, -3 parameter error...).
    Status(i32),
    /// The service returned although it should not have (power-off, os-term).
    Returned,
}

impl fmt::Display for RtasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingToken(name) => write!(f, "RTAS: the device tree has no `{name}` token"),
            Self::TooManyWords => {
                write!(f, "RTAS: more than {MAX_WORDS} argument and return words")
            }
            Self::AddressTooHigh(addr) => {
                write!(f, "RTAS: address {addr:#x} does not fit in 32 bits")
            }
            Self::Hcall(err) => write!(f, "RTAS: {err}"),
            Self::Status(status) => write!(f, "RTAS: call failed with status {status}"),
            Self::Returned => write!(f, "RTAS: the call returned but should not have"),
        }
    }
}

/// An RTAS argument buffer in its wire format (big-endian words, whatever the host order).
#[repr(C, align(16))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    words: [u32; 3 + MAX_WORDS],
    nargs: usize,
    nret: usize,
}

impl Call {
    /// Encodes a call of `token` with `args`, expecting `nret` return words.
    pub fn new(token: u32, args: &[u32], nret: usize) -> Result<Self, RtasError> {
        if args.len() + nret > MAX_WORDS || nret == 0 {
            return Err(RtasError::TooManyWords);
        }
        let mut words = [0u32; 3 + MAX_WORDS];
        words[0] = token.to_be();
        words[1] = (args.len() as u32).to_be();
        words[2] = (nret as u32).to_be();
        for (word, arg) in words[3..].iter_mut().zip(args) {
            *word = arg.to_be();
        }
        Ok(Self {
            words,
            nargs: args.len(),
            nret,
        })
    }

    /// Return word `i` (0 is the status), decoded to host order.
    pub fn ret(&self, i: usize) -> Option<u32> {
        (i < self.nret).then(|| u32::from_be(self.words[3 + self.nargs + i]))
    }

    /// The status word as a result.
    pub fn status(&self) -> Result<(), RtasError> {
        match self.ret(0).map(|s| s as i32) {
            Some(0) => Ok(()),
            Some(status) => Err(RtasError::Status(status)),
            None => Err(RtasError::TooManyWords),
        }
    }

    /// The buffer as bytes (what the firmware reads).
    pub fn as_bytes(&self) -> [u8; 4 * (3 + MAX_WORDS)] {
        let mut bytes = [0u8; 4 * (3 + MAX_WORDS)];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(self.words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        bytes
    }

    /// Runs the call through QEMU's RTAS hcall; returns with the return words filled in.
    #[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
    pub fn run(&mut self) -> Result<(), RtasError> {
        use crate::hcall::{hcall, KVMPPC_H_RTAS};
        let addr = self.words.as_mut_ptr() as u64;
        // SAFETY: r4 is the real-mode (= physical) address of our own buffer, valid for the
        // firmware to read the arguments and write the nret return words it was told about.
        // Pointer arguments inside the call are the caller's responsibility (see os_term).
        let (status, _) = unsafe { hcall(KVMPPC_H_RTAS, [addr, 0, 0, 0, 0, 0, 0, 0]) };
        HcallError::check(status).map_err(RtasError::Hcall)
    }
}

/// A 32-bit RTAS word for an address, or an error if it does not fit.
pub fn address_word(addr: u64) -> Result<u32, RtasError> {
    u32::try_from(addr).map_err(|_| RtasError::AddressTooHigh(addr))
}

/// Wall-clock date and time from `get-time-of-day` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// Year, e.g. 2026.
    pub year: u32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
    /// Nanoseconds within the second.
    pub nanosecond: u32,
}

impl TimeOfDay {
    /// Nanoseconds since 1970-01-01T00:00:00Z (proleptic Gregorian calendar).
    pub fn unix_ns(&self) -> i128 {
        // Days from civil (Howard Hinnant's algorithm), exact for every Gregorian date.
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let yoe = year - era * 400;
        let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        i128::from(seconds) * 1_000_000_000 + i128::from(self.nanosecond)
    }
}

/// The RTAS services of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtas {
    tokens: Tokens,
}

impl Rtas {
    /// RTAS with the given tokens (see `devtree::Machine::rtas`).
    pub const fn new(tokens: Tokens) -> Self {
        Self { tokens }
    }

    /// The tokens in use.
    pub fn tokens(&self) -> Tokens {
        self.tokens
    }

    fn token(token: Option<u32>, name: &'static str) -> Result<u32, RtasError> {
        token.ok_or(RtasError::MissingToken(name))
    }

    /// The `power-off` call (QEMU exits with status 0).
    pub fn power_off_call(&self) -> Result<Call, RtasError> {
        Call::new(Self::token(self.tokens.power_off, "power-off")?, &[0, 0], 1)
    }

    /// The `ibm,os-term` call for a NUL-terminated message at `message_addr`.
    pub fn os_term_call(&self, message_addr: u64) -> Result<Call, RtasError> {
        Call::new(
            Self::token(self.tokens.os_term, "ibm,os-term")?,
            &[address_word(message_addr)?],
            1,
        )
    }

    /// The `start-cpu` call: CPU `server` starts at `entry` with r3 = `r3`.
    pub fn start_cpu_call(&self, server: u32, entry: u64, r3: u64) -> Result<Call, RtasError> {
        let token = Self::token(self.tokens.start_cpu, "start-cpu")?;
        Call::new(token, &[server, address_word(entry)?, address_word(r3)?], 1)
    }

    /// The `ibm,set-xive` call: deliver interrupt source `irq` to CPU `server` at `priority` (0xff masks
    /// it).
    pub fn set_xive_call(&self, irq: u32, server: u32, priority: u8) -> Result<Call, RtasError> {
        let token = Self::token(self.tokens.set_xive, "ibm,set-xive")?;
        Call::new(token, &[irq, server, u32::from(priority)], 1)
    }

    /// The `get-time-of-day` call.
    pub fn get_time_of_day_call(&self) -> Result<Call, RtasError> {
        Call::new(
            Self::token(self.tokens.get_time_of_day, "get-time-of-day")?,
            &[],
            8,
        )
    }
}

/// Decodes the return words of a completed `get-time-of-day` call.
pub fn decode_time_of_day(call: &Call) -> Result<TimeOfDay, RtasError> {
    call.status()?;
    let word = |i| call.ret(i).ok_or(RtasError::TooManyWords);
    Ok(TimeOfDay {
        year: word(1)?,
        month: word(2)?,
        day: word(3)?,
        hour: word(4)?,
        minute: word(5)?,
        second: word(6)?,
        nanosecond: word(7)?,
    })
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl Rtas {
    /// Routes interrupt source `irq` to CPU `server` at `priority` (`ibm,set-xive`).
    pub fn set_xive(&self, irq: u32, server: u32, priority: u8) -> Result<(), RtasError> {
        let mut call = self.set_xive_call(irq, server, priority)?;
        call.run().and_then(|()| call.status())
    }

    /// Powers the machine off: QEMU exits with status 0. Returns only on failure.
    pub fn power_off(&self) -> RtasError {
        let mut call = match self.power_off_call() {
            Ok(call) => call,
            Err(err) => return err,
        };
        match call.run().and_then(|()| call.status()) {
            Ok(()) => RtasError::Returned,
            Err(err) => err,
        }
    }

    /// Reports an OS termination with `message` (QEMU prints it and, with
    /// `-action panic=exit-failure`, exits with status 1). Returns only on failure.
    pub fn os_term(&self, message: &core::ffi::CStr) -> RtasError {
        let mut call = match self.os_term_call(message.as_ptr() as u64) {
            Ok(call) => call,
            Err(err) => return err,
        };
        // The firmware reads the message through the address inside the call: `message` is
        // borrowed for the whole call.
        match call.run().and_then(|()| call.status()) {
            Ok(()) => RtasError::Returned,
            Err(err) => err,
        }
    }

    /// Starts stopped CPU `server` at physical address `entry` with r3 = `r3`, in real mode.
    pub fn start_cpu(&self, server: u32, entry: u64, r3: u64) -> Result<(), RtasError> {
        let mut call = self.start_cpu_call(server, entry, r3)?;
        call.run()?;
        call.status()
    }

    /// Reads the wall clock.
    pub fn time_of_day(&self) -> Result<TimeOfDay, RtasError> {
        let mut call = self.get_time_of_day_call()?;
        call.run()?;
        decode_time_of_day(&call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: Tokens = Tokens {
        power_off: Some(0x2003),
        os_term: Some(0x201f),
        start_cpu: Some(0x2006),
        get_time_of_day: None,
        set_xive: Some(0x200a),
    };

    #[test]
    fn start_cpu_buffer_is_big_endian_words() {
        let call = Rtas::new(TOKENS)
            .start_cpu_call(1, 0x1900, 0x12_3400)
            .unwrap();
        let bytes = call.as_bytes();
        let expect: [u8; 28] = [
            0, 0, 0x20, 0x06, 0, 0, 0, 3, 0, 0, 0, 1, // token, nargs, nret
            0, 0, 0, 1, 0, 0, 0x19, 0, 0, 0x12, 0x34, 0, // server, entry, r3
            0, 0, 0, 0, // status slot
        ];
        assert_eq!(&bytes[..28], &expect);
    }

    #[test]
    fn missing_tokens_and_wide_addresses_are_typed_errors() {
        let rtas = Rtas::new(TOKENS);
        assert_eq!(
            rtas.get_time_of_day_call(),
            Err(RtasError::MissingToken("get-time-of-day"))
        );
        assert_eq!(
            rtas.os_term_call(0x1_0000_0000),
            Err(RtasError::AddressTooHigh(0x1_0000_0000))
        );
        assert_eq!(
            Rtas::new(Tokens::default()).power_off_call(),
            Err(RtasError::MissingToken("power-off"))
        );
        assert_eq!(
            Rtas::new(Tokens::default()).set_xive_call(0x1101, 0, 5),
            Err(RtasError::MissingToken("ibm,set-xive"))
        );
        let xive = rtas.set_xive_call(0x1101, 1, 5).unwrap();
        let expect: [u8; 24] = [
            0, 0, 0x20, 0x0a, 0, 0, 0, 3, 0, 0, 0, 1, // token, nargs, nret
            0, 0, 0x11, 0x01, 0, 0, 0, 1, 0, 0, 0, 5, // irq, server, priority
        ];
        assert_eq!(&xive.as_bytes()[..24], &expect);
        assert_eq!(Call::new(1, &[0; 16], 1), Err(RtasError::TooManyWords));
        assert_eq!(Call::new(1, &[], 0), Err(RtasError::TooManyWords));
    }

    #[test]
    fn return_words_decode_and_status_is_checked() {
        let mut call = Call::new(0x2001, &[], 8).unwrap();
        let rets = [0u32, 2026, 11, 25, 19, 52, 7, 123_456_789];
        for (i, value) in rets.iter().enumerate() {
            call.words[3 + i] = value.to_be();
        }
        let tod = decode_time_of_day(&call).unwrap();
        assert_eq!(
            (tod.year, tod.month, tod.day, tod.nanosecond),
            (2026, 11, 25, 123_456_789)
        );
        call.words[3] = (-3i32 as u32).to_be();
        assert_eq!(decode_time_of_day(&call), Err(RtasError::Status(-3)));
        assert_eq!(call.ret(8), None);
    }

    #[test]
    fn unix_time_matches_known_dates() {
        let at = |year, month, day, hour, minute, second| {
            TimeOfDay {
                year,
                month,
                day,
                hour,
                minute,
                second,
                nanosecond: 5,
            }
            .unix_ns()
        };
        assert_eq!(at(1970, 1, 1, 0, 0, 0), 5);
        assert_eq!(at(2000, 3, 1, 0, 0, 0), 951_868_800 * 1_000_000_000 + 5);
        assert_eq!(
            at(2026, 11, 25, 19, 52, 7),
            1_795_636_327 * 1_000_000_000 + 5
        );
    }
}
