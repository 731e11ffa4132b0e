//! Time on the platform clock: [`Deadline`], the one way the kernel turns a timeout into a point
//! in time.
//!
//! ```
//! use core::time::Duration;
//! use spindle::time::Deadline;
//! use spindle::tasklet;
//!
//! let deadline = Deadline::after(Duration::from_millis(2));
//! assert!(!deadline.has_passed());
//! assert!(deadline.remaining() <= Duration::from_millis(2));
//! tasklet::sleep_until_deadline(deadline)?; // other tasklets run meanwhile
//! assert!(deadline.has_passed());
//! assert_eq!(deadline.remaining(), Duration::ZERO);
//! // A timeout too long for the clock is "never", not an overflow.
//! assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
//! # Ok::<(), tasklet::TaskletError>(())
//! ```
//!
//! Every blocking call that takes a timeout (channels, [`crate::sync`], [`crate::net`] sockets,
//! [`crate::tasklet::sleep`]) makes it a [`Deadline`] once, when the call starts, and the
//! scheduler's timer queue fires at that deadline. A deadline is nanoseconds since boot on
//! [`Platform::now_ns`](crate::platform::Platform::now_ns), the clock the kernel's `*_until`
//! calls and the platform's idle and preemption deadlines speak. This module depends on the
//! platform alone.

use crate::platform::platform;
use core::time::Duration;

/// A point in time on the platform clock, in nanoseconds since boot.
///
/// Made from a timeout with [`Deadline::after`] (saturating: a timeout beyond the clock's range
/// is [`Deadline::NEVER`]) or from a clock reading with [`Deadline::at_ns`]. Deadlines order as
/// their times do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Deadline(u64);

impl Deadline {
    /// The end of the clock's range: a deadline that never passes in practice (584 years after
    /// boot).
    pub const NEVER: Self = Self(u64::MAX);

    /// The deadline `ns` nanoseconds after boot on the platform clock.
    #[inline]
    pub const fn at_ns(ns: u64) -> Self {
        Self(ns)
    }

    /// Now, on the platform clock.
    #[inline]
    pub fn now() -> Self {
        Self(platform().now_ns())
    }

    /// `timeout` from now; [`Deadline::NEVER`] if that lies beyond the clock's range.
    #[inline]
    pub fn after(timeout: Duration) -> Self {
        Self::now().saturating_add(timeout)
    }

    /// `duration` after this deadline, saturating at [`Deadline::NEVER`].
    #[inline]
    pub const fn saturating_add(self, duration: Duration) -> Self {
        let nanos = duration.as_nanos();
        let nanos = if nanos > u64::MAX as u128 {
            u64::MAX
        } else {
            nanos as u64
        };
        Self(self.0.saturating_add(nanos))
    }

    /// Nanoseconds since boot on the platform clock.
    #[inline]
    pub const fn as_ns(self) -> u64 {
        self.0
    }

    /// Whether this is [`Deadline::NEVER`].
    #[inline]
    pub const fn is_never(self) -> bool {
        self.0 == u64::MAX
    }

    /// Time left until the deadline; zero once it has passed.
    #[inline]
    pub fn remaining(self) -> Duration {
        self.remaining_at(Self::now())
    }

    /// Time left until the deadline as seen at `now`; zero if it has passed by then.
    #[inline]
    pub const fn remaining_at(self, now: Deadline) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(now.0))
    }

    /// Whether the platform clock has reached the deadline.
    #[inline]
    pub fn has_passed(self) -> bool {
        self.has_passed_at(Self::now())
    }

    /// Whether the deadline is reached at `now`.
    #[inline]
    pub const fn has_passed_at(self, now: Deadline) -> bool {
        now.0 >= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Deadline;
    use core::time::Duration;

    #[test]
    fn a_timeout_beyond_the_clock_saturates_to_never() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
        assert_eq!(
            Deadline::after(Duration::from_secs(u64::MAX / 1_000_000_000 + 1)),
            Deadline::NEVER
        );
        assert!(Deadline::NEVER.is_never());
        let late = Deadline::at_ns(u64::MAX - 5);
        assert_eq!(
            late.saturating_add(Duration::from_nanos(5)),
            Deadline::NEVER
        );
        assert_eq!(
            late.saturating_add(Duration::from_nanos(6)),
            Deadline::NEVER
        );
        assert_eq!(
            late.saturating_add(Duration::from_nanos(4)).as_ns(),
            u64::MAX - 1
        );
        assert!(!Deadline::after(Duration::MAX).has_passed());
        assert_eq!(
            Deadline::after(Duration::MAX).remaining_at(Deadline::at_ns(0)),
            { Duration::from_nanos(u64::MAX) }
        );
    }

    #[test]
    fn after_adds_the_timeout_to_the_clock() {
        let before = Deadline::now();
        let deadline = Deadline::after(Duration::from_millis(5));
        let after = Deadline::now();
        assert!(deadline.as_ns() >= before.as_ns() + 5_000_000);
        assert!(deadline.as_ns() <= after.as_ns() + 5_000_000);
        assert_eq!(Deadline::at_ns(42).as_ns(), 42);
        assert!(Deadline::at_ns(1) < Deadline::at_ns(2));
        assert_eq!(
            Deadline::at_ns(10).saturating_add(Duration::from_micros(1)),
            Deadline::at_ns(1010)
        );
    }

    #[test]
    fn remaining_counts_down_to_zero_and_stays_there() {
        let deadline = Deadline::at_ns(1_000);
        assert_eq!(
            deadline.remaining_at(Deadline::at_ns(400)),
            Duration::from_nanos(600)
        );
        assert_eq!(
            deadline.remaining_at(Deadline::at_ns(1_000)),
            Duration::ZERO
        );
        assert_eq!(
            deadline.remaining_at(Deadline::at_ns(5_000)),
            Duration::ZERO
        );
        let live = Deadline::after(Duration::from_secs(3600));
        let left = live.remaining();
        assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3599));
        assert_eq!(Deadline::at_ns(0).remaining(), Duration::ZERO);
    }

    #[test]
    fn a_deadline_has_passed_from_its_own_instant_on() {
        let deadline = Deadline::at_ns(1_000);
        assert!(!deadline.has_passed_at(Deadline::at_ns(999)));
        assert!(deadline.has_passed_at(Deadline::at_ns(1_000)));
        assert!(deadline.has_passed_at(Deadline::at_ns(1_001)));
        assert!(Deadline::at_ns(0).has_passed());
        assert!(Deadline::now().has_passed());
        let soon = Deadline::after(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(soon.has_passed());
        assert!(!Deadline::after(Duration::from_secs(3600)).has_passed());
    }
}
