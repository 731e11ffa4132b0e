//! Tasklet tests on the target: the real PowerPC64 switch, preemption by the decrementer, stacks.

use crate::{Suite, TargetTest};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use core::time::Duration;
use spindle::channel::Channel;
use spindle::tasklet::{self, Builder, TaskletError, Thrown};

/// The tasklet suite.
pub const SUITE: Suite = Suite::new(
    "tasklets",
    &[
        TargetTest::new("registers_survive_a_switch", registers_survive_a_switch),
        TargetTest::new("round_robin_order", round_robin_order),
        TargetTest::new("yield_ping_pong", yield_ping_pong),
        TargetTest::new("kill_and_throw", kill_and_throw),
        TargetTest::new("deadlock_is_an_error", deadlock_is_an_error),
        TargetTest::new(
            "sleep_wakes_in_deadline_order",
            sleep_wakes_in_deadline_order,
        ),
        TargetTest::new(
            "watchdog_preempts_a_runaway_loop",
            watchdog_preempts_a_runaway_loop,
        ),
        TargetTest::new(
            "atomic_holds_off_the_watchdog",
            atomic_holds_off_the_watchdog,
        ),
        TargetTest::new(
            "preemption_leaves_interrupts_enabled",
            preemption_leaves_interrupts_enabled,
        ),
        TargetTest::new("stack_overflow_is_reported", stack_overflow_is_reported),
        TargetTest::new(
            "overflow_found_while_blocking_leaves_the_wait_queue",
            overflow_found_while_blocking_leaves_the_wait_queue,
        ),
        TargetTest::new(
            "spilling_recursion_50x_the_stack",
            spilling_recursion_50x_the_stack,
        ),
        TargetTest::new("ten_thousand_tasklets", ten_thousand_tasklets),
        TargetTest::new(
            "budget_exhaustion_leaves_scheduler_usable",
            budget_exhaustion_leaves_scheduler_usable,
        ),
    ],
);

fn registers_survive_a_switch() {
    let mut stack = alloc::vec![0u8; 64 * 1024];
    if let Err((round, mask)) = spindle_arch::check_register_preservation(&mut stack, 3) {
        panic!("round {round}: clobbered registers, mask {mask:#x}");
    }
}

fn round_robin_order() {
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    for id in 0..3u32 {
        let order = order.clone();
        tasklet::spawn(move || {
            for round in 0..2 {
                order.lock().push(id * 10 + round);
                tasklet::schedule().unwrap();
            }
        })
        .unwrap();
    }
    tasklet::run().unwrap();
    assert_eq!(*order.lock(), [0, 10, 20, 1, 11, 21]);
}

fn yield_ping_pong() {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let partner = tasklet::spawn(move || {
        for _ in 0..1000 {
            seen.fetch_add(1, Relaxed);
            tasklet::schedule().unwrap();
        }
    })
    .unwrap();
    for expected in 1..=1000 {
        tasklet::schedule().unwrap();
        assert_eq!(count.load(Relaxed), expected);
    }
    tasklet::run().unwrap();
    assert_eq!(partner.result(), Some(Ok(())));
}

fn kill_and_throw() {
    let looping = tasklet::spawn(|| -> Result<(), TaskletError> {
        loop {
            tasklet::schedule()?;
        }
    })
    .unwrap();
    tasklet::schedule().unwrap();
    looping.kill().unwrap();
    assert_eq!(looping.result(), Some(Ok(Err(TaskletError::Killed))));

    let sleeper = tasklet::spawn(|| tasklet::sleep(Duration::from_secs(60))).unwrap();
    tasklet::schedule().unwrap();
    let error = Thrown::new(3, "thrown on target");
    sleeper.throw(error, false).unwrap();
    assert_eq!(sleeper.result(), Some(Ok(Err(TaskletError::Thrown(error)))));

    let unstarted = tasklet::spawn(|| 1).unwrap();
    unstarted.kill().unwrap();
    assert_eq!(unstarted.result(), Some(Err(TaskletError::Killed)));
}

fn deadlock_is_an_error() {
    let paused = Builder::new().paused().spawn(|| 1).unwrap();
    assert_eq!(paused.join(), Err(TaskletError::Deadlock));
    let channel = spindle::channel::Channel::<u32>::new();
    assert_eq!(channel.receive(), Err(TaskletError::Deadlock));
}

fn sleep_wakes_in_deadline_order() {
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    for (id, millis) in [(0u32, 30u64), (1, 10), (2, 20)] {
        let order = order.clone();
        tasklet::spawn(move || {
            tasklet::sleep(Duration::from_millis(millis)).unwrap();
            order.lock().push(id);
        })
        .unwrap();
    }
    tasklet::run().unwrap();
    assert_eq!(*order.lock(), [1, 2, 0]);
}

fn watchdog_preempts_a_runaway_loop() {
    let spins = Arc::new(AtomicU64::new(0));
    let counter = spins.clone();
    // No check points at all: only the decrementer can take the CPU back.
    let runaway = Builder::new()
        .name("runaway")
        .spawn(move || loop {
            counter.fetch_add(1, Relaxed);
        })
        .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(
        interrupted.as_ref(),
        Some(&*runaway),
        "the watchdog returned the runaway tasklet"
    );
    assert!(
        spins.load(Relaxed) > 0,
        "the runaway ran before being interrupted"
    );
    assert!(runaway.is_paused());
    runaway.kill_forced().unwrap();
    assert!(!runaway.is_alive());
    // The scheduler is healthy afterwards.
    let after = tasklet::spawn(|| 7).unwrap();
    tasklet::run().unwrap();
    assert_eq!(after.result(), Some(Ok(7)));
}

fn atomic_holds_off_the_watchdog() {
    static SECTION_DONE: AtomicBool = AtomicBool::new(false);
    let worker = tasklet::spawn(|| {
        tasklet::atomic(|| {
            let start = spindle::platform::platform().now_ns();
            while spindle::platform::platform().now_ns() - start < 40_000_000 {
                core::hint::spin_loop();
            }
            SECTION_DONE.store(true, Release);
        });
        // Interrupted right after the section, where the watchdog takes effect.
        loop {
            core::hint::spin_loop();
        }
    })
    .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(5))).unwrap();
    assert!(
        SECTION_DONE.load(Acquire),
        "the atomic section was interrupted"
    );
    assert_eq!(interrupted.as_ref(), Some(&*worker));
    worker.kill_forced().unwrap();
}

/// The switch does not carry MSR[EE]: the preemption path must hand main interrupts enabled,
/// and the preempted tasklet must get them back when it resumes (through the handler's `rfid`).
fn preemption_leaves_interrupts_enabled() {
    use spindle_arch::powerpc64::irq;
    static STOP: AtomicBool = AtomicBool::new(false);
    static ENABLED_AFTER_RESUME: AtomicBool = AtomicBool::new(false);
    let spinner = tasklet::spawn(|| {
        while !STOP.load(Acquire) {
            core::hint::spin_loop();
        }
        ENABLED_AFTER_RESUME.store(irq::enabled(), Release);
    })
    .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(interrupted.as_ref(), Some(&*spinner), "the spinner was preempted");
    assert!(irq::enabled(), "main resumed from the timer interrupt with interrupts masked");
    STOP.store(true, Release);
    spinner.insert().unwrap();
    tasklet::run().unwrap();
    assert!(!spinner.is_alive());
    assert!(
        ENABLED_AFTER_RESUME.load(Acquire),
        "the preempted tasklet resumed with interrupts masked"
    );
    assert!(irq::enabled());
    // Ticks still arrive: a sleep ends.
    tasklet::spawn(|| tasklet::sleep(Duration::from_millis(2)).unwrap()).unwrap();
    tasklet::run().unwrap();
}

#[allow(
    unconditional_recursion,
    reason = "recurses until the stack guard stops it"
)]
fn overflow(depth: u64) -> u64 {
    let pad = core::hint::black_box([depth; 32]);
    let _ = tasklet::schedule();
    pad[1] + overflow(depth + 1)
}

fn stack_overflow_is_reported() {
    let victim = Builder::new()
        .name("deep")
        .stack_size(8 * 1024)
        .spawn(|| overflow(0))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    let after = tasklet::spawn(|| "kernel still up").unwrap();
    tasklet::run().unwrap();
    assert_eq!(after.result(), Some(Ok("kernel still up")));
}

static DEEP_RECEIVES: Channel<u32> = Channel::new();

/// Uses the stack down to `margin` bytes above its usable end, then receives there, so that
/// the receive itself runs past the end.
fn receive_near_the_end(margin: usize) -> Result<u32, TaskletError> {
    if tasklet::stack_remaining() > margin {
        let pad = core::hint::black_box([0u32; 16]);
        return receive_near_the_end(margin).map(|value| value + pad[3]);
    }
    DEEP_RECEIVES.receive()
}

fn overflow_found_while_blocking_leaves_the_wait_queue() {
    let victim = Builder::new()
        .name("deep receiver")
        .stack_size(8 * 1024)
        .spawn(|| receive_near_the_end(128))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    assert_eq!(DEEP_RECEIVES.balance(), 0, "the abandoned receiver still waits");
    let receiver = tasklet::spawn(|| DEEP_RECEIVES.receive()).unwrap();
    tasklet::schedule().unwrap();
    DEEP_RECEIVES.send(7).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok(7))));
}

static PEAK_STACK_BYTES: AtomicU64 = AtomicU64::new(0);

fn deep_sum(depth: u64) -> u64 {
    if depth == 0 {
        // The deepest point: the tasklet's stack plus every live spill segment.
        PEAK_STACK_BYTES.fetch_max(tasklet::stack_budget().1 as u64, Relaxed);
        return 0;
    }
    let pad = core::hint::black_box([depth; 8]);
    pad[2] + tasklet::spill(|| deep_sum(depth - 1)).expect("spill segment")
}

fn spilling_recursion_50x_the_stack() {
    const STACK: usize = 6 * 1024;
    const DEPTH: u64 = 5_000;
    let worker = Builder::new()
        .stack_size(STACK)
        .spawn(|| deep_sum(DEPTH))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(worker.result(), Some(Ok(DEPTH * (DEPTH + 1) / 2)));
    let peak = PEAK_STACK_BYTES.load(Relaxed) as usize;
    assert!(
        peak >= 50 * STACK,
        "the recursion used only {peak} bytes of stack, not 50x {STACK}"
    );
    assert_eq!(tasklet::stack_budget().1, 0, "spill segments returned");
}

fn ten_thousand_tasklets() {
    let total = Arc::new(AtomicU64::new(0));
    let heap = crate::env::get().heap_bytes;
    let per_tasklet = tasklet::MIN_STACK_BYTES + tasklet::CONTROL_BLOCK_BYTES + 128;
    assert!(
        heap > 10_000 * per_tasklet,
        "the heap ({heap} bytes) cannot hold 10,000 tasklets of {per_tasklet} bytes"
    );
    let (limit, budget_before) = tasklet::stack_budget();
    tasklet::set_stack_budget(heap / 4 * 3);
    for index in 0..10_000u64 {
        let total = total.clone();
        Builder::new()
            .stack_size(tasklet::MIN_STACK_BYTES)
            .spawn(move || {
                tasklet::schedule().unwrap();
                total.fetch_add(index, Relaxed);
            })
            .unwrap();
    }
    assert_eq!(tasklet::live_count(), 10_001);
    let stacks = tasklet::stack_budget().1 - budget_before;
    spindle::kprintln!(
        "10,000 tasklets: {} bytes of stacks + {} bytes of control blocks ({} bytes each, stack {})",
        stacks,
        10_000 * tasklet::CONTROL_BLOCK_BYTES,
        stacks / 10_000 + tasklet::CONTROL_BLOCK_BYTES,
        tasklet::MIN_STACK_BYTES
    );
    tasklet::run().unwrap();
    assert_eq!(total.load(Relaxed), 9_999 * 10_000 / 2);
    assert_eq!(tasklet::live_count(), 1);
    tasklet::set_stack_budget(limit);
}

fn budget_exhaustion_leaves_scheduler_usable() {
    let (limit, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use + 2 * 8192);
    let first = Builder::new().stack_size(8192).spawn(|| 1).unwrap();
    let second = Builder::new().stack_size(8192).spawn(|| 2).unwrap();
    assert_eq!(
        Builder::new().stack_size(8192).spawn(|| 3).err(),
        Some(TaskletError::StackBudgetExhausted)
    );
    tasklet::set_stack_budget(limit);
    tasklet::run().unwrap();
    assert_eq!(
        (first.result(), second.result()),
        (Some(Ok(1)), Some(Ok(2)))
    );
}
