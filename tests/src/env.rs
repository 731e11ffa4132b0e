//! What a test may know about the machine it runs on: the host's configuration and the board's.

use crate::protocol::RunConfig;
use spindle_drivers::devtree::Machine;

/// The run's environment, published by the test image before the test body runs.
#[derive(Debug)]
pub struct Environment {
    /// What the host booted QEMU with.
    pub config: RunConfig,
    /// The device tree's description of the machine.
    pub machine: &'static Machine<'static>,
    /// Size of the heap the board set up.
    pub heap_bytes: usize,
}

static ENVIRONMENT: spin::Once<Environment> = spin::Once::new();

/// Publishes the environment (the test image does this once, before running a test).
pub fn publish(environment: Environment) {
    ENVIRONMENT.call_once(|| environment);
}

/// The run's environment.
///
/// # Panics
/// If the image did not publish one: a harness bug, reported as the test's failure.
pub fn get() -> &'static Environment {
    match ENVIRONMENT.get() {
        Some(environment) => environment,
        None => panic!("spindle-target-tests: the test image did not publish the environment"),
    }
}
