//! The mock network's behaviour and each fault it injects, seen through the socket layer.

mod common;

use core::time::Duration;

use common::{drain, TwoHosts, SERVER};
use spindle::net::{
    FdSet, NetDriver, NetError, PollFd, PollFlags, RawFdSet, RawPollFd, Shutdown, SocketKind,
    Sockets,
};
use spindle_drivers::mock_net::{Fault, FaultScript, MockConfig, MockNet, Side, Trigger};

fn hosts() -> TwoHosts {
    TwoHosts::new(MockConfig::default(), 4)
}

#[test]
fn bytes_cross_a_connection_in_order_both_ways() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    assert_eq!(hosts.client.send(client, b"hello "), Ok(6));
    assert_eq!(hosts.client.send(client, b"world"), Ok(5));
    let (got, stop) = drain(&mut hosts.server, server);
    assert_eq!(got, b"hello world");
    assert_eq!(stop, Err(NetError::WouldBlock));
    assert_eq!(hosts.server.send(server, b"back"), Ok(4));
    assert_eq!(drain(&mut hosts.client, client).0, b"back");
}

#[test]
fn the_raw_driver_has_the_console_quirk_and_the_layer_hides_it() {
    let mut hosts = hosts();
    let (client, _server) = hosts.pair().unwrap();
    let (other, _) = hosts.pair().unwrap();
    hosts.net.inject(Fault::Reset { conn: 0 });

    let raw = hosts.client.raw_socket(client).unwrap();
    let mut raw_read = RawFdSet::new();
    raw_read.insert(raw).unwrap();
    let mut driver = hosts.net.host(common::CLIENT_HOST);
    assert_eq!(
        driver.select(Some(&mut raw_read), None, None, Some(Duration::ZERO)),
        Err(NetError::ConnectionReset),
        "the console's select fails with the socket's error"
    );
    let mut raw_poll = [RawPollFd {
        socket: raw,
        events: PollFlags::IN,
        revents: PollFlags::NONE,
    }];
    assert_eq!(
        driver.poll(&mut raw_poll, Some(Duration::ZERO)),
        Err(NetError::ConnectionReset),
        "and its poll returns -1"
    );

    let mut read = FdSet::new();
    read.insert(client);
    read.insert(other);
    assert_eq!(
        hosts
            .client
            .select(Some(&mut read), None, None, Some(Duration::ZERO)),
        Ok(1)
    );
    assert!(read.contains(client) && !read.contains(other));
    let mut entries = [
        PollFd::new(client, PollFlags::IN | PollFlags::OUT),
        PollFd::new(other, PollFlags::IN),
    ];
    assert_eq!(hosts.client.poll(&mut entries, Some(Duration::ZERO)), Ok(1));
    assert_eq!(
        entries[0].revents,
        PollFlags::IN | PollFlags::OUT | PollFlags::ERR | PollFlags::HUP
    );
    assert_eq!(entries[1].revents, PollFlags::NONE);
    assert!(hosts.net.stats().quirk_errors >= 4);
    assert_eq!(
        hosts.client.take_error(client),
        Ok(Some(NetError::ConnectionReset))
    );
    assert_eq!(hosts.client.take_error(client), Ok(None));
}

#[test]
fn without_the_quirk_the_raw_calls_report_the_errored_socket_ready() {
    let config = MockConfig {
        quirk: false,
        ..MockConfig::default()
    };
    let mut hosts = TwoHosts::new(config, 4);
    let (client, _server) = hosts.pair().unwrap();
    hosts.net.inject(Fault::Reset { conn: 0 });
    let raw = hosts.client.raw_socket(client).unwrap();
    let mut raw_poll = [RawPollFd {
        socket: raw,
        events: PollFlags::IN | PollFlags::OUT,
        revents: PollFlags::NONE,
    }];
    let mut driver = hosts.net.host(common::CLIENT_HOST);
    assert_eq!(driver.poll(&mut raw_poll, Some(Duration::ZERO)), Ok(1));
    assert_eq!(
        raw_poll[0].revents,
        PollFlags::IN | PollFlags::OUT | PollFlags::ERR | PollFlags::HUP,
        "the Linux result the layer rebuilds"
    );
    assert_eq!(hosts.net.stats().quirk_errors, 0);
}

#[test]
fn reset_before_during_and_after_data() {
    // (bytes sent before the reset, bytes the receiver reads before its error)
    for sent in [0usize, 100, 5000] {
        let config = MockConfig {
            recv_buffer: 1024,
            send_buffer: 8192,
            ..MockConfig::default()
        };
        let mut hosts = TwoHosts::new(config, 4);
        let (client, server) = hosts.pair().unwrap();
        let data: Vec<u8> = (0..sent).map(|i| i as u8).collect();
        let mut accepted = 0;
        while accepted < data.len() {
            match hosts.client.send(client, &data[accepted..]) {
                Ok(count) => accepted += count,
                Err(NetError::WouldBlock) => break,
                Err(error) => panic!("{error}"),
            }
        }
        hosts.net.inject(Fault::Reset { conn: 0 });
        let (got, stop) = drain(&mut hosts.server, server);
        let delivered = accepted.min(1024);
        assert_eq!(
            got,
            &data[..delivered],
            "data that arrived before the reset comes first"
        );
        assert_eq!(stop, Err(NetError::ConnectionReset));
        assert_eq!(
            drain(&mut hosts.server, server),
            (vec![], Ok(0)),
            "then end of stream"
        );
        // The sender learns of the bytes it lost.
        assert_eq!(
            hosts.client.send(client, b"x"),
            Err(NetError::ConnectionReset)
        );
        assert_eq!(hosts.client.send(client, b"x"), Err(NetError::BrokenPipe));
        assert_eq!(
            hosts.net.stats().bytes_dropped,
            (accepted - delivered) as u64
        );
        hosts.close_all();
        assert_eq!(hosts.net.sockets_in_use(), 0);
    }
}

#[test]
fn reset_during_data_by_byte_count() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    let script = FaultScript::new()
        .with(
            Trigger::AfterBytes { conn: 0, bytes: 10 },
            Fault::Reset { conn: 0 },
        )
        .unwrap();
    hosts.net.load_script(&script).unwrap();
    assert_eq!(hosts.client.send(client, &[7u8; 12]), Ok(12));
    assert_eq!(
        hosts.net.pending_faults(),
        0,
        "the reset fired once 10 bytes crossed"
    );
    let (got, stop) = drain(&mut hosts.server, server);
    assert_eq!(got, [7u8; 12], "bytes delivered before the reset are kept");
    assert_eq!(stop, Err(NetError::ConnectionReset));
    assert_eq!(
        hosts.client.recv(client, &mut [0; 4]),
        Err(NetError::ConnectionReset)
    );
}

#[test]
fn reset_while_a_select_is_waiting_wakes_it_with_the_socket_ready() {
    let mut hosts = hosts();
    let (client, _server) = hosts.pair().unwrap();
    let (quiet, _) = hosts.pair().unwrap();
    let script = FaultScript::new()
        .with(Trigger::WhileWaiting, Fault::Reset { conn: 0 })
        .unwrap();
    hosts.net.load_script(&script).unwrap();
    let mut read = FdSet::new();
    read.insert(client);
    read.insert(quiet);
    let count = hosts
        .client
        .select(Some(&mut read), None, None, Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(count, 1);
    assert!(read.contains(client) && !read.contains(quiet));
    assert_eq!(hosts.net.stats().faults_fired, 1);
    assert!(hosts.net.stats().quirk_errors >= 1);
}

#[test]
fn a_wait_with_nothing_to_happen_times_out_or_is_interrupted() {
    let mut hosts = hosts();
    let (client, _server) = hosts.pair().unwrap();
    let mut read = FdSet::new();
    read.insert(client);
    assert_eq!(
        hosts
            .client
            .select(Some(&mut read), None, None, Some(Duration::from_millis(1))),
        Ok(0)
    );
    assert!(read.is_empty());
    let mut read = FdSet::new();
    read.insert(client);
    assert_eq!(
        hosts.client.select(Some(&mut read), None, None, None),
        Err(NetError::Interrupted),
        "an endless wait nobody can end is EINTR, never a hang"
    );
}

#[test]
fn reset_all_leaves_pending_errors_on_every_socket() {
    let mut hosts = hosts();
    let pairs: Vec<_> = (0..3).map(|_| hosts.pair().unwrap()).collect();
    hosts.net.inject(Fault::ResetAll);
    let mut entries: Vec<PollFd> = pairs
        .iter()
        .map(|&(client, _)| PollFd::new(client, PollFlags::IN))
        .collect();
    assert_eq!(hosts.client.poll(&mut entries, None), Ok(3));
    assert!(entries
        .iter()
        .all(|entry| entry.revents == PollFlags::IN | PollFlags::ERR | PollFlags::HUP));
    for &(client, server) in &pairs {
        assert_eq!(
            hosts.client.take_error(client),
            Ok(Some(NetError::ConnectionReset))
        );
        assert_eq!(
            hosts.server.take_error(server),
            Ok(Some(NetError::ConnectionReset))
        );
    }
    assert_eq!(hosts.net.stats().resets, 3);
}

#[test]
fn connection_refused_blocking_and_non_blocking() {
    let mut hosts = hosts();
    let nobody = core::net::SocketAddrV4::new(common::SERVER_HOST, 9);
    let fd = hosts.client.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        hosts.client.connect(fd, nobody),
        Err(NetError::ConnectionRefused)
    );

    let fd = hosts.client.socket(SocketKind::Stream).unwrap();
    hosts.client.set_nonblocking(fd, true).unwrap();
    assert_eq!(hosts.client.connect(fd, nobody), Err(NetError::InProgress));
    let mut write = FdSet::new();
    write.insert(fd);
    assert_eq!(
        hosts
            .client
            .select(None, Some(&mut write), None, Some(Duration::from_millis(1))),
        Ok(1),
        "a failed connect makes the socket writable"
    );
    assert_eq!(
        hosts.client.take_error(fd),
        Ok(Some(NetError::ConnectionRefused))
    );

    hosts.net.inject(Fault::RefuseConnects { count: 1 });
    assert_eq!(
        hosts.pair(),
        Err(NetError::ConnectionRefused),
        "even with a listener"
    );
    assert!(hosts.pair().is_ok(), "only once");
    assert_eq!(hosts.net.stats().refused, 3);
}

#[test]
fn injected_refusal_counts_saturate_instead_of_overflowing() {
    // u32::MAX + 2 pending refusals: an overflow panicked (debug) or wrapped to 1 (release),
    // after which the second connect was let through. Saturated, they all stay refused.
    let mut hosts = hosts();
    hosts.net.inject(Fault::RefuseConnects { count: u32::MAX });
    hosts.net.inject(Fault::RefuseConnects { count: 2 });
    hosts.net.inject(Fault::RefuseConnects { count: u32::MAX });
    for attempt in 0..3 {
        assert_eq!(
            hosts.pair(),
            Err(NetError::ConnectionRefused),
            "attempt {attempt}"
        );
    }
    assert_eq!(hosts.net.stats().refused, 3);
    assert_eq!(hosts.net.stats().connections, 0);
}

#[test]
fn non_blocking_connect_completes_on_the_next_step() {
    let mut hosts = hosts();
    let fd = hosts.client.socket(SocketKind::Stream).unwrap();
    hosts.client.set_nonblocking(fd, true).unwrap();
    assert_eq!(hosts.client.connect(fd, SERVER), Err(NetError::InProgress));
    assert_eq!(
        hosts.client.connect(fd, SERVER),
        Err(NetError::AlreadyConnected)
    );
    let (server, peer) = hosts.server.accept(hosts.listener).unwrap();
    assert_eq!(peer.ip(), &common::CLIENT_HOST);
    assert_eq!(hosts.client.send(fd, b"ok"), Ok(2));
    assert_eq!(drain(&mut hosts.server, server).0, b"ok");
}

#[test]
fn partial_writes_and_full_buffers() {
    let config = MockConfig {
        recv_buffer: 16,
        send_buffer: 16,
        ..MockConfig::default()
    };
    let mut hosts = TwoHosts::new(config, 4);
    let (client, server) = hosts.pair().unwrap();
    hosts.net.inject(Fault::PartialWrites { limit: Some(3) });
    assert_eq!(hosts.client.send(client, b"abcdef"), Ok(3));
    hosts.net.inject(Fault::PartialWrites { limit: None });
    hosts.net.inject(Fault::Stall {
        conn: 0,
        stalled: true,
    });
    assert_eq!(
        hosts.client.send(client, &[1; 40]),
        Ok(16),
        "the send buffer fills"
    );
    assert_eq!(
        hosts.client.send(client, &[1; 40]),
        Err(NetError::WouldBlock)
    );
    let mut write = FdSet::new();
    write.insert(client);
    assert_eq!(
        hosts
            .client
            .select(None, Some(&mut write), None, Some(Duration::ZERO)),
        Ok(0)
    );
    hosts.net.inject(Fault::Stall {
        conn: 0,
        stalled: false,
    });
    let (got, _) = drain(&mut hosts.server, server);
    assert_eq!(
        got.len(),
        3 + 16,
        "every accepted byte arrives once delivery resumes"
    );
    assert_eq!(&got[..3], b"abc");
    assert!(hosts.net.stats().partial_writes >= 2);
}

#[test]
fn the_listener_backlog_is_a_limit() {
    let mut hosts = TwoHosts::new(MockConfig::default(), 2);
    let mut clients = Vec::new();
    for _ in 0..2 {
        let fd = hosts.client.socket(SocketKind::Stream).unwrap();
        hosts.client.connect(fd, SERVER).unwrap();
        clients.push(fd);
    }
    let fd = hosts.client.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        hosts.client.connect(fd, SERVER),
        Err(NetError::ConnectionRefused)
    );
    hosts.server.accept(hosts.listener).unwrap();
    let fd2 = hosts.client.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        hosts.client.connect(fd2, SERVER),
        Ok(()),
        "accepting made room"
    );
    hosts.server.accept(hosts.listener).unwrap();
    hosts.server.accept(hosts.listener).unwrap();
    assert_eq!(
        hosts.server.accept(hosts.listener),
        Err(NetError::WouldBlock)
    );
}

#[test]
fn closed_peers_give_end_of_stream_then_broken_pipe() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    hosts.client.send(client, b"last words").unwrap();
    hosts.client.close(client).unwrap();
    let (got, stop) = drain(&mut hosts.server, server);
    assert_eq!(got, b"last words");
    assert_eq!(stop, Ok(0));
    assert_eq!(hosts.server.send(server, b"?"), Err(NetError::BrokenPipe));

    let (client, server) = hosts.pair().unwrap();
    hosts.net.inject(Fault::HalfClose {
        conn: 1,
        side: Side::Server,
    });
    assert_eq!(drain(&mut hosts.client, client), (vec![], Ok(0)));
    assert_eq!(hosts.server.send(server, b"?"), Err(NetError::BrokenPipe));
    assert_eq!(
        hosts.client.send(client, b"still open"),
        Ok(10),
        "half-closed, not closed"
    );
    assert_eq!(drain(&mut hosts.server, server).0, b"still open");
}

#[test]
fn closing_with_unread_data_resets_the_peer() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    hosts.client.send(client, b"unread").unwrap();
    hosts.server.close(server).unwrap();
    assert_eq!(
        hosts.client.recv(client, &mut [0; 8]),
        Err(NetError::ConnectionReset)
    );
    hosts.close_all();
    assert_eq!(hosts.net.sockets_in_use(), 0);
}

#[test]
fn shutdown_write_ends_the_stream_for_the_peer_only() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    hosts.client.send(client, b"req").unwrap();
    hosts.client.shutdown(client, Shutdown::Write).unwrap();
    assert_eq!(drain(&mut hosts.server, server), (b"req".to_vec(), Ok(0)));
    hosts.server.send(server, b"resp").unwrap();
    assert_eq!(drain(&mut hosts.client, client).0, b"resp");
    assert_eq!(
        hosts.client.send(client, b"more"),
        Err(NetError::BrokenPipe)
    );
}

#[test]
fn mock_misuse_gives_typed_errors() {
    assert_eq!(
        MockNet::new(MockConfig {
            max_sockets: 0,
            ..MockConfig::default()
        })
        .map(|_| ()),
        Err(NetError::InvalidInput)
    );
    assert_eq!(
        MockNet::new(MockConfig {
            max_sockets: spindle_drivers::mock_net::MAX_MOCK_SOCKETS + 1,
            ..MockConfig::default()
        })
        .map(|_| ()),
        Err(NetError::InvalidInput)
    );
    let mut hosts = hosts();
    let fd = hosts.client.socket(SocketKind::Stream).unwrap();
    assert_eq!(hosts.client.send(fd, b"x"), Err(NetError::NotConnected));
    assert_eq!(hosts.client.recv(fd, &mut [0]), Err(NetError::NotConnected));
    assert_eq!(
        hosts.client.listen(fd, 1),
        Err(NetError::InvalidInput),
        "listen before bind"
    );
    assert_eq!(
        hosts.client.socket(SocketKind::Datagram),
        Err(NetError::Unsupported)
    );
    let busy = hosts.server.socket(SocketKind::Stream).unwrap();
    assert_eq!(hosts.server.bind(busy, SERVER), Err(NetError::AddrInUse));
    assert_eq!(
        hosts.client.bind(fd, SERVER),
        Err(NetError::AddrNotAvailable),
        "another host's address"
    );
    // Another host's socket number is not ours.
    let server_raw = hosts.server.raw_socket(busy).unwrap();
    let mut client_driver = hosts.net.host(common::CLIENT_HOST);
    assert_eq!(
        client_driver.close(server_raw),
        Err(NetError::BadDescriptor)
    );
    let script = (0..=spindle_drivers::mock_net::MAX_SCRIPTED_FAULTS)
        .try_fold(FaultScript::new(), |script, _| {
            script.with(Trigger::AtOp(1), Fault::ResetAll)
        });
    assert_eq!(script, Err(NetError::InvalidInput), "scripts are bounded");
    assert_eq!(
        FaultScript::new().with(Trigger::AtOp(1), Fault::PartialWrites { limit: Some(0) }),
        Err(NetError::InvalidInput)
    );
}

#[test]
fn a_full_table_or_network_refuses_without_leaking() {
    let config = MockConfig {
        max_sockets: 3,
        ..MockConfig::default()
    };
    let net = MockNet::new(config).unwrap();
    let mut table = Sockets::new(net.host(common::SERVER_HOST), 8).unwrap();
    for _ in 0..3 {
        table.socket(SocketKind::Stream).unwrap();
    }
    assert_eq!(
        table.socket(SocketKind::Stream),
        Err(NetError::TooManyDescriptors)
    );
    assert_eq!(
        table.open_count(),
        3,
        "the failed socket took no descriptor"
    );
}

#[test]
fn seeded_scripts_are_reproducible() {
    let first = FaultScript::random(42, 16, 200, 4);
    assert_eq!(first, FaultScript::random(42, 16, 200, 4));
    assert_ne!(first, FaultScript::random(43, 16, 200, 4));
    assert_eq!(first.faults().len(), 16);
}

#[test]
fn closing_both_ends_of_a_stalled_connection_frees_them() {
    let mut hosts = hosts();
    let (client, server) = hosts.pair().unwrap();
    hosts.net.inject(Fault::Stall {
        conn: 0,
        stalled: true,
    });
    hosts.client.send(client, b"stuck").unwrap();
    hosts.client.close(client).unwrap();
    assert_eq!(
        hosts.net.sockets_in_use(),
        3,
        "the client end lingers to deliver"
    );
    hosts.server.close(server).unwrap();
    assert_eq!(hosts.net.sockets_in_use(), 1, "only the listener is left");
}
