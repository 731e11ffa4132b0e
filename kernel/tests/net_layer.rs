//! The socket layer over hand-driven fake drivers: the quirk repair, typed errors, Unsupported.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use embedded_io::{Error as _, ErrorKind};
use spindle::net::{
    Fd, FdSet, NetDriver, NetError, PollFd, PollFlags, RawFdSet, RawPollFd, RawSocket, Shutdown,
    SocketKind, Sockets, FD_SETSIZE,
};

/// What the test says one fake socket is like.
#[derive(Clone, Copy, Default)]
struct FakeSocket {
    open: bool,
    readiness: PollFlags,
    pending: Option<NetError>,
}

/// A driver whose sockets' readiness and pending errors the test sets directly, and whose raw
/// select/poll have the console quirk (fail with the first watched socket's pending error).
#[derive(Default)]
struct QuirkyDriver {
    sockets: Vec<FakeSocket>,
    has_poll: bool,
    /// A failure the next raw select/poll reports instead of anything else.
    forced_failure: Option<NetError>,
    raw_select_calls: usize,
    raw_poll_calls: usize,
    quirk_failures: usize,
}

impl QuirkyDriver {
    fn with_poll() -> Self {
        QuirkyDriver {
            has_poll: true,
            ..Default::default()
        }
    }

    fn socket_mut(&mut self, raw: RawSocket) -> Result<&mut FakeSocket, NetError> {
        match self.sockets.get_mut(raw.index()) {
            Some(socket) if socket.open => Ok(socket),
            _ => Err(NetError::BadDescriptor),
        }
    }

    fn quirk(&mut self, watched: impl Iterator<Item = RawSocket>) -> Result<(), NetError> {
        let mut first = None;
        for raw in watched {
            let socket = self.socket_mut(raw)?;
            first = first.or(socket.pending);
        }
        match first {
            Some(error) => {
                self.quirk_failures += 1;
                Err(error)
            }
            None => Ok(()),
        }
    }
}

impl NetDriver for QuirkyDriver {
    fn socket(&mut self, _kind: SocketKind) -> Result<RawSocket, NetError> {
        self.sockets.push(FakeSocket {
            open: true,
            ..Default::default()
        });
        Ok(RawSocket(self.sockets.len() as u32 - 1))
    }

    fn close(&mut self, socket: RawSocket) -> Result<(), NetError> {
        self.socket_mut(socket)?.open = false;
        Ok(())
    }

    fn take_error(&mut self, socket: RawSocket) -> Result<Option<NetError>, NetError> {
        Ok(self.socket_mut(socket)?.pending.take())
    }

    fn recv(&mut self, socket: RawSocket, _buf: &mut [u8]) -> Result<usize, NetError> {
        match self.socket_mut(socket)?.pending.take() {
            Some(error) => Err(error),
            None => Err(NetError::WouldBlock),
        }
    }

    fn select(
        &mut self,
        read: Option<&mut RawFdSet>,
        write: Option<&mut RawFdSet>,
        except: Option<&mut RawFdSet>,
        _timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.raw_select_calls += 1;
        if let Some(error) = self.forced_failure.take() {
            return Err(error);
        }
        let mut sets = [read, write, except];
        let mut watched = RawFdSet::new();
        for set in sets.iter().flatten() {
            for raw in set.iter() {
                watched.insert(raw)?;
            }
        }
        self.quirk(watched.iter())?;
        let mut count = 0;
        for (set, flag) in sets
            .iter_mut()
            .zip([PollFlags::IN, PollFlags::OUT, PollFlags::PRI])
        {
            if let Some(set) = set {
                let mut ready = RawFdSet::new();
                for raw in set.iter() {
                    if self.socket_mut(raw)?.readiness.contains(flag) {
                        ready.insert(raw)?;
                    }
                }
                **set = ready;
                count += ready.len();
            }
        }
        Ok(count)
    }

    fn poll(
        &mut self,
        fds: &mut [RawPollFd],
        _timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        if !self.has_poll {
            return Err(NetError::Unsupported);
        }
        self.raw_poll_calls += 1;
        if let Some(error) = self.forced_failure.take() {
            return Err(error);
        }
        let mut count = 0;
        for entry in fds.iter_mut() {
            let readiness = self.socket_mut(entry.socket)?.readiness;
            entry.revents = readiness & (entry.events | PollFlags::ALWAYS_REPORTED);
            count += usize::from(!entry.revents.is_empty());
        }
        // The console filled revents, then returned -1 with the socket's errno.
        self.quirk(fds.iter().map(|entry| entry.socket))?;
        Ok(count)
    }
}

/// A driver that implements nothing.
struct EmptyDriver;
impl NetDriver for EmptyDriver {}

fn table_with(driver: QuirkyDriver, sockets: usize) -> (Sockets<QuirkyDriver>, Vec<Fd>) {
    let mut table = Sockets::new(driver, 16).unwrap();
    let fds = (0..sockets)
        .map(|_| table.socket(SocketKind::Stream).unwrap())
        .collect();
    (table, fds)
}

fn set_of(fds: &[Fd]) -> FdSet {
    let mut set = FdSet::new();
    for &fd in fds {
        set.insert(fd);
    }
    set
}

fn fake(table: &mut Sockets<QuirkyDriver>, fd: Fd) -> &mut FakeSocket {
    let raw = table.raw_socket(fd).unwrap();
    table.driver_mut().socket_mut(raw).unwrap()
}

#[test]
fn select_rebuilds_ready_sets_when_the_raw_select_fails_with_a_pending_reset() {
    for has_poll in [true, false] {
        let driver = QuirkyDriver {
            has_poll,
            ..Default::default()
        };
        let (mut table, fds) = table_with(driver, 4);
        fake(&mut table, fds[0]).readiness = PollFlags::IN;
        fake(&mut table, fds[1]).pending = Some(NetError::ConnectionReset);
        fake(&mut table, fds[2]).readiness = PollFlags::OUT;
        let mut read = set_of(&fds);
        let mut write = set_of(&fds[1..3]);
        let mut except = set_of(&fds[3..]);

        let count = table
            .select(
                Some(&mut read),
                Some(&mut write),
                Some(&mut except),
                Some(Duration::from_millis(10)),
            )
            .expect("a pending socket error is not a select failure");

        assert!(
            table.driver().quirk_failures >= 1,
            "the raw select must have failed"
        );
        assert_eq!(
            read,
            set_of(&fds[..2]),
            "data-ready and errored sockets are readable"
        );
        assert_eq!(
            write,
            set_of(&fds[1..3]),
            "the errored socket is also writable"
        );
        assert!(
            except.is_empty(),
            "socket 3 was only in except and has nothing"
        );
        assert_eq!(count, 4, "count is the total of set bits");
        assert_eq!(
            table.take_error(fds[1]),
            Ok(Some(NetError::ConnectionReset))
        );
        assert_eq!(
            table.take_error(fds[1]),
            Ok(None),
            "SO_ERROR clears the error"
        );
    }
}

#[test]
fn select_marks_an_errored_socket_exceptional_when_asked() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 2);
    fake(&mut table, fds[1]).pending = Some(NetError::ConnectionAborted);
    let mut except = set_of(&fds);
    let count = table.select(None, None, Some(&mut except), None).unwrap();
    assert_eq!(count, 1);
    assert_eq!(except, set_of(&fds[1..]));
}

#[test]
fn poll_rebuilds_revents_and_count_when_the_raw_poll_returns_minus_one() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 4);
    fake(&mut table, fds[0]).readiness = PollFlags::IN | PollFlags::OUT;
    fake(&mut table, fds[1]).pending = Some(NetError::ConnectionReset);
    fake(&mut table, fds[2]).pending = Some(NetError::HostUnreachable);
    let both = PollFlags::IN | PollFlags::OUT;
    let mut entries = [
        PollFd::new(fds[0], PollFlags::IN),
        PollFd::new(fds[1], both),
        PollFd::new(fds[2], PollFlags::IN),
        PollFd::new(fds[3], both),
    ];

    let count = table
        .poll(&mut entries, Some(Duration::from_millis(5)))
        .unwrap();

    assert!(
        table.driver().quirk_failures >= 1,
        "the raw poll must have returned -1"
    );
    assert_eq!(count, 3);
    assert_eq!(
        entries[0].revents,
        PollFlags::IN,
        "only the events asked for"
    );
    assert_eq!(
        entries[1].revents,
        both | PollFlags::ERR | PollFlags::HUP,
        "a reset socket is readable, writable, errored and hung up"
    );
    assert_eq!(
        entries[2].revents,
        PollFlags::IN | PollFlags::ERR,
        "a soft error keeps the connection: no HUP"
    );
    assert_eq!(entries[3].revents, PollFlags::NONE);
    let mut buf = [0u8; 8];
    assert_eq!(table.recv(fds[1], &mut buf), Err(NetError::ConnectionReset));
    assert_eq!(table.recv(fds[1], &mut buf), Err(NetError::WouldBlock));
}

#[test]
fn pending_errors_on_several_sockets_are_all_reported() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 5);
    for &fd in &fds[1..4] {
        fake(&mut table, fd).pending = Some(NetError::ConnectionReset);
    }
    let mut read = set_of(&fds);
    assert_eq!(table.select(Some(&mut read), None, None, None), Ok(3));
    assert_eq!(read, set_of(&fds[1..4]));
    let mut entries: Vec<PollFd> = fds
        .iter()
        .map(|&fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    assert_eq!(table.poll(&mut entries, None), Ok(3));
    let errored: Vec<bool> = entries
        .iter()
        .map(|entry| entry.revents.contains(PollFlags::ERR))
        .collect();
    assert_eq!(errored, [false, true, true, true, false]);
}

#[test]
fn genuine_failures_stay_errors_and_leave_the_sets_alone() {
    for failure in [
        NetError::Interrupted,
        NetError::BadDescriptor,
        NetError::InvalidInput,
    ] {
        let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 2);
        fake(&mut table, fds[0]).readiness = PollFlags::IN;
        table.driver_mut().forced_failure = Some(failure);
        let mut read = set_of(&fds);
        assert_eq!(
            table.select(Some(&mut read), None, None, None),
            Err(failure)
        );
        assert_eq!(read, set_of(&fds), "sets are unchanged on failure");

        table.driver_mut().forced_failure = Some(failure);
        let mut entries = [PollFd::new(fds[0], PollFlags::IN)];
        assert_eq!(table.poll(&mut entries, None), Err(failure));
    }
}

#[test]
fn select_refuses_closed_and_out_of_table_descriptors() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 2);
    table.close(fds[1]).unwrap();
    let mut read = set_of(&fds);
    assert_eq!(
        table.select(Some(&mut read), None, None, None),
        Err(NetError::BadDescriptor)
    );
    let mut oversized = FdSet::new();
    oversized.insert(Fd::from_parts(FD_SETSIZE - 1, 0).unwrap());
    assert_eq!(
        table.select(Some(&mut oversized), None, None, None),
        Err(NetError::InvalidInput),
        "the table holds 16 descriptors; number 1023 makes the set oversized"
    );
    assert_eq!(Fd::from_parts(FD_SETSIZE, 0), Err(NetError::InvalidInput));
}

#[test]
fn poll_marks_invalid_descriptors_and_refuses_oversized_lists() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 2);
    let stale = fds[1];
    table.close(stale).unwrap();
    fake(&mut table, fds[0]).readiness = PollFlags::OUT;
    let mut entries = [
        PollFd::new(fds[0], PollFlags::OUT),
        PollFd::new(stale, PollFlags::IN),
        PollFd::new(Fd::from_parts(15, 7).unwrap(), PollFlags::IN),
    ];
    assert_eq!(table.poll(&mut entries, None), Ok(3));
    assert_eq!(entries[0].revents, PollFlags::OUT);
    assert_eq!(entries[1].revents, PollFlags::NVAL);
    assert_eq!(entries[2].revents, PollFlags::NVAL);

    let mut too_many = vec![PollFd::new(fds[0], PollFlags::IN); table.capacity() + 1];
    assert_eq!(table.poll(&mut too_many, None), Err(NetError::InvalidInput));
}

#[test]
fn bad_input_gives_typed_errors() {
    let (mut table, fds) = table_with(QuirkyDriver::with_poll(), 1);
    let fd = fds[0];
    assert_eq!(table.send(fd, &[]), Err(NetError::InvalidInput));
    assert_eq!(table.recv(fd, &mut []), Err(NetError::InvalidInput));
    table.close(fd).unwrap();
    assert_eq!(
        table.close(fd),
        Err(NetError::BadDescriptor),
        "double close"
    );
    let reused = table.socket(SocketKind::Stream).unwrap();
    assert_eq!(reused.index(), fd.index(), "the number is reused");
    assert_eq!(
        table.send(fd, b"x"),
        Err(NetError::BadDescriptor),
        "the stale fd stays dead"
    );
    assert_eq!(table.close(fd), Err(NetError::BadDescriptor));
    assert_eq!(table.open_count(), 1, "the reused socket is untouched");

    for capacity in [0, FD_SETSIZE + 1] {
        assert_eq!(
            Sockets::new(QuirkyDriver::default(), capacity).map(|_| ()),
            Err(NetError::InvalidInput)
        );
    }
    let mut small = Sockets::new(QuirkyDriver::default(), 2).unwrap();
    small.socket(SocketKind::Stream).unwrap();
    small.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        small.socket(SocketKind::Stream),
        Err(NetError::TooManyDescriptors)
    );
    assert_eq!(small.open_count(), 2);
}

#[test]
fn a_stale_descriptor_never_names_a_later_socket_of_its_number() {
    // One slot, reused more often than a 16-bit generation can tell apart (65,536 times):
    // every descriptor it hands out differs from the first, which stays dead throughout.
    let mut table = Sockets::new(QuirkyDriver::default(), 1).unwrap();
    let stale = table.socket(SocketKind::Stream).unwrap();
    table.close(stale).unwrap();
    for cycle in 0..=u32::from(u16::MAX) {
        let fd = table.socket(SocketKind::Stream).unwrap();
        assert_eq!(fd.index(), stale.index(), "the number is reused");
        assert_ne!(
            fd, stale,
            "cycle {cycle}: a new socket got the stale descriptor"
        );
        assert_eq!(
            table.raw_socket(stale),
            Err(NetError::BadDescriptor),
            "cycle {cycle}: the stale descriptor reaches the new socket"
        );
        table.close(fd).unwrap();
    }
    let live = table.socket(SocketKind::Stream).unwrap();
    assert_eq!(table.close(stale), Err(NetError::BadDescriptor));
    assert_eq!(table.send(stale, b"x"), Err(NetError::BadDescriptor));
    assert_eq!(table.open_count(), 1, "the live socket is untouched");
    assert!(table.raw_socket(live).is_ok());
}

#[test]
fn calls_a_driver_lacks_answer_unsupported_without_leaking() {
    let mut table = Sockets::new(EmptyDriver, 4).unwrap();
    assert_eq!(table.socket(SocketKind::Stream), Err(NetError::Unsupported));
    assert_eq!(table.open_count(), 0);
    assert_eq!(
        table.select(None, None, None, Some(Duration::ZERO)),
        Err(NetError::Unsupported)
    );
    assert_eq!(
        table.poll(&mut [], Some(Duration::ZERO)),
        Err(NetError::Unsupported)
    );

    let mut driver = EmptyDriver;
    let raw = RawSocket(0);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7);
    assert_eq!(driver.bind(raw, addr), Err(NetError::Unsupported));
    assert_eq!(driver.listen(raw, 1), Err(NetError::Unsupported));
    assert_eq!(driver.accept(raw), Err(NetError::Unsupported));
    assert_eq!(driver.connect(raw, addr), Err(NetError::Unsupported));
    assert_eq!(driver.send(raw, b"x"), Err(NetError::Unsupported));
    assert_eq!(driver.recv(raw, &mut [0]), Err(NetError::Unsupported));
    assert_eq!(
        driver.shutdown(raw, Shutdown::Both),
        Err(NetError::Unsupported)
    );
    assert_eq!(driver.close(raw), Err(NetError::Unsupported));
    assert_eq!(
        driver.set_nonblocking(raw, true),
        Err(NetError::Unsupported)
    );
    assert_eq!(driver.take_error(raw), Err(NetError::Unsupported));
}

#[test]
fn errno_values_round_trip_and_map_to_embedded_io_kinds() {
    let all = [
        NetError::BadDescriptor,
        NetError::Interrupted,
        NetError::InvalidInput,
        NetError::WouldBlock,
        NetError::InProgress,
        NetError::AlreadyInProgress,
        NetError::ConnectionReset,
        NetError::ConnectionAborted,
        NetError::ConnectionRefused,
        NetError::NotConnected,
        NetError::AlreadyConnected,
        NetError::BrokenPipe,
        NetError::TimedOut,
        NetError::AddrInUse,
        NetError::AddrNotAvailable,
        NetError::HostUnreachable,
        NetError::NetworkUnreachable,
        NetError::NetworkDown,
        NetError::NoBuffers,
        NetError::TooManyDescriptors,
        NetError::Unsupported,
        NetError::Other(4242),
    ];
    for error in all {
        assert_eq!(NetError::from_errno(error.errno()), error, "{error}");
    }
    assert_eq!(NetError::from_errno(104), NetError::ConnectionReset);
    assert_eq!(NetError::from_errno(38), NetError::Unsupported, "ENOSYS");
    assert_eq!(NetError::ConnectionReset.kind(), ErrorKind::ConnectionReset);
    assert_eq!(NetError::BrokenPipe.kind(), ErrorKind::BrokenPipe);
    assert_eq!(NetError::TimedOut.kind(), ErrorKind::TimedOut);
    assert_eq!(NetError::Unsupported.kind(), ErrorKind::Unsupported);
    assert_eq!(NetError::BadDescriptor.kind(), ErrorKind::InvalidInput);
    let pending: Vec<NetError> = all
        .into_iter()
        .filter(|error| error.is_pending_socket_error())
        .collect();
    assert!(pending.contains(&NetError::ConnectionReset));
    for genuine in [
        NetError::BadDescriptor,
        NetError::Interrupted,
        NetError::InvalidInput,
    ] {
        assert!(
            !genuine.is_pending_socket_error(),
            "{genuine} is select's own failure"
        );
    }
}
