//! Running `qemu-system-ppc64 -M pseries`: finding (or installing) it, its arguments, and a run
//! with a timeout that streams and records the console.

use crate::quiet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The QEMU binary (`setup::QEMU_SYSTEM` installs it).
pub const QEMU: &str = "qemu-system-ppc64";
/// Printed by the image when it leaves with success; without it an exit status 0 is not trusted.
pub const SUCCESS_LINE: &str = "spindle: exit success";

/// The machine: pseries, with the TCG-unsupported security capabilities switched off so QEMU does
/// not warn about them on every boot.
const MACHINE: &str = "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off";

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

/// Set when our stdout was closed (`spindle-qemu ... | head`): the run is then ended quietly.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Where a child's stream is echoed live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    Stdout,
    Stderr,
}

/// Copies a child's stream into a buffer, and to `echo` if given, until it closes.
fn pump(
    mut from: impl Read + Send + 'static,
    echo: Option<Echo>,
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
            match echo {
                Some(Echo::Stdout) => {
                    let written = quiet::write_bytes_flushed(&mut std::io::stdout(), &chunk[..n]);
                    if written.is_err() {
                        STDOUT_CLOSED.store(true, Ordering::Relaxed);
                        echo = None;
                    }
                }
                Some(Echo::Stderr) => {
                    let mut err = std::io::stderr();
                    let _ = err.write_all(&chunk[..n]).and_then(|()| err.flush());
                }
                None => {}
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
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            // Nobody reads the console any more: stop the machine rather than orphan it.
            child.kill()?;
            child.wait()?;
            quiet::Quit.exit();
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
    let stdout_echo = echo.then_some(Echo::Stdout);
    let stderr_echo = echo.then_some(Echo::Stderr);
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
