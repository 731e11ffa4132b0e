//! A counting semaphore whose waiters are served first come, first served.

use super::waiters::{Waiters, Woken};
use crate::tasklet::TaskletError;
use crate::time::Deadline;
use core::time::Duration;

/// A counting semaphore for tasklets (stacklesslib's `Semaphore`), on one CPU or across CPUs.
///
/// It holds a number of permits. [`Semaphore::acquire`] takes one, blocking the tasklet while
/// none is free; [`Semaphore::release`] returns one, handing it straight to the longest-waiting
/// tasklet if any, so waiters are served in FIFO order.
pub struct Semaphore {
    state: spin::Mutex<SemaphoreState>,
    waiters: Waiters,
}

struct SemaphoreState {
    permits: usize,
}

impl core::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("waiting", &self.waiters.ungranted())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore holding `permits` free permits.
    pub const fn new(permits: usize) -> Self {
        Self {
            state: spin::Mutex::new(SemaphoreState { permits }),
            waiters: Waiters::new(),
        }
    }

    /// Free permits now.
    pub fn available(&self) -> usize {
        self.state.lock().permits
    }

    /// Tasklets waiting for a permit and not yet handed one.
    pub fn waiting(&self) -> usize {
        let _state = self.state.lock();
        self.waiters.ungranted()
    }

    /// Takes a permit if one is free; never blocks.
    pub fn try_acquire(&self) -> bool {
        let mut state = self.state.lock();
        if state.permits == 0 {
            return false;
        }
        state.permits -= 1;
        true
    }

    /// Takes a permit, blocking the current tasklet until one is handed over. Fails (holding
    /// no permit) if the tasklet is killed or thrown into while waiting, or if nothing can ever
    /// release one ([`TaskletError::Deadlock`]).
    pub fn acquire(&self) -> Result<(), TaskletError> {
        self.acquire_by(None)
    }

    /// Like [`Semaphore::acquire`], giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), TaskletError> {
        self.acquire_by(Some(Deadline::after(timeout)))
    }

    /// Like [`Semaphore::acquire`], giving up at `deadline_ns` on the platform clock (a
    /// [`Deadline::as_ns`]).
    pub fn acquire_until(&self, deadline_ns: Option<u64>) -> Result<(), TaskletError> {
        self.acquire_by(deadline_ns.map(Deadline::at_ns))
    }

    fn acquire_by(&self, deadline: Option<Deadline>) -> Result<(), TaskletError> {
        let mut state = self.state.lock();
        if state.permits > 0 {
            state.permits -= 1;
            return Ok(());
        }
        self.waiters.register();
        let (state, woken) = self.waiters.wait(state, || self.state.lock(), deadline);
        drop(state);
        match woken {
            Woken::Granted => Ok(()),
            Woken::Failed(error) => Err(error),
            Woken::Aborted(error) => {
                // Handed a permit while leaving: pass it on.
                self.release();
                Err(error)
            }
        }
    }

    /// Returns a permit: to the first waiter if one waits, else to the free count (which
    /// saturates at `usize::MAX`).
    pub fn release(&self) {
        let mut state = self.state.lock();
        let grant = self.waiters.grant();
        if !grant.is_granted() {
            state.permits = state.permits.saturating_add(1);
        }
        drop(state);
        grant.hand_over();
    }
}
