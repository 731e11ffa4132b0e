//! Deadlock detection across CPUs: groups where every value flows (no deadlock may be declared
//! while a wake-up is in flight), where one or every CPU deadlocks (each must be told, without
//! relying on spurious idle returns), and where a CPU leaves the group with a wake-up to it on its
//! way.

use crate::explorer::check;
use crate::scenario::{expect_all, expect_no_deadlock, main_task, tasklet, Scenario};
use crate::state::{Error, Op, Outcome};

/// Ping-pong between two CPUs (the `threads_rendezvous` test): each CPU blocks while its
/// partner's wake-up may be in flight; no deadlock may ever be declared.
pub(crate) static PING_PONG: Scenario = Scenario {
    name: "ping-pong",
    cpus: &[
        &[main_task(&[Op::Send(0, 1), Op::Receive(1)])],
        &[main_task(&[Op::Receive(0), Op::Send(1, 2)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(
            w,
            &[
                (0, 0, Outcome::Sent),
                (0, 1, Outcome::Received(2)),
                (1, 0, Outcome::Received(1)),
                (1, 1, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs where every value flows: C wakes A, A then wakes B. A and B may both be idle
/// (stuck) while a wake-up is in flight: no deadlock may be declared.
pub(crate) static FLOW_3: Scenario = Scenario {
    name: "three CPUs, values flow",
    cpus: &[
        &[main_task(&[Op::Receive(0), Op::Send(1, 2)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(
            w,
            &[
                (0, 0, Outcome::Received(1)),
                (0, 1, Outcome::Sent),
                (1, 0, Outcome::Received(2)),
                (2, 0, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs, B's receive can never be served: it must end in `Deadlock`, but only once A
/// and C are done (never while C's wake-up of A is on its way).
pub(crate) static PARTIAL_DEADLOCK_3: Scenario = Scenario {
    name: "three CPUs, one deadlocked",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_all(
            w,
            &[
                (0, 0, Outcome::Received(1)),
                (1, 0, Outcome::ReceiveFailed(Error::Deadlock)),
                (2, 0, Outcome::Sent),
            ],
        )
    },
    orphans: false,
};

/// Three CPUs all waiting on channels nobody sends to: each must be told `Deadlock`.
pub(crate) static TRUE_DEADLOCK_3: Scenario = Scenario {
    name: "three CPUs, all deadlocked",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Receive(1)])],
        &[main_task(&[Op::Receive(2)])],
    ],
    expect: |w| {
        let failed = Outcome::ReceiveFailed(Error::Deadlock);
        expect_all(w, &[(0, 0, failed), (1, 0, failed), (2, 0, failed)])
    },
    orphans: false,
};

/// CPU A's thread returns (its main finishes, as a `spawn_cpu_thread` body may once `run()`
/// returns) while its tasklet K still waits on channel 0; B's main then sends to K and waits on
/// channel 1, which nobody serves. B must be told `Deadlock` once it is alone in the group.
pub(crate) static HOME_LEAVES_WITH_WAKE_IN_FLIGHT: Scenario = Scenario {
    name: "home leaves the group with a wake-up in flight",
    cpus: &[
        &[tasklet(&[Op::Receive(0)]), main_task(&[])],
        &[main_task(&[Op::Send(0, 1), Op::Receive(1)])],
    ],
    expect: |w| {
        expect_all(
            w,
            &[
                (2, 0, Outcome::Sent),
                (2, 1, Outcome::ReceiveFailed(Error::Deadlock)),
            ],
        )
    },
    orphans: true,
};

// ---- the tests ----------------------------------------------------------------------------------

#[test]
fn two_cpus_ping_pong_never_declare_deadlock() {
    check(&PING_PONG);
}

#[test]
fn three_cpus_deadlock_detection_waits_for_wake_ups_in_flight() {
    check(&FLOW_3);
    check(&PARTIAL_DEADLOCK_3);
}

#[test]
fn three_cpus_blocking_at_once_all_get_deadlock_without_spurious_idle_returns() {
    check(&TRUE_DEADLOCK_3);
}

/// A CPU's thread returning (`leave_group`) while a wake-up to it may be on its way.
#[test]
fn in_flight_follows_a_home_that_leaves_the_group() {
    check(&HOME_LEAVES_WITH_WAKE_IN_FLIGHT);
}
