//! The image side of the on-target test harness: list the tests, or run the one the host names.
//!
//! See `spindle_test::protocol` for the conversation and `spindle-qemu` for the host side, which
//! boots one fresh machine per test. The host recognises a harness image by the
//! [`HARNESS_SECTION`] it carries.

use spindle::kprintln;
use spindle_drivers::hvterm::HvTerm;
use spindle_test::protocol::{self, Command, ListLine, RunConfig};
use spindle_test::Suite;

/// The ELF section that marks a harness image; `spindle-qemu` looks for it.
pub const HARNESS_SECTION: &str = ".spindle.harness";

/// Present in an image exactly when [`run`] is linked: [`run`] reads it, so the linker keeps it.
#[unsafe(link_section = ".spindle.harness")]
static HARNESS_MARK: [u8; 16] = *b"spindle-harness\0";

static RUN_CONFIG: spin::Once<RunConfig> = spin::Once::new();

/// What the host booted this run with (memory, CPUs, the console token), once a test runs under
/// the harness; `None` otherwise.
pub fn run_config() -> Option<RunConfig> {
    RUN_CONFIG.get().copied()
}

/// Runs the harness over `suites`: validates them, reads the host's command and lists the tests
/// or runs one. Never returns: the run ends with [`crate::exit`].
pub fn run(suites: &'static [Suite]) -> ! {
    core::hint::black_box(&HARNESS_MARK);
    if let Err(err) = spindle_test::validate(suites) {
        kprintln!("spindle-test: the test registry is invalid: {err}");
        crate::exit(false);
    }
    kprintln!("{}", protocol::READY);
    let mut line = [0u8; 256];
    let mut console = HvTerm::console();
    let command = match protocol::read_line(&mut console, &mut line) {
        Ok(len) => core::str::from_utf8(&line[..len]).unwrap_or(""),
        Err(err) => {
            kprintln!("spindle-test: cannot read a command: {err:?}");
            crate::exit(false);
        }
    };
    match protocol::parse_command(command) {
        Ok(Command::List) => {
            for suite in suites {
                for test in suite.tests {
                    let line = ListLine {
                        suite: suite.name,
                        test: test.name,
                        cpus: test.cpus,
                        timeout_secs: test.timeout_secs,
                        expect: test.expect,
                    };
                    kprintln!("{line}");
                }
            }
            kprintln!("{}", protocol::LIST_END);
            crate::exit(true);
        }
        Ok(Command::Run { name, config }) => {
            let Some(test) = spindle_test::find(suites, name) else {
                kprintln!("spindle-test: no test named {name}");
                crate::exit(false);
            };
            RUN_CONFIG.call_once(|| config);
            kprintln!("{}{name}", protocol::RUNNING);
            (test.run)();
            kprintln!("{}{name}", protocol::RETURNED);
            crate::exit(true);
        }
        Err(err) => {
            kprintln!("spindle-test: bad command {command:?}: {err}");
            crate::exit(false);
        }
    }
}
