//! The wait table behind blocking sockets: who waits for which descriptor, and one poll pass.
//!
//! A blocking call that would block registers a wait (descriptor, read or write, deadline, and a
//! waker: a kernel-owned handle such as a channel sender) and parks. One poller runs
//! [`Reactor::pass`]: a [`Sockets::poll`] over every waited descriptor, then hands back the wakers
//! whose descriptor became ready, whose deadline passed, or whose descriptor is gone. Nothing here
//! points into a waiter's stack: the waiter retries its own call with its own buffer once woken,
//! so errors reach it from recv/send themselves.
//!
//! Waits may outnumber the descriptor table (two selects over every descriptor wait on each
//! twice), but the table's poll takes at most one entry per descriptor it can hold. So a pass
//! polls each waited descriptor once, whatever number of waits name it, and in calls of at most
//! the table's capacity (more than one only when waits name more distinct descriptors than that,
//! stale ones of closed sockets included). A poll call that fails wakes every call with a wait in
//! it with that error ([`Wakeup::Failed`]): no error of the poller is dropped, and no parked call
//! is left waiting on a poll that cannot succeed.
//!
//! The reactor knows nothing of tasklets; [`super::blocking`] joins it to the scheduler.

use alloc::vec::Vec;
use core::time::Duration;

use super::driver::NetDriver;
use super::error::{reserved, NetError};
use super::select::PollFd;
use super::sets::{Fd, PollFlags};
use super::socket::Sockets;

/// What a parked call waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Interest {
    /// recv or accept: data, end of stream, a connection, or an error.
    Read,
    /// send or connect: buffer space, a finished connect, or an error.
    Write,
}

impl Interest {
    fn events(self) -> PollFlags {
        match self {
            Interest::Read => PollFlags::IN,
            Interest::Write => PollFlags::OUT,
        }
    }
}

/// Why a parked call was woken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Wakeup {
    /// The descriptor is ready (maybe with an error): retry the call.
    Ready,
    /// The call's deadline passed.
    TimedOut,
    /// The descriptor was closed (or the poller stopped) while the call waited.
    Closed,
    /// The parked tasklet was woken by something else (killed): the call gives up.
    Interrupted,
    /// Polling the call's descriptors failed with this error (a genuine failure of the driver's
    /// poll): the call fails with it rather than wait on a poll that does not work.
    Failed(NetError),
}

impl Wakeup {
    /// The wake-up as the parked call's outcome: retry (`Ok`) or fail with this error.
    pub(super) fn into_result(self) -> Result<(), NetError> {
        match self {
            Wakeup::Ready => Ok(()),
            Wakeup::TimedOut => Err(NetError::TimedOut),
            Wakeup::Closed => Err(NetError::BadDescriptor),
            Wakeup::Interrupted => Err(NetError::Interrupted),
            Wakeup::Failed(error) => Err(error),
        }
    }
}

/// A parked waiter, to cancel it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct WaitId {
    index: u16,
    /// 64 bits: a slot would have to be reused for centuries before an old id matched again.
    generation: u64,
}

/// One parked call: how to wake it and until when it may wait.
struct Waiter<W> {
    waker: W,
    deadline_ns: Option<u64>,
}

struct WaiterSlot<W> {
    generation: u64,
    waiter: Option<Waiter<W>>,
}

/// One descriptor a waiter waits for (a select waits for many).
#[derive(Clone, Copy)]
struct Wait {
    fd: Fd,
    interest: Interest,
    waiter: u16,
}

/// Waiters and their descriptors in fixed storage, with a poll pass that finds whom to wake.
///
/// Each waiter is woken at most once: a select waiting on many descriptors is one waiter, and
/// the pass that wakes it drops all its waits.
pub(super) struct Reactor<W> {
    waiters: Vec<WaiterSlot<W>>,
    waits: Vec<Option<Wait>>,
    parked: usize,
    /// One poll entry per waited descriptor, ordered by descriptor, asking for every event any
    /// wait on it wants; sized once to the wait capacity.
    entries: Vec<PollFd>,
    /// The error of the poll call that covered each entry, if it failed.
    entry_errors: Vec<Option<NetError>>,
}

/// The order of [`Reactor::entries`] (descriptors are not `Ord`: their numbers say nothing of
/// which socket came first).
fn entry_key(fd: Fd) -> (usize, u64) {
    (fd.index(), fd.generation())
}

impl<W> Reactor<W> {
    /// A table of at most `max_waiters` parked calls waiting on at most `max_waits`
    /// descriptors in all (each 1..=65535).
    pub(super) fn new(max_waiters: usize, max_waits: usize) -> Result<Reactor<W>, NetError> {
        let limit = usize::from(u16::MAX);
        if max_waiters == 0 || max_waiters > limit || max_waits == 0 || max_waits > limit {
            return Err(NetError::InvalidInput);
        }
        let mut waiters = reserved(max_waiters)?;
        waiters.extend((0..max_waiters).map(|_| WaiterSlot {
            generation: 0,
            waiter: None,
        }));
        let mut waits = reserved(max_waits)?;
        waits.resize(max_waits, None);
        Ok(Reactor {
            waiters,
            waits,
            parked: 0,
            entries: reserved(max_waits)?,
            entry_errors: reserved(max_waits)?,
        })
    }

    /// How many calls are parked.
    pub(super) fn parked(&self) -> usize {
        self.parked
    }

    /// Parks a call waiting for any of `interests` (or its deadline). Nothing is registered on
    /// failure: an empty list is [`NetError::InvalidInput`], a full table
    /// [`NetError::NoBuffers`]; the waker comes back with the error.
    pub(super) fn park(
        &mut self,
        interests: &[(Fd, Interest)],
        deadline_ns: Option<u64>,
        waker: W,
    ) -> Result<WaitId, (NetError, W)> {
        if interests.is_empty() {
            return Err((NetError::InvalidInput, waker));
        }
        let free_waits = self.waits.iter().filter(|wait| wait.is_none()).count();
        let free_waiter = self.waiters.iter().position(|slot| slot.waiter.is_none());
        let Some(index) = free_waiter.filter(|_| free_waits >= interests.len()) else {
            return Err((NetError::NoBuffers, waker));
        };
        let mut pending = interests.iter();
        for wait in self.waits.iter_mut().filter(|wait| wait.is_none()) {
            let Some(&(fd, interest)) = pending.next() else {
                break;
            };
            *wait = Some(Wait {
                fd,
                interest,
                waiter: index as u16,
            });
        }
        let slot = &mut self.waiters[index];
        slot.waiter = Some(Waiter { waker, deadline_ns });
        self.parked += 1;
        Ok(WaitId {
            index: index as u16,
            generation: slot.generation,
        })
    }

    /// Unparks a call that was not woken yet, returning its waker.
    pub(super) fn cancel(&mut self, id: WaitId) -> Option<W> {
        let slot = self.waiters.get(usize::from(id.index))?;
        if slot.generation != id.generation {
            return None;
        }
        self.take(usize::from(id.index))
    }

    /// Removes a waiter and all its waits.
    fn take(&mut self, index: usize) -> Option<W> {
        let slot = &mut self.waiters[index];
        let waiter = slot.waiter.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.parked -= 1;
        for wait in self.waits.iter_mut() {
            if wait.is_some_and(|wait| usize::from(wait.waiter) == index) {
                *wait = None;
            }
        }
        Some(waiter.waker)
    }

    /// Takes every call waiting on `fd` (it is being closed): each is to be woken with
    /// [`Wakeup::Closed`].
    pub(super) fn take_fd(&mut self, fd: Fd, woken: &mut Vec<(W, Wakeup)>) {
        for position in 0..self.waits.len() {
            if let Some(wait) = self.waits[position].filter(|wait| wait.fd == fd) {
                if let Some(waker) = self.take(usize::from(wait.waiter)) {
                    woken.push((waker, Wakeup::Closed));
                }
            }
        }
    }

    /// Takes every parked call (the poller is stopping): each is to be woken with
    /// [`Wakeup::Closed`].
    pub(super) fn take_all(&mut self, woken: &mut Vec<(W, Wakeup)>) {
        for index in 0..self.waiters.len() {
            if let Some(waker) = self.take(index) {
                woken.push((waker, Wakeup::Closed));
            }
        }
    }

    /// The earliest deadline of any parked call, on the platform clock.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.waiters
            .iter()
            .filter_map(|slot| slot.waiter.as_ref()?.deadline_ns)
            .min()
    }

    /// One pass: polls every waited descriptor once (waiting at most `timeout`), then moves into
    /// `woken` the calls with a ready descriptor ([`Wakeup::Ready`], also for an error or hang-up
    /// the retried call will report), a closed one ([`Wakeup::Closed`]), a descriptor the poll
    /// failed on ([`Wakeup::Failed`], with the poll's error), or a deadline at or before `now_ns`
    /// ([`Wakeup::TimedOut`]). Returns how many were woken.
    ///
    /// Descriptors are polled in calls of at most the table's capacity; when that takes more than
    /// one call, none waits (each polls with a zero timeout), so no descriptor goes unwatched
    /// while another call waits. A ready or closed descriptor wins over a failed poll of another
    /// descriptor of the same call, and both over a deadline.
    ///
    /// `woken` should have room for `max_waiters` entries (every call that can be parked) so the
    /// pass never allocates. The caller wakes them *after* releasing any lock it holds, since
    /// waking may switch tasklets.
    pub(super) fn pass<D: NetDriver>(
        &mut self,
        sockets: &mut Sockets<D>,
        timeout: Option<Duration>,
        now_ns: u64,
        woken: &mut Vec<(W, Wakeup)>,
    ) -> usize {
        self.gather_entries();
        self.poll_entries(sockets, timeout);
        let before = woken.len();
        // Ready or closed descriptors first; then failed polls; then deadlines.
        for failed in [false, true] {
            for position in 0..self.waits.len() {
                // A wait taken with its waiter earlier in this pass is gone.
                let Some(wait) = self.waits[position] else {
                    continue;
                };
                let Some((revents, error)) = self.entry_for(wait.fd) else {
                    continue;
                };
                let wakeup = match error {
                    Some(error) if failed => Wakeup::Failed(error),
                    _ if failed => continue,
                    // Sockets::poll marks a closed descriptor before calling the driver, so NVAL
                    // holds even when the call then failed.
                    _ if revents.contains(PollFlags::NVAL) => Wakeup::Closed,
                    None if revents
                        .intersects(wait.interest.events() | PollFlags::ERR | PollFlags::HUP) =>
                    {
                        Wakeup::Ready
                    }
                    _ => continue,
                };
                if let Some(waker) = self.take(usize::from(wait.waiter)) {
                    woken.push((waker, wakeup));
                }
            }
        }
        for index in 0..self.waiters.len() {
            let expired = self.waiters[index]
                .waiter
                .as_ref()
                .and_then(|waiter| waiter.deadline_ns)
                .is_some_and(|deadline| deadline <= now_ns);
            if expired {
                if let Some(waker) = self.take(index) {
                    woken.push((waker, Wakeup::TimedOut));
                }
            }
        }
        woken.len() - before
    }

    /// Fills `entries` with one entry per waited descriptor, in [`entry_key`] order, asking for
    /// the events of every wait on it.
    fn gather_entries(&mut self) {
        self.entries.clear();
        for wait in self.waits.iter().flatten() {
            self.entries
                .push(PollFd::new(wait.fd, wait.interest.events()));
        }
        self.entries
            .sort_unstable_by_key(|entry| entry_key(entry.fd));
        self.entries.dedup_by(|later, kept| {
            let same = later.fd == kept.fd;
            if same {
                kept.events |= later.events;
            }
            same
        });
    }

    /// Polls `entries` in calls of at most the table's capacity, recording each failed call's
    /// error against its entries.
    fn poll_entries<D: NetDriver>(&mut self, sockets: &mut Sockets<D>, timeout: Option<Duration>) {
        self.entry_errors.clear();
        self.entry_errors.resize(self.entries.len(), None);
        // A table holds at least one descriptor; `max` only keeps `chunks_mut` from panicking.
        let chunk = sockets.capacity().max(1);
        let timeout = if self.entries.len() <= chunk {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        for (entries, errors) in self
            .entries
            .chunks_mut(chunk)
            .zip(self.entry_errors.chunks_mut(chunk))
        {
            if let Err(error) = sockets.poll(entries, timeout) {
                errors.fill(Some(error));
            }
        }
    }

    /// The revents of `fd`'s entry after [`Reactor::poll_entries`], with the error of its poll
    /// call if that failed.
    fn entry_for(&self, fd: Fd) -> Option<(PollFlags, Option<NetError>)> {
        let position = self
            .entries
            .binary_search_by_key(&entry_key(fd), |entry| entry_key(entry.fd))
            .ok()?;
        Some((self.entries[position].revents, self.entry_errors[position]))
    }
}

impl<W> core::fmt::Debug for Reactor<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reactor")
            .field("capacity", &self.waiters.len())
            .field("parked", &self.parked)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
