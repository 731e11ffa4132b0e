//! Real-network tests on the target: the pseries NIC and the TCP/IP stack against host programs.
//!
//! Every test here has a host side in the runner (`qemu/runner/src/nic.rs`), which gives the
//! machine its NIC on QEMU's user network and forwards a port of 127.0.0.1 to the guest's port
//! 7. The two sides meet on the console: the guest prints `nic: ...` when the host may go on,
//! and is told host ports with a `nic-port ...` line.

use crate::protocol::{read_line, INPUT};
use crate::{Suite, TargetTest};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use spindle::kprintln;
use spindle::net::{FdSet, Net, NetConfig, NetError, Socket};
use spindle::tasklet;
use spindle::time::Deadline;
use spindle_drivers::hvterm::HvTerm;
use spindle_drivers::llan::{Hypervisor, Llan, LlanConfig};
use spindle_drivers::mock_net::scenarios::{echo_until_end, roomy};
use spindle_drivers::tcpip::{TcpIp, TcpIpConfig};

/// The net suite over the real NIC.
pub const SUITE: Suite = Suite::new(
    "nic",
    &[
        TargetTest::new("echo_for_8_host_clients", echo_for_8_host_clients).timeout_secs(120),
        TargetTest::new(
            "reset_mid_transfer_seen_by_select",
            reset_mid_transfer_seen_by_select,
        )
        .timeout_secs(90),
        TargetTest::new(
            "guest_is_a_client_of_a_host_server",
            guest_is_a_client_of_a_host_server,
        )
        .timeout_secs(90),
        TargetTest::new(
            "refused_connect_and_full_tables",
            refused_connect_and_full_tables,
        )
        .timeout_secs(90),
        TargetTest::new(
            "a_flood_is_dropped_counted_and_recovered",
            a_flood_is_dropped_counted_and_recovered,
        )
        .timeout_secs(120),
    ],
);

/// The stack on pseries.
pub type Stack = TcpIp<Llan<Hypervisor>>;

/// The guest port the runner forwards to.
const PORT: u16 = 7;
/// QEMU's user network: the host's loopback as the guest sees it.
const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// Bytes each echo client sends (the host side's `ECHO_BYTES_PER_CLIENT`).
const ECHO_BYTES_PER_CLIENT: usize = 24 << 10;
/// Bytes the resetting client sends first (the host side's `BYTES_BEFORE_RESET`).
const BYTES_BEFORE_RESET: usize = 3000;
/// Fewest of the host's 2000 flood datagrams that must reach the guest: a ringful. (The rest
/// are dropped on the way, in the host's socket buffer or QEMU's queue, or by the adapter, which
/// counts them.)
const FLOOD_MIN_FRAMES: usize = LlanConfig::DEFAULT_RX_BUFFERS;
/// Bytes echoed after the flood (the host side's `FLOOD_ECHO_BYTES`).
const FLOOD_ECHO_BYTES: usize = 64 << 10;

/// Opens the NIC and the stack: `tcp_sockets` connections, the rest as QEMU's user network wants.
pub fn open_stack(tcp_sockets: usize, descriptors: usize) -> Net<Stack> {
    let Some(node) = spindle_pseries::board().machine.llan else {
        panic!("no NIC in the device tree: run with the runner's --net");
    };
    let board = spindle_pseries::board();
    let server = board.server(0).expect("CPU 0's interrupt server");
    let llan = match Llan::open_pseries(node, LlanConfig::default(), &board.rtas, server) {
        Ok(llan) => llan,
        Err(err) => panic!("{err}"),
    };
    let config = TcpIpConfig {
        tcp_sockets,
        sockets: descriptors,
        ..TcpIpConfig::qemu_user(node.mac)
    };
    let stack = TcpIp::new(llan, config).expect("the stack's memory");
    let net_config = NetConfig {
        descriptors,
        ..NetConfig::default()
    };
    Net::new(stack, net_config).expect("the socket layer's memory")
}

fn listen(net: &Net<Stack>, backlog: usize) -> Socket<Stack> {
    let listener = net.socket().expect("a socket");
    listener
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
        .expect("bind");
    listener.listen(backlog).expect("listen");
    listener
}

fn echo_for_8_host_clients() {
    let net = open_stack(16, 24);
    let listener = listen(&net, 8);
    kprintln!("nic: listening");
    let server = roomy().spawn(move || -> Result<Vec<usize>, NetError> {
        let mut echoes = Vec::new();
        for _ in 0..8 {
            let (connection, peer) = listener.accept()?;
            assert_eq!(*peer.ip(), HOST, "QEMU's user network connects from 10.0.2.2");
            echoes.push(roomy().spawn(move || echo_until_end(&connection)).expect("an echo tasklet"));
        }
        let mut echoed = Vec::new();
        for handle in echoes {
            echoed.push(handle.join().expect("an echo tasklet ended")?);
        }
        Ok(echoed)
    })
    .expect("the server tasklet");
    tasklet::run().expect("the scheduler");
    let echoed = server.result().expect("finished").expect("not killed");
    let echoed = echoed.expect("accepting 8 clients");
    assert_eq!(echoed, [ECHO_BYTES_PER_CLIENT; 8].to_vec());
    kprintln!("nic: served 8 clients");
}

fn reset_mid_transfer_seen_by_select() {
    let net = open_stack(8, 16);
    // The driver's raw select/poll fail with a pending error, as the console's did: the reset
    // reaches the selecting tasklet through the socket layer's repair.
    net.with_sockets(|sockets| sockets.driver_mut().set_quirk(true));
    let listener = listen(&net, 4);
    kprintln!("nic: listening");
    let accepting = roomy().spawn(move || -> Result<Vec<Socket<Stack>>, NetError> {
        let mut connections = Vec::new();
        for _ in 0..3 {
            connections.push(listener.accept()?.0);
        }
        Ok(connections)
    })
    .expect("tasklet");
    tasklet::run().expect("the scheduler");
    let connections = accepting
        .result()
        .expect("done")
        .expect("not killed")
        .expect("accepting 3 connections");
    kprintln!("nic: accepted 3");
    // One tasklet sits in select over all three until one of them has data or an error.
    let selector = {
        let net = net.clone();
        let fds: Vec<_> = connections.iter().map(|c| c.fd().expect("open")).collect();
        roomy().spawn(move || -> Result<(usize, Vec<u8>, NetError), NetError> {
            let mut data = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                let mut read = FdSet::new();
                for fd in &fds {
                    read.insert(*fd);
                }
                let ready = net.select(Some(&mut read), None, None, Some(Duration::from_secs(30)))?;
                assert!(ready > 0, "select timed out");
                let readable: Vec<usize> = (0..fds.len()).filter(|i| read.contains(fds[*i])).collect();
                assert_eq!(readable.len(), 1, "only the resetting connection is readable");
                let fd = fds[readable[0]];
                loop {
                    match net.with_sockets(|sockets| sockets.recv(fd, &mut buf)) {
                        Ok(0) => panic!("end of stream instead of a reset"),
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                        Err(NetError::WouldBlock) => break,
                        Err(error) => return Ok((readable[0], data, error)),
                    }
                }
            }
        })
        .expect("the selecting tasklet")
    };
    tasklet::run().expect("the scheduler");
    let (which, data, error) = selector.result().expect("done").expect("not killed").expect("select");
    assert_eq!(error, NetError::ConnectionReset);
    assert_eq!(data.len(), BYTES_BEFORE_RESET, "every byte before the reset arrived");
    assert_eq!(data, host_pattern(0, BYTES_BEFORE_RESET));
    let quirk_errors = net.with_sockets(|sockets| sockets.driver().stats().quirk_errors);
    assert!(quirk_errors >= 1, "the raw select/poll never failed: the repair did not run");
    kprintln!("nic: reset seen");
    // The others are untouched: each echoes what the host sends now, then sees its end.
    let others: Vec<_> = connections
        .into_iter()
        .enumerate()
        .filter(|(index, _)| *index != which)
        .map(|(_, connection)| roomy().spawn(move || echo_until_end(&connection)).expect("tasklet"))
        .collect();
    tasklet::run().expect("the scheduler");
    for other in others {
        assert_eq!(other.result().expect("done").expect("not killed"), Ok(500));
    }
    kprintln!("nic: others untouched");
}

/// The host side's `pattern`.
fn host_pattern(client: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(client as u32 * 101) as u8 ^ (i >> 8) as u8)
        .collect()
}

/// Reads the `nic-port ...` line the host types, skipping the runner's input line.
fn host_ports() -> Vec<u16> {
    kprintln!("nic: waiting for a port");
    let mut console = HvTerm::console();
    let mut line = [0u8; 128];
    loop {
        let len = read_line(&mut console, &mut line).expect("a console line");
        let text = core::str::from_utf8(&line[..len]).expect("text");
        if text.starts_with(INPUT) {
            continue;
        }
        let ports = text.strip_prefix("nic-port ").expect("a nic-port line");
        return ports
            .split(' ')
            .map(|port| port.parse().expect("a port number"))
            .collect();
    }
}

fn guest_is_a_client_of_a_host_server() {
    let ports = host_ports();
    let net = open_stack(4, 8);
    let client = roomy().spawn(move || -> Result<Vec<u8>, NetError> {
        let mut socket = net.socket()?;
        socket.set_timeout(Some(Duration::from_secs(30)));
        socket.connect(SocketAddrV4::new(HOST, ports[0]))?;
        // Through the embedded-io traits, as a portable client would.
        embedded_io::Write::write_all(&mut socket, b"spindle says hello over spapr-vlan\n")?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = embedded_io::Read::read(&mut socket, &mut buf)?;
            if n == 0 {
                return Ok(reply);
            }
            reply.extend_from_slice(&buf[..n]);
        }
    })
    .expect("tasklet");
    tasklet::run().expect("the scheduler");
    let reply = client.result().expect("done").expect("not killed").expect("the exchange");
    assert_eq!(reply, b"NALV-RPAPS REVO OLLEH SYAS ELDNIPS".to_vec());
    kprintln!("nic: reply checked");
}

fn refused_connect_and_full_tables() {
    let ports = host_ports();
    let (closed, open) = (ports[0], ports[1]);
    // Four TCP sockets and six descriptors.
    let net = open_stack(4, 6);
    let task = roomy().spawn(move || {
        let mut refused = net.socket().expect("socket");
        refused.set_timeout(Some(Duration::from_secs(30)));
        assert_eq!(
            refused.connect(SocketAddrV4::new(HOST, closed)),
            Err(NetError::ConnectionRefused),
            "a connect to a closed host port"
        );
        drop(refused);
        // A listener with backlog 2 holds two TCP sockets; two connections take the rest.
        let _listener = listen(&net, 2);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut socket = net.socket().expect("socket");
            socket.set_timeout(Some(Duration::from_secs(30)));
            socket
                .connect(SocketAddrV4::new(HOST, open))
                .expect("a connect to the open host port");
            held.push(socket);
        }
        let spare = net.socket().expect("socket");
        assert_eq!(
            spare.connect(SocketAddrV4::new(HOST, open)),
            Err(NetError::NoBuffers),
            "the connection table is full"
        );
        // Listener, two connections and the spare: two descriptors are left.
        let _more = [net.socket().expect("socket"), net.socket().expect("socket")];
        assert_eq!(
            net.socket().err(),
            Some(NetError::TooManyDescriptors),
            "the descriptor table is full"
        );
        assert!(net.with_sockets(|sockets| sockets.driver().stats().pool_exhausted) >= 1);
    })
    .expect("tasklet");
    tasklet::run().expect("the scheduler");
    task.result().expect("done").expect("not killed");
    kprintln!("nic: limits checked");
}

fn a_flood_is_dropped_counted_and_recovered() {
    let net = open_stack(8, 16);
    let listener = listen(&net, 2);
    let stats = |net: &Net<Stack>| {
        net.with_sockets(|sockets| {
            sockets.driver_mut().poll_link();
            sockets.driver().device().stats()
        })
    };
    let heap = || spindle_pseries::heap_stats().expect("heap stats").used;
    let before = stats(&net);
    let heap_before = heap();
    kprintln!("nic: flood me");
    // Nothing takes frames for two seconds while the host sends datagrams as fast as it can:
    // the receive buffers fill, and the rest waits in QEMU or is dropped.
    let quiet = Deadline::after(Duration::from_secs(2));
    while !quiet.has_passed() {
        core::hint::spin_loop();
    }
    // Take the flood until the link has been quiet for 200 ms.
    let mut after = stats(&net);
    let mut calm = Deadline::after(Duration::from_millis(200));
    let give_up = Deadline::after(Duration::from_secs(30));
    while !calm.has_passed() && !give_up.has_passed() {
        let now = stats(&net);
        if now.rx_frames != after.rx_frames {
            calm = Deadline::after(Duration::from_millis(200));
        }
        after = now;
    }
    let frames = after.rx_frames - before.rx_frames;
    assert!(
        frames >= FLOOD_MIN_FRAMES as u64,
        "only {frames} frames of the flood arrived: the receive ring never filled"
    );
    assert_eq!(after.rx_malformed, 0);
    assert_eq!(heap(), heap_before, "the flood allocated memory");
    kprintln!(
        "nic: took {frames} flood frames ({} dropped by the adapter for want of a buffer); heap unchanged",
        after.rx_no_buffer - before.rx_no_buffer
    );
    // The stack still serves: an echo the host checks byte for byte.
    kprintln!("nic: listening");
    let server = roomy().spawn(move || -> Result<usize, NetError> {
        let (connection, _) = listener.accept()?;
        echo_until_end(&connection)
    })
    .expect("tasklet");
    tasklet::run().expect("the scheduler");
    assert_eq!(
        server.result().expect("done").expect("not killed"),
        Ok(FLOOD_ECHO_BYTES)
    );
    kprintln!("nic: flood echoed");
}
