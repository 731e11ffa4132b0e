//! The checker can fail: mutation tests break the model in the ways the real protocol avoids
//! (non-sticky wake-ups, a deadlock check ignoring `in_flight` or `stuck`, the check and the stuck
//! count under separate lock acquisitions, a leave that wakes nobody, a cancel that ignores
//! whether the waiter is still queued) and check that the checker catches each, and that it
//! catches an in-flight accounting that leaks (a home that leaves its group with a wake-up on its
//! way keeps the group from ever declaring deadlock).
//!
//! A [`Mutation`] is switched on by the explorer's configuration (`Config::mutation`); the steps
//! of the model it breaks ask `Model::mutated`.

use crate::channel_cases::{WAKE_VS_BLOCK, WAKE_VS_KILL, WAKE_VS_TIMEOUT};
use crate::deadlock_cases::{
    FLOW_3, HOME_LEAVES_WITH_WAKE_IN_FLIGHT, PARTIAL_DEADLOCK_3, PING_PONG, TRUE_DEADLOCK_3,
};
use crate::explorer::explore;
use crate::model::Config;
use crate::scenario::Scenario;

/// Deliberate breakages of the model, to show the checker catches them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mutation {
    /// `wake_cpu` only ends an idle already in progress (the real one is sticky).
    NonStickyWake,
    /// `deadlocked` ignores `in_flight`.
    DeadlockIgnoresInFlight,
    /// `deadlocked` ignores `stuck` and `members`.
    DeadlockIgnoresStuck,
    /// `cancel_wait` succeeds even when a waker already took the tasklet out of the queue.
    CancelIgnoresQueue,
    /// The deadlock check and counting oneself stuck take the group lock separately (the real
    /// protocol does both under one acquisition), so CPUs blocking at once can all see
    /// `stuck + 1 < members`.
    SplitCheckAndCount,
    /// `CpuGroup::leave` does not wake the stuck members.
    LeaveWithoutWake,
    /// An in-flight accounting that leaks when a home leaves its group (the real one is checked
    /// by `deadlock_cases::in_flight_follows_a_home_that_leaves_the_group`): `inbox_push` charges
    /// `in_flight` to the home's group before setting `Waking`, outside the inbox lock;
    /// `drain_inbox` discharges it after inserting; `leave_group` does not carry pending
    /// wake-ups' count.
    UncarriedInFlight,
}

// ---- the checker can fail ----------------------------------------------------------------------

/// Explores the scenarios with `mutation` until one fails, and checks it fails for `needle`.
fn expect_violation(mutation: Mutation, ticks: bool, scenarios: &[&Scenario], needle: &str) {
    let config = Config {
        ticks,
        mutation: Some(mutation),
    };
    for scenario in scenarios {
        if let Err(violation) = explore(scenario, config) {
            let text = format!("{violation:?}");
            assert!(
                text.contains(needle),
                "{mutation:?} caught, but not as {needle:?}:\n{text}"
            );
            println!(
                "{mutation:?} caught in {}: {}",
                scenario.name, violation.message
            );
            return;
        }
    }
    panic!("mutation {mutation:?} was not caught");
}

#[test]
fn checker_catches_a_lost_wake_up() {
    // A wake_cpu that only ends an idle already in progress loses the wake-up that lands between
    // `idle`'s inbox check and the platform idle: the CPU then idles for good with inbox work.
    expect_violation(
        Mutation::NonStickyWake,
        false,
        &[&WAKE_VS_BLOCK, &PING_PONG],
        "idles for good with work to do",
    );
}

#[test]
fn checker_catches_deadlock_declared_with_a_wake_up_in_flight() {
    expect_violation(
        Mutation::DeadlockIgnoresInFlight,
        true,
        &[&PING_PONG, &FLOW_3],
        "declared deadlock",
    );
}

#[test]
fn checker_catches_deadlock_declared_while_another_cpu_runs() {
    expect_violation(
        Mutation::DeadlockIgnoresStuck,
        true,
        &[&WAKE_VS_BLOCK],
        "declared deadlock",
    );
}

/// The deadlock check and the stuck count under separate acquisitions of the group lock: CPUs
/// blocking at once all run the deadlock check before any counts itself stuck, each sees
/// `stuck + 1 < members`, and all idle until a spurious return (the host's 50 ms bound, the
/// board's tick). The real protocol takes both under one acquisition.
#[test]
fn checker_catches_deadlock_missed_by_a_split_check_and_count() {
    expect_violation(
        Mutation::SplitCheckAndCount,
        false,
        &[&TRUE_DEADLOCK_3],
        "deadlock never declared",
    );
}

/// A member leaving without waking the stuck ones: they would never re-check
/// `stuck + 1 >= members`.
#[test]
fn checker_catches_deadlock_missed_when_leave_does_not_wake() {
    expect_violation(
        Mutation::LeaveWithoutWake,
        false,
        &[&PARTIAL_DEADLOCK_3, &WAKE_VS_TIMEOUT],
        "deadlock never declared",
    );
}

/// The in-flight accounting before its fix: `in_flight` was charged to the group of the woken
/// tasklet's home when the waker pushed it (`inbox_push` read `home.group()` before taking the
/// inbox lock) and discharged by the home's `drain_inbox` from the group it was in *then*. A home
/// that left the group in between (`leave_group`, which `spawn_cpu_thread` calls when its body
/// returns, e.g. after `run()` returned with tasklets still waiting on other CPUs) never
/// discharged it: `in_flight` stayed above zero for good, `quiet` was never true again, and a
/// real deadlock among the remaining members was never declared (on the host they polled every
/// 50 ms forever). Interleaving: A's tasklet K waits on channel 0; B's main takes K off it and
/// does `in_flight += 1` (A still in the group); A's main returns and A leaves; B finishes the
/// push, then blocks on channel 1, which nobody serves; B is alone (`stuck + 1 >= members`) but
/// `in_flight == 1`, so it idles for good.
#[test]
fn checker_catches_in_flight_leaked_by_a_home_leaving() {
    expect_violation(
        Mutation::UncarriedInFlight,
        false,
        &[&HOME_LEAVES_WITH_WAKE_IN_FLIGHT],
        "deadlock never declared",
    );
}

#[test]
fn checker_catches_a_cancel_that_races_a_wake() {
    expect_violation(
        Mutation::CancelIgnoresQueue,
        true,
        &[&WAKE_VS_TIMEOUT, &WAKE_VS_KILL],
        "both succeeded",
    );
}
