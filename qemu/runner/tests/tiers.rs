//! Tiers 2 and 3 of `cargo test`, driven from the host.
//!
//! Tier 2 is the std test harness of the portable crates on big-endian PowerPC64 under
//! `qemu-ppc64` (user mode); tier 3 is the on-target suite, one `qemu-system-ppc64 -M pseries`
//! per test. Both run as child processes that inherit stdout and stderr, so their test names and
//! summaries show in the `cargo test` output, and each uses its own target directory (the outer
//! `cargo test` holds the lock on `target/`). The tests share one lock so their output does not
//! interleave. What the tiers need (the Rust target, QEMU) is installed by `spindle-qemu setup`
//! when running as root; otherwise the tests fail with the commands that install it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("qemu/runner/ is two folders below the root")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Installs what the PowerPC64 tiers need (the Rust target, qemu-user, qemu-system-ppc) when
/// running as root, or fails with the commands that do: `spindle-qemu setup`.
fn setup() {
    let status = Command::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .arg("setup")
        .status()
        .expect("cannot run spindle-qemu");
    assert!(
        status.success(),
        "setup for the PowerPC64 tiers failed (see above)"
    );
}

/// The tier-2 link flags of `.cargo/config.toml`, which cargo gives rustc but not rustdoc: the
/// doc-tests of the PowerPC64 build need them in `RUSTDOCFLAGS` to link statically.
const TIER2_FLAGS: [&str; 3] = [
    "linker-flavor=ld.lld",
    "link-self-contained=yes",
    "target-feature=+crt-static",
];

#[test]
fn tier2_flags_match_the_cargo_config() {
    let config = std::fs::read_to_string(root().join(".cargo").join("config.toml"))
        .expect("reading .cargo/config.toml");
    for flag in TIER2_FLAGS {
        assert!(
            config.contains(&format!("\"{flag}\"")),
            ".cargo/config.toml no longer has {flag}: update TIER2_FLAGS"
        );
    }
}

#[test]
fn tier2_powerpc64_user_mode() {
    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    setup();
    let root = root();
    println!("\n=== tier 2: cargo test on powerpc64-unknown-linux-musl under qemu-ppc64 ===");
    let status = cargo()
        .current_dir(&root)
        .args([
            "test",
            "--no-fail-fast",
            "--target",
            "powerpc64-unknown-linux-musl",
            "--target-dir",
        ])
        .arg(root.join("target").join("tier2"))
        .env(
            "RUSTDOCFLAGS",
            TIER2_FLAGS.map(|flag| format!("-C {flag}")).join(" "),
        )
        .args([
            "-p",
            "spindle",
            "-p",
            "spindle-arch",
            "-p",
            "spindle-drivers",
        ])
        .status()
        .expect("cannot run cargo");
    assert!(
        status.success(),
        "tier 2 (user-mode PowerPC64 tests) failed: {status}"
    );
}

#[test]
fn tier3_on_target() {
    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    println!("\n=== tier 3: on-target tests under qemu-system-ppc64 -M pseries ===");
    let status = Command::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .arg("test")
        .status()
        .expect("cannot run spindle-qemu");
    assert!(
        status.success(),
        "tier 3 (on-target tests) failed: {status}"
    );
}

/// The runner must report a failed assertion, a panic and a hang as failures when nothing says
/// they are expected: the self-tests run with expectations ignored. The hang is reported with
/// where the CPU was, named from the image's symbols.
#[test]
fn tier3_runner_reports_failures() {
    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    let output = Command::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .args([
            "test",
            "selftest::",
            "--ignore-expectations",
            "--timeout",
            "5",
        ])
        .output()
        .expect("cannot run spindle-qemu");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        !output.status.success(),
        "the runner passed a run with three failing tests"
    );
    for expected in [
        "test selftest::fails_an_assertion ... FAILED",
        "assertion `left == right` failed: selftest: 2 + 2 is not 5",
        "test selftest::panics ... FAILED",
        "deliberate panic from selftest::panics",
        "test selftest::hangs ... FAILED",
        "hung: no result within 5.0 s",
        "where each CPU was at the timeout",
        "at   0x",
        "spindle_target_tests::selftest::hangs+0x",
    ] {
        assert!(
            stdout.contains(expected),
            "runner output lacks {expected:?}"
        );
    }
    assert!(
        stdout.lines().any(|line| line == "0 passed, 3 failed"),
        "wrong summary"
    );
}

/// Copies the template folder (without any `target/`) to `to`.
fn copy_template(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the template copy");
    for entry in std::fs::read_dir(from).expect("reading qemu/template") {
        let entry = entry.expect("reading qemu/template");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "target" {
                copy_template(&source, &target);
            }
        } else {
            std::fs::copy(&source, &target).expect("copying a template file");
        }
    }
}

/// A user's crate, as `qemu/template/` is handed out, outside the repository: its `cargo run`
/// boots it and its `cargo test` runs its on-target tests through `spindle-qemu run`, in the dev
/// profile (incremental, 256 codegen units) and in release.
#[test]
fn tier3_template_user_crate() {
    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    println!("\n=== tier 3: the template crate (qemu/template) as a user's crate ===");
    setup();
    let root = root();
    let copy = std::env::temp_dir().join(format!("spindle-template-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_template(&root.join("qemu").join("template"), &copy);
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("reading the template manifest");
    let pointed = text
        .replace("\"../../kernel\"", &format!("{:?}", root.join("kernel")))
        .replace(
            "\"../pseries\"",
            &format!("{:?}", root.join("qemu").join("pseries")),
        );
    assert_ne!(
        pointed, text,
        "the template's dependency paths changed: update this test"
    );
    std::fs::write(&manifest, pointed).expect("writing the template manifest");

    let runner_dir = Path::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .parent()
        .expect("the runner has a folder")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(runner_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let user_cargo = |args: &[&str]| {
        let output = Command::new("cargo")
            .current_dir(&copy)
            .args(args)
            .env("PATH", &path)
            // Warm builds across runs; the crate itself sits outside the repository.
            .env("CARGO_TARGET_DIR", root.join("target").join("template"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("cannot run cargo");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        println!(
            "$ cargo {}\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "cargo {} failed: {}",
            args.join(" "),
            output.status
        );
        stdout
    };
    for profile in [&[][..], &["--release"][..]] {
        let run = user_cargo(&[&["run"], profile].concat());
        assert!(
            run.contains("consumer: 10 squares in a tight dict, sum 385"),
            "the template image did not report its result"
        );
        let test = user_cargo(&[&["test"], profile].concat());
        for expected in [
            "test app::channel_hands_values_between_tasklets ... ok",
            "test app::tight_dict_keeps_every_entry ... ok",
            "test app::failed_receive_is_reported ... ok, failed as expected",
        ] {
            assert!(
                test.contains(expected),
                "template test output lacks {expected:?}"
            );
        }
        assert!(
            test.lines().any(|line| line == "3 passed, 0 failed"),
            "wrong summary"
        );
    }
    let _ = std::fs::remove_dir_all(&copy);
}

/// `spindle-qemu` with `args`: (exit code, stdout, stderr).
fn runner(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .args(args)
        .output()
        .expect("cannot run spindle-qemu");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// Bad input to the cargo runner is a clear message and a non-zero exit, never a panic: a file
/// that is not an ELF, an ELF for another machine, and an image that never exits (QEMU held
/// stopped with `-S`), which the timeout names.
#[test]
fn tier3_runner_refuses_bad_input() {
    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    setup();
    let not_elf = std::env::temp_dir().join(format!("spindle-not-elf-{}", std::process::id()));
    std::fs::write(&not_elf, b"#!/bin/sh\necho hello\n").expect("writing a scratch file");
    let cases = [
        (not_elf.to_str().expect("utf-8 path"), "not an ELF file"),
        (env!("CARGO_BIN_EXE_spindle-qemu"), "not big-endian"),
        ("/nonexistent/image", "cannot read /nonexistent/image"),
    ];
    for (file, message) in cases {
        let (code, _, stderr) = runner(&["run", file]);
        assert_eq!(code, Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains(message),
            "{file}: lacks {message:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_file(&not_elf);

    let (code, built, stderr) = runner(&["build", "demo"]);
    assert_eq!(code, Some(0), "{stderr}");
    let elf = built.lines().next().expect("build prints the ELF path");
    let (code, _, stderr) = runner(&["run", elf, "--timeout", "2", "--", "-S"]);
    assert_eq!(code, Some(124), "a hang exits 124: {stderr}");
    assert!(
        stderr.contains("timeout: the image demo did not finish within 2 s"),
        "{stderr}"
    );
    let (code, _, stderr) = runner(&["run", elf, "some::filter"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is not a test image"), "{stderr}");
}

/// A user's image through the cargo runner's path (`spindle-qemu run ELF --net HOST:GUEST`):
/// the echo image serves a client on the forwarded port of 127.0.0.1. Closing the runner's
/// stdout ends the run (the runner stops the machine rather than orphan it).
#[test]
fn tier3_run_elf_with_net_serves_a_host_client() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let _serial = SERIAL.lock().unwrap_or_else(|poison| poison.into_inner());
    setup();
    let (code, built, stderr) = runner(&["build", "echo"]);
    assert_eq!(code, Some(0), "{stderr}");
    let elf = built.lines().next().expect("build prints the ELF path");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle-qemu"))
        .args(["run", elf, "--net", &format!("{port}:7"), "--timeout", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run spindle-qemu");
    let mut console = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    while !line.starts_with("echo: listening") {
        line.clear();
        let read = console.read_line(&mut line).expect("reading the console");
        assert!(read > 0, "the image ended before it listened");
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the guest");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(&message).expect("send");
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).expect("the echo");
    assert_eq!(back, message);
    // Closing the console pipe first: the guest's next line (this connection's report) ends it.
    drop(console);
    drop(stream);
    let start = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the runner did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
