//! Tasklet and channel costs on the target, in PMC5 instructions per operation.

use crate::{BenchSuite, TargetBench};
use core::sync::atomic::{AtomicBool, Ordering::*};
use spindle::channel::Channel;
use spindle::platform::platform;
use spindle::tasklet;
use spindle_arch::powerpc64::irq;

/// The scheduling benchmarks.
pub const SUITE: BenchSuite = BenchSuite::new(
    "scheduling",
    &[
        TargetBench::new("schedule_round_trip", schedule_round_trip, 1000),
        TargetBench::new("channel_rendezvous", channel_rendezvous, 1000),
        TargetBench::new("spawn_and_finish", spawn_and_finish, 100),
        TargetBench::new("cross_cpu_rendezvous", cross_cpu_rendezvous, 200).needing_cpus(2),
    ],
);

/// Main -> partner -> main: two switches through `schedule()`.
fn schedule_round_trip(iters: u64) {
    let partner = tasklet::spawn(|| while tasklet::schedule().is_ok() {}).expect("spawn");
    tasklet::schedule().expect("start partner");
    for _ in 0..iters {
        tasklet::schedule().expect("schedule");
    }
    partner.kill().expect("kill");
}

static PINGS: Channel<u64> = Channel::new();

/// One send (main) meeting one waiting receiver, with the default receiver preference: the
/// receiver runs at once and waits again, then main continues — a rendezvous plus two switches.
fn channel_rendezvous(iters: u64) {
    let receiver = tasklet::spawn(|| while PINGS.receive().is_ok() {}).expect("spawn");
    tasklet::schedule().expect("let it wait");
    for value in 0..iters {
        PINGS.send(value).expect("send");
    }
    receiver.kill().expect("kill");
}

fn spawn_and_finish(iters: u64) {
    for _ in 0..iters {
        tasklet::spawn(|| ()).expect("spawn");
        tasklet::run().expect("run");
    }
}

static CROSS_PING: Channel<u64> = Channel::new();
static CROSS_PONG: Channel<u64> = Channel::new();
static ECHO_STARTED: AtomicBool = AtomicBool::new(false);

fn echo(_cpu: usize) -> ! {
    irq::enable();
    while let Ok(value) = CROSS_PING.receive() {
        if CROSS_PONG.send(value).is_err() {
            break;
        }
    }
    loop {
        platform().idle(None);
    }
}

/// A send to CPU 1 and its echo back: two cross-CPU rendezvous (registered as needing two CPUs,
/// `cargo run -- bench --cpus 2`).
fn cross_cpu_rendezvous(iters: u64) {
    if !ECHO_STARTED.swap(true, AcqRel) {
        tasklet::start_cpu(1, echo).expect("start CPU 1");
    }
    for value in 0..iters {
        CROSS_PING.send(value).expect("ping");
        CROSS_PONG.receive().expect("pong");
    }
}
