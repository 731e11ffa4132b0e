//! Tasklet-blocking sockets over the mock network: the seed scenario, timeouts, close, kill,
//! `embedded_io` streams, more parked waits than descriptors, and the limits of the wait tables.
//!
//! The seed scenario is the select quirk's setting in the seed (the Stackless-on-PS3 document
//! Spindle was made from): a connection is reset while one tasklet waits in recv on it and
//! another in select over it and other sockets, on a network whose raw select/poll fail with
//! the pending ECONNRESET.

mod common;

use core::time::Duration;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::{CLIENT_HOST, SERVER, SERVER_HOST};
use embedded_io::{Read, ReadReady, Write, WriteReady};
use spindle::net::{
    Fd, FdSet, Net, NetConfig, NetError, PollFd, PollFlags, Socket, SocketKind, Sockets,
};
use spindle::tasklet;
use spindle_drivers::mock_net::{Fault, MockConfig, MockDriver, MockNet};

/// A client-side blocking [`Net`] and a non-blocking server table with a listener on [`SERVER`].
struct Setup {
    mock: MockNet,
    net: Net<MockDriver>,
    server: Sockets<MockDriver>,
    listener: Fd,
}

fn setup() -> Setup {
    setup_with(MockConfig::default(), NetConfig::default())
}

/// [`setup`] over a network and a client [`Net`] of these sizes (the server table holds 64).
fn setup_with(mock_config: MockConfig, config: NetConfig) -> Setup {
    let mock = MockNet::new(mock_config).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), config).unwrap();
    let mut server = Sockets::new(mock.host(SERVER_HOST), 64).unwrap();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, 16).unwrap();
    Setup {
        mock,
        net,
        server,
        listener,
    }
}

impl Setup {
    /// `count` connections: (blocking client socket, server descriptor).
    fn pairs(&mut self, count: usize) -> Vec<(Socket<MockDriver>, Fd)> {
        (0..count)
            .map(|_| {
                let socket = self.net.socket().unwrap();
                let fd = socket.fd().unwrap();
                let started = self.net.with_sockets(|sockets| sockets.connect(fd, SERVER));
                assert_eq!(started, Err(NetError::InProgress));
                let (server_fd, _) = self.server.accept(self.listener).unwrap();
                (socket, server_fd)
            })
            .collect()
    }
}

/// A builder for tasklets that select or poll: select copies descriptor sets and needs about
/// 23 KiB of stack in unoptimised builds (4.5 KiB optimised), more than the default 16 KiB.
fn roomy() -> tasklet::Builder {
    tasklet::Builder::new().stack_size(64 << 10)
}

/// Bounds a wait that only a working test ends sooner.
const SAFETY_TIMEOUT: Duration = Duration::from_secs(10);

/// Yields until every tasklet in `tasklets` waits (parked in a blocking call).
fn until_waiting(tasklets: &[&tasklet::Tasklet]) {
    for _ in 0..100_000 {
        if tasklets.iter().all(|t| t.is_blocked() || t.is_paused()) {
            return;
        }
        tasklet::schedule().unwrap();
    }
    panic!("the tasklets never parked");
}

/// Yields until `net` has `parked` calls parked (bounded, so a bug fails instead of hanging).
fn until_parked(net: &Net<MockDriver>, parked: usize) {
    for _ in 0..10_000 {
        if net.parked() == parked {
            return;
        }
        tasklet::schedule().unwrap();
    }
    panic!("expected {parked} parked calls, found {}", net.parked());
}

#[test]
fn seed_scenario_reset_wakes_the_recv_and_the_select_and_leaves_the_rest_alone() {
    const N: usize = 5;
    let mut setup = setup();
    let mut pairs = setup.pairs(N);
    let fds: Vec<Fd> = pairs
        .iter()
        .map(|(socket, _)| socket.fd().unwrap())
        .collect();
    let server_fds: Vec<Fd> = pairs.iter().map(|&(_, fd)| fd).collect();
    let (socket1, _) = pairs.remove(0);

    // Tasklet A: blocked in recv on socket 1, reading until the connection fails. It hands the
    // socket back rather than closing it, so B's select still finds socket 1 open.
    let reader = tasklet::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        let ended = loop {
            match socket1.recv(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(count) => got.extend_from_slice(&buf[..count]),
                Err(error) => break Err(error),
            }
        };
        (got, ended, socket1)
    })
    .unwrap();

    // Tasklet B: blocked in select over sockets 1..N.
    let net = setup.net.clone();
    let watched = fds.clone();
    let selector = roomy()
        .spawn(move || {
            let mut read = FdSet::new();
            watched.iter().for_each(|&fd| read.insert(fd));
            let count = net.select(Some(&mut read), None, None, None);
            (count, read)
        })
        .unwrap();

    // The peer: once both are parked, sends on connection 1 and then resets it.
    let net = setup.net.clone();
    let mock = setup.mock.clone();
    let mut server = setup.server;
    let peer = tasklet::spawn(move || {
        until_parked(&net, 2);
        assert_eq!(server.send(server_fds[0], b"sent before the reset"), Ok(21));
        mock.inject(Fault::Reset { conn: 0 });
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
    let mut only_first = FdSet::new();
    only_first.insert(fds[0]);
    assert_eq!(ready, only_first, "socket 1 is ready, and only it");

    let (got, ended, _socket1) = reader.result().unwrap().unwrap();
    assert_eq!(
        got, b"sent before the reset",
        "every byte sent before the reset"
    );
    assert_eq!(ended, Err(NetError::ConnectionReset));
    assert!(
        setup.mock.stats().quirk_errors > 0,
        "the raw calls met the quirk"
    );

    // Sockets 2..N are untouched: no error, and they still carry data both ways.
    let mut server = peer.result().unwrap().unwrap();
    for ((socket, server_fd), fd) in pairs.iter().zip(&fds[1..]) {
        assert_eq!(socket.take_error(), Ok(None));
        assert_eq!(server.send(*server_fd, b"ping"), Ok(4));
        let mut buf = [0u8; 8];
        assert_eq!(setup.net.with_sockets(|s| s.recv(*fd, &mut buf)), Ok(4));
        assert_eq!(socket.send(b"pong"), Ok(4));
        assert_eq!(server.recv(*server_fd, &mut buf), Ok(4));
    }
    assert_eq!(setup.net.parked(), 0);
    assert_eq!(
        tasklet::live_count(),
        1,
        "every tasklet, the poller too, has finished"
    );
}

#[test]
fn no_parked_call_outlives_its_timeout_its_close_or_a_kill() {
    let mut setup = setup();
    let mut pairs = setup.pairs(5);
    let (mut timed, _) = pairs.remove(0);
    let (closed, _) = pairs.remove(0);
    let (killed, _) = pairs.remove(0);
    let (selected, _) = pairs.remove(0);
    let (polled, _) = pairs.remove(0);

    timed.set_timeout(Some(Duration::from_millis(5)));
    let timed = tasklet::spawn(move || timed.recv(&mut [0u8; 4])).unwrap();

    // These two wait for the closer; the long timeouts only turn a broken closer into a
    // failure instead of a hang.
    let closed_fd = closed.fd().unwrap();
    let mut closed = closed;
    closed.set_timeout(Some(SAFETY_TIMEOUT));
    let closed_waiter = tasklet::spawn(move || closed.recv(&mut [0u8; 4])).unwrap();

    let mut killed = killed;
    killed.set_timeout(Some(SAFETY_TIMEOUT));
    let killed_waiter = tasklet::spawn(move || killed.recv(&mut [0u8; 4])).unwrap();

    let net = setup.net.clone();
    let selected_fd = selected.fd().unwrap();
    let selecting = roomy()
        .spawn(move || {
            let mut read = FdSet::new();
            read.insert(selected_fd);
            let count = net.select(Some(&mut read), None, None, Some(Duration::from_millis(3)));
            (count, read.is_empty())
        })
        .unwrap();

    let net = setup.net.clone();
    let polled_fd = polled.fd().unwrap();
    let polling = roomy()
        .spawn(move || {
            let mut entries = [PollFd::new(polled_fd, PollFlags::IN)];
            net.poll(&mut entries, Some(Duration::from_millis(3)))
        })
        .unwrap();

    let net = setup.net.clone();
    let killer_target = killed_waiter.tasklet().clone();
    let close_target = closed_waiter.tasklet().clone();
    let closer = tasklet::spawn(move || {
        // Only these two: on a slow machine the timed calls may be over before they are counted.
        until_waiting(&[&killer_target, &close_target]);
        killer_target.kill().unwrap();
        net.close(closed_fd)
    })
    .unwrap();

    tasklet::run().unwrap();

    assert_eq!(timed.result().unwrap().unwrap(), Err(NetError::TimedOut));
    assert_eq!(
        closed_waiter.result().unwrap().unwrap(),
        Err(NetError::BadDescriptor)
    );
    assert_eq!(closer.result().unwrap().unwrap(), Ok(()));
    assert_eq!(
        killed_waiter.result().unwrap(),
        Ok(Err(NetError::Interrupted)),
        "the kill ends the parked recv with EINTR"
    );
    assert_eq!(selecting.result().unwrap().unwrap(), (Ok(0), true));
    assert_eq!(polling.result().unwrap().unwrap(), Ok(0));
    assert_eq!(setup.net.parked(), 0, "the killed call took its wait out");
    assert_eq!(tasklet::live_count(), 1);
    drop((selected, polled, pairs));
    assert_eq!(
        setup.net.with_sockets(|s| s.open_count()),
        0,
        "sockets close when dropped"
    );
}

#[test]
fn embedded_io_streams_echo_between_tasklets() {
    let mock = MockNet::new(MockConfig {
        recv_buffer: 256,
        send_buffer: 256,
        ..MockConfig::default()
    })
    .unwrap();
    let server_net = Net::new(mock.host(SERVER_HOST), NetConfig::default()).unwrap();
    let client_net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let listener = server_net.socket().unwrap();
    listener.bind(SERVER).unwrap();
    listener.listen(4).unwrap();

    let server = tasklet::spawn(move || {
        let (mut stream, _) = listener.accept()?;
        let mut buf = [0u8; 100];
        let mut echoed = 0;
        loop {
            let count = stream.read(&mut buf)?;
            if count == 0 {
                return Ok::<usize, NetError>(echoed);
            }
            stream.write_all(&buf[..count])?;
            echoed += count;
        }
    })
    .unwrap();

    let client = tasklet::spawn(move || {
        let mut stream = client_net.socket()?;
        stream.connect(SERVER)?;
        assert!(stream.write_ready()?);
        let message: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut back = vec![0u8; message.len()];
        // Writes and reads interleave: the buffers (256 bytes) are far smaller than the message.
        let mut written = 0;
        let mut read = 0;
        while read < message.len() {
            if written < message.len() {
                written += stream.write(&message[written..(written + 300).min(message.len())])?;
            }
            while read < written && (read < message.len()) {
                read += stream.read(&mut back[read..written])?;
                if !stream.read_ready()? {
                    break;
                }
            }
        }
        stream.shutdown(spindle::net::Shutdown::Write)?;
        assert_eq!(
            stream.read(&mut [0u8; 4])?,
            0,
            "the server closes after the echo"
        );
        Ok::<bool, NetError>(back == message)
    })
    .unwrap();

    tasklet::run().unwrap();
    assert_eq!(client.result().unwrap().unwrap(), Ok(true));
    assert_eq!(server.result().unwrap().unwrap(), Ok(5000));
    assert_eq!(mock.sockets_in_use(), 0);
}

#[test]
fn a_refused_blocking_connect_reports_the_refusal() {
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let connecting = tasklet::spawn(move || {
        let socket = net.socket()?;
        socket.connect(SERVER)
    })
    .unwrap();
    tasklet::run().unwrap();
    assert_eq!(
        connecting.result().unwrap().unwrap(),
        Err(NetError::ConnectionRefused)
    );
}

/// The descriptors of `pairs`' client ends.
fn client_fds(pairs: &[(Socket<MockDriver>, Fd)]) -> Vec<Fd> {
    pairs
        .iter()
        .map(|(socket, _)| socket.fd().unwrap())
        .collect()
}

/// A set holding only `fd`.
fn only(fd: Fd) -> FdSet {
    let mut set = FdSet::new();
    set.insert(fd);
    set
}

/// Waits outnumbering the descriptor table: two selects on all 4 sockets of a 4-descriptor table
/// park 8 waits; the poller must poll them all (the table's poll takes at most 4 entries) and wake
/// both when data arrives on one, long before their 3 s timeout.
#[test]
fn two_selects_whose_waits_outnumber_the_descriptors_wake_on_data() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 4,
        max_waits: 8,
    };
    let mut setup = setup_with(MockConfig::default(), config);
    let pairs = setup.pairs(4);
    let fds = client_fds(&pairs);
    let started = Instant::now();
    let selectors: Vec<_> = (0..2)
        .map(|_| {
            let net = setup.net.clone();
            let watched = fds.clone();
            roomy()
                .spawn(move || {
                    let mut read = FdSet::new();
                    watched.iter().for_each(|&fd| read.insert(fd));
                    let count =
                        net.select(Some(&mut read), None, None, Some(Duration::from_secs(3)));
                    (count, read)
                })
                .unwrap()
        })
        .collect();
    let net = setup.net.clone();
    let mut server = setup.server;
    let server_fd = pairs[2].1;
    let peer = tasklet::spawn(move || {
        until_parked(&net, 2);
        assert_eq!(server.send(server_fd, b"data"), Ok(4));
        server
    })
    .unwrap();

    tasklet::run().unwrap();

    let elapsed = started.elapsed();
    for selector in selectors {
        let (count, ready) = selector.result().unwrap().unwrap();
        assert_eq!(count, Ok(1), "the data wakes each select");
        assert_eq!(ready, only(fds[2]));
    }
    assert!(
        elapsed < Duration::from_secs(2),
        "woken by the data, not by the timeout ({elapsed:?})"
    );
    let _server = peer.result().unwrap().unwrap();
    assert_eq!(setup.net.parked(), 0);
    assert_eq!(tasklet::live_count(), 1);
}

/// The default sizes (64 descriptors, 256 waits) with 2 × 33 waits, and no timeout: an untimed
/// select and an untimed poll are woken by data. If they were not, a guard closes the sockets
/// after [`SAFETY_TIMEOUT`], so the test fails (with `BadDescriptor`) instead of hanging.
#[test]
fn untimed_select_and_poll_beyond_the_default_table_wake_on_data() {
    const SOCKETS: usize = 33;
    let mock_config = MockConfig {
        max_sockets: 2 * SOCKETS + 1,
        ..MockConfig::default()
    };
    let mut setup = setup_with(mock_config, NetConfig::default());
    let pairs = setup.pairs(SOCKETS);
    let fds = client_fds(&pairs);
    let done = Arc::new(AtomicUsize::new(0));

    let (net, watched, finished) = (setup.net.clone(), fds.clone(), done.clone());
    let selector = roomy()
        .spawn(move || {
            let mut read = FdSet::new();
            watched.iter().for_each(|&fd| read.insert(fd));
            let count = net.select(Some(&mut read), None, None, None);
            finished.fetch_add(1, Ordering::SeqCst);
            (count, read)
        })
        .unwrap();
    let (net, watched, finished) = (setup.net.clone(), fds.clone(), done.clone());
    let poller = roomy()
        .spawn(move || {
            let mut entries: Vec<PollFd> = watched
                .iter()
                .map(|&fd| PollFd::new(fd, PollFlags::IN))
                .collect();
            let count = net.poll(&mut entries, None);
            finished.fetch_add(1, Ordering::SeqCst);
            (count, entries)
        })
        .unwrap();
    let net = setup.net.clone();
    let mut server = setup.server;
    let server_fd = pairs[SOCKETS - 1].1;
    let peer = tasklet::spawn(move || {
        until_parked(&net, 2);
        assert_eq!(server.send(server_fd, b"data"), Ok(4));
        server
    })
    .unwrap();
    let (net, watched) = (setup.net.clone(), fds.clone());
    let guard = tasklet::spawn(move || {
        let started = Instant::now();
        while done.load(Ordering::SeqCst) < 2 {
            if started.elapsed() > SAFETY_TIMEOUT {
                for &fd in &watched {
                    let _ = net.close(fd);
                }
                return false;
            }
            tasklet::sleep(Duration::from_millis(1)).unwrap();
        }
        true
    })
    .unwrap();

    tasklet::run().unwrap();

    let (count, ready) = selector.result().unwrap().unwrap();
    assert_eq!(count, Ok(1), "the untimed select is woken");
    assert_eq!(ready, only(fds[SOCKETS - 1]));
    let (count, entries) = poller.result().unwrap().unwrap();
    assert_eq!(count, Ok(1), "the untimed poll is woken");
    for (index, entry) in entries.iter().enumerate() {
        let expected = if index == SOCKETS - 1 {
            PollFlags::IN
        } else {
            PollFlags::NONE
        };
        assert_eq!(entry.revents, expected, "entry {index}");
    }
    assert_eq!(guard.result().unwrap(), Ok(true), "no guard was needed");
    let _server = peer.result().unwrap().unwrap();
    assert_eq!(setup.net.parked(), 0);
}

/// `max_parked`: a call that would park beyond it fails at once with `NoBuffers` (the calls
/// already parked are untouched), and a slot freed by a woken call serves the next one.
#[test]
fn a_call_beyond_max_parked_fails_with_no_buffers() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 2,
        max_waits: 8,
    };
    let mut setup = setup_with(MockConfig::default(), config);
    let mut pairs = setup.pairs(3);
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
    let net = setup.net.clone();
    let mut server = setup.server;
    let late = pairs.clone();
    let third = tasklet::spawn(move || {
        until_parked(&net, 2);
        let refused = late[2].0.recv(&mut [0u8; 8]);
        assert_eq!(net.parked(), 2, "the refused call parked nothing");
        // Data for the first reader frees its slot; the third call then parks and is woken.
        assert_eq!(server.send(late[0].1, b"one"), Ok(3));
        until_parked(&net, 1);
        assert_eq!(server.send(late[2].1, b"three"), Ok(5));
        let retried = late[2].0.recv(&mut [0u8; 8]);
        assert_eq!(server.send(late[1].1, b"two"), Ok(3));
        (refused, retried)
    })
    .unwrap();

    tasklet::run().unwrap();

    assert_eq!(
        third.result().unwrap().unwrap(),
        (Err(NetError::NoBuffers), Ok(5))
    );
    let got: Vec<_> = readers
        .iter()
        .map(|reader| reader.result().unwrap().unwrap())
        .collect();
    assert_eq!(got, [Ok(3), Ok(3)]);
    assert_eq!(setup.net.parked(), 0);
}

/// `max_waits`: a select naming more descriptors than all waits together fails at once with
/// `NoBuffers`, and so does one needing more waits than are left; a call that fits parks.
#[test]
fn a_call_beyond_max_waits_fails_with_no_buffers() {
    let config = NetConfig {
        descriptors: 4,
        max_parked: 4,
        max_waits: 3,
    };
    let mut setup = setup_with(MockConfig::default(), config);
    let mut pairs = setup.pairs(4);
    for (socket, _) in pairs.iter_mut() {
        socket.set_timeout(Some(SAFETY_TIMEOUT));
    }
    let fds = client_fds(&pairs);
    let select_on = |net: &Net<MockDriver>, watched: &[Fd]| {
        let mut read = FdSet::new();
        watched.iter().for_each(|&fd| read.insert(fd));
        net.select(Some(&mut read), None, None, Some(SAFETY_TIMEOUT))
    };

    let (net, watched) = (setup.net.clone(), fds.clone());
    let too_many = roomy().spawn(move || select_on(&net, &watched)).unwrap();
    let (net, watched) = (setup.net.clone(), fds.clone());
    let two = roomy()
        .spawn(move || select_on(&net, &watched[..2]))
        .unwrap();
    let net = setup.net.clone();
    let mut server = setup.server;
    let pairs = Arc::new(pairs);
    let late = pairs.clone();
    let rest = roomy()
        .spawn(move || {
            until_parked(&net, 1);
            // One wait is left: two more are refused, one more parks.
            let refused = select_on(&net, &fds[2..]);
            assert_eq!(net.parked(), 1, "the refused call parked nothing");
            let server_ends = [late[0].1, late[3].1];
            let peer_net = net.clone();
            let peer = tasklet::spawn(move || {
                until_parked(&peer_net, 2);
                for fd in server_ends {
                    assert_eq!(server.send(fd, b"data"), Ok(4));
                }
            })
            .unwrap();
            let fitting = late[3].0.recv(&mut [0u8; 8]);
            (refused, fitting, peer)
        })
        .unwrap();

    tasklet::run().unwrap();

    assert_eq!(
        too_many.result().unwrap().unwrap(),
        Err(NetError::NoBuffers)
    );
    assert_eq!(two.result().unwrap().unwrap(), Ok(1));
    let (refused, fitting, peer) = rest.result().unwrap().unwrap();
    assert_eq!((refused, fitting), (Err(NetError::NoBuffers), Ok(4)));
    assert_eq!(peer.result(), Some(Ok(())));
    assert_eq!(setup.net.parked(), 0);
}

/// The stack budget: a call that must park but cannot start the poller (its stack does not fit
/// the CPU's budget) fails at once with `NoBuffers` instead of parking with nobody to wake it
/// (an untimed call waited forever); once the budget has room again, blocking calls work.
#[test]
fn a_call_that_cannot_start_the_poller_fails_with_no_buffers() {
    let mut setup = setup();
    let mut pairs = setup.pairs(2);
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
    assert_eq!(setup.net.parked(), 0, "the refused calls parked nothing");

    let (socket, server_fd) = pairs.into_iter().nth(1).unwrap();
    let reader = tasklet::spawn(move || socket.recv(&mut [0u8; 8])).unwrap();
    let net = setup.net.clone();
    let mut server = setup.server;
    let peer = tasklet::spawn(move || {
        until_parked(&net, 1);
        server.send(server_fd, b"later")
    })
    .unwrap();
    tasklet::run().unwrap();
    assert_eq!(peer.result().unwrap().unwrap(), Ok(5));
    assert_eq!(reader.result().unwrap().unwrap(), Ok(5));
}
