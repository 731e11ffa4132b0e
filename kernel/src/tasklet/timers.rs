//! The timer queue: tasklets with a deadline (sleeping, or in a timed wait), earliest first.
//!
//! Only the home CPU touches its queue. The scheduler fires expired timers from its waits and
//! yields (and from `run` while only main is runnable), and keeps the attention word's timer bit
//! in step with [`TimerQueue::is_empty`].

use super::list::List;
use super::tcb::{self, Tcb, TimerLinks};
use crate::time::Deadline;

/// One CPU's timer queue.
pub(super) struct TimerQueue {
    list: List<TimerLinks>,
}

impl TimerQueue {
    pub(super) const fn new() -> Self {
        Self { list: List::new() }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The earliest deadline, if any timer is armed.
    pub(super) fn next_deadline(&self) -> Option<Deadline> {
        self.list.front().map(deadline_of)
    }

    /// The tasklet with the earliest deadline.
    pub(super) fn earliest(&self) -> Option<&'static Tcb> {
        self.list.front()
    }

    /// The armed tasklets, earliest first (for `check_invariants`; read-only). A queue whose
    /// links loop keeps going: bound it.
    pub(super) fn walk(&self) -> impl Iterator<Item = &'static Tcb> + '_ {
        self.list.iter()
    }

    /// Arms `tcb`'s timer for `deadline` (replacing an armed one). Equal deadlines fire in
    /// arming order.
    pub(super) fn arm(&self, tcb: &Tcb, deadline: Deadline) {
        self.disarm(tcb);
        tcb.timer_deadline().set(deadline.as_ns());
        let later = self.list.iter().find(|entry| deadline_of(entry) > deadline);
        // SAFETY: disarmed just above, so in no timer queue; a tasklet of this CPU, alive while
        // it lives (and a dying tasklet disarms its timer in `retire`).
        unsafe { self.list.insert_before(later, tcb) };
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, true);
    }

    /// Disarms `tcb`'s timer; false if none was armed.
    #[inline]
    pub(super) fn disarm(&self, tcb: &Tcb) -> bool {
        if !tcb.has_flag(tcb::FLAG_TIMER_ARMED) {
            return false;
        }
        // SAFETY: the armed flag is set exactly while the tasklet is in this CPU's timer queue.
        unsafe { self.list.remove(tcb) };
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, false);
        true
    }
}

/// The deadline an armed tasklet's timer fires at (the control block keeps its nanoseconds).
#[inline]
pub(super) fn deadline_of(tcb: &Tcb) -> Deadline {
    Deadline::at_ns(tcb.timer_deadline().get())
}
