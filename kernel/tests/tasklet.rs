//! Tasklet and scheduler behaviour: run order, yielding, kill/throw, deadlock, stacks, watchdog.

use spindle::channel::Channel;
use spindle::scenarios::tasklets as scenarios;
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
    scenarios::round_robin_order(3, 2);
}

#[test]
fn main_and_a_tasklet_ping_pong_through_schedule() {
    scenarios::ping_pong_through_schedule(100);
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
    // c runs now where it stands; the caller stays runnable in its place, right after c in
    // the ring (checked against Stackless 3.7: conformance scenario remove_insert_run_reorder),
    // so main continues before a runs.
    c.run().unwrap();
    assert_eq!(entries(&trace), ["c"]);
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
    scenarios::kill_of_a_runnable_tasklet_returns_killed_and_runs_its_drops();
}

#[test]
fn kill_of_an_unstarted_tasklet_drops_its_closure_unrun() {
    scenarios::kill_of_an_unstarted_tasklet_drops_its_closure_unrun();
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
    let error = Thrown::new(3, "to main");
    let partner = tasklet::spawn(move || {
        tasklet::main().throw(error, true).unwrap();
        assert_eq!(tasklet::raised_count(), 1);
        for _ in 0..4 {
            tasklet::schedule().unwrap();
        }
    })
    .unwrap();
    assert_eq!(tasklet::schedule(), Err(TaskletError::Thrown(error)));
    assert_eq!(tasklet::raised_count(), 0);
    assert_eq!(tasklet::schedule(), Ok(()), "the error is taken once");
    tasklet::run().unwrap();
    assert_eq!(partner.result(), Some(Ok(())));
}

#[test]
fn an_error_raised_into_a_tasklet_that_finishes_without_taking_it_is_dropped() {
    // Its count goes with it, so yields afterwards can take the fast path again.
    // Its send completes, and main throws into it before it resumes from the switch to the
    // preferred receiver: the throw waits for its next operation, which never comes.
    let handoff = Arc::new(Channel::new());
    let sender = handoff.clone();
    let careless = tasklet::spawn(move || {
        sender.send(1).unwrap();
        assert_eq!(tasklet::raised_count(), 1);
    })
    .unwrap();
    assert_eq!(handoff.receive(), Ok(1));
    careless.throw(Thrown::new(4, "never taken"), true).unwrap();
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
    scenarios::throw_delivers_a_caller_error_into_a_sleeping_tasklet();
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
fn joiners_resume_in_join_order_and_killed_joiners_leave_the_queue() {
    let gate = Arc::new(Channel::<u32>::new());
    let target = Arc::new(
        tasklet::spawn({
            let gate = gate.clone();
            move || gate.receive().unwrap()
        })
        .unwrap(),
    );
    let outcomes = log();
    let joiners: Vec<_> = (0..5)
        .map(|index| {
            let (target, outcomes) = (target.clone(), outcomes.clone());
            Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || note(&outcomes, format!("{index}: {:?}", target.join())))
                .unwrap()
        })
        .collect();
    tasklet::run().unwrap();
    assert!(joiners.iter().all(|joiner| joiner.is_blocked()));
    // The first joiner, one in the middle and the last leave the queue of joiners.
    for killed in [0, 2, 4] {
        joiners[killed].kill().unwrap();
    }
    tasklet::run().unwrap();
    assert!(joiners[1].is_blocked() && joiners[3].is_blocked());
    gate.send(7).unwrap();
    tasklet::run().unwrap();
    let mut logged = entries(&outcomes);
    // The two left resume in the order they joined: the first takes the result.
    assert_eq!(logged.split_off(3), ["1: Ok(7)", "3: Err(Dead)"]);
    logged.sort();
    assert_eq!(
        logged,
        ["0: Err(Killed)", "2: Err(Killed)", "4: Err(Killed)"]
    );
    assert!(joiners.iter().all(|joiner| !joiner.is_alive()));
}

#[test]
fn blocking_the_last_runnable_tasklet_is_a_deadlock_error() {
    let forever = tasklet::spawn(|| 1).unwrap();
    forever.remove().unwrap();
    // main joins a paused tasklet that nothing will ever run.
    assert_eq!(forever.join(), Err(TaskletError::Deadlock));
    // The main tasklet alone pausing itself is revived at once, still scheduled (Stackless).
    assert_eq!(tasklet::schedule_remove(), Ok(()));
    assert!(tasklet::main().is_scheduled());
    // A tasklet that is the last runnable one while main blocks cannot pause itself.
    let last = tasklet::spawn(tasklet::schedule_remove).unwrap();
    assert_eq!(last.join(), Ok(Err(TaskletError::Deadlock)));
    forever.kill().unwrap();
}

#[test]
fn sleep_orders_wakeups_by_deadline() {
    // slow, fast, mid: fast, mid, slow.
    scenarios::sleep_wakes_in_deadline_order(&[30, 5, 15]);
}

#[test]
fn spawn_fails_cleanly_when_the_stack_budget_is_exhausted() {
    scenarios::spawn_fails_cleanly_when_the_stack_budget_is_exhausted(3, SMALL_STACK);
}

#[test]
fn ten_thousand_tasklets_alive_at_once() {
    scenarios::tasklets_alive_at_once(10_000, SMALL_STACK, |_| ());
}

#[test]
fn spilling_runs_recursion_far_deeper_than_the_tasklet_stack() {
    let stack = 16 * 1024;
    scenarios::spilling_runs_recursion_50x_deeper_than_the_stack(stack, 20_000);
    // 20,000 frames of well over 128 bytes each is far more than 50 stacks of 16 KiB.
    assert!(20_000 * 128 > 50 * stack);
}

#[test]
fn stack_overflow_is_detected_reported_and_the_kernel_stays_up() {
    scenarios::stack_overflow_is_reported_and_the_kernel_stays_up(16 * 1024);
}

#[test]
fn a_tasklet_found_overflowed_as_it_blocks_leaves_its_wait_queue() {
    scenarios::overflow_found_while_blocking_leaves_the_wait_queue(SMALL_STACK);
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

#[test]
fn next_prev_cpu_and_block_trap_describe_where_a_tasklet_is() {
    let a = tasklet::spawn(|| ()).unwrap();
    let b = Builder::new().paused().spawn(|| ()).unwrap();
    let main = tasklet::main();
    // The ring: main, a (appended at the end, just before main).
    assert_eq!(main.next().as_ref(), Some(a.tasklet()));
    assert_eq!(main.prev().as_ref(), Some(a.tasklet()));
    assert_eq!(a.next(), Some(main.clone()));
    assert_eq!(b.next(), None, "a paused tasklet is in no run queue");
    b.insert().unwrap();
    assert_eq!(a.next().as_ref(), Some(b.tasklet()));
    assert_eq!(b.prev().as_ref(), Some(a.tasklet()));
    assert_eq!(a.cpu(), main.cpu());
    assert!(!a.block_trap());
    a.set_block_trap(true);
    assert!(a.block_trap());
    tasklet::run().unwrap();
    assert_eq!(a.next(), None, "a dead tasklet is in no run queue");
    assert_eq!(
        main.next(),
        Some(main.clone()),
        "alone, main is its own neighbour"
    );
}

#[test]
fn flat_outcomes_read_the_same_whether_the_tasklet_started_or_not() {
    let started = tasklet::spawn(|| -> Result<u8, TaskletError> {
        tasklet::schedule()?;
        Ok(1)
    })
    .unwrap();
    tasklet::schedule().unwrap();
    let unstarted = Builder::new()
        .paused()
        .spawn(|| -> Result<u8, TaskletError> { Ok(2) })
        .unwrap();
    started.kill().unwrap();
    unstarted.kill().unwrap();
    assert_eq!(started.outcome(), Some(Err(TaskletError::Killed)));
    assert_eq!(unstarted.outcome(), Some(Err(TaskletError::Killed)));
    let finished = tasklet::spawn(|| -> Result<u8, TaskletError> { Ok(3) }).unwrap();
    assert_eq!(finished.join_flat(), Ok(3));
}

#[test]
fn set_atomic_returns_the_previous_state() {
    assert!(!tasklet::set_atomic(true));
    assert!(tasklet::set_atomic(true));
    assert_eq!(tasklet::current().atomic_depth(), 1);
    assert!(tasklet::set_atomic(false));
    assert!(!tasklet::set_atomic(false));
}

#[test]
fn unhandled_errors_reach_main_when_asked_as_in_stackless() {
    // Off (the default), a failure stays with its tasklet.
    let quiet = tasklet::spawn(|| panic!("kept in the result")).unwrap();
    assert_eq!(tasklet::run(), Ok(()));
    assert_eq!(quiet.result(), Some(Err(TaskletError::Panicked)));

    assert!(!tasklet::raise_unhandled_in_main(true));
    // A panic reaches run().
    let panicking = tasklet::spawn(|| panic!("unhandled")).unwrap();
    assert_eq!(tasklet::run(), Err(TaskletError::Panicked));
    assert_eq!(panicking.result(), Some(Err(TaskletError::Panicked)));
    // An error thrown before the tasklet ran wakes a blocked main tasklet.
    let channel = Channel::<u8>::new();
    let unstarted = Builder::new().paused().spawn(|| 1).unwrap();
    let thrown = Thrown::new(5, "never ran");
    unstarted.throw(thrown, true).unwrap();
    assert_eq!(channel.receive(), Err(TaskletError::Thrown(thrown)));
    assert_eq!(unstarted.result(), Some(Err(TaskletError::Thrown(thrown))));
    // A kill is no error, and neither is a body that returns its error.
    let killed = tasklet::spawn(|| 2).unwrap();
    killed.kill_pending().unwrap();
    let returned = tasklet::spawn(|| Err::<(), _>(TaskletError::Closed)).unwrap();
    assert_eq!(tasklet::run(), Ok(()));
    assert_eq!(killed.result(), Some(Err(TaskletError::Killed)));
    assert_eq!(returned.outcome(), Some(Err(TaskletError::Closed)));
    assert!(tasklet::raise_unhandled_in_main(false));
}
