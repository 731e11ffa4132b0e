//! The on-target test image: lists its tests or runs the one the host names on the console.
//!
//! See `spindle_target_tests::protocol` for the conversation and `spindle-qemu test` for the host
//! side, which boots one fresh machine per test.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
spindle_pseries::entry!(main);

#[cfg(target_os = "none")]
fn main() -> ! {
    use spindle::kprintln;
    use spindle_drivers::hvterm::HvTerm;
    use spindle_target_tests::protocol::{self, Command, ListLine};
    use spindle_target_tests::{env, SUITES};

    if let Err(err) = spindle_target_tests::validate(SUITES) {
        kprintln!("spindle-test: the test registry is invalid: {err}");
        spindle_pseries::exit(false);
    }
    kprintln!("{}", protocol::READY);
    let mut line = [0u8; 256];
    let mut console = HvTerm::console();
    let command = match protocol::read_line(&mut console, &mut line) {
        Ok(len) => core::str::from_utf8(&line[..len]).unwrap_or(""),
        Err(err) => {
            kprintln!("spindle-test: cannot read a command: {err:?}");
            spindle_pseries::exit(false);
        }
    };
    match protocol::parse_command(command) {
        Ok(Command::List) => {
            for suite in SUITES {
                for test in suite.tests {
                    let line = ListLine {
                        suite: suite.name,
                        test: test.name,
                        cpus: test.cpus,
                        expect: test.expect,
                    };
                    kprintln!("{line}");
                }
            }
            kprintln!("{}", protocol::LIST_END);
            spindle_pseries::exit(true);
        }
        Ok(Command::Run { name, config }) => {
            let Some(test) = spindle_target_tests::find(SUITES, name) else {
                kprintln!("spindle-test: no test named {name}");
                spindle_pseries::exit(false);
            };
            let board = spindle_pseries::board();
            env::publish(env::Environment {
                config,
                machine: &board.machine,
                heap_bytes: board.heap_bytes,
            });
            kprintln!("{}{name}", protocol::RUNNING);
            (test.run)();
            kprintln!("{}{name}", protocol::RETURNED);
            spindle_pseries::exit(true);
        }
        Err(err) => {
            kprintln!("spindle-test: bad command {command:?}: {err}");
            spindle_pseries::exit(false);
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the test image runs under QEMU: run `cargo run -- test` at the repository root");
    std::process::exit(2);
}
