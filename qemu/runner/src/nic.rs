//! The host sides of the on-target `nic::` tests: real clients and servers on 127.0.0.1.
//!
//! Each runs beside the machine (see [`crate::machine::Companion`]) while the guest side, in
//! `tests/src/nic.rs`, runs in the image. They meet through QEMU's user network: the runner
//! forwards a free port of 127.0.0.1 to the guest's [`GUEST_PORT`], and the guest reaches the
//! host's loopback at 10.0.2.2 (a port it is told on its console, `nic-port N`). The guest prints
//! `nic: ...` lines at the points the host waits for. A test passes only if both sides do.

use crate::machine::Console;
use socket2::SockRef;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The guest port every `nic::` test listens on (forwarded from the host).
pub const GUEST_PORT: u16 = 7;
/// How long the host waits for the guest at each step.
const STEP: Duration = Duration::from_secs(30);

/// The host side of one test.
#[derive(Debug, Clone, Copy)]
pub struct HostSide {
    /// Runs beside the machine with the host port forwarded to [`GUEST_PORT`] (TCP, and UDP
    /// too with `udp`).
    pub run: fn(&Console, u16) -> Result<(), String>,
    /// The same port number is forwarded for UDP too.
    pub udp: bool,
}

/// The host side of test `name`, if it has one (and so needs the machine's NIC).
pub fn host_side(name: &str) -> Option<HostSide> {
    let run: fn(&Console, u16) -> Result<(), String> = match name {
        "nic::echo_for_8_host_clients" => echo_for_8_clients,
        "nic::reset_mid_transfer_seen_by_select" => reset_mid_transfer,
        "nic::guest_is_a_client_of_a_host_server" => serve_the_guest,
        "nic::refused_connect_and_full_tables" => refuse_and_fill,
        "nic::a_flood_is_dropped_counted_and_recovered" => flood,
        _ => return None,
    };
    let udp = name == "nic::a_flood_is_dropped_counted_and_recovered";
    Some(HostSide { run, udp })
}

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// Connects to the guest through the forwarded port.
pub fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, STEP).map_err(io("connect"))?;
    stream.set_read_timeout(Some(STEP)).map_err(io("timeout"))?;
    stream
        .set_write_timeout(Some(STEP))
        .map_err(io("timeout"))?;
    stream.set_nodelay(true).map_err(io("nodelay"))?;
    Ok(stream)
}

/// The bytes client `client` sends: a pattern no other client's matches at any offset.
pub fn pattern(client: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(client as u32 * 101) as u8
                ^ (i >> 8) as u8
        })
        .collect()
}

/// Sends `data` in `chunk`-byte writes, reading each echo back and checking every byte.
pub fn echo_checked(stream: &mut TcpStream, data: &[u8], chunk: usize) -> Result<(), String> {
    let mut back = vec![0u8; chunk];
    for (index, piece) in data.chunks(chunk).enumerate() {
        stream.write_all(piece).map_err(io("send"))?;
        let back = &mut back[..piece.len()];
        stream.read_exact(back).map_err(io("receive the echo"))?;
        if back != piece {
            let at = back
                .iter()
                .zip(piece)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(format!(
                "echo differs at byte {} (chunk {index}): sent {:#04x}, got {:#04x}",
                index * chunk + at,
                piece[at],
                back[at]
            ));
        }
    }
    Ok(())
}

/// Bytes each of the 8 clients echoes.
pub const ECHO_BYTES_PER_CLIENT: usize = 24 << 10;

fn echo_for_8_clients(console: &Console, port: u16) -> Result<(), String> {
    console.wait_for_line("nic: listening", STEP)?;
    let clients: Vec<_> = (0..8)
        .map(|client| {
            std::thread::spawn(move || -> Result<(), String> {
                let mut stream = connect(port)?;
                echo_checked(
                    &mut stream,
                    &pattern(client, ECHO_BYTES_PER_CLIENT),
                    1000 + client * 97,
                )?;
                stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
                let mut rest = Vec::new();
                stream
                    .read_to_end(&mut rest)
                    .map_err(io("read to the end"))?;
                if rest.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} bytes after the echo", rest.len()))
                }
            })
        })
        .collect();
    for (client, handle) in clients.into_iter().enumerate() {
        handle
            .join()
            .map_err(|_| format!("client {client} panicked"))?
            .map_err(|err| format!("client {client}: {err}"))?;
    }
    console.wait_for_line("nic: served 8 clients", STEP)?;
    Ok(())
}

/// Bytes the resetting client sends before its reset.
pub const BYTES_BEFORE_RESET: usize = 3000;

fn reset_mid_transfer(console: &Console, port: u16) -> Result<(), String> {
    console.wait_for_line("nic: listening", STEP)?;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(connect(port)?);
    }
    console.wait_for_line("nic: accepted 3", STEP)?;
    // The first client sends, then resets: SO_LINGER 0 makes close send an RST.
    let mut resetting = streams.remove(0);
    resetting
        .write_all(&pattern(0, BYTES_BEFORE_RESET))
        .map_err(io("send before the reset"))?;
    std::thread::sleep(Duration::from_millis(300));
    SockRef::from(&resetting)
        .set_linger(Some(Duration::ZERO))
        .map_err(io("SO_LINGER 0"))?;
    drop(resetting);
    console.wait_for_line("nic: reset seen", STEP)?;
    // The other two connections were untouched: they still echo.
    for (index, stream) in streams.iter_mut().enumerate() {
        echo_checked(stream, &pattern(index + 1, 500), 500)
            .map_err(|err| format!("connection {} after the reset: {err}", index + 1))?;
    }
    drop(streams);
    console.wait_for_line("nic: others untouched", STEP)?;
    Ok(())
}

/// Accepts one connection within [`STEP`].
fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(io("listener"))?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(io("stream"))?;
                stream.set_read_timeout(Some(STEP)).map_err(io("timeout"))?;
                return Ok(stream);
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock && start.elapsed() < STEP => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return Err(format!("accept: {err}")),
        }
    }
}

/// What the host server answers a guest's line with.
pub fn server_reply(request: &[u8]) -> Vec<u8> {
    request.iter().rev().map(u8::to_ascii_uppercase).collect()
}

fn serve_the_guest(console: &Console, _port: u16) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind"))?;
    let local = listener.local_addr().map_err(io("address"))?;
    console.wait_for_line("nic: waiting for a port", STEP)?;
    console.send_line(&format!("nic-port {}", local.port()))?;
    let mut stream = accept(&listener)?;
    let mut request = vec![0u8; 4096];
    let mut len = 0;
    // The guest sends one line.
    while !request[..len].contains(&b'\n') {
        let n = stream
            .read(&mut request[len..])
            .map_err(io("read the request"))?;
        if n == 0 {
            return Err("the guest closed before its line ended".into());
        }
        len += n;
    }
    let line = &request[..len - 1];
    stream.write_all(&server_reply(line)).map_err(io("reply"))?;
    stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
    console.wait_for_line("nic: reply checked", STEP)?;
    Ok(())
}

fn refuse_and_fill(console: &Console, _port: u16) -> Result<(), String> {
    // A port nobody listens on (free a moment ago), and one that accepts everything.
    let closed = crate::machine::free_port()?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind"))?;
    let open = listener.local_addr().map_err(io("address"))?.port();
    console.wait_for_line("nic: waiting for a port", STEP)?;
    console.send_line(&format!("nic-port {closed} {open}"))?;
    let mut held = Vec::new();
    listener.set_nonblocking(true).map_err(io("listener"))?;
    let start = Instant::now();
    // Keep the guest's connections open until it has checked its limits.
    while !console.text().contains("nic: limits checked") {
        if start.elapsed() > STEP {
            return Err("the guest did not report its limits".into());
        }
        if let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if held.is_empty() {
        return Err("the guest never connected to the open port".into());
    }
    Ok(())
}

/// Datagrams of the flood, and their size.
const FLOOD_DATAGRAMS: usize = 2000;
const FLOOD_DATAGRAM_BYTES: usize = 1000;
/// Bytes echoed after the flood.
pub const FLOOD_ECHO_BYTES: usize = 64 << 10;

fn flood(console: &Console, port: u16) -> Result<(), String> {
    console.wait_for_line("nic: flood me", STEP)?;
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    let datagram = pattern(9, FLOOD_DATAGRAM_BYTES);
    for _ in 0..FLOOD_DATAGRAMS {
        // A full socket buffer on the host is part of a flood: go on.
        let _ = socket.send_to(&datagram, ("127.0.0.1", port));
    }
    console.wait_for_line("nic: listening", STEP)?;
    let mut stream = connect(port)?;
    echo_checked(&mut stream, &pattern(3, FLOOD_ECHO_BYTES), 4096)?;
    stream.shutdown(Shutdown::Write).map_err(io("shutdown"))?;
    console.wait_for_line("nic: flood echoed", STEP)?;
    Ok(())
}
