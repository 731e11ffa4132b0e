//! Tasklet and channel costs on the target, in PMC5 instructions per operation.

use crate::{BenchSuite, TargetBench};
use core::sync::atomic::{AtomicBool, Ordering::*};
use spindle::channel::Channel;
use spindle::platform::platform;
use spindle::tasklet::{self, Builder};
use spindle_arch::powerpc64::irq;

/// The scheduling benchmarks.
pub const SUITE: BenchSuite = BenchSuite::new(
    "scheduling",
    &[
        TargetBench::new("schedule_round_trip", schedule_round_trip, 1000),
        TargetBench::new("channel_rendezvous", channel_rendezvous, 1000),
        TargetBench::new("spawn_and_finish", spawn_and_finish, 100),
        TargetBench::new("spawn_block_finish", spawn_block_finish, 100),
        TargetBench::new("spawn_block_finish_10000_at_once", spawn_block_finish_at_once, 10_000)
            .counted_by_name_only(),
        TargetBench::new("sliced_spawn_block_finish", sliced_spawn_block_finish, 100),
        // 100 and 10,000 alive at once: each slice saved and restored once in both, so the
        // two show whether the cost grows with the number alive.
        TargetBench::new(
            "sliced_spawn_block_finish_100_at_once",
            sliced_spawn_block_finish_at_once,
            100,
        ),
        TargetBench::new(
            "sliced_spawn_block_finish_10000_at_once",
            sliced_spawn_block_finish_at_once,
            10_000,
        )
        .counted_by_name_only(),
        TargetBench::new("sliced_rendezvous_256", sliced_rendezvous_256, 200),
        TargetBench::new("sliced_rendezvous_1k", sliced_rendezvous_1k, 200),
        TargetBench::new(
            "sliced_rendezvous_256_uncompacted",
            sliced_rendezvous_256_uncompacted,
            200,
        ),
        TargetBench::new(
            "sliced_rendezvous_1k_uncompacted",
            sliced_rendezvous_1k_uncompacted,
            200,
        ),
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

static GATE: Channel<u64> = Channel::new();

/// Spawns `count` tasklets that each block in a receive, lets them all block, releases them
/// and runs them to the end: per iteration, one spawn, one block and one finish.
fn spawn_block_finish_many(count: u64, builder: Builder) {
    for _ in 0..count {
        drop(builder.spawn(|| GATE.receive().is_ok()).expect("spawn"));
    }
    tasklet::schedule().expect("let them block");
    for value in 0..count {
        GATE.send(value).expect("release");
    }
    tasklet::run().expect("run them to the end");
}

/// One tasklet at a time: spawn it, let it block in a receive, release it, let it finish.
fn spawn_block_finish(iters: u64) {
    for _ in 0..iters {
        spawn_block_finish_many(1, Builder::new());
    }
}

/// `iters` (10,000) tasklets alive and blocked at once: what one costs when many live.
fn spawn_block_finish_at_once(iters: u64) {
    let (limit, _) = tasklet::stack_budget();
    tasklet::set_stack_budget(usize::MAX / 2);
    spawn_block_finish_many(iters, Builder::new().stack_size(tasklet::MIN_STACK_BYTES));
    tasklet::set_stack_budget(limit);
}

fn sliced_spawn_block_finish(iters: u64) {
    for _ in 0..iters {
        spawn_block_finish_many(1, Builder::new().sliced());
    }
}

fn sliced_spawn_block_finish_at_once(iters: u64) {
    let (limit, _) = tasklet::stack_budget();
    tasklet::set_stack_budget(usize::MAX / 2);
    spawn_block_finish_many(iters, Builder::new().sliced());
    tasklet::set_stack_budget(limit);
}

static SLICED_PING: Channel<u64> = Channel::new();
static SLICED_PONG: Channel<u64> = Channel::new();

/// Receives `rounds` pings and answers each, `LIVE` bytes of frame above the loop.
#[inline(never)]
fn echo_with_live_bytes<const LIVE: usize>(rounds: u64) {
    let frame = core::hint::black_box([1u8; LIVE]);
    for _ in 0..rounds {
        let value = SLICED_PING.receive().expect("ping");
        SLICED_PONG.send(value + u64::from(frame[LIVE / 2])).expect("pong");
    }
}

/// Two sliced tasklets, each with about `LIVE` bytes of live stack: a ping and its echo per
/// iteration, two rendezvous, each switching between the two saved slices.
fn sliced_rendezvous_between<const LIVE: usize>(iters: u64) {
    let echo = Builder::new()
        .sliced()
        .spawn(move || echo_with_live_bytes::<LIVE>(iters))
        .expect("spawn echo");
    let driver = Builder::new()
        .sliced()
        .spawn(move || {
            let frame = core::hint::black_box([2u8; LIVE]);
            for value in 0..iters {
                SLICED_PING.send(value).expect("ping");
                let back = SLICED_PONG.receive().expect("pong");
                assert_eq!(back, value + u64::from(frame[0] / 2));
            }
        })
        .expect("spawn driver");
    tasklet::run().expect("run the pair");
    assert_eq!(echo.result(), Some(Ok(())));
    assert_eq!(driver.result(), Some(Ok(())));
}

/// Per iteration: two rendezvous between sliced tasklets with 256-byte frames.
fn sliced_rendezvous_256(iters: u64) {
    sliced_rendezvous_between::<256>(iters);
}

/// Per iteration: two rendezvous between sliced tasklets with 1 KiB frames.
fn sliced_rendezvous_1k(iters: u64) {
    sliced_rendezvous_between::<1024>(iters);
}

/// [`sliced_rendezvous_256`] with the slices saved whole (`set_slice_compaction(false)`).
fn sliced_rendezvous_256_uncompacted(iters: u64) {
    tasklet::set_slice_compaction(false);
    sliced_rendezvous_between::<256>(iters);
    tasklet::set_slice_compaction(true);
}

/// [`sliced_rendezvous_1k`] with the slices saved whole.
fn sliced_rendezvous_1k_uncompacted(iters: u64) {
    tasklet::set_slice_compaction(false);
    sliced_rendezvous_between::<1024>(iters);
    tasklet::set_slice_compaction(true);
}
