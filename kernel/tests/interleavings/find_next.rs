//! `Scheduler::find_next` (its loop is in `wait_for_next`) and what it calls: `drain_inbox`,
//! `fire_timers` and `idle_unless_deadlocked`, where a CPU with nothing to run drains the
//! wake-ups pushed to it, cancels expired waits, declares deadlock or counts itself stuck, and
//! idles.

use crate::model::{ring_insert, switch_to, Model, StepResult};
use crate::mutations::Mutation;
use crate::seq::{Seq, NIL};
use crate::state::{
    Blocker, Cancel, Drain, Error, Find, Group, Pc, Resume, St, Timer, World, MAX_TASKS,
};

impl Model<'_> {
    pub(crate) fn find(&self, w: &mut World, c: u8, exit: bool, step: Find) -> StepResult {
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
}

pub(crate) fn has_timers(w: &World, c: u8) -> bool {
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
