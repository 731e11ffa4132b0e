//! The timer queue: tasklets with a deadline (sleeping, or in a timed wait), earliest first.
//!
//! Arming and disarming keep the attention word's timer bit in step, so the fast yield needs
//! no look at the queue. Expired timers are fired from the scheduler's waits and yields (and by
//! `run` while only main is runnable).

use super::ring::Placement;
use super::sched::{attention, Scheduler};
use super::tcb::{self, State, Tcb};
use super::TaskletError;
use crate::platform::platform;
use core::sync::atomic::Ordering;

impl Scheduler {
    pub(crate) fn arm_timer(&self, tcb: &Tcb, deadline: u64) {
        self.disarm_timer(tcb);
        tcb.timer_deadline.set(deadline);
        // After every timer due no later: equal deadlines fire in arming order.
        let later = self
            .timers
            .iter()
            .find(|entry| entry.timer_deadline.get() > deadline);
        // SAFETY: disarmed just above, so in no timer queue; a tasklet of this CPU, alive while
        // it lives (and a dying tasklet disarms its timer in `retire`).
        unsafe { self.timers.insert_before(later, tcb) };
        self.set_attention(attention::TIMERS, true);
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, true);
    }

    /// Out of line: inlined blocking paths call it only when a timer is armed.
    #[inline(never)]
    pub(crate) fn disarm_timer(&self, tcb: &Tcb) {
        if !tcb.has_flag(tcb::FLAG_TIMER_ARMED) {
            return;
        }
        // SAFETY: the armed flag is set exactly while the tasklet is in this CPU's timer queue.
        unsafe { self.timers.remove(tcb) };
        self.set_attention(attention::TIMERS, !self.timers.is_empty());
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, false);
    }

    /// Waits (idling the CPU) until the earliest timer expires or a wake-up arrives, then makes
    /// the due tasklets runnable. For `run`, when only the main tasklet is runnable.
    pub(crate) fn wait_for_timers(&self) -> bool {
        let Some(deadline) = self.next_timer_deadline() else {
            return false;
        };
        if self.inbox_count.load(Ordering::Acquire) == 0 && platform().now_ns() < deadline {
            platform().idle(Some(deadline));
        }
        self.drain_inbox();
        self.fire_timers(platform().now_ns());
        true
    }

    pub(super) fn next_timer_deadline(&self) -> Option<u64> {
        self.timers.front().map(|tcb| tcb.timer_deadline.get())
    }

    /// Wakes every tasklet whose timer expired by `now`: a sleeper normally, a tasklet blocked
    /// with a timeout with [`TaskletError::TimedOut`].
    pub(crate) fn fire_timers(&self, now: u64) {
        while let Some(tcb) = self.timers.front() {
            if tcb.timer_deadline.get() > now {
                return;
            }
            self.disarm_timer(tcb);
            if tcb.state() != State::Blocked {
                continue;
            }
            if tcb.blocker.get().is_some() {
                self.wake_with_error(tcb, TaskletError::TimedOut);
            } else {
                self.ring_insert(tcb, Placement::Tail);
            }
        }
    }
}
