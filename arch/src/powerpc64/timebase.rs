//! The timebase: a 64-bit counter that never goes backwards, and its conversion to nanoseconds.
//!
//! `mftb` works in user mode too, so this module is shared by bare-metal images and tier 2.

/// Reads the timebase register.
#[inline(always)]
pub fn read() -> u64 {
    let tb: u64;
    // SAFETY: mftb reads a free-running counter; no memory access, allowed in every mode.
    unsafe { core::arch::asm!("mftb {}", out(reg) tb, options(nomem, nostack, preserves_flags)) };
    tb
}

/// A timebase frequency, validated once so that conversions cannot divide by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frequency {
    hz: u64,
}

/// A timebase frequency of zero was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroFrequency;

impl core::fmt::Display for ZeroFrequency {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("timebase frequency must not be zero")
    }
}

const NS_PER_S: u128 = 1_000_000_000;

impl Frequency {
    /// Validates a frequency in Hz.
    pub const fn new(hz: u64) -> Result<Self, ZeroFrequency> {
        if hz == 0 {
            Err(ZeroFrequency)
        } else {
            Ok(Self { hz })
        }
    }

    /// The frequency in Hz.
    pub const fn hz(self) -> u64 {
        self.hz
    }

    /// Converts a tick count to nanoseconds (saturating at `u64::MAX`).
    pub fn ticks_to_ns(self, ticks: u64) -> u64 {
        let ns = u128::from(ticks) * NS_PER_S / u128::from(self.hz);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Converts nanoseconds to ticks, rounding up so a deadline is never early (saturating).
    pub fn ns_to_ticks(self, ns: u64) -> u64 {
        let ticks = (u128::from(ns) * u128::from(self.hz)).div_ceil(NS_PER_S);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_frequency_is_an_error() {
        assert_eq!(Frequency::new(0), Err(ZeroFrequency));
    }

    #[test]
    fn conversions_round_trip_at_the_pseries_rate() {
        let f = Frequency::new(512_000_000).unwrap();
        assert_eq!(f.ticks_to_ns(512_000_000), 1_000_000_000);
        assert_eq!(f.ns_to_ticks(1_000_000_000), 512_000_000);
        // One tick is 1.953125 ns: a 1 ns deadline rounds up to a whole tick, never down to 0.
        assert_eq!(f.ns_to_ticks(1), 1);
        assert_eq!(f.ticks_to_ns(1), 1);
        assert_eq!(f.ticks_to_ns(u64::MAX), u64::MAX, "saturates");
        assert_eq!(
            f.ns_to_ticks(u64::MAX),
            9_444_732_965_739_290_427,
            "no overflow in between"
        );
        let fast = Frequency::new(2_000_000_000).unwrap();
        assert_eq!(fast.ns_to_ticks(u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn timebase_never_goes_backwards() {
        let mut last = read();
        for _ in 0..10_000 {
            let now = read();
            assert!(now >= last, "timebase went from {last} back to {now}");
            last = now;
        }
    }
}
