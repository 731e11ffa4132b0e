//! Channel benchmark: same-CPU ping-pong against corosensei and crossbeam, and cross-thread.
//!
//! Run: `cargo bench -p spindle --bench channel`. One run prints every figure and ratio
//! (medians of repeated samples). Goals: <= 3x corosensei's round trip; >= 100x faster than a
//! crossbeam zero-capacity ping-pong between two threads.

mod common;

use spindle::channel::Channel;
use spindle::tasklet::{self, CpuGroup};
use std::sync::Arc;

const SAMPLES: usize = 11;

/// Main sends, a tasklet receives and sends back: two rendezvous per round trip.
fn spindle_ping_pong_ns() -> f64 {
    let ping = Arc::new(Channel::<u64>::new());
    let pong = Arc::new(Channel::<u64>::new());
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        tasklet::spawn(move || {
            while let Ok(value) = ping.receive() {
                if pong.send(value).is_err() {
                    return;
                }
            }
        })
        .expect("spawn echo")
    };
    let mut value = 0u64;
    let nanos = common::median_ns_per_op(SAMPLES, 100_000, || {
        ping.send(value).expect("ping");
        value = pong.receive().expect("pong") + 1;
    });
    echo.kill().expect("kill echo");
    nanos
}

/// One rendezvous (send meeting a waiting receiver) including the switch to the receiver.
fn spindle_rendezvous_ns() -> f64 {
    let channel = Arc::new(Channel::<u64>::new());
    let receiver = {
        let channel = channel.clone();
        tasklet::spawn(move || while channel.receive().is_ok() {}).expect("spawn receiver")
    };
    tasklet::schedule().expect("let it wait");
    let nanos = common::median_ns_per_op(SAMPLES, 200_000, || channel.send(1).expect("send"));
    receiver.kill().expect("kill");
    nanos
}

#[cfg(target_arch = "x86_64")]
fn corosensei_round_trip_ns() -> Option<f64> {
    use corosensei::Coroutine;
    let mut coroutine: Coroutine<u64, u64, ()> = Coroutine::new(|yielder, mut value| loop {
        value = yielder.suspend(value + 1);
    });
    let mut value = 0;
    Some(common::median_ns_per_op(SAMPLES, 200_000, || {
        if let corosensei::CoroutineResult::Yield(next) = coroutine.resume(value) {
            value = next;
        }
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn corosensei_round_trip_ns() -> Option<f64> {
    None
}

fn crossbeam_thread_ping_pong_ns() -> f64 {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(0);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(0);
    let echo = std::thread::spawn(move || {
        while let Ok(value) = ping_rx.recv() {
            if pong_tx.send(value).is_err() {
                return;
            }
        }
    });
    let mut value = 0u64;
    let nanos = common::median_ns_per_op(SAMPLES, 5_000, || {
        ping_tx.send(value).expect("ping");
        value = pong_rx.recv().expect("pong") + 1;
    });
    drop(ping_tx);
    echo.join().expect("echo thread");
    nanos
}

/// The same ping-pong with the echo tasklet on another thread ("CPU").
fn spindle_cross_thread_ping_pong_ns() -> f64 {
    static GROUP: CpuGroup = CpuGroup::new();
    tasklet::join_group(&GROUP);
    let ping = Arc::new(Channel::<u64>::new());
    let pong = Arc::new(Channel::<u64>::new());
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        tasklet::spawn_cpu_thread(&GROUP, move || {
            while let Ok(value) = ping.receive() {
                if value == u64::MAX || pong.send(value).is_err() {
                    return;
                }
            }
        })
    };
    let mut value = 0u64;
    let nanos = common::median_ns_per_op(SAMPLES, 2_000, || {
        ping.send(value).expect("ping");
        value = pong.receive().expect("pong") + 1;
    });
    ping.send(u64::MAX).expect("stop");
    echo.join().expect("echo thread");
    tasklet::leave_group();
    nanos
}

fn main() {
    println!("spindle channel benchmark (medians of {SAMPLES} samples)");
    let rendezvous = spindle_rendezvous_ns();
    println!("  spindle rendezvous (send to a waiting receiver, + switch):   {rendezvous:9.1} ns");
    let ping_pong = spindle_ping_pong_ns();
    println!("  spindle same-CPU ping-pong (2 rendezvous + 2 switches):      {ping_pong:9.1} ns");
    match corosensei_round_trip_ns() {
        Some(coro) => {
            println!(
                "  corosensei resume + suspend round trip:                      {coro:9.1} ns"
            );
            println!(
                "  ratio spindle ping-pong / corosensei round trip: {:.1}x (goal <= 3x)",
                ping_pong / coro
            );
        }
        None => println!("  corosensei: not available on this architecture"),
    }
    let crossbeam = crossbeam_thread_ping_pong_ns();
    println!("  crossbeam zero-capacity ping-pong between two threads:       {crossbeam:9.1} ns");
    println!(
        "  spindle is {:.0}x faster than the crossbeam thread ping-pong (goal >= 100x)",
        crossbeam / ping_pong
    );
    let cross = spindle_cross_thread_ping_pong_ns();
    println!("  spindle cross-thread ping-pong (tasklets on two threads):    {cross:9.1} ns");
}
