//! Net tests on the target: the quirk repair, the seed scenario on tasklets (the select quirk's
//! setting in the seed: a connection reset while one tasklet waits in recv on it and another in
//! select over it), the echo demo, and
//! select/poll and echo costs in PMC5 instructions.

use crate::{BenchSuite, Suite, TargetBench, TargetTest};
use alloc::vec::Vec;
use core::hint::black_box;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use spin::Mutex;
use spindle::net::{Fd, FdSet, Net, NetConfig, NetError, PollFd, PollFlags, SocketKind, Sockets};
use spindle::tasklet;
use spindle_demo::echo::{run_echo_demo, DEMO_RESET_CLIENT};
use spindle_drivers::mock_net::{Fault, MockConfig, MockDriver, MockNet};

/// The net suite.
pub const SUITE: Suite = Suite::new(
    "net",
    &[
        TargetTest::new(
            "select_and_poll_survive_the_quirk",
            select_and_poll_survive_the_quirk,
        ),
        TargetTest::new("bad_input_gives_typed_errors", bad_input_gives_typed_errors),
        TargetTest::new("seed_scenario_on_tasklets", seed_scenario_on_tasklets),
        TargetTest::new("blocking_calls_time_out", blocking_calls_time_out),
        TargetTest::new(
            "echo_demo_with_a_reset_client",
            echo_demo_with_a_reset_client,
        ),
    ],
);

/// The net benchmarks: instructions per select/poll call at several descriptor counts (the
/// growth per descriptor shows linearity), and per echoed byte through the mock network.
pub const BENCH_SUITE: BenchSuite = BenchSuite::new(
    "net",
    &[
        TargetBench::new("select_16_fds", select_fds::<16>, 50),
        TargetBench::new("select_256_fds", select_fds::<256>, 10),
        TargetBench::new("select_1024_fds", select_fds::<1024>, 4),
        TargetBench::new("poll_16_fds", poll_fds::<16>, 50),
        TargetBench::new("poll_256_fds", poll_fds::<256>, 10),
        TargetBench::new("poll_1024_fds", poll_fds::<1024>, 4),
        TargetBench::new("echo_1_byte_of_1k_chunks", echo_bytes::<1024>, 4096),
        TargetBench::new("echo_1_byte_of_16k_chunks", echo_bytes::<16384>, 16384),
    ],
);

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);
const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A mock network with connected pairs: (client end, server end).
struct Connected {
    mock: MockNet,
    client: Sockets<MockDriver>,
    server: Sockets<MockDriver>,
    pairs: Vec<(Fd, Fd)>,
}

/// `count` connected pairs: a client table holding the client ends, a server table the rest.
fn connected(config: MockConfig, count: usize) -> Connected {
    let mock = MockNet::new(config).unwrap();
    let mut client = Sockets::new(mock.host(CLIENT_HOST), count.max(1)).unwrap();
    let mut server = Sockets::new(mock.host(*SERVER.ip()), count.max(2)).unwrap();
    // Client ends first, so their raw numbers stay below FD_SETSIZE for select.
    let clients: Vec<Fd> = (0..count)
        .map(|_| client.socket(SocketKind::Stream).unwrap())
        .collect();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, count.max(1)).unwrap();
    let mut pairs = Vec::new();
    for (index, &fd) in clients.iter().enumerate() {
        client.connect(fd, SERVER).unwrap();
        // The last connection stays queued so the server table fits FD_SETSIZE.
        let server_fd = if index + 1 < count.max(2) {
            server.accept(listener).unwrap().0
        } else {
            listener
        };
        pairs.push((fd, server_fd));
    }
    Connected {
        mock,
        client,
        server,
        pairs,
    }
}

fn select_and_poll_survive_the_quirk() {
    let Connected {
        mock,
        mut client,
        pairs,
        ..
    } = connected(MockConfig::default(), 4);
    mock.inject(Fault::Reset { conn: 1 });
    let mut read = FdSet::new();
    pairs.iter().for_each(|&(fd, _)| read.insert(fd));
    assert_eq!(
        client.select(Some(&mut read), None, None, Some(Duration::ZERO)),
        Ok(1)
    );
    assert!(read.contains(pairs[1].0));
    let mut entries: Vec<PollFd> = pairs
        .iter()
        .map(|&(fd, _)| PollFd::new(fd, PollFlags::IN))
        .collect();
    assert_eq!(client.poll(&mut entries, Some(Duration::ZERO)), Ok(1));
    assert_eq!(
        entries[1].revents,
        PollFlags::IN | PollFlags::ERR | PollFlags::HUP
    );
    assert!(mock.stats().quirk_errors >= 2);
    assert_eq!(
        client.take_error(pairs[1].0),
        Ok(Some(NetError::ConnectionReset))
    );
}

fn bad_input_gives_typed_errors() {
    let Connected {
        mut client, pairs, ..
    } = connected(MockConfig::default(), 1);
    let fd = pairs[0].0;
    assert_eq!(client.send(fd, &[]), Err(NetError::InvalidInput));
    assert_eq!(client.recv(fd, &mut []), Err(NetError::InvalidInput));
    client.close(fd).unwrap();
    assert_eq!(client.close(fd), Err(NetError::BadDescriptor));
    let mut oversized = FdSet::new();
    oversized.insert(Fd::from_parts(1000, 0).unwrap());
    assert_eq!(
        client.select(Some(&mut oversized), None, None, None),
        Err(NetError::InvalidInput)
    );
}

fn seed_scenario_on_tasklets() {
    const N: usize = 4;
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let mut server = Sockets::new(mock.host(*SERVER.ip()), 16).unwrap();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, N).unwrap();
    let mut sockets = Vec::new();
    let mut server_fds = Vec::new();
    for _ in 0..N {
        let socket = net.socket().unwrap();
        let fd = socket.fd().unwrap();
        assert_eq!(
            net.with_sockets(|s| s.connect(fd, SERVER)),
            Err(NetError::InProgress)
        );
        server_fds.push(server.accept(listener).unwrap().0);
        sockets.push(socket);
    }
    let fds: Vec<Fd> = sockets.iter().map(|socket| socket.fd().unwrap()).collect();
    let first = sockets.remove(0);

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
    let selecting_net = net.clone();
    let watched = fds.clone();
    let selector = tasklet::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || {
            let mut read = FdSet::new();
            watched.iter().for_each(|&fd| read.insert(fd));
            (
                selecting_net.select(Some(&mut read), None, None, None),
                read,
            )
        })
        .unwrap();
    let peer_net = net.clone();
    let peer_mock = mock.clone();
    let peer = tasklet::spawn(move || {
        for _ in 0..10_000 {
            if peer_net.parked() == 2 {
                break;
            }
            tasklet::schedule().unwrap();
        }
        assert_eq!(peer_net.parked(), 2);
        server.send(server_fds[0], b"before reset").unwrap();
        peer_mock.inject(Fault::Reset { conn: 0 });
        (server, server_fds)
    })
    .unwrap();

    tasklet::run().unwrap();

    let (count, ready) = selector.result().unwrap().unwrap();
    assert_eq!(count, Ok(1));
    assert!(ready.contains(fds[0]) && ready.len() == 1);
    let (got, ended, _first) = reader.result().unwrap().unwrap();
    assert_eq!(&got[..], b"before reset");
    assert_eq!(ended, Err(NetError::ConnectionReset));
    let (mut server, server_fds) = peer.result().unwrap().unwrap();
    for (socket, &server_fd) in sockets.iter().zip(&server_fds[1..]) {
        assert_eq!(socket.take_error(), Ok(None));
        assert_eq!(server.send(server_fd, b"ok"), Ok(2));
        assert_eq!(socket.recv(&mut [0u8; 4]), Ok(2));
    }
    assert_eq!(net.parked(), 0);
}

fn blocking_calls_time_out() {
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let mut listener = net.socket().unwrap();
    listener.bind(SocketAddrV4::new(CLIENT_HOST, 9)).unwrap();
    listener.listen(1).unwrap();
    listener.set_timeout(Some(Duration::from_millis(20)));
    let waiting = tasklet::spawn(move || listener.accept().map(|_| ())).unwrap();
    tasklet::run().unwrap();
    assert_eq!(waiting.result().unwrap().unwrap(), Err(NetError::TimedOut));
    assert_eq!(net.parked(), 0);
}

fn echo_demo_with_a_reset_client() {
    let mut console = spindle::platform::Console;
    let report = run_echo_demo(&mut console).unwrap();
    for (index, client) in report.clients.iter().enumerate() {
        assert!(client.echo_intact);
        if index == DEMO_RESET_CLIENT {
            assert_eq!(client.ended, Err(NetError::ConnectionReset));
        } else {
            assert_eq!(client.ended, Ok(()));
            assert_eq!(client.echoed, client.sent);
        }
    }
    assert!(report.quirk_repairs > 0);
    assert_eq!(report.sockets_left, 0);
}

/// Connected idle sockets for the select/poll benchmarks, built once per descriptor count.
struct Idle {
    client: Sockets<MockDriver>,
    _server: Sockets<MockDriver>,
    fds: Vec<Fd>,
}

static IDLE: Mutex<Option<(usize, Idle)>> = Mutex::new(None);

fn with_idle<const N: usize>(body: impl FnOnce(&mut Idle)) {
    let mut idle = IDLE.lock();
    if idle.as_ref().map(|(count, _)| *count) != Some(N) {
        let config = MockConfig {
            max_sockets: 2 * N + 1,
            recv_buffer: 16,
            send_buffer: 16,
            max_backlog: N,
            quirk: true,
        };
        let Connected {
            client,
            server,
            pairs,
            ..
        } = connected(config, N);
        let fds = pairs.iter().map(|&(fd, _)| fd).collect();
        *idle = Some((
            N,
            Idle {
                client,
                _server: server,
                fds,
            },
        ));
    }
    if let Some((_, idle)) = idle.as_mut() {
        body(idle);
    }
}

fn select_fds<const N: usize>(iters: u64) {
    with_idle::<N>(|idle| {
        let mut all = FdSet::new();
        idle.fds.iter().for_each(|&fd| all.insert(fd));
        for _ in 0..iters {
            let mut read = all;
            black_box(
                idle.client
                    .select(Some(&mut read), None, None, Some(Duration::ZERO)),
            )
            .unwrap();
        }
    });
}

fn poll_fds<const N: usize>(iters: u64) {
    with_idle::<N>(|idle| {
        let mut entries: Vec<PollFd> = idle
            .fds
            .iter()
            .map(|&fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        for _ in 0..iters {
            black_box(idle.client.poll(&mut entries, Some(Duration::ZERO))).unwrap();
        }
    });
}

/// Echoes `iters` bytes in `CHUNK`-byte round trips (client send, server recv and send back,
/// client recv), so the count is instructions per echoed byte.
fn echo_bytes<const CHUNK: usize>(iters: u64) {
    let config = MockConfig {
        max_sockets: 4,
        recv_buffer: CHUNK,
        send_buffer: CHUNK,
        max_backlog: 1,
        quirk: true,
    };
    let Connected {
        mut client,
        mut server,
        pairs,
        ..
    } = connected(config, 1);
    let (client_fd, server_fd) = pairs[0];
    let message = alloc::vec![0x5au8; CHUNK];
    let mut buf = alloc::vec![0u8; CHUNK];
    for _ in 0..(iters as usize).div_ceil(CHUNK) {
        let sent = client.send(client_fd, &message).unwrap();
        let got = server.recv(server_fd, &mut buf).unwrap();
        server.send(server_fd, &buf[..got]).unwrap();
        let back = client.recv(client_fd, &mut buf).unwrap();
        assert_eq!((sent, back), (CHUNK, CHUNK));
    }
}
