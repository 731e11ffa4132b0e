//! Tasklet and scheduler behaviour: run order, yielding, kill/throw, deadlock, stacks, watchdog.

use spindle::channel::Channel;
use spindle::tasklet::{self, Builder, TaskletError, Thrown};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<String>>>;

/// A small stack (never below the minimum, which unoptimised builds raise).
const SMALL_STACK: usize = if tasklet::MIN_STACK_BYTES > 8 * 1024 {
    tasklet::MIN_STACK_BYTES
} else {
    8 * 1024
};

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn note(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

#[test]
fn round_robin_runs_tasklets_in_spawn_order_and_interleaves_yields() {
    let trace = log();
    for name in ["a", "b", "c"] {
        let trace = trace.clone();
        tasklet::spawn(move || {
            for round in 0..2 {
                note(&trace, format!("{name}{round}"));
                tasklet::schedule().unwrap();
            }
        })
        .unwrap();
    }
    assert_eq!(tasklet::run_count(), 4);
    tasklet::run().unwrap();
    assert_eq!(entries(&trace), ["a0", "b0", "c0", "a1", "b1", "c1"]);
    assert_eq!(tasklet::run_count(), 1);
    assert_eq!(tasklet::live_count(), 1);
}

#[test]
fn main_and_a_tasklet_ping_pong_through_schedule() {
    let counter = Arc::new(Mutex::new(0u32));
    let seen = counter.clone();
    let pinger = tasklet::spawn(move || {
        for _ in 0..100 {
            *seen.lock().unwrap() += 1;
            tasklet::schedule().unwrap();
        }
        "done"
    })
    .unwrap();
    for expected in 1..=100 {
        tasklet::schedule().unwrap();
        assert_eq!(*counter.lock().unwrap(), expected);
    }
    tasklet::run().unwrap();
    assert_eq!(pinger.result(), Some(Ok("done")));
    assert_eq!(pinger.result(), None, "a result is taken once");
}

#[test]
fn remove_insert_and_run_reorder_the_ring() {
    let trace = log();
    let spawn_logger = |name: &'static str| {
        let trace = trace.clone();
        Builder::new()
            .name(name)
            .spawn(move || {
                note(&trace, name);
            })
            .unwrap()
    };
    let a = spawn_logger("a");
    let b = spawn_logger("b");
    let c = spawn_logger("c");
    b.remove().unwrap();
    assert!(b.is_paused() && !b.is_scheduled());
    // c runs now; the caller stays runnable but ends up last (Stackless), so a runs before
    // main continues.
    c.run().unwrap();
    assert_eq!(entries(&trace), ["c", "a"]);
    b.insert().unwrap();
    tasklet::run().unwrap();
    assert_eq!(entries(&trace), ["c", "a", "b"]);
    assert!(!a.is_alive() && !b.is_alive() && !c.is_alive());
    assert_eq!(a.name(), "a");
}

#[test]
fn attributes_describe_the_tasklet() {
    let main = tasklet::main();
    assert!(main.is_main() && main.is_current() && main.is_alive());
    let worker = Builder::new()
        .name("worker")
        .paused()
        .spawn(|| tasklet::current().is_current())
        .unwrap();
    assert!(worker.is_paused() && !worker.is_main() && !worker.is_current());
    assert_eq!(worker.blocked(), tasklet::Blocked::No);
    worker.insert().unwrap();
    assert!(worker.is_scheduled());
    tasklet::run().unwrap();
    assert_eq!(worker.result(), Some(Ok(true)));
    assert!(!worker.is_alive());
}

#[test]
fn kill_of_a_runnable_tasklet_returns_killed_from_its_schedule_and_runs_its_drops() {
    struct Flag(Arc<Mutex<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = true;
        }
    }
    let dropped = Arc::new(Mutex::new(false));
    let flag = Flag(dropped.clone());
    let victim = tasklet::spawn(move || -> Result<(), TaskletError> {
        let _flag = flag;
        loop {
            tasklet::schedule()?;
        }
    })
    .unwrap();
    tasklet::schedule().unwrap(); // let it start
    victim.kill().unwrap();
    assert!(!victim.is_alive());
    // The tasklet unwound with `?` and returned the error itself.
    assert_eq!(victim.result(), Some(Ok(Err(TaskletError::Killed))));
    assert!(
        *dropped.lock().unwrap(),
        "the killed tasklet's locals were dropped"
    );
}

#[test]
fn kill_of_an_unstarted_tasklet_drops_its_closure_unrun() {
    let ran = Arc::new(Mutex::new(false));
    let flag = ran.clone();
    let victim = tasklet::spawn(move || *flag.lock().unwrap() = true).unwrap();
    victim.kill().unwrap();
    tasklet::run().unwrap();
    assert!(!*ran.lock().unwrap());
    assert_eq!(victim.result(), Some(Err(TaskletError::Killed)));
    assert_eq!(
        Arc::strong_count(&ran),
        1,
        "the closure's captures were dropped"
    );
}

#[test]
fn pending_kill_is_raised_at_the_next_scheduling_point() {
    let trace = log();
    let inner = trace.clone();
    let victim = tasklet::spawn(move || -> Result<(), TaskletError> {
        note(&inner, "started");
        tasklet::schedule()?;
        note(&inner, "unreachable");
        Ok(())
    })
    .unwrap();
    tasklet::schedule().unwrap();
    victim.kill_pending().unwrap();
    assert!(victim.is_alive(), "pending kill lets the caller continue");
    tasklet::run().unwrap();
    assert_eq!(entries(&trace), ["started"]);
    assert_eq!(victim.result(), Some(Ok(Err(TaskletError::Killed))));
}

#[test]
fn an_error_raised_into_the_running_tasklet_ends_its_next_yield_once() {
    // The yield's fast path reads no tasklet's raised error, only the scheduler's count of them.
    let partner = tasklet::spawn(|| {
        for _ in 0..4 {
            tasklet::schedule().unwrap();
        }
    })
    .unwrap();
    tasklet::schedule().unwrap();
    let error = Thrown::new(3, "to myself");
    tasklet::current().throw(error, true).unwrap();
    assert_eq!(tasklet::raised_count(), 1);
    assert_eq!(tasklet::schedule(), Err(TaskletError::Thrown(error)));
    assert_eq!(tasklet::raised_count(), 0);
    assert_eq!(tasklet::schedule(), Ok(()), "the error is taken once");
    tasklet::run().unwrap();
    assert_eq!(partner.result(), Some(Ok(())));
}

#[test]
fn an_error_raised_into_a_tasklet_that_finishes_without_taking_it_is_dropped() {
    // Its count goes with it, so yields afterwards can take the fast path again.
    let careless = tasklet::spawn(|| {
        tasklet::current()
            .throw(Thrown::new(4, "never taken"), true)
            .unwrap();
        assert_eq!(tasklet::raised_count(), 1);
    })
    .unwrap();
    let partner = tasklet::spawn(|| {
        for _ in 0..3 {
            tasklet::schedule().unwrap();
        }
    })
    .unwrap();
    for _ in 0..3 {
        assert_eq!(tasklet::schedule(), Ok(()));
    }
    tasklet::run().unwrap();
    assert_eq!(careless.result(), Some(Ok(())));
    assert_eq!(tasklet::raised_count(), 0);
    assert_eq!(partner.result(), Some(Ok(())));
}

#[test]
fn throw_delivers_a_caller_error_into_a_sleeping_tasklet() {
    let sleeper = tasklet::spawn(|| tasklet::sleep(Duration::from_secs(3600))).unwrap();
    tasklet::schedule().unwrap();
    assert!(sleeper.is_blocked());
    let error = Thrown::new(7, "wake up");
    sleeper.throw(error, false).unwrap();
    assert_eq!(sleeper.result(), Some(Ok(Err(TaskletError::Thrown(error)))));
}

#[test]
fn join_blocks_until_the_tasklet_finishes() {
    let worker = tasklet::spawn(|| {
        for _ in 0..5 {
            tasklet::schedule().unwrap();
        }
        42
    })
    .unwrap();
    assert_eq!(worker.join(), Ok(42));
}

#[test]
fn blocking_the_last_runnable_tasklet_is_a_deadlock_error() {
    let forever = tasklet::spawn(|| 1).unwrap();
    forever.remove().unwrap();
    // main joins a paused tasklet that nothing will ever run.
    assert_eq!(forever.join(), Err(TaskletError::Deadlock));
    assert_eq!(
        tasklet::schedule_remove(),
        Err(TaskletError::NothingRunnable)
    );
    forever.kill().unwrap();
}

#[test]
fn sleep_orders_wakeups_by_deadline() {
    let trace = log();
    for (name, millis) in [("slow", 30u64), ("fast", 5), ("mid", 15)] {
        let trace = trace.clone();
        tasklet::spawn(move || {
            tasklet::sleep(Duration::from_millis(millis)).unwrap();
            note(&trace, name);
        })
        .unwrap();
    }
    tasklet::run().unwrap();
    assert_eq!(entries(&trace), ["fast", "mid", "slow"]);
}

#[test]
fn spawn_fails_cleanly_when_the_stack_budget_is_exhausted() {
    let (limit, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use + 3 * SMALL_STACK);
    let mut spawned = Vec::new();
    let failure = loop {
        match Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(|| tasklet::schedule().is_ok())
        {
            Ok(handle) => spawned.push(handle),
            Err(error) => break error,
        }
    };
    assert_eq!(failure, TaskletError::StackBudgetExhausted);
    assert_eq!(spawned.len(), 3);
    assert_eq!(
        Builder::new().stack_size(16).spawn(|| ()).err(),
        Some(TaskletError::StackTooSmall)
    );
    tasklet::set_stack_budget(limit);
    // The scheduler is still usable: everything runs and the budget comes back.
    tasklet::run().unwrap();
    assert!(spawned
        .iter()
        .all(|handle| handle.result() == Some(Ok(true))));
    assert_eq!(tasklet::stack_budget().1, in_use);
}

#[test]
fn ten_thousand_tasklets_alive_at_once() {
    let total = Arc::new(Mutex::new(0u64));
    for index in 0..10_000u64 {
        let total = total.clone();
        Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                tasklet::schedule().unwrap();
                *total.lock().unwrap() += index;
            })
            .unwrap();
    }
    assert_eq!(tasklet::live_count(), 10_001);
    tasklet::run().unwrap();
    assert_eq!(*total.lock().unwrap(), 9_999 * 10_000 / 2);
    assert_eq!(tasklet::live_count(), 1);
}

fn depth_sum(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    // A frame with some weight, so the recursion really needs stack.
    let pad = std::hint::black_box([depth; 16]);
    let below = tasklet::spill(|| depth_sum(depth - 1)).expect("spill segment");
    pad[3] + below
}

#[test]
fn spilling_runs_recursion_far_deeper_than_the_tasklet_stack() {
    let stack = 16 * 1024;
    let worker = Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let sum = depth_sum(20_000);
            (sum, tasklet::stack_remaining())
        })
        .unwrap();
    tasklet::run().unwrap();
    let (sum, _) = worker.result().unwrap().unwrap();
    assert_eq!(sum, 20_000 * 20_001 / 2);
    // 20,000 frames of well over 128 bytes each is far more than 50 stacks of 16 KiB.
    assert!(20_000 * 128 > 50 * stack);
    assert_eq!(
        tasklet::stack_budget().1,
        0,
        "all spill segments were returned"
    );
}

#[allow(
    unconditional_recursion,
    reason = "recurses until the stack guard stops it"
)]
fn overflow(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 32]);
    // Every level switches, so the guard is checked before the overrun gets far.
    let _ = tasklet::schedule();
    pad[1] + overflow(depth + 1)
}

#[test]
fn stack_overflow_is_detected_reported_and_the_kernel_stays_up() {
    let victim = Builder::new()
        .name("deep")
        .stack_size(16 * 1024)
        .spawn(|| overflow(0))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    let after = tasklet::spawn(|| "still running").unwrap();
    tasklet::run().unwrap();
    assert_eq!(after.result(), Some(Ok("still running")));
}

/// Uses the stack down to `margin` bytes above its usable end, then receives on `channel`
/// there, so that the receive itself runs past the end.
fn receive_near_the_end(channel: &Channel<u32>, margin: usize) -> Result<u32, TaskletError> {
    if tasklet::stack_remaining() > margin {
        let pad = std::hint::black_box([0u32; 16]);
        return receive_near_the_end(channel, margin).map(|value| value + pad[3]);
    }
    channel.receive()
}

#[test]
fn a_tasklet_found_overflowed_as_it_blocks_leaves_its_wait_queue() {
    let channel: &'static Channel<u32> = Box::leak(Box::new(Channel::new()));
    let victim = Builder::new()
        .name("deep receiver")
        .stack_size(SMALL_STACK)
        .spawn(move || receive_near_the_end(channel, 128))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    assert_eq!(
        channel.balance(),
        0,
        "the abandoned receiver is no longer waiting"
    );
    // A live receiver gets what is sent next, not the abandoned one (its stack is ruined).
    let receiver = tasklet::spawn(move || channel.receive()).unwrap();
    tasklet::schedule().unwrap();
    channel.send(7).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok(7))));
}

#[test]
fn watchdog_interrupts_a_runaway_tasklet_at_check_points_but_not_inside_atomic() {
    let runaway = Builder::new()
        .name("runaway")
        .spawn(|| loop {
            tasklet::checkpoint();
        })
        .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(interrupted.as_ref(), Some(&*runaway));
    assert!(runaway.is_paused());
    runaway.kill_forced().unwrap();
    assert_eq!(runaway.result(), Some(Err(TaskletError::Killed)));

    let section_done = Arc::new(Mutex::new(false));
    let done = section_done.clone();
    let atomic_worker = tasklet::spawn(move || {
        tasklet::atomic(|| {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(40) {
                tasklet::checkpoint();
            }
            *done.lock().unwrap() = true;
        });
        // The watchdog fired inside the section: it takes effect right after it.
        tasklet::checkpoint();
        "finished"
    })
    .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(5))).unwrap();
    assert!(
        *section_done.lock().unwrap(),
        "the atomic section ran to its end"
    );
    assert_eq!(interrupted.as_ref(), Some(&*atomic_worker));
    atomic_worker.insert().unwrap();
    tasklet::run().unwrap();
    assert_eq!(atomic_worker.result(), Some(Ok("finished")));
}

#[test]
fn a_kill_while_interrupted_at_the_start_of_a_blocking_call_ends_that_call() {
    // The watchdog takes the worker at the check point its receive starts with; the kill
    // raised while it is out must end that receive, not wait for a sender that never comes.
    let channel: &'static Channel<u32> = Box::leak(Box::new(Channel::new()));
    let worker = tasklet::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(20) {}
        channel.receive()
    })
    .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(interrupted.as_ref(), Some(&*worker));
    worker.kill().unwrap();
    assert_eq!(worker.result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(tasklet::raised_count(), 0);
}

#[test]
fn a_panicking_tasklet_reports_panicked_and_others_go_on() {
    // The host's panic machinery (message, backtrace) needs a roomy stack.
    let bad = Builder::new()
        .stack_size(1 << 20)
        .spawn(|| -> u32 { panic!("boom") })
        .unwrap();
    let good = tasklet::spawn(|| 5u32).unwrap();
    tasklet::run().unwrap();
    assert_eq!(bad.result(), Some(Err(TaskletError::Panicked)));
    assert_eq!(good.result(), Some(Ok(5)));
}

#[test]
fn high_water_mark_grows_with_use() {
    fn pause() {
        tasklet::schedule().unwrap();
    }
    let shallow = Builder::new().stack_size(64 * 1024).spawn(pause).unwrap();
    let deep = Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let big = std::hint::black_box([7u8; 16 * 1024]);
            pause();
            big[5]
        })
        .unwrap();
    tasklet::schedule().unwrap(); // both run up to their pause
    let (shallow_use, deep_use) = (shallow.stack_high_water(), deep.stack_high_water());
    assert!(
        shallow_use > 0 && shallow_use < 8 * 1024,
        "shallow used {shallow_use}"
    );
    assert!(deep_use >= 16 * 1024, "deep used {deep_use}");
    assert!(deep_use <= deep.stack_size());
    tasklet::run().unwrap();
    assert_eq!(deep.result(), Some(Ok(7)));
}

#[test]
fn min_stack_holds_a_tasklet_that_sleeps_yields_and_receives() {
    let channel = Arc::new(spindle::channel::Channel::<u32>::new());
    let receiving = {
        let channel = channel.clone();
        Builder::new()
            .stack_size(tasklet::MIN_STACK_BYTES)
            .spawn(move || channel.receive().is_ok())
            .unwrap()
    };
    let sleeper = Builder::new()
        .stack_size(tasklet::MIN_STACK_BYTES)
        .spawn(|| tasklet::sleep(Duration::from_millis(1)).is_ok() && tasklet::schedule().is_ok())
        .unwrap();
    tasklet::schedule().unwrap();
    channel.send(1).unwrap();
    tasklet::run().unwrap();
    assert_eq!(sleeper.result(), Some(Ok(true)));
    assert_eq!(receiving.result(), Some(Ok(true)));
}
