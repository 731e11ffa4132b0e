//! Tasklet-blocking socket test bodies over the mock network, shared by the host suite
//! (`drivers/tests/net_blocking.rs`: tiers 1 and 2, x86_64 and user-mode PowerPC64) and the
//! on-target suite (`tests/src/net.rs`: tier 3, bare metal) (feature `scenarios`).
//!
//! Each scenario is a function that panics on failure; each suite calls it under its own test
//! name, with the sizes that suit its tier as parameters. The kernel's `spindle::scenarios` holds
//! the other shared bodies, but the kernel does not depend on this crate, so the socket bodies
//! live here, beside the mock network they drive.
//!
//! - [`seed_scenario`]: a reset wakes the recv and the select waiting on it, and leaves the other
//!   connections alone.
//! - [`selects_whose_waits_outnumber_the_descriptors_wake_on_data`] and
//!   [`untimed_select_and_poll_wake_on_data`]: parked waits outnumbering the descriptor table.
//! - [`a_call_beyond_max_parked_fails_with_no_buffers`],
//!   [`a_call_beyond_max_waits_fails_with_no_buffers`] and
//!   [`a_call_that_cannot_start_the_poller_fails_with_no_buffers`]: the limits of the blocking
//!   layer's tables as typed errors.
//! - [`echo_until_end`]: an echo server's connection loop over any driver (the real NIC's tests
//!   use it too).

// Every function here is `#[inline]`, so that its code is generated only in the suites that call
// it (as in `spindle::scenarios`): as ordinary functions they would be compiled into this crate's
// own object, and the linker would keep them in every image that links the drivers.

use super::alloc::sync::Arc;
use super::alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use spindle::net::{
    Fd, FdSet, Net, NetConfig, NetError, PollFd, PollFlags, Socket, SocketKind, Sockets,
};
use spindle::tasklet;
use spindle::time::Deadline;

use super::alloc::boxed::Box;
use super::{Fault, MockConfig, MockDriver, MockNet};
use spindle::scenarios::soak::{NetFault, SoakNet};

/// The client host's address.
pub const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The server host's address.
pub const SERVER_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The server's listening address.
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(SERVER_HOST, 7);

/// Bounds a wait that only a working test ends sooner.
pub const SAFETY_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking client [`Net`] over a mock network, connected to a non-blocking server table.
pub struct Blocking {
    /// The network.
    pub mock: MockNet,
    /// The client side.
    pub net: Net<MockDriver>,
    /// The server side, its listener on [`SERVER`].
    pub server: Sockets<MockDriver>,
    /// (blocking client socket, server descriptor) per connection.
    pub pairs: Vec<(Socket<MockDriver>, Fd)>,
}

/// A network of `mock_config`'s sizes, a client [`Net`] of `config`'s, and `count` connections
/// to a server table holding the listener and the accepted ends.
#[inline]
pub fn blocking(mock_config: MockConfig, config: NetConfig, count: usize) -> Blocking {
    let mock = MockNet::new(mock_config).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), config).unwrap();
    let mut server = Sockets::new(mock.host(SERVER_HOST), count + 1).unwrap();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, count.max(1)).unwrap();
    let pairs = (0..count)
        .map(|_| {
            let socket = net.socket().unwrap();
            let fd = socket.fd().unwrap();
            let started = net.with_sockets(|sockets| sockets.connect(fd, SERVER));
            assert_eq!(started, Err(NetError::InProgress));
            let (server_fd, _) = server.accept(listener).unwrap();
            (socket, server_fd)
        })
        .collect();
    Blocking {
        mock,
        net,
        server,
        pairs,
    }
}

/// Echoes what `connection` receives until end of stream; returns the bytes echoed.
#[inline]
pub fn echo_until_end<D: spindle::net::NetDriver + Send + 'static>(
    connection: &Socket<D>,
) -> Result<usize, NetError> {
    let mut buf = [0u8; 2048];
    let mut total = 0;
    loop {
        let n = connection.recv(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        let mut at = 0;
        while at < n {
            at += connection.send(&buf[at..n])?;
        }
        total += n;
    }
}

/// A builder for tasklets that select or poll: select copies descriptor sets and needs about
/// 23 KiB of stack in unoptimised builds (4.5 KiB optimised), more than the default 16 KiB.
#[inline]
pub fn roomy() -> tasklet::Builder {
    tasklet::Builder::new().stack_size(64 << 10)
}

/// Yields until `net` has `parked` calls parked (bounded, so a bug fails instead of hanging).
#[inline]
pub fn until_parked(net: &Net<MockDriver>, parked: usize) {
    for _ in 0..10_000 {
        if net.parked() == parked {
            return;
        }
        tasklet::schedule().unwrap();
    }
    panic!("expected {parked} parked calls, found {}", net.parked());
}

/// The descriptors of `pairs`' client ends.
#[inline]
pub fn client_fds(pairs: &[(Socket<MockDriver>, Fd)]) -> Vec<Fd> {
    pairs
        .iter()
        .map(|(socket, _)| socket.fd().unwrap())
        .collect()
}

/// A set holding only `fd`.
#[inline]
pub fn only(fd: Fd) -> FdSet {
    let mut set = FdSet::new();
    set.insert(fd);
    set
}

/// A blocking select for reading on every descriptor of `fds`: its count and ready set.
#[inline]
pub fn select_all(
    net: &Net<MockDriver>,
    fds: &[Fd],
    timeout: Option<Duration>,
) -> (Result<usize, NetError>, FdSet) {
    let mut read = FdSet::new();
    fds.iter().for_each(|&fd| read.insert(fd));
    let count = net.select(Some(&mut read), None, None, timeout);
    (count, read)
}

/// The seed scenario over `count` connections (2 or more): connection 1 is reset while tasklet A
/// waits in recv on it and tasklet B in an untimed select over all of them, on a network whose
/// raw select/poll fail with the pending ECONNRESET. The select returns socket 1 alone, the recv
/// every byte sent before the reset and then the reset, and the other connections are untouched.
#[inline]
pub fn seed_scenario(count: usize) {
    let Blocking {
        mock,
        net,
        server,
        mut pairs,
    } = blocking(MockConfig::default(), NetConfig::default(), count);
    let fds = client_fds(&pairs);
    let server_fds: Vec<Fd> = pairs.iter().map(|&(_, fd)| fd).collect();
    let (first, _) = pairs.remove(0);

    // Tasklet A: blocked in recv on socket 1, reading until the connection fails. It hands the
    // socket back rather than closing it, so B's select still finds socket 1 open.
    let reader = tasklet::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        let ended = loop {
            match first.recv(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(count) => got.extend_from_slice(&buf[..count]),
                Err(error) => break Err(error),
            }
        };
        (got, ended, first)
    })
    .unwrap();

    // Tasklet B: blocked in select over every socket.
    let (selecting_net, watched) = (net.clone(), fds.clone());
    let selector = roomy()
        .spawn(move || select_all(&selecting_net, &watched, None))
        .unwrap();

    // The peer: once both are parked, sends on connection 1 and then resets it.
    let (peer_net, peer_mock, mut server, peer_fd) =
        (net.clone(), mock.clone(), server, server_fds[0]);
    let peer = tasklet::spawn(move || {
        until_parked(&peer_net, 2);
        assert_eq!(server.send(peer_fd, b"sent before the reset"), Ok(21));
        peer_mock.inject(Fault::Reset { conn: 0 });
        server
    })
    .unwrap();

    tasklet::run().unwrap();

    let (count, ready) = selector.result().unwrap().unwrap();
    assert_eq!(
        count,
        Ok(1),
        "the select succeeds despite the pending reset"
    );
    assert_eq!(ready, only(fds[0]), "socket 1 is ready, and only it");

    let (got, ended, _first) = reader.result().unwrap().unwrap();
    assert_eq!(
        &got[..],
        b"sent before the reset",
        "every byte sent before the reset"
    );
    assert_eq!(ended, Err(NetError::ConnectionReset));
    assert!(mock.stats().quirk_errors > 0, "the raw calls met the quirk");

    // The other sockets are untouched: no error, and they still carry data both ways.
    let mut server = peer.result().unwrap().unwrap();
    for (((socket, _), &server_fd), &fd) in pairs.iter().zip(&server_fds[1..]).zip(&fds[1..]) {
        assert_eq!(socket.take_error(), Ok(None));
        assert_eq!(server.send(server_fd, b"ping"), Ok(4));
        let mut buf = [0u8; 8];
        assert_eq!(net.with_sockets(|s| s.recv(fd, &mut buf)), Ok(4));
        assert_eq!(server.send(server_fd, b"ok"), Ok(2));
        assert_eq!(socket.recv(&mut [0u8; 4]), Ok(2));
        assert_eq!(socket.send(b"pong"), Ok(4));
        assert_eq!(server.recv(server_fd, &mut buf), Ok(4));
    }
    assert_eq!(net.parked(), 0);
    assert_eq!(
        tasklet::live_count(),
        1,
        "every tasklet, the poller too, has finished"
    );
}

/// Waits outnumbering the descriptor table: two selects on all 4 sockets of a 4-descriptor table
/// park 8 waits with a 3 s timeout; the poller must poll them all (the table's poll takes at most
/// 4 entries) and wake both when data arrives on one, long before their timeout (a poller that
/// asked the table for one entry per wait would be refused, and both would return `Ok(0)` after
/// 3 s).
#[inline]
pub fn selects_whose_waits_outnumber_the_descriptors_wake_on_data() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 4,
        max_waits: 8,
    };
    let Blocking {
        net,
        mut server,
        pairs,
        ..
    } = blocking(MockConfig::default(), config, 4);
    let fds = client_fds(&pairs);
    let started = Deadline::now().as_ns();
    let selectors: Vec<_> = (0..2)
        .map(|_| {
            let (net, fds) = (net.clone(), fds.clone());
            roomy()
                .spawn(move || select_all(&net, &fds, Some(Duration::from_secs(3))))
                .unwrap()
        })
        .collect();
    let peer_net = net.clone();
    let server_fd = pairs[2].1;
    let peer = tasklet::spawn(move || {
        until_parked(&peer_net, 2);
        assert_eq!(server.send(server_fd, b"data"), Ok(4));
        server
    })
    .unwrap();

    tasklet::run().unwrap();

    let elapsed_ns = Deadline::now().as_ns() - started;
    for selector in selectors {
        let (count, ready) = selector.result().unwrap().unwrap();
        assert_eq!(count, Ok(1), "the data wakes each select");
        assert_eq!(ready, only(fds[2]));
    }
    assert!(
        elapsed_ns < 2_000_000_000,
        "woken by the data, not by the 3 s timeout ({elapsed_ns} ns)"
    );
    let _server = peer.result().unwrap().unwrap();
    assert_eq!(net.parked(), 0);
    assert_eq!(tasklet::live_count(), 1);
}

/// An untimed select and an untimed poll, each on all `sockets` connections of a network of
/// `mock_config`'s sizes and a client [`Net`] of `config`'s, are woken by data on the last one.
/// If they were not, a guard closes the sockets after [`SAFETY_TIMEOUT`], so the test fails (with
/// `BadDescriptor`) instead of hanging.
#[inline]
pub fn untimed_select_and_poll_wake_on_data(
    mock_config: MockConfig,
    config: NetConfig,
    sockets: usize,
) {
    let Blocking {
        net,
        mut server,
        pairs,
        ..
    } = blocking(mock_config, config, sockets);
    let fds = client_fds(&pairs);
    let done = Arc::new(AtomicUsize::new(0));

    let (select_net, watched, finished) = (net.clone(), fds.clone(), done.clone());
    let selector = roomy()
        .spawn(move || {
            let selected = select_all(&select_net, &watched, None);
            finished.fetch_add(1, Ordering::SeqCst);
            selected
        })
        .unwrap();
    let (poll_net, watched, finished) = (net.clone(), fds.clone(), done.clone());
    let poller = roomy()
        .spawn(move || {
            let mut entries: Vec<PollFd> = watched
                .iter()
                .map(|&fd| PollFd::new(fd, PollFlags::IN))
                .collect();
            let count = poll_net.poll(&mut entries, None);
            finished.fetch_add(1, Ordering::SeqCst);
            (count, entries)
        })
        .unwrap();
    let peer_net = net.clone();
    let server_fd = pairs[sockets - 1].1;
    let peer = tasklet::spawn(move || {
        until_parked(&peer_net, 2);
        (server.send(server_fd, b"data"), server)
    })
    .unwrap();
    let (guard_net, watched) = (net.clone(), fds.clone());
    let guard = tasklet::spawn(move || {
        let deadline = Deadline::after(SAFETY_TIMEOUT);
        while done.load(Ordering::SeqCst) < 2 {
            if Deadline::now().as_ns() > deadline.as_ns() {
                for &fd in &watched {
                    let _ = guard_net.close(fd);
                }
                return false;
            }
            tasklet::sleep(Duration::from_millis(1)).unwrap();
        }
        true
    })
    .unwrap();

    tasklet::run().unwrap();

    let (sent, _server) = peer.result().unwrap().unwrap();
    assert_eq!(sent, Ok(4));
    let (count, ready) = selector.result().unwrap().unwrap();
    assert_eq!(count, Ok(1), "the untimed select is woken");
    assert_eq!(ready, only(fds[sockets - 1]));
    let (count, entries) = poller.result().unwrap().unwrap();
    assert_eq!(count, Ok(1), "the untimed poll is woken");
    for (index, entry) in entries.iter().enumerate() {
        let expected = if index == sockets - 1 {
            PollFlags::IN
        } else {
            PollFlags::NONE
        };
        assert_eq!(entry.revents, expected, "entry {index}");
    }
    assert_eq!(guard.result().unwrap(), Ok(true), "no guard was needed");
    assert_eq!(net.parked(), 0);
}

/// `max_parked`: with 2 calls parked, a third that would park fails at once with `NoBuffers`
/// (the calls already parked are untouched), and a slot freed by a woken call serves the next one.
#[inline]
pub fn a_call_beyond_max_parked_fails_with_no_buffers() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 2,
        max_waits: 8,
    };
    let Blocking {
        net,
        mut server,
        mut pairs,
        ..
    } = blocking(MockConfig::default(), config, 3);
    for (socket, _) in pairs.iter_mut() {
        socket.set_timeout(Some(SAFETY_TIMEOUT));
    }
    let pairs = Arc::new(pairs);
    let readers: Vec<_> = (0..2)
        .map(|index| {
            let pairs = pairs.clone();
            tasklet::spawn(move || pairs[index].0.recv(&mut [0u8; 8])).unwrap()
        })
        .collect();
    let (third_net, late) = (net.clone(), pairs.clone());
    let third = tasklet::spawn(move || {
        until_parked(&third_net, 2);
        let refused = late[2].0.recv(&mut [0u8; 8]);
        let parked = third_net.parked();
        assert_eq!(parked, 2, "the refused call parked nothing");
        // Data for the first reader frees its slot; the third call then parks and is woken.
        assert_eq!(server.send(late[0].1, b"one"), Ok(3));
        until_parked(&third_net, 1);
        assert_eq!(server.send(late[2].1, b"three"), Ok(5));
        let retried = late[2].0.recv(&mut [0u8; 8]);
        assert_eq!(server.send(late[1].1, b"two"), Ok(3));
        (refused, parked, retried)
    })
    .unwrap();

    tasklet::run().unwrap();

    assert_eq!(
        third.result().unwrap().unwrap(),
        (Err(NetError::NoBuffers), 2, Ok(5))
    );
    let got: Vec<_> = readers
        .iter()
        .map(|reader| reader.result().unwrap().unwrap())
        .collect();
    assert_eq!(got, [Ok(3), Ok(3)]);
    assert_eq!(net.parked(), 0);
}

/// `max_waits` (3): a select naming more descriptors (4) than all waits together fails at once
/// with `NoBuffers`; one on 2 parks, and then one needing 2 more than the 1 wait left is refused;
/// a call that fits parks and is woken.
#[inline]
pub fn a_call_beyond_max_waits_fails_with_no_buffers() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 4,
        max_waits: 3,
    };
    let Blocking {
        net,
        mut server,
        mut pairs,
        ..
    } = blocking(MockConfig::default(), config, 4);
    for (socket, _) in pairs.iter_mut() {
        socket.set_timeout(Some(SAFETY_TIMEOUT));
    }
    let fds = client_fds(&pairs);

    let (all_net, all_fds) = (net.clone(), fds.clone());
    let too_many = roomy()
        .spawn(move || select_all(&all_net, &all_fds, Some(SAFETY_TIMEOUT)).0)
        .unwrap();
    let (two_net, two_fds) = (net.clone(), fds.clone());
    let two = roomy()
        .spawn(move || select_all(&two_net, &two_fds[..2], Some(SAFETY_TIMEOUT)).0)
        .unwrap();
    let rest_net = net.clone();
    let pairs = Arc::new(pairs);
    let late = pairs.clone();
    let rest = roomy()
        .spawn(move || {
            until_parked(&rest_net, 1);
            // One wait is left: two more are refused, one more parks.
            let refused = select_all(&rest_net, &fds[2..], Some(SAFETY_TIMEOUT)).0;
            let parked = rest_net.parked();
            assert_eq!(parked, 1, "the refused call parked nothing");
            let server_ends = [late[0].1, late[3].1];
            let peer_net = rest_net.clone();
            let peer = tasklet::spawn(move || {
                until_parked(&peer_net, 2);
                for fd in server_ends {
                    assert_eq!(server.send(fd, b"data"), Ok(4));
                }
            })
            .unwrap();
            let fitting = late[3].0.recv(&mut [0u8; 8]);
            (refused, parked, fitting, peer)
        })
        .unwrap();

    tasklet::run().unwrap();

    assert_eq!(
        too_many.result().unwrap().unwrap(),
        Err(NetError::NoBuffers)
    );
    assert_eq!(two.result().unwrap().unwrap(), Ok(1));
    let (refused, parked, fitting, peer) = rest.result().unwrap().unwrap();
    assert_eq!(
        (refused, parked, fitting),
        (Err(NetError::NoBuffers), 1, Ok(4))
    );
    assert_eq!(peer.result(), Some(Ok(())));
    assert_eq!(net.parked(), 0);
}

/// The stack budget: a call that must park but cannot start the poller (its stack does not fit
/// the CPU's budget) fails at once with `NoBuffers` instead of parking with nobody to wake it
/// (an untimed call waited forever), timed or not; once the budget has room again, blocking
/// calls work.
#[inline]
pub fn a_call_that_cannot_start_the_poller_fails_with_no_buffers() {
    let Blocking {
        net,
        mut server,
        mut pairs,
        ..
    } = blocking(MockConfig::default(), NetConfig::default(), 2);
    pairs[0].0.set_timeout(Some(SAFETY_TIMEOUT));
    let caller = tasklet::spawn(move || {
        let results: Vec<_> = pairs
            .iter()
            .map(|(socket, _)| socket.recv(&mut [0u8; 8]))
            .collect();
        (results, pairs)
    })
    .unwrap();
    let (budget, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use);
    let ran = tasklet::run();
    tasklet::set_stack_budget(budget);
    ran.unwrap();
    let (results, pairs) = caller.result().unwrap().unwrap();
    assert_eq!(
        results,
        [Err(NetError::NoBuffers), Err(NetError::NoBuffers)],
        "the timed and the untimed call fail at once"
    );
    assert_eq!(net.parked(), 0, "the refused calls parked nothing");

    let (socket, server_fd) = pairs.into_iter().nth(1).unwrap();
    let reader = tasklet::spawn(move || socket.recv(&mut [0u8; 8])).unwrap();
    let peer_net = net.clone();
    let peer = tasklet::spawn(move || {
        until_parked(&peer_net, 1);
        server.send(server_fd, b"later")
    })
    .unwrap();
    tasklet::run().unwrap();
    assert_eq!(peer.result().unwrap().unwrap(), Ok(5));
    assert_eq!(reader.result().unwrap().unwrap(), Ok(5));
}

/// The soak's network (`spindle::scenarios::soak`), the same on the host and on target: an echo
/// server's listener on [`SERVER`], a client host, and the soak's faults mapped onto the mock
/// network's.
#[inline]
pub fn soak_network() -> SoakNet<MockDriver> {
    let network = MockNet::new(MockConfig {
        max_sockets: 256,
        ..MockConfig::default()
    })
    .expect("mock network");
    let server = Net::new(network.host(SERVER_HOST), NetConfig::default()).expect("server net");
    let client = Net::new(network.host(CLIENT_HOST), NetConfig::default()).expect("client net");
    let listener = server.socket().expect("listener");
    listener.bind(SERVER).expect("bind");
    listener.listen(16).expect("listen");
    SoakNet {
        listener,
        address: SERVER,
        client,
        inject: Box::new(move |fault| {
            network.inject(match fault {
                NetFault::ResetLatest => Fault::Reset {
                    conn: network.stats().connections.saturating_sub(1),
                },
                NetFault::ResetAll => Fault::ResetAll,
                NetFault::PartialWrites(limit) => Fault::PartialWrites { limit },
                NetFault::RefuseConnect => Fault::RefuseConnects { count: 1 },
            })
        }),
    }
}
