//! The soak: random tasklet, channel, sync and socket programs on every CPU for a given time,
//! counting every value until it is dropped. The host bench `cargo bench -p spindle --bench soak`
//! (threads stand for CPUs) and the on-target suite `soak::` (`tests/src/soak.rs`) run this one
//! generator.
//!
//! A soak is a sequence of rounds. CPU 0 draws each round's program from the seed: a preference
//! and `schedule_all` for each of the [`CHANNELS`] channels, whether the round uses the network,
//! and for every CPU a few tasklets with a script of operations each:
//! - channel sends and receives of [`Tracked`] values, untimed or with a timeout, some from
//!   inside spilled stack segments; closes and reopens of the channels (cross-CPU traffic: every
//!   CPU's tasklets use the same channels);
//! - a bounded [`Queue`] of tracked values (sends, receives, close, open);
//! - a [`Lock`] and a [`Semaphore`] held across yields (their exclusion is checked), an
//!   [`Event`] waited on, set and cleared;
//! - yields and sleeps; kills of a sibling tasklet of the same CPU (or itself); couriers — a
//!   tasklet spawned to send or receive one value — abandoned with `kill_forced` after a few
//!   yields (a receiver that took its value and switched away before returning included);
//! - echo exchanges over blocking sockets with an echo server on CPU 0 (every byte checked), and
//!   faults injected into the network (resets, partial writes, refused connects).
//!
//! Every other script and half the couriers run sliced (on the CPU's shared slice area), so
//! saved and restored slices meet every operation above, kills and spills included.
//!
//! Each CPU's main tasklet spawns its tasklets and polls them until they end; tasklets still
//! alive when the whole soak has made no progress for [`SoakConfig::stall`], or after the
//! round's budget, are killed (their blocked calls return the kill). Once every CPU is done,
//! CPU 0 settles the round: drains the queue, checks that every channel's balance is back to 0,
//! that nobody holds the lock or a permit, and that **every value created in the round was
//! dropped exactly once**, received at most once, never both received and given back to its
//! sender, and came out as it went in. [`SoakConfig::check_invariants`] adds
//! [`tasklet::check_invariants`] after every operation of every tasklet and every poll of every
//! main tasklet.
//!
//! A violation panics with its description (recorded first, so [`Soak::report`] names it even
//! when the panic is caught); on the host a panicking tasklet ends with
//! [`TaskletError::Panicked`](tasklet::TaskletError::Panicked), which its main tasklet reports
//! the same way.

// The parts, each a file: `config` (what a soak runs), `program` (the random programs: their
// operations and the generator that draws them), `ledger` (the tracked values and where each
// is), `report` (the counters and the figures), `rounds` (how the CPUs run a round together),
// `ops` (the scripted tasklets and their operations), `sockets` (the network: its faults and
// the echo exchanges), `settle` (a round's start and its settlement). The `Soak` that joins
// them, and its public face, are here.
mod config;
mod ledger;
mod ops;
mod program;
mod report;
mod rounds;
mod settle;
mod sockets;

pub use config::SoakConfig;
pub use ledger::Tracked;
pub use report::SoakReport;
pub use sockets::{NetFault, SoakNet};

use crate::channel::Channel;
use crate::net::NetDriver;
use crate::sync::{Event, Lock, Queue, Semaphore};
use crate::tasklet;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use ledger::{Fate, Ledger};
use program::Program;
use report::Counters;
use sockets::ACCEPT_TIMEOUT;

/// Channels every round's programs share.
pub const CHANNELS: usize = 3;
/// Most CPUs a soak runs on.
pub const MAX_CPUS: usize = 8;
/// Most scripted tasklets per CPU and round.
const MAX_TASKLETS: usize = 8;
/// Most operations per script.
const MAX_OPS: usize = 24;
/// Values one round can create: one per operation at most.
const MAX_VALUES: usize = MAX_CPUS * MAX_TASKLETS * MAX_OPS;
/// Places in the shared queue.
const QUEUE_PLACES: usize = 4;
/// Permits of the shared semaphore.
const PERMITS: usize = 2;

/// A soak shared by its CPUs: create it with [`Soak::new`], call [`Soak::run_cpu`] on every CPU
/// (CPU 0 leads the rounds and returns last), then read [`Soak::report`].
pub struct Soak<D: NetDriver + Send + 'static> {
    config: SoakConfig,
    channels: [Channel<Tracked>; CHANNELS],
    queue: Queue<Tracked, QUEUE_PLACES>,
    lock: Lock,
    lock_holders: AtomicUsize,
    semaphore: Semaphore,
    semaphore_holders: AtomicUsize,
    event: Event,
    net: Option<SoakNet<D>>,
    ledger: Ledger,
    counters: Counters,
    /// The round being run (0: none yet), published by CPU 0 once its program is ready.
    published: AtomicU64,
    program: spin::Mutex<Option<Arc<Program>>>,
    /// CPUs done with the published round.
    arrived: AtomicUsize,
    /// The round's scripts ended on every CPU: the echo server stops.
    scripts_done: AtomicUsize,
    stop: AtomicBool,
    elapsed_ns: AtomicU64,
}

impl<D: NetDriver + Send + 'static> Soak<D> {
    /// A soak of `config` over `net` (without one, no round uses sockets). It lives for the
    /// rest of the program (its CPUs reach it from anywhere), so make one per run.
    pub fn new(config: SoakConfig, mut net: Option<SoakNet<D>>) -> &'static Self {
        if let Some(net) = &mut net {
            net.listener.set_timeout(Some(ACCEPT_TIMEOUT));
        }
        assert!(
            (1..=MAX_CPUS).contains(&config.cpus),
            "a soak runs on 1 to {MAX_CPUS} CPUs"
        );
        Box::leak(Box::new(Self {
            config,
            channels: [const { Channel::new() }; CHANNELS],
            queue: Queue::new(),
            lock: Lock::new(),
            lock_holders: AtomicUsize::new(0),
            semaphore: Semaphore::new(PERMITS),
            semaphore_holders: AtomicUsize::new(0),
            event: Event::new(),
            net,
            ledger: Ledger {
                round: AtomicU64::new(0),
                fates: (0..MAX_VALUES).map(|_| Fate::default()).collect(),
                failed: AtomicBool::new(false),
                failure: spin::Mutex::new(None),
            },
            counters: Counters::default(),
            published: AtomicU64::new(0),
            program: spin::Mutex::new(None),
            arrived: AtomicUsize::new(0),
            scripts_done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            elapsed_ns: AtomicU64::new(0),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &SoakConfig {
        &self.config
    }

    /// Whether a check failed (the soak then stops at the end of the round).
    pub fn failed(&self) -> bool {
        self.ledger.failed.load(Acquire)
    }

    /// Records a failure found outside the soak (a CPU that panicked, a hang) and stops it.
    pub fn record_failure(&self, what: String) {
        let mut failure = self.ledger.failure.lock();
        if failure.is_none() {
            *failure = Some(what);
        }
        self.ledger.failed.store(true, Release);
        self.stop.store(true, Release);
    }

    /// The figures so far, and the verdict.
    pub fn report(&self) -> SoakReport {
        let c = &self.counters;
        SoakReport {
            cpus: self.config.cpus,
            seed: self.config.seed,
            elapsed_ns: self.elapsed_ns.load(Acquire),
            rounds: c.rounds.load(Acquire),
            net_rounds: c.net_rounds.load(Acquire),
            ops: c.ops.load(Acquire),
            values: c.values.load(Acquire),
            received: c.received.load(Acquire),
            returned: c.returned.load(Acquire),
            dropped_in_flight: c.dropped_in_flight.load(Acquire),
            cross_cpu: c.cross_cpu.load(Acquire),
            timeouts: c.timeouts.load(Acquire),
            kills: c.kills.load(Acquire),
            forced_kills: c.forced_kills.load(Acquire),
            closes: c.closes.load(Acquire),
            spills: c.spills.load(Acquire),
            echoes: c.echoes.load(Acquire),
            echo_bytes: c.echo_bytes.load(Acquire),
            net_errors: c.net_errors.load(Acquire),
            faults: c.faults.load(Acquire),
            invariant_checks: c.invariant_checks.load(Acquire),
            failure: self.ledger.failure.lock().clone(),
        }
    }

    fn fail(&self, what: String) -> ! {
        self.stop.store(true, Release);
        self.ledger.fail(what)
    }

    fn check_invariants(&self) {
        if self.config.check_invariants {
            tasklet::check_invariants();
            self.counters.invariant_checks.fetch_add(1, Relaxed);
        }
    }

    /// Runs this CPU's part of every round until the soak's time is up (CPU `cpu`, counted
    /// from 0; CPU 0 leads). Call it from the CPU's main tasklet; every CPU of the soak must be
    /// in one CPU group.
    pub fn run_cpu(&'static self, cpu: usize) {
        assert!(cpu < self.config.cpus, "CPU {cpu} is not in the soak");
        if cpu == 0 {
            self.lead();
        } else {
            self.follow(cpu);
        }
    }
}

impl<D: NetDriver + Send + 'static> fmt::Debug for Soak<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Soak")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
