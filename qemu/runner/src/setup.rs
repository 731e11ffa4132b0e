//! Setup from nothing: installs the Rust target and QEMU programs the tool needs.
//!
//! A fresh Debian 12 machine may already have the pinned toolchain of `rust-toolchain.toml`
//! without its PowerPC64 target (rustup adds a toolchain file's targets only when it installs the
//! toolchain itself), and it lacks QEMU. Run as root, [`ensure`] installs what is missing with
//! `rustup` and `apt-get`; otherwise it runs nothing and fails with the exact commands to run.
//!
//! The decision is the pure [`plan`] over an observed [`Probe`], so every case is unit-tested.
//! This module uses only `std` and nothing else of the crate.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Something the tool needs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The standard library of this Rust target triple, for the active toolchain.
    Target(&'static str),
    /// A program in `PATH`, and the Debian package that provides it.
    Program {
        /// The program's file name.
        program: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
}

/// The Rust target that images (and tier 2) are built for.
pub const POWERPC64_TARGET: Need = Need::Target("powerpc64-unknown-linux-musl");
/// The pseries machine emulator: boots images (tier 3, `cargo run`).
pub const QEMU_SYSTEM: Need = Need::Program {
    program: "qemu-system-ppc64",
    package: "qemu-system-ppc",
};
/// The user-mode emulator that runs tier 2's PowerPC64 test binaries.
pub const QEMU_USER: Need = Need::Program {
    program: "qemu-ppc64",
    package: "qemu-user",
};

/// The Rust toolchain that `rustc` resolves to in the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// A rustup toolchain, by the name `rustup target add --toolchain` takes.
    Rustup(String),
    /// A toolchain rustup cannot change: a distribution's `rustc`, or `RUSTC` pointing outside
    /// rustup's toolchains.
    Unmanaged {
        /// Its sysroot (`rustc --print sysroot`).
        sysroot: PathBuf,
        /// Whether a `rustup` is in `PATH` at all.
        rustup_installed: bool,
    },
}

/// What [`plan`] decides from: the state of this machine, as far as the needs ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The active toolchain; `None` when no [`Need::Target`] was asked about.
    pub toolchain: Option<Toolchain>,
    /// The asked-about targets whose standard library the active toolchain has.
    pub installed_targets: Vec<String>,
    /// The asked-about programs found in `PATH`.
    pub programs_in_path: Vec<String>,
    /// Whether the real user id is 0.
    pub root: bool,
    /// Whether `apt-get` is in `PATH`.
    pub apt_get: bool,
}

/// One installation step [`ensure`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `rustup target add --toolchain TOOLCHAIN TARGET`.
    AddTarget {
        /// The rustup toolchain name.
        toolchain: String,
        /// The target triple.
        target: &'static str,
    },
    /// `apt-get update`, then one `apt-get install` of all the packages.
    AptInstall(Vec<&'static str>),
}

impl Action {
    /// What the step installs, for the progress line.
    fn what(&self) -> String {
        match self {
            Action::AddTarget { toolchain, target } => {
                format!("the Rust target {target} for toolchain {toolchain}")
            }
            Action::AptInstall(packages) => packages.join(" "),
        }
    }

    /// The step as a shell command.
    fn command_line(&self) -> String {
        match self {
            Action::AddTarget { toolchain, target } => {
                format!("rustup target add --toolchain {toolchain} {target}")
            }
            Action::AptInstall(packages) => format!(
                "apt-get update && apt-get install -y --no-install-recommends {}",
                packages.join(" ")
            ),
        }
    }

    /// Runs the step in `workdir`.
    fn run(&self, workdir: &Path) -> Result<(), String> {
        match self {
            Action::AddTarget { toolchain, target } => {
                let mut rustup = Command::new("rustup");
                rustup
                    .current_dir(workdir)
                    .args(["target", "add", "--toolchain"])
                    .args([toolchain.as_str(), target]);
                run_to_stderr(rustup)
            }
            Action::AptInstall(packages) => {
                let apt_get = |args: &[&str]| {
                    let mut command = Command::new("apt-get");
                    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
                    command
                };
                run_to_stderr(apt_get(&["update"]))?;
                let install = ["install", "-y", "--no-install-recommends"];
                run_to_stderr(apt_get(&[&install[..], packages].concat()))
            }
        }
    }
}

/// Runs `command` with no input and its output on our stderr, so nothing it prints mixes into
/// our stdout (which scripts read, e.g. the paths `build` prints).
fn run_to_stderr(mut command: Command) -> Result<(), String> {
    use std::os::fd::AsFd;
    let shown = shell_words(&command);
    command.stdin(Stdio::null());
    if let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() {
        command.stdout(Stdio::from(stderr));
    }
    let status = command
        .status()
        .map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// `command`'s program and arguments, space-separated, for messages.
fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The needs `probe` finds unmet, each once, in the order given.
pub fn unmet(needs: &[Need], probe: &Probe) -> Vec<Need> {
    let mut unmet = Vec::new();
    for &need in needs {
        let met = match need {
            Need::Target(target) => probe.installed_targets.iter().any(|have| have == target),
            Need::Program { program, .. } => {
                probe.programs_in_path.iter().any(|have| have == program)
            }
        };
        if !met && !unmet.contains(&need) {
            unmet.push(need);
        }
    }
    unmet
}

impl Need {
    /// The need for messages: `qemu-ppc64 (Debian package qemu-user)`.
    fn describe(self) -> String {
        match self {
            Need::Target(target) => format!("the Rust target {target}"),
            Need::Program { program, package } => format!("{program} (Debian package {package})"),
        }
    }
}

/// Decides how to provide `needs` on the machine `probe` describes: the steps to run (none when
/// nothing is missing), or, when not root or when any missing need cannot be installed here, an
/// error listing the exact commands for the user. It is all or nothing: a partial installation
/// would only move the failure to the next run.
pub fn plan(needs: &[Need], probe: &Probe) -> Result<Vec<Action>, String> {
    let unmet = unmet(needs, probe);
    if unmet.is_empty() {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    let mut actions = Vec::new();
    // What the user would run, or do, for each missing need.
    let mut steps = Vec::new();
    let mut installable = probe.root;

    for target in unmet.iter().filter_map(|need| match *need {
        Need::Target(target) => Some(target),
        Need::Program { .. } => None,
    }) {
        match &probe.toolchain {
            Some(Toolchain::Rustup(toolchain)) => {
                missing.push(format!("the Rust target {target} of toolchain {toolchain}"));
                let action = Action::AddTarget {
                    toolchain: toolchain.clone(),
                    target,
                };
                steps.push(action.command_line());
                actions.push(action);
            }
            Some(Toolchain::Unmanaged {
                sysroot,
                rustup_installed,
            }) => {
                missing.push(format!(
                    "the Rust target {target} of the toolchain at {}",
                    sysroot.display()
                ));
                installable = false;
                let library = sysroot.join("lib").join("rustlib").join(target);
                steps.push(if *rustup_installed {
                    format!(
                        "that toolchain is not rustup's (is RUSTC set?): use rustup's `rustc` \
                         (rust-toolchain.toml names the toolchain and its targets), or provide \
                         {target}'s standard library in {}",
                        library.display()
                    )
                } else {
                    format!(
                        "that toolchain is not managed by rustup, which is not installed: install \
                         rustup (https://rustup.rs), whose toolchain from rust-toolchain.toml \
                         brings the target; or provide {target}'s standard library in {}",
                        library.display()
                    )
                });
            }
            None => {
                return Err(format!(
                    "the Rust target {target} is needed, but the active toolchain was not probed"
                ))
            }
        }
    }

    let mut programs = Vec::new();
    let mut packages = Vec::new();
    for need in &unmet {
        if let Need::Program { program, package } = *need {
            missing.push(need.describe());
            programs.push(program);
            if !packages.contains(&package) {
                packages.push(package);
            }
        }
    }
    if !packages.is_empty() {
        let list = packages.join(" ");
        if probe.apt_get {
            let sudo = if probe.root { "" } else { "sudo " };
            steps.push(format!(
                "{sudo}apt-get update && {sudo}apt-get install -y {list}"
            ));
            actions.push(Action::AptInstall(packages));
        } else {
            installable = false;
            steps.push(format!(
                "there is no apt-get: install {} with the system's package manager (on Debian: \
                 apt-get install {list})",
                programs.join(" and ")
            ));
        }
    }

    if installable {
        return Ok(actions);
    }
    let mut message = format!("missing: {}; to install:", missing.join(", "));
    for step in &steps {
        let _ = write!(message, "\n    {step}");
    }
    if !probe.root {
        message.push_str("\n(run as root, spindle-qemu installs them itself)");
    }
    Err(message)
}

impl Probe {
    /// Observes this machine for `needs`, with `workdir` deciding the toolchain (its
    /// `rust-toolchain.toml`, through rustup's proxy).
    pub fn observe(needs: &[Need], workdir: &Path) -> Result<Probe, String> {
        let targets: Vec<&str> = needs
            .iter()
            .filter_map(|need| match need {
                Need::Target(target) => Some(*target),
                Need::Program { .. } => None,
            })
            .collect();
        let (toolchain, installed_targets) = if targets.is_empty() {
            (None, Vec::new())
        } else {
            let sysroot = sysroot(workdir)?;
            let installed = targets
                .iter()
                .filter(|target| {
                    sysroot
                        .join("lib")
                        .join("rustlib")
                        .join(target)
                        .join("lib")
                        .is_dir()
                })
                .map(|target| (*target).to_owned())
                .collect();
            (Some(active_toolchain(sysroot, workdir)), installed)
        };
        let programs_in_path = needs
            .iter()
            .filter_map(|need| match need {
                Need::Program { program, .. } => find(program).map(|_| (*program).to_owned()),
                Need::Target(_) => None,
            })
            .collect();
        Ok(Probe {
            toolchain,
            installed_targets,
            programs_in_path,
            root: running_as_root(),
            apt_get: find("apt-get").is_some(),
        })
    }
}

/// The active toolchain's sysroot, from `rustc --print sysroot` (or `$RUSTC`) run in `workdir`.
fn sysroot(workdir: &Path) -> Result<PathBuf, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let shown = format!("{} --print sysroot", rustc.to_string_lossy());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run `{shown}` in {}: {err}", workdir.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let path = text.trim();
    if !output.status.success() || path.is_empty() {
        return Err(format!(
            "`{shown}` failed in {} ({}): {}",
            workdir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(PathBuf::from(path))
}

/// Names the toolchain at `sysroot` for `rustup target add --toolchain`, if rustup manages it.
fn active_toolchain(sysroot: PathBuf, workdir: &Path) -> Toolchain {
    let Some(rustup) = find("rustup") else {
        return Toolchain::Unmanaged {
            sysroot,
            rustup_installed: false,
        };
    };
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let toolchains = rustup_home().map(|home| canonical(&home.join("toolchains")));
    let real_sysroot = canonical(&sysroot);
    if let Some(toolchains) = &toolchains {
        if real_sysroot.parent() == Some(toolchains.as_path()) {
            // rustup exports the toolchain it chose in RUSTUP_TOOLCHAIN (under `cargo run` the one
            // of rust-toolchain.toml, e.g. `1.95.0-x86_64-unknown-linux-gnu`); prefer that name
            // when it is this very directory, since the directory may be a link to another.
            let exported = std::env::var("RUSTUP_TOOLCHAIN")
                .ok()
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .filter(|name| canonical(&toolchains.join(name)) == real_sysroot);
            if let Some(name) = exported.or_else(|| file_name(&real_sysroot)) {
                return Toolchain::Rustup(name);
            }
        }
    }
    // The sysroot is not where we expected rustup's toolchains (RUSTUP_HOME unknown to us):
    // unless RUSTC chose another compiler, rustup's active toolchain is the one in use.
    if std::env::var_os("RUSTC").is_none() {
        if let Some(name) = rustup_active_toolchain(&rustup, workdir) {
            return Toolchain::Rustup(name);
        }
    }
    Toolchain::Unmanaged {
        sysroot,
        rustup_installed: true,
    }
}

/// `$RUSTUP_HOME`, or rustup's default `~/.rustup`.
fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".rustup")))
}

/// The last component of `path`, if it is UTF-8.
fn file_name(path: &Path) -> Option<String> {
    path.file_name().and_then(OsStr::to_str).map(str::to_owned)
}

/// The first word of `rustup show active-toolchain` in `workdir`.
fn rustup_active_toolchain(rustup: &Path, workdir: &Path) -> Option<String> {
    let output = Command::new(rustup)
        .args(["show", "active-toolchain"])
        .current_dir(workdir)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// Whether this process runs as root (real uid 0). `/proc` tells without `unsafe` `getuid`.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().next())
            .is_some_and(|uid| uid == "0")
    })
}

/// Looks `program` up in `PATH`: the first executable file of that name.
pub fn find(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        // An empty entry would mean the current directory: not a place to pick programs from.
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Makes sure `needs` are met: probes, installs what is missing (as root, see [`plan`]), printing
/// each step to stderr first, then probes again to check that the steps provided everything.
pub fn ensure(needs: &[Need], workdir: &Path) -> Result<(), String> {
    let before = Probe::observe(needs, workdir)?;
    let actions = plan(needs, &before)?;
    if actions.is_empty() {
        return Ok(());
    }
    for action in &actions {
        eprintln!(
            "spindle-qemu: installing {}: {}",
            action.what(),
            action.command_line()
        );
        action.run(workdir)?;
    }
    let left = unmet(needs, &Probe::observe(needs, workdir)?);
    if left.is_empty() {
        return Ok(());
    }
    Err(format!(
        "installed, but still missing: {}",
        left.iter()
            .map(|need| need.describe())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLCHAIN: &str = "1.95.0-x86_64-unknown-linux-gnu";
    const ALL: [Need; 3] = [POWERPC64_TARGET, QEMU_SYSTEM, QEMU_USER];

    /// A root Debian machine with rustup, lacking everything unless `have` lists it.
    fn machine(have: &[&str]) -> Probe {
        let has = |name: &str| have.contains(&name);
        Probe {
            toolchain: Some(Toolchain::Rustup(TOOLCHAIN.into())),
            installed_targets: ["powerpc64-unknown-linux-musl"]
                .into_iter()
                .filter(|t| has(t))
                .map(str::to_owned)
                .collect(),
            programs_in_path: ["qemu-system-ppc64", "qemu-ppc64"]
                .into_iter()
                .filter(|p| has(p))
                .map(str::to_owned)
                .collect(),
            root: true,
            apt_get: true,
        }
    }

    fn add_target() -> Action {
        Action::AddTarget {
            toolchain: TOOLCHAIN.into(),
            target: "powerpc64-unknown-linux-musl",
        }
    }

    #[test]
    fn nothing_missing_plans_nothing() {
        let probe = machine(&[
            "powerpc64-unknown-linux-musl",
            "qemu-system-ppc64",
            "qemu-ppc64",
        ]);
        assert_eq!(plan(&ALL, &probe), Ok(vec![]));
        // Not root and no apt-get do not matter when nothing is missing.
        let probe = Probe {
            root: false,
            apt_get: false,
            ..probe
        };
        assert_eq!(plan(&ALL, &probe), Ok(vec![]));
    }

    #[test]
    fn a_missing_target_is_added_to_the_active_toolchain() {
        let probe = machine(&["qemu-system-ppc64", "qemu-ppc64"]);
        assert_eq!(plan(&ALL, &probe), Ok(vec![add_target()]));
        assert_eq!(
            add_target().command_line(),
            "rustup target add --toolchain 1.95.0-x86_64-unknown-linux-gnu \
             powerpc64-unknown-linux-musl"
        );
    }

    #[test]
    fn missing_programs_share_one_apt_get_install() {
        let probe = machine(&["powerpc64-unknown-linux-musl"]);
        let apt = Action::AptInstall(vec!["qemu-system-ppc", "qemu-user"]);
        assert_eq!(plan(&ALL, &probe), Ok(vec![apt.clone()]));
        assert_eq!(
            apt.command_line(),
            "apt-get update && apt-get install -y --no-install-recommends qemu-system-ppc qemu-user"
        );
        // Only the missing one is installed.
        let probe = machine(&["powerpc64-unknown-linux-musl", "qemu-system-ppc64"]);
        assert_eq!(
            plan(&ALL, &probe),
            Ok(vec![Action::AptInstall(vec!["qemu-user"])])
        );
    }

    #[test]
    fn target_and_programs_missing_plan_both() {
        assert_eq!(
            plan(&ALL, &machine(&[])),
            Ok(vec![
                add_target(),
                Action::AptInstall(vec!["qemu-system-ppc", "qemu-user"])
            ])
        );
    }

    #[test]
    fn a_repeated_need_is_installed_once() {
        let needs = [QEMU_SYSTEM, POWERPC64_TARGET, QEMU_SYSTEM, POWERPC64_TARGET];
        assert_eq!(
            plan(&needs, &machine(&[])),
            Ok(vec![
                add_target(),
                Action::AptInstall(vec!["qemu-system-ppc"])
            ])
        );
    }

    #[test]
    fn not_root_runs_nothing_and_gives_the_exact_commands() {
        let probe = Probe {
            root: false,
            ..machine(&[])
        };
        assert_eq!(
            plan(&ALL, &probe).unwrap_err(),
            "missing: the Rust target powerpc64-unknown-linux-musl of toolchain \
             1.95.0-x86_64-unknown-linux-gnu, qemu-system-ppc64 (Debian package \
             qemu-system-ppc), qemu-ppc64 (Debian package qemu-user); to install:\n    \
             rustup target add --toolchain 1.95.0-x86_64-unknown-linux-gnu \
             powerpc64-unknown-linux-musl\n    \
             sudo apt-get update && sudo apt-get install -y qemu-system-ppc qemu-user\n\
             (run as root, spindle-qemu installs them itself)"
        );
        let probe = Probe {
            root: false,
            ..machine(&["powerpc64-unknown-linux-musl", "qemu-ppc64"])
        };
        assert_eq!(
            plan(&ALL, &probe).unwrap_err(),
            "missing: qemu-system-ppc64 (Debian package qemu-system-ppc); to install:\n    \
             sudo apt-get update && sudo apt-get install -y qemu-system-ppc\n\
             (run as root, spindle-qemu installs them itself)"
        );
    }

    #[test]
    fn root_without_apt_get_adds_only_a_target_and_explains_packages() {
        let probe = Probe {
            apt_get: false,
            ..machine(&["qemu-system-ppc64", "qemu-ppc64"])
        };
        assert_eq!(plan(&ALL, &probe), Ok(vec![add_target()]));
        // With programs missing too, nothing runs (all or nothing).
        let probe = Probe {
            apt_get: false,
            ..machine(&["qemu-ppc64"])
        };
        assert_eq!(
            plan(&ALL, &probe).unwrap_err(),
            "missing: the Rust target powerpc64-unknown-linux-musl of toolchain \
             1.95.0-x86_64-unknown-linux-gnu, qemu-system-ppc64 (Debian package \
             qemu-system-ppc); to install:\n    \
             rustup target add --toolchain 1.95.0-x86_64-unknown-linux-gnu \
             powerpc64-unknown-linux-musl\n    \
             there is no apt-get: install qemu-system-ppc64 with the system's package \
             manager (on Debian: apt-get install qemu-system-ppc)"
        );
    }

    #[test]
    fn without_rustup_the_target_must_come_with_the_toolchain() {
        let probe = Probe {
            toolchain: Some(Toolchain::Unmanaged {
                sysroot: "/usr".into(),
                rustup_installed: false,
            }),
            ..machine(&[])
        };
        assert_eq!(
            plan(&ALL, &probe).unwrap_err(),
            "missing: the Rust target powerpc64-unknown-linux-musl of the toolchain at \
             /usr, qemu-system-ppc64 (Debian package qemu-system-ppc), qemu-ppc64 (Debian \
             package qemu-user); to install:\n    \
             that toolchain is not managed by rustup, which is not installed: install \
             rustup (https://rustup.rs), whose toolchain from rust-toolchain.toml brings \
             the target; or provide powerpc64-unknown-linux-musl's standard library in \
             /usr/lib/rustlib/powerpc64-unknown-linux-musl\n    \
             apt-get update && apt-get install -y qemu-system-ppc qemu-user"
        );
        // A compiler outside rustup's toolchains although rustup exists (RUSTC set elsewhere).
        let probe = Probe {
            toolchain: Some(Toolchain::Unmanaged {
                sysroot: "/opt/rust".into(),
                rustup_installed: true,
            }),
            ..machine(&["qemu-system-ppc64", "qemu-ppc64"])
        };
        assert_eq!(
            plan(&ALL, &probe).unwrap_err(),
            "missing: the Rust target powerpc64-unknown-linux-musl of the toolchain at \
             /opt/rust; to install:\n    \
             that toolchain is not rustup's (is RUSTC set?): use rustup's `rustc` \
             (rust-toolchain.toml names the toolchain and its targets), or provide \
             powerpc64-unknown-linux-musl's standard library in \
             /opt/rust/lib/rustlib/powerpc64-unknown-linux-musl"
        );
    }

    #[test]
    fn only_the_asked_needs_count() {
        // qemu-user is missing, but only the target and the system emulator are asked for.
        let probe = machine(&["powerpc64-unknown-linux-musl", "qemu-system-ppc64"]);
        assert_eq!(plan(&[POWERPC64_TARGET, QEMU_SYSTEM], &probe), Ok(vec![]));
    }

    #[test]
    fn find_takes_only_executable_files() {
        assert!(find("sh").is_some_and(|path| path.is_absolute()));
        assert_eq!(find("spindle-no-such-program"), None);
        // A directory of that name in PATH does not count.
        assert_eq!(find("."), None);
    }
}
