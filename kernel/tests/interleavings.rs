//! Exhaustive small interleavings of the cross-CPU paths of the scheduler and channels, by a
//! hand-written explicit-state model checker.
//!
//! Each CPU runs a small program of channel operations, kills and joins on its tasklets. The
//! kernel code those operations execute is modelled as a state machine whose steps are the
//! kernel's own steps, in the kernel's order, at the granularity of shared-memory accesses:
//!
//! - every access another CPU can observe without a lock (a tasklet's `state`, `in_flight`,
//!   `inbox_count`, the platform's wake-up flag) is a step of its own;
//! - a critical section whose data is only ever touched under its lock (a channel's waiters and
//!   balance and the value slots of its waiters; an inbox's list; a join's waiter list) is one
//!   step, which is equivalent to taking the lock, doing the work and releasing it, because
//!   nobody can observe the middle;
//! - the group lock is held across two steps in `idle_unless_deadlocked` (the `inbox_count` and
//!   `in_flight` loads happen under it but both are written without it), so it is modelled as a
//!   real lock there;
//! - code that touches only the running CPU's own data (its ring, its timers) is folded into the
//!   nearest step.
//!
//! The checker enumerates every interleaving of the CPUs' steps (and of timer expiries) by a
//! breadth-first search over the reachable states, and checks in every state:
//! - every live tasklet is in exactly one place (run ring, inbox, a wait queue, or in the hands
//!   of a waker between leaving the wait queue and entering the inbox), consistent with its
//!   state — except the one benign overlap the kernel allows by design (below);
//! - channel balances, inbox counts, the group's `stuck` count and `in_flight` count all match
//!   what they count;
//! - no value is ever duplicated; a cancel (kill / timeout / deadlock) and a wake never both
//!   take the same waiter;
//! - deadlock is declared only when no wake-up can still arrive: every other live tasklet in the
//!   group is blocked in a wait queue, nothing is in flight or runnable, and no timer is armed;
//!
//! and over whole runs:
//! - in every final state every value sent was received exactly once or returned to its sender
//!   (or is still held by a sender blocked forever), and each scenario's own expectations hold;
//! - with a platform whose `idle(None)` returns only on `wake_cpu`, every run ends with every
//!   CPU finished: no CPU idles for good with work in its inbox, and no deadlock goes undeclared
//!   (no reliance on spurious idle returns);
//! - with spurious idle returns (the host's 50 ms bounded idle, the board's tick), every run can
//!   still finish from every reachable state (no livelock).
//!
//! Not modelled: same-CPU rendezvous (no cross-CPU path), sleeps, `yield_now` and
//! `wait_for_timers` (they drain the inbox like `find_next` but never count a CPU stuck), the
//! watchdog, `external` work (always 0 here) and more CPUs than three.
//!
//! The overlap allowed by design: a tasklet blocking on CPU A enqueues itself on the channel
//! under the channel lock, releases it, and only then (`Scheduler::block_current`) unlinks itself
//! from A's run ring. A waker on CPU B can take it off the channel and push it into A's inbox in
//! between, so for a moment it is both in the ring and in the inbox. That is safe because ring
//! and inbox use separate links (`Tcb::next/prev` vs `Tcb::inbox_next`), and A cannot drain its
//! inbox in that window (it is in the middle of the blocking call; it drains in `find_next`,
//! after the unlink); the checker asserts exactly that window and nothing more.
//!
//! Mutation tests at the end break the model in the ways the real protocol avoids (non-sticky
//! wake-ups, a deadlock check ignoring `in_flight` or `stuck`, the check and the stuck count
//! under separate lock acquisitions, a leave that wakes nobody, a cancel that ignores whether
//! the waiter is still queued) and check that the checker catches each, and that it catches an
//! in-flight accounting that leaks (a home that leaves its group with a wake-up on its way
//! keeps the group from ever declaring deadlock).

use std::collections::{HashMap, VecDeque};

// ---- small fixed-size sequences (hashable, canonical) -------------------------------------------

const CAP: usize = 4;
const NIL: u8 = u8::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Seq {
    items: [u8; CAP],
    len: u8,
}

impl core::fmt::Debug for Seq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Seq {
    const EMPTY: Self = Self {
        items: [NIL; CAP],
        len: 0,
    };

    fn as_slice(&self) -> &[u8] {
        &self.items[..self.len as usize]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn contains(&self, item: u8) -> bool {
        self.as_slice().contains(&item)
    }

    fn first(&self) -> Option<u8> {
        self.as_slice().first().copied()
    }

    fn push(&mut self, item: u8) {
        self.insert(self.len(), item);
    }

    fn insert(&mut self, index: usize, item: u8) {
        assert!(self.len() < CAP, "model sequence overflow");
        let len = self.len();
        self.items.copy_within(index..len, index + 1);
        self.items[index] = item;
        self.len += 1;
    }

    fn remove(&mut self, item: u8) -> bool {
        let Some(index) = self.as_slice().iter().position(|&x| x == item) else {
            return false;
        };
        let len = self.len();
        self.items.copy_within(index + 1..len, index);
        self.items[len - 1] = NIL;
        self.len -= 1;
        true
    }

    /// `heapless::Vec::swap_remove` of `item`'s position.
    fn remove_swap(&mut self, item: u8) {
        let Some(index) = self.as_slice().iter().position(|&x| x == item) else {
            return;
        };
        let last = self.len() - 1;
        self.items[index] = self.items[last];
        self.items[last] = NIL;
        self.len -= 1;
    }

    fn pop_front(&mut self) -> Option<u8> {
        let first = self.first()?;
        self.remove(first);
        Some(first)
    }

    /// Rotates the (circular) ring so that `item` is at its head.
    fn rotate_to(&mut self, item: u8) {
        let index = self
            .as_slice()
            .iter()
            .position(|&x| x == item)
            .expect("rotate to a ring member");
        let len = self.len();
        self.items[..len].rotate_left(index);
    }
}

// ---- the model's state ----------------------------------------------------------------------------

/// `tcb::State`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum St {
    Runnable,
    Blocked,
    Waking,
    Dead,
}

/// The `TaskletError`s the modelled paths produce.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Error {
    Killed,
    Deadlock,
    TimedOut,
}

/// What a tasklet's operation returned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Outcome {
    Sent,
    SendFailed(u8, Error),
    Received(u8),
    ReceiveFailed(Error),
    KillDone,
    KillFailed(Error),
    Joined,
    JoinFailed(Error),
}

/// An operation of a tasklet's program.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// `Channel::send(value)` on channel `.0`.
    Send(u8, u8),
    /// `Channel::send_timeout`.
    SendTimeout(u8, u8),
    /// `Channel::receive`.
    Receive(u8),
    /// `Channel::receive_timeout`.
    ReceiveTimeout(u8),
    /// `Tasklet::kill` of tasklet `.0` (same CPU).
    Kill(u8),
    /// `JoinHandle::join` of tasklet `.0` (same CPU).
    Join(u8),
}

/// `Tcb::blocker`: what a blocked tasklet waits in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Blocker {
    None,
    Channel(u8),
    Join(u8),
}

/// A tasklet's timer: armed, or armed and past its deadline (not yet fired).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Timer {
    Off,
    Armed,
    Expired,
}

/// Where a suspended tasklet continues when switched to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Resume {
    /// `tasklet_entry`: its first operation.
    Start,
    /// The tail of `block_current` and the claim of the blocking operation.
    AfterBlock,
    /// The tail of `Tasklet::raise` after `run()` switched to the target.
    AfterRun,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Task {
    cpu: u8,
    main: bool,
    /// Index of the operation it is at.
    op: u8,
    state: St,
    /// In a channel's wait queue or a join's waiter list (`Tcb::queued`).
    queued: bool,
    direction: i8,
    /// `Tcb::slot`: the value in flight.
    slot: Option<u8>,
    pending: Option<Error>,
    blocker: Blocker,
    timer: Timer,
    resume: Resume,
    started: bool,
    /// This wait was ended by a waker taking it out of its queue.
    woken: bool,
    /// This wait was ended by a cancel (kill, timeout, deadlock).
    cancelled: bool,
    /// Tasklets joining this one (`Tcb::joiners`).
    joiners: Seq,
    outcomes: [Option<Outcome>; 3],
}

/// Steps of `Scheduler::wake` + `Scheduler::inbox_push` on the waker's CPU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum WakeStep {
    /// Only with [`Mutation::UncarriedInFlight`] (the old order): `direction = 0`, then
    /// `group.in_flight += 1` before anything else.
    InFlight,
    /// `Scheduler::wake`: `direction = 0`; `inbox_push`: `set_state(Waking)`.
    State,
    /// `inbox_push`: under the inbox lock, `group.in_flight += 1` (the home's group now),
    /// append and `inbox_count += 1`.
    Inbox,
    /// `inbox_push`: `platform().wake_cpu(home)`.
    WakeCpu,
}

/// Steps of `Scheduler::drain_inbox`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Drain {
    /// `if inbox_count == 0 { return }`.
    Check,
    /// Under the inbox lock: detach the list, `group.in_flight -= inbox_count` (the CPU runs,
    /// so they stop being in flight).
    Detach,
    /// Per detached tasklet: `ring_insert(Tail)` (old order: `inbox_count -= 1` first).
    Insert(Seq, u8),
    /// `inbox_count -= detached` (old order: `group.in_flight -= drained`).
    Account(u8),
}

/// Steps of `Scheduler::wake_with_error`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Cancel {
    /// `if tcb.state() != Blocked { return false }`.
    Read,
    /// `(blocker.cancel)(..)` under the queue's lock, then (if it succeeded) blocker, direction,
    /// pending error, disarm and `ring_insert(Tail)` on the home CPU.
    Cancel,
}

/// Steps of `Scheduler::find_next` (its loop is in `wait_for_next`) and the
/// `idle_unless_deadlocked` it calls.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Find {
    /// `if let Some(next) = ring_head_tcb() { return next }`.
    Top,
    Drain(Drain),
    AfterDrain,
    /// `fire_timers`: take the next expired timer, disarm it, read the tasklet's state.
    Timers,
    /// `fire_timers`: `wake_with_error(tcb, TimedOut)`.
    TimerCancel(u8, Cancel),
    AfterTimers,
    /// `can_be_victim = victim.state() == Blocked`; the deadline is the next timer's.
    Victim,
    /// `idle_unless_deadlocked`, no deadline, in a group: take the group lock, read
    /// `inbox_count == 0` (the first part of `quiet`).
    CheckInbox {
        can_be_victim: bool,
    },
    /// Still under the group lock: `in_flight == 0 && external == 0`, then either `return true`
    /// (deadlock) or `stuck += 1` and `stuck_cpus.push(me)`; unlock.
    CheckInFlight {
        can_be_victim: bool,
    },
    /// Only with [`Mutation::SplitCheckAndCount`]: `stuck += 1` under a second lock acquisition.
    CountStuck,
    /// `wake_with_error(victim, Deadlock)`, then the loop goes on.
    VictimCancel(Cancel),
    /// `if inbox_count == 0 { platform().idle(deadline) }`.
    IdleCheck {
        stuck: bool,
        timers: bool,
    },
    /// Entering `platform().idle(..)`: returns at once if a wake-up is pending (the host's
    /// `wakeups[me]` flag, the board's `wake_pending`), consuming it.
    IdlePlatform {
        stuck: bool,
        timers: bool,
    },
    /// Asleep in `platform().idle(..)`: returns on a wake-up, its deadline, or spuriously (a tick).
    IdleWait {
        stuck: bool,
        timers: bool,
    },
    /// `stuck -= 1` and `stuck_cpus.swap_remove(me)` under the group lock.
    IdleLeave {
        stuck: bool,
    },
}

impl Find {
    /// The idle of a group member that counted itself stuck (without timers: a CPU with a
    /// deadline idles until it and skips the deadlock check).
    const IDLE_COUNTED_STUCK: Find = Find::IdleCheck {
        stuck: true,
        timers: false,
    };
}

/// Steps of `Tasklet::raise` (kill, not pending).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Raise {
    /// `match target.state()`.
    Read,
    /// `wake_with_error(target, error)`; `pending = error` if it failed.
    Cancel(Cancel),
    /// `if !pending && target.state() == Runnable { return self.run() }`: `switch_in`.
    Run,
}

/// What a CPU is executing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Pc {
    /// The current tasklet starts its next operation (or exits when it has none).
    Op,
    /// The cross-CPU `wake` of `target` after a rendezvous; then the operation returns `outcome`.
    Wake {
        target: u8,
        outcome: Outcome,
        step: WakeStep,
    },
    /// `block_current`: blocker, timer, `ring_remove(me)`.
    BlockPrep {
        timeout: bool,
        blocker: Blocker,
    },
    /// `find_next`, from `block_current` (`exit == false`, the current tasklet is the victim)
    /// or from `exit_current` (the CPU's main tasklet is the victim).
    Find {
        exit: bool,
        step: Find,
    },
    /// `block_current`'s tail and the claim of the value slot.
    AfterBlock,
    Raise {
        target: u8,
        step: Raise,
    },
    /// `raise` after its `run()` returned: `take_pending(me)`.
    AfterRun,
    /// The main tasklet's program ended: the thread leaves the group (`spawn_cpu_thread` calls
    /// `leave_group`): `group.set(null)`.
    Finish,
    /// `CpuGroup::leave`: under the group lock `members -= 1` and copy `stuck_cpus`.
    Leave,
    /// `CpuGroup::leave`: `wake_cpu` each CPU that was stuck.
    WakeStuck(Seq),
    Done,
}

impl Pc {
    /// `leave`'s next step: wake the CPUs in `stuck`, if any are left.
    fn wake_stuck_or_done(stuck: Seq) -> Pc {
        if stuck.is_empty() {
            Pc::Done
        } else {
            Pc::WakeStuck(stuck)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Cpu {
    current: u8,
    main: u8,
    /// The run ring, head first (`ring_head` is index 0).
    ring: Seq,
    inbox: Seq,
    inbox_count: u8,
    /// The platform's wake-up flag (`wake_cpu` sets it; `idle` consumes it).
    wake: bool,
    in_group: bool,
    pc: Pc,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Chan {
    balance: i8,
    waiters: Seq,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Group {
    members: u8,
    stuck: u8,
    in_flight: u8,
    /// `stuck_cpus`, in the kernel's order.
    stuck_cpus: Seq,
    /// Holder of the group lock across the two steps of `idle_unless_deadlocked` (NIL: free).
    lock: u8,
}

const MAX_CPUS: usize = 3;
const MAX_TASKS: usize = 4;
const MAX_CHANS: usize = 3;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct World {
    cpus: [Cpu; MAX_CPUS],
    tasks: [Task; MAX_TASKS],
    chans: [Chan; MAX_CHANS],
    group: Group,
}

// ---- scenarios and configuration -------------------------------------------------------------

/// A tasklet of a scenario.
struct TaskSpec {
    main: bool,
    ops: &'static [Op],
}

/// Per CPU, its tasklets in run-ring order (the first one runs first).
struct Scenario {
    name: &'static str,
    cpus: &'static [&'static [TaskSpec]],
    /// Checked in every final state where every CPU finished.
    expect: fn(&World) -> Result<(), String>,
    /// A CPU may finish (its thread return) while one of its tasklets still waits: a value
    /// handed to that tasklet afterwards is lost with the thread, and not counted as lost here.
    orphans: bool,
}

/// Deliberate breakages of the model, to show the checker catches them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mutation {
    /// `wake_cpu` only ends an idle already in progress (the real one is sticky).
    NonStickyWake,
    /// `deadlocked` ignores `in_flight`.
    DeadlockIgnoresInFlight,
    /// `deadlocked` ignores `stuck` and `members`.
    DeadlockIgnoresStuck,
    /// `cancel_wait` succeeds even when a waker already took the tasklet out of the queue.
    CancelIgnoresQueue,
    /// The deadlock check and counting oneself stuck take the group lock separately (the real
    /// protocol does both under one acquisition), so CPUs blocking at once can all see
    /// `stuck + 1 < members`.
    SplitCheckAndCount,
    /// `CpuGroup::leave` does not wake the stuck members.
    LeaveWithoutWake,
    /// An in-flight accounting that leaks when a home leaves its group (the real one is checked
    /// by `in_flight_follows_a_home_that_leaves_the_group`): `inbox_push` charges `in_flight` to
    /// the home's group before setting `Waking`, outside the inbox lock; `drain_inbox` discharges
    /// it after inserting; `leave_group` does not carry pending wake-ups' count.
    UncarriedInFlight,
}

#[derive(Clone, Copy)]
struct Config {
    /// `platform().idle` may return spuriously at any time (the host's bounded idle, a tick).
    ticks: bool,
    mutation: Option<Mutation>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Actor {
    Cpu(u8),
    /// A tasklet's timer deadline passes.
    Expire(u8),
}

fn spec(scenario: &Scenario, task: u8) -> &'static TaskSpec {
    let mut index = 0;
    for cpu in scenario.cpus {
        for spec in cpu.iter() {
            if index == task {
                return spec;
            }
            index += 1;
        }
    }
    unreachable!("no tasklet {task}")
}

fn initial(scenario: &Scenario) -> World {
    let idle_task = Task {
        cpu: NIL,
        main: false,
        op: 0,
        state: St::Dead,
        queued: false,
        direction: 0,
        slot: None,
        pending: None,
        blocker: Blocker::None,
        timer: Timer::Off,
        resume: Resume::Start,
        started: false,
        woken: false,
        cancelled: false,
        joiners: Seq::EMPTY,
        outcomes: [None; 3],
    };
    let idle_cpu = Cpu {
        current: NIL,
        main: NIL,
        ring: Seq::EMPTY,
        inbox: Seq::EMPTY,
        inbox_count: 0,
        wake: false,
        in_group: false,
        pc: Pc::Done,
    };
    let mut world = World {
        cpus: [idle_cpu; MAX_CPUS],
        tasks: [idle_task; MAX_TASKS],
        chans: [Chan {
            balance: 0,
            waiters: Seq::EMPTY,
        }; MAX_CHANS],
        group: Group {
            members: 0,
            stuck: 0,
            in_flight: 0,
            stuck_cpus: Seq::EMPTY,
            lock: NIL,
        },
    };
    let mut next = 0u8;
    for (cpu_index, tasks) in scenario.cpus.iter().enumerate() {
        let cpu = &mut world.cpus[cpu_index];
        for spec in tasks.iter() {
            assert!(spec.ops.len() <= 3);
            world.tasks[next as usize] = Task {
                cpu: cpu_index as u8,
                main: spec.main,
                state: St::Runnable,
                ..idle_task
            };
            cpu.ring.push(next);
            if spec.main {
                cpu.main = next;
            }
            next += 1;
        }
        assert_ne!(cpu.main, NIL, "every CPU has a main tasklet");
        cpu.current = cpu.ring.first().unwrap();
        // Every modelled CPU joined the group before any tasklet ran (`join_group` /
        // `spawn_cpu_thread`'s reservation).
        cpu.in_group = true;
        cpu.pc = Pc::Op;
        world.tasks[cpu.current as usize].started = true;
        world.group.members += 1;
    }
    world
}

// ---- the steps ----------------------------------------------------------------------------------

type StepResult = Result<bool, String>;

struct Model<'a> {
    scenario: &'a Scenario,
    config: Config,
}

impl Model<'_> {
    fn ops(&self, task: u8) -> &'static [Op] {
        spec(self.scenario, task).ops
    }

    fn mutated(&self, mutation: Mutation) -> bool {
        self.config.mutation == Some(mutation)
    }

    /// Runs one step of `actor`; `Ok(false)` when it cannot step now.
    fn step(&self, w: &mut World, actor: Actor) -> StepResult {
        match actor {
            Actor::Expire(task) => {
                let task = &mut w.tasks[task as usize];
                if task.timer != Timer::Armed {
                    return Ok(false);
                }
                task.timer = Timer::Expired;
                Ok(true)
            }
            Actor::Cpu(cpu) => self.cpu_step(w, cpu),
        }
    }

    fn cpu_step(&self, w: &mut World, c: u8) -> StepResult {
        let cpu = w.cpus[c as usize];
        match cpu.pc {
            Pc::Done => Ok(false),
            Pc::Op => self.op(w, c),
            Pc::Wake {
                target,
                outcome,
                step,
            } => self.wake(w, c, target, outcome, step),
            Pc::BlockPrep { timeout, blocker } => {
                // block_current: blocker, arm_timer, ring_remove(me), find_next(Some(me)).
                let me = cpu.current;
                let task = &mut w.tasks[me as usize];
                task.blocker = blocker;
                if timeout {
                    task.timer = Timer::Armed;
                }
                ring_remove(w, c, me);
                w.cpus[c as usize].pc = Pc::Find {
                    exit: false,
                    step: Find::Top,
                };
                Ok(true)
            }
            Pc::Find { exit, step } => self.find(w, c, exit, step),
            Pc::AfterBlock => self.after_block(w, c),
            Pc::Raise { target, step } => self.raise(w, c, target, step),
            Pc::AfterRun => {
                let me = cpu.current;
                let outcome = match w.tasks[me as usize].pending.take() {
                    Some(error) => Outcome::KillFailed(error),
                    None => Outcome::KillDone,
                };
                finish_op(w, c, outcome);
                Ok(true)
            }
            Pc::Finish => {
                // The thread's body returned; leave_group = move_to_group(None): under the
                // inbox lock, wake-ups queued here take their count out of the group, and
                // `self.group.set(null)`.
                let me = cpu.current;
                ring_remove(w, c, me);
                w.tasks[me as usize].state = St::Dead;
                if !self.old_in_flight() {
                    w.group.in_flight -= cpu.inbox_count;
                }
                let cpu = &mut w.cpus[c as usize];
                cpu.in_group = false;
                cpu.pc = Pc::Leave;
                Ok(true)
            }
            Pc::Leave => {
                if w.group.lock != NIL {
                    return Ok(false);
                }
                w.group.members -= 1;
                let stuck = if self.mutated(Mutation::LeaveWithoutWake) {
                    Seq::EMPTY
                } else {
                    w.group.stuck_cpus
                };
                w.cpus[c as usize].pc = Pc::wake_stuck_or_done(stuck);
                Ok(true)
            }
            Pc::WakeStuck(mut stuck) => {
                let cpu = stuck.pop_front().expect("a CPU to wake");
                self.wake_cpu(w, cpu);
                w.cpus[c as usize].pc = Pc::wake_stuck_or_done(stuck);
                Ok(true)
            }
        }
    }

    /// Starts the current tasklet's next operation (`Channel::transfer_send`/`receive_until`
    /// up to their rendezvous or enqueue, `raise`, `join`), or exits it.
    fn op(&self, w: &mut World, c: u8) -> StepResult {
        let me = w.cpus[c as usize].current;
        let task = w.tasks[me as usize];
        let ops = self.ops(me);
        let Some(&op) = ops.get(task.op as usize) else {
            if task.main {
                w.cpus[c as usize].pc = Pc::Finish;
            } else {
                // exit_current: ring_remove(me), retire(me), find_next(None).
                ring_remove(w, c, me);
                retire(w, c, me)?;
                w.cpus[c as usize].pc = Pc::Find {
                    exit: true,
                    step: Find::Top,
                };
            }
            return Ok(true);
        };
        match op {
            Op::Send(ch, value) | Op::SendTimeout(ch, value) => {
                // take_pending(me)?
                if let Some(error) = w.tasks[me as usize].pending.take() {
                    finish_op(w, c, Outcome::SendFailed(value, error));
                    return Ok(true);
                }
                // Under the channel lock.
                if w.chans[ch as usize].balance < 0 {
                    let receiver = dequeue(w, ch, -1)?;
                    let partner = &mut w.tasks[receiver as usize];
                    if partner.slot.is_some() {
                        return Err(format!("value slot of receiver {receiver} overwritten"));
                    }
                    partner.slot = Some(value);
                    self.start_wake(w, c, receiver, Outcome::Sent)
                } else {
                    w.tasks[me as usize].slot = Some(value);
                    enqueue(w, c, ch, 1, matches!(op, Op::SendTimeout(..)));
                    Ok(true)
                }
            }
            Op::Receive(ch) | Op::ReceiveTimeout(ch) => {
                if let Some(error) = w.tasks[me as usize].pending.take() {
                    finish_op(w, c, Outcome::ReceiveFailed(error));
                    return Ok(true);
                }
                if w.chans[ch as usize].balance > 0 {
                    let sender = dequeue(w, ch, 1)?;
                    let value = w.tasks[sender as usize]
                        .slot
                        .take()
                        .ok_or_else(|| format!("waiting sender {sender} had no value"))?;
                    self.start_wake(w, c, sender, Outcome::Received(value))
                } else {
                    enqueue(w, c, ch, -1, matches!(op, Op::ReceiveTimeout(..)));
                    Ok(true)
                }
            }
            Op::Kill(target) => {
                w.cpus[c as usize].pc = Pc::Raise {
                    target,
                    step: Raise::Read,
                };
                Ok(true)
            }
            Op::Join(target) => {
                // join's loop: take_pending(me)?, then under the target's joiners lock.
                if let Some(error) = w.tasks[me as usize].pending.take() {
                    finish_op(w, c, Outcome::JoinFailed(error));
                    return Ok(true);
                }
                if w.tasks[target as usize].state == St::Dead {
                    finish_op(w, c, Outcome::Joined);
                    return Ok(true);
                }
                let task = &mut w.tasks[me as usize];
                task.state = St::Blocked;
                task.queued = true;
                task.woken = false;
                task.cancelled = false;
                w.tasks[target as usize].joiners.push(me);
                w.cpus[c as usize].pc = Pc::BlockPrep {
                    timeout: false,
                    blocker: Blocker::Join(target),
                };
                Ok(true)
            }
        }
    }

    fn start_wake(&self, w: &mut World, c: u8, target: u8, outcome: Outcome) -> StepResult {
        if w.tasks[target as usize].cpu == c {
            panic!(
                "scenario {}: same-CPU rendezvous is not modelled",
                self.scenario.name
            );
        }
        // drop(state); wake(partner, placement): a partner on another CPU goes to its inbox and
        // the caller continues.
        let step = if self.old_in_flight() {
            WakeStep::InFlight
        } else {
            WakeStep::State
        };
        w.cpus[c as usize].pc = Pc::Wake {
            target,
            outcome,
            step,
        };
        Ok(true)
    }

    fn wake(
        &self,
        w: &mut World,
        c: u8,
        target: u8,
        outcome: Outcome,
        step: WakeStep,
    ) -> StepResult {
        let home = w.tasks[target as usize].cpu;
        let next = match step {
            WakeStep::InFlight => {
                w.tasks[target as usize].direction = 0;
                if w.cpus[home as usize].in_group {
                    w.group.in_flight += 1;
                }
                Some(WakeStep::State)
            }
            WakeStep::State => {
                w.tasks[target as usize].direction = 0;
                w.tasks[target as usize].state = St::Waking;
                Some(WakeStep::Inbox)
            }
            WakeStep::Inbox => {
                if !self.old_in_flight() && w.cpus[home as usize].in_group {
                    w.group.in_flight += 1;
                }
                let cpu = &mut w.cpus[home as usize];
                if cpu.inbox.contains(target) {
                    return Err(format!("tasklet {target} pushed into an inbox twice"));
                }
                cpu.inbox.push(target);
                cpu.inbox_count += 1;
                Some(WakeStep::WakeCpu)
            }
            WakeStep::WakeCpu => {
                self.wake_cpu(w, home);
                None
            }
        };
        match next {
            Some(step) => {
                w.cpus[c as usize].pc = Pc::Wake {
                    target,
                    outcome,
                    step,
                }
            }
            None => finish_op(w, c, outcome),
        }
        Ok(true)
    }

    fn old_in_flight(&self) -> bool {
        self.mutated(Mutation::UncarriedInFlight)
    }

    /// `platform().wake_cpu(cpu)`: sticky (an idle that has not started yet returns at once).
    fn wake_cpu(&self, w: &mut World, cpu: u8) {
        let cpu = &mut w.cpus[cpu as usize];
        let idling = matches!(
            cpu.pc,
            Pc::Find {
                step: Find::IdleWait { .. },
                ..
            }
        );
        if idling || !self.mutated(Mutation::NonStickyWake) {
            cpu.wake = true;
        }
    }

    fn find(&self, w: &mut World, c: u8, exit: bool, step: Find) -> StepResult {
        let cpu = w.cpus[c as usize];
        let victim = if exit { cpu.main } else { cpu.current };
        let set = |w: &mut World, step: Find| w.cpus[c as usize].pc = Pc::Find { exit, step };
        match step {
            Find::Top | Find::AfterDrain | Find::AfterTimers if !cpu.ring.is_empty() => {
                let next = cpu.ring.first().unwrap();
                self.return_from_find(w, c, exit, next)?;
            }
            Find::Top => set(w, Find::Drain(Drain::Check)),
            Find::Drain(drain) => match drain_step(w, c, drain, self.old_in_flight())? {
                Some(drain) => set(w, Find::Drain(drain)),
                None => set(w, Find::AfterDrain),
            },
            Find::AfterDrain => set(w, Find::Timers),
            Find::Timers => {
                // fire_timers(now): the next expired timer of this CPU.
                let expired = (0..MAX_TASKS as u8).find(|&t| {
                    w.tasks[t as usize].cpu == c && w.tasks[t as usize].timer == Timer::Expired
                });
                match expired {
                    None => set(w, Find::AfterTimers),
                    Some(t) => {
                        let task = &mut w.tasks[t as usize];
                        task.timer = Timer::Off;
                        if task.state != St::Blocked {
                            set(w, Find::Timers);
                        } else if task.blocker != Blocker::None {
                            set(w, Find::TimerCancel(t, Cancel::Read));
                        } else {
                            unreachable!("sleep is not modelled");
                        }
                    }
                }
            }
            Find::TimerCancel(t, cancel) => {
                match self.cancel_step(w, c, t, Error::TimedOut, cancel)? {
                    Ok(_) => set(w, Find::Timers),
                    Err(cancel) => set(w, Find::TimerCancel(t, cancel)),
                }
            }
            Find::AfterTimers => set(w, Find::Victim),
            Find::Victim => {
                let can_be_victim = w.tasks[victim as usize].state == St::Blocked;
                let timers = has_timers(w, c);
                if timers {
                    // A deadline: idle until it, not counted stuck.
                    set(
                        w,
                        Find::IdleCheck {
                            stuck: false,
                            timers,
                        },
                    );
                } else if !cpu.in_group {
                    set(
                        w,
                        if can_be_victim {
                            Find::VictimCancel(Cancel::Read)
                        } else {
                            Find::IdleCheck {
                                stuck: false,
                                timers,
                            }
                        },
                    );
                } else {
                    set(w, Find::CheckInbox { can_be_victim });
                }
            }
            Find::CheckInbox { can_be_victim } => {
                if w.group.lock != NIL {
                    return Ok(false);
                }
                w.group.lock = c;
                if cpu.inbox_count == 0 {
                    set(w, Find::CheckInFlight { can_be_victim });
                } else {
                    // Not quiet: count itself stuck and idle (the idle will not wait).
                    self.count_stuck(w, c);
                    w.group.lock = NIL;
                    set(w, Find::IDLE_COUNTED_STUCK);
                }
            }
            Find::CheckInFlight { can_be_victim } => {
                let quiet =
                    w.group.in_flight == 0 || self.mutated(Mutation::DeadlockIgnoresInFlight);
                let all_stuck = w.group.stuck + 1 >= w.group.members
                    || self.mutated(Mutation::DeadlockIgnoresStuck);
                if quiet && can_be_victim && all_stuck {
                    w.group.lock = NIL;
                    set(w, Find::VictimCancel(Cancel::Read));
                } else if self.mutated(Mutation::SplitCheckAndCount) {
                    w.group.lock = NIL;
                    set(w, Find::CountStuck);
                } else {
                    self.count_stuck(w, c);
                    w.group.lock = NIL;
                    set(w, Find::IDLE_COUNTED_STUCK);
                }
            }
            Find::CountStuck => {
                if w.group.lock != NIL {
                    return Ok(false);
                }
                self.count_stuck(w, c);
                set(w, Find::IDLE_COUNTED_STUCK);
            }
            Find::VictimCancel(cancel) => {
                match self.cancel_step(w, c, victim, Error::Deadlock, cancel)? {
                    // The loop goes on, whether or not it was cancelled.
                    Ok(_) => set(w, Find::Top),
                    Err(cancel) => set(w, Find::VictimCancel(cancel)),
                }
            }
            Find::IdleCheck { stuck, timers } => {
                if cpu.inbox_count == 0 {
                    set(w, Find::IdlePlatform { stuck, timers });
                } else {
                    set(w, Find::IdleLeave { stuck });
                }
            }
            Find::IdlePlatform { stuck, timers } => {
                if cpu.wake {
                    w.cpus[c as usize].wake = false;
                    set(w, Find::IdleLeave { stuck });
                } else {
                    set(w, Find::IdleWait { stuck, timers });
                }
            }
            Find::IdleWait { stuck, timers } => {
                let deadline_passed = timers
                    && (0..MAX_TASKS)
                        .any(|t| w.tasks[t].cpu == c && w.tasks[t].timer == Timer::Expired);
                if !(cpu.wake || self.config.ticks || deadline_passed) {
                    return Ok(false);
                }
                w.cpus[c as usize].wake = false;
                set(w, Find::IdleLeave { stuck });
            }
            Find::IdleLeave { stuck } => {
                if stuck && cpu.in_group {
                    if w.group.lock != NIL {
                        return Ok(false);
                    }
                    w.group.stuck -= 1;
                    w.group.stuck_cpus.remove_swap(c);
                }
                set(w, Find::Top);
            }
        }
        Ok(true)
    }

    /// `state.stuck += 1; stuck_cpus.push(me)` (the caller holds the group lock).
    fn count_stuck(&self, w: &mut World, c: u8) {
        w.group.stuck += 1;
        w.group.stuck_cpus.push(c);
    }

    /// find_next returned `next`: `block_current` switches to it (or goes on itself), and
    /// `exit_current` switches to it for good.
    fn return_from_find(&self, w: &mut World, c: u8, exit: bool, next: u8) -> Result<(), String> {
        let me = w.cpus[c as usize].current;
        if !exit && next == me {
            // block_current: `set_ring_head(me)`.
            w.cpus[c as usize].ring.rotate_to(me);
            w.cpus[c as usize].pc = Pc::AfterBlock;
            return Ok(());
        }
        if !exit {
            w.tasks[me as usize].resume = Resume::AfterBlock;
        }
        switch_to(w, c, next)
    }

    /// `wake_with_error(t, error)`: `Ok(Ok(cancelled))` when done, `Ok(Err(next step))` to go on.
    fn cancel_step(
        &self,
        w: &mut World,
        c: u8,
        t: u8,
        error: Error,
        step: Cancel,
    ) -> Result<Result<bool, Cancel>, String> {
        match step {
            Cancel::Read => {
                if w.tasks[t as usize].state != St::Blocked {
                    return Ok(Ok(false));
                }
                Ok(Err(Cancel::Cancel))
            }
            Cancel::Cancel => {
                let task = w.tasks[t as usize];
                // The blocker's cancel, under the queue's lock.
                let cancelled = match task.blocker {
                    Blocker::Channel(ch) => {
                        let chan = &mut w.chans[ch as usize];
                        let removed = chan.waiters.remove(t);
                        if removed {
                            chan.balance -= task.direction;
                        }
                        removed || self.mutated(Mutation::CancelIgnoresQueue)
                    }
                    Blocker::Join(target) => w.tasks[target as usize].joiners.remove(t),
                    Blocker::None => true,
                };
                if cancelled {
                    if task.woken {
                        return Err(format!(
                            "tasklet {t}: a cancel ({error:?}) and a wake both succeeded"
                        ));
                    }
                    if error == Error::Deadlock {
                        deadlock_justified(w, c, t)?;
                    }
                    let task = &mut w.tasks[t as usize];
                    task.queued = false;
                    task.cancelled = true;
                    task.blocker = Blocker::None;
                    task.direction = 0;
                    task.pending = Some(error);
                    task.timer = Timer::Off;
                    ring_insert(w, c, t, false);
                }
                Ok(Ok(cancelled))
            }
        }
    }

    /// Resumed after blocking: `block_current`'s tail (blocker, disarm), then the operation
    /// claims its slot before `finish_resume`.
    fn after_block(&self, w: &mut World, c: u8) -> StepResult {
        let me = w.cpus[c as usize].current;
        let op = self.ops(me)[w.tasks[me as usize].op as usize];
        let task = &mut w.tasks[me as usize];
        task.blocker = Blocker::None;
        task.timer = Timer::Off;
        let explain = |error: Option<Error>| match error {
            Some(error) => Ok(error),
            None => Err(format!(
                "tasklet {me} woken with neither a value nor an error"
            )),
        };
        match op {
            Op::Send(_, value) | Op::SendTimeout(_, value) => {
                let leftover = task.slot.take();
                let error = task.pending.take();
                let outcome = match leftover {
                    None => {
                        task.pending = error;
                        Outcome::Sent
                    }
                    Some(back) => {
                        if back != value {
                            return Err(format!("sender {me} got back {back}, sent {value}"));
                        }
                        Outcome::SendFailed(back, explain(error)?)
                    }
                };
                finish_op(w, c, outcome);
            }
            Op::Receive(_) | Op::ReceiveTimeout(_) => {
                let received = task.slot.take();
                let error = task.pending.take();
                let outcome = match received {
                    Some(value) => {
                        task.pending = error;
                        Outcome::Received(value)
                    }
                    None => Outcome::ReceiveFailed(explain(error)?),
                };
                finish_op(w, c, outcome);
            }
            Op::Join(_) => {
                // join loops: take_pending, then the target's state again.
                w.cpus[c as usize].pc = Pc::Op;
            }
            Op::Kill(_) => unreachable!("kill does not block"),
        }
        Ok(true)
    }

    fn raise(&self, w: &mut World, c: u8, target: u8, step: Raise) -> StepResult {
        let me = w.cpus[c as usize].current;
        let error = Error::Killed;
        let set = |w: &mut World, step: Raise| w.cpus[c as usize].pc = Pc::Raise { target, step };
        match step {
            Raise::Read => {
                let task = w.tasks[target as usize];
                match task.state {
                    St::Dead => finish_op(w, c, Outcome::KillDone),
                    _ if target == me => {
                        w.tasks[me as usize].pending = Some(error);
                        finish_op(w, c, Outcome::KillDone);
                    }
                    St::Runnable if !task.started => {
                        if task.state == St::Runnable {
                            ring_remove(w, c, target);
                        }
                        retire(w, c, target)?;
                        finish_op(w, c, Outcome::KillDone);
                    }
                    St::Blocked => set(w, Raise::Cancel(Cancel::Read)),
                    St::Runnable | St::Waking => {
                        w.tasks[target as usize].pending = Some(error);
                        set(w, Raise::Run);
                    }
                }
            }
            Raise::Cancel(cancel) => match self.cancel_step(w, c, target, error, cancel)? {
                Ok(cancelled) => {
                    if !cancelled {
                        w.tasks[target as usize].pending = Some(error);
                    }
                    set(w, Raise::Run);
                }
                Err(cancel) => set(w, Raise::Cancel(cancel)),
            },
            Raise::Run => {
                if w.tasks[target as usize].state != St::Runnable {
                    finish_op(w, c, Outcome::KillDone);
                    return Ok(true);
                }
                // self.run() = switch_in(false): take_pending(me)?, move the target right after
                // the caller, switch to it; the caller stays in the ring.
                if let Some(error) = w.tasks[me as usize].pending.take() {
                    finish_op(w, c, Outcome::KillFailed(error));
                    return Ok(true);
                }
                ring_remove(w, c, target);
                ring_insert(w, c, target, true);
                w.tasks[me as usize].resume = Resume::AfterRun;
                switch_to(w, c, target)?;
            }
        }
        Ok(true)
    }
}

fn finish_op(w: &mut World, c: u8, outcome: Outcome) {
    let me = w.cpus[c as usize].current;
    let task = &mut w.tasks[me as usize];
    task.outcomes[task.op as usize] = Some(outcome);
    task.op += 1;
    w.cpus[c as usize].pc = Pc::Op;
}

/// `enqueue_current` under the channel lock (`direction` 1 for a sender, -1 for a receiver);
/// `block_current` comes next.
fn enqueue(w: &mut World, c: u8, ch: u8, direction: i8, timeout: bool) {
    let me = w.cpus[c as usize].current;
    let task = &mut w.tasks[me as usize];
    task.direction = direction;
    task.state = St::Blocked;
    task.queued = true;
    task.woken = false;
    task.cancelled = false;
    let chan = &mut w.chans[ch as usize];
    chan.waiters.push(me);
    chan.balance += direction;
    w.cpus[c as usize].pc = Pc::BlockPrep {
        timeout,
        blocker: Blocker::Channel(ch),
    };
}

/// A rendezvous under the channel lock: takes the first waiter off `ch` (waiting in
/// `direction`, 1 for senders, -1 for receivers) and marks it woken.
fn dequeue(w: &mut World, ch: u8, direction: i8) -> Result<u8, String> {
    let chan = &mut w.chans[ch as usize];
    let waiter = chan
        .waiters
        .pop_front()
        .expect("a nonzero balance means tasklets wait");
    chan.balance -= direction;
    let task = &mut w.tasks[waiter as usize];
    task.queued = false;
    task.woken = true;
    if task.cancelled {
        let partner = if direction > 0 { "receiver" } else { "sender" };
        return Err(format!(
            "tasklet {waiter} woken by a {partner} after its wait was cancelled"
        ));
    }
    Ok(waiter)
}

/// `Scheduler::ring_insert`: Tail (before the head) or Next (after the head).
fn ring_insert(w: &mut World, c: u8, t: u8, next: bool) {
    w.tasks[t as usize].state = St::Runnable;
    let ring = &mut w.cpus[c as usize].ring;
    assert!(
        !ring.contains(t),
        "tasklet {t} inserted into its ring twice"
    );
    if next && !ring.is_empty() {
        ring.insert(1, t);
    } else {
        ring.push(t);
    }
}

/// `Scheduler::ring_remove`: the head moves to the successor.
fn ring_remove(w: &mut World, c: u8, t: u8) {
    let removed = w.cpus[c as usize].ring.remove(t);
    assert!(removed, "tasklet {t} removed from a ring it is not in");
}

/// `switch_to` (and `exit_current`'s switch): the target becomes the ring head and current,
/// and continues where it was suspended.
fn switch_to(w: &mut World, c: u8, next: u8) -> Result<(), String> {
    if w.tasks[next as usize].state != St::Runnable {
        return Err(format!(
            "switch to tasklet {next}, which is {:?}",
            w.tasks[next as usize].state
        ));
    }
    let cpu = &mut w.cpus[c as usize];
    cpu.ring.rotate_to(next);
    cpu.current = next;
    let task = &mut w.tasks[next as usize];
    cpu.pc = match task.resume {
        Resume::Start => {
            task.started = true;
            Pc::Op
        }
        Resume::AfterBlock => Pc::AfterBlock,
        Resume::AfterRun => Pc::AfterRun,
    };
    Ok(())
}

/// `Scheduler::retire`: dead, timer disarmed, joiners woken (same CPU: into the ring).
fn retire(w: &mut World, c: u8, t: u8) -> Result<(), String> {
    let task = &mut w.tasks[t as usize];
    task.state = St::Dead;
    task.timer = Timer::Off;
    let mut joiners = core::mem::replace(&mut task.joiners, Seq::EMPTY);
    while let Some(joiner) = joiners.pop_front() {
        let waiter = &mut w.tasks[joiner as usize];
        if waiter.cpu != c {
            panic!("cross-CPU joins are not modelled");
        }
        if waiter.cancelled {
            return Err(format!(
                "joiner {joiner} woken after its wait was cancelled"
            ));
        }
        waiter.queued = false;
        waiter.woken = true;
        waiter.direction = 0;
        ring_insert(w, c, joiner, false);
    }
    Ok(())
}

fn has_timers(w: &World, c: u8) -> bool {
    w.tasks
        .iter()
        .any(|task| task.cpu == c && task.timer != Timer::Off)
}

/// One step of `drain_inbox`; `None` when it returned. `old`: the order before the in-flight
/// fix ([`Mutation::UncarriedInFlight`]).
fn drain_step(w: &mut World, c: u8, step: Drain, old: bool) -> Result<Option<Drain>, String> {
    let cpu = &mut w.cpus[c as usize];
    let discharge = |group: &mut Group, count: u8| {
        group.in_flight = group
            .in_flight
            .checked_sub(count)
            .ok_or("group in_flight went below zero")?;
        Ok::<(), String>(())
    };
    Ok(match step {
        Drain::Check => (cpu.inbox_count != 0).then_some(Drain::Detach),
        Drain::Detach => {
            let list = core::mem::replace(&mut cpu.inbox, Seq::EMPTY);
            if !old && cpu.in_group {
                discharge(&mut w.group, cpu.inbox_count)?;
            }
            Some(Drain::Insert(list, 0))
        }
        Drain::Insert(mut list, drained) => {
            let t = list
                .pop_front()
                .expect("a detached inbox list is not empty");
            if w.tasks[t as usize].state != St::Waking {
                return Err(format!(
                    "drained tasklet {t}, which is {:?}",
                    w.tasks[t as usize].state
                ));
            }
            if old {
                cpu.inbox_count -= 1;
            }
            ring_insert(w, c, t, false);
            Some(if list.is_empty() {
                Drain::Account(drained + 1)
            } else {
                Drain::Insert(list, drained + 1)
            })
        }
        Drain::Account(drained) => {
            if !old {
                cpu.inbox_count -= drained;
            } else if cpu.in_group {
                discharge(&mut w.group, drained)?;
            }
            None
        }
    })
}

/// The specification of deadlock: the victim's wait may be ended with `Deadlock` only if no
/// wake-up can still arrive — every other live tasklet of the group waits in a queue, none is
/// runnable or on its way to a CPU, and no timer is armed.
fn deadlock_justified(w: &World, c: u8, victim: u8) -> Result<(), String> {
    for (index, task) in w.tasks.iter().enumerate() {
        let index = index as u8;
        if index == victim || task.state == St::Dead || !w.cpus[task.cpu as usize].in_group {
            continue;
        }
        let parked = task.state == St::Blocked && task.queued && task.timer == Timer::Off;
        if !parked {
            return Err(format!(
                "cpu {c} declared deadlock on tasklet {victim} while tasklet {index} (cpu {}) is {:?} \
                 (queued {}, timer {:?}) and could still wake it",
                task.cpu, task.state, task.queued, task.timer
            ));
        }
    }
    for (index, cpu) in w.cpus.iter().enumerate() {
        if cpu.in_group && (!cpu.inbox.is_empty() || cpu.inbox_count != 0) {
            return Err(format!(
                "cpu {c} declared deadlock while cpu {index} has inbox work"
            ));
        }
        if matches!(cpu.pc, Pc::Wake { .. }) {
            return Err(format!(
                "cpu {c} declared deadlock while cpu {index} is waking a tasklet"
            ));
        }
    }
    if has_timers(w, c) {
        return Err(format!("cpu {c} declared deadlock with a timer armed"));
    }
    Ok(())
}

// ---- invariants -----------------------------------------------------------------------------------

/// `old`: the in-flight accounting before its fix ([`Mutation::UncarriedInFlight`]).
fn check_invariants(w: &World, old: bool) -> Result<(), String> {
    for (index, task) in w.tasks.iter().enumerate() {
        let t = index as u8;
        if task.state == St::Dead {
            continue;
        }
        let home = &w.cpus[task.cpu as usize];
        let in_ring = w.cpus.iter().filter(|cpu| cpu.ring.contains(t)).count();
        if in_ring > 0 && !home.ring.contains(t) {
            return Err(format!("tasklet {t} in another CPU's ring"));
        }
        let in_inbox = w.cpus.iter().filter(|cpu| cpu.inbox.contains(t)).count();
        let detached = w
            .cpus
            .iter()
            .filter(|cpu| matches!(cpu.pc, Pc::Find { step: Find::Drain(Drain::Insert(list, _)), .. } if list.contains(t)))
            .count();
        let queued = w
            .chans
            .iter()
            .filter(|chan| chan.waiters.contains(t))
            .count()
            + w.tasks
                .iter()
                .filter(|other| other.state != St::Dead && other.joiners.contains(t))
                .count();
        let transit = |steps: &[WakeStep]| {
            w.cpus
                .iter()
                .filter(|cpu| matches!(cpu.pc, Pc::Wake { target, step, .. } if target == t && steps.contains(&step)))
                .count()
        };
        let before_waking = transit(&[WakeStep::InFlight, WakeStep::State]);
        let waking_in_hand = transit(&[WakeStep::Inbox]);
        let places = in_ring + in_inbox + detached + queued + before_waking + waking_in_hand;
        if task.queued != (queued == 1) {
            return Err(format!(
                "tasklet {t}: queued flag {} but in {queued} queues",
                task.queued
            ));
        }
        let ok = if home.current == t && matches!(home.pc, Pc::BlockPrep { .. }) {
            // Enqueued and unlocked, not yet unlinked from the ring: the one place where a
            // tasklet is in two places (ring + wait queue, or ring + a waker's hands / inbox).
            in_ring == 1 && places == 2
        } else {
            match task.state {
                St::Runnable => in_ring == 1 && places == 1,
                St::Waking => places == 1 && (in_inbox + detached + waking_in_hand) == 1,
                St::Blocked => places == 1 && (queued + before_waking) == 1,
                St::Dead => true,
            }
        };
        if !ok {
            return Err(format!(
                "tasklet {t} is {:?} but in ring {in_ring}, inbox {in_inbox}, detached {detached}, \
                 queues {queued}, waker's hands {}",
                task.state,
                before_waking + waking_in_hand
            ));
        }
    }
    for (index, chan) in w.chans.iter().enumerate() {
        let sum: i8 = chan
            .waiters
            .as_slice()
            .iter()
            .map(|&t| w.tasks[t as usize].direction)
            .sum();
        let one_way = chan
            .waiters
            .as_slice()
            .iter()
            .all(|&t| w.tasks[t as usize].direction == chan.balance.signum());
        if sum != chan.balance || !one_way {
            return Err(format!(
                "channel {index}: balance {} but waiters {:?}",
                chan.balance, chan.waiters
            ));
        }
    }
    let mut stuck = Vec::new();
    let mut in_flight = 0;
    for (index, cpu) in w.cpus.iter().enumerate() {
        // Tasklets drained from the inbox and not yet subtracted from `inbox_count`.
        let mut uncounted = 0;
        if let Pc::Find { step, .. } = cpu.pc {
            match step {
                Find::Drain(Drain::Insert(list, drained)) => {
                    uncounted = list.len() + if old { 0 } else { drained as usize };
                }
                Find::Drain(Drain::Account(drained)) if !old => uncounted = drained as usize,
                Find::IdleCheck { stuck: true, .. }
                | Find::IdlePlatform { stuck: true, .. }
                | Find::IdleWait { stuck: true, .. }
                | Find::IdleLeave { stuck: true } => stuck.push(index as u8),
                _ => {}
            }
        }
        if cpu.inbox_count as usize != cpu.inbox.len() + uncounted {
            return Err(format!(
                "cpu {index}: inbox_count {} but {} queued",
                cpu.inbox_count,
                cpu.inbox.len() + uncounted
            ));
        }
        // In flight: exactly what waits in the inboxes of the group's members.
        if cpu.in_group {
            in_flight += cpu.inbox.len();
        }
    }
    let mut stuck_cpus = w.group.stuck_cpus.as_slice().to_vec();
    stuck_cpus.sort_unstable();
    if w.group.stuck as usize != stuck.len() || stuck_cpus != stuck {
        return Err(format!(
            "group stuck {} (cpus {:?}) but CPUs {stuck:?} idle without a deadline",
            w.group.stuck, w.group.stuck_cpus
        ));
    }
    // (The old accounting also counted wake-ups from before `Waking` to after the drain; it is
    // left to the run checks, which find where it goes wrong.)
    if !old && w.group.in_flight as usize != in_flight {
        return Err(format!(
            "group in_flight {} but {in_flight} wake-ups on their way",
            w.group.in_flight
        ));
    }
    // No value exists twice.
    let mut seen = Vec::new();
    let mut note = |value: u8, place: String| -> Result<(), String> {
        if let Some((_, first)) = seen.iter().find(|(v, _)| *v == value) {
            return Err(format!("value {value} duplicated: {first} and {place}"));
        }
        seen.push((value, place));
        Ok(())
    };
    for (index, task) in w.tasks.iter().enumerate() {
        if let Some(value) = task.slot {
            note(value, format!("slot of tasklet {index}"))?;
        }
        for outcome in task.outcomes.iter().flatten() {
            match *outcome {
                Outcome::Received(value) => note(value, format!("received by tasklet {index}"))?,
                Outcome::SendFailed(value, _) => {
                    note(value, format!("given back to tasklet {index}"))?
                }
                _ => {}
            }
        }
    }
    for (index, cpu) in w.cpus.iter().enumerate() {
        if let Pc::Wake {
            outcome: Outcome::Received(value),
            ..
        } = cpu.pc
        {
            note(value, format!("being received on cpu {index}"))?;
        }
    }
    Ok(())
}

/// In a final state where every CPU finished: every value sent was received exactly once, or
/// given back to its sender, or is still held by a sender blocked for good.
fn check_values(model: &Model, w: &World) -> Result<(), String> {
    for (index, task) in w.tasks.iter().enumerate() {
        if task.cpu == NIL {
            continue;
        }
        for (op_index, op) in model.ops(index as u8).iter().enumerate() {
            let (Op::Send(_, value) | Op::SendTimeout(_, value)) = *op else {
                continue;
            };
            let received = w
                .tasks
                .iter()
                .flat_map(|task| task.outcomes.iter().flatten())
                .filter(|outcome| **outcome == Outcome::Received(value))
                .count();
            // Handed to a tasklet whose thread has returned: lost with it (see `Scenario::orphans`).
            let orphaned =
                |task: &Task| model.scenario.orphans && w.cpus[task.cpu as usize].pc == Pc::Done;
            let received = received
                + w.tasks
                    .iter()
                    .filter(|task| task.slot == Some(value) && orphaned(task))
                    .count();
            let in_slot = w
                .tasks
                .iter()
                .position(|task| task.slot == Some(value) && !orphaned(task));
            let outcome = task.outcomes[op_index];
            let ok = match outcome {
                Some(Outcome::Sent) => received == 1 && in_slot.is_none(),
                Some(Outcome::SendFailed(back, _)) => {
                    back == value && received == 0 && in_slot.is_none()
                }
                Some(other) => return Err(format!("send of {value} returned {other:?}")),
                // Never returned: not reached, or blocked for good holding it.
                None => received == 0 && (in_slot.is_none() || in_slot == Some(index)),
            };
            if !ok {
                return Err(format!(
                    "value {value} sent by tasklet {index} ({outcome:?}) received {received} times, in slot of {in_slot:?}"
                ));
            }
        }
    }
    Ok(())
}

// ---- the search ---------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Report {
    states: usize,
    transitions: usize,
    finished: usize,
}

struct Violation {
    message: String,
    trace: Vec<String>,
}

impl core::fmt::Debug for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(f, "interleaving ({} steps):", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

struct Explorer<'a> {
    model: Model<'a>,
    states: Vec<World>,
    index: HashMap<World, u32>,
    parent: Vec<(u32, Actor)>,
    successors: Vec<Vec<u32>>,
}

fn actors(w: &World) -> impl Iterator<Item = Actor> + '_ {
    (0..MAX_CPUS as u8).map(Actor::Cpu).chain(
        (0..MAX_TASKS as u8)
            .filter(|&t| w.tasks[t as usize].timer == Timer::Armed)
            .map(Actor::Expire),
    )
}

fn describe(w: &World, actor: Actor) -> String {
    match actor {
        Actor::Expire(t) => format!("timer of tasklet {t} expires"),
        Actor::Cpu(c) => {
            let cpu = &w.cpus[c as usize];
            format!("cpu {c} (running tasklet {}): {:?}", cpu.current, cpu.pc)
        }
    }
}

impl<'a> Explorer<'a> {
    fn new(scenario: &'a Scenario, config: Config) -> Self {
        Self {
            model: Model { scenario, config },
            states: Vec::new(),
            index: HashMap::new(),
            parent: Vec::new(),
            successors: Vec::new(),
        }
    }

    fn trace(&self, mut id: u32, last: Option<Actor>) -> Vec<String> {
        let mut path = Vec::new();
        if let Some(actor) = last {
            path.push(describe(&self.states[id as usize], actor));
        }
        while id != 0 {
            let (parent, actor) = self.parent[id as usize];
            path.push(describe(&self.states[parent as usize], actor));
            id = parent;
        }
        path.reverse();
        path
    }

    fn violation(&self, id: u32, last: Option<Actor>, message: String) -> Violation {
        let mut trace = self.trace(id, last);
        trace.push(format!("state: {:?}", self.states[id as usize]));
        Violation {
            message: format!("{}: {message}", self.model.scenario.name),
            trace,
        }
    }

    fn run(mut self) -> Result<Report, Violation> {
        let start = initial(self.model.scenario);
        if let Err(message) = check_invariants(&start, self.model.old_in_flight()) {
            return Err(Violation {
                message,
                trace: Vec::new(),
            });
        }
        self.index.insert(start.clone(), 0);
        self.states.push(start);
        self.parent.push((0, Actor::Cpu(0)));
        self.successors.push(Vec::new());
        let mut report = Report::default();
        let mut queue = VecDeque::from([0u32]);
        while let Some(id) = queue.pop_front() {
            let world = self.states[id as usize].clone();
            let mut any = false;
            for actor in actors(&world) {
                let mut next = world.clone();
                match self.model.step(&mut next, actor) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(message) => return Err(self.violation(id, Some(actor), message)),
                }
                any = true;
                report.transitions += 1;
                let next_id = match self.index.get(&next) {
                    Some(&existing) => existing,
                    None => {
                        let next_id = self.states.len() as u32;
                        self.index.insert(next.clone(), next_id);
                        self.states.push(next);
                        self.parent.push((id, actor));
                        self.successors.push(Vec::new());
                        if let Err(message) = check_invariants(
                            &self.states[next_id as usize],
                            self.model.old_in_flight(),
                        ) {
                            return Err(self.violation(next_id, None, message));
                        }
                        queue.push_back(next_id);
                        next_id
                    }
                };
                self.successors[id as usize].push(next_id);
            }
            if !any {
                self.final_state(id, &mut report)?;
            }
        }
        report.states = self.states.len();
        if self.model.config.ticks {
            self.check_can_finish()?;
        }
        Ok(report)
    }

    fn final_state(&self, id: u32, report: &mut Report) -> Result<(), Violation> {
        let world = &self.states[id as usize];
        if world.cpus.iter().all(|cpu| cpu.pc == Pc::Done) {
            report.finished += 1;
            check_values(&self.model, world)
                .map_err(|message| self.violation(id, None, message))?;
            (self.model.scenario.expect)(world)
                .map_err(|message| self.violation(id, None, message))?;
            return Ok(());
        }
        for (index, cpu) in world.cpus.iter().enumerate() {
            if cpu.pc != Pc::Done && (cpu.inbox_count != 0 || !cpu.ring.is_empty()) {
                return Err(self.violation(
                    id,
                    None,
                    format!("cpu {index} idles for good with work to do"),
                ));
            }
        }
        let what = world
            .cpus
            .iter()
            .enumerate()
            .filter(|(_, cpu)| cpu.pc != Pc::Done)
            .map(|(index, cpu)| {
                format!(
                    "cpu {index} idles in {:?} with tasklet {} blocked",
                    cpu.pc, cpu.current
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(self.violation(id, None, format!("deadlock never declared: {what}")))
    }

    /// With spurious idle returns, every reachable state must still be able to reach a state
    /// where every CPU finished.
    fn check_can_finish(&self) -> Result<(), Violation> {
        let count = self.states.len();
        let mut predecessors = vec![Vec::new(); count];
        for (from, successors) in self.successors.iter().enumerate() {
            for &to in successors {
                predecessors[to as usize].push(from as u32);
            }
        }
        let mut can_finish = vec![false; count];
        let mut queue: VecDeque<u32> = (0..count as u32)
            .filter(|&id| {
                self.states[id as usize]
                    .cpus
                    .iter()
                    .all(|cpu| cpu.pc == Pc::Done)
            })
            .collect();
        for &id in &queue {
            can_finish[id as usize] = true;
        }
        while let Some(id) = queue.pop_front() {
            for &from in &predecessors[id as usize] {
                if !can_finish[from as usize] {
                    can_finish[from as usize] = true;
                    queue.push_back(from);
                }
            }
        }
        match can_finish.iter().position(|&ok| !ok) {
            None => Ok(()),
            Some(stuck) => Err(self.violation(
                stuck as u32,
                None,
                "from this state the run can never finish".into(),
            )),
        }
    }
}

fn explore(scenario: &Scenario, config: Config) -> Result<Report, Violation> {
    Explorer::new(scenario, config).run()
}

/// Explores `scenario` without spurious idle returns (a platform whose `idle(None)` sleeps
/// until `wake_cpu`: every run must end with every CPU finished) and with them (from every
/// reachable state, every run can still finish).
fn check(scenario: &Scenario) {
    let without = explore(
        scenario,
        Config {
            ticks: false,
            mutation: None,
        },
    )
    .unwrap_or_else(|violation| panic!("{violation:?}"));
    let with_ticks = explore(
        scenario,
        Config {
            ticks: true,
            mutation: None,
        },
    )
    .unwrap_or_else(|violation| panic!("{violation:?}"));
    assert!(
        without.finished > 0 && with_ticks.finished > 0,
        "{}: no run finished",
        scenario.name
    );
    println!(
        "{}: {} states, {} transitions, {} final states; with spurious idle returns {} states, {} transitions",
        scenario.name, without.states, without.transitions, without.finished, with_ticks.states, with_ticks.transitions
    );
}

// ---- scenario expectations -------------------------------------------------------------------------

fn outcome(w: &World, task: usize, op: usize) -> Option<Outcome> {
    w.tasks[task].outcomes[op]
}

fn expect_no_deadlock(w: &World) -> Result<(), String> {
    for (index, task) in w.tasks.iter().enumerate() {
        for outcome in task.outcomes.iter().flatten() {
            if matches!(
                outcome,
                Outcome::SendFailed(_, Error::Deadlock)
                    | Outcome::ReceiveFailed(Error::Deadlock)
                    | Outcome::JoinFailed(Error::Deadlock)
            ) {
                return Err(format!(
                    "tasklet {index} was told it deadlocked: {outcome:?}"
                ));
            }
        }
    }
    Ok(())
}

fn expect_all(w: &World, expected: &[(usize, usize, Outcome)]) -> Result<(), String> {
    for &(task, op, want) in expected {
        if outcome(w, task, op) != Some(want) {
            return Err(format!(
                "tasklet {task} op {op}: {:?}, expected {want:?}",
                outcome(w, task, op)
            ));
        }
    }
    Ok(())
}

/// The outcomes of two operations (tasklet, operation index) are `success` or `failure`.
fn expect_either(
    w: &World,
    ops: [(usize, usize); 2],
    success: [Outcome; 2],
    failure: [Outcome; 2],
) -> Result<(), String> {
    let got = ops.map(|(task, op)| outcome(w, task, op));
    if got == success.map(Some) || got == failure.map(Some) {
        Ok(())
    } else {
        Err(format!("unexpected outcomes {got:?}"))
    }
}

const fn main_task(ops: &'static [Op]) -> TaskSpec {
    TaskSpec { main: true, ops }
}

const fn tasklet(ops: &'static [Op]) -> TaskSpec {
    TaskSpec { main: false, ops }
}

// ---- the scenarios ------------------------------------------------------------------------------

/// CPU A's main receives while CPU B's main sends: the wake-up races A's unlink from its ring
/// and its `find_next` (drain, timers, deadlock check, idle).
static WAKE_VS_BLOCK: Scenario = Scenario {
    name: "wake vs block",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(w, &[(0, 0, Outcome::Received(1)), (1, 0, Outcome::Sent)])
    },
    orphans: false,
};

/// The same with the roles swapped: the receiver takes the value out of a blocked sender's
/// slot on the other CPU.
static WAKE_SENDER_VS_BLOCK: Scenario = Scenario {
    name: "wake sender vs block",
    cpus: &[
        &[main_task(&[Op::Send(0, 1)])],
        &[main_task(&[Op::Receive(0)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(w, &[(0, 0, Outcome::Sent), (1, 0, Outcome::Received(1))])
    },
    orphans: false,
};

/// A receive with a timeout on A races B's send: either the value arrives (and no timeout is
/// reported), or the timeout wins and B's send is later ended by deadlock detection, returning
/// the value.
static WAKE_VS_TIMEOUT: Scenario = Scenario {
    name: "wake vs timeout",
    cpus: &[
        &[main_task(&[Op::ReceiveTimeout(0)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_either(
            w,
            [(0, 0), (1, 0)],
            [Outcome::Received(1), Outcome::Sent],
            [
                Outcome::ReceiveFailed(Error::TimedOut),
                Outcome::SendFailed(1, Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

/// A send with a timeout on A races B's receive (the waker takes the value out of the slot).
static SEND_TIMEOUT_VS_WAKE: Scenario = Scenario {
    name: "send timeout vs wake",
    cpus: &[
        &[main_task(&[Op::SendTimeout(0, 1)])],
        &[main_task(&[Op::Receive(0)])],
    ],
    expect: |w| {
        expect_either(
            w,
            [(0, 0), (1, 0)],
            [Outcome::Sent, Outcome::Received(1)],
            [
                Outcome::SendFailed(1, Error::TimedOut),
                Outcome::ReceiveFailed(Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

/// Tasklet K (id 0) on A receives; A's main kills it and joins it while B's main sends: the
/// kill's cancel races the wake-up. K either gets the value (the kill then finds it finished or
/// leaves the error pending) or is killed and B's send fails once B is alone.
static WAKE_VS_KILL: Scenario = Scenario {
    name: "wake vs kill",
    cpus: &[
        &[
            tasklet(&[Op::Receive(0)]),
            main_task(&[Op::Kill(0), Op::Join(0)]),
        ],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_all(w, &[(1, 0, Outcome::KillDone), (1, 1, Outcome::Joined)])?;
        expect_either(
            w,
            [(0, 0), (2, 0)],
            [Outcome::Received(1), Outcome::Sent],
            [
                Outcome::ReceiveFailed(Error::Killed),
                Outcome::SendFailed(1, Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

/// Ping-pong between two CPUs (the `threads_rendezvous` test): each CPU blocks while its
/// partner's wake-up may be in flight; no deadlock may ever be declared.
static PING_PONG: Scenario = Scenario {
    name: "ping-pong",
    cpus: &[
        &[main_task(&[Op::Send(0, 1), Op::Receive(1)])],
        &[main_task(&[Op::Receive(0), Op::Send(1, 2)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(
            w,
            &[
                (0, 0, Outcome::Sent),
                (0, 1, Outcome::Received(2)),
                (1, 0, Outcome::Received(1)),
                (1, 1, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs where every value flows: C wakes A, A then wakes B. A and B may both be idle
/// (stuck) while a wake-up is in flight: no deadlock may be declared.
static FLOW_3: Scenario = Scenario {
    name: "three CPUs, values flow",
    cpus: &[
        &[main_task(&[Op::Receive(0), Op::Send(1, 2)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(
            w,
            &[
                (0, 0, Outcome::Received(1)),
                (0, 1, Outcome::Sent),
                (1, 0, Outcome::Received(2)),
                (2, 0, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs, B's receive can never be served: it must end in `Deadlock`, but only once A
/// and C are done (never while C's wake-up of A is on its way).
static PARTIAL_DEADLOCK_3: Scenario = Scenario {
    name: "three CPUs, one deadlocked",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_all(
            w,
            &[
                (0, 0, Outcome::Received(1)),
                (1, 0, Outcome::ReceiveFailed(Error::Deadlock)),
                (2, 0, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs all waiting on channels nobody sends to: each must be told `Deadlock`.
static TRUE_DEADLOCK_3: Scenario = Scenario {
    name: "three CPUs, all deadlocked",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Receive(2)])],
    ],
    expect: |w| {
        let failed = Outcome::ReceiveFailed(Error::Deadlock);
        expect_all(w, &[(0, 0, failed), (1, 0, failed), (2, 0, failed)])
    },
    orphans: false,
};

/// CPU A's thread returns (its main finishes, as a `spawn_cpu_thread` body may once `run()`
/// returns) while its tasklet K still waits on channel 0; B's main then sends to K and waits on
/// channel 1, which nobody serves. B must be told `Deadlock` once it is alone in the group.
static HOME_LEAVES_WITH_WAKE_IN_FLIGHT: Scenario = Scenario {
    name: "home leaves the group with a wake-up in flight",
    cpus: &[
        &[tasklet(&[Op::Receive(0)]), main_task(&[])],
        &[main_task(&[Op::Send(0, 1), Op::Receive(1)])],
    ],
    expect: |w| {
        expect_all(
            w,
            &[
                (2, 0, Outcome::Sent),
                (2, 1, Outcome::ReceiveFailed(Error::Deadlock)),
            ],
        )
    },
    orphans: true,
};

// ---- the tests ----------------------------------------------------------------------------------

#[test]
fn wake_races_block_unlink_drain_and_idle() {
    check(&WAKE_VS_BLOCK);
    check(&WAKE_SENDER_VS_BLOCK);
}

#[test]
fn wake_races_timeout_cancel() {
    check(&WAKE_VS_TIMEOUT);
    check(&SEND_TIMEOUT_VS_WAKE);
}

#[test]
fn wake_races_kill_cancel() {
    check(&WAKE_VS_KILL);
}

#[test]
fn two_cpus_ping_pong_never_declare_deadlock() {
    check(&PING_PONG);
}

#[test]
fn three_cpus_deadlock_detection_waits_for_wake_ups_in_flight() {
    check(&FLOW_3);
    check(&PARTIAL_DEADLOCK_3);
}

#[test]
fn three_cpus_blocking_at_once_all_get_deadlock_without_spurious_idle_returns() {
    check(&TRUE_DEADLOCK_3);
}

/// A CPU's thread returning (`leave_group`) while a wake-up to it may be on its way.
#[test]
fn in_flight_follows_a_home_that_leaves_the_group() {
    check(&HOME_LEAVES_WITH_WAKE_IN_FLIGHT);
}

// ---- the checker can fail ----------------------------------------------------------------------

/// Explores the scenarios with `mutation` until one fails, and checks it fails for `needle`.
fn expect_violation(mutation: Mutation, ticks: bool, scenarios: &[&Scenario], needle: &str) {
    let config = Config {
        ticks,
        mutation: Some(mutation),
    };
    for scenario in scenarios {
        if let Err(violation) = explore(scenario, config) {
            let text = format!("{violation:?}");
            assert!(
                text.contains(needle),
                "{mutation:?} caught, but not as {needle:?}:\n{text}"
            );
            println!(
                "{mutation:?} caught in {}: {}",
                scenario.name, violation.message
            );
            return;
        }
    }
    panic!("mutation {mutation:?} was not caught");
}

#[test]
fn checker_catches_a_lost_wake_up() {
    // A wake_cpu that only ends an idle already in progress loses the wake-up that lands between
    // `idle`'s inbox check and the platform idle: the CPU then idles for good with inbox work.
    expect_violation(
        Mutation::NonStickyWake,
        false,
        &[&WAKE_VS_BLOCK, &PING_PONG],
        "idles for good with work to do",
    );
}

#[test]
fn checker_catches_deadlock_declared_with_a_wake_up_in_flight() {
    expect_violation(
        Mutation::DeadlockIgnoresInFlight,
        true,
        &[&PING_PONG, &FLOW_3],
        "declared deadlock",
    );
}

#[test]
fn checker_catches_deadlock_declared_while_another_cpu_runs() {
    expect_violation(
        Mutation::DeadlockIgnoresStuck,
        true,
        &[&WAKE_VS_BLOCK],
        "declared deadlock",
    );
}

/// The deadlock check and the stuck count under separate acquisitions of the group lock: CPUs
/// blocking at once all run the deadlock check before any counts itself stuck, each sees
/// `stuck + 1 < members`, and all idle until a spurious return (the host's 50 ms bound, the
/// board's tick). The real protocol takes both under one acquisition.
#[test]
fn checker_catches_deadlock_missed_by_a_split_check_and_count() {
    expect_violation(
        Mutation::SplitCheckAndCount,
        false,
        &[&TRUE_DEADLOCK_3],
        "deadlock never declared",
    );
}

/// A member leaving without waking the stuck ones: they would never re-check
/// `stuck + 1 >= members`.
#[test]
fn checker_catches_deadlock_missed_when_leave_does_not_wake() {
    expect_violation(
        Mutation::LeaveWithoutWake,
        false,
        &[&PARTIAL_DEADLOCK_3, &WAKE_VS_TIMEOUT],
        "deadlock never declared",
    );
}

/// The in-flight accounting before its fix: `in_flight` was charged to the group of the woken
/// tasklet's home when the waker pushed it (`inbox_push` read `home.group()` before taking the
/// inbox lock) and discharged by the home's `drain_inbox` from the group it was in *then*. A home
/// that left the group in between (`leave_group`, which `spawn_cpu_thread` calls when its body
/// returns, e.g. after `run()` returned with tasklets still waiting on other CPUs) never
/// discharged it: `in_flight` stayed above zero for good, `quiet` was never true again, and a
/// real deadlock among the remaining members was never declared (on the host they polled every
/// 50 ms forever). Interleaving: A's tasklet K waits on channel 0; B's main takes K off it and
/// does `in_flight += 1` (A still in the group); A's main returns and A leaves; B finishes the
/// push, then blocks on channel 1, which nobody serves; B is alone (`stuck + 1 >= members`) but
/// `in_flight == 1`, so it idles for good.
#[test]
fn checker_catches_in_flight_leaked_by_a_home_leaving() {
    expect_violation(
        Mutation::UncarriedInFlight,
        false,
        &[&HOME_LEAVES_WITH_WAKE_IN_FLIGHT],
        "deadlock never declared",
    );
}

#[test]
fn checker_catches_a_cancel_that_races_a_wake() {
    expect_violation(
        Mutation::CancelIgnoresQueue,
        true,
        &[&WAKE_VS_TIMEOUT, &WAKE_VS_KILL],
        "both succeeded",
    );
}
