//! Net tests on the target: the quirk repair, the seed scenario on tasklets (the select quirk's
//! setting in the seed: a connection reset while one tasklet waits in recv on it and another in
//! select over it), parked waits outnumbering the descriptor table, the limits of the blocking
//! layer's tables as typed errors, the echo demo, and select/poll and echo costs in PMC5
//! instructions.

use crate::{BenchSuite, Suite, TargetBench, TargetTest};
use alloc::vec::Vec;
use core::hint::black_box;
use core::net::SocketAddrV4;
use core::time::Duration;
use spin::Mutex;
use spindle::net::{Fd, FdSet, Net, NetConfig, NetError, PollFd, PollFlags, SocketKind, Sockets};
use spindle::tasklet;
use spindle_demo::echo::{run_echo_demo, DEMO_RESET_CLIENT};
use spindle_drivers::mock_net::scenarios::{self, CLIENT_HOST, SERVER};
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
    scenarios::seed_scenario(4);
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

/// Waits outnumbering the descriptor table: two tasklets each select on all 4 sockets of a
/// 4-descriptor table (8 waits) with a 3 s timeout; data on one wakes both at once (a poller that
/// asked the table for one entry per wait would be refused, and both would return `Ok(0)` after
/// 3 s).
fn selects_whose_waits_outnumber_the_descriptors_wake_on_data() {
    scenarios::selects_whose_waits_outnumber_the_descriptors_wake_on_data();
}

/// The same table with an untimed select and an untimed poll on all 4 sockets: data wakes both.
fn untimed_select_and_poll_beyond_the_table_wake_on_data() {
    scenarios::untimed_select_and_poll_wake_on_data(MockConfig::default(), SMALL, 4);
}

/// Each limit of the blocking layer, reached on target: a call that would park beyond
/// `max_parked` calls or `max_waits` waits, or that cannot start the poller (the stack budget
/// has no room for its stack), fails at once with `NoBuffers` and parks nothing; the calls
/// within the limits are woken as usual.
fn blocking_limits_give_typed_errors() {
    scenarios::a_call_beyond_max_parked_fails_with_no_buffers();
    scenarios::a_call_beyond_max_waits_fails_with_no_buffers();
    scenarios::a_call_that_cannot_start_the_poller_fails_with_no_buffers();
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
