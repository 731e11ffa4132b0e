//! The figures: the counters every CPU adds to, and the report made of them.

use alloc::string::String;
use core::fmt;
use core::sync::atomic::AtomicU64;

#[derive(Default)]
pub(super) struct Counters {
    pub(super) ops: AtomicU64,
    pub(super) values: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) returned: AtomicU64,
    pub(super) dropped_in_flight: AtomicU64,
    pub(super) cross_cpu: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) kills: AtomicU64,
    pub(super) forced_kills: AtomicU64,
    pub(super) closes: AtomicU64,
    pub(super) spills: AtomicU64,
    pub(super) echoes: AtomicU64,
    pub(super) echo_bytes: AtomicU64,
    pub(super) net_errors: AtomicU64,
    pub(super) faults: AtomicU64,
    pub(super) rounds: AtomicU64,
    pub(super) net_rounds: AtomicU64,
    pub(super) invariant_checks: AtomicU64,
}

/// What a soak did, and its verdict.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    /// CPUs that took part.
    pub cpus: usize,
    /// The programs' seed.
    pub seed: u64,
    /// Wall time of the rounds, in nanoseconds.
    pub elapsed_ns: u64,
    /// Rounds run (of which with the network).
    pub rounds: u64,
    /// Rounds that used the network.
    pub net_rounds: u64,
    /// Operations the scripts performed.
    pub ops: u64,
    /// Values created and followed to their drop.
    pub values: u64,
    /// Of those, received by a tasklet.
    pub received: u64,
    /// Of those, given back to their sender by a failed send.
    pub returned: u64,
    /// Of those, dropped in flight (the queue's leftovers, a forced kill's value).
    pub dropped_in_flight: u64,
    /// Received on another CPU than the one that made them.
    pub cross_cpu: u64,
    /// Blocking calls that timed out.
    pub timeouts: u64,
    /// Kills (by scripts and by main tasklets at a round's end).
    pub kills: u64,
    /// Couriers abandoned with `kill_forced`.
    pub forced_kills: u64,
    /// Channel and queue closes.
    pub closes: u64,
    /// Calls run on spilled stack segments.
    pub spills: u64,
    /// Echo exchanges completed.
    pub echoes: u64,
    /// Echoed bytes checked.
    pub echo_bytes: u64,
    /// Socket calls that failed (resets, refusals, timeouts: expected under faults).
    pub net_errors: u64,
    /// Network faults injected.
    pub faults: u64,
    /// Scheduler invariant checks that passed.
    pub invariant_checks: u64,
    /// The first failure, if any.
    pub failure: Option<String>,
}

impl SoakReport {
    /// Whether every check held.
    #[inline]
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Operations per second.
    #[inline]
    pub fn ops_per_second(&self) -> u64 {
        per_second(self.ops, self.elapsed_ns)
    }

    /// Values checked per second.
    #[inline]
    pub fn values_per_second(&self) -> u64 {
        per_second(self.values, self.elapsed_ns)
    }
}

#[inline]
fn per_second(count: u64, elapsed_ns: u64) -> u64 {
    (u128::from(count) * 1_000_000_000 / u128::from(elapsed_ns.max(1))) as u64
}

impl fmt::Display for SoakReport {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed_ns / 1_000_000;
        writeln!(
            f,
            "soak: {} CPUs, seed {}, {}.{:03} s, {} rounds ({} with sockets)",
            self.cpus,
            self.seed,
            ms / 1000,
            ms % 1000,
            self.rounds,
            self.net_rounds
        )?;
        writeln!(
            f,
            "soak: {} operations ({} ops/s), {} invariant checks",
            self.ops,
            self.ops_per_second(),
            self.invariant_checks
        )?;
        writeln!(
            f,
            "soak: {} values checked ({}/s): {} received ({} across CPUs), {} given back, {} \
             dropped in flight; each dropped exactly once",
            self.values,
            self.values_per_second(),
            self.received,
            self.cross_cpu,
            self.returned,
            self.dropped_in_flight
        )?;
        writeln!(
            f,
            "soak: {} kills, {} forced kills, {} timeouts, {} closes, {} spilled calls",
            self.kills, self.forced_kills, self.timeouts, self.closes, self.spills
        )?;
        writeln!(
            f,
            "soak: {} echoes ({} bytes checked), {} socket errors, {} network faults",
            self.echoes, self.echo_bytes, self.net_errors, self.faults
        )?;
        match &self.failure {
            None => write!(f, "soak: PASS"),
            Some(failure) => write!(f, "soak: FAIL: {failure}"),
        }
    }
}
