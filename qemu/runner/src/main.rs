//! `spindle-qemu`: boots PowerPC64 images in `qemu-system-ppc64 -M pseries` and runs their tests.
//!
//! As a cargo runner (`runner = "spindle-qemu run"`) it boots any image built on the board crate
//! `spindle-pseries`: `cargo run` in the image's crate streams its console, `cargo test` runs the
//! on-target tests of a `spindle_pseries::test_main!` image, one fresh machine per test. At the
//! repository root `cargo run` builds and boots Spindle's demo image, `cargo run -- test` its
//! on-target tests, through the same path; `cargo run -- --help` lists the rest. The exit status
//! is the image's: 0 only if QEMU exited 0 and the image reported success.
#![forbid(unsafe_code)]

mod cli;
mod count;
mod elf;
mod hang;
mod image;
mod machine;
mod netbench;
mod nic;
mod quiet;
mod setup;
mod tier3;

use cli::{Command, Image, Options};
use std::path::Path;
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

/// Heap of the test and bench images unless `--heap` says otherwise: room for the 10,000-tasklet
/// test and benchmarks.
pub(crate) const TEST_IMAGE_HEAP_BYTES: u64 = 96 << 20;

fn execute(command: Command, options: &Options) -> Result<ExitCode, String> {
    let needs: &[setup::Need] = match command {
        Command::Help | Command::Setup => &[],
        Command::Clippy | Command::Build(_) | Command::Size(_) => &[setup::POWERPC64_TARGET],
        Command::RunElf(_) => &[setup::QEMU_SYSTEM],
        Command::Test | Command::Run(_) | Command::Count | Command::NetBench => {
            &[setup::POWERPC64_TARGET, setup::QEMU_SYSTEM]
        }
    };
    // Spindle's own images build with the checkout's toolchain; `setup` and `run` serve the
    // crate in the current directory (a user's, with its own rust-toolchain.toml).
    let for_the_current_crate = matches!(command, Command::Setup | Command::RunElf(_));
    let workdir = if for_the_current_crate {
        std::env::current_dir().map_err(|err| format!("no current directory: {err}"))?
    } else {
        image::workspace_root()
    };
    setup::ensure(needs, &workdir)?;
    match command {
        Command::Help => {
            quiet::outln!("{}", cli::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup => setup::ensure(
            &[
                setup::POWERPC64_TARGET,
                setup::QEMU_SYSTEM,
                setup::QEMU_USER,
            ],
            &image::workspace_root(),
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Clippy => image::clippy().map(|()| ExitCode::SUCCESS),
        Command::Build(which) => {
            let built = image::build(which, options.heap_bytes)?;
            quiet::outln!("{}\n{}", built.elf.display(), built.flat.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Size(which) => {
            let built = image::build(which, options.heap_bytes)?;
            image::print_sizes(which, &built).map(|()| ExitCode::SUCCESS)
        }
        Command::Test => {
            let heap = options.heap_bytes.or(Some(TEST_IMAGE_HEAP_BYTES));
            let built = image::build(Image::Test, heap)?;
            run_elf(&built.elf, options, 1, Some(DEFAULT_RUN_TIMEOUT))
        }
        Command::Run(Image::Echo) if options.forwards.is_empty() => {
            Err("the echo image serves on the NIC: give it a port with --net HOSTPORT:7".into())
        }
        Command::NetBench => {
            let built = image::build(Image::Echo, options.heap_bytes)?;
            let qemu = qemu()?;
            netbench::run(&qemu, &built.flat, options.memory_bytes).map(|_| ExitCode::SUCCESS)
        }
        Command::Run(which) => {
            let heap = match which {
                Image::Bench => options.heap_bytes.or(Some(TEST_IMAGE_HEAP_BYTES)),
                _ => options.heap_bytes,
            };
            let built = image::build(which, heap)?;
            // A server (the echo image) serves until stopped unless --timeout says otherwise.
            let timeout = (which != Image::Echo).then_some(DEFAULT_RUN_TIMEOUT);
            run_elf(
                &built.elf,
                options,
                if which == Image::Demo { 2 } else { 1 },
                timeout,
            )
        }
        Command::RunElf(elf) => {
            if options.heap_bytes.is_some() {
                return Err(
                    "--heap applies to the images this tool builds; an image built by \
                            cargo sets its heap with SPINDLE_HEAP_SIZE at build time"
                        .into(),
                );
            }
            run_elf(&elf, options, 1, Some(DEFAULT_RUN_TIMEOUT))
        }
        Command::Count => {
            let qemu = qemu()?;
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

/// Boots the image at `elf`: a test harness image runs its tests (one machine each), any other
/// boots once with its console streamed. The exit status is the verdict.
fn run_elf(
    elf: &Path,
    options: &Options,
    default_cpus: usize,
    default_timeout: Option<Duration>,
) -> Result<ExitCode, String> {
    let image = image::Prepared::from_elf(elf)?;
    let qemu = qemu()?;
    if image.is_harness {
        let all_ok = tier3::run(&qemu, elf, &image.flat, options)?;
        return Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if options.filter.is_some() || options.list {
        return Err(format!(
            "{} is not a test image (made with spindle_pseries::test_main!): it takes no test \
             filter or --list",
            elf.display()
        ));
    }
    let name = elf.file_name().map_or_else(
        || elf.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let symbols = hang::Symbols::from_elf(elf);
    let boot = machine::Boot {
        image: &image.flat,
        memory_bytes: options.memory_bytes,
        cpus: options.cpus.unwrap_or(default_cpus),
        gdb: options.gdb,
        forwards: &options.forwards,
        extra: &options.qemu_args,
        hang_symbols: Some(&symbols),
    };
    let timeout = if options.gdb {
        None
    } else {
        options.timeout.or(default_timeout)
    };
    if options.gdb {
        eprintln!(
            "spindle-qemu: QEMU waits for a debugger on localhost:1234; in another terminal:\n    \
             gdb-multiarch {} -ex 'target remote localhost:1234'\n  (Debian: apt-get install gdb-multiarch; \
             `break spindle_board_entry`, then `continue`)",
            elf.display()
        );
    }
    let outcome = machine::run(&qemu, &boot, None, timeout, true)?;
    if outcome.timed_out {
        eprintln!(
            "spindle-qemu: timeout: the image {name} did not finish within {:.0} s and was killed: \
             it hung (raise the limit with --timeout SECS)",
            outcome.elapsed.as_secs_f64()
        );
        if let Some(report) = &outcome.hang_report {
            eprintln!("spindle-qemu: {report}");
        }
        return Ok(ExitCode::from(HUNG));
    }
    if outcome.succeeded() {
        return Ok(ExitCode::SUCCESS);
    }
    match outcome.code {
        Some(0) => {
            eprintln!("spindle-qemu: QEMU exited 0, but the image {name} never reported success");
            Ok(ExitCode::FAILURE)
        }
        Some(code) => {
            eprintln!("spindle-qemu: the image {name} failed (QEMU exit status {code})");
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)))
        }
        None => Err("QEMU was killed by a signal".into()),
    }
}

/// The pseries emulator, which `setup::ensure` has provided.
fn qemu() -> Result<std::path::PathBuf, String> {
    setup::find(machine::QEMU).ok_or_else(|| format!("{} is not in PATH", machine::QEMU))
}
