//! Running `qemu-system-ppc64 -M pseries`: finding (or installing) it, its arguments, and a run
//! with a timeout that streams and records the console.

use crate::hang::{MonitorSocket, Symbols};
use crate::quiet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
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
    /// TCP ports of 127.0.0.1 forwarded to the guest; any forward gives the machine its NIC.
    pub forwards: &'a [Forward],
    /// Extra QEMU arguments.
    pub extra: &'a [String],
    /// The image's symbols: a run its timeout cuts off is then reported with where each CPU
    /// was (see [`hang`]); without them (or with `gdb`) QEMU gets no monitor.
    pub hang_symbols: Option<&'a Symbols>,
}

/// A port on the host's loopback forwarded to a port of the guest (QEMU user networking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Port on 127.0.0.1.
    pub host: u16,
    /// Port in the guest (10.0.2.15).
    pub guest: u16,
    /// UDP instead of TCP.
    pub udp: bool,
}

/// The QEMU arguments giving the machine its NIC (`spapr-vlan`) on a user network that forwards
/// `forwards` from 127.0.0.1 only; the guest is 10.0.2.15 and reaches the host's loopback at
/// 10.0.2.2.
pub fn net_args(forwards: &[Forward]) -> Vec<String> {
    let mut netdev = String::from("user,id=net0");
    for forward in forwards {
        netdev.push_str(&format!(
            ",hostfwd={}:127.0.0.1:{}-:{}",
            if forward.udp { "udp" } else { "tcp" },
            forward.host,
            forward.guest
        ));
    }
    vec![
        "-netdev".into(),
        netdev,
        "-device".into(),
        "spapr-vlan,netdev=net0".into(),
    ]
}

/// A free TCP port on 127.0.0.1 (the kernel's pick; free when this returns).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| format!("no free port on 127.0.0.1: {err}"))
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
    if !boot.forwards.is_empty() {
        args.extend(net_args(boot.forwards).into_iter().map(OsString::from));
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
    /// Where each CPU was when the timeout cut the run off (see [`Boot::hang_symbols`]).
    pub hang_report: Option<String>,
    /// Everything the guest printed.
    pub console: String,
    /// What QEMU itself printed on stderr.
    pub stderr: String,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The companion's verdict, if one ran.
    pub companion: Option<Result<(), String>>,
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

/// The guest's console as a host program beside the machine sees it: what it printed so far,
/// and a way to type into it.
pub struct Console {
    output: Arc<Mutex<Vec<u8>>>,
    input: Arc<Mutex<Option<ChildStdin>>>,
    stop: AtomicBool,
}

impl Console {
    /// Everything printed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Waits for a printed line starting with `prefix`; returns the line.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            if let Some(line) = self.text().lines().find(|line| line.starts_with(prefix)) {
                return Ok(line.trim_end().to_owned());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "the guest did not print {prefix:?} within {:.0} s",
                    timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the machine (for an image that never powers off by itself, such as a server);
    /// the run then ends as killed.
    pub fn stop_machine(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Types `line` and a newline into the guest's console.
    pub fn send_line(&self, line: &str) -> Result<(), String> {
        let mut input = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let pipe = input.as_mut().ok_or("the console input is closed")?;
        pipe.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| pipe.flush())
            .map_err(|err| format!("cannot write to the guest console: {err}"))
    }
}

/// A host program run beside the machine (a test's host side): its verdict.
pub type Companion<'a> = Box<dyn FnOnce(&Console) -> Result<(), String> + Send + 'a>;

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

/// Waits for `child` to exit, to be stopped through `stop`, or for the timeout, where it runs
/// `at_timeout` (with the machine still there) and kills it.
fn wait_with_timeout(
    child: &mut Child,
    timeout: Option<Duration>,
    stop: Option<&AtomicBool>,
    at_timeout: &mut dyn FnMut(),
) -> std::io::Result<(Option<ExitStatus>, bool)> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((Some(status), false));
        }
        if stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            child.kill()?;
            child.wait()?;
            return Ok((None, false));
        }
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            // Nobody reads the console any more: stop the machine rather than orphan it.
            child.kill()?;
            child.wait()?;
            quiet::Quit.exit();
        }
        if timeout.is_some_and(|limit| start.elapsed() >= limit) {
            at_timeout();
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
    run_with(qemu, boot, input, timeout, echo, None)
}

/// [`run`], with `companion` running beside the machine (started once QEMU is); the input stays
/// open for it to type into.
pub fn run_with(
    qemu: &Path,
    boot: &Boot<'_>,
    input: Option<&str>,
    timeout: Option<Duration>,
    echo: bool,
    companion: Option<Companion<'_>>,
) -> Result<Outcome, String> {
    let start = Instant::now();
    let monitor = boot
        .hang_symbols
        .filter(|_| !boot.gdb)
        .map(|symbols| (MonitorSocket::new(), symbols));
    let mut child = Command::new(qemu)
        .args(qemu_args(boot))
        .args(monitor.iter().flat_map(|(socket, _)| socket.qemu_args()))
        .stdin(if input.is_some() || companion.is_some() {
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
    let console_view = Console {
        output: Arc::clone(&console),
        input: Arc::new(Mutex::new(stdin)),
        stop: AtomicBool::new(false),
    };
    let mut hang_report = None;
    let (waited, companion) = std::thread::scope(|scope| {
        let helper = companion.map(|run| scope.spawn(|| run(&console_view)));
        let mut at_timeout = || {
            hang_report = monitor
                .as_ref()
                .map(|(socket, symbols)| socket.report(symbols));
        };
        let waited = wait_with_timeout(
            &mut child,
            timeout,
            Some(&console_view.stop),
            &mut at_timeout,
        );
        let verdict = helper.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the host side panicked".into()))
        });
        (waited, verdict)
    });
    let (status, timed_out) = waited.map_err(|err| format!("waiting for QEMU: {err}"))?;
    drop(console_view);
    let _ = out_thread.join();
    let _ = err_thread.join();
    let text = |buffer: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|poison| poison.into_inner()))
            .into_owned()
    };
    Ok(Outcome {
        code: status.and_then(|status| status.code()),
        timed_out,
        hang_report,
        console: text(&console),
        stderr: text(&stderr),
        elapsed: start.elapsed(),
        companion,
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
            forwards: &[],
            extra: &extra,
            hang_symbols: None,
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
        assert!(!joined.contains("-netdev"), "no NIC unless asked: {joined}");
    }

    #[test]
    fn forwards_give_a_nic_on_loopback_only() {
        let forwards = [
            Forward {
                host: 5555,
                guest: 7,
                udp: false,
            },
            Forward {
                host: 6000,
                guest: 80,
                udp: true,
            },
        ];
        assert_eq!(
            net_args(&forwards).join(" "),
            "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:5555-:7,hostfwd=udp:127.0.0.1:6000-:80 \
             -device spapr-vlan,netdev=net0"
        );
        let port = free_port().unwrap();
        assert_ne!(port, 0);
    }

    #[test]
    fn success_needs_status_zero_and_the_success_line() {
        let outcome = |code, console: &str| Outcome {
            code,
            timed_out: false,
            hang_report: None,
            console: console.into(),
            stderr: String::new(),
            elapsed: Duration::ZERO,
            companion: None,
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
        let mut reported = 0;
        let (status, timed_out) = wait_with_timeout(
            &mut child,
            Some(Duration::from_millis(100)),
            None,
            &mut || reported += 1,
        )
        .unwrap();
        assert!(timed_out && status.is_none());
        assert_eq!(reported, 1, "the hang is reported before the kill");
        let mut not_hung = || panic!("only a timeout is reported");
        assert!(start.elapsed() < Duration::from_secs(10));
        let mut quick = Command::new("true").spawn().unwrap();
        let (status, timed_out) = wait_with_timeout(
            &mut quick,
            Some(Duration::from_secs(10)),
            None,
            &mut not_hung,
        )
        .unwrap();
        assert!(!timed_out && status.is_some_and(|s| s.success()));
        let stop = AtomicBool::new(true);
        let mut stopped = Command::new("sleep").arg("30").spawn().unwrap();
        let start = Instant::now();
        let (status, timed_out) = wait_with_timeout(
            &mut stopped,
            Some(Duration::from_secs(10)),
            Some(&stop),
            &mut not_hung,
        )
        .unwrap();
        assert!(
            !timed_out && status.is_none(),
            "a stop kills the child at once"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
