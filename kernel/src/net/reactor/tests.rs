//! The wait table over a hand-driven fake driver: who is woken, when, and why; at most once each;
//! waits beyond the descriptor table's capacity, and poll failures delivered to the waiters.
//!
//! The fake's raw poll has the console quirk (it fails with a watched socket's pending error), so
//! a reset reaches the reactor through the socket layer's repair, as it does over a real platform.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::{Interest, Reactor, Wakeup};
use crate::net::{Fd, NetDriver, NetError, PollFlags, RawPollFd, RawSocket, SocketKind, Sockets};

/// What the test says one fake socket is like.
#[derive(Clone, Copy, Default)]
struct FakeSocket {
    open: bool,
    readiness: PollFlags,
    pending: Option<NetError>,
}

/// A driver whose sockets' readiness and pending errors the test sets directly.
#[derive(Default)]
struct QuirkyDriver {
    sockets: Vec<FakeSocket>,
    /// Raw polls that failed with a socket's pending error (the quirk).
    quirk_failures: usize,
    /// A genuine failure of every raw poll that watches this socket.
    failing: Option<(RawSocket, NetError)>,
    /// Raw poll calls, and the most entries one of them had.
    poll_calls: usize,
    most_entries: usize,
}

impl QuirkyDriver {
    fn socket_mut(&mut self, raw: RawSocket) -> Result<&mut FakeSocket, NetError> {
        match self.sockets.get_mut(raw.index()) {
            Some(socket) if socket.open => Ok(socket),
            _ => Err(NetError::BadDescriptor),
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

    fn poll(
        &mut self,
        fds: &mut [RawPollFd],
        _timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.poll_calls += 1;
        self.most_entries = self.most_entries.max(fds.len());
        if let Some((socket, error)) = self.failing {
            if fds.iter().any(|entry| entry.socket == socket) {
                return Err(error);
            }
        }
        let mut count = 0;
        let mut first_pending = None;
        for entry in fds.iter_mut() {
            let socket = *self.socket_mut(entry.socket)?;
            entry.revents = socket.readiness & (entry.events | PollFlags::ALWAYS_REPORTED);
            count += usize::from(!entry.revents.is_empty());
            first_pending = first_pending.or(socket.pending);
        }
        // The console filled revents, then returned -1 with the socket's errno.
        if let Some(error) = first_pending {
            self.quirk_failures += 1;
            return Err(error);
        }
        Ok(count)
    }
}

/// Room for every waiter of the reactors below, so a pass never allocates.
const MAX_WAITERS: usize = 8;

type Woken = Vec<(&'static str, Wakeup)>;

/// A table of `count` open sockets over the fake driver.
fn table_with(count: usize) -> (Sockets<QuirkyDriver>, Vec<Fd>) {
    table_of(8, count)
}

/// A table of `capacity` descriptors, `count` of them open.
fn table_of(capacity: usize, count: usize) -> (Sockets<QuirkyDriver>, Vec<Fd>) {
    let mut table = Sockets::new(QuirkyDriver::default(), capacity).unwrap();
    let fds = (0..count)
        .map(|_| table.socket(SocketKind::Stream).unwrap())
        .collect();
    (table, fds)
}

fn fake(table: &mut Sockets<QuirkyDriver>, fd: Fd) -> &mut FakeSocket {
    let raw = table.raw_socket(fd).unwrap();
    table.driver_mut().socket_mut(raw).unwrap()
}

fn pass(
    reactor: &mut Reactor<&'static str>,
    table: &mut Sockets<QuirkyDriver>,
    now_ns: u64,
) -> Woken {
    let mut woken = Vec::with_capacity(MAX_WAITERS);
    let count = reactor.pass(table, Some(Duration::ZERO), now_ns, &mut woken);
    assert_eq!(count, woken.len());
    woken.sort_by_key(|(name, _)| *name);
    woken
}

#[test]
fn waiters_wake_when_ready_reset_timed_out_or_closed() {
    let (mut table, fds) = table_with(4);
    let [reader, resetee, sleeper, closed] = fds[..] else {
        unreachable!()
    };
    let mut reactor = Reactor::new(MAX_WAITERS, 16).unwrap();
    reactor
        .park(&[(reader, Interest::Read)], None, "reader")
        .unwrap();
    reactor
        .park(&[(resetee, Interest::Read)], None, "resetee")
        .unwrap();
    reactor
        .park(&[(sleeper, Interest::Read)], Some(1_000), "sleeper")
        .unwrap();
    reactor
        .park(&[(closed, Interest::Read)], None, "closed")
        .unwrap();
    assert_eq!(reactor.parked(), 4);
    assert_eq!(reactor.next_deadline(), Some(1_000));

    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![],
        "nothing happened yet"
    );

    // Data arrives for the reader; the resetee's connection is reset by its peer.
    fake(&mut table, reader).readiness = PollFlags::IN;
    fake(&mut table, resetee).pending = Some(NetError::ConnectionReset);
    let woken = pass(&mut reactor, &mut table, 999);
    assert_eq!(
        woken,
        vec![("reader", Wakeup::Ready), ("resetee", Wakeup::Ready)]
    );
    assert!(
        table.driver().quirk_failures > 0,
        "the reset went through the quirk"
    );

    assert_eq!(
        pass(&mut reactor, &mut table, 1_000),
        vec![("sleeper", Wakeup::TimedOut)]
    );

    let mut closed_now = Vec::new();
    reactor.take_fd(closed, &mut closed_now);
    assert_eq!(closed_now, vec![("closed", Wakeup::Closed)]);
    assert_eq!(reactor.parked(), 0);
    assert_eq!(Wakeup::Closed.into_result(), Err(NetError::BadDescriptor));
    assert_eq!(Wakeup::TimedOut.into_result(), Err(NetError::TimedOut));
}

#[test]
fn a_select_waiter_is_woken_once_for_many_ready_descriptors() {
    let (mut table, fds) = table_with(4);
    let interests: Vec<_> = fds.iter().map(|&fd| (fd, Interest::Read)).collect();
    let mut reactor = Reactor::new(2, 8).unwrap();
    reactor.park(&interests, None, "select").unwrap();
    for &fd in &fds {
        fake(&mut table, fd).readiness = PollFlags::IN;
    }
    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![("select", Wakeup::Ready)]
    );
    assert_eq!(reactor.parked(), 0);
    // All four waits went with it: a new waiter can use every slot.
    reactor.park(&interests[..4], None, "again").unwrap();
    assert_eq!(reactor.parked(), 1);
}

#[test]
fn a_descriptor_closed_under_a_waiter_wakes_it_closed() {
    let (mut table, fds) = table_with(1);
    let client = fds[0];
    let mut reactor = Reactor::new(2, 2).unwrap();
    reactor
        .park(&[(client, Interest::Write)], None, "writer")
        .unwrap();
    // Closed through the table without telling the reactor: the poll marks it NVAL.
    table.close(client).unwrap();
    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![("writer", Wakeup::Closed)]
    );
}

#[test]
fn a_full_table_refuses_and_cancel_frees() {
    let (_table, fds) = table_with(2);
    let [a, b] = fds[..] else { unreachable!() };
    let mut reactor = Reactor::new(2, 3).unwrap();
    let first = reactor
        .park(&[(a, Interest::Read), (b, Interest::Read)], None, "first")
        .unwrap();
    assert_eq!(
        reactor.park(
            &[(a, Interest::Write), (b, Interest::Write)],
            None,
            "second"
        ),
        Err((NetError::NoBuffers, "second")),
        "only one wait slot is left"
    );
    assert_eq!(
        reactor.park(&[], None, "empty"),
        Err((NetError::InvalidInput, "empty"))
    );
    assert_eq!(reactor.parked(), 1, "a refused park registers nothing");
    assert_eq!(reactor.cancel(first), Some("first"));
    assert_eq!(reactor.cancel(first), None, "a wait id is used once");
    reactor
        .park(
            &[(a, Interest::Write), (b, Interest::Write)],
            None,
            "second",
        )
        .unwrap();
    let mut all = Vec::new();
    reactor.take_all(&mut all);
    assert_eq!(all, vec![("second", Wakeup::Closed)]);
    assert_eq!(
        Reactor::<()>::new(0, 1).map(|_| ()),
        Err(NetError::InvalidInput)
    );
}

/// A stale wait id names no later call of its slot, however often the slot is reused (its
/// generation would wrap after 65,536 reuses at 16 bits).
#[test]
fn a_stale_wait_id_never_cancels_a_later_call_of_its_slot() {
    let (_table, fds) = table_with(1);
    let mut reactor = Reactor::new(1, 1).unwrap();
    let stale = reactor
        .park(&[(fds[0], Interest::Read)], None, 0u32)
        .unwrap();
    assert_eq!(reactor.cancel(stale), Some(0));
    for round in 1..=65_536u32 {
        let id = reactor
            .park(&[(fds[0], Interest::Read)], None, round)
            .unwrap();
        assert_eq!(
            reactor.cancel(stale),
            None,
            "round {round}: a stale id matched"
        );
        assert_eq!(reactor.cancel(id), Some(round));
    }
    reactor.park(&[(fds[0], Interest::Read)], None, 0).unwrap();
    assert_eq!(reactor.cancel(stale), None);
    assert_eq!(reactor.parked(), 1);
}

/// Three selects over both descriptors of a 2-descriptor table park six
/// waits; the pass polls each descriptor once (the table's poll refuses more entries than its
/// capacity) and wakes all three when one descriptor is ready.
#[test]
fn waits_outnumbering_the_table_are_all_polled() {
    let (mut table, fds) = table_of(2, 2);
    let [a, b] = fds[..] else { unreachable!() };
    let both = [(a, Interest::Read), (b, Interest::Read)];
    let mut reactor = Reactor::new(MAX_WAITERS, 8).unwrap();
    for name in ["first", "second", "third"] {
        reactor.park(&both, None, name).unwrap();
    }
    reactor
        .park(&[(b, Interest::Write)], None, "writer")
        .unwrap();
    assert_eq!(pass(&mut reactor, &mut table, 0), vec![]);
    assert_eq!(
        (table.driver().poll_calls, table.driver().most_entries),
        (1, 2),
        "one call, one entry per descriptor"
    );

    fake(&mut table, b).readiness = PollFlags::IN;
    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![
            ("first", Wakeup::Ready),
            ("second", Wakeup::Ready),
            ("third", Wakeup::Ready)
        ],
        "the writer asked for OUT on b, which reading interest does not wake"
    );
    fake(&mut table, b).readiness = PollFlags::OUT;
    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![("writer", Wakeup::Ready)]
    );
    assert_eq!(reactor.parked(), 0);
}

/// Waits on more distinct descriptors than the table holds (stale descriptors of sockets closed
/// behind the reactor's back, and their slots' new sockets) are polled in several calls of at
/// most the capacity; a failing call wakes the calls with a wait in it with its error, unless
/// another of their descriptors is ready or closed; and no failure is dropped.
#[test]
fn polls_split_at_the_capacity_and_failures_reach_the_waiters() {
    let (mut table, fds) = table_of(2, 2);
    let [old_a, old_b] = fds[..] else {
        unreachable!()
    };
    let mut reactor = Reactor::new(MAX_WAITERS, 8).unwrap();
    reactor
        .park(&[(old_a, Interest::Read)], None, "stale a")
        .unwrap();
    reactor
        .park(&[(old_b, Interest::Read)], None, "stale b")
        .unwrap();
    table.close(old_a).unwrap();
    table.close(old_b).unwrap();
    let a = table.socket(SocketKind::Stream).unwrap();
    let b = table.socket(SocketKind::Stream).unwrap();
    assert_eq!((a.index(), b.index()), (old_a.index(), old_b.index()));
    reactor
        .park(&[(a, Interest::Read), (b, Interest::Read)], None, "both")
        .unwrap();
    reactor
        .park(&[(b, Interest::Read)], Some(5), "only b")
        .unwrap();
    reactor
        .park(&[(a, Interest::Read)], Some(5), "only a")
        .unwrap();

    // Four distinct descriptors over a 2-descriptor table: two calls; a's poll fails.
    let raw_a = table.raw_socket(a).unwrap();
    table.driver_mut().failing = Some((raw_a, NetError::NoBuffers));
    fake(&mut table, b).readiness = PollFlags::IN;
    assert_eq!(
        pass(&mut reactor, &mut table, 10),
        vec![
            ("both", Wakeup::Ready),
            ("only a", Wakeup::Failed(NetError::NoBuffers)),
            ("only b", Wakeup::Ready),
            ("stale a", Wakeup::Closed),
            ("stale b", Wakeup::Closed),
        ],
        "ready and closed win over the failure, and the failure over the deadline"
    );
    assert_eq!(
        (table.driver().poll_calls, table.driver().most_entries),
        (2, 1),
        "two calls, each of a stale descriptor (not passed on) and a live one"
    );
    assert_eq!(reactor.parked(), 0);

    // A failure with nothing else to report reaches an untimed waiter at once.
    reactor
        .park(&[(a, Interest::Write)], None, "untimed")
        .unwrap();
    assert_eq!(
        pass(&mut reactor, &mut table, 0),
        vec![("untimed", Wakeup::Failed(NetError::NoBuffers))]
    );
    assert_eq!(
        Wakeup::Failed(NetError::NoBuffers).into_result(),
        Err(NetError::NoBuffers)
    );
}
