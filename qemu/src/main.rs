//! `spindle-qemu`: builds Spindle's PowerPC64 images and boots them in `qemu-system-ppc64 -M pseries`.
//!
//! `cargo run` at the repository root boots the demo image; `cargo run -- test` runs the
//! on-target tests; `cargo run -- --help` lists the rest. The console streams to stdout and the
//! exit status is the image's: 0 only if QEMU exited 0 and the image reported success.
#![forbid(unsafe_code)]

mod cli;
mod count;
mod elf;
mod image;
mod machine;
mod tier3;

use cli::{Command, Image, Options};
use std::process::ExitCode;
use std::time::Duration;

/// Timeout of a demo or bench run unless `--timeout` says otherwise.
const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Exit status for a run that hung (as `timeout(1)` uses).
const HUNG: u8 = 124;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, options) = match cli::parse(&args) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("spindle-qemu: {err}");
            return ExitCode::from(2);
        }
    };
    match execute(command, &options) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("spindle-qemu: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Heap of the test image unless `--heap` says otherwise: room for the 10,000-tasklet test.
const TEST_IMAGE_HEAP_BYTES: u64 = 96 << 20;

fn execute(command: Command, options: &Options) -> Result<ExitCode, String> {
    match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Clippy => image::clippy().map(|()| ExitCode::SUCCESS),
        Command::Build(which) => {
            let built = image::build(which, options.heap_bytes)?;
            println!("{}\n{}", built.elf.display(), built.flat.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Size(which) => {
            let built = image::build(which, options.heap_bytes)?;
            image::print_sizes(which, &built).map(|()| ExitCode::SUCCESS)
        }
        Command::Test => {
            let qemu = machine::find_or_install(machine::QEMU, machine::QEMU_PACKAGE)?;
            let heap = options.heap_bytes.or(Some(TEST_IMAGE_HEAP_BYTES));
            let built = image::build(Image::Test, heap)?;
            let all_ok = tier3::run(&qemu, &built.flat, options)?;
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run(which) => boot(which, options),
        Command::Count => {
            let qemu = machine::find_or_install(machine::QEMU, machine::QEMU_PACKAGE)?;
            let filter = options.filter.clone().unwrap_or_default();
            let counted = count::run(&qemu, options, &filter)?;
            Ok(if counted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Builds and boots `which`, streaming the console; the exit status is the run's verdict.
fn boot(which: Image, options: &Options) -> Result<ExitCode, String> {
    let qemu = machine::find_or_install(machine::QEMU, machine::QEMU_PACKAGE)?;
    let built = image::build(which, options.heap_bytes)?;
    let cpus = options
        .cpus
        .unwrap_or(if which == Image::Demo { 2 } else { 1 });
    let boot = machine::Boot {
        image: &built.flat,
        memory_bytes: options.memory_bytes,
        cpus,
        gdb: options.gdb,
        extra: &options.qemu_args,
    };
    let timeout = if options.gdb {
        None
    } else {
        Some(options.timeout.unwrap_or(DEFAULT_RUN_TIMEOUT))
    };
    if options.gdb {
        eprintln!(
            "spindle-qemu: QEMU waits for a debugger on localhost:1234; in another terminal:\n    \
             gdb-multiarch {} -ex 'target remote localhost:1234'\n  (Debian: apt-get install gdb-multiarch; \
             `break spindle_board_entry`, then `continue`)",
            built.elf.display()
        );
    }
    let outcome = machine::run(&qemu, &boot, None, timeout, true)?;
    if outcome.timed_out {
        eprintln!(
            "spindle-qemu: timeout: the {} image did not finish within {:.0} s and was killed: it hung \
             (raise the limit with --timeout SECS)",
            which.name(),
            outcome.elapsed.as_secs_f64()
        );
        return Ok(ExitCode::from(HUNG));
    }
    if outcome.succeeded() {
        return Ok(ExitCode::SUCCESS);
    }
    match outcome.code {
        Some(0) => {
            eprintln!(
                "spindle-qemu: QEMU exited 0, but the {} image never reported success",
                which.name()
            );
            Ok(ExitCode::FAILURE)
        }
        Some(code) => {
            eprintln!(
                "spindle-qemu: the {} image failed (QEMU exit status {code})",
                which.name()
            );
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)))
        }
        None => Err("QEMU was killed by a signal".into()),
    }
}
