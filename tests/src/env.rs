//! What a test may know about the machine it runs on: the host's configuration and the board's.

use crate::protocol::RunConfig;
use spindle_drivers::devtree::Machine;

/// The run's environment.
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

/// The run's environment, from the board and the harness.
///
/// # Panics
/// Outside a test run of the harness (which knows the host's configuration).
pub fn get() -> &'static Environment {
    ENVIRONMENT.call_once(|| {
        let board = spindle_pseries::board();
        let Some(config) = spindle_pseries::testing::run_config() else {
            panic!("spindle-target-tests: not running under the test harness");
        };
        Environment {
            config,
            machine: &board.machine,
            heap_bytes: board.heap_bytes,
        }
    })
}
