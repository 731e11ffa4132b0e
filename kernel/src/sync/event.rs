//! An event flag that tasklets wait on; setting it wakes them all.

use super::waiters::{Waiters, Woken};
use crate::tasklet::TaskletError;
use crate::time::Deadline;
use core::time::Duration;

/// A flag tasklets can wait for (stacklesslib's `Event`), on one CPU or across CPUs.
///
/// [`Event::set`] sets the flag and wakes every tasklet waiting at that moment; while the flag is
/// set, [`Event::wait`] returns at once. [`Event::clear`] resets it. A waiter woken by a set
/// returns `Ok` even if the flag was cleared again before it ran.
pub struct Event {
    state: spin::Mutex<EventState>,
    waiters: Waiters,
}

struct EventState {
    set: bool,
}

impl core::fmt::Debug for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Event")
            .field("set", &state.set)
            .field("waiting", &self.waiters.ungranted())
            .finish()
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// A clear event.
    pub const fn new() -> Self {
        Self {
            state: spin::Mutex::new(EventState { set: false }),
            waiters: Waiters::new(),
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }

    /// Tasklets waiting and not yet woken.
    pub fn waiting(&self) -> usize {
        let _state = self.state.lock();
        self.waiters.ungranted()
    }

    /// Sets the flag and wakes every waiting tasklet; returns how many were woken.
    pub fn set(&self) -> usize {
        let mut state = self.state.lock();
        state.set = true;
        let grants = self.waiters.grant_all();
        drop(state);
        let woken = grants.count();
        grants.hand_over();
        woken
    }

    /// Clears the flag: later waits block until the next [`Event::set`].
    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    /// Blocks the current tasklet until the flag is set (returns at once if it is). Fails if the
    /// tasklet is killed or thrown into while waiting, or if nothing can ever set it
    /// ([`TaskletError::Deadlock`]).
    pub fn wait(&self) -> Result<(), TaskletError> {
        self.wait_by(None)
    }

    /// Like [`Event::wait`], giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TaskletError> {
        self.wait_by(Some(Deadline::after(timeout)))
    }

    /// Like [`Event::wait`], giving up at `deadline_ns` on the platform clock (a
    /// [`Deadline::as_ns`]).
    pub fn wait_until(&self, deadline_ns: Option<u64>) -> Result<(), TaskletError> {
        self.wait_by(deadline_ns.map(Deadline::at_ns))
    }

    fn wait_by(&self, deadline: Option<Deadline>) -> Result<(), TaskletError> {
        let state = self.state.lock();
        if state.set {
            return Ok(());
        }
        self.waiters.register();
        let (_state, woken) = self.waiters.wait(state, || self.state.lock(), deadline);
        match woken {
            Woken::Granted => Ok(()),
            Woken::Failed(error) | Woken::Aborted(error) => Err(error),
        }
    }
}
