//! select and poll with POSIX results, repairing the console quirk.
//!
//! The quirk (from the seed, the Stackless-on-PS3 document Spindle was made from, chapter "selectmodule on PS3"): the platform's select()/poll() fail with a socket's
//! pending error (ECONNRESET and kin) instead of reporting that socket ready, and poll sets its
//! count to -1. POSIX and Linux report such a socket readable and writable (poll: POLLERR, plus
//! POLLHUP once the connection is gone) and leave the error for recv/send/SO_ERROR. So when a raw
//! call fails with a pending socket error, the call is taken as successful and its result rebuilt
//! by walking the descriptors, probing each with a zero-timeout single-socket raw poll (or select,
//! for drivers without poll): a probe that fails the same way names an errored socket. Probes never
//! read SO_ERROR, so the error stays for the caller.

use core::time::Duration;

use super::driver::{NetDriver, RawPollFd};
use super::error::NetError;
use super::sets::{Fd, FdSet, PollFlags, RawFdSet, RawSocket};
use super::socket::Sockets;

/// One entry of [`Sockets::poll`] (BSD `struct pollfd`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PollFd {
    /// The descriptor to watch.
    pub fd: Fd,
    /// Events asked for ([`PollFlags::IN`], [`PollFlags::OUT`], [`PollFlags::PRI`]).
    pub events: PollFlags,
    /// Events that happened, written by poll.
    pub revents: PollFlags,
}

impl PollFd {
    /// An entry asking for `events` on `fd`.
    pub fn new(fd: Fd, events: PollFlags) -> PollFd {
        PollFd {
            fd,
            events,
            revents: PollFlags::NONE,
        }
    }
}

/// What a single-socket probe found.
enum Probe {
    /// The socket's readiness as poll flags.
    Ready(PollFlags),
    /// The probe itself failed with this pending socket error: the socket is errored.
    Errored(NetError),
}

/// What poll reports for a socket with a pending error, before masking by the events asked for.
fn errored_flags(error: NetError) -> PollFlags {
    let mut flags = PollFlags::IN | PollFlags::OUT | PollFlags::ERR;
    if error.ends_connection() {
        flags |= PollFlags::HUP;
    }
    flags
}

/// Masks raw revents as POSIX poll reports them: asked-for events plus ERR/HUP/NVAL.
fn reported(events: PollFlags, revents: PollFlags) -> PollFlags {
    revents & (events | PollFlags::ALWAYS_REPORTED)
}

impl<D: NetDriver> Sockets<D> {
    /// select(): keeps in each set the descriptors that are ready and returns how many bits stay
    /// set in all three. `None` waits without limit.
    ///
    /// A descriptor with a pending error is readable and writable (and exceptional, as POSIX
    /// says); its error comes from recv/send/[`Sockets::take_error`] afterwards. Fails only with
    /// [`NetError::BadDescriptor`] (a closed descriptor in a set), [`NetError::InvalidInput`] (a
    /// number beyond the table), or a genuine failure of the driver's select
    /// ([`NetError::Interrupted`] and the like); the sets are unchanged on failure.
    pub fn select(
        &mut self,
        read: Option<&mut FdSet>,
        write: Option<&mut FdSet>,
        except: Option<&mut FdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let mut sets = [read, write, except];
        let mut raw_sets = [RawFdSet::new(); 3];
        for (set, raw_set) in sets.iter().zip(raw_sets.iter_mut()) {
            if let Some(set) = set {
                for index in set.indices() {
                    raw_set.insert(self.raw_at_index(index)?)?;
                }
            }
        }
        let [raw_read, raw_write, raw_except] = &mut raw_sets;
        let present = [sets[0].is_some(), sets[1].is_some(), sets[2].is_some()];
        let outcome = self.driver.select(
            present[0].then_some(raw_read),
            present[1].then_some(raw_write),
            present[2].then_some(raw_except),
            timeout,
        );
        let mut ready = [FdSet::new(); 3];
        match outcome {
            Ok(_) => {
                for ((set, raw_set), out) in sets.iter().zip(&raw_sets).zip(&mut ready) {
                    if let Some(set) = set {
                        for index in set.indices() {
                            if raw_set.contains(self.raw_at_index(index)?) {
                                out.insert_index(index);
                            }
                        }
                    }
                }
            }
            Err(error) if error.is_pending_socket_error() => {
                self.rebuild_select(&sets, &mut ready)?
            }
            Err(error) => return Err(error),
        }
        let mut count = 0;
        for (set, out) in sets.iter_mut().zip(ready) {
            if let Some(set) = set {
                **set = out;
                count += out.len();
            }
        }
        Ok(count)
    }

    /// The quirk repair for select: probes every descriptor named in any set.
    fn rebuild_select(
        &mut self,
        sets: &[Option<&mut FdSet>; 3],
        ready: &mut [FdSet; 3],
    ) -> Result<(), NetError> {
        let mut named = FdSet::new();
        for set in sets.iter().flatten() {
            for index in set.indices() {
                named.insert_index(index);
            }
        }
        for index in named.indices() {
            let raw = self.raw_at_index(index)?;
            // Which select sets each outcome lands in: read, write, except.
            let landing = match self.probe(raw)? {
                Probe::Errored(_) => [true; 3],
                Probe::Ready(flags) => [
                    flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
                    flags.intersects(PollFlags::OUT | PollFlags::ERR),
                    flags.contains(PollFlags::PRI),
                ],
            };
            for ((set, out), lands) in sets.iter().zip(ready.iter_mut()).zip(landing) {
                if lands && set.as_ref().is_some_and(|set| set.contains_index(index)) {
                    out.insert_index(index);
                }
            }
        }
        Ok(())
    }

    /// poll(): fills each entry's `revents` and returns how many entries have any.
    ///
    /// A closed descriptor gets [`PollFlags::NVAL`] (and counts), as POSIX poll reports it; a
    /// socket with a pending error gets `ERR` (and `HUP` once its connection is gone) plus the
    /// `IN`/`OUT` asked for. More entries than the table's capacity is
    /// [`NetError::InvalidInput`]; a genuine driver failure stays an error.
    pub fn poll(
        &mut self,
        fds: &mut [PollFd],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        if fds.len() > self.capacity() {
            return Err(NetError::InvalidInput);
        }
        let mut raw_entries = core::mem::take(&mut self.poll_scratch);
        raw_entries.clear();
        let mut any_invalid = false;
        for entry in fds.iter_mut() {
            entry.revents = PollFlags::NONE;
            match self.raw_socket(entry.fd) {
                Ok(socket) => raw_entries.push(RawPollFd {
                    socket,
                    events: entry.events,
                    revents: PollFlags::NONE,
                }),
                Err(_) => {
                    entry.revents = PollFlags::NVAL;
                    any_invalid = true;
                }
            }
        }
        // An invalid entry is already a result, and poll returns results without waiting.
        let timeout = if any_invalid {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let outcome = self.driver.poll(&mut raw_entries, timeout);
        let result = match outcome {
            Ok(_) => Ok(()),
            Err(error) if error.is_pending_socket_error() => self.rebuild_poll(&mut raw_entries),
            Err(error) => Err(error),
        };
        if result.is_ok() {
            let mut raw_results = raw_entries.iter();
            for entry in fds.iter_mut().filter(|entry| entry.revents.is_empty()) {
                if let Some(raw) = raw_results.next() {
                    entry.revents = reported(entry.events, raw.revents);
                }
            }
        }
        self.poll_scratch = raw_entries;
        result.map(|()| fds.iter().filter(|entry| !entry.revents.is_empty()).count())
    }

    /// The quirk repair for poll: recomputes every entry's `revents` (the count follows from them).
    fn rebuild_poll(&mut self, raw_entries: &mut [RawPollFd]) -> Result<(), NetError> {
        for entry in raw_entries.iter_mut() {
            entry.revents = match self.probe(entry.socket)? {
                Probe::Ready(flags) => flags,
                Probe::Errored(error) => errored_flags(error),
            };
        }
        Ok(())
    }

    /// Readiness of one raw socket, without waiting and without clearing its pending error.
    fn probe(&mut self, socket: RawSocket) -> Result<Probe, NetError> {
        let mut entry = [RawPollFd {
            socket,
            events: PollFlags::IN | PollFlags::OUT | PollFlags::PRI,
            revents: PollFlags::NONE,
        }];
        match self.driver.poll(&mut entry, Some(Duration::ZERO)) {
            Ok(_) => Ok(Probe::Ready(entry[0].revents)),
            Err(error) if error.is_pending_socket_error() => Ok(Probe::Errored(error)),
            Err(NetError::Unsupported) => self.probe_by_select(socket),
            Err(error) => Err(error),
        }
    }

    fn probe_by_select(&mut self, socket: RawSocket) -> Result<Probe, NetError> {
        let mut read = RawFdSet::new();
        read.insert(socket)?;
        let mut write = read;
        let mut except = read;
        match self.driver.select(
            Some(&mut read),
            Some(&mut write),
            Some(&mut except),
            Some(Duration::ZERO),
        ) {
            Ok(_) => {
                let mut flags = PollFlags::NONE;
                for (set, flag) in [
                    (read, PollFlags::IN),
                    (write, PollFlags::OUT),
                    (except, PollFlags::PRI),
                ] {
                    if set.contains(socket) {
                        flags |= flag;
                    }
                }
                Ok(Probe::Ready(flags))
            }
            Err(error) if error.is_pending_socket_error() => Ok(Probe::Errored(error)),
            Err(error) => Err(error),
        }
    }
}
