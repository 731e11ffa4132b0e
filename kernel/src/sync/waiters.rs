//! The wait protocol every primitive here shares, on the kernel's wake primitive
//! ([`WaitList`]): register, grant, hand over, settle.
//!
//! A primitive keeps its condition in its own state (behind its `spin::Mutex`) and a
//! [`Waiters`] beside it. A tasklet that must wait *registers* under the state lock and
//! [`Waiters::wait`]s, which releases the lock and blocks the tasklet. A waker *grants* under
//! the state lock (only while some registered waiter has no grant yet), releases the lock and
//! *hands the grant over*: the longest-waiting blocked waiter joins the end of its CPU's run
//! ring, and the waker goes on.
//!
//! A waiter whose wait fails (killed, thrown into, timed out, deadlock) settles under the state
//! lock: if fewer grants are committed than waiters registered, it unregisters and leaves;
//! otherwise a grant is on its way with no one else to take it, so it takes it
//! ([`Woken::Aborted`], or [`Woken::Granted`] after a timeout or deadlock) and the primitive
//! passes on what the grant carried. So a wake-up is never lost, and the counts stay exact.
//!
//! The one wait a waker does: a grant that found no blocked waiter (its waiter is registered and
//! on its way to block, or just failed) is handed over once that waiter has taken it, as a
//! rendezvous waits for its partner. A waiter abandoned with `kill_forced` (which runs no
//! destructors) would leave such a grant untaken.

use crate::tasklet::waiter::{Grant, Grants, WaitList, Waited};
use crate::tasklet::TaskletError;
use crate::time::Deadline;

/// How a wait ended. The state lock is held again when the primitive sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A waker granted this waiter a wake-up (possibly just as its timeout passed).
    Granted,
    /// The wait failed before any wake-up was committed to it: the waiter is unregistered.
    Failed(TaskletError),
    /// The wait failed (killed, thrown into) but a wake-up was committed to it and taken: the
    /// primitive must pass on what it carried, then return the error.
    Aborted(TaskletError),
}

/// The waiters of one condition of a primitive.
#[derive(Default)]
pub(crate) struct Waiters {
    list: WaitList,
}

impl Waiters {
    pub(crate) const fn new() -> Self {
        Self {
            list: WaitList::new(),
        }
    }

    /// Registered waiters without a wake-up yet.
    pub(crate) fn ungranted(&self) -> usize {
        self.list.ungranted()
    }

    /// Wake-ups committed and not yet taken.
    pub(crate) fn granted(&self) -> usize {
        self.list.granted()
    }

    /// Registers the current tasklet (under the state lock); it must then call
    /// [`Waiters::wait`].
    pub(crate) fn register(&self) {
        self.list.register();
    }

    /// Takes back a registration whose wait never started and that no waker can know of yet
    /// (the state lock held).
    pub(crate) fn unregister(&self) {
        self.list.unregister();
    }

    /// Waits for a wake-up after [`Waiters::register`]: releases the state lock by dropping
    /// `guard`, blocks until a wake-up or failure (until `deadline` if given), and returns with
    /// the state locked again by `relock` and the waiter settled.
    pub(crate) fn wait<G, R>(
        &self,
        guard: G,
        relock: impl FnOnce() -> R,
        deadline: Option<Deadline>,
    ) -> (R, Woken) {
        let (relocked, waited) = self.list.wait(guard, relock, deadline);
        let woken = match waited {
            Waited::Granted => Woken::Granted,
            Waited::Failed(error) => Woken::Failed(error),
            // The wake-up came as the wait timed out (or nothing else could run): it counts.
            Waited::FailedHolding(TaskletError::TimedOut | TaskletError::Deadlock) => {
                Woken::Granted
            }
            Waited::FailedHolding(error) => Woken::Aborted(error),
        };
        (relocked, woken)
    }

    /// Commits a wake-up for one waiter that has none (under the state lock); nothing if every
    /// waiter has one. Hand it over with [`Grant::hand_over`] after releasing the state lock.
    pub(crate) fn grant(&self) -> Grant<'_> {
        self.list.grant()
    }

    /// Commits a wake-up for every waiter that has none (under the state lock); hand them over
    /// after releasing it.
    pub(crate) fn grant_all(&self) -> Grants<'_> {
        self.list.grant_all()
    }
}
