//! A condition variable used with a [`Lock`](super::Lock).

use super::lock::LockGuard;
use super::waiters::{Waiters, Woken};
use crate::tasklet::TaskletError;
use crate::time::Deadline;
use core::time::Duration;

/// A condition variable for tasklets (stacklesslib's `Condition`), on one CPU or across CPUs.
///
/// [`Condition::wait`] takes the guard of a held [`Lock`](super::Lock), releases the lock while
/// it waits and takes it again before returning. [`Condition::notify`] wakes the
/// longest-waiting tasklet, [`Condition::notify_all`] every waiting one. A tasklet registers as
/// a waiter before it releases the lock, so a notify made under the lock after that is never
/// missed. Waits may end when another tasklet got there first: check the predicate in a loop.
pub struct Condition {
    /// The notified condition has no state of its own: its waiters' list is all of it.
    waiters: Waiters,
}

impl core::fmt::Debug for Condition {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Condition")
            .field("waiting", &self.waiters.ungranted())
            .finish()
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl Condition {
    /// A condition with no waiters.
    pub const fn new() -> Self {
        Self {
            waiters: Waiters::new(),
        }
    }

    /// Tasklets waiting and not yet notified.
    pub fn waiting(&self) -> usize {
        self.waiters.ungranted()
    }

    /// Releases `guard`'s lock, waits for a notify, and takes the lock again. On error (killed,
    /// thrown into, deadlock, or killed while taking the lock back) the lock is **not** held.
    pub fn wait<'a>(&self, guard: LockGuard<'a>) -> Result<LockGuard<'a>, TaskletError> {
        let lock = guard.lock();
        match self.wait_released(guard, None) {
            Ok(()) => lock.acquire(),
            Err(error) => Err(error),
        }
    }

    /// Like [`Condition::wait`] for at most `timeout`: `Ok((guard, true))` when notified,
    /// `Ok((guard, false))` when the time ran out (the lock is held again either way).
    pub fn wait_timeout<'a>(
        &self,
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> Result<(LockGuard<'a>, bool), TaskletError> {
        let lock = guard.lock();
        match self.wait_released(guard, Some(Deadline::after(timeout))) {
            Ok(()) => lock.acquire().map(|guard| (guard, true)),
            Err(TaskletError::TimedOut) => lock.acquire().map(|guard| (guard, false)),
            Err(error) => Err(error),
        }
    }

    fn wait_released(
        &self,
        guard: LockGuard<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(), TaskletError> {
        // Registered before the lock is released: a notify made under it from now on is ours.
        self.waiters.register();
        let ((), woken) = self.waiters.wait(guard, || (), deadline);
        match woken {
            Woken::Granted => Ok(()),
            Woken::Failed(error) => Err(error),
            Woken::Aborted(error) => {
                // Notified while leaving: the notify goes to the next waiter, if any.
                self.notify();
                Err(error)
            }
        }
    }

    /// Wakes the longest-waiting tasklet; returns whether there was one.
    pub fn notify(&self) -> bool {
        let grant = self.waiters.grant();
        let handed = grant.is_granted();
        grant.hand_over();
        handed
    }

    /// Wakes every waiting tasklet; returns how many.
    pub fn notify_all(&self) -> usize {
        let grants = self.waiters.grant_all();
        let woken = grants.count();
        grants.hand_over();
        woken
    }
}
