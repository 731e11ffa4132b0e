//! Tasklets and the scheduler on one CPU, run by the host suite (`kernel/tests/tasklet.rs`) and
//! the on-target suite (`tests/src/tasklets.rs`): run order, yielding, kill and throw, sleeps,
//! stack overflow, spilling, many tasklets and the stack budget.

use crate::channel::Channel;
use crate::tasklet::{self, Builder, TaskletError, Thrown};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use core::time::Duration;

/// `tasklets` tasklets (ids 0, 1, ...) each note `(id, round)` and yield, `rounds` times: they
/// run in spawn order and their yields interleave. Main is the only tasklet before and after.
#[inline]
pub fn round_robin_order(tasklets: u32, rounds: u32) {
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    for id in 0..tasklets {
        let order = order.clone();
        tasklet::spawn(move || {
            for round in 0..rounds {
                order.lock().push((id, round));
                tasklet::schedule().expect("yield");
            }
        })
        .expect("spawn");
    }
    assert_eq!(tasklet::run_count(), tasklets as usize + 1);
    tasklet::run().expect("run the tasklets");
    let expected: Vec<_> = (0..rounds)
        .flat_map(|round| (0..tasklets).map(move |id| (id, round)))
        .collect();
    assert_eq!(*order.lock(), expected);
    assert_eq!(tasklet::run_count(), 1);
    assert_eq!(tasklet::live_count(), 1);
}

/// Main and one tasklet yield to each other `rounds` times, main checking the tasklet's count
/// after each of its yields; the tasklet's result is taken once.
#[inline]
pub fn ping_pong_through_schedule(rounds: u32) {
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let partner = tasklet::spawn(move || {
        for _ in 0..rounds {
            seen.fetch_add(1, Relaxed);
            tasklet::schedule().expect("yield");
        }
        "done"
    })
    .expect("spawn");
    for expected in 1..=rounds {
        tasklet::schedule().expect("yield");
        assert_eq!(count.load(Relaxed), expected);
    }
    tasklet::run().expect("run the partner");
    assert_eq!(partner.result(), Some(Ok("done")));
    assert_eq!(partner.result(), None, "a result is taken once");
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    #[inline]
    fn drop(&mut self) {
        self.0.store(true, Release);
    }
}

/// A kill of a runnable tasklet: its `schedule` returns `Killed`, it unwinds with `?` and
/// returns the error itself, and its locals are dropped.
#[inline]
pub fn kill_of_a_runnable_tasklet_returns_killed_and_runs_its_drops() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let victim = tasklet::spawn(move || -> Result<(), TaskletError> {
        let _flag = flag;
        loop {
            tasklet::schedule()?;
        }
    })
    .expect("spawn");
    tasklet::schedule().expect("let it start");
    victim.kill().expect("kill");
    assert!(!victim.is_alive());
    assert_eq!(victim.result(), Some(Ok(Err(TaskletError::Killed))));
    assert!(
        dropped.load(Acquire),
        "the killed tasklet's locals were dropped"
    );
}

/// A kill of a tasklet that never ran drops its closure (and what it captured) unrun.
#[inline]
pub fn kill_of_an_unstarted_tasklet_drops_its_closure_unrun() {
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let victim = tasklet::spawn(move || flag.store(true, Release)).expect("spawn");
    victim.kill().expect("kill");
    tasklet::run().expect("run");
    assert!(!ran.load(Acquire));
    assert_eq!(victim.result(), Some(Err(TaskletError::Killed)));
    assert_eq!(
        Arc::strong_count(&ran),
        1,
        "the closure's captures were dropped"
    );
}

/// An error thrown (not pending) into a sleeping tasklet ends its sleep with that error.
#[inline]
pub fn throw_delivers_a_caller_error_into_a_sleeping_tasklet() {
    let sleeper = tasklet::spawn(|| tasklet::sleep(Duration::from_secs(3600))).expect("spawn");
    tasklet::schedule().expect("let it sleep");
    assert!(sleeper.is_blocked());
    let error = Thrown::new(7, "wake up");
    sleeper.throw(error, false).expect("throw");
    assert_eq!(sleeper.result(), Some(Ok(Err(TaskletError::Thrown(error)))));
}

/// One tasklet a sleep of `millis[i]` milliseconds, all spawned at once: they wake in deadline
/// order (ties in spawn order).
#[inline]
pub fn sleep_wakes_in_deadline_order(millis: &[u64]) {
    let order = Arc::new(spin::Mutex::new(Vec::new()));
    for (index, &millis) in millis.iter().enumerate() {
        let order = order.clone();
        tasklet::spawn(move || {
            tasklet::sleep(Duration::from_millis(millis)).expect("sleep");
            order.lock().push(index);
        })
        .expect("spawn");
    }
    tasklet::run().expect("run the sleepers");
    let mut expected: Vec<usize> = (0..millis.len()).collect();
    expected.sort_by_key(|&index| millis[index]);
    assert_eq!(*order.lock(), expected);
}

/// Recurses until the stack guard stops it; every level switches, so the guard is checked
/// before the overrun gets far.
#[allow(
    unconditional_recursion,
    reason = "recurses until the stack guard stops it"
)]
#[inline]
pub(super) fn overflow(depth: u64) -> u64 {
    let pad = core::hint::black_box([depth; 32]);
    let _ = tasklet::schedule();
    pad[1] + overflow(depth + 1)
}

/// A tasklet on a `stack`-byte stack overflows it: its result is `StackOverflow`, and the
/// kernel runs tasklets afterwards.
#[inline]
pub fn stack_overflow_is_reported_and_the_kernel_stays_up(stack: usize) {
    let victim = Builder::new()
        .name("deep")
        .stack_size(stack)
        .spawn(|| overflow(0))
        .expect("spawn");
    tasklet::run().expect("run the victim");
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    let after = tasklet::spawn(|| "still running").expect("spawn after the overflow");
    tasklet::run().expect("run after the overflow");
    assert_eq!(after.result(), Some(Ok("still running")));
}

/// Uses the stack down to `margin` bytes above its usable end, then receives on `channel`
/// there, so that the receive itself runs past the end.
#[inline]
fn receive_near_the_end(channel: &Channel<u32>, margin: usize) -> Result<u32, TaskletError> {
    if tasklet::stack_remaining() > margin {
        let pad = core::hint::black_box([0u32; 16]);
        return receive_near_the_end(channel, margin).map(|value| value + pad[3]);
    }
    receive_in_a_frame_of_its_own(channel)
}

/// The receive, in a frame below its caller's (inlined, it could run in the caller's frame, at
/// the very end of the stack but not past it).
#[inline(never)]
fn receive_in_a_frame_of_its_own(channel: &Channel<u32>) -> Result<u32, TaskletError> {
    channel.receive()
}

/// A tasklet on a `stack`-byte stack is found overflowed as it blocks in a receive: it leaves
/// the channel's wait queue, and a live receiver gets what is sent next (not the abandoned one,
/// whose stack is ruined).
#[inline]
pub fn overflow_found_while_blocking_leaves_the_wait_queue(stack: usize) {
    // Leaked, so `'static`: the abandoned receiver is never unwound, and whatever it holds is
    // never dropped.
    let channel: &'static Channel<u32> = Box::leak(Box::new(Channel::new()));
    let victim = Builder::new()
        .name("deep receiver")
        .stack_size(stack)
        .spawn(move || receive_near_the_end(channel, 0))
        .expect("spawn");
    tasklet::run().expect("run the victim");
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    assert_eq!(
        channel.balance(),
        0,
        "the abandoned receiver is no longer waiting"
    );
    let receiver = tasklet::spawn(move || channel.receive()).expect("spawn");
    tasklet::schedule().expect("let the receiver block");
    channel.send(7).expect("send");
    tasklet::run().expect("run the receiver");
    assert_eq!(receiver.result(), Some(Ok(Ok(7))));
}

/// 1 + 2 + ... + `depth`, one spilled frame of some weight per term; at the deepest point,
/// records in `peak` the stack in use: the tasklet's stack plus every live spill segment.
#[inline]
fn spilled_sum(depth: u64, peak: &AtomicUsize) -> u64 {
    if depth == 0 {
        peak.fetch_max(tasklet::stack_budget().1, Relaxed);
        return 0;
    }
    let pad = core::hint::black_box([depth; 16]);
    let below = tasklet::spill(|| spilled_sum(depth - 1, peak)).expect("spill segment");
    pad[3] + below
}

/// A recursion `depth` deep on a `stack`-byte stack spills: it returns the right sum, used at
/// least 50 times the tasklet's stack, and every spill segment comes back.
#[inline]
pub fn spilling_runs_recursion_50x_deeper_than_the_stack(stack: usize, depth: u64) {
    let peak = Arc::new(AtomicUsize::new(0));
    let worker = {
        let peak = peak.clone();
        Builder::new()
            .stack_size(stack)
            .spawn(move || spilled_sum(depth, &peak))
            .expect("spawn")
    };
    tasklet::run().expect("run the recursion");
    assert_eq!(worker.result(), Some(Ok(super::triangle(depth))));
    let peak = peak.load(Relaxed);
    assert!(
        peak >= 50 * stack,
        "the recursion used only {peak} bytes of stack, not 50x {stack}"
    );
    assert_eq!(
        tasklet::stack_budget().1,
        0,
        "all spill segments were returned"
    );
}

/// `count` tasklets on `stack`-byte stacks, all alive at once (each yields before adding its
/// index): all run, and only main is left. `report` gets, before they run, the stack bytes they
/// took from the budget.
#[inline]
pub fn tasklets_alive_at_once(count: u64, stack: usize, report: impl FnOnce(usize)) {
    let total = Arc::new(AtomicU64::new(0));
    let budget_before = tasklet::stack_budget().1;
    for index in 0..count {
        let total = total.clone();
        Builder::new()
            .stack_size(stack)
            .spawn(move || {
                tasklet::schedule().expect("yield");
                total.fetch_add(index, Relaxed);
            })
            .expect("spawn");
    }
    assert_eq!(tasklet::live_count() as u64, count + 1);
    report(tasklet::stack_budget().1 - budget_before);
    tasklet::run().expect("run the tasklets");
    assert_eq!(total.load(Relaxed), count * count.saturating_sub(1) / 2);
    assert_eq!(tasklet::live_count(), 1);
}

/// With a stack budget that `fits` stacks of `stack` bytes: that many spawns succeed and the
/// next fails with `StackBudgetExhausted` (a stack below the minimum with `StackTooSmall`);
/// with the budget restored everything runs and the budget comes back.
#[inline]
pub fn spawn_fails_cleanly_when_the_stack_budget_is_exhausted(fits: usize, stack: usize) {
    let (limit, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use + fits * stack);
    let mut spawned = Vec::new();
    let failure = loop {
        let index = spawned.len();
        match Builder::new()
            .stack_size(stack)
            .spawn(move || tasklet::schedule().map(|()| index))
        {
            Ok(handle) => spawned.push(handle),
            Err(error) => break error,
        }
    };
    assert_eq!(failure, TaskletError::StackBudgetExhausted);
    assert_eq!(spawned.len(), fits);
    assert_eq!(
        Builder::new().stack_size(16).spawn(|| ()).err(),
        Some(TaskletError::StackTooSmall)
    );
    tasklet::set_stack_budget(limit);
    // The scheduler is still usable: everything runs and the budget comes back.
    tasklet::run().expect("run the spawned tasklets");
    for (index, handle) in spawned.iter().enumerate() {
        assert_eq!(handle.result(), Some(Ok(Ok(index))));
    }
    assert_eq!(tasklet::stack_budget().1, in_use);
}
