//! `spindle-qemu netbench`: echo over the pseries NIC against the host's loopback echo.
//!
//! Boots the `echo` image with a free port of 127.0.0.1 forwarded to its port 7 and, in the same
//! run, a thread-per-connection echo server on the host's loopback as the reference. Against
//! each: throughput with 1 KiB and 64 KiB chunks (a writer and a reader thread on one
//! connection, every byte checked), and the round trip of a 64-byte echo; medians of the runs.
//! The guest reports, per connection, the bytes it echoed and the PMC5 instructions its CPU
//! completed meanwhile, and its memory per TCP socket.

use crate::machine::{self, Boot, Console, Forward};
use crate::nic::{connect, pattern};
use crate::quiet::outln;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per throughput run.
const THROUGHPUT_BYTES: usize = 4 << 20;
/// Runs per figure (the median is reported).
const RUNS: usize = 3;
/// Round trips per latency run.
const ROUND_TRIPS: usize = 200;

/// Echoes one connection on the host (the reference server).
fn host_echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 65536];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// A loopback echo server on a free port; serves until the process ends.
fn start_host_echo() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("bind: {err}"))?;
    let port = listener
        .local_addr()
        .map_err(|err| format!("address: {err}"))?
        .port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || host_echo(stream));
        }
    });
    Ok(port)
}

/// MB/s of echoing `total` bytes in `chunk`-byte writes over one connection to `port`.
fn throughput(port: u16, chunk: usize, total: usize) -> Result<f64, String> {
    let stream = connect(port)?;
    let mut reader = stream.try_clone().map_err(|err| format!("clone: {err}"))?;
    let data = pattern(chunk, total);
    let start = Instant::now();
    let writer = {
        let data = data.clone();
        let mut stream = stream;
        std::thread::spawn(move || -> Result<TcpStream, String> {
            for piece in data.chunks(chunk) {
                stream
                    .write_all(piece)
                    .map_err(|err| format!("send: {err}"))?;
            }
            Ok(stream)
        })
    };
    let mut back = vec![0u8; total];
    reader
        .read_exact(&mut back)
        .map_err(|err| format!("receive the echo: {err}"))?;
    let elapsed = start.elapsed();
    let stream = writer.join().map_err(|_| "the writer panicked")??;
    if back != data {
        return Err(format!("the {chunk}-byte-chunk echo came back changed"));
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    Ok(total as f64 / elapsed.as_secs_f64() / 1e6)
}

/// Median microseconds of a 64-byte echo round trip.
fn latency(port: u16) -> Result<f64, String> {
    let mut stream = connect(port)?;
    let message = pattern(7, 64);
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for round in 0..ROUND_TRIPS + 10 {
        let start = Instant::now();
        stream
            .write_all(&message)
            .map_err(|err| format!("send: {err}"))?;
        stream
            .read_exact(&mut back)
            .map_err(|err| format!("receive: {err}"))?;
        if round >= 10 {
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    if back[..] != message[..] {
        return Err("the 64-byte echo came back changed".into());
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    Ok(median(samples))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The guest's report for its `index`-th closed connection: (bytes echoed, instructions).
fn guest_cost(console: &Console, index: usize) -> Result<(u64, u64), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = console.text();
        if let Some(line) = text
            .lines()
            .filter(|line| line.starts_with("echo: ") && line.contains(" closed: "))
            .nth(index)
        {
            let numbers: Vec<u64> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|word| word.parse().ok())
                .collect();
            // "echo: A.B.C.D:PORT closed: BYTES bytes echoed, INSTRUCTIONS instructions"
            return match numbers.as_slice() {
                [.., bytes, instructions] => Ok((*bytes, *instructions)),
                _ => Err(format!("cannot read the guest's report {line:?}")),
            };
        }
        if Instant::now() > deadline {
            return Err(format!("the guest did not report connection {index}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One figure against both servers: the guest's median, the host's, and the guest's instructions
/// per echoed byte.
struct Row {
    name: &'static str,
    unit: &'static str,
    guest: f64,
    host: f64,
    instructions_per_byte: Option<f64>,
}

fn measure(console: &Console, guest_port: u16) -> Result<(), String> {
    let listening = console.wait_for_line("echo: listening", Duration::from_secs(30))?;
    let host_port = start_host_echo()?;
    let mut rows = Vec::new();
    let mut connections = 0;
    for (name, chunk) in [
        ("echo throughput, 1 KiB chunks", 1024),
        ("echo throughput, 64 KiB chunks", 65536),
    ] {
        let (mut guest, mut host, mut per_byte) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            guest.push(throughput(guest_port, chunk, THROUGHPUT_BYTES)?);
            let (bytes, instructions) = guest_cost(console, connections)?;
            connections += 1;
            per_byte.push(instructions as f64 / bytes.max(1) as f64);
            host.push(throughput(host_port, chunk, THROUGHPUT_BYTES)?);
        }
        rows.push(Row {
            name,
            unit: "MB/s",
            guest: median(guest),
            host: median(host),
            instructions_per_byte: Some(median(per_byte)),
        });
    }
    let (mut guest, mut host) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        guest.push(latency(guest_port)?);
        guest_cost(console, connections)?;
        connections += 1;
        host.push(latency(host_port)?);
    }
    rows.push(Row {
        name: "64-byte echo round trip",
        unit: "us",
        guest: median(guest),
        host: median(host),
        instructions_per_byte: None,
    });
    outln!("\nnetbench: echo over the pseries NIC (spapr-vlan, QEMU user network, smoltcp) vs the host's loopback TCP echo");
    outln!("{}", listening.trim_start_matches("echo: "));
    outln!(
        "{:<32} {:>12} {:>13} {:>10} {:>24}",
        "figure (median of 3)",
        "guest",
        "host loopback",
        "guest/host",
        "guest instr per byte*"
    );
    for row in rows {
        let per_byte = row
            .instructions_per_byte
            .map_or(String::from("-"), |value| format!("{value:.0}"));
        outln!(
            "{:<32} {:>7.2} {:<4} {:>8.2} {:<4} {:>10.3} {:>24}",
            row.name,
            row.guest,
            row.unit,
            row.host,
            row.unit,
            row.guest / row.host,
            per_byte
        );
    }
    outln!(
        "* PMC5 instructions the guest CPU completed while echoing, per byte echoed (each byte is\n  received once and sent once; stack, driver, poller and scheduler included; PMC5 reads low\n  under QEMU TCG: blocks ending in an indirect branch are not counted)"
    );
    Ok(())
}

/// Runs the benchmark on the built echo image `image`.
pub fn run(qemu: &Path, image: &Path, memory_bytes: u64) -> Result<bool, String> {
    let forwards = [Forward {
        host: machine::free_port()?,
        guest: 7,
        udp: false,
    }];
    let boot = Boot {
        image,
        memory_bytes,
        cpus: 1,
        gdb: false,
        forwards: &forwards,
        extra: &[],
    };
    let guest_port = forwards[0].host;
    let companion = Box::new(move |console: &Console| {
        let result = measure(console, guest_port);
        console.stop_machine();
        result
    });
    let outcome = machine::run_with(
        qemu,
        &boot,
        None,
        Some(Duration::from_secs(600)),
        false,
        Some(companion),
    )?;
    match outcome.companion {
        Some(Ok(())) => Ok(true),
        Some(Err(why)) => Err(format!(
            "netbench: {why}\n-- guest console --\n{}",
            outcome.console.trim_end()
        )),
        None => Err("netbench: the measurement did not run".into()),
    }
}
