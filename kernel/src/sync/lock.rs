//! A non-reentrant lock whose waiters are served first come, first served.

use super::waiters::{Waiters, Woken};
use crate::tasklet::{self, Tasklet, TaskletError};
use crate::time::Deadline;
use core::marker::PhantomData;
use core::time::Duration;

/// A mutual-exclusion lock for tasklets, on one CPU or across CPUs (stacklesslib's `Lock`).
///
/// [`Lock::acquire`] blocks the tasklet (not the CPU) while another holds the lock. Release hands
/// the lock straight to the longest-waiting tasklet, so waiters are served in FIFO order and a
/// newcomer cannot overtake them. The lock is not reentrant: acquiring it again from the tasklet
/// that holds it fails with [`TaskletError::Deadlock`] instead of hanging.
pub struct Lock {
    state: spin::Mutex<LockState>,
    waiters: Waiters,
}

struct LockState {
    /// Held, or being handed to a waiter.
    locked: bool,
    /// The holder (None while the lock is in transit to a woken waiter).
    owner: Option<Tasklet>,
}

impl core::fmt::Debug for Lock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Lock")
            .field("locked", &state.locked)
            .field("owner", &state.owner)
            .field("waiting", &self.waiters.ungranted())
            .finish()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof of holding a [`Lock`]; dropping it releases the lock. It stays with the tasklet that
/// acquired it (it is not `Send`).
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    not_send: PhantomData<*const ()>,
}

impl core::fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl<'a> LockGuard<'a> {
    fn new(lock: &'a Lock) -> Self {
        Self {
            lock,
            not_send: PhantomData,
        }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }

    /// Releases the lock (the same as dropping the guard).
    pub fn unlock(self) {}
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release();
    }
}

impl Lock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        Self {
            state: spin::Mutex::new(LockState {
                locked: false,
                owner: None,
            }),
            waiters: Waiters::new(),
        }
    }

    /// Whether some tasklet holds the lock (or it is being handed to one).
    pub fn is_locked(&self) -> bool {
        self.state.lock().locked
    }

    /// Tasklets waiting to acquire the lock and not yet handed it.
    pub fn waiting(&self) -> usize {
        let _state = self.state.lock();
        self.waiters.ungranted()
    }

    /// Takes the lock if it is free; never blocks.
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        let mut state = self.state.lock();
        if state.locked {
            return None;
        }
        state.locked = true;
        let previous = state.owner.replace(tasklet::current());
        drop(state);
        drop(previous);
        Some(LockGuard::new(self))
    }

    /// Takes the lock, blocking the current tasklet until it is handed over. Fails if the
    /// tasklet is killed or thrown into while waiting (the lock is then not held), if nothing
    /// can ever release it ([`TaskletError::Deadlock`]), or if the tasklet already holds it.
    pub fn acquire(&self) -> Result<LockGuard<'_>, TaskletError> {
        self.acquire_by(None)
    }

    /// Like [`Lock::acquire`], giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>, TaskletError> {
        self.acquire_by(Some(Deadline::after(timeout)))
    }

    /// Like [`Lock::acquire`], giving up at `deadline_ns` on the platform clock (a
    /// [`Deadline::as_ns`]).
    pub fn acquire_until(&self, deadline_ns: Option<u64>) -> Result<LockGuard<'_>, TaskletError> {
        self.acquire_by(deadline_ns.map(Deadline::at_ns))
    }

    fn acquire_by(&self, deadline: Option<Deadline>) -> Result<LockGuard<'_>, TaskletError> {
        let me = tasklet::current();
        let mut state = self.state.lock();
        if !state.locked {
            state.locked = true;
            let previous = state.owner.replace(me);
            drop(state);
            drop(previous);
            return Ok(LockGuard::new(self));
        }
        if state.owner.as_ref() == Some(&me) {
            return Err(TaskletError::Deadlock);
        }
        self.waiters.register();
        let (mut state, woken) = self.waiters.wait(state, || self.state.lock(), deadline);
        match woken {
            // The releaser kept the lock locked for us.
            Woken::Granted => {
                let previous = state.owner.replace(me);
                drop(state);
                drop(previous);
                Ok(LockGuard::new(self))
            }
            Woken::Failed(error) => Err(error),
            Woken::Aborted(error) => {
                // Handed the lock while leaving: pass it on.
                drop(state);
                self.release();
                Err(error)
            }
        }
    }

    /// Hands the lock to the first waiter, or unlocks it.
    fn release(&self) {
        let mut state = self.state.lock();
        let owner = state.owner.take();
        let grant = self.waiters.grant();
        if !grant.is_granted() {
            state.locked = false;
        }
        drop(state);
        drop(owner);
        grant.hand_over();
    }
}
