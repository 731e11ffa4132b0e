//! Tasklet tests on the target: the real PowerPC64 switch, preemption by the decrementer, stacks.

use crate::{Suite, TargetTest};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use core::time::Duration;
use spindle::scenarios::tasklets as scenarios;
use spindle::tasklet::{self, Builder, TaskletError};

/// The tasklet suite.
pub const SUITE: Suite = Suite::new(
    "tasklets",
    &[
        TargetTest::new("registers_survive_a_switch", registers_survive_a_switch),
        TargetTest::new(
            "fresh_context_starts_with_cleared_registers",
            fresh_context_starts_with_cleared_registers,
        ),
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

fn fresh_context_starts_with_cleared_registers() {
    let mut stack = alloc::vec![0u8; 64 * 1024];
    if let Err(found) = spindle_arch::check_fresh_context_registers(&mut stack) {
        panic!("a fresh context found its callee-saved registers not cleared: {found:#x}");
    }
}

fn round_robin_order() {
    scenarios::round_robin_order(3, 2);
}

fn yield_ping_pong() {
    scenarios::ping_pong_through_schedule(1000);
}

fn kill_and_throw() {
    scenarios::kill_of_a_runnable_tasklet_returns_killed_and_runs_its_drops();
    scenarios::throw_delivers_a_caller_error_into_a_sleeping_tasklet();
    scenarios::kill_of_an_unstarted_tasklet_drops_its_closure_unrun();
}

fn deadlock_is_an_error() {
    let paused = Builder::new().paused().spawn(|| 1).unwrap();
    assert_eq!(paused.join(), Err(TaskletError::Deadlock));
    let channel = spindle::channel::Channel::<u32>::new();
    assert_eq!(channel.receive(), Err(TaskletError::Deadlock));
}

fn sleep_wakes_in_deadline_order() {
    scenarios::sleep_wakes_in_deadline_order(&[30, 10, 20]);
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
    assert_eq!(
        interrupted.as_ref(),
        Some(&*spinner),
        "the spinner was preempted"
    );
    assert!(
        irq::enabled(),
        "main resumed from the timer interrupt with interrupts masked"
    );
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

fn stack_overflow_is_reported() {
    scenarios::stack_overflow_is_reported_and_the_kernel_stays_up(8 * 1024);
}

fn overflow_found_while_blocking_leaves_the_wait_queue() {
    scenarios::overflow_found_while_blocking_leaves_the_wait_queue(8 * 1024);
}

fn spilling_recursion_50x_the_stack() {
    scenarios::spilling_runs_recursion_50x_deeper_than_the_stack(6 * 1024, 5_000);
}

fn ten_thousand_tasklets() {
    let heap = crate::env::get().heap_bytes;
    let per_tasklet = tasklet::MIN_STACK_BYTES + tasklet::CONTROL_BLOCK_BYTES + 128;
    assert!(
        heap > 10_000 * per_tasklet,
        "the heap ({heap} bytes) cannot hold 10,000 tasklets of {per_tasklet} bytes"
    );
    let limit = tasklet::stack_budget().0;
    tasklet::set_stack_budget(heap / 4 * 3);
    scenarios::tasklets_alive_at_once(10_000, tasklet::MIN_STACK_BYTES, |stacks| {
        spindle::kprintln!(
            "10,000 tasklets: {} bytes of stacks + {} bytes of control blocks ({} bytes each, stack {})",
            stacks,
            10_000 * tasklet::CONTROL_BLOCK_BYTES,
            stacks / 10_000 + tasklet::CONTROL_BLOCK_BYTES,
            tasklet::MIN_STACK_BYTES
        );
    });
    tasklet::set_stack_budget(limit);
}

fn budget_exhaustion_leaves_scheduler_usable() {
    scenarios::spawn_fails_cleanly_when_the_stack_budget_is_exhausted(2, 8192);
}
