//! Sync tests on the target: Lock, Event and Queue on one CPU, a queue across two CPUs, and
//! call_async on a worker CPU.

use crate::{Suite, TargetTest};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::*};
use core::time::Duration;
use spindle::platform::platform;
use spindle::scenarios::sync::{self as scenarios, spawn};
use spindle::sync::{CallError, PlatformCpus, Queue, TrySendError, WorkerPool};
use spindle::tasklet::{self, CpuGroup, TaskletError};
use spindle_arch::powerpc64::irq;

/// The sync suite.
pub const SUITE: Suite = Suite::new(
    "sync",
    &[
        TargetTest::new("lock_is_fifo", lock_is_fifo),
        TargetTest::new(
            "killed_lock_waiter_passes_it_on",
            killed_lock_waiter_passes_it_on,
        ),
        TargetTest::new("event_wakes_all", event_wakes_all),
        TargetTest::new("queue_blocks_both_ways", queue_blocks_both_ways),
        TargetTest::new("queue_close_and_timeouts", queue_close_and_timeouts),
        TargetTest::new("queue_across_cpus", queue_across_cpus).cpus(2),
        TargetTest::new("call_async_on_a_worker_cpu", call_async_on_a_worker_cpu).cpus(2),
    ],
);

fn lock_is_fifo() {
    scenarios::lock_waiters_are_served_in_fifo_order(4);
}

fn killed_lock_waiter_passes_it_on() {
    scenarios::a_waiter_killed_as_the_lock_is_handed_to_it_passes_the_lock_on();
}

fn event_wakes_all() {
    scenarios::event_set_wakes_every_waiter_and_clear_makes_waits_block_again(5);
}

fn queue_blocks_both_ways() {
    let queue = Arc::new(Queue::<u64, 2>::new());
    let consumer = {
        let queue = queue.clone();
        spawn(move || {
            (0..10)
                .map(|_| queue.receive())
                .collect::<Result<Vec<_>, _>>()
        })
    };
    let producer = {
        let queue = queue.clone();
        spawn(move || {
            for value in 0..10 {
                queue.send(value).map_err(|failure| failure.error)?;
            }
            Ok::<_, TaskletError>(())
        })
    };
    tasklet::run().unwrap();
    assert_eq!(producer.result(), Some(Ok(Ok(()))));
    assert_eq!(consumer.result(), Some(Ok(Ok((0..10).collect()))));
    assert!(queue.is_empty());
}

fn queue_close_and_timeouts() {
    let queue = Queue::<u32, 1>::new();
    // Timeouts run on the decrementer.
    scenarios::queue_timeouts_give_values_back(&queue, Duration::from_millis(5));
    queue.close();
    assert_eq!(queue.try_send(3), Err(TrySendError::Closed(3)));
    assert_eq!(queue.receive(), Ok(1));
    assert_eq!(queue.receive(), Err(TaskletError::Closed));
    assert!(queue.is_closed());
}

static CROSS: Queue<u64, 4> = Queue::new();
const CROSS_VALUES: u64 = 500;

fn producer_cpu(_cpu: usize) -> ! {
    irq::enable();
    for value in 0..CROSS_VALUES {
        CROSS.send(value).expect("send from CPU 1");
    }
    CROSS.close();
    loop {
        platform().idle(None);
    }
}

fn queue_across_cpus() {
    tasklet::start_cpu(1, producer_cpu).expect("start CPU 1");
    let mut next = 0;
    loop {
        match CROSS.receive() {
            Ok(value) => {
                assert_eq!(value, next, "FIFO across CPUs");
                next += 1;
            }
            Err(TaskletError::Closed) => break,
            Err(error) => panic!("receive failed: {error}"),
        }
    }
    assert_eq!(next, CROSS_VALUES);
}

static GROUP: CpuGroup = CpuGroup::new();
static POOL: WorkerPool<PlatformCpus, 1, 2> = WorkerPool::new(PlatformCpus, &GROUP);

fn worker_cpu(_cpu: usize) -> ! {
    irq::enable();
    let outcome = POOL.worker_loop();
    panic!("worker loop ended: {outcome:?}");
}

fn call_async_on_a_worker_cpu() {
    // Callers must be members of the pool's group.
    tasklet::join_group(&GROUP);
    tasklet::start_cpu(1, worker_cpu).expect("start CPU 1");
    let start = platform().now_ns();
    while POOL.workers() == 0 {
        assert!(
            platform().now_ns() - start < 1_000_000_000,
            "worker CPU never came up"
        );
        tasklet::sleep(Duration::from_millis(1)).unwrap();
    }
    // A job that blocks its CPU (a busy wait standing in for a driver call) while a tasklet
    // here keeps counting.
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = {
        let ticks = ticks.clone();
        spawn(move || {
            while ticks.load(Acquire) < u64::MAX / 2 {
                ticks.fetch_add(1, AcqRel);
                if tasklet::sleep(Duration::from_micros(200)).is_err() {
                    break;
                }
            }
        })
    };
    let cpu = POOL.call_async(|| {
        let until = platform().now_ns() + 20_000_000;
        while platform().now_ns() < until {
            core::hint::spin_loop();
        }
        platform().cpu_index()
    });
    assert_eq!(cpu, Ok(1), "the job ran on the worker CPU");
    assert!(ticks.load(Acquire) > 5, "CPU 0 kept running tasklets");
    counter.kill().unwrap();
    assert_eq!(POOL.call_async(|| Err::<u8, u8>(7)), Ok(Err(7)));
    // Two slots: both taken by callers blocked on a slow job, a third call is refused.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            spawn(|| {
                POOL.call_async(|| {
                    let until = platform().now_ns() + 5_000_000;
                    while platform().now_ns() < until {
                        core::hint::spin_loop();
                    }
                })
            })
        })
        .collect();
    tasklet::schedule().unwrap();
    assert_eq!(POOL.call_async(|| ()), Err(CallError::Full));
    for caller in &slow {
        assert_eq!(caller.join(), Ok(Ok(())));
    }
}
