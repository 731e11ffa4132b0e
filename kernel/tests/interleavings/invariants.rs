//! What must hold in every state the explorer reaches:
//! - every live tasklet is in exactly one place (run ring, inbox, a wait queue, or in the hands
//!   of a waker between leaving the wait queue and entering the inbox), consistent with its
//!   state — except the one benign overlap the kernel allows by design (below);
//! - channel balances, inbox counts, the group's `stuck` count and `in_flight` count all match
//!   what they count;
//! - no value is ever duplicated; a cancel (kill / timeout / deadlock) and a wake never both
//!   take the same waiter;
//! - deadlock is declared only when no wake-up can still arrive: every other live tasklet in the
//!   group is blocked in a wait queue, nothing is in flight or runnable, and no timer is armed.
//!
//! [`check_invariants`] checks the places, the counts and the values of each new state; the
//! model's steps check that a cancel and a wake never take the same waiter where they take it,
//! and [`deadlock_justified`] checks a deadlock where it is declared. [`check_values`] checks
//! where the values went in a final state.
//!
//! The overlap allowed by design: a tasklet blocking on CPU A enqueues itself on the channel
//! under the channel lock, releases it, and only then (`Scheduler::block_current`) unlinks itself
//! from A's run ring. A waker on CPU B can take it off the channel and push it into A's inbox in
//! between, so for a moment it is both in the ring and in the inbox. That is safe because ring
//! and inbox use separate links (`Tcb::next/prev` vs `Tcb::inbox_next`), and A cannot drain its
//! inbox in that window (it is in the middle of the blocking call; it drains in `find_next`,
//! after the unlink); the checker asserts exactly that window and nothing more.

use crate::find_next::has_timers;
use crate::model::Model;
use crate::seq::NIL;
use crate::state::{Drain, Find, Op, Outcome, Pc, St, Task, Timer, WakeStep, World};

/// `old`: the in-flight accounting before its fix ([`Mutation::UncarriedInFlight`]).
pub(crate) fn check_invariants(w: &World, old: bool) -> Result<(), String> {
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
pub(crate) fn check_values(model: &Model, w: &World) -> Result<(), String> {
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

/// The specification of deadlock: the victim's wait may be ended with `Deadlock` only if no
/// wake-up can still arrive — every other live tasklet of the group waits in a queue, none is
/// runnable or on its way to a CPU, and no timer is armed.
pub(crate) fn deadlock_justified(w: &World, c: u8, victim: u8) -> Result<(), String> {
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
