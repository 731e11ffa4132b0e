//! The configuration of a soak: its CPUs, seed and duration, budgets and sizes.

use core::time::Duration;

/// What a soak runs, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct SoakConfig {
    /// CPUs taking part, 1..=[`MAX_CPUS`](super::MAX_CPUS): each calls
    /// [`Soak::run_cpu`](super::Soak::run_cpu) with its index.
    pub cpus: usize,
    /// Seed of the programs (the interleavings across CPUs also depend on timing).
    pub seed: u64,
    /// How long to keep starting rounds.
    pub duration: Duration,
    /// Longest a round may run before its remaining tasklets are killed.
    pub round_budget: Duration,
    /// How long the whole soak may make no progress before the tasklets still alive in a
    /// round are killed (they wait for partners that will not come).
    pub stall: Duration,
    /// Stack of every scripted tasklet, in bytes.
    pub stack: usize,
    /// Spill segments, in bytes.
    pub segment: usize,
    /// Check the scheduler's invariants after every operation.
    pub check_invariants: bool,
}

impl SoakConfig {
    /// `cpus` CPUs for `duration`, with sizes that fit every build profile.
    #[inline]
    pub fn new(cpus: usize, seed: u64, duration: Duration) -> Self {
        Self {
            cpus,
            seed,
            duration,
            round_budget: Duration::from_millis(200),
            stall: Duration::from_millis(3),
            stack: 64 * 1024,
            segment: 32 * 1024,
            check_invariants: true,
        }
    }
}
