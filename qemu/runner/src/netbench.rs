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

/// One figure: the guest's median and its instructions per echoed byte, and the host's.
struct Row {
    guest: f64,
    instructions_per_byte: Option<f64>,
    host: f64,
}

/// What one boot of the echo image measured.
struct Figures {
    listening: String,
    rows: Vec<Row>,
    idle_instructions_per_second: f64,
}

const FIGURES: [(&str, &str); 3] = [
    ("echo throughput, 1 KiB chunks", "MB/s"),
    ("echo throughput, 64 KiB chunks", "MB/s"),
    ("64-byte echo round trip", "us"),
];

/// Seconds an idle connection stays open for the idle figure.
const IDLE_SECONDS: f64 = 1.0;

fn measure(console: &Console, guest_port: u16, host_port: u16) -> Result<Figures, String> {
    let listening = console.wait_for_line("echo: listening", Duration::from_secs(30))?;
    let mut rows = Vec::new();
    let mut connections = 0;
    for chunk in [1024, 65536] {
        let (mut guest, mut host, mut per_byte) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            guest.push(throughput(guest_port, chunk, THROUGHPUT_BYTES)?);
            let (bytes, instructions) = guest_cost(console, connections)?;
            connections += 1;
            per_byte.push(instructions as f64 / bytes.max(1) as f64);
            host.push(throughput(host_port, chunk, THROUGHPUT_BYTES)?);
        }
        rows.push(Row {
            guest: median(guest),
            instructions_per_byte: Some(median(per_byte)),
            host: median(host),
        });
    }
    let (mut guest, mut host, mut per_byte) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        guest.push(latency(guest_port)?);
        let (bytes, instructions) = guest_cost(console, connections)?;
        connections += 1;
        per_byte.push(instructions as f64 / bytes.max(1) as f64);
        host.push(latency(host_port)?);
    }
    rows.push(Row {
        guest: median(guest),
        instructions_per_byte: Some(median(per_byte)),
        host: median(host),
    });
    // A connection open and quiet: what waiting for the link costs.
    let idle = connect(guest_port)?;
    std::thread::sleep(Duration::from_secs_f64(IDLE_SECONDS));
    drop(idle);
    let (_, instructions) = guest_cost(console, connections)?;
    Ok(Figures {
        listening,
        rows,
        idle_instructions_per_second: instructions as f64 / IDLE_SECONDS,
    })
}

/// Boots the echo image once, typing `input` first, and measures it.
fn boot_and_measure(
    qemu: &Path,
    image: &Path,
    memory_bytes: u64,
    input: &str,
    host_port: u16,
) -> Result<Figures, String> {
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
        hang_symbols: None,
    };
    let guest_port = forwards[0].host;
    let companion = Box::new(move |console: &Console| {
        let result = measure(console, guest_port, host_port);
        console.stop_machine();
        result.map(|figures| {
            *FIGURES_OUT.lock().unwrap_or_else(|p| p.into_inner()) = Some(figures);
        })
    });
    let outcome = machine::run_with(
        qemu,
        &boot,
        Some(input),
        Some(Duration::from_secs(600)),
        false,
        Some(companion),
    )?;
    match outcome.companion {
        Some(Ok(())) => FIGURES_OUT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| "netbench: the figures went missing".into()),
        Some(Err(why)) => Err(format!(
            "netbench: {why}\n-- guest console --\n{}",
            outcome.console.trim_end()
        )),
        None => Err("netbench: the measurement did not run".into()),
    }
}

/// Where the companion leaves its figures.
static FIGURES_OUT: std::sync::Mutex<Option<Figures>> = std::sync::Mutex::new(None);

/// Runs the benchmark on the built echo image `image`: once waiting by interrupt and cede (the
/// default), once spinning on the link.
pub fn run(qemu: &Path, image: &Path, memory_bytes: u64) -> Result<bool, String> {
    let host_port = start_host_echo()?;
    let cede = boot_and_measure(qemu, image, memory_bytes, "\n", host_port)?;
    let spin = boot_and_measure(qemu, image, memory_bytes, "spin\n", host_port)?;
    if !cede.listening.contains("Cede") || !spin.listening.contains("Spin") {
        return Err(format!(
            "netbench: the image did not take the wait modes: {:?} / {:?}",
            cede.listening, spin.listening
        ));
    }
    outln!("\nnetbench: echo over the pseries NIC (spapr-vlan, QEMU user network, smoltcp) vs the host's loopback TCP echo");
    outln!("guest {}", cede.listening.trim_start_matches("echo: "));
    outln!("guest waiting by Cede: H_CEDE between link polls, woken by the NIC's interrupt; by Spin: polling the link");
    outln!(
        "{:<32} {:>16} {:>16} {:>16} {:>11} {:>11}",
        "figure (median of 3)",
        "guest, Cede",
        "guest, Spin",
        "host loopback",
        "instr/B Cede",
        "instr/B Spin"
    );
    for (index, (name, unit)) in FIGURES.iter().enumerate() {
        let (c, p) = (&cede.rows[index], &spin.rows[index]);
        let per_byte = |row: &Row| {
            row.instructions_per_byte
                .map_or(String::from("-"), |value| format!("{value:.0}"))
        };
        outln!(
            "{:<32} {:>11.2} {:<4} {:>11.2} {:<4} {:>11.2} {:<4} {:>11} {:>11}",
            name,
            c.guest,
            unit,
            p.guest,
            unit,
            c.host,
            unit,
            per_byte(c),
            per_byte(p)
        );
    }
    outln!(
        "{:<32} {:>11.0} {:<4} {:>11.0} {:<4}",
        "idle connection, instr per s",
        cede.idle_instructions_per_second,
        "",
        spin.idle_instructions_per_second,
        ""
    );
    outln!(
        "instr/B: PMC5 instructions the guest CPU completed while echoing, per byte echoed (each byte\n\
         is received once and sent once; stack, driver, poller, scheduler and waiting included; PMC5\n\
         reads low under QEMU TCG: blocks ending in an indirect branch are not counted). Host figures\n\
         are from the first boot's runs."
    );
    Ok(true)
}
