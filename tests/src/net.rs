//! Net tests on the target: the quirk repair, the seed scenario on tasklets (the select quirk's
//! setting in the seed: a connection reset while one tasklet waits in recv on it and another in
//! select over it), parked waits outnumbering the descriptor table, the limits of the blocking
//! layer's tables as typed errors, the echo demo, and select/poll and echo costs in PMC5
//! instructions.

use crate::{BenchSuite, Suite, TargetBench, TargetTest};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hint::black_box;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use spin::Mutex;
use spindle::net::{
    Fd, FdSet, Net, NetConfig, NetError, PollFd, PollFlags, Socket, SocketKind, Sockets,
};
use spindle::tasklet;
use spindle::time::Deadline;
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
            "selects_whose_waits_outnumber_the_descriptors_wake_on_data",
            selects_whose_waits_outnumber_the_descriptors_wake_on_data,
        ),
        // A regression hangs (the calls are untimed): the timeout names it.
        TargetTest::new(
            "untimed_select_and_poll_beyond_the_table_wake_on_data",
            untimed_select_and_poll_beyond_the_table_wake_on_data,
        )
        .timeout_secs(20),
        TargetTest::new(
            "blocking_limits_give_typed_errors",
            blocking_limits_give_typed_errors,
        ),
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
    // A full descriptor table refuses the next socket with a typed error and stays usable.
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let mut small = Sockets::new(mock.host(CLIENT_HOST), 2).unwrap();
    let first = small.socket(SocketKind::Stream).unwrap();
    small.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        small.socket(SocketKind::Stream),
        Err(NetError::TooManyDescriptors)
    );
    small.close(first).unwrap();
    small.socket(SocketKind::Stream).unwrap();
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

/// A table of 4 descriptors with twice as many waits.
const SMALL: NetConfig = NetConfig {
    descriptors: 4,
    max_parked: 4,
    max_waits: 8,
};

/// A blocking client `Net` over the mock network with `count` connections to a server table.
struct Blocking {
    net: Net<MockDriver>,
    server: Sockets<MockDriver>,
    /// (blocking client socket, server descriptor) per connection.
    pairs: Vec<(Socket<MockDriver>, Fd)>,
}

fn blocking(config: NetConfig, count: usize) -> Blocking {
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), config).unwrap();
    let mut server = Sockets::new(mock.host(*SERVER.ip()), count + 1).unwrap();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, count).unwrap();
    let pairs = (0..count)
        .map(|_| {
            let socket = net.socket().unwrap();
            let fd = socket.fd().unwrap();
            assert_eq!(
                net.with_sockets(|s| s.connect(fd, SERVER)),
                Err(NetError::InProgress)
            );
            (socket, server.accept(listener).unwrap().0)
        })
        .collect();
    Blocking { net, server, pairs }
}

/// The descriptors of the client ends of `pairs`.
fn client_fds(pairs: &[(Socket<MockDriver>, Fd)]) -> Vec<Fd> {
    pairs
        .iter()
        .map(|(socket, _)| socket.fd().unwrap())
        .collect()
}

/// A tasklet builder with room for a select's descriptor sets in any profile.
fn roomy() -> tasklet::Builder {
    tasklet::Builder::new().stack_size(64 << 10)
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

/// A blocking select for reading on every descriptor of `fds`: its count and ready set.
fn select_all(
    net: &Net<MockDriver>,
    fds: &[Fd],
    timeout: Option<Duration>,
) -> (Result<usize, NetError>, FdSet) {
    let mut read = FdSet::new();
    fds.iter().for_each(|&fd| read.insert(fd));
    let count = net.select(Some(&mut read), None, None, timeout);
    (count, read)
}

/// Waits outnumbering the descriptor table: two tasklets each select on all 4 sockets of a
/// 4-descriptor table (8 waits) with a 3 s timeout; data on one wakes both at once (a poller that
/// asked the table for one entry per wait would be refused, and both would return `Ok(0)` after
/// 3 s).
fn selects_whose_waits_outnumber_the_descriptors_wake_on_data() {
    let Blocking {
        net,
        mut server,
        pairs,
    } = blocking(SMALL, 4);
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
        server.send(server_fd, b"data")
    })
    .unwrap();

    tasklet::run().unwrap();

    let elapsed_ns = Deadline::now().as_ns() - started;
    assert_eq!(peer.result().unwrap().unwrap(), Ok(4));
    for selector in selectors {
        let (count, ready) = selector.result().unwrap().unwrap();
        assert_eq!(count, Ok(1), "the data wakes each select");
        assert!(ready.contains(fds[2]) && ready.len() == 1);
    }
    assert!(
        elapsed_ns < 2_000_000_000,
        "woken by the data, not the 3 s timeout ({elapsed_ns} ns)"
    );
    assert_eq!(net.parked(), 0);
}

/// The same table with an untimed select and an untimed poll on all 4 sockets: data wakes both.
fn untimed_select_and_poll_beyond_the_table_wake_on_data() {
    let Blocking {
        net,
        mut server,
        pairs,
    } = blocking(SMALL, 4);
    let fds = client_fds(&pairs);
    let (select_net, select_fds) = (net.clone(), fds.clone());
    let selector = roomy()
        .spawn(move || select_all(&select_net, &select_fds, None))
        .unwrap();
    let (poll_net, poll_fds) = (net.clone(), fds.clone());
    let poller = roomy()
        .spawn(move || {
            let mut entries: Vec<PollFd> = poll_fds
                .iter()
                .map(|&fd| PollFd::new(fd, PollFlags::IN))
                .collect();
            (poll_net.poll(&mut entries, None), entries)
        })
        .unwrap();
    let peer_net = net.clone();
    let server_fd = pairs[3].1;
    let peer = tasklet::spawn(move || {
        until_parked(&peer_net, 2);
        server.send(server_fd, b"data")
    })
    .unwrap();

    tasklet::run().unwrap();

    assert_eq!(peer.result().unwrap().unwrap(), Ok(4));
    let (count, ready) = selector.result().unwrap().unwrap();
    assert_eq!(count, Ok(1));
    assert!(ready.contains(fds[3]) && ready.len() == 1);
    let (count, entries) = poller.result().unwrap().unwrap();
    assert_eq!(count, Ok(1));
    let revents: Vec<PollFlags> = entries.iter().map(|entry| entry.revents).collect();
    assert_eq!(
        revents,
        [
            PollFlags::NONE,
            PollFlags::NONE,
            PollFlags::NONE,
            PollFlags::IN
        ]
    );
    assert_eq!(net.parked(), 0);
}

/// Each limit of the blocking layer, reached on target: a call that would park beyond
/// `max_parked` calls or `max_waits` waits, or that cannot start the poller (the stack budget
/// has no room for its stack), fails at once with `NoBuffers` and parks nothing; the calls
/// within the limits are woken as usual.
fn blocking_limits_give_typed_errors() {
    // max_parked: two calls park, the third is refused.
    let config = NetConfig {
        descriptors: 4,
        max_parked: 2,
        max_waits: 8,
    };
    let Blocking {
        net,
        mut server,
        pairs,
    } = blocking(config, 3);
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
        for (_, server_fd) in late.iter().take(2) {
            assert_eq!(server.send(*server_fd, b"data"), Ok(4));
        }
        (refused, parked)
    })
    .unwrap();
    tasklet::run().unwrap();
    assert_eq!(
        third.result().unwrap().unwrap(),
        (Err(NetError::NoBuffers), 2)
    );
    for reader in readers {
        assert_eq!(reader.result().unwrap().unwrap(), Ok(4));
    }
    assert_eq!(net.parked(), 0);

    // max_waits: a select on 4 descriptors needs more than the 3 waits; one on 2 parks, and
    // then one on 2 more is refused (1 wait left).
    let config = NetConfig {
        descriptors: 4,
        max_parked: 4,
        max_waits: 3,
    };
    let Blocking {
        net,
        mut server,
        pairs,
    } = blocking(config, 4);
    let fds = client_fds(&pairs);
    let (all_net, all_fds) = (net.clone(), fds.clone());
    let too_many = roomy()
        .spawn(move || select_all(&all_net, &all_fds, Some(Duration::from_secs(10))).0)
        .unwrap();
    let (two_net, two_fds) = (net.clone(), fds.clone());
    let two = roomy()
        .spawn(move || select_all(&two_net, &two_fds[..2], Some(Duration::from_secs(10))).0)
        .unwrap();
    let (rest_net, rest_fds) = (net.clone(), fds.clone());
    let server_fd = pairs[0].1;
    let rest = roomy()
        .spawn(move || {
            until_parked(&rest_net, 1);
            let refused = select_all(&rest_net, &rest_fds[2..], Some(Duration::from_secs(10))).0;
            let parked = rest_net.parked();
            assert_eq!(server.send(server_fd, b"data"), Ok(4));
            (refused, parked)
        })
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(
        too_many.result().unwrap().unwrap(),
        Err(NetError::NoBuffers)
    );
    assert_eq!(two.result().unwrap().unwrap(), Ok(1));
    assert_eq!(
        rest.result().unwrap().unwrap(),
        (Err(NetError::NoBuffers), 1)
    );
    assert_eq!(net.parked(), 0);
    drop(pairs);

    // The stack budget: no room for the poller's stack, so a call that must park fails.
    let Blocking { net, pairs, .. } = blocking(NetConfig::default(), 1);
    let caller = tasklet::spawn(move || {
        let refused = pairs[0].0.recv(&mut [0u8; 8]);
        (refused, pairs)
    })
    .unwrap();
    let (budget, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use);
    let ran = tasklet::run();
    tasklet::set_stack_budget(budget);
    ran.unwrap();
    let (refused, _pairs) = caller.result().unwrap().unwrap();
    assert_eq!(refused, Err(NetError::NoBuffers));
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
