//! The console protocol between the host runner and the `test` image.
//!
//! The image prints [`READY`], reads one command line, and then either lists its tests (one
//! [`ListLine`] each, then [`LIST_END`]) or runs one: it prints [`RUNNING`] and the name, calls the
//! test, prints [`RETURNED`] and the name and powers off. A failing test never reaches
//! [`RETURNED`]: its panic or crash report ends the run with a failure status instead. After a
//! run command the host sends one more line, `input <token>`, for the console input test.

use crate::Expect;
use core::fmt;

/// Printed when the image is ready for a command.
pub const READY: &str = "spindle-test: ready";
/// Prefix of a list line.
pub const LIST_ITEM: &str = "spindle-test: test\t";
/// Printed after the last list line.
pub const LIST_END: &str = "spindle-test: end of list";
/// Printed (with the test name) before a test body runs.
pub const RUNNING: &str = "spindle-test: running ";
/// Printed (with the test name) after a test body returned.
pub const RETURNED: &str = "spindle-test: returned ";
/// Prefix of the input line sent after a run command.
pub const INPUT: &str = "input ";

/// What the host told the image about the machine it booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunConfig {
    /// `-m`, in bytes.
    pub memory_bytes: u64,
    /// `-smp`.
    pub cpus: usize,
    /// A value the host also sends on the input line, to check console input end to end.
    pub token: u64,
}

/// A command line from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// List the tests.
    List,
    /// Run one test.
    Run {
        /// Full test name (`suite::test`).
        name: &'a str,
        /// The machine configuration.
        config: RunConfig,
    },
}

/// A malformed command or list line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError<'a> {
    /// The line is empty.
    Empty,
    /// Not a known command.
    Unknown(&'a str),
    /// `run` without a test name.
    MissingName,
    /// A `key=value` field that is unknown or not a number.
    BadField(&'a str),
    /// A required field is missing.
    MissingField(&'static str),
}

impl fmt::Display for ProtocolError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty command"),
            Self::Unknown(word) => write!(
                f,
                "unknown command {word:?} (expected `list` or `run NAME ...`)"
            ),
            Self::MissingName => f.write_str("`run` needs a test name"),
            Self::BadField(field) => write!(f, "bad field {field:?}"),
            Self::MissingField(name) => write!(f, "missing field `{name}`"),
        }
    }
}

/// Parses a command line (without its newline).
pub fn parse_command(line: &str) -> Result<Command<'_>, ProtocolError<'_>> {
    let mut words = line.split_ascii_whitespace();
    match words.next() {
        None => Err(ProtocolError::Empty),
        Some("list") => Ok(Command::List),
        Some("run") => {
            let name = words.next().ok_or(ProtocolError::MissingName)?;
            let (mut memory_bytes, mut cpus, mut token) = (None, None, None);
            for field in words {
                let bad = ProtocolError::BadField(field);
                let (key, value) = field.split_once('=').ok_or(bad)?;
                match key {
                    "mem" => memory_bytes = Some(value.parse().map_err(|_| bad)?),
                    "cpus" => cpus = Some(value.parse().map_err(|_| bad)?),
                    "token" => token = Some(u64::from_str_radix(value, 16).map_err(|_| bad)?),
                    _ => return Err(bad),
                }
            }
            let config = RunConfig {
                memory_bytes: memory_bytes.ok_or(ProtocolError::MissingField("mem"))?,
                cpus: cpus.ok_or(ProtocolError::MissingField("cpus"))?,
                token: token.ok_or(ProtocolError::MissingField("token"))?,
            };
            Ok(Command::Run { name, config })
        }
        Some(other) => Err(ProtocolError::Unknown(other)),
    }
}

/// Why [`read_line`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError<E> {
    /// The line does not fit the buffer.
    TooLong,
    /// The input ended before a newline.
    Eof,
    /// The reader failed.
    Read(E),
}

/// Reads one line (up to `\n`, which is dropped along with a `\r` before it) into `buf`;
/// returns its length.
pub fn read_line<R: embedded_io::Read>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, LineError<R::Error>> {
    let mut len = 0;
    loop {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte) {
            Ok(0) => return Err(LineError::Eof),
            Ok(_) => {}
            Err(err) => return Err(LineError::Read(err)),
        }
        match byte[0] {
            b'\n' => {
                if len > 0 && buf[len - 1] == b'\r' {
                    len -= 1;
                }
                return Ok(len);
            }
            byte => {
                *buf.get_mut(len).ok_or(LineError::TooLong)? = byte;
                len += 1;
            }
        }
    }
}

/// Formats a run command (what the host sends).
#[derive(Debug, Clone, Copy)]
pub struct RunLine<'a> {
    /// Full test name.
    pub name: &'a str,
    /// Machine configuration.
    pub config: RunConfig,
}

impl fmt::Display for RunLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RunConfig {
            memory_bytes,
            cpus,
            token,
        } = self.config;
        write!(
            f,
            "run {} mem={memory_bytes} cpus={cpus} token={token:x}",
            self.name
        )
    }
}

/// One line of the test list, as the image prints it.
#[derive(Debug, Clone, Copy)]
pub struct ListLine<'a> {
    /// Suite name.
    pub suite: &'a str,
    /// Test name within the suite.
    pub test: &'a str,
    /// CPUs to boot with.
    pub cpus: usize,
    /// The test's own timeout in seconds; 0: the runner's default.
    pub timeout_secs: u32,
    /// Expected outcome.
    pub expect: Expect<'a>,
}

impl fmt::Display for ListLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{LIST_ITEM}{}::{}\t{}\t{}\t",
            self.suite, self.test, self.cpus, self.timeout_secs
        )?;
        match self.expect {
            Expect::Pass => f.write_str("pass"),
            Expect::Hang => f.write_str("hang"),
            Expect::Panic(message) => write!(f, "panic\t{message}"),
        }
    }
}

/// A parsed list line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry<'a> {
    /// Full test name (`suite::test`).
    pub name: &'a str,
    /// CPUs to boot with.
    pub cpus: usize,
    /// The test's own timeout in seconds; 0: the runner's default.
    pub timeout_secs: u32,
    /// Expected outcome.
    pub expect: Expect<'a>,
}

/// Parses a list line; `None` if the line is not one (other console output).
pub fn parse_list_line(line: &str) -> Option<Result<ListEntry<'_>, ProtocolError<'_>>> {
    let rest = line.strip_prefix(LIST_ITEM)?;
    let mut fields = rest.splitn(5, '\t');
    let name = fields.next().filter(|name| !name.is_empty());
    let cpus = fields.next().and_then(|cpus| cpus.parse::<usize>().ok());
    let timeout_secs = fields.next().and_then(|secs| secs.parse::<u32>().ok());
    let expect = match (fields.next(), fields.next()) {
        (Some("pass"), None) => Some(Expect::Pass),
        (Some("hang"), None) => Some(Expect::Hang),
        (Some("panic"), Some(message)) => Some(Expect::Panic(message)),
        _ => None,
    };
    Some(match (name, cpus, timeout_secs, expect) {
        (Some(name), Some(cpus), Some(timeout_secs), Some(expect)) => Ok(ListEntry {
            name,
            cpus,
            timeout_secs,
            expect,
        }),
        _ => Err(ProtocolError::BadField(rest)),
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn run_lines_round_trip_through_the_parser() {
        let config = RunConfig {
            memory_bytes: 256 << 20,
            cpus: 2,
            token: 0xbeef,
        };
        let line = format!(
            "{}",
            RunLine {
                name: "foundation::smp_start",
                config
            }
        );
        assert_eq!(
            line,
            "run foundation::smp_start mem=268435456 cpus=2 token=beef"
        );
        assert_eq!(
            parse_command(&line),
            Ok(Command::Run {
                name: "foundation::smp_start",
                config
            })
        );
        assert_eq!(parse_command("  list \r"), Ok(Command::List));
    }

    #[test]
    fn malformed_commands_are_errors() {
        assert_eq!(parse_command(""), Err(ProtocolError::Empty));
        assert_eq!(parse_command("jump"), Err(ProtocolError::Unknown("jump")));
        assert_eq!(parse_command("run"), Err(ProtocolError::MissingName));
        assert_eq!(
            parse_command("run t mem=1 cpus=1"),
            Err(ProtocolError::MissingField("token"))
        );
        assert_eq!(
            parse_command("run t mem=x cpus=1 token=1"),
            Err(ProtocolError::BadField("mem=x"))
        );
        assert_eq!(
            parse_command("run t mem=1 cpus=1 token=1 color=red"),
            Err(ProtocolError::BadField("color=red"))
        );
        assert_eq!(
            parse_command("run t mem"),
            Err(ProtocolError::BadField("mem"))
        );
    }

    #[test]
    fn read_line_splits_lines_and_reports_overflow_and_eof() {
        let mut input: &[u8] = b"run a\r\ninput 1f\nunterminated";
        let mut buf = [0u8; 16];
        assert_eq!(read_line(&mut input, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"run a");
        assert_eq!(read_line(&mut input, &mut buf), Ok(8));
        assert_eq!(&buf[..8], b"input 1f");
        assert_eq!(read_line(&mut input, &mut buf), Err(LineError::Eof));
        let mut long: &[u8] = b"0123456789abcdefXYZ\n";
        assert_eq!(read_line(&mut long, &mut buf), Err(LineError::TooLong));
    }

    #[test]
    fn list_lines_round_trip_for_every_expectation() {
        for expect in [
            Expect::Pass,
            Expect::Hang,
            Expect::Panic("unexpected exception 0x700 (program"),
        ] {
            let line = format!(
                "{}",
                ListLine {
                    suite: "s",
                    test: "t",
                    cpus: 2,
                    timeout_secs: 30,
                    expect
                }
            );
            assert_eq!(
                parse_list_line(&line),
                Some(Ok(ListEntry {
                    name: "s::t",
                    cpus: 2,
                    timeout_secs: 30,
                    expect
                }))
            );
        }
        assert_eq!(parse_list_line("Spindle 0.1.0 booting"), None);
        for bad in [
            "spindle-test: test\ts::t\ttwo\t0\tpass",
            "spindle-test: test\ts::t\t1\tsoon\tpass",
            "spindle-test: test\ts::t\t1\tpass",
            "spindle-test: test\ts::t\t1\t0\tpanic",
            "spindle-test: test\t\t1\t0\tpass",
        ] {
            assert!(matches!(parse_list_line(bad), Some(Err(_))), "{bad:?}");
        }
    }
}
