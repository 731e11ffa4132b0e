//! The soak command: random tasklet, channel, sync and socket programs on 1 to 4 threads standing
//! for CPUs, with kills, closes, timeouts, spilling and cross-CPU traffic, for a given time,
//! counting every value until it is dropped (`spindle::scenarios::soak`, the generator the
//! on-target `soak::` suite runs too). Prints operations per second, values checked and the
//! verdict; exits non-zero on a failure or a hang.
//!
//! Run: `cargo bench -p spindle --bench soak -- --seconds 60 --threads 4 --seed 7`
//! (defaults: 10 s, 2 threads, seed 1; `--no-invariants` skips `tasklet::check_invariants`
//! after every operation).

use spindle::scenarios::soak::{Soak, SoakConfig};
use spindle::tasklet::{self, CpuGroup};
use spindle_drivers::mock_net::scenarios::soak_network;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

/// How long the other threads may take to stop once the soak's time is up.
const STOP_GRACE: Duration = Duration::from_secs(150);

struct Options {
    seconds: u64,
    threads: usize,
    seed: u64,
    invariants: bool,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        seconds: 10,
        threads: 2,
        seed: 1,
        invariants: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|value| value.parse::<u64>().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = value("--seconds")?,
            "--threads" => options.threads = value("--threads")? as usize,
            "--seed" => options.seed = value("--seed")?,
            "--no-invariants" => options.invariants = false,
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !(1..=4).contains(&options.threads) {
        return Err("--threads takes 1 to 4".into());
    }
    Ok(options)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("soak: {error}");
            eprintln!("usage: cargo bench -p spindle --bench soak -- [--seconds N] [--threads 1..4] [--seed S] [--no-invariants]");
            return ExitCode::from(2);
        }
    };
    let mut config = SoakConfig::new(
        options.threads,
        options.seed,
        Duration::from_secs(options.seconds),
    );
    config.check_invariants = options.invariants;
    println!(
        "soak: {} s on {} threads standing for CPUs, seed {}, invariant checks {}",
        options.seconds,
        options.threads,
        options.seed,
        if options.invariants { "on" } else { "off" }
    );
    let soak = Soak::new(config, Some(soak_network()));
    let group: &'static CpuGroup = Box::leak(Box::new(CpuGroup::new()));
    tasklet::join_group(group);
    let (done, finished) = mpsc::channel();
    let threads: Vec<_> = (1..options.threads)
        .map(|cpu| {
            let done = done.clone();
            tasklet::spawn_cpu_thread(group, move || {
                if let Err(panic) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| soak.run_cpu(cpu)))
                {
                    soak.record_failure(format!("CPU {cpu} panicked: {}", panic_message(&*panic)));
                }
                let _ = done.send(());
            })
        })
        .collect();
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| soak.run_cpu(0))) {
        soak.record_failure(format!("CPU 0 panicked: {}", panic_message(&*panic)));
    }
    tasklet::leave_group();
    for _ in &threads {
        if finished.recv_timeout(STOP_GRACE).is_err() {
            soak.record_failure(format!(
                "hung: a CPU thread did not stop within {} s of the end",
                STOP_GRACE.as_secs()
            ));
            println!("{}", soak.report());
            return ExitCode::FAILURE;
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    let report = soak.report();
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
