//! Channel cases: a cross-CPU wake-up after a rendezvous racing its target's own blocking (the
//! unlink from its ring, `find_next`, idle), a timeout's cancel and a kill's cancel.

use crate::explorer::check;
use crate::scenario::{
    expect_all, expect_either, expect_no_deadlock, main_task, tasklet, Scenario,
};
use crate::state::{Error, Op, Outcome};

/// CPU A's main receives while CPU B's main sends: the wake-up races A's unlink from its ring
/// and its `find_next` (drain, timers, deadlock check, idle).
pub(crate) static WAKE_VS_BLOCK: Scenario = Scenario {
    name: "wake vs block",
    cpus: &[
        &[main_task(&[Op::Receive(0)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(w, &[(0, 0, Outcome::Received(1)), (1, 0, Outcome::Sent)])
    },
    orphans: false,
};

/// The same with the roles swapped: the receiver takes the value out of a blocked sender's
/// slot on the other CPU.
pub(crate) static WAKE_SENDER_VS_BLOCK: Scenario = Scenario {
    name: "wake sender vs block",
    cpus: &[
        &[main_task(&[Op::Send(0, 1)])],
        &[main_task(&[Op::Receive(0)])],
    ],
    expect: |w| {
        expect_no_deadlock(w)?;
        expect_all(w, &[(0, 0, Outcome::Sent), (1, 0, Outcome::Received(1))])
    },
    orphans: false,
};

/// A receive with a timeout on A races B's send: either the value arrives (and no timeout is
/// reported), or the timeout wins and B's send is later ended by deadlock detection, returning
/// the value.
pub(crate) static WAKE_VS_TIMEOUT: Scenario = Scenario {
    name: "wake vs timeout",
    cpus: &[
        &[main_task(&[Op::ReceiveTimeout(0)])],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_either(
            w,
            [(0, 0), (1, 0)],
            [Outcome::Received(1), Outcome::Sent],
            [
                Outcome::ReceiveFailed(Error::TimedOut),
                Outcome::SendFailed(1, Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

/// A send with a timeout on A races B's receive (the waker takes the value out of the slot).
pub(crate) static SEND_TIMEOUT_VS_WAKE: Scenario = Scenario {
    name: "send timeout vs wake",
    cpus: &[
        &[main_task(&[Op::SendTimeout(0, 1)])],
        &[main_task(&[Op::Receive(0)])],
    ],
    expect: |w| {
        expect_either(
            w,
            [(0, 0), (1, 0)],
            [Outcome::Sent, Outcome::Received(1)],
            [
                Outcome::SendFailed(1, Error::TimedOut),
                Outcome::ReceiveFailed(Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

/// Tasklet K (id 0) on A receives; A's main kills it and joins it while B's main sends: the
/// kill's cancel races the wake-up. K either gets the value (the kill then finds it finished or
/// leaves the error pending) or is killed and B's send fails once B is alone.
pub(crate) static WAKE_VS_KILL: Scenario = Scenario {
    name: "wake vs kill",
    cpus: &[
        &[
            tasklet(&[Op::Receive(0)]),
            main_task(&[Op::Kill(0), Op::Join(0)]),
        ],
        &[main_task(&[Op::Send(0, 1)])],
    ],
    expect: |w| {
        expect_all(w, &[(1, 0, Outcome::KillDone), (1, 1, Outcome::Joined)])?;
        expect_either(
            w,
            [(0, 0), (2, 0)],
            [Outcome::Received(1), Outcome::Sent],
            [
                Outcome::ReceiveFailed(Error::Killed),
                Outcome::SendFailed(1, Error::Deadlock),
            ],
        )
    },
    orphans: false,
};

// ---- the tests ----------------------------------------------------------------------------------

#[test]
fn wake_races_block_unlink_drain_and_idle() {
    check(&WAKE_VS_BLOCK);
    check(&WAKE_SENDER_VS_BLOCK);
}

#[test]
fn wake_races_timeout_cancel() {
    check(&WAKE_VS_TIMEOUT);
    check(&SEND_TIMEOUT_VS_WAKE);
}

#[test]
fn wake_races_kill_cancel() {
    check(&WAKE_VS_KILL);
}
