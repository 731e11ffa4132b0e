//! The model: the kernel code a scenario's operations execute, as a state machine.
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
//! [`Model::step`] runs one step of one actor (a CPU, or a timer whose deadline passes). This
//! module holds the operations (send, receive, kill, join), the cross-CPU wake-up, cancels and
//! the ring primitives; [`crate::find_next`] holds the scheduler's search for the next tasklet
//! (inbox drain, timers, the deadlock check, idle).
//!
//! Not modelled: same-CPU rendezvous (no cross-CPU path), sleeps, `yield_now` and
//! `wait_for_timers` (they drain the inbox like `find_next` but never count a CPU stuck), the
//! watchdog, `external` work (always 0 here) and more CPUs than three.

use crate::invariants::deadlock_justified;
use crate::mutations::Mutation;
use crate::scenario::{spec, Scenario};
use crate::seq::{Seq, NIL};
use crate::state::{
    Blocker, Cancel, Error, Find, Op, Outcome, Pc, Raise, Resume, St, Timer, WakeStep, World,
};

pub(crate) type StepResult = Result<bool, String>;

/// How the explorer runs the model.
#[derive(Clone, Copy)]
pub(crate) struct Config {
    /// `platform().idle` may return spuriously at any time (the host's bounded idle, a tick).
    pub(crate) ticks: bool,
    pub(crate) mutation: Option<Mutation>,
}

/// What takes the next step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Actor {
    /// A CPU runs its next step of kernel code.
    Cpu(u8),
    /// A tasklet's timer deadline passes.
    Expire(u8),
}

/// A scenario's kernel code under one configuration.
pub(crate) struct Model<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) config: Config,
}

impl Model<'_> {
    pub(crate) fn ops(&self, task: u8) -> &'static [Op] {
        spec(self.scenario, task).ops
    }

    pub(crate) fn mutated(&self, mutation: Mutation) -> bool {
        self.config.mutation == Some(mutation)
    }

    /// Runs one step of `actor`; `Ok(false)` when it cannot step now.
    pub(crate) fn step(&self, w: &mut World, actor: Actor) -> StepResult {
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

    pub(crate) fn old_in_flight(&self) -> bool {
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

    /// `wake_with_error(t, error)`: `Ok(Ok(cancelled))` when done, `Ok(Err(next step))` to go on.
    pub(crate) fn cancel_step(
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
pub(crate) fn ring_insert(w: &mut World, c: u8, t: u8, next: bool) {
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
pub(crate) fn switch_to(w: &mut World, c: u8, next: u8) -> Result<(), String> {
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
