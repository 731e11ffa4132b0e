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
//! [`TaskletError::Panicked`], which its main tasklet reports the same way.

use crate::channel::{Channel, Preference, SendError};
use crate::net::{Net, NetDriver, NetError, Socket};
use crate::sync::{Event, Lock, Queue, Semaphore};
use crate::tasklet::{self, Builder, JoinHandle, Tasklet, TaskletError};
use crate::time::Deadline;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use core::time::Duration;

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
/// Mixed into every value's check word.
const CHECK: u64 = 0x5eed_5eed_c0de_f00d;
/// How long a CPU may wait for the others at a round's start or end before the soak counts as
/// hung.
const HANG_LIMIT: Duration = Duration::from_secs(120);
/// The blocking socket calls' own timeout.
const SOCKET_TIMEOUT: Duration = Duration::from_millis(20);
/// The listener's accept timeout (how often the echo server looks at the round's end).
const ACCEPT_TIMEOUT: Duration = Duration::from_millis(1);

/// What a soak runs, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct SoakConfig {
    /// CPUs taking part, 1..=[`MAX_CPUS`]: each calls [`Soak::run_cpu`] with its index.
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

/// A fault the soak asks the network to suffer (the caller's driver decides what it means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// Reset the most recent connection.
    ResetLatest,
    /// Reset every connection.
    ResetAll,
    /// Accept at most this many bytes per send (`None`: no limit).
    PartialWrites(Option<usize>),
    /// Refuse the next connect.
    RefuseConnect,
}

/// The network of a soak: a server host and a client host over one driver kind.
pub struct SoakNet<D: NetDriver + Send + 'static> {
    /// The listener of the echo server (bound and listening at `address`; the soak sets its
    /// timeout).
    pub listener: Socket<D>,
    /// The echo server's address.
    pub address: SocketAddrV4,
    /// The client host's blocking sockets.
    pub client: Net<D>,
    /// Applies a fault to the network.
    pub inject: Box<dyn Fn(NetFault) + Send + Sync>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Send {
        ch: usize,
        timeout: Option<u8>,
        spill: u8,
    },
    Receive {
        ch: usize,
        timeout: Option<u8>,
        spill: u8,
    },
    Close(usize),
    Open(usize),
    QueueSend(Option<u8>),
    QueueReceive(Option<u8>),
    QueueClose,
    QueueOpen,
    Lock(u8),
    Semaphore(u8),
    EventWait(u8),
    EventSet,
    EventClear,
    Schedule,
    Sleep(u8),
    Kill(usize),
    Courier {
        ch: usize,
        send: bool,
        yields: u8,
    },
    Echo(u16),
    Fault(NetFault),
}

/// One round's program.
struct Program {
    round: u32,
    preferences: [(Preference, bool); CHANNELS],
    net: bool,
    /// Per CPU, per tasklet, its script.
    cpus: Vec<Vec<Vec<Op>>>,
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    #[inline]
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    #[inline]
    /// A timeout in quarters of a millisecond (0.25 to 2 ms), half the time.
    fn timeout(&mut self) -> Option<u8> {
        self.chance(50).then(|| 1 + self.below(8) as u8)
    }

    #[inline]
    fn spill(&mut self) -> u8 {
        if self.chance(20) {
            1 + self.below(2) as u8
        } else {
            0
        }
    }
}

impl Program {
    #[inline]
    fn draw(seed: u64, round: u32, cpus: usize, network: bool) -> Self {
        let mut rng = Rng(seed ^ u64::from(round).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let preferences = core::array::from_fn(|_| {
            let preference = [
                Preference::Receiver,
                Preference::Neither,
                Preference::Sender,
            ][rng.below(3)];
            (preference, rng.chance(20))
        });
        let net = network && rng.chance(40);
        let cpus = (0..cpus)
            .map(|_| {
                (0..1 + rng.below(MAX_TASKLETS))
                    .map(|_| {
                        (0..1 + rng.below(MAX_OPS))
                            .map(|_| Self::op(&mut rng, net))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            round,
            preferences,
            net,
            cpus,
        }
    }

    #[inline]
    fn op(rng: &mut Rng, net: bool) -> Op {
        let ch = rng.below(CHANNELS);
        loop {
            let op = match rng.below(100) {
                0..=19 => Op::Send {
                    ch,
                    timeout: rng.timeout(),
                    spill: rng.spill(),
                },
                20..=39 => Op::Receive {
                    ch,
                    timeout: rng.timeout(),
                    spill: rng.spill(),
                },
                40..=41 => Op::Close(ch),
                42..=44 => Op::Open(ch),
                45..=49 => Op::QueueSend(rng.timeout()),
                50..=54 => Op::QueueReceive(rng.timeout()),
                55 => Op::QueueClose,
                56 => Op::QueueOpen,
                57..=60 => Op::Lock(rng.below(3) as u8),
                61..=63 => Op::Semaphore(rng.below(3) as u8),
                64..=65 => Op::EventWait(1 + rng.below(4) as u8),
                66..=67 => Op::EventSet,
                68 => Op::EventClear,
                69..=75 => Op::Schedule,
                76..=78 => Op::Sleep(rng.below(100) as u8),
                79..=82 => Op::Kill(rng.below(MAX_TASKLETS)),
                83..=87 => Op::Courier {
                    ch,
                    send: rng.chance(50),
                    yields: rng.below(4) as u8,
                },
                88..=96 if net => Op::Echo(1 + rng.below(600) as u16),
                97..=99 if net => Op::Fault(match rng.below(6) {
                    0 => NetFault::ResetAll,
                    1 => NetFault::PartialWrites(Some(1 + rng.below(16))),
                    2 => NetFault::PartialWrites(None),
                    3 => NetFault::RefuseConnect,
                    _ => NetFault::ResetLatest,
                }),
                _ => continue,
            };
            return op;
        }
    }
}

// ---- the value ledger ---------------------------------------------------------------------------

#[derive(Default)]
struct Fate {
    created: AtomicU8,
    dropped: AtomicU8,
    received: AtomicU8,
    returned: AtomicU8,
}

/// Where every value of the current round is: created, received, given back, dropped.
struct Ledger {
    round: AtomicU64,
    fates: Vec<Fate>,
    failed: AtomicBool,
    failure: spin::Mutex<Option<String>>,
}

impl Ledger {
    /// Records the first failure, then panics with it.
    #[cold]
    #[inline]
    fn fail(&self, what: String) -> ! {
        {
            let mut failure = self.failure.lock();
            if failure.is_none() {
                *failure = Some(what.clone());
            }
        }
        self.failed.store(true, Release);
        panic!("soak: {what}");
    }

    #[inline]
    fn fate(&self, value: &Tracked) -> &Fate {
        if u64::from(value.round) != self.round.load(Acquire) {
            self.fail(format!(
                "value {} of round {} still alive in round {}",
                value.id,
                value.round,
                self.round.load(Acquire)
            ));
        }
        &self.fates[value.id as usize]
    }
}

/// A value the soak sends: unique in its round, counted from creation to its one drop, and
/// checked for corruption whenever it is received or given back.
pub struct Tracked {
    id: u32,
    round: u32,
    origin: u8,
    check: u64,
    ledger: &'static Ledger,
}

impl Tracked {
    #[inline]
    fn new(ledger: &'static Ledger, round: u32, id: usize, origin: usize) -> Self {
        let value = Self {
            id: id as u32,
            round,
            origin: origin as u8,
            check: Self::check_word(id as u32, round),
            ledger,
        };
        if ledger.fate(&value).created.fetch_add(1, AcqRel) != 0 {
            ledger.fail(format!("value {id} of round {round} created twice"));
        }
        value
    }

    #[inline]
    fn check_word(id: u32, round: u32) -> u64 {
        (u64::from(round) << 32 | u64::from(id)) ^ CHECK
    }

    #[inline]
    fn verify(&self) {
        if self.check != Self::check_word(self.id, self.round) {
            self.ledger.fail(format!(
                "value {} of round {} corrupted (check word {:#x})",
                self.id, self.round, self.check
            ));
        }
    }

    /// A receiver took it.
    #[inline]
    fn received(&self) {
        self.verify();
        if self.ledger.fate(self).received.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} received twice",
                self.id, self.round
            ));
        }
    }

    /// A failed send gave it back to its sender.
    #[inline]
    fn returned(&self) {
        self.verify();
        if self.ledger.fate(self).returned.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} given back twice",
                self.id, self.round
            ));
        }
    }
}

impl Drop for Tracked {
    #[inline]
    fn drop(&mut self) {
        self.verify();
        if self.ledger.fate(self).dropped.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} dropped twice",
                self.id, self.round
            ));
        }
    }
}

// ---- counters and the report ------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    values: AtomicU64,
    received: AtomicU64,
    returned: AtomicU64,
    dropped_in_flight: AtomicU64,
    cross_cpu: AtomicU64,
    timeouts: AtomicU64,
    kills: AtomicU64,
    forced_kills: AtomicU64,
    closes: AtomicU64,
    spills: AtomicU64,
    echoes: AtomicU64,
    echo_bytes: AtomicU64,
    net_errors: AtomicU64,
    faults: AtomicU64,
    rounds: AtomicU64,
    net_rounds: AtomicU64,
    invariant_checks: AtomicU64,
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

// ---- the soak -----------------------------------------------------------------------------------------

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

/// A timeout of `count` quarters of a millisecond.
#[inline]
fn quarters(count: u8) -> Duration {
    Duration::from_micros(u64::from(count) * 250)
}

/// Counts an outcome of a blocking call; true if the tasklet was killed (it unwinds).
#[inline]
fn killed_by(soak_counters: &Counters, error: TaskletError) -> bool {
    if error == TaskletError::TimedOut {
        soak_counters.timeouts.fetch_add(1, Relaxed);
    }
    error == TaskletError::Killed
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

    /// CPU 0: draws, publishes, runs and settles the rounds.
    fn lead(&'static self) {
        let start = Deadline::now();
        let end = Deadline::after(self.config.duration);
        let mut round = 0u32;
        while !end.has_passed() && !self.failed() {
            self.elapsed_ns
                .store(Deadline::now().as_ns() - start.as_ns(), Release);
            round += 1;
            let program = Arc::new(Program::draw(
                self.config.seed,
                round,
                self.config.cpus,
                self.net.is_some(),
            ));
            self.prepare(&program);
            *self.program.lock() = Some(program.clone());
            self.arrived.store(0, Release);
            self.scripts_done.store(0, Release);
            self.published.store(u64::from(round), Release);
            self.run_round(0, &program);
            self.arrived.fetch_add(1, AcqRel);
            self.wait(
                || self.arrived.load(Acquire) == self.config.cpus,
                "the round's end",
            );
            *self.program.lock() = None;
            if self.failed() {
                break;
            }
            self.settle(&program);
        }
        self.elapsed_ns
            .store(Deadline::now().as_ns() - start.as_ns(), Release);
        self.stop.store(true, Release);
    }

    /// Every other CPU: runs each published round.
    fn follow(&'static self, cpu: usize) {
        let mut expected = 1u64;
        loop {
            self.wait(
                || self.published.load(Acquire) >= expected || self.stop.load(Acquire),
                "the next round",
            );
            if self.published.load(Acquire) < expected {
                return;
            }
            let program = self.program.lock().clone();
            let Some(program) = program else {
                self.fail(format!(
                    "CPU {cpu}: round {expected} published without a program"
                ));
            };
            self.run_round(cpu, &program);
            drop(program);
            self.arrived.fetch_add(1, AcqRel);
            expected += 1;
        }
    }

    /// Waits (sleeping, so this CPU's tasklets and the others' run) until `done`.
    fn wait(&self, done: impl Fn() -> bool, what: &str) {
        let limit = Deadline::after(HANG_LIMIT);
        while !done() {
            if limit.has_passed() {
                self.fail(format!(
                    "hung: waited {} s for {what}",
                    HANG_LIMIT.as_secs()
                ));
            }
            if self.failed() {
                return;
            }
            let _ = tasklet::sleep(Duration::from_micros(50));
        }
    }

    /// CPU 0, before publishing: the shared objects take the round's settings.
    fn prepare(&self, program: &Program) {
        self.ledger.round.store(u64::from(program.round), Release);
        for (channel, &(preference, schedule_all)) in self.channels.iter().zip(&program.preferences)
        {
            channel.open();
            channel.set_preference(preference);
            channel.set_schedule_all(schedule_all);
        }
        self.queue.open();
        self.event.clear();
    }

    /// CPU 0, once every CPU is done: nothing is left anywhere, and every value met its end.
    fn settle(&self, program: &Program) {
        let round = program.round;
        // What the queue still holds is dropped here (counted as dropped in flight).
        while let Ok(value) = self.queue.try_receive() {
            drop(value);
        }
        for (index, channel) in self.channels.iter().enumerate() {
            if channel.balance() != 0 || !channel.waiting().is_empty() {
                self.fail(format!(
                    "round {round}: channel {index} has balance {} after every tasklet ended",
                    channel.balance()
                ));
            }
        }
        if self.lock.is_locked() || self.lock.waiting() != 0 {
            self.fail(format!(
                "round {round}: the lock is still held or waited for"
            ));
        }
        if self.semaphore.available() != PERMITS || self.semaphore.waiting() != 0 {
            self.fail(format!(
                "round {round}: {} of {PERMITS} permits free after every tasklet ended",
                self.semaphore.available()
            ));
        }
        if self.event.waiting() != 0 {
            self.fail(format!("round {round}: tasklets still wait on the event"));
        }
        if self.queue.waiting_senders() != 0 || self.queue.waiting_receivers() != 0 {
            self.fail(format!("round {round}: tasklets still wait on the queue"));
        }
        let c = &self.counters;
        for (id, fate) in self.ledger.fates.iter().enumerate() {
            let created = fate.created.swap(0, AcqRel);
            let dropped = fate.dropped.swap(0, AcqRel);
            let received = fate.received.swap(0, AcqRel);
            let returned = fate.returned.swap(0, AcqRel);
            if created == 0 && dropped + received + returned == 0 {
                continue;
            }
            if created != 1 || dropped != 1 || received + returned > 1 {
                let (cpu, index, op) = (
                    id / (MAX_TASKLETS * MAX_OPS),
                    id / MAX_OPS % MAX_TASKLETS,
                    id % MAX_OPS,
                );
                self.fail(format!(
                    "round {round}: value {id} created {created}, received {received}, given \
                     back {returned}, dropped {dropped} times (a leak if dropped 0); made by \
                     {:?}, operation {op} of tasklet {index} of CPU {cpu}, in {:?}",
                    program.cpus[cpu][index][op], program.cpus[cpu][index]
                ));
            }
            c.values.fetch_add(1, Relaxed);
            c.received.fetch_add(u64::from(received), Relaxed);
            c.returned.fetch_add(u64::from(returned), Relaxed);
            if received + returned == 0 {
                c.dropped_in_flight.fetch_add(1, Relaxed);
            }
        }
        c.rounds.fetch_add(1, Relaxed);
    }

    /// One CPU's part of a round: spawns its scripts (and on CPU 0 the echo server), polls them
    /// until they end, kills them if they stall or overrun, and waits for every tasklet it made.
    fn run_round(&'static self, cpu: usize, program: &Arc<Program>) {
        let scripts = &program.cpus[cpu];
        let siblings: Arc<spin::Mutex<Vec<Tasklet>>> = Arc::new(spin::Mutex::new(Vec::new()));
        let extras: Arc<spin::Mutex<Vec<Tasklet>>> = Arc::new(spin::Mutex::new(Vec::new()));
        let handles: Vec<JoinHandle<()>> = (0..scripts.len())
            .map(|index| {
                let (program, siblings, extras) =
                    (program.clone(), siblings.clone(), extras.clone());
                Builder::new()
                    .name("soak")
                    .stack_size(self.config.stack)
                    .spawn(move || self.script(&program, cpu, index, &siblings, &extras))
                    .unwrap_or_else(|error| self.fail(format!("spawn a script: {error:?}")))
            })
            .collect();
        *siblings.lock() = handles
            .iter()
            .map(|handle| handle.tasklet().clone())
            .collect();
        let server = (cpu == 0 && program.net).then(|| {
            self.counters.net_rounds.fetch_add(1, Relaxed);
            let extras = extras.clone();
            Builder::new()
                .name("soak echo server")
                .stack_size(self.config.stack)
                .spawn(move || self.echo_server(&extras))
                .unwrap_or_else(|error| self.fail(format!("spawn the echo server: {error:?}")))
        });
        let budget = Deadline::after(self.config.round_budget);
        let mut scripts_counted = false;
        let mut last_ops = u64::MAX;
        let mut quiet_since = Deadline::now();
        loop {
            self.check_invariants();
            let scripts_alive = handles.iter().any(|handle| handle.is_alive());
            if !scripts_alive && !scripts_counted {
                scripts_counted = true;
                self.scripts_done.fetch_add(1, AcqRel);
            }
            let server_alive = server.as_ref().is_some_and(|server| server.is_alive());
            let extras_alive = extras.lock().iter().any(Tasklet::is_alive);
            if !scripts_alive && !server_alive && !extras_alive {
                break;
            }
            let ops = self.counters.ops.load(Acquire);
            if ops != last_ops {
                last_ops = ops;
                quiet_since = Deadline::now();
            }
            let stalled = Deadline::now().as_ns() - quiet_since.as_ns()
                >= self.config.stall.as_nanos() as u64;
            if stalled || budget.has_passed() || self.failed() {
                // Whatever is left waits for something that will not come: end it.
                let mut left: Vec<Tasklet> = handles
                    .iter()
                    .map(|handle| handle.tasklet().clone())
                    .collect();
                left.extend(extras.lock().iter().cloned());
                if !scripts_alive {
                    left.extend(server.iter().map(|server| server.tasklet().clone()));
                }
                for tasklet in left.iter().filter(|tasklet| tasklet.is_alive()) {
                    match tasklet.kill() {
                        Ok(()) => {
                            self.counters.kills.fetch_add(1, Relaxed);
                        }
                        Err(error) => {
                            self.fail(format!("CPU {cpu}: kill at the round's end: {error:?}"))
                        }
                    }
                }
                quiet_since = Deadline::now();
            }
            if tasklet::run_count() > 1 {
                let _ = tasklet::schedule();
            } else {
                let _ = tasklet::sleep(Duration::from_micros(100));
            }
        }
        for handle in &handles {
            match handle.result() {
                Some(Ok(())) | Some(Err(TaskletError::Killed)) => {}
                other => self.fail(format!("CPU {cpu}: a script ended with {other:?}")),
            }
        }
        if let Some(server) = server {
            match server.result() {
                Some(Ok(())) | Some(Err(TaskletError::Killed)) => {}
                other => self.fail(format!("the echo server ended with {other:?}")),
            }
        }
        self.check_invariants();
    }

    /// One scripted tasklet.
    fn script(
        &'static self,
        program: &Program,
        cpu: usize,
        index: usize,
        siblings: &spin::Mutex<Vec<Tasklet>>,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) {
        for (op_index, &op) in program.cpus[cpu][index].iter().enumerate() {
            let id = (cpu * MAX_TASKLETS + index) * MAX_OPS + op_index;
            let value = || Tracked::new(&self.ledger, program.round, id, cpu);
            let killed = self.perform(op, cpu, value, siblings, extras);
            self.counters.ops.fetch_add(1, Relaxed);
            self.check_invariants();
            if killed {
                return;
            }
        }
    }

    /// Performs one operation; true if the tasklet was killed meanwhile.
    fn perform(
        &'static self,
        op: Op,
        cpu: usize,
        value: impl FnOnce() -> Tracked,
        siblings: &spin::Mutex<Vec<Tasklet>>,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) -> bool {
        let c = &self.counters;
        match op {
            Op::Send { ch, timeout, spill } => {
                let value = value();
                let channel = &self.channels[ch];
                let result = self.spilled(spill, move || match timeout {
                    Some(ms) => channel.send_timeout(value, quarters(ms)),
                    None => channel.send(value),
                });
                self.sent(result)
            }
            Op::Receive { ch, timeout, spill } => {
                let channel = &self.channels[ch];
                let result = self.spilled(spill, || match timeout {
                    Some(ms) => channel.receive_timeout(quarters(ms)),
                    None => channel.receive(),
                });
                self.got(result, cpu)
            }
            Op::Close(ch) => {
                self.channels[ch].close();
                c.closes.fetch_add(1, Relaxed);
                false
            }
            Op::Open(ch) => {
                self.channels[ch].open();
                false
            }
            Op::QueueSend(timeout) => {
                let value = value();
                let result = match timeout {
                    Some(ms) => self.queue.send_timeout(value, quarters(ms)),
                    None => self.queue.send(value),
                };
                self.sent(result)
            }
            Op::QueueReceive(timeout) => {
                let result = match timeout {
                    Some(ms) => self.queue.receive_timeout(quarters(ms)),
                    None => self.queue.receive(),
                };
                self.got(result, cpu)
            }
            Op::QueueClose => {
                self.queue.close();
                c.closes.fetch_add(1, Relaxed);
                false
            }
            Op::QueueOpen => {
                self.queue.open();
                false
            }
            Op::Lock(yields) => match self.lock.acquire_timeout(quarters(2)) {
                Ok(guard) => {
                    if self.lock_holders.fetch_add(1, AcqRel) != 0 {
                        self.fail(String::from("two tasklets hold the lock"));
                    }
                    let killed = self.yields(yields);
                    self.lock_holders.fetch_sub(1, AcqRel);
                    drop(guard);
                    killed
                }
                Err(error) => killed_by(c, error),
            },
            Op::Semaphore(yields) => match self.semaphore.acquire_timeout(quarters(2)) {
                Ok(()) => {
                    if self.semaphore_holders.fetch_add(1, AcqRel) >= PERMITS {
                        self.fail(format!("more than {PERMITS} tasklets hold a permit"));
                    }
                    let killed = self.yields(yields);
                    self.semaphore_holders.fetch_sub(1, AcqRel);
                    self.semaphore.release();
                    killed
                }
                Err(error) => killed_by(c, error),
            },
            Op::EventWait(ms) => match self.event.wait_timeout(quarters(ms)) {
                Ok(()) => false,
                Err(error) => killed_by(c, error),
            },
            Op::EventSet => {
                self.event.set();
                false
            }
            Op::EventClear => {
                self.event.clear();
                false
            }
            Op::Schedule => tasklet::schedule()
                .err()
                .is_some_and(|error| killed_by(c, error)),
            Op::Sleep(micros) => tasklet::sleep(Duration::from_micros(u64::from(micros)))
                .err()
                .is_some_and(|error| killed_by(c, error)),
            Op::Kill(target) => {
                let target = {
                    let siblings = siblings.lock();
                    siblings[target % siblings.len()].clone()
                };
                c.kills.fetch_add(1, Relaxed);
                // The kill switches to its target: an error pending for the killer comes out.
                match target.kill() {
                    Ok(()) => false,
                    Err(error) => killed_by(c, error),
                }
            }
            Op::Courier { ch, send, yields } => self.courier(ch, send, yields, cpu, value, extras),
            Op::Echo(bytes) => self.echo(usize::from(bytes), cpu),
            Op::Fault(fault) => {
                if let Some(net) = &self.net {
                    (net.inject)(fault);
                    c.faults.fetch_add(1, Relaxed);
                }
                false
            }
        }
    }

    /// Runs `body` `depth` spilled segments deep.
    fn spilled<R>(&self, depth: u8, body: impl FnOnce() -> R) -> R {
        if depth == 0 {
            return body();
        }
        self.counters.spills.fetch_add(1, Relaxed);
        let pad = core::hint::black_box([u64::from(depth); 8]);
        let result = tasklet::spill_with(usize::MAX, self.config.segment, || {
            self.spilled(depth - 1, body)
        })
        .unwrap_or_else(|error| self.fail(format!("spill: {error:?}")));
        core::hint::black_box(pad);
        result
    }

    /// Yields `count` times; true if killed meanwhile.
    fn yields(&self, count: u8) -> bool {
        (0..count).any(|_| {
            tasklet::schedule()
                .err()
                .is_some_and(|error| killed_by(&self.counters, error))
        })
    }

    /// The end of a send: a value that comes back is checked and dropped.
    fn sent(&self, result: Result<(), SendError<Tracked>>) -> bool {
        match result {
            Ok(()) => false,
            Err(SendError { value, error }) => {
                value.returned();
                drop(value);
                killed_by(&self.counters, error)
            }
        }
    }

    /// The end of a receive: a value that arrives is checked and dropped.
    fn got(&self, result: Result<Tracked, TaskletError>, cpu: usize) -> bool {
        match result {
            Ok(value) => {
                value.received();
                if usize::from(value.origin) != cpu {
                    self.counters.cross_cpu.fetch_add(1, Relaxed);
                }
                false
            }
            Err(error) => killed_by(&self.counters, error),
        }
    }

    /// Spawns a courier that sends (or receives) one value on channel `ch`, yields `yields`
    /// times, and abandons it with `kill_forced` unless it finished: a value it holds in flight
    /// must be dropped by the kernel, once.
    fn courier(
        &'static self,
        ch: usize,
        send: bool,
        yields: u8,
        cpu: usize,
        value: impl FnOnce() -> Tracked,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) -> bool {
        let channel = &self.channels[ch];
        let builder = Builder::new()
            .name("soak courier")
            .stack_size(self.config.stack);
        let spawned = if send {
            let value = value();
            builder.spawn(move || {
                if let Err(SendError { value, .. }) = channel.send(value) {
                    value.returned();
                }
            })
        } else {
            builder.spawn(move || {
                if let Ok(value) = channel.receive() {
                    value.received();
                    if usize::from(value.origin) != cpu {
                        self.counters.cross_cpu.fetch_add(1, Relaxed);
                    }
                }
            })
        };
        let courier = match spawned {
            Ok(courier) => courier.tasklet().clone(),
            Err(error) => self.fail(format!("spawn a courier: {error:?}")),
        };
        extras.lock().push(courier.clone());
        if self.yields(yields) {
            return true;
        }
        // A courier on its way back from another CPU (waking) cannot be abandoned now; the
        // round's end kills it the ordinary way.
        match courier.kill_forced() {
            Ok(()) => {
                self.counters.forced_kills.fetch_add(1, Relaxed);
                false
            }
            Err(TaskletError::InvalidTarget) => false,
            Err(error) => self.fail(format!("kill_forced of a courier: {error:?}")),
        }
    }

    /// One echo exchange of `bytes` bytes; socket errors are expected (faults), wrong bytes are
    /// not. True if the tasklet was killed meanwhile.
    fn echo(&self, bytes: usize, cpu: usize) -> bool {
        let Some(net) = &self.net else {
            return false;
        };
        let seed = (cpu * 7 + bytes) as u8;
        let pattern = |index: usize| seed.wrapping_add((index * 13) as u8);
        let outcome = (|| -> Result<usize, NetError> {
            let mut socket = net.client.socket()?;
            socket.set_timeout(Some(SOCKET_TIMEOUT));
            socket.connect(net.address)?;
            let mut chunk = [0u8; 64];
            let mut sent = 0;
            let mut received = 0;
            while received < bytes {
                if sent < bytes {
                    let count = (bytes - sent).min(chunk.len());
                    for (offset, byte) in chunk[..count].iter_mut().enumerate() {
                        *byte = pattern(sent + offset);
                    }
                    sent += socket.send(&chunk[..count])?;
                }
                let count = socket.recv(&mut chunk)?;
                if count == 0 {
                    return Err(NetError::ConnectionAborted);
                }
                for (offset, &byte) in chunk[..count].iter().enumerate() {
                    if received + offset >= sent || byte != pattern(received + offset) {
                        self.fail(format!(
                            "echo: byte {} came back as {byte:#x}, sent {:#x} ({sent} sent)",
                            received + offset,
                            pattern(received + offset)
                        ));
                    }
                }
                received += count;
            }
            Ok(received)
        })();
        match outcome {
            Ok(received) => {
                self.counters.echoes.fetch_add(1, Relaxed);
                self.counters.echo_bytes.fetch_add(received as u64, Relaxed);
                false
            }
            Err(NetError::Interrupted) => true,
            Err(_) => {
                self.counters.net_errors.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// CPU 0 in a round with sockets: accepts connections until the round's scripts ended on
    /// every CPU, echoing each in a tasklet of its own.
    fn echo_server(&'static self, extras: &spin::Mutex<Vec<Tasklet>>) {
        let Some(net) = &self.net else {
            return;
        };
        while self.scripts_done.load(Acquire) < self.config.cpus {
            match net.listener.accept() {
                Ok((mut connection, _peer)) => {
                    connection.set_timeout(Some(SOCKET_TIMEOUT));
                    let handler = Builder::new()
                        .name("soak echo")
                        .stack_size(self.config.stack)
                        .spawn(move || self.echo_connection(&connection));
                    match handler {
                        Ok(handler) => extras.lock().push(handler.tasklet().clone()),
                        Err(error) => self.fail(format!("spawn an echo handler: {error:?}")),
                    }
                }
                Err(NetError::Interrupted) => return,
                Err(_) => {
                    if tasklet::schedule() == Err(TaskletError::Killed) {
                        return;
                    }
                }
            }
        }
    }

    fn echo_connection(&self, connection: &Socket<D>) {
        let mut buffer = [0u8; 128];
        loop {
            let count = match connection.recv(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(count) => count,
            };
            let mut sent = 0;
            while sent < count {
                match connection.send(&buffer[sent..count]) {
                    Ok(more) => sent += more,
                    Err(_) => return,
                }
            }
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
