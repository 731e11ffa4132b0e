//! The model's state: every CPU, tasklet, channel and the CPU group, and each CPU's program
//! counter into the modelled kernel code ([`Pc`] and the step enums under it, cut at the
//! granularity described in [`crate::model`]). A [`World`] is one whole state, compared and
//! hashed by the explorer.

use crate::seq::Seq;

/// `tcb::State`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum St {
    Runnable,
    Blocked,
    Waking,
    Dead,
}

/// The `TaskletError`s the modelled paths produce.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Error {
    Killed,
    Deadlock,
    TimedOut,
}

/// What a tasklet's operation returned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Outcome {
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
pub(crate) enum Op {
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
pub(crate) enum Blocker {
    None,
    Channel(u8),
    Join(u8),
}

/// A tasklet's timer: armed, or armed and past its deadline (not yet fired).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Timer {
    Off,
    Armed,
    Expired,
}

/// Where a suspended tasklet continues when switched to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Resume {
    /// `tasklet_entry`: its first operation.
    Start,
    /// The tail of `block_current` and the claim of the blocking operation.
    AfterBlock,
    /// The tail of `Tasklet::raise` after `run()` switched to the target.
    AfterRun,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Task {
    pub(crate) cpu: u8,
    pub(crate) main: bool,
    /// Index of the operation it is at.
    pub(crate) op: u8,
    pub(crate) state: St,
    /// In a channel's wait queue or a join's waiter list (`Tcb::queued`).
    pub(crate) queued: bool,
    pub(crate) direction: i8,
    /// `Tcb::slot`: the value in flight.
    pub(crate) slot: Option<u8>,
    pub(crate) pending: Option<Error>,
    pub(crate) blocker: Blocker,
    pub(crate) timer: Timer,
    pub(crate) resume: Resume,
    pub(crate) started: bool,
    /// This wait was ended by a waker taking it out of its queue.
    pub(crate) woken: bool,
    /// This wait was ended by a cancel (kill, timeout, deadlock).
    pub(crate) cancelled: bool,
    /// Tasklets joining this one (`Tcb::joiners`).
    pub(crate) joiners: Seq,
    pub(crate) outcomes: [Option<Outcome>; 3],
}

/// Steps of `Scheduler::wake` + `Scheduler::inbox_push` on the waker's CPU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum WakeStep {
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
pub(crate) enum Drain {
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
pub(crate) enum Cancel {
    /// `if tcb.state() != Blocked { return false }`.
    Read,
    /// `(blocker.cancel)(..)` under the queue's lock, then (if it succeeded) blocker, direction,
    /// pending error, disarm and `ring_insert(Tail)` on the home CPU.
    Cancel,
}

/// Steps of `Scheduler::find_next` (its loop is in `wait_for_next`) and the
/// `idle_unless_deadlocked` it calls.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Find {
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
    pub(crate) const IDLE_COUNTED_STUCK: Find = Find::IdleCheck {
        stuck: true,
        timers: false,
    };
}

/// Steps of `Tasklet::raise` (kill, not pending).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Raise {
    /// `match target.state()`.
    Read,
    /// `wake_with_error(target, error)`; `pending = error` if it failed.
    Cancel(Cancel),
    /// `if !pending && target.state() == Runnable { return self.run() }`: `switch_in`.
    Run,
}

/// What a CPU is executing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Pc {
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
    pub(crate) fn wake_stuck_or_done(stuck: Seq) -> Pc {
        if stuck.is_empty() {
            Pc::Done
        } else {
            Pc::WakeStuck(stuck)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Cpu {
    pub(crate) current: u8,
    pub(crate) main: u8,
    /// The run ring, head first (`ring_head` is index 0).
    pub(crate) ring: Seq,
    pub(crate) inbox: Seq,
    pub(crate) inbox_count: u8,
    /// The platform's wake-up flag (`wake_cpu` sets it; `idle` consumes it).
    pub(crate) wake: bool,
    pub(crate) in_group: bool,
    pub(crate) pc: Pc,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Chan {
    pub(crate) balance: i8,
    pub(crate) waiters: Seq,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Group {
    pub(crate) members: u8,
    pub(crate) stuck: u8,
    pub(crate) in_flight: u8,
    /// `stuck_cpus`, in the kernel's order.
    pub(crate) stuck_cpus: Seq,
    /// Holder of the group lock across the two steps of `idle_unless_deadlocked` (NIL: free).
    pub(crate) lock: u8,
}

pub(crate) const MAX_CPUS: usize = 3;
pub(crate) const MAX_TASKS: usize = 4;
pub(crate) const MAX_CHANS: usize = 3;

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct World {
    pub(crate) cpus: [Cpu; MAX_CPUS],
    pub(crate) tasks: [Task; MAX_TASKS],
    pub(crate) chans: [Chan; MAX_CHANS],
    pub(crate) group: Group,
}
