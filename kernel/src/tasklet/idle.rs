//! Nothing to run: taking in wake-ups, firing timers, idling the CPU, declaring deadlock.
//!
//! When a CPU's ring empties (its tasklets blocked, or `run` waits for sleepers), the scheduler
//! drains its inbox, fires expired timers, revives a paused main tasklet (Stackless's
//! `revive_main`), and otherwise idles until a wake-up or the next deadline. With no deadline
//! and no wake-up possible in its whole CPU group it declares deadlock and wakes a victim with
//! [`TaskletError::Deadlock`]. So a CPU never idles with nothing able to wake it.

use super::ring::Placement;
use super::sched::Scheduler;
use super::tcb::{self, State, Tcb};
use super::timers;
use super::TaskletError;
use crate::platform::platform;
use crate::time::Deadline;

impl Scheduler {
    /// The rest of `find_next`: nothing is runnable here yet.
    #[inline(never)]
    pub(super) fn wait_for_next(&'static self, blocking: Option<&Tcb>) -> &'static Tcb {
        loop {
            if let Some(next) = self.ring.head() {
                return next;
            }
            self.drain_inbox();
            if let Some(next) = self.ring.head() {
                return next;
            }
            if !self.timers.is_empty() {
                self.fire_timers(Deadline::now());
                if let Some(next) = self.ring.head() {
                    return next;
                }
            }
            // The main tasklet floats (run, schedule_remove, switch) and nothing else can
            // run: it goes back in the ring and runs, and whoever blocked stays blocked for a
            // later wake-up.
            if let Some(main) = self.revive_floating_main() {
                return main;
            }
            let victim = blocking.unwrap_or(&self.main_tcb);
            let can_be_victim = victim.state() == State::Blocked;
            if self.idle_unless_deadlocked(self.timers.next_deadline(), can_be_victim) {
                self.wake_with_error(victim, TaskletError::Deadlock);
            }
        }
    }

    /// With nothing runnable here: returns true if this CPU's group is deadlocked (no member
    /// can make progress, no timer, no wake-up in flight, no outside work) and a victim is
    /// available; otherwise idles until a wake-up, `deadline` or a spurious return.
    fn idle_unless_deadlocked(&self, deadline: Option<Deadline>, can_be_victim: bool) -> bool {
        let group = self.group();
        let cpu = self.cpu.get();
        let stuck = deadline.is_none();
        if stuck {
            let deadlocked = match group {
                None => can_be_victim,
                Some(group) => {
                    group.deadlocked_or_stuck(cpu, || self.inbox.count() == 0, can_be_victim)
                }
            };
            if deadlocked {
                return true;
            }
        }
        if self.inbox.count() == 0 {
            platform().idle(deadline.map(Deadline::as_ns));
        }
        if let (Some(group), true) = (group, stuck) {
            group.unstick(cpu);
        }
        false
    }

    /// Moves the tasklets other CPUs woke for this one into the ring (retiring any found
    /// overflowed meanwhile).
    pub(super) fn drain_inbox(&self) {
        if self.inbox.count() == 0 {
            return;
        }
        // This CPU is running (not counted stuck), so the wake-ups stop being "in flight" as
        // soon as they are taken.
        let (arrived, taken) = self.inbox.take_all(self.group(), &self.attention);
        while let Some(tcb) = arrived.pop_front() {
            if tcb.has_flag(tcb::FLAG_ABANDONED) {
                self.retire(tcb, Some(TaskletError::StackOverflow));
            } else {
                self.ring.insert(tcb, Placement::Tail);
            }
        }
        self.inbox.landed(taken);
    }

    /// Waits (idling the CPU) until the earliest timer expires or a wake-up arrives, then makes
    /// the due tasklets runnable. For `run`, when only the main tasklet is runnable.
    pub(crate) fn wait_for_timers(&self) -> bool {
        let Some(deadline) = self.timers.next_deadline() else {
            return false;
        };
        if self.inbox.count() == 0 && !deadline.has_passed() {
            platform().idle(Some(deadline.as_ns()));
        }
        self.drain_inbox();
        self.fire_timers(Deadline::now());
        true
    }

    /// Wakes every tasklet whose timer expired by `now`: a sleeper normally, a tasklet blocked
    /// with a timeout with [`TaskletError::TimedOut`].
    pub(crate) fn fire_timers(&self, now: Deadline) {
        while let Some(tcb) = self.timers.earliest() {
            if !timers::deadline_of(tcb).has_passed_at(now) {
                return;
            }
            self.disarm_timer(tcb);
            if tcb.state() != State::Blocked {
                continue;
            }
            if tcb.blocker().get().is_some() {
                self.wake_with_error(tcb, TaskletError::TimedOut);
            } else {
                self.ring.insert(tcb, Placement::Tail);
            }
        }
    }
}
