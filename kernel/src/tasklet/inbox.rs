//! The inbox: tasklets other CPUs woke for this one, waiting to join its ring.
//!
//! A waker on another CPU queues the tasklet here under the inbox lock, counts it in flight in
//! the CPU group (so deadlock detection waits for it) and wakes the CPU; the home CPU drains the
//! inbox into its ring when it next schedules.

use super::list::List;
use super::ring::Placement;
use super::sched::{attention, Scheduler};
use super::tcb::{self, State, Tcb, WaitLinks};
use super::TaskletError;
use crate::platform::platform;
use core::sync::atomic::Ordering;

/// Tasklets other CPUs woke for this one, in wake order (through their wait links: a tasklet
/// on its way home is in no wait queue).
pub(super) type Inbox = List<WaitLinks>;

impl Scheduler {
    pub(super) fn inbox_push(&self, tcb: &Tcb) {
        tcb.set_state(State::Waking);
        {
            let inbox = self.inbox.lock();
            // Counted in the group the home belongs to now; group changes happen under the
            // same lock and carry the count along (see `move_to_group`).
            if let Some(group) = self.group() {
                group.wake_ups_sent(1);
            }
            // SAFETY: a woken tasklet left its wait queue before its waker got here, so its
            // wait link is free; its home (this scheduler) keeps it alive.
            unsafe { inbox.push_back(tcb) };
            self.inbox_count.fetch_add(1, Ordering::AcqRel);
            self.attention.fetch_or(attention::INBOX, Ordering::Release);
        }
        platform().wake_cpu(self.cpu.get());
    }

    pub(super) fn drain_inbox(&self) {
        if self.inbox_count.load(Ordering::Acquire) == 0 {
            return;
        }
        // This CPU is running (not counted stuck), so the wake-ups stop being "in flight" as
        // soon as they are detached.
        let (arrived, detached) = {
            let inbox = self.inbox.lock();
            let arrived = inbox.take_all();
            self.attention
                .fetch_and(!attention::INBOX, Ordering::Relaxed);
            let detached = self.inbox_count.load(Ordering::Acquire);
            if let Some(group) = self.group() {
                group.wake_ups_landed(detached);
            }
            (arrived, detached)
        };
        while let Some(tcb) = arrived.pop_front() {
            if tcb.has_flag(tcb::FLAG_ABANDONED) {
                self.retire(tcb, Some(TaskletError::StackOverflow));
            } else {
                self.ring_insert(tcb, Placement::Tail);
            }
        }
        self.inbox_count.fetch_sub(detached, Ordering::AcqRel);
    }
}
