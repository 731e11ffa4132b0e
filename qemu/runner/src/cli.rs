//! Command-line parsing for `spindle-qemu`.

use crate::machine::Forward;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One of Spindle's own images (the demo is `qemu/demo/`'s, test and bench `tests/`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// `cargo run`: boot banner and platform summary, the tasklet and echo demos (`qemu/demo/`).
    Demo,
    /// The on-target test runner image.
    Test,
    /// PMC5 benchmarks.
    Bench,
    /// A TCP echo server on the NIC (`qemu/demo/src/bin/echo.rs`).
    Echo,
}

impl Image {
    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Demo => "demo",
            Self::Test => "test",
            Self::Bench => "bench",
            Self::Echo => "echo",
        }
    }

    /// The package that holds the binary.
    pub fn package(self) -> &'static str {
        match self {
            Self::Demo | Self::Echo => "spindle-demo",
            Self::Test | Self::Bench => "spindle-target-tests",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Self::Demo, Self::Test, Self::Bench, Self::Echo]
            .into_iter()
            .find(|image| image.name() == word)
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Build and boot one of Spindle's images, streaming its console.
    Run(Image),
    /// Boot an image someone else built (the cargo runner): a test harness image runs its tests
    /// (with the filter, if any), any other image boots and streams its console.
    RunElf(PathBuf),
    /// Run the on-target tests (tier 3).
    Test,
    /// Build an image and print its section sizes.
    Size(Image),
    /// Build an image and print the paths of its ELF file and flat binary.
    Build(Image),
    /// Exact instructions per iteration of the benchmarks matching the filter, from QEMU's
    /// execution log.
    Count,
    /// Echo throughput and latency over the NIC against the host's loopback echo, and the
    /// guest's instructions per byte.
    NetBench,
    /// Run clippy on the bare-metal crates with the image flags.
    Clippy,
    /// Install what is missing when root; otherwise say how.
    Setup,
    /// Print usage.
    Help,
}

/// Options shared by the commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Guest memory (`-m`), bytes.
    pub memory_bytes: u64,
    /// CPUs (`-smp`); tests use their own count unless this is given.
    pub cpus: Option<usize>,
    /// Give up on a run (or one test) after this long; `None`: the command's default.
    pub timeout: Option<Duration>,
    /// How long a test expected to hang is given.
    pub hang_timeout: Duration,
    /// Wait for a debugger (`-s -S`), no timeout.
    pub gdb: bool,
    /// Heap size for the image build (`SPINDLE_HEAP_SIZE`), bytes.
    pub heap_bytes: Option<u64>,
    /// Tests: run only names containing this.
    pub filter: Option<String>,
    /// Tests: the filter must match the whole name.
    pub exact: bool,
    /// Tests: only list them.
    pub list: bool,
    /// Tests: treat every test as expected to pass (to see the runner catch failures).
    pub ignore_expectations: bool,
    /// Tests: show every test's console, not only failing ones.
    pub nocapture: bool,
    /// `--net`: ports of 127.0.0.1 forwarded to the guest over its NIC (QEMU user networking).
    pub forwards: Vec<Forward>,
    /// Extra QEMU arguments (after `--`).
    pub qemu_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            cpus: None,
            timeout: None,
            hang_timeout: Duration::from_secs(3),
            gdb: false,
            heap_bytes: None,
            filter: None,
            exact: false,
            list: false,
            ignore_expectations: false,
            nocapture: false,
            forwards: Vec::new(),
            qemu_args: Vec::new(),
        }
    }
}

/// pseries guest memory comes in blocks of 256 MiB; QEMU refuses other sizes.
pub const PSERIES_MEMORY_BLOCK: u64 = 256 << 20;

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see `spindle-qemu --help`)", self.0)
    }
}

/// The usage text.
pub const USAGE: &str = "\
spindle-qemu: boot PowerPC64 images in qemu-system-ppc64 -M pseries and run their tests

usage: spindle-qemu [COMMAND] [OPTIONS] [-- QEMU-ARGS...]

commands for any image (built for powerpc64-unknown-linux-musl on the board crate spindle-pseries):
  run ELF [FILTER]  boot the image; one made with spindle_pseries::test_main! runs its tests
                  instead, one fresh machine per test. As a cargo runner
                  (runner = \"spindle-qemu run\"), `cargo run` and `cargo test` come here
  setup           install what running images needs (the Rust target, qemu-system-ppc,
                  qemu-user) when run as root, or print the commands that do

commands for Spindle's own images (in a Spindle checkout):
  demo            boot the demo image (the default; what `cargo run` does)
  test [FILTER]   run the on-target tests, one fresh machine per test (tier 3)
  bench           boot the benchmark image (PMC5 instruction counts)
  echo            boot a TCP echo server on the NIC until stopped (Ctrl-C); use with
                  --net HOSTPORT:7
  netbench        echo throughput (1 KiB and 64 KiB chunks) and 64-byte round trips through the
                  NIC against the host's loopback echo; guest instructions per byte
  count FILTER    exact instructions per iteration of the benchmarks whose name contains
                  FILTER, from QEMU's execution log (PMC5 misses blocks ending in blr/bctr)
  size [IMAGE]    build an image (default demo) and print its section sizes
  build [IMAGE]   build an image and print the paths of its ELF file and flat binary
  clippy          clippy -D warnings on the bare-metal crates, with the image's flags
  help            this text

options:
  --mem SIZE            guest memory, a multiple of 256M, e.g. 512M, 1G (default 256M)
  --cpus N              CPUs (default: 2 for demo, 1 for other images, per test for tests)
  --timeout SECS        fail if the run (or one test) takes longer (default 60)
  --hang-timeout SECS   time given to a test that is expected to hang (default 3)
  --heap SIZE           heap size built into the image, e.g. 4M (default 4M; 96M for tests and benchmarks)
  --gdb                 wait for a debugger on localhost:1234 (QEMU -s -S); no timeout
  --net [udp:]HOSTPORT:GUESTPORT
                        give the machine its NIC (spapr-vlan) on QEMU's user network and forward
                        127.0.0.1:HOSTPORT to the guest's GUESTPORT, TCP unless udp: (the guest
                        is 10.0.2.15 and reaches the host's loopback at 10.0.2.2); may be repeated
  --exact               tests: FILTER must match the whole test name
  --list                tests: list them and exit
  --ignore-expectations tests: expect every test to pass (shows the runner catching failures)
  --nocapture           tests: print every test's console, not only failures'
  -- ARGS...            extra arguments for qemu-system-ppc64";

/// Parses a size such as `4096`, `512K`, `256M` or `1G` (binary units).
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let value: u64 = digits.parse().ok()?;
    value.checked_mul(1 << shift).filter(|bytes| *bytes > 0)
}

/// Parses `[udp:]HOSTPORT:GUESTPORT` (TCP unless it says `udp:`).
pub fn parse_forward(text: &str) -> Option<Forward> {
    let (udp, ports) = match text.strip_prefix("udp:") {
        Some(ports) => (true, ports),
        None => (false, text.strip_prefix("tcp:").unwrap_or(text)),
    };
    let (host, guest) = ports.split_once(':')?;
    let port = |text: &str| text.parse::<u16>().ok().filter(|port| *port != 0);
    Some(Forward {
        host: port(host)?,
        guest: port(guest)?,
        udp,
    })
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<(Command, Options), UsageError> {
    let mut options = Options::default();
    let (ours, qemu_args) = match args.iter().position(|arg| arg == "--") {
        Some(split) => (&args[..split], args[split + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    options.qemu_args = qemu_args;
    let mut words = ours.iter();
    let mut positional = Vec::new();
    while let Some(arg) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .cloned()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        let bad = |name: &str, value: &str| UsageError(format!("bad value {value:?} for {name}"));
        match arg.as_str() {
            "--mem" => {
                let text = value("--mem")?;
                options.memory_bytes = parse_size(&text)
                    .filter(|bytes| bytes.is_multiple_of(PSERIES_MEMORY_BLOCK))
                    .ok_or_else(|| bad("--mem (a multiple of 256M on pseries)", &text))?;
            }
            "--heap" => {
                let text = value("--heap")?;
                options.heap_bytes = Some(parse_size(&text).ok_or_else(|| bad("--heap", &text))?);
            }
            "--cpus" => {
                let text = value("--cpus")?;
                let cpus = text.parse().ok().filter(|n| (1..=8).contains(n));
                options.cpus = Some(cpus.ok_or_else(|| bad("--cpus (1-8)", &text))?);
            }
            "--timeout" | "--hang-timeout" => {
                let text = value(arg)?;
                let secs: f64 = text
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| bad(arg, &text))?;
                let duration = Duration::from_secs_f64(secs);
                if arg == "--timeout" {
                    options.timeout = Some(duration);
                } else {
                    options.hang_timeout = duration;
                }
            }
            "--net" => {
                let text = value("--net")?;
                let forward = parse_forward(&text)
                    .ok_or_else(|| bad("--net ([udp:]HOSTPORT:GUESTPORT, ports 1-65535)", &text))?;
                options.forwards.push(forward);
            }
            "--gdb" => options.gdb = true,
            "--exact" => options.exact = true,
            "--list" => options.list = true,
            "--ignore-expectations" => options.ignore_expectations = true,
            "--nocapture" => options.nocapture = true,
            "-h" | "--help" => return Ok((Command::Help, options)),
            flag if flag.starts_with('-') => {
                return Err(UsageError(format!("unknown option {flag}")))
            }
            word => positional.push(word),
        }
    }
    let image_arg = |rest: &[&str]| match rest {
        [] => Ok(Image::Demo),
        [word] => Image::parse(word).ok_or_else(|| {
            UsageError(format!(
                "unknown image {word:?} (demo, test, bench or echo)"
            ))
        }),
        _ => Err(UsageError("too many arguments".into())),
    };
    let command = match positional.as_slice() {
        [] | ["demo"] => Command::Run(Image::Demo),
        ["run", elf, rest @ ..] => {
            match rest {
                [] => {}
                [filter] => options.filter = Some((*filter).to_owned()),
                _ => {
                    return Err(UsageError(
                        "`run` takes an ELF file and at most one filter".into(),
                    ))
                }
            }
            Command::RunElf(PathBuf::from(elf))
        }
        ["run"] => return Err(UsageError("`run` needs the ELF file to boot".into())),
        ["bench"] => Command::Run(Image::Bench),
        ["echo"] => Command::Run(Image::Echo),
        ["netbench"] => Command::NetBench,
        ["test", rest @ ..] => {
            match rest {
                [] => {}
                [filter] => options.filter = Some((*filter).to_owned()),
                _ => return Err(UsageError("`test` takes at most one filter".into())),
            }
            Command::Test
        }
        ["count", filter] => {
            options.filter = Some((*filter).to_owned());
            Command::Count
        }
        ["count", ..] => return Err(UsageError("`count` takes one filter".into())),
        ["size", rest @ ..] => Command::Size(image_arg(rest)?),
        ["build", rest @ ..] => Command::Build(image_arg(rest)?),
        ["clippy"] => Command::Clippy,
        ["help"] => Command::Help,
        ["setup"] => Command::Setup,
        [word, ..] => return Err(UsageError(format!("unknown command {word:?}"))),
    };
    Ok((command, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn no_arguments_boot_the_demo() {
        assert_eq!(
            parse(&[]),
            Ok((Command::Run(Image::Demo), Options::default()))
        );
    }

    #[test]
    fn options_and_qemu_arguments_are_parsed() {
        let (command, options) = parse(&args(
            "bench --mem 1G --cpus 2 --timeout 2.5 --gdb -- -d int",
        ))
        .unwrap();
        assert_eq!(command, Command::Run(Image::Bench));
        assert_eq!(options.memory_bytes, 1 << 30);
        assert_eq!(options.cpus, Some(2));
        assert_eq!(options.timeout, Some(Duration::from_millis(2500)));
        assert!(options.gdb);
        assert_eq!(options.qemu_args, args("-d int"));
    }

    #[test]
    fn test_command_takes_a_filter_and_test_flags() {
        let (command, options) = parse(&args(
            "test selftest:: --ignore-expectations --hang-timeout 1 --heap 8M --exact",
        ))
        .unwrap();
        assert_eq!(command, Command::Test);
        assert_eq!(options.filter.as_deref(), Some("selftest::"));
        assert!(options.ignore_expectations && options.exact);
        assert_eq!(options.hang_timeout, Duration::from_secs(1));
        assert_eq!(options.heap_bytes, Some(8 << 20));
        assert_eq!(
            parse(&args("size test")).map(|(c, _)| c),
            Ok(Command::Size(Image::Test))
        );
        assert_eq!(
            parse(&args("build")).map(|(c, _)| c),
            Ok(Command::Build(Image::Demo))
        );
    }

    #[test]
    fn run_takes_an_elf_file_a_filter_and_options_anywhere() {
        let (command, options) = parse(&args(
            "run --cpus 2 target/x/app arith:: --exact --timeout 9",
        ))
        .unwrap();
        assert_eq!(command, Command::RunElf(PathBuf::from("target/x/app")));
        assert_eq!(options.filter.as_deref(), Some("arith::"));
        assert_eq!(options.cpus, Some(2));
        assert!(options.exact);
        assert_eq!(options.timeout, Some(Duration::from_secs(9)));
        let (command, options) = parse(&args("run app")).unwrap();
        assert_eq!(command, Command::RunElf(PathBuf::from("app")));
        assert_eq!(options.filter, None);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for line in [
            "--mem",
            "--mem lots",
            "--mem 128M",
            "--cpus 0",
            "--cpus 9",
            "--timeout -1",
            "--timeout nan",
            "--frobnicate",
            "launch",
            "test a b",
            "size rocket",
            "run",
            "run a.elf b c",
            "--net 7",
            "--net 0:7",
            "--net 5555:70000",
            "--net sctp:1:2",
            "--net",
        ] {
            assert!(parse(&args(line)).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn net_forwards_ports_and_may_repeat() {
        let (command, options) =
            parse(&args("run app.elf --net 5555:7 --net udp:8080:80")).unwrap();
        assert_eq!(command, Command::RunElf(PathBuf::from("app.elf")));
        assert_eq!(
            options.forwards,
            vec![
                Forward {
                    host: 5555,
                    guest: 7,
                    udp: false
                },
                Forward {
                    host: 8080,
                    guest: 80,
                    udp: true
                }
            ]
        );
        assert_eq!(parse(&args("--net 1:2")).unwrap().1.forwards.len(), 1);
        let (command, options) = parse(&args("echo --net 5555:7")).unwrap();
        assert_eq!(command, Command::Run(Image::Echo));
        assert_eq!(
            options.forwards,
            vec![Forward {
                host: 5555,
                guest: 7,
                udp: false
            }]
        );
        assert_eq!(parse(&args("netbench")).unwrap().0, Command::NetBench);
        assert_eq!(
            parse(&args("build echo")).unwrap().0,
            Command::Build(Image::Echo)
        );
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("256m"), Some(256 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        for bad in ["", "M", "0", "-1", "12Q", "99999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
