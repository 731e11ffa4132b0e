//! Running `qemu-system-ppc64 -M pseries`: finding (or installing) it, its arguments, and a run
//! with a timeout that streams and records the console.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The QEMU binary and the Debian package that provides it.
pub const QEMU: &str = "qemu-system-ppc64";
/// Debian package of [`QEMU`].
pub const QEMU_PACKAGE: &str = "qemu-system-ppc";
/// Printed by the image when it leaves with success; without it an exit status 0 is not trusted.
pub const SUCCESS_LINE: &str = "spindle: exit success";

/// The machine: pseries, with the TCG-unsupported security capabilities switched off so QEMU does
/// not warn about them on every boot.
const MACHINE: &str = "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off";

/// Looks `program` up in `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this process runs as root (real uid 0).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().next())
            .is_some_and(|uid| uid == "0")
    })
}

/// The command that installs `package` (printed when we cannot run it ourselves).
pub fn install_hint(package: &str) -> String {
    format!("sudo apt-get update && sudo apt-get install -y {package}")
}

/// Finds `program`; if it is missing, installs `package` with apt-get when running as root,
/// otherwise fails with the exact command to run.
pub fn find_or_install(program: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(found) = find_in_path(program) {
        return Ok(found);
    }
    if !running_as_root() || find_in_path("apt-get").is_none() {
        return Err(format!(
            "{program} is not installed; install it with:\n    {}",
            install_hint(package)
        ));
    }
    eprintln!("spindle-qemu: {program} is missing; installing {package} with apt-get");
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", package][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|err| format!("cannot run apt-get: {err}"))?;
        if !status.success() {
            return Err(format!(
                "`apt-get {}` failed ({status}); install {package} by hand",
                args.join(" ")
            ));
        }
    }
    find_in_path(program)
        .ok_or_else(|| format!("{package} installed, but {program} is still not in PATH"))
}

/// How to boot one machine.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    /// The flat image.
    pub image: &'a Path,
    /// Guest memory in bytes.
    pub memory_bytes: u64,
    /// CPUs.
    pub cpus: usize,
    /// Wait for gdb on localhost:1234.
    pub gdb: bool,
    /// Extra QEMU arguments.
    pub extra: &'a [String],
}

/// The QEMU command line for `boot` (without the program name).
pub fn qemu_args(boot: &Boot<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-M",
        MACHINE,
        "-nographic",
        "-nodefaults",
        "-serial",
        "stdio",
        // A failure is reported through RTAS ibm,os-term, which QEMU treats as a guest panic.
        "-action",
        "panic=exit-failure",
        "-no-reboot",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push("-bios".into());
    args.push(boot.image.into());
    args.push("-m".into());
    args.push(format!("{}M", boot.memory_bytes.div_ceil(1 << 20)).into());
    args.push("-smp".into());
    args.push(boot.cpus.to_string().into());
    if boot.gdb {
        args.push("-s".into());
        args.push("-S".into());
    }
    args.extend(boot.extra.iter().map(OsString::from));
    args
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// QEMU's exit code; `None` if it was killed (timeout) or died by a signal.
    pub code: Option<i32>,
    /// Killed because the timeout passed.
    pub timed_out: bool,
    /// Everything the guest printed.
    pub console: String,
    /// What QEMU itself printed on stderr.
    pub stderr: String,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether QEMU exited 0 and the image said it succeeded.
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
            && self
                .console
                .lines()
                .any(|line| line.trim_end() == SUCCESS_LINE)
    }
}

/// Copies a child's stream into a buffer, and to `echo` if given, until it closes.
fn pump(
    mut from: impl Read + Send + 'static,
    echo: Option<Box<dyn Write + Send>>,
) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let handle = std::thread::spawn(move || {
        let mut echo = echo;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Some(out) = echo.as_mut() {
                let _ = out.write_all(&chunk[..n]);
                let _ = out.flush();
            }
            sink.lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, handle)
}

fn wait_with_timeout(
    child: &mut Child,
    timeout: Option<Duration>,
) -> std::io::Result<(Option<ExitStatus>, bool)> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((Some(status), false));
        }
        if timeout.is_some_and(|limit| start.elapsed() >= limit) {
            child.kill()?;
            child.wait()?;
            return Ok((None, true));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Boots `boot` with QEMU at `qemu`, writes `input` to the guest console, and waits for the end
/// or the timeout. With `echo`, the console streams to stdout (and QEMU's stderr to stderr) live.
pub fn run(
    qemu: &Path,
    boot: &Boot<'_>,
    input: Option<&str>,
    timeout: Option<Duration>,
    echo: bool,
) -> Result<Outcome, String> {
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args(qemu_args(boot))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", qemu.display()))?;
    // Keep the guest's input open until QEMU exits: closing it early is an EOF on its console.
    let mut stdin = child.stdin.take();
    if let (Some(pipe), Some(text)) = (stdin.as_mut(), input) {
        pipe.write_all(text.as_bytes())
            .map_err(|err| format!("cannot write to QEMU's console: {err}"))?;
        pipe.flush()
            .map_err(|err| format!("cannot write to QEMU's console: {err}"))?;
    }
    let stdout_echo: Option<Box<dyn Write + Send>> =
        echo.then(|| Box::new(std::io::stdout()) as Box<dyn Write + Send>);
    let stderr_echo: Option<Box<dyn Write + Send>> =
        echo.then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>);
    let (console, out_thread) = match child.stdout.take() {
        Some(out) => pump(out, stdout_echo),
        None => return Err("QEMU's stdout was not captured".into()),
    };
    let (stderr, err_thread) = match child.stderr.take() {
        Some(err) => pump(err, stderr_echo),
        None => return Err("QEMU's stderr was not captured".into()),
    };
    let (status, timed_out) =
        wait_with_timeout(&mut child, timeout).map_err(|err| format!("waiting for QEMU: {err}"))?;
    drop(stdin);
    let _ = out_thread.join();
    let _ = err_thread.join();
    let text = |buffer: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|poison| poison.into_inner()))
            .into_owned()
    };
    Ok(Outcome {
        code: status.and_then(|status| status.code()),
        timed_out,
        console: text(&console),
        stderr: text(&stderr),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_arguments_carry_image_memory_cpus_and_extras() {
        let extra = vec!["-d".to_owned(), "int".to_owned()];
        let boot = Boot {
            image: Path::new("/t/demo.bin"),
            memory_bytes: 256 << 20,
            cpus: 2,
            gdb: true,
            extra: &extra,
        };
        let args: Vec<String> = qemu_args(&boot)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("-bios /t/demo.bin -m 256M -smp 2 -s -S -d int"),
            "{joined}"
        );
        assert!(joined.contains("-action panic=exit-failure"), "{joined}");
        assert!(joined.starts_with("-M pseries,"), "{joined}");
    }

    #[test]
    fn success_needs_status_zero_and_the_success_line() {
        let outcome = |code, console: &str| Outcome {
            code,
            timed_out: false,
            console: console.into(),
            stderr: String::new(),
            elapsed: Duration::ZERO,
        };
        assert!(outcome(Some(0), "boot\nspindle: exit success\n").succeeded());
        assert!(outcome(Some(0), "boot\nspindle: exit success\r\n").succeeded());
        assert!(
            !outcome(Some(0), "boot\n").succeeded(),
            "status 0 alone is not trusted"
        );
        assert!(!outcome(Some(1), "spindle: exit success\n").succeeded());
        assert!(!outcome(None, "spindle: exit success\n").succeeded());
    }

    #[test]
    fn path_lookup_finds_sh_but_not_nonsense() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("spindle-no-such-program-xyz").is_none());
        assert_eq!(
            install_hint("qemu-user"),
            "sudo apt-get update && sudo apt-get install -y qemu-user"
        );
    }

    #[test]
    fn a_hung_child_is_killed_at_the_timeout() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let start = Instant::now();
        let (status, timed_out) =
            wait_with_timeout(&mut child, Some(Duration::from_millis(100))).unwrap();
        assert!(timed_out && status.is_none());
        assert!(start.elapsed() < Duration::from_secs(10));
        let mut quick = Command::new("true").spawn().unwrap();
        let (status, timed_out) =
            wait_with_timeout(&mut quick, Some(Duration::from_secs(10))).unwrap();
        assert!(!timed_out && status.is_some_and(|s| s.success()));
    }
}
