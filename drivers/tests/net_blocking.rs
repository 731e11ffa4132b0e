//! Tasklet-blocking sockets over the mock network: the seed scenario, timeouts, close, kill,
//! and `embedded_io` streams.
//!
//! The seed scenario is the select quirk's setting in the seed (the Stackless-on-PS3 document
//! Spindle was made from): a connection is reset while one tasklet waits in recv on it and
//! another in select over it and other sockets, on a network whose raw select/poll fail with
//! the pending ECONNRESET.

mod common;

use core::time::Duration;

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
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let mut server = Sockets::new(mock.host(SERVER_HOST), 32).unwrap();
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
