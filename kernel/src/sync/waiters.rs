//! The wait protocol every primitive here shares: register, grant, deliver, settle.
//!
//! A primitive keeps a [`WaitCount`] inside its own state (behind its `spin::Mutex`) and a
//! [`Waiters`] beside it. A tasklet that must wait *registers* under the state lock, releases the
//! lock, and receives on the channel. A waker *grants* under the state lock (only while some
//! registered waiter has no grant yet), releases the lock and *delivers*: a send on the channel,
//! which meets the first blocked waiter (or waits the moment it takes a registered waiter to reach
//! its receive: it never waits for anything else).
//!
//! A waiter whose receive fails (killed, thrown into, timed out, deadlock) settles under the
//! state lock: if fewer grants are committed than waiters registered, it unregisters and leaves;
//! otherwise a grant is on its way with no one else to take it, so it takes it
//! ([`Woken::Aborted`], or [`Woken::Granted`] after a timeout) and the primitive passes on what
//! the grant carried. So a wake-up is never lost, a waker never blocks on a tasklet that left,
//! and the counts stay exact.
//!
//! The one wait a waker may do: a registered waiter that has not reached its receive yet (it is
//! between its registration and the channel, or just failed). Across CPUs the waker then spins
//! briefly, yielding to its own CPU's tasklets; a waiter abandoned with `kill_forced` (which
//! runs no destructors) would leave a committed wake-up undelivered.

use crate::channel::{Channel, Preference};
use crate::tasklet::{self, TaskletError};
use crate::time::Deadline;
use core::sync::atomic::{AtomicBool, Ordering};

/// Registered waiters and the wake-ups committed to them; lives in the owner's locked state.
#[derive(Debug, Default)]
pub(crate) struct WaitCount {
    /// Tasklets registered to wait and not yet settled.
    waiting: usize,
    /// Wake-ups committed by wakers and not yet received (never more than `waiting`).
    grants: usize,
}

impl WaitCount {
    pub(crate) const fn new() -> Self {
        Self {
            waiting: 0,
            grants: 0,
        }
    }

    /// Registers the current tasklet; it must then call [`Waiters::wait`].
    pub(crate) fn register(&mut self) {
        self.waiting += 1;
    }

    /// Registered waiters without a wake-up yet.
    pub(crate) fn ungranted(&self) -> usize {
        self.waiting - self.grants
    }

    /// Wake-ups committed and not yet taken.
    pub(crate) fn granted(&self) -> usize {
        self.grants
    }

    /// Commits a wake-up for one waiter that has none; false if every waiter has one. A true
    /// result obliges the caller to [`Waiters::deliver`] once, after releasing the state lock.
    pub(crate) fn grant(&mut self) -> bool {
        if self.waiting > self.grants {
            self.grants += 1;
            true
        } else {
            false
        }
    }

    /// Commits a wake-up for every waiter that has none; returns how many to deliver.
    pub(crate) fn grant_all(&mut self) -> usize {
        let count = self.ungranted();
        self.grants = self.waiting;
        count
    }

    /// A waiter took a wake-up and is settled.
    fn take(&mut self) {
        self.waiting -= 1;
        self.grants -= 1;
    }
}

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

/// The channel the waiters of one primitive block on.
pub(crate) struct Waiters {
    channel: Channel<()>,
    tuned: AtomicBool,
}

impl Waiters {
    pub(crate) const fn new() -> Self {
        Self {
            channel: Channel::new(),
            tuned: AtomicBool::new(false),
        }
    }

    /// Waits for a wake-up after [`WaitCount::register`] (with the state lock released), until
    /// `deadline` if given. Returns with the state locked again and the
    /// waiter settled.
    pub(crate) fn wait<'a, S>(
        &self,
        state: &'a spin::Mutex<S>,
        count: fn(&mut S) -> &mut WaitCount,
        deadline: Option<Deadline>,
    ) -> (spin::MutexGuard<'a, S>, Woken) {
        let received = match deadline {
            None => self.channel.receive(),
            Some(deadline) => self.channel.receive_timeout(deadline.remaining()),
        };
        let mut guard = state.lock();
        let error = match received {
            Ok(()) => {
                count(&mut guard).take();
                return (guard, Woken::Granted);
            }
            Err(error) => error,
        };
        let counts = count(&mut guard);
        if counts.grants < counts.waiting {
            counts.waiting -= 1;
            return (guard, Woken::Failed(error));
        }
        // Every registered waiter, this one included, is owed a wake-up: one is on its way with
        // nobody else to take it.
        drop(guard);
        rearm(self.drain());
        let mut guard = state.lock();
        count(&mut guard).take();
        let woken = match error {
            TaskletError::TimedOut | TaskletError::Deadlock => Woken::Granted,
            error => Woken::Aborted(error),
        };
        (guard, woken)
    }

    /// Receives a wake-up that is known to be coming, whatever happens meanwhile; returns the
    /// last kill or throw that arrived during it, for the caller to re-raise.
    fn drain(&self) -> Option<TaskletError> {
        let mut later = None;
        loop {
            match self.channel.receive() {
                Ok(()) => return later,
                Err(error) => {
                    remember(&mut later, error);
                    pause(&mut later, error);
                }
            }
        }
    }

    /// Delivers one wake-up committed with [`WaitCount::grant`]. Call with the state lock
    /// released. Returns once a waiter has it; a kill or throw arriving meanwhile is re-raised on
    /// the current tasklet afterwards (its next blocking call returns it).
    pub(crate) fn deliver(&self) {
        if !self.tuned.load(Ordering::Relaxed) {
            // Woken waiters queue at the end of their run ring; the waker goes on.
            self.channel.set_preference(Preference::Neither);
            self.tuned.store(true, Ordering::Relaxed);
        }
        let mut later = None;
        while let Err(failure) = self.channel.send(()) {
            remember(&mut later, failure.error);
            pause(&mut later, failure.error);
        }
        rearm(later);
    }

    /// Delivers `count` committed wake-ups.
    pub(crate) fn deliver_many(&self, count: usize) {
        for _ in 0..count {
            self.deliver();
        }
    }
}

/// Keeps the error the tasklet must still see: a kill outranks a throw; others are transient.
fn remember(later: &mut Option<TaskletError>, error: TaskletError) {
    match error {
        TaskletError::Killed => *later = Some(error),
        TaskletError::Thrown(_) if *later != Some(TaskletError::Killed) => *later = Some(error),
        _ => {}
    }
}

/// After a failed attempt whose partner is known to be on its way: lets it run if it lives on
/// this CPU (it cannot block us then, or it would be blocked already), else spins briefly.
fn pause(later: &mut Option<TaskletError>, error: TaskletError) {
    match error {
        // Nothing else runs here (deadlock) or we may not block (block trap): the partner is on
        // another CPU, or runnable here behind us.
        TaskletError::Deadlock | TaskletError::BlockTrap => {
            if let Err(error) = tasklet::schedule() {
                remember(later, error);
            }
            core::hint::spin_loop();
        }
        _ => {}
    }
}

/// Raises `error` again on the current tasklet, pending: its next blocking call returns it.
pub(crate) fn rearm(error: Option<TaskletError>) {
    let me = tasklet::current();
    // Raising into the current tasklet only marks it pending; it cannot fail.
    let _ = match error {
        Some(TaskletError::Killed) => me.kill_pending(),
        Some(TaskletError::Thrown(thrown)) => me.throw(thrown, true),
        _ => Ok(()),
    };
}
