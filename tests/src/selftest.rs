//! Tests of the test runner itself: each fails in one way on purpose and is expected to.
//!
//! They prove the runner reports a failed assertion, a panic and a hang as failures: here their
//! expectations make them pass, and the host test `tier3_runner_reports_failures` runs them with
//! expectations ignored and checks they come out FAILED with the right reasons.

use crate::{Suite, TargetTest};

/// The runner's self-tests.
pub const SUITE: Suite = Suite::new(
    "selftest",
    &[
        TargetTest::new("fails_an_assertion", fails_an_assertion)
            .expect_panic("assertion `left == right` failed"),
        TargetTest::new("panics", panics).expect_panic("deliberate panic from selftest::panics"),
        TargetTest::new("hangs", hangs).expect_hang(),
    ],
);

fn fails_an_assertion() {
    let computed = core::hint::black_box(2) + 2;
    assert_eq!(computed, 5, "selftest: 2 + 2 is not 5");
}

fn panics() {
    let nothing: Option<u32> = core::hint::black_box(None);
    if nothing.is_none() {
        panic!("deliberate panic from selftest::panics");
    }
}

fn hangs() {
    loop {
        core::hint::spin_loop();
    }
}
