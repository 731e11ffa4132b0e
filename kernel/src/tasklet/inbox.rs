//! The inbox: tasklets other CPUs woke for this one, waiting to join its ring.
//!
//! A waker on another CPU queues the tasklet under the inbox lock, counts it in flight in the
//! home's CPU group (so deadlock detection waits for it) and sets the attention word's inbox
//! bit; the home CPU takes the whole inbox when it next schedules. Tasklets pass through here
//! on their wait links: a woken tasklet has left its wait queue.

use super::attention;
use super::group::CpuGroup;
use super::list::List;
use super::tcb::{State, Tcb, WaitLinks};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// One CPU's inbox.
pub(super) struct Inbox {
    list: spin::Mutex<List<WaitLinks>>,
    /// Tasklets queued and not yet taken (readable without the lock).
    count: AtomicUsize,
}

impl Inbox {
    pub(super) const fn new() -> Self {
        Self {
            list: spin::Mutex::new(List::new()),
            count: AtomicUsize::new(0),
        }
    }

    /// Tasklets on their way to the ring.
    #[inline]
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Queues `tcb`, which its waker just took out of a wait queue, counting it in flight in
    /// `group` (the home's, read under the lock: group changes happen under it too) and
    /// raising the inbox bit of the home's attention `word`.
    pub(super) fn push(
        &self,
        tcb: &Tcb,
        group: impl FnOnce() -> Option<&'static CpuGroup>,
        word: &AtomicU32,
    ) {
        tcb.set_state(State::Waking);
        let list = self.list.lock();
        if let Some(group) = group() {
            group.wake_ups_sent(1);
        }
        // SAFETY: a woken tasklet left its wait queue before its waker got here, so its wait
        // link is free; its home scheduler keeps it alive.
        unsafe { list.push_back(tcb) };
        self.count.fetch_add(1, Ordering::AcqRel);
        word.fetch_or(attention::INBOX, Ordering::Release);
    }

    /// Takes every queued tasklet (the home CPU, running, so they stop being in flight in
    /// `group`) and clears the inbox bit; hand the returned count to [`Inbox::landed`] once
    /// they are in the ring.
    pub(super) fn take_all(
        &self,
        group: Option<&CpuGroup>,
        word: &AtomicU32,
    ) -> (List<WaitLinks>, usize) {
        let list = self.list.lock();
        let arrived = list.take_all();
        word.fetch_and(!attention::INBOX, Ordering::Relaxed);
        let taken = self.count();
        if let Some(group) = group {
            group.wake_ups_landed(taken);
        }
        (arrived, taken)
    }

    /// The tasklets of a [`Inbox::take_all`] have joined the ring.
    pub(super) fn landed(&self, taken: usize) {
        self.count.fetch_sub(taken, Ordering::AcqRel);
    }

    /// Runs `change` under the inbox lock with the number of queued tasklets (moving a CPU
    /// between groups carries their in-flight count along).
    pub(super) fn locked<R>(&self, change: impl FnOnce(usize) -> R) -> R {
        let _list = self.list.lock();
        change(self.count())
    }
}
