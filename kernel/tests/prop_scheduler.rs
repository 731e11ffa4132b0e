//! Property test of one thread's scheduler: random sequences of spawn (random stack sizes, some
//! paused), schedule, kill, kill_pending, throw, remove, insert and run-now, with tasklets whose
//! bodies yield, sleep briefly, take themselves out of the ring, or return — checked step by step
//! against an exact reference model of the Stackless rules.
//!
//! After every operation the test checks that
//! - every live tasklet is in exactly one place (`is_scheduled` / `is_paused` / `is_blocked`),
//!   the one the model says, and dead ones in none;
//! - `run_count()` and `live_count()` match the model;
//! - what ran, in which order, matches the model (each body logs its steps);
//! - the operation returned what the model says;
//! - every finished tasklet's closure was dropped exactly once and no live one's was;
//! - in debug builds, the scheduler's own invariants hold (`tasklet::check_invariants`, also
//!   called by the bodies after each of their steps);
//!
//! and at the end of each case (`run()`, then killing what remains, then `run()` again) that
//! every tasklet finished with the model's result, every drop ran once, and the stack budget is
//! back where it started (no tasklet lost).
//!
//! Time is virtual: the test installs a platform whose clock only moves when the scheduler idles
//! until a deadline (or the test advances it), so sleeps are deterministic and never wait.

#[path = "prop_scheduler/no_hang.rs"]
mod no_hang;

use proptest::prelude::*;
use spindle::platform::{self, Platform};
use spindle::tasklet::{self, Builder, JoinHandle, TaskletError, Thrown, MIN_STACK_BYTES};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

// ---- a platform with a virtual clock ----------------------------------------------------------

struct VirtualTime;

static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    static NOW: Cell<u64> = const { Cell::new(0) };
    static CPU: usize = NEXT_CPU.fetch_add(1, Ordering::Relaxed);
}

impl Platform for VirtualTime {
    fn console_write(&self, bytes: &[u8]) {
        use std::io::Write;
        let _ = std::io::stdout().write_all(bytes);
    }

    fn now_ns(&self) -> u64 {
        NOW.with(Cell::get)
    }

    fn cpu_index(&self) -> usize {
        CPU.with(|cpu| *cpu)
    }

    fn cpu_count(&self) -> usize {
        4096
    }

    /// Idling until a deadline moves this thread's clock there; without one it returns at once
    /// (spurious returns are allowed).
    fn idle(&self, deadline_ns: Option<u64>) {
        if let Some(deadline) = deadline_ns {
            NOW.with(|now| now.set(now.get().max(deadline)));
        }
    }

    fn wake_cpu(&self, _cpu: usize) {}

    fn exit(&self, success: bool) -> ! {
        std::process::exit(if success { 0 } else { 1 })
    }
}

fn install_virtual_time() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        platform::install(&VirtualTime).expect("no platform installed before this test's")
    });
}

fn advance_clock(nanos: u64) {
    NOW.with(|now| now.set(now.get() + nanos));
}

/// Debug builds: the scheduler's own invariants (ring, timers, counts, attention bits).
fn check_invariants() {
    if cfg!(debug_assertions) {
        tasklet::check_invariants();
    }
}

// ---- programs -------------------------------------------------------------------------------------

/// A step of a tasklet's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `tasklet::schedule()?`
    Yield,
    /// `tasklet::sleep(n µs)?`
    Sleep(u8),
    /// `tasklet::schedule_remove()?`
    Remove,
}

/// An operation of the main tasklet. Targets are indices into the tasklets spawned so far
/// (modulo their number).
#[derive(Debug, Clone)]
enum Action {
    Spawn {
        stack: usize,
        paused: bool,
        body: Vec<Step>,
    },
    Schedule,
    Kill(usize),
    KillPending(usize),
    Throw(usize, bool),
    Remove(usize),
    Insert(usize),
    RunNow(usize),
    /// Advance the virtual clock by n µs.
    Advance(u8),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![4 => Just(Step::Yield), 2 => (0u8..4).prop_map(Step::Sleep), 1 => Just(Step::Remove)]
}

fn action_strategy() -> impl Strategy<Value = Action> {
    let target = 0usize..64;
    prop_oneof![
        4 => (SMALLEST_STACK..=SMALLEST_STACK + 56 * 1024, proptest::bool::weighted(0.25), proptest::collection::vec(step_strategy(), 0..5))
            .prop_map(|(stack, paused, body)| Action::Spawn { stack, paused, body }),
        4 => Just(Action::Schedule),
        1 => target.clone().prop_map(Action::Kill),
        1 => target.clone().prop_map(Action::KillPending),
        1 => (target.clone(), any::<bool>()).prop_map(|(index, pending)| Action::Throw(index, pending)),
        1 => target.clone().prop_map(Action::Remove),
        1 => target.clone().prop_map(Action::Insert),
        1 => target.prop_map(Action::RunNow),
        1 => (0u8..4).prop_map(Action::Advance),
    ]
}

/// Smallest stack the random programs give a tasklet: `MIN_STACK_BYTES` plus the "few KiB
/// more" its documentation asks of unoptimised builds for tasklets that block. (On PowerPC64
/// debug builds `MIN_STACK_BYTES` leaves 3,200 usable bytes, while a body that is just
/// `tasklet::sleep(..)` peaks at about 3,550 and these bodies, which also log their steps, at
/// about 5 KiB; on x86_64 about 3 KiB.)
const SMALLEST_STACK: usize = MIN_STACK_BYTES
    + if cfg!(debug_assertions) {
        8 * 1024
    } else {
        2 * 1024
    };

const THROWN: Thrown = Thrown::new(42, "thrown by the property test");
const END: u32 = 0xff;

// ---- the reference model ------------------------------------------------------------------------

/// Where a tasklet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Scheduled,
    Paused,
    Sleeping,
    Dead,
}

/// How a tasklet ended, as `JoinHandle::result` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The body returned `Ok(id)`.
    Returned,
    /// A scheduling call returned an error and the body returned it with `?`.
    Unwound(TaskletError),
    /// Killed before it ever ran: its closure was dropped unrun.
    Unrun(TaskletError),
}

struct ModelTask {
    body: Vec<Step>,
    place: Place,
    started: bool,
    /// Index of the step it is at (suspended in, once started).
    step: usize,
    pending: Option<TaskletError>,
    ended: Option<Ended>,
}

const MAIN: usize = usize::MAX;

/// The scheduler of one thread, by the rules of `kernel/src/tasklet` (Stackless's).
struct Model {
    /// The run ring, head first; the running tasklet is the head while it is in the ring.
    ring: VecDeque<usize>,
    tasks: Vec<ModelTask>,
    current: usize,
    now: u64,
    /// Armed timers in firing order (deadline, then arming order).
    timers: Vec<(u64, usize)>,
    log: Vec<u32>,
}

fn log_entry(task: usize, step: u32) -> u32 {
    (task as u32) << 8 | step
}

impl Model {
    fn new() -> Self {
        Self {
            ring: VecDeque::from([MAIN]),
            tasks: Vec::new(),
            current: MAIN,
            now: 0,
            timers: Vec::new(),
            log: Vec::new(),
        }
    }

    fn live(&self) -> usize {
        1 + self
            .tasks
            .iter()
            .filter(|task| task.place != Place::Dead)
            .count()
    }

    fn ring_remove(&mut self, who: usize) {
        let index = self
            .ring
            .iter()
            .position(|&x| x == who)
            .expect("removed from the ring while in it");
        self.ring.remove(index);
    }

    /// `ring_insert(Placement::Tail)`: just before the head.
    fn insert_tail(&mut self, who: usize) {
        self.ring.push_back(who);
        self.tasks[who].place = Place::Scheduled;
    }

    fn switch_to(&mut self, next: usize) {
        let index = self
            .ring
            .iter()
            .position(|&x| x == next)
            .expect("switch to a ring member");
        self.ring.rotate_left(index);
        self.current = next;
    }

    fn fire_timers(&mut self) {
        while let Some(&(deadline, who)) = self.timers.first() {
            if deadline > self.now {
                return;
            }
            self.timers.remove(0);
            if self.tasks[who].place == Place::Sleeping {
                self.insert_tail(who);
            }
        }
    }

    fn disarm(&mut self, who: usize) {
        self.timers.retain(|&(_, armed)| armed != who);
    }

    /// `find_next` after the current tasklet left the ring: the head (main never leaves it in
    /// these programs; the `no_hang` module covers a main tasklet that pauses itself).
    fn switch_to_head(&mut self) {
        let next = *self.ring.front().expect("main is always in the ring");
        self.switch_to(next);
    }

    /// Runs tasklets until the main tasklet is switched to again.
    fn run_tasklets(&mut self) {
        while self.current != MAIN {
            let who = self.current;
            let task = &mut self.tasks[who];
            if task.started {
                // The tail of the scheduling call it was suspended in: take_pending(me)?
                if let Some(error) = task.pending.take() {
                    self.end(who, Ended::Unwound(error));
                    continue;
                }
                task.step += 1;
            } else {
                task.started = true;
                task.step = 0;
                // An error raised before it ever ran ends it as it starts, unrun.
                if let Some(error) = task.pending.take() {
                    self.end(who, Ended::Unrun(error));
                    continue;
                }
            }
            self.body(who);
        }
    }

    /// Runs the body of the current tasklet `who` from its current step until it switches away.
    fn body(&mut self, who: usize) {
        loop {
            let step = self.tasks[who].step;
            let Some(&action) = self.tasks[who].body.get(step) else {
                self.log.push(log_entry(who, END));
                return self.end(who, Ended::Returned);
            };
            self.log.push(log_entry(who, step as u32));
            // Every scheduling call starts with take_pending(me)?.
            if let Some(error) = self.tasks[who].pending.take() {
                return self.end(who, Ended::Unwound(error));
            }
            match action {
                Step::Yield => {
                    // yield_now: expired timers join the ring (at its tail) first.
                    self.fire_timers();
                    if self.ring.len() > 1 {
                        let next = self.ring[1];
                        return self.switch_to(next);
                    }
                    self.tasks[who].step += 1;
                }
                Step::Sleep(micros) => {
                    let deadline = self.now.saturating_add(u64::from(micros) * 1000);
                    let at = self
                        .timers
                        .iter()
                        .position(|&(armed, _)| armed > deadline)
                        .unwrap_or(self.timers.len());
                    self.timers.insert(at, (deadline, who));
                    self.tasks[who].place = Place::Sleeping;
                    self.ring_remove(who);
                    return self.switch_to_head();
                }
                Step::Remove => {
                    // Never the last runnable with main blocked: main is in the ring or floats.
                    self.ring_remove(who);
                    self.tasks[who].place = Place::Paused;
                    return self.switch_to_head();
                }
            }
        }
    }

    /// The current tasklet finished: `exit_current`.
    fn end(&mut self, who: usize, ended: Ended) {
        self.ring_remove(who);
        self.tasks[who].place = Place::Dead;
        self.tasks[who].ended = Some(ended);
        self.switch_to_head();
    }

    fn spawn(&mut self, body: Vec<Step>, paused: bool) {
        let who = self.tasks.len();
        self.tasks.push(ModelTask {
            body,
            place: Place::Paused,
            started: false,
            step: 0,
            pending: None,
            ended: None,
        });
        if !paused {
            self.insert_tail(who);
        }
    }

    /// `schedule()` from main.
    fn schedule(&mut self) {
        self.fire_timers();
        if self.ring.len() > 1 {
            let next = self.ring[1];
            self.switch_to(next);
            self.run_tasklets();
        }
    }

    /// `Tasklet::run` from main: a paused target goes to the end of the queue (just before
    /// main, which runs right after it), a scheduled one is switched to where it stands.
    fn run_now(&mut self, who: usize) -> Result<(), TaskletError> {
        match self.tasks[who].place {
            Place::Paused => self.insert_tail(who),
            Place::Scheduled => {}
            Place::Sleeping => return Err(TaskletError::InvalidTarget),
            Place::Dead => return Err(TaskletError::Dead),
        }
        self.switch_to(who);
        self.run_tasklets();
        Ok(())
    }

    /// `Tasklet::raise` (kill, kill_pending, throw) from main.
    fn raise(
        &mut self,
        who: usize,
        error: TaskletError,
        pending: bool,
    ) -> Result<(), TaskletError> {
        match self.tasks[who].place {
            Place::Dead if error == TaskletError::Killed => return Ok(()),
            Place::Dead => return Err(TaskletError::Dead),
            Place::Sleeping => {
                self.tasks[who].pending = Some(error);
                self.disarm(who);
                self.insert_tail(who);
            }
            Place::Paused => {
                self.tasks[who].pending = Some(error);
                self.insert_tail(who);
            }
            Place::Scheduled => self.tasks[who].pending = Some(error),
        }
        if !pending && self.tasks[who].place == Place::Scheduled {
            return self.run_now(who);
        }
        Ok(())
    }

    fn remove(&mut self, who: usize) -> Result<(), TaskletError> {
        match self.tasks[who].place {
            Place::Scheduled => {
                self.ring_remove(who);
                self.tasks[who].place = Place::Paused;
                Ok(())
            }
            Place::Paused | Place::Dead => Ok(()),
            Place::Sleeping => Err(TaskletError::InvalidTarget),
        }
    }

    fn insert(&mut self, who: usize) -> Result<(), TaskletError> {
        match self.tasks[who].place {
            Place::Paused => {
                self.insert_tail(who);
                Ok(())
            }
            Place::Scheduled => Ok(()),
            Place::Sleeping => Err(TaskletError::InvalidTarget),
            Place::Dead => Err(TaskletError::Dead),
        }
    }

    /// `tasklet::run()`: until main is alone in the ring and no timer is armed, idling until the
    /// next deadline when only sleepers are left. (Main floats meanwhile, as Stackless's does,
    /// but stays in the ring: its turns just yield again.)
    fn run(&mut self) {
        loop {
            if self.ring.len() <= 1 {
                let Some(&(deadline, _)) = self.timers.first() else {
                    return;
                };
                self.now = self.now.max(deadline);
                self.fire_timers();
                continue;
            }
            self.schedule();
        }
    }
}

// ---- the real scheduler side ------------------------------------------------------------------------

/// An append-only log the tasklet bodies write without locks or allocation (small stacks).
struct Log {
    entries: Box<[AtomicU32]>,
    len: AtomicUsize,
}

impl Log {
    fn new(capacity: usize) -> Self {
        Self {
            entries: (0..capacity).map(|_| AtomicU32::new(0)).collect(),
            len: AtomicUsize::new(0),
        }
    }

    fn push(&self, entry: u32) {
        let index = self.len.fetch_add(1, Ordering::Relaxed);
        self.entries[index].store(entry, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<u32> {
        let len = self.len.load(Ordering::Relaxed);
        self.entries[..len]
            .iter()
            .map(|entry| entry.load(Ordering::Relaxed))
            .collect()
    }
}

/// Counts its drops in a per-tasklet counter.
struct DropGuard {
    drops: Arc<[AtomicU32]>,
    index: usize,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.drops[self.index].fetch_add(1, Ordering::Relaxed);
    }
}

type Handle = JoinHandle<Result<u32, TaskletError>>;

const MAX_TASKLETS: usize = 128;

fn spawn_real(
    index: usize,
    stack: usize,
    paused: bool,
    body: Vec<Step>,
    log: &Arc<Log>,
    drops: &Arc<[AtomicU32]>,
) -> Handle {
    let log = log.clone();
    let guard = DropGuard {
        drops: drops.clone(),
        index,
    };
    let builder = Builder::new().name("prop").stack_size(stack);
    let builder = if paused { builder.paused() } else { builder };
    builder
        .spawn(move || -> Result<u32, TaskletError> {
            let _guard = guard;
            for (step, action) in body.iter().enumerate() {
                log.push(log_entry(index, step as u32));
                match *action {
                    Step::Yield => tasklet::schedule()?,
                    Step::Sleep(micros) => {
                        tasklet::sleep(Duration::from_micros(u64::from(micros)))?
                    }
                    Step::Remove => tasklet::schedule_remove()?,
                }
                check_invariants();
            }
            log.push(log_entry(index, END));
            Ok(index as u32)
        })
        .expect("spawn within the stack budget")
}

fn place_of(handle: &Handle) -> Place {
    // A blocked tasklet counts as scheduled too (Stackless's `scheduled`).
    assert!(!handle.is_blocked() || handle.is_scheduled());
    let places = [
        handle.is_scheduled() && !handle.is_blocked(),
        handle.is_paused(),
        handle.is_blocked(),
    ];
    let count = places.iter().filter(|&&place| place).count();
    if !handle.is_alive() {
        assert_eq!(
            count, 0,
            "a dead tasklet is scheduled, paused or blocked: {handle:?}"
        );
        return Place::Dead;
    }
    assert_eq!(
        count, 1,
        "a live tasklet must be in exactly one place: {handle:?} {places:?}"
    );
    match places {
        [true, _, _] => Place::Scheduled,
        [_, true, _] => Place::Paused,
        _ => Place::Sleeping,
    }
}

fn check_state(model: &Model, handles: &[Handle], log: &Log, drops: &[AtomicU32], after: &Action) {
    check_invariants();
    assert_eq!(
        log.snapshot(),
        model.log,
        "execution order differs from the model after {after:?}"
    );
    for (index, (handle, task)) in handles.iter().zip(&model.tasks).enumerate() {
        assert_eq!(
            place_of(handle),
            task.place,
            "tasklet {index} after {after:?}"
        );
        let dropped = drops[index].load(Ordering::Relaxed);
        let expected = u32::from(task.place == Place::Dead);
        assert_eq!(dropped, expected, "tasklet {index}: closure dropped {dropped} times, expected {expected}, after {after:?}");
    }
    assert_eq!(
        tasklet::run_count(),
        model.ring.len(),
        "run_count after {after:?}"
    );
    assert_eq!(
        tasklet::live_count(),
        model.live(),
        "live_count after {after:?}"
    );
    assert!(tasklet::main().is_current() && tasklet::main().is_scheduled());
}

/// Runs one program on this thread's (fresh) scheduler, checking it against the model.
fn run_program(actions: &[Action]) {
    install_virtual_time();
    let log = Arc::new(Log::new(64 * 1024));
    let drops: Arc<[AtomicU32]> = (0..MAX_TASKLETS).map(|_| AtomicU32::new(0)).collect();
    let budget_before = tasklet::stack_budget().1;
    let mut model = Model::new();
    let mut handles: Vec<Handle> = Vec::new();
    let pick =
        |handles: &[Handle], index: usize| (!handles.is_empty()).then(|| index % handles.len());

    for action in actions {
        match action {
            Action::Spawn {
                stack,
                paused,
                body,
            } => {
                if handles.len() == MAX_TASKLETS {
                    continue;
                }
                handles.push(spawn_real(
                    handles.len(),
                    *stack,
                    *paused,
                    body.clone(),
                    &log,
                    &drops,
                ));
                model.spawn(body.clone(), *paused);
            }
            Action::Schedule => {
                tasklet::schedule().expect("main has nothing pending");
                model.schedule();
            }
            Action::Advance(micros) => {
                advance_clock(u64::from(*micros) * 1000);
                model.now += u64::from(*micros) * 1000;
            }
            &Action::Kill(index)
            | &Action::KillPending(index)
            | &Action::Throw(index, _)
            | &Action::Remove(index)
            | &Action::Insert(index)
            | &Action::RunNow(index) => {
                let Some(index) = pick(&handles, index) else {
                    continue;
                };
                let handle = &handles[index];
                let (real, expected) = match *action {
                    Action::Kill(_) => (
                        handle.kill(),
                        model.raise(index, TaskletError::Killed, false),
                    ),
                    Action::KillPending(_) => (
                        handle.kill_pending(),
                        model.raise(index, TaskletError::Killed, true),
                    ),
                    Action::Throw(_, pending) => (
                        handle.throw(THROWN, pending),
                        model.raise(index, TaskletError::Thrown(THROWN), pending),
                    ),
                    Action::Remove(_) => (handle.remove(), model.remove(index)),
                    Action::Insert(_) => (handle.insert(), model.insert(index)),
                    Action::RunNow(_) => (handle.run(), model.run_now(index)),
                    _ => unreachable!(),
                };
                assert_eq!(real, expected, "{action:?} on tasklet {index} returned");
            }
        }
        assert_eq!(tasklet::current(), tasklet::main());
        check_invariants();
        check_state(&model, &handles, &log, &drops, action);
    }

    // The end: run everything, kill what remains (paused tasklets), run again.
    tasklet::run().expect("run from main");
    model.run();
    check_state(&model, &handles, &log, &drops, &Action::Schedule);
    for (index, handle) in handles.iter().enumerate() {
        if handle.is_alive() {
            assert_eq!(
                handle.kill(),
                model.raise(index, TaskletError::Killed, false)
            );
        }
    }
    tasklet::run().expect("run from main");
    model.run();
    check_state(&model, &handles, &log, &drops, &Action::Kill(usize::MAX));
    assert_eq!(tasklet::live_count(), 1, "every tasklet finished");
    for (index, (handle, task)) in handles.iter().zip(&model.tasks).enumerate() {
        let expected = match task.ended.expect("the model finished every tasklet") {
            Ended::Returned => Ok(Ok(index as u32)),
            Ended::Unwound(error) => Ok(Err(error)),
            Ended::Unrun(error) => Err(error),
        };
        assert_eq!(handle.result(), Some(expected), "result of tasklet {index}");
    }
    assert!(
        drops
            .iter()
            .take(handles.len())
            .all(|count| count.load(Ordering::Relaxed) == 1),
        "every closure dropped once"
    );
    assert_eq!(
        tasklet::stack_budget().1,
        budget_before,
        "every stack went back to the budget"
    );
}

/// Each case runs on a thread of its own: a fresh scheduler and clock, whatever an earlier
/// (failing) case left behind.
fn run_on_fresh_thread(actions: Vec<Action>) {
    let outcome = std::thread::Builder::new()
        .name("prop_scheduler case".into())
        .spawn(move || run_program(&actions))
        .unwrap()
        .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `default` cases, or as many as `PROPTEST_CASES` says when it is set (proptest's default
/// config reads it, but a count written here would override it).
fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_keep_the_scheduler_invariants(actions in proptest::collection::vec(action_strategy(), 1..64)) {
        run_on_fresh_thread(actions);
    }
}

/// A fixed program touching every operation, so a plain run covers them even if the random
/// cases happen not to.
#[test]
fn a_fixed_program_covering_every_operation() {
    use Action::{Advance, Insert, Kill, KillPending, RunNow, Schedule, Spawn, Throw};
    use Step::{Sleep, Yield};
    let spawn = |paused, body: &[Step]| Spawn {
        stack: SMALLEST_STACK,
        paused,
        body: body.to_vec(),
    };
    run_on_fresh_thread(vec![
        spawn(false, &[Yield, Sleep(2), Yield]),
        spawn(true, &[Step::Remove, Yield]),
        spawn(false, &[Sleep(0), Step::Remove, Yield]),
        Schedule,
        RunNow(1),
        Schedule,
        Throw(0, true),
        spawn(false, &[Yield, Yield, Yield]),
        Insert(1),
        KillPending(3),
        Action::Remove(3),
        Insert(3),
        Schedule,
        Advance(3),
        Schedule,
        spawn(false, &[]),
        Kill(4),
        spawn(true, &[Yield]),
        Kill(5),
        Schedule,
        Insert(2),
        Schedule,
    ]);
}
