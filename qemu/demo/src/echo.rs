//! The echo demo: a server and several clients over the mock network, one reset mid-transfer.
//!
//! Everything runs as one event loop over non-blocking sockets: the server polls its listener
//! and connections, the clients select over theirs, both through [`Sockets`], so the quirky raw
//! select/poll of the mock are repaired on every step that meets the reset.

use core::fmt::Write;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use alloc::vec::Vec;
use spindle::net::{Fd, FdSet, NetError, PollFd, PollFlags, Shutdown, SocketKind, Sockets};
use spindle_drivers::mock_net::{Fault, FaultScript, MockConfig, MockDriver, MockNet, Trigger};

/// Clients in the demo.
pub const DEMO_CLIENTS: usize = 4;
/// Bytes each client sends (and expects back).
pub const DEMO_BYTES_PER_CLIENT: usize = 4096;
/// The client whose connection is reset.
pub const DEMO_RESET_CLIENT: usize = 2;
/// Bytes the reset connection carries (both directions) before the reset.
pub const DEMO_RESET_AFTER_BYTES: u64 = 1500;
/// Steps after which the demo gives up (it needs far fewer; this bounds a broken run).
const MAX_STEPS: usize = 100_000;

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);
const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// What one client saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOutcome {
    /// Bytes its sends accepted.
    pub sent: usize,
    /// Bytes echoed back to it.
    pub echoed: usize,
    /// Whether the echoed bytes equal the start of what it sent.
    pub echo_intact: bool,
    /// How its connection ended: `Ok` at a clean end of stream, or the error it was told.
    pub ended: Result<(), NetError>,
}

/// What the whole demo saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// Each client, in connect order.
    pub clients: [ClientOutcome; DEMO_CLIENTS],
    /// Connections the server accepted.
    pub server_accepted: usize,
    /// Bytes the server echoed.
    pub server_echoed: usize,
    /// Server connections that ended with an error.
    pub server_failures: usize,
    /// Raw select/poll failures (the quirk) the socket layer turned into results.
    pub quirk_repairs: u32,
    /// Mock sockets still in use after everything was closed (0: nothing leaked).
    pub sockets_left: usize,
}

/// The byte a client sends at `offset`.
fn pattern(client: usize, offset: usize) -> u8 {
    (offset as u8)
        .wrapping_mul(7)
        .wrapping_add(client as u8 * 31)
}

struct Client {
    fd: Fd,
    sent: usize,
    echoed: usize,
    intact: bool,
    shut: bool,
    ended: Option<Result<(), NetError>>,
}

struct ServerConn {
    fd: Fd,
    pending: [u8; 512],
    pending_len: usize,
    peer_done: bool,
}

/// Runs the echo demo and prints what each side saw to `out`; the demo image calls it with
/// the platform console. Fails only if the mock network cannot be set up.
pub fn run_echo_demo(out: &mut dyn Write) -> Result<DemoReport, NetError> {
    let config = MockConfig {
        max_sockets: 16,
        recv_buffer: 1024,
        send_buffer: 1024,
        ..MockConfig::default()
    };
    let net = MockNet::new(config)?;
    net.load_script(&FaultScript::new().with(
        Trigger::AfterBytes {
            conn: DEMO_RESET_CLIENT as u32,
            bytes: DEMO_RESET_AFTER_BYTES,
        },
        Fault::Reset {
            conn: DEMO_RESET_CLIENT as u32,
        },
    )?)?;
    let _ = writeln!(
        out,
        "echo demo: {DEMO_CLIENTS} clients x {DEMO_BYTES_PER_CLIENT} bytes to {SERVER} over the \
         mock network (quirky select/poll); client {DEMO_RESET_CLIENT} is reset after \
         {DEMO_RESET_AFTER_BYTES} bytes"
    );

    let mut server = Sockets::new(net.host(*SERVER.ip()), 8)?;
    let listener = server.socket(SocketKind::Stream)?;
    server.bind(listener, SERVER)?;
    server.listen(listener, DEMO_CLIENTS)?;
    server.set_nonblocking(listener, true)?;

    let mut client_table = Sockets::new(net.host(CLIENT_HOST), DEMO_CLIENTS)?;
    let mut clients = Vec::new();
    for _ in 0..DEMO_CLIENTS {
        let fd = client_table.socket(SocketKind::Stream)?;
        client_table.set_nonblocking(fd, true)?;
        match client_table.connect(fd, SERVER) {
            Ok(()) | Err(NetError::InProgress) => {}
            Err(error) => return Err(error),
        }
        clients.push(Client {
            fd,
            sent: 0,
            echoed: 0,
            intact: true,
            shut: false,
            ended: None,
        });
    }

    let mut conns: Vec<ServerConn> = Vec::new();
    let (mut accepted, mut echoed, mut failures) = (0, 0, 0);
    for _ in 0..MAX_STEPS {
        if clients.iter().all(|client| client.ended.is_some()) && conns.is_empty() {
            break;
        }
        serve_step(
            &mut server,
            listener,
            &mut conns,
            &mut accepted,
            &mut echoed,
            &mut failures,
        )?;
        client_step(&mut client_table, &mut clients)?;
    }

    let mut outcomes = [ClientOutcome {
        sent: 0,
        echoed: 0,
        echo_intact: false,
        ended: Err(NetError::TimedOut),
    }; DEMO_CLIENTS];
    for (index, (client, outcome)) in clients.iter().zip(outcomes.iter_mut()).enumerate() {
        *outcome = ClientOutcome {
            sent: client.sent,
            echoed: client.echoed,
            echo_intact: client.intact,
            ended: client.ended.unwrap_or(Err(NetError::TimedOut)),
        };
        let _ = write!(
            out,
            "client {index}: sent {}, echoed {} ({}), ",
            client.sent,
            client.echoed,
            if client.intact { "intact" } else { "CORRUPT" }
        );
        let _ = match outcome.ended {
            Ok(()) => writeln!(out, "ended cleanly"),
            Err(error) => writeln!(out, "ended with: {error}"),
        };
        let _ = client_table.close(client.fd);
    }
    for conn in &conns {
        let _ = server.close(conn.fd);
    }
    let _ = server.close(listener);
    let report = DemoReport {
        clients: outcomes,
        server_accepted: accepted,
        server_echoed: echoed,
        server_failures: failures,
        quirk_repairs: net.stats().quirk_errors,
        sockets_left: net.sockets_in_use(),
    };
    let _ = writeln!(
        out,
        "server: accepted {accepted}, echoed {echoed} bytes, {failures} connection(s) failed"
    );
    let _ = writeln!(
        out,
        "select/poll failures repaired: {}; sockets left open: {}",
        report.quirk_repairs, report.sockets_left
    );
    Ok(report)
}

/// One server step: poll the listener and every connection, then accept, echo, or close.
fn serve_step(
    server: &mut Sockets<MockDriver>,
    listener: Fd,
    conns: &mut Vec<ServerConn>,
    accepted: &mut usize,
    echoed: &mut usize,
    failures: &mut usize,
) -> Result<(), NetError> {
    let mut entries: heapless::Vec<PollFd, { DEMO_CLIENTS + 1 }> = heapless::Vec::new();
    let _ = entries.push(PollFd::new(listener, PollFlags::IN));
    for conn in conns.iter() {
        let _ = entries.push(PollFd::new(conn.fd, PollFlags::IN | PollFlags::OUT));
    }
    server.poll(&mut entries, Some(Duration::ZERO))?;
    if entries[0].revents.contains(PollFlags::IN) {
        if let Ok((fd, _)) = server.accept(listener) {
            server.set_nonblocking(fd, true)?;
            conns.push(ServerConn {
                fd,
                pending: [0; 512],
                pending_len: 0,
                peer_done: false,
            });
            *accepted += 1;
        }
    }
    let mut index = 0;
    while index < conns.len() {
        let ready = entries
            .get(index + 1)
            .filter(|entry| entry.fd == conns[index].fd)
            .map_or(PollFlags::NONE, |entry| entry.revents);
        match echo_once(server, &mut conns[index], ready, echoed) {
            Ok(true) => index += 1,
            outcome => {
                *failures += usize::from(outcome.is_err());
                let _ = server.close(conns[index].fd);
                conns.remove(index);
                // The poll results past this one no longer line up; the next step re-polls.
                break;
            }
        }
    }
    Ok(())
}

/// Moves one connection's echo forward; `Ok(false)` once it finished cleanly.
fn echo_once(
    server: &mut Sockets<MockDriver>,
    conn: &mut ServerConn,
    ready: PollFlags,
    echoed: &mut usize,
) -> Result<bool, NetError> {
    if conn.pending_len > 0 && ready.intersects(PollFlags::OUT | PollFlags::ERR) {
        match server.send(conn.fd, &conn.pending[..conn.pending_len]) {
            Ok(count) => {
                conn.pending.copy_within(count..conn.pending_len, 0);
                conn.pending_len -= count;
                *echoed += count;
            }
            Err(NetError::WouldBlock) => {}
            Err(error) => return Err(error),
        }
    }
    if conn.pending_len == 0 && !conn.peer_done && ready.intersects(PollFlags::IN | PollFlags::ERR)
    {
        match server.recv(conn.fd, &mut conn.pending) {
            Ok(0) => conn.peer_done = true,
            Ok(count) => conn.pending_len = count,
            Err(NetError::WouldBlock) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(!(conn.peer_done && conn.pending_len == 0))
}

/// One client step: select over every live client, then send, read the echo, or finish.
fn client_step(table: &mut Sockets<MockDriver>, clients: &mut [Client]) -> Result<(), NetError> {
    let mut read = FdSet::new();
    let mut write = FdSet::new();
    for client in clients.iter().filter(|client| client.ended.is_none()) {
        read.insert(client.fd);
        if !client.shut {
            write.insert(client.fd);
        }
    }
    if read.is_empty() {
        return Ok(());
    }
    table.select(
        Some(&mut read),
        Some(&mut write),
        None,
        Some(Duration::ZERO),
    )?;
    for (index, client) in clients.iter_mut().enumerate() {
        if client.ended.is_some() {
            continue;
        }
        // Read everything that arrived before writing: a write would report a pending reset
        // before the echo that came ahead of it was read.
        while read.contains(client.fd) && client.ended.is_none() {
            let mut buf = [0u8; 256];
            match table.recv(client.fd, &mut buf) {
                Ok(0) => client.ended = Some(Ok(())),
                Ok(count) => {
                    let start = client.echoed;
                    client.intact &= buf[..count]
                        .iter()
                        .enumerate()
                        .all(|(offset, &byte)| byte == pattern(index, start + offset));
                    client.echoed += count;
                }
                Err(NetError::WouldBlock) => break,
                Err(error) => client.ended = Some(Err(error)),
            }
        }
        if client.ended.is_some() {
            continue;
        }
        if write.contains(client.fd) && !client.shut {
            let chunk: [u8; 256] =
                core::array::from_fn(|offset| pattern(index, client.sent + offset));
            let want = (DEMO_BYTES_PER_CLIENT - client.sent).min(chunk.len());
            match table.send(client.fd, &chunk[..want]) {
                Ok(count) => client.sent += count,
                Err(NetError::WouldBlock) => {}
                Err(error) => {
                    client.ended = Some(Err(error));
                    continue;
                }
            }
            if client.sent == DEMO_BYTES_PER_CLIENT {
                table.shutdown(client.fd, Shutdown::Write)?;
                client.shut = true;
            }
        }
    }
    Ok(())
}
