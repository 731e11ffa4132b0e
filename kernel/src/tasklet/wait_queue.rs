//! Wait queues: the FIFO of tasklets blocked on one object (a channel end, a join, a lock).
//!
//! A queue is used under its owner's lock, which also owns the wait link and the `queued` flag
//! of every tasklet in it. A waker takes a tasklet out with [`WaitQueue::pop_front`] (and then
//! makes it runnable, see `sched::wake`); a canceller (kill, timeout, deadlock) with
//! [`WaitQueue::remove`], which reports whether a waker got there first.

use super::list::List;
use super::tcb::{Tcb, WaitLinks};

/// An intrusive FIFO of blocked tasklets.
pub(crate) struct WaitQueue {
    list: List<WaitLinks>,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        Self { list: List::new() }
    }

    /// Number of queued tasklets (walks the queue: for inspection, not hot paths).
    pub(crate) fn len(&self) -> usize {
        self.list.iter().count()
    }

    #[inline]
    pub(crate) fn push_back(&mut self, tcb: &Tcb) {
        debug_assert!(!tcb.queued.get(), "tasklet queued twice");
        // SAFETY: a tasklet about to block is in no wait queue, inbox or reap list (it is
        // running), and its home scheduler keeps it alive until it leaves the queue.
        unsafe { self.list.push_back(tcb) };
        tcb.queued.set(true);
    }

    pub(crate) fn front(&self) -> Option<&Tcb> {
        self.list.front()
    }

    /// Unlinks the first tasklet. The `'static` is the home scheduler's reference, valid while
    /// the caller holds the lock and until the tasklet is woken and finishes.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<&'static Tcb> {
        let head = self.list.pop_front()?;
        head.queued.set(false);
        Some(head)
    }

    /// Unlinks `tcb` if it is queued here; false if it was not queued (a waker took it).
    pub(crate) fn remove(&mut self, tcb: &Tcb) -> bool {
        if !tcb.queued.get() {
            return false;
        }
        // SAFETY: `queued` is set exactly while the tasklet is in the queue of this lock's
        // owner, and a tasklet waits on one object at a time.
        unsafe { self.list.remove(tcb) };
        tcb.queued.set(false);
        true
    }

    /// Visits the queued tasklets front to back.
    pub(crate) fn for_each(&self, visit: impl FnMut(&Tcb)) {
        self.list.iter().for_each(visit);
    }
}
