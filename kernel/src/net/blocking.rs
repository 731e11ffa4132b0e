//! Tasklet-blocking sockets: a blocking call parks only its tasklet; one poller wakes it.
//!
//! As Stackless's stacklesssocket and gevent do it: every socket is non-blocking underneath. A
//! call that would block registers a wait in the [`Reactor`] and parks its tasklet (it leaves the
//! run ring); a single poller tasklet polls every waited descriptor once per turn (however many
//! calls wait on it, and in as many calls as the descriptor table's capacity requires) and wakes
//! exactly the tasklets whose descriptor is ready, whose deadline passed, or whose descriptor was
//! closed; a poll that fails wakes the calls it covered with its error. A woken call retries with
//! its own buffer, so data and errors (a reset included) reach it from the socket itself, and
//! nothing the kernel keeps points into a tasklet's stack: waits, wake slots and the parked
//! tasklets' handles live in the [`Net`]'s fixed tables.
//!
//! Each wake slot parks its call on the kernel's wake primitive (a wait list of one): the call
//! registers under the `Net`'s lock as it parks, so a wake-up decided at any moment after that
//! reaches it (if it is not blocked yet, it finds the grant when it gets there). The poller (or
//! a close) records why in the slot under the lock and grants once the lock is free, switching
//! to the woken call at once when it lives on the same CPU.
//!
//! The poller starts with the first parked call and ends when nobody is parked, so a parked call
//! always has a poller (a call that cannot start it fails instead of parking); when it is the
//! only runnable tasklet it sleeps on the timer queue until the next deadline or a short tick. A
//! call's timeout is its wait's timeout, so the timer queue ends it even if the poller is busy.
//! [`Net::close`] wakes every call waiting on the descriptor with [`NetError::BadDescriptor`], a
//! deadline with [`NetError::TimedOut`], and a kill of the parked tasklet ends its call with
//! [`NetError::Interrupted`] after removing its wait.
//!
//! The wake slots, their wait lists and the waits live in the [`Net`]'s fixed tables (sized by
//! [`NetConfig`]; a call that finds them full fails with [`NetError::NoBuffers`]); parked calls
//! and the poller may sit on different CPUs, since wait lists cross them.

use alloc::sync::Arc;
use core::net::SocketAddrV4;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use spin::Mutex;

use super::driver::{NetDriver, Shutdown, SocketKind};
use super::error::{reserved, NetError};
use super::reactor::{Interest, Reactor, WaitId, Wakeup};
use super::select::PollFd;
use super::sets::{Fd, FdSet, PollFlags};
use super::socket::Sockets;
use super::wake::{Inner, Shared, WakeRef, WakeSlot};
use crate::tasklet::waiter::{WaitList, Waited};
use crate::tasklet::{self, Builder, TaskletError};
use crate::time::Deadline;

/// The poller's stack: a poll pass with the quirk repair runs deep in unoptimised builds.
const POLLER_STACK_BYTES: usize = 32 << 10;

/// How long the poller waits for the network when no other tasklet can run.
const IDLE_TICK: Duration = Duration::from_millis(1);

/// Sizes of a [`Net`], checked by [`Net::new`].
///
/// The waits are independent of the descriptors: calls waiting on the same descriptor each
/// count, so `max_waits` may exceed `descriptors` (the poller polls each descriptor once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Descriptors (1..=[`super::FD_SETSIZE`]).
    pub descriptors: usize,
    /// Calls that may be parked at once (1..=65535); one more fails with
    /// [`NetError::NoBuffers`].
    pub max_parked: usize,
    /// Descriptors all parked calls may wait on together (1..=65535; a select or poll waits on
    /// each descriptor it names, for reading and writing separately); a call needing more than
    /// are left fails with [`NetError::NoBuffers`].
    pub max_waits: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            descriptors: 64,
            max_parked: 64,
            max_waits: 256,
        }
    }
}

/// Blocking sockets for tasklets over one driver; clones share it.
///
/// Every socket is non-blocking underneath: a call that would block parks only its tasklet, and
/// one poller tasklet (started with the first parked call, ended when nobody is parked) wakes it
/// to retry once its descriptor is ready. A parked call ends with [`NetError::TimedOut`] when its
/// timeout passes, with [`NetError::BadDescriptor`] when its descriptor is closed
/// ([`Net::close`]), with [`NetError::Interrupted`] when its tasklet is killed, and with the
/// driver's error when polling its descriptors fails. Every table is fixed at construction
/// ([`NetConfig`]): a call that would park beyond [`NetConfig::max_parked`] calls or
/// [`NetConfig::max_waits`] waits, or when the poller tasklet cannot be spawned (stack budget,
/// memory), fails at once with [`NetError::NoBuffers`]. Parked calls and the poller may sit on
/// different CPUs.
pub struct Net<D> {
    shared: Arc<Shared<D>>,
}

impl<D> Clone for Net<D> {
    fn clone(&self) -> Self {
        Net {
            shared: self.shared.clone(),
        }
    }
}

impl<D> core::fmt::Debug for Net<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Net").finish_non_exhaustive()
    }
}

fn expired(deadline: Option<Deadline>) -> bool {
    deadline.is_some_and(Deadline::has_passed)
}

impl<D: NetDriver + Send + 'static> Net<D> {
    /// Blocking sockets over `driver`, with every table sized by `config`.
    pub fn new(driver: D, config: NetConfig) -> Result<Net<D>, NetError> {
        let sockets = Sockets::new(driver, config.descriptors)?;
        let reactor = Reactor::new(config.max_parked, config.max_waits)?;
        let mut slots = reserved(config.max_parked)?;
        slots.resize_with(config.max_parked, WakeSlot::default);
        let woken = reserved(config.max_parked)?;
        let interests = reserved(config.max_waits)?;
        let mut waiters = reserved(config.max_parked)?;
        waiters.resize_with(config.max_parked, WaitList::new);
        Ok(Net {
            shared: Arc::new(Shared {
                waiters,
                inner: Mutex::new(Inner {
                    sockets,
                    reactor,
                    slots,
                    woken,
                    interests,
                    ungranted: 0,
                }),
                poller_running: AtomicBool::new(false),
            }),
        })
    }

    /// Runs `body` on the socket table under the lock (for non-blocking calls and inspection).
    pub fn with_sockets<R>(&self, body: impl FnOnce(&mut Sockets<D>) -> R) -> R {
        body(&mut self.shared.inner.lock().sockets)
    }

    /// Calls parked now.
    pub fn parked(&self) -> usize {
        self.shared.inner.lock().reactor.parked()
    }

    /// A new stream socket, in non-blocking mode underneath.
    pub fn socket(&self) -> Result<Socket<D>, NetError> {
        let fd = self.with_sockets(|sockets| {
            let fd = sockets.socket(SocketKind::Stream)?;
            if let Err(error) = sockets.set_nonblocking(fd, true) {
                let _ = sockets.close(fd);
                return Err(error);
            }
            Ok(fd)
        })?;
        Ok(self.wrap(fd))
    }

    fn wrap(&self, fd: Fd) -> Socket<D> {
        Socket {
            net: self.clone(),
            fd: Some(fd),
            timeout: None,
        }
    }

    /// Closes `fd`, first waking every call waiting on it with [`NetError::BadDescriptor`].
    pub fn close(&self, fd: Fd) -> Result<(), NetError> {
        let result = {
            let mut inner = self.shared.inner.lock();
            let inner = &mut *inner;
            inner.reactor.take_fd(fd, &mut inner.woken);
            inner.record();
            inner.sockets.close(fd)
        };
        self.shared.deliver();
        result
    }

    /// Runs `attempt` until it does not answer [`NetError::WouldBlock`], parking the tasklet
    /// between tries until a wait on `interests` ends. The deadline ends the call with
    /// [`NetError::TimedOut`].
    fn block_on<T>(
        &self,
        deadline: Option<Deadline>,
        mut attempt: impl FnMut(&mut Inner<D>) -> Result<Option<T>, NetError>,
    ) -> Result<T, NetError> {
        loop {
            let mut inner = self.shared.inner.lock();
            if let Some(done) = attempt(&mut inner)? {
                return Ok(done);
            }
            if expired(deadline) {
                return Err(NetError::TimedOut);
            }
            // `attempt` left the interests to wait for in `inner.interests`.
            let wake = self.park(inner, deadline)?;
            wake.into_result()?;
        }
    }

    /// Registers the current tasklet for `inner.interests`, parks it in its slot's wait list
    /// (with the deadline as the wait's timeout, on the timer queue), and returns why it woke.
    /// Parks nothing and fails with [`NetError::NoBuffers`] when every wake slot is taken
    /// ([`NetConfig::max_parked`]), the waits left are too few ([`NetConfig::max_waits`]), or
    /// the poller cannot be started.
    fn park(
        &self,
        mut guard: spin::MutexGuard<'_, Inner<D>>,
        deadline: Option<Deadline>,
    ) -> Result<Wakeup, NetError> {
        let inner = &mut *guard;
        let index = inner
            .slots
            .iter()
            .position(|slot| !slot.in_use)
            .ok_or(NetError::NoBuffers)?;
        let wake = WakeRef {
            index: index as u16,
            generation: inner.slots[index].generation,
        };
        let id = inner
            .reactor
            .park(&inner.interests, deadline.map(Deadline::as_ns), wake)
            .map_err(|(error, _)| error)?;
        if let Err(error) = self.ensure_poller() {
            inner.reactor.cancel(id);
            return Err(error);
        }
        let slot = &mut inner.slots[index];
        slot.in_use = true;
        slot.wakeup = None;
        slot.ungranted = false;
        let waiters = &self.shared.waiters[index];
        waiters.register();
        let (mut inner, waited) = waiters.wait(guard, || self.shared.inner.lock(), deadline);
        Ok(Self::unpark(&mut inner, wake, id, waited))
    }

    /// Frees the wake slot after a park. A call whose wait failed takes its wait out of the
    /// reactor: it timed out (unless the poller had already decided), or was killed.
    fn unpark(inner: &mut Inner<D>, wake: WakeRef, id: WaitId, waited: Waited) -> Wakeup {
        let slot = &mut inner.slots[usize::from(wake.index)];
        let recorded = slot.wakeup.take();
        if core::mem::take(&mut slot.ungranted) {
            inner.ungranted -= 1;
        }
        slot.in_use = false;
        slot.generation = slot.generation.wrapping_add(1);
        match waited {
            // A grant comes only with a recorded wake-up.
            Waited::Granted => recorded.unwrap_or(Wakeup::Ready),
            Waited::Failed(error) | Waited::FailedHolding(error) => {
                inner.reactor.cancel(id);
                match (error, recorded) {
                    (TaskletError::TimedOut, Some(wakeup)) => wakeup,
                    (TaskletError::TimedOut, None) => Wakeup::TimedOut,
                    _ => Wakeup::Interrupted,
                }
            }
        }
    }

    /// Starts the poller unless it runs. A poller that cannot be spawned (its stack does not
    /// fit this CPU's stack budget, or memory is short) is [`NetError::NoBuffers`]: the call
    /// that was to park fails with it, since nothing would wake it, and the next park tries
    /// again.
    fn ensure_poller(&self) -> Result<(), NetError> {
        if self.shared.poller_running.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let net = self.clone();
        let spawned = Builder::new()
            .name("net-poller")
            .stack_size(POLLER_STACK_BYTES)
            .spawn(move || net.run_poller());
        match spawned {
            Ok(_poller) => Ok(()),
            Err(_) => {
                self.shared.poller_running.store(false, Ordering::Release);
                Err(NetError::NoBuffers)
            }
        }
    }

    /// The poller: one pass per turn until nobody is parked and every wake-up is delivered.
    fn run_poller(&self) {
        loop {
            let alone = tasklet::run_count() <= 1;
            let next_deadline = {
                let mut inner = self.shared.inner.lock();
                let inner = &mut *inner;
                if inner.reactor.parked() == 0 && inner.ungranted == 0 {
                    self.shared.poller_running.store(false, Ordering::Release);
                    return;
                }
                let wait = if alone { IDLE_TICK } else { Duration::ZERO };
                let now = Deadline::now().as_ns();
                // A poll that fails wakes the calls it covered with its error (Wakeup::Failed).
                inner
                    .reactor
                    .pass(&mut inner.sockets, Some(wait), now, &mut inner.woken);
                inner.record();
                inner.reactor.next_deadline().map(Deadline::at_ns)
            };
            let delivered = self.shared.deliver();
            let outcome = if delivered == 0 && tasklet::run_count() <= 1 {
                let tick = Deadline::after(IDLE_TICK);
                tasklet::sleep_until_deadline(
                    next_deadline.map_or(tick, |deadline| deadline.min(tick)),
                )
            } else {
                tasklet::schedule()
            };
            if outcome.is_err() {
                // Killed: every parked call must still end, so wake them all.
                {
                    let mut inner = self.shared.inner.lock();
                    let inner = &mut *inner;
                    inner.reactor.take_all(&mut inner.woken);
                    inner.record();
                    self.shared.poller_running.store(false, Ordering::Release);
                }
                self.shared.deliver();
                return;
            }
        }
    }

    /// Blocking select: waits until a descriptor is ready or `timeout` passes (`Ok(0)`), with
    /// the results of [`Sockets::select`].
    pub fn select(
        &self,
        read: Option<&mut FdSet>,
        write: Option<&mut FdSet>,
        except: Option<&mut FdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let deadline = timeout.map(Deadline::after);
        let wanted = [
            read.as_deref().copied(),
            write.as_deref().copied(),
            except.as_deref().copied(),
        ];
        let outcome = self.block_on(deadline, |inner| {
            let mut sets = wanted;
            let [r, w, e] = &mut sets;
            let count =
                inner
                    .sockets
                    .select(r.as_mut(), w.as_mut(), e.as_mut(), Some(Duration::ZERO))?;
            if count > 0 || expired(deadline) {
                return Ok(Some((count, sets)));
            }
            inner.interests.clear();
            for (set, interest) in
                wanted
                    .iter()
                    .zip([Interest::Read, Interest::Write, Interest::Read])
            {
                for index in set.iter().flat_map(|set| set.indices()) {
                    let fd = inner.sockets.descriptor_at(index)?;
                    if inner.interests.len() == inner.interests.capacity() {
                        return Err(NetError::NoBuffers);
                    }
                    inner.interests.push((fd, interest));
                }
            }
            Ok(None)
        });
        let (count, sets) = match outcome {
            Ok(done) => done,
            Err(NetError::TimedOut) => (0, wanted.map(|set| set.map(|_| FdSet::new()))),
            Err(error) => return Err(error),
        };
        for (out, set) in [read, write, except].into_iter().zip(sets) {
            if let (Some(out), Some(set)) = (out, set) {
                *out = set;
            }
        }
        Ok(count)
    }

    /// Blocking poll: waits until an entry has events or `timeout` passes (`Ok(0)`), with the
    /// results of [`Sockets::poll`].
    pub fn poll(&self, fds: &mut [PollFd], timeout: Option<Duration>) -> Result<usize, NetError> {
        let deadline = timeout.map(Deadline::after);
        let outcome = self.block_on(deadline, |inner| {
            let count = inner.sockets.poll(fds, Some(Duration::ZERO))?;
            if count > 0 || expired(deadline) {
                return Ok(Some(count));
            }
            inner.interests.clear();
            for entry in fds.iter() {
                for (flag, interest) in [
                    (PollFlags::IN, Interest::Read),
                    (PollFlags::OUT, Interest::Write),
                ] {
                    if entry.events.contains(flag) {
                        if inner.interests.len() == inner.interests.capacity() {
                            return Err(NetError::NoBuffers);
                        }
                        inner.interests.push((entry.fd, interest));
                    }
                }
            }
            if inner.interests.is_empty() {
                // Nothing asked for can ever happen; only the deadline can end the wait.
                inner.interests.push((
                    fds.first().ok_or(NetError::InvalidInput)?.fd,
                    Interest::Read,
                ));
            }
            Ok(None)
        });
        match outcome {
            Err(NetError::TimedOut) => Ok(0),
            other => other,
        }
    }

    /// One non-blocking try of `call` on `fd`; on EAGAIN, waits for `interest`.
    fn retry_on<T>(
        &self,
        fd: Fd,
        interest: Interest,
        timeout: Option<Duration>,
        mut call: impl FnMut(&mut Sockets<D>) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        self.block_on(timeout.map(Deadline::after), |inner| {
            match call(&mut inner.sockets) {
                Err(NetError::WouldBlock) => {
                    inner.interests.clear();
                    inner.interests.push((fd, interest));
                    Ok(None)
                }
                other => other.map(Some),
            }
        })
    }
}

/// A tasklet-blocking stream socket. Dropping it closes it.
pub struct Socket<D: NetDriver + Send + 'static> {
    net: Net<D>,
    fd: Option<Fd>,
    timeout: Option<Duration>,
}

impl<D: NetDriver + Send + 'static> core::fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Socket")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl<D: NetDriver + Send + 'static> Socket<D> {
    /// The descriptor ([`NetError::BadDescriptor`] after close).
    pub fn fd(&self) -> Result<Fd, NetError> {
        self.fd.ok_or(NetError::BadDescriptor)
    }

    /// Sets the timeout of every later blocking call (`None`: wait without limit).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// bind().
    pub fn bind(&self, addr: SocketAddrV4) -> Result<(), NetError> {
        let fd = self.fd()?;
        self.net.with_sockets(|sockets| sockets.bind(fd, addr))
    }

    /// listen().
    pub fn listen(&self, backlog: usize) -> Result<(), NetError> {
        let fd = self.fd()?;
        self.net.with_sockets(|sockets| sockets.listen(fd, backlog))
    }

    /// Blocking accept: the new connection as a socket, and the peer's address.
    pub fn accept(&self) -> Result<(Socket<D>, SocketAddrV4), NetError> {
        let fd = self.fd()?;
        let (accepted, peer) = self
            .net
            .retry_on(fd, Interest::Read, self.timeout, |sockets| {
                let (accepted, peer) = sockets.accept(fd)?;
                if let Err(error) = sockets.set_nonblocking(accepted, true) {
                    let _ = sockets.close(accepted);
                    return Err(error);
                }
                Ok((accepted, peer))
            })?;
        Ok((self.net.wrap(accepted), peer))
    }

    /// Blocking connect: returns once connected, or with the connection's error.
    pub fn connect(&self, addr: SocketAddrV4) -> Result<(), NetError> {
        let fd = self.fd()?;
        let mut started = false;
        self.net
            .retry_on(fd, Interest::Write, self.timeout, |sockets| {
                if !started {
                    started = true;
                    return match sockets.connect(fd, addr) {
                        Err(NetError::InProgress) => Err(NetError::WouldBlock),
                        other => other,
                    };
                }
                // Writable: the connect finished; SO_ERROR says how.
                match sockets.take_error(fd)? {
                    Some(error) => Err(error),
                    None => Ok(()),
                }
            })
    }

    /// Blocking recv: at least one byte, `Ok(0)` at end of stream, or the connection's error
    /// (after every byte that arrived before it).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        let fd = self.fd()?;
        self.net
            .retry_on(fd, Interest::Read, self.timeout, |sockets| {
                sockets.recv(fd, buf)
            })
    }

    /// Blocking send: how many bytes were accepted (at least one).
    pub fn send(&self, data: &[u8]) -> Result<usize, NetError> {
        let fd = self.fd()?;
        self.net
            .retry_on(fd, Interest::Write, self.timeout, |sockets| {
                sockets.send(fd, data)
            })
    }

    /// shutdown().
    pub fn shutdown(&self, how: Shutdown) -> Result<(), NetError> {
        let fd = self.fd()?;
        self.net.with_sockets(|sockets| sockets.shutdown(fd, how))
    }

    /// SO_ERROR: the pending error, which reading clears.
    pub fn take_error(&self) -> Result<Option<NetError>, NetError> {
        let fd = self.fd()?;
        self.net.with_sockets(|sockets| sockets.take_error(fd))
    }

    /// Closes the socket, waking every call waiting on it with [`NetError::BadDescriptor`].
    pub fn close(&mut self) -> Result<(), NetError> {
        let fd = self.fd.take().ok_or(NetError::BadDescriptor)?;
        self.net.close(fd)
    }

    /// Whether recv would not block now (data, end of stream, or an error to report).
    pub fn recv_ready(&self) -> Result<bool, NetError> {
        self.ready(PollFlags::IN)
    }

    /// Whether send would not block now (room, or an error to report).
    pub fn send_ready(&self) -> Result<bool, NetError> {
        self.ready(PollFlags::OUT)
    }

    fn ready(&self, flag: PollFlags) -> Result<bool, NetError> {
        let fd = self.fd()?;
        let mut entry = [PollFd::new(fd, flag)];
        self.net
            .with_sockets(|sockets| sockets.poll(&mut entry, Some(Duration::ZERO)))?;
        if entry[0].revents.contains(PollFlags::NVAL) {
            return Err(NetError::BadDescriptor);
        }
        Ok(!entry[0].revents.is_empty())
    }
}

impl<D: NetDriver + Send + 'static> Drop for Socket<D> {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = self.net.close(fd);
        }
    }
}

impl<D: NetDriver + Send + 'static> embedded_io::ErrorType for Socket<D> {
    type Error = NetError;
}

impl<D: NetDriver + Send + 'static> embedded_io::Read for Socket<D> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        self.recv(buf)
    }
}

impl<D: NetDriver + Send + 'static> embedded_io::Write for Socket<D> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        self.send(buf)
    }

    fn flush(&mut self) -> Result<(), NetError> {
        // Sent bytes are the driver's once send accepted them; nothing is buffered here.
        self.fd().map(|_| ())
    }
}

impl<D: NetDriver + Send + 'static> embedded_io::ReadReady for Socket<D> {
    fn read_ready(&mut self) -> Result<bool, NetError> {
        self.recv_ready()
    }
}

impl<D: NetDriver + Send + 'static> embedded_io::WriteReady for Socket<D> {
    fn write_ready(&mut self) -> Result<bool, NetError> {
        self.send_ready()
    }
}
