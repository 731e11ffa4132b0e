//! The wake primitive: a [`WaitList`] of tasklets waiting for a condition, and the grants that
//! wake them.
//!
//! A primitive built on it (a lock, a queue, a socket's wake slot) keeps its condition in its own
//! state, behind its own lock, and a `WaitList` beside it:
//!
//! 1. A tasklet that must wait checks the condition and [`WaitList::register`]s under the
//!    owner's lock, then calls [`WaitList::wait`], which releases that lock. Registered, it
//!    cannot miss a wake-up: a grant made from then on is its (or another registered waiter's).
//! 2. A waker changes the condition and [`WaitList::grant`]s (one) or [`WaitList::grant_all`]s
//!    under the owner's lock, and hands the grant over once it has released the lock. A grant
//!    goes to the longest-waiting blocked waiter, which is made runnable at the end of its
//!    CPU's run ring (on whatever CPU it lives), or is marked for it if it is registered but not
//!    blocked yet.
//! 3. The wait ends with the owner's lock taken again and the waiter settled ([`Waited`]):
//!    granted; failed (killed, thrown into, timed out, deadlock, block trap) before any grant
//!    could be its; or failed as a grant reached it, which it then holds and must pass on (or,
//!    after a timeout, may keep).
//!
//! The blocking is the scheduler's own: a waiter sits in a [`WaitQueue`] under the list's lock
//! and blocks with [`Scheduler::block_current`](super::sched::Scheduler::block_current), with a
//! [`Blocker`] through which a kill, its timeout or deadlock detection takes it out; a waker
//! takes it out with [`WaitQueue::pop_front`], writes the grant into its value slot and wakes it
//! like a channel wakes a partner (`Scheduler::wake`: the ring here, the home CPU's inbox
//! elsewhere).
//!
//! # Who holds a grant
//! Grants are not addressed: the bookkeeping ([`Ledger`]) counts registered waiters and grants,
//! so the counts a primitive shows (waiters without a grant, grants not yet taken) stay exact. A
//! grant made while no waiter blocks "floats": the next registered waiter to arrive at its wait
//! takes it without blocking, and a waiter leaving after a failure takes it only if every
//! registered waiter without a grant is owed one, for then the grant has nobody else to go to.
//!
//! # The hand-off
//! [`Grant::hand_over`] of a floating grant waits until a waiter has taken it, as a rendezvous
//! waits for its partner: a release returns once its successor holds the lock, even if that
//! successor was killed and only passes the lock on. The wait is short (the taker is registered
//! and runnable) and ends however the waker is interrupted meanwhile (a kill or throw is raised
//! again once it ends). A tasklet abandoned with `kill_forced` while registered never settles:
//! its registration stays counted, and a floating grant made to it keeps its waker waiting, as
//! with any rendezvous whose partner was abandoned. A grant made with
//! [`WaitList::grant_detached`] (a poller's, which must not wait) is marked and needs no
//! hand-off.

mod ledger;

use super::list::List;
use super::per_cpu::this_cpu;
use super::ring::Placement;
use super::sched::BusyGuard;
use super::slot::Staged;
use super::tcb::{self, Blocker, State, Tcb, WaitKind, WaitLinks, WaitQueue};
use super::TaskletError;
use crate::time::Deadline;
use ledger::{GrantTo, Ledger, Settle};

/// A FIFO of tasklets waiting for one condition of their owner; see the [module docs](self).
///
/// It has a spin lock of its own (taken inside the owner's, never the other way round), so that
/// the scheduler can take a waiter out (kill, timeout, deadlock) without knowing the owner.
pub(crate) struct WaitList {
    inner: spin::Mutex<Inner>,
}

struct Inner {
    ledger: Ledger,
    /// Blocked waiters, longest-waiting first.
    queue: WaitQueue,
    /// Wakers blocked until a floating grant of theirs is taken.
    handoffs: WaitQueue,
}

impl Inner {
    /// After a floating grant was taken: the waker to wake for it, told through its slot.
    fn released_waker(&mut self, release: bool) -> Option<Waking> {
        if !release {
            return None;
        }
        let waker = self.handoffs.pop_front()?;
        // SAFETY: a blocked waker's slot belongs to the lock of the queue it waited in (held),
        // and it is empty: its owner claims it on every resumption.
        unsafe { waker.slot().put_staged(Staged::Inline(())) };
        Some(Waking(waker))
    }
}

/// The list's lock, held with the scheduler entered (see [`WaitList::lock`]). The lock is
/// released before the scheduler is left (fields drop in order).
struct Locked<'a> {
    inner: spin::MutexGuard<'a, Inner>,
    _busy: BusyGuard<'static>,
}

impl core::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl core::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

/// How a [`WaitList::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A grant reached the waiter.
    Granted,
    /// The wait failed with this error before any grant could be the waiter's; it is no longer
    /// registered.
    Failed(TaskletError),
    /// The wait failed with this error, but a grant had nobody else to go to and the waiter
    /// holds it: it passes on what the grant carried (or, after a timeout, may keep it).
    FailedHolding(TaskletError),
}

/// A waiter taken out of a queue by a waker, to be made runnable once the waker's locks are
/// released ([`Waking::wake`]). Dropping it unwoken would leave the tasklet blocked for good.
#[must_use = "a waiter taken out of its queue must be woken"]
pub(crate) struct Waking(&'static Tcb);

impl Waking {
    /// Makes the waiter runnable at the end of its CPU's run ring; the caller goes on.
    pub(crate) fn wake(self) {
        let scheduler = this_cpu();
        let _busy = scheduler.enter();
        let _ = scheduler.wake(self.0, Placement::Tail);
    }

    /// Makes the waiter runnable and, if it lives on this CPU, switches to it at once (the
    /// caller runs again after the rest of the ring), as a channel does for a preferred
    /// receiver.
    pub(crate) fn wake_now(self) {
        let scheduler = this_cpu();
        let me = scheduler.current();
        let busy = scheduler.enter();
        if scheduler.wake(self.0, Placement::Next) {
            scheduler.switch_to_partner(me, self.0, busy);
        }
    }
}

/// A grant made by [`WaitList::grant`], to hand over once the owner's lock is released.
#[must_use = "a grant must be handed over"]
pub(crate) enum Grant<'a> {
    /// Every registered waiter already had a grant: nothing was granted.
    Nobody,
    /// Granted to this blocked waiter.
    Waiter(Waking),
    /// Granted to a registered waiter that is not blocked.
    Floating(&'a WaitList),
}

impl Grant<'_> {
    /// Whether a grant was made (the owner keeps what it carries for the waiter).
    pub(crate) fn is_granted(&self) -> bool {
        !matches!(self, Grant::Nobody)
    }

    /// Wakes the waiter granted, or waits until a floating grant is taken (see the [module
    /// docs](self)). Call with the owner's lock released.
    pub(crate) fn hand_over(self) {
        match self {
            Grant::Nobody => {}
            Grant::Waiter(waking) => waking.wake(),
            Grant::Floating(list) => list.await_handoff(),
        }
    }
}

/// The grants of [`WaitList::grant_all`], to hand over once the owner's lock is released.
#[must_use = "grants must be handed over"]
pub(crate) struct Grants<'a> {
    list: &'a WaitList,
    /// The blocked waiters granted, longest-waiting first (out of the queue, not yet woken).
    woken: List<WaitLinks>,
    /// Grants made to unqueued waiters.
    floating: usize,
    count: usize,
}

impl Grants<'_> {
    /// How many waiters were granted.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Wakes the blocked waiters granted, in their order, then waits until every floating grant
    /// is taken. Call with the owner's lock released.
    pub(crate) fn hand_over(self) {
        while let Some(waiter) = self.woken.pop_front() {
            Waking(waiter).wake();
        }
        for _ in 0..self.floating {
            self.list.await_handoff();
        }
    }
}

/// Takes a blocked waiter out of its list's queue (kill, timeout, deadlock). False if a waker
/// took it out first.
pub(super) unsafe fn cancel_waiter(object: *const (), tcb: &Tcb) -> bool {
    // SAFETY: `object` is the list the tasklet waits in; the waiter borrows it (through its
    // owner) for the whole wait.
    let list = unsafe { &*object.cast::<WaitList>() };
    let mut inner = list.inner.lock();
    if inner.queue.remove(tcb) {
        inner.ledger.cancelled();
        true
    } else {
        false
    }
}

/// Takes a waker blocked for a hand-off out of its list's hand-off queue (kill, deadlock).
pub(super) unsafe fn cancel_handoff(object: *const (), tcb: &Tcb) -> bool {
    // SAFETY: as in `cancel_waiter`; the waker borrows the list while it waits.
    let list = unsafe { &*object.cast::<WaitList>() };
    let mut inner = list.inner.lock();
    if inner.handoffs.remove(tcb) {
        inner.ledger.handoff_cancelled();
        true
    } else {
        false
    }
}

impl Default for WaitList {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitList {
    /// A list with nobody waiting.
    pub(crate) const fn new() -> Self {
        Self {
            inner: spin::Mutex::new(Inner {
                ledger: Ledger::new(),
                queue: WaitQueue::new(),
                handoffs: WaitQueue::new(),
            }),
        }
    }

    /// Takes the list's lock with the scheduler entered, so that no watchdog preemption leaves
    /// the lock held while the scheduler takes a waiter of this list out (it takes the lock).
    /// (The blocking paths, already entered, take the lock directly.)
    fn lock(&self) -> Locked<'_> {
        let busy = this_cpu().enter();
        Locked {
            inner: self.inner.lock(),
            _busy: busy,
        }
    }

    /// Registered waiters without a grant.
    pub(crate) fn ungranted(&self) -> usize {
        self.lock().ledger.ungranted()
    }

    /// Grants made and not yet taken by their waiters.
    pub(crate) fn granted(&self) -> usize {
        self.lock().ledger.granted()
    }

    /// Registers the current tasklet as a waiter: under the owner's lock, with the condition
    /// found false. It must then call [`WaitList::wait`].
    pub(crate) fn register(&self) {
        self.lock().ledger.register();
    }

    /// Waits for a grant after [`WaitList::register`]: releases the owner's lock by dropping
    /// `guard`, blocks the current tasklet until a grant reaches it, a kill or throw, `deadline`
    /// or deadlock, then takes the owner's lock again with `relock` and settles. Other tasklets
    /// run meanwhile.
    pub(crate) fn wait<G, R>(
        &self,
        guard: G,
        relock: impl FnOnce() -> R,
        deadline: Option<Deadline>,
    ) -> (R, Waited) {
        drop(guard);
        let outcome = self.block(deadline);
        let relocked = relock();
        let mut inner = self.lock();
        let (waited, released) = match outcome {
            Ok(()) => {
                inner.ledger.settle_granted();
                (Waited::Granted, None)
            }
            Err(error) => match inner.ledger.settle_failed() {
                Settle::Leave => (Waited::Failed(error), None),
                Settle::Take { release } => {
                    (Waited::FailedHolding(error), inner.released_waker(release))
                }
            },
        };
        drop(inner);
        if let Some(waker) = released {
            waker.wake();
        }
        (relocked, waited)
    }

    /// Takes back a registration whose wait never started (the owner's lock held). Only for a
    /// waiter that no grant can have reached yet (nobody could know it waits).
    pub(crate) fn unregister(&self) {
        let settle = self.lock().ledger.settle_failed();
        debug_assert_eq!(
            settle,
            Settle::Leave,
            "a grant reached a waiter unknown to wakers"
        );
    }

    /// The waiter's side between registering and settling: takes a floating grant, or blocks
    /// until a grant or a failure. `Ok` when a grant reached it.
    fn block(&self, deadline: Option<Deadline>) -> Result<(), TaskletError> {
        let scheduler = this_cpu();
        let me = scheduler.current();
        scheduler.before_blocking(me)?;
        let busy = scheduler.enter();
        let mut inner = self.inner.lock();
        if inner.ledger.has_floating() {
            let release = inner.ledger.take_floating();
            let released = inner.released_waker(release);
            drop(inner);
            drop(busy);
            if let Some(waker) = released {
                waker.wake();
            }
            return Ok(());
        }
        if me.has_flag(tcb::FLAG_BLOCK_TRAP) {
            return Err(TaskletError::BlockTrap);
        }
        inner.ledger.enqueue();
        me.set_state(State::Blocked);
        inner.queue.push_back(me);
        drop(inner);
        scheduler.block_current(me, Some(self.blocker(WaitKind::Waiter)), deadline);
        // Claim the grant first: the cleanup below may run arbitrary destructors.
        // SAFETY: running again and out of every queue: the slot is ours; a waker put a `()`
        // there if it granted.
        let granted = unsafe { me.slot().take::<()>() }.is_some();
        let error = if granted {
            None
        } else {
            scheduler.take_raised(me)
        };
        busy.finish_resume();
        match error {
            None if granted => Ok(()),
            // Out of the queue without a grant: the canceller raised why.
            error => Err(error.unwrap_or(TaskletError::Deadlock)),
        }
    }

    /// Grants one registered waiter without a grant, if there is one (under the owner's lock):
    /// the longest-waiting blocked one, else one still to arrive or leaving. Hand the grant over
    /// once the lock is released.
    pub(crate) fn grant(&self) -> Grant<'_> {
        let mut inner = self.lock();
        match inner.ledger.grant(true) {
            GrantTo::Nobody => Grant::Nobody,
            GrantTo::Floating => Grant::Floating(self),
            GrantTo::Queued => Grant::Waiter(Self::pop_granted(&mut inner)),
        }
    }

    /// [`WaitList::grant`] for a waker that must not wait: the blocked waiter granted, if any,
    /// to wake once the owner's lock is released. A grant to an unqueued waiter is simply
    /// there for it to take (only for lists whose wakers all grant this way).
    pub(crate) fn grant_detached(&self) -> Option<Waking> {
        let mut inner = self.lock();
        match inner.ledger.grant(false) {
            GrantTo::Queued => Some(Self::pop_granted(&mut inner)),
            GrantTo::Nobody | GrantTo::Floating => None,
        }
    }

    /// Grants every registered waiter without a grant (under the owner's lock).
    pub(crate) fn grant_all(&self) -> Grants<'_> {
        let mut inner = self.lock();
        let woken = List::new();
        let (mut floating, mut count) = (0, 0);
        loop {
            match inner.ledger.grant(true) {
                GrantTo::Nobody => break,
                GrantTo::Floating => floating += 1,
                GrantTo::Queued => {
                    let Waking(waiter) = Self::pop_granted(&mut inner);
                    // SAFETY: just taken out of the queue, so its wait link is free; blocked, it
                    // stays alive (its scheduler's reference) until woken from this batch.
                    unsafe { woken.push_back(waiter) };
                }
            }
            count += 1;
        }
        Grants {
            list: self,
            woken,
            floating,
            count,
        }
    }

    /// Takes the first queued waiter out and gives it its grant.
    fn pop_granted(inner: &mut Inner) -> Waking {
        let waiter = inner
            .queue
            .pop_front()
            .expect("the ledger counts a queued waiter");
        // SAFETY: a blocked waiter's slot belongs to the lock of its queue (held), and it is
        // empty: its owner claims it on every resumption.
        unsafe { waiter.slot().put_staged(Staged::Inline(())) };
        Waking(waiter)
    }

    /// A waker whose grant floated: waits until a waiter has taken it. A kill or throw meanwhile
    /// does not end the wait; it is raised again afterwards.
    fn await_handoff(&self) {
        let mut later = None;
        loop {
            let scheduler = this_cpu();
            let me = scheduler.current();
            if let Err(error) = scheduler.before_blocking(me) {
                remember(&mut later, error);
                pause(&mut later, error);
                continue;
            }
            let busy = scheduler.enter();
            let mut inner = self.inner.lock();
            if inner.ledger.await_handoff() {
                break;
            }
            if me.has_flag(tcb::FLAG_BLOCK_TRAP) {
                inner.ledger.handoff_cancelled();
                drop(inner);
                drop(busy);
                pause(&mut later, TaskletError::BlockTrap);
                continue;
            }
            me.set_state(State::Blocked);
            inner.handoffs.push_back(me);
            drop(inner);
            scheduler.block_current(me, Some(self.blocker(WaitKind::Handoff)), None);
            // SAFETY: as in `block`: a taker put a `()` here if it released us.
            let released = unsafe { me.slot().take::<()>() }.is_some();
            let error = if released {
                None
            } else {
                scheduler.take_raised(me)
            };
            busy.finish_resume();
            if released {
                break;
            }
            if let Some(error) = error {
                remember(&mut later, error);
                pause(&mut later, error);
            }
        }
        if let Some(error) = later {
            let scheduler = this_cpu();
            let _busy = scheduler.enter();
            scheduler.raise_pending(scheduler.current(), error);
        }
    }

    fn blocker(&self, kind: WaitKind) -> Blocker {
        Blocker::new(kind, self)
    }
}

/// Keeps the error a waker must still see after its hand-off: a kill outranks a throw; the
/// others (deadlock, block trap) are transient.
fn remember(later: &mut Option<TaskletError>, error: TaskletError) {
    match error {
        TaskletError::Killed => *later = Some(error),
        TaskletError::Thrown(_) if *later != Some(TaskletError::Killed) => *later = Some(error),
        _ => {}
    }
}

/// After a failed attempt to wait for a taker known to be on its way: if nothing else could run
/// here (deadlock) or the waker may not block (block trap), the taker is on another CPU or
/// runnable here behind us: yield to it, then spin briefly.
fn pause(later: &mut Option<TaskletError>, error: TaskletError) {
    if matches!(error, TaskletError::Deadlock | TaskletError::BlockTrap) {
        if let Err(error) = super::schedule_out_of_line() {
            remember(later, error);
        }
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests;
