//! The on-target test runner: one fresh machine per test, verdicts against expectations.
//!
//! Each test boots the `test` image, which is told on its console which test to run (see
//! `spindle_test::protocol`). A test passes by returning; a panic or crash ends the
//! machine with a failure status and a report; a hang is cut off by the timeout. Tests may
//! expect to panic (with a given text in the report) or to hang.

use crate::cli::Options;
use crate::hang::Symbols;
use crate::machine::{self, Boot, Companion, Console, Forward, Outcome};
use crate::nic;
use crate::quiet::outln;
use spindle_test::protocol::{self, RunConfig, RunLine};
use spindle_test::Expect;
use std::path::Path;
use std::time::Duration;

/// Per-test timeout unless `--timeout` says otherwise.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A test as the image lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Full name, `suite::test`.
    pub name: String,
    /// CPUs to boot with.
    pub cpus: usize,
    /// The test's own timeout, if it names one.
    pub timeout: Option<Duration>,
    /// Expected outcome.
    pub expect: Expectation,
}

/// An owned [`Expect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Returns.
    Pass,
    /// Fails with a report containing this text.
    Panic(String),
    /// Never finishes.
    Hang,
}

/// What a test run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The body returned and the image powered off.
    Returned,
    /// The run failed (panic, crash, harness error) with this report.
    Failed(String),
    /// Nothing ended it before the timeout.
    Hung(Duration),
    /// QEMU exited 0 without the test reporting that it returned.
    Broken(String),
}

/// The verdict on one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As expected (with a note when a failure or hang was the expectation).
    Ok(Option<String>),
    /// Not as expected, and why.
    Failed(String),
}

/// Parses the image's `list` output.
pub fn parse_list(console: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut ended = false;
    for line in console.lines().map(str::trim_end) {
        if line == protocol::LIST_END {
            ended = true;
            break;
        }
        match protocol::parse_list_line(line) {
            None => {}
            Some(Err(err)) => return Err(format!("bad list line {line:?}: {err}")),
            Some(Ok(entry)) => cases.push(Case {
                name: entry.name.to_owned(),
                cpus: entry.cpus,
                timeout: (entry.timeout_secs > 0)
                    .then(|| Duration::from_secs(u64::from(entry.timeout_secs))),
                expect: match entry.expect {
                    Expect::Pass => Expectation::Pass,
                    Expect::Hang => Expectation::Hang,
                    Expect::Panic(text) => Expectation::Panic(text.to_owned()),
                },
            }),
        }
    }
    if ended {
        Ok(cases)
    } else {
        Err("the test image did not finish listing its tests".into())
    }
}

/// Lines that open a failure report in the console.
const REPORT_STARTS: &[&str] = &[
    "spindle: panicked",
    "spindle: CRASH",
    "spindle: boot failed",
    "spindle-test: no test named",
    "spindle-test: bad command",
    "spindle-test: cannot read",
    "spindle-test: the test registry",
    "spindle: could not leave",
];
/// Lines that close it (context the report does not need).
const REPORT_ENDS: &[&str] = &[
    "spindle: tasklet:",
    "spindle: boot-to-exit",
    "spindle: exit ",
];

/// The failure report in a console log: from the first report line to its context lines.
pub fn extract_report(console: &str) -> Option<String> {
    let mut lines = console
        .lines()
        .map(str::trim_end)
        .skip_while(|line| !REPORT_STARTS.iter().any(|s| line.starts_with(s)));
    let first = lines.next()?;
    let mut report = first.strip_prefix("spindle: ").unwrap_or(first).to_owned();
    for line in lines.take_while(|line| !REPORT_ENDS.iter().any(|e| line.starts_with(e))) {
        report.push('\n');
        report.push_str(line);
    }
    Some(report)
}

/// The last `n` lines of a console log, for failures without a report.
fn tail(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a finished run of test `name` did.
pub fn observe(outcome: &Outcome, name: &str, timeout: Duration) -> Observed {
    if outcome.timed_out {
        return Observed::Hung(timeout);
    }
    let returned = format!("{}{name}", protocol::RETURNED);
    if outcome.code == Some(0) {
        return if outcome.succeeded()
            && outcome
                .console
                .lines()
                .any(|line| line.trim_end() == returned)
        {
            Observed::Returned
        } else {
            Observed::Broken(format!(
                "QEMU exited 0, but the test never reported returning; console ends:\n{}",
                tail(&outcome.console, 8)
            ))
        };
    }
    Observed::Failed(extract_report(&outcome.console).unwrap_or_else(|| {
        let status = outcome
            .code
            .map_or("a signal".to_owned(), |code| format!("status {code}"));
        format!(
            "QEMU exited with {status} and no report; console ends:\n{}",
            tail(&outcome.console, 8)
        )
    }))
}

/// A guest that returned fails all the same when its host side failed.
fn with_host_side(observed: Observed, outcome: &Outcome) -> Observed {
    match (&observed, &outcome.companion) {
        (Observed::Returned | Observed::Failed(_), Some(Err(why))) => {
            let guest = match observed {
                Observed::Failed(report) => format!("\nguest side: {report}"),
                _ => String::new(),
            };
            Observed::Failed(format!("host side: {why}{guest}"))
        }
        _ => observed,
    }
}

/// Compares what happened with what was expected.
pub fn judge(expect: &Expectation, observed: &Observed) -> Verdict {
    let hung =
        |timeout: &Duration| format!("hung: no result within {:.1} s", timeout.as_secs_f64());
    match (expect, observed) {
        (Expectation::Pass, Observed::Returned) => Verdict::Ok(None),
        (Expectation::Pass, Observed::Failed(report)) => Verdict::Failed(report.clone()),
        (Expectation::Pass, Observed::Hung(timeout)) => Verdict::Failed(hung(timeout)),
        (_, Observed::Broken(why)) => Verdict::Failed(why.clone()),
        (Expectation::Panic(text), Observed::Failed(report)) if report.contains(text.as_str()) => {
            Verdict::Ok(Some("failed as expected".into()))
        }
        (Expectation::Panic(text), Observed::Failed(report)) => {
            Verdict::Failed(format!("failed, but its report lacks {text:?}:\n{report}"))
        }
        (Expectation::Panic(text), Observed::Returned) => {
            Verdict::Failed(format!("returned, but was expected to fail with {text:?}"))
        }
        (Expectation::Panic(text), Observed::Hung(timeout)) => Verdict::Failed(format!(
            "{}, but was expected to fail with {text:?}",
            hung(timeout)
        )),
        (Expectation::Hang, Observed::Hung(_)) => Verdict::Ok(Some("hung as expected".into())),
        (Expectation::Hang, Observed::Returned) => {
            Verdict::Failed("returned, but was expected to hang".into())
        }
        (Expectation::Hang, Observed::Failed(report)) => {
            Verdict::Failed(format!("failed, but was expected to hang:\n{report}"))
        }
    }
}

/// A per-run token the console test must read back, different for every run.
fn token(index: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32 | u64::from(nanos)) ^ index as u64
}

/// Lists the image's tests.
fn list(qemu: &Path, image: &Path, options: &Options) -> Result<Vec<Case>, String> {
    let boot = Boot {
        image,
        memory_bytes: options.memory_bytes,
        cpus: 1,
        gdb: false,
        forwards: &[],
        extra: &options.qemu_args,
        hang_symbols: None,
    };
    let outcome = machine::run(
        qemu,
        &boot,
        Some("list\n"),
        Some(DEFAULT_TEST_TIMEOUT),
        false,
    )?;
    if !outcome.succeeded() {
        let report = extract_report(&outcome.console).unwrap_or_else(|| tail(&outcome.console, 10));
        return Err(format!(
            "the test image failed to list its tests:\n{report}\n{}",
            outcome.stderr.trim_end()
        ));
    }
    parse_list(&outcome.console)
}

/// Runs the tests of `image` (the flat binary of the ELF file `elf`); returns whether all were
/// as expected. Prints one line per test and the summary `N passed, N failed`; a test cut off
/// by its timeout is reported with where each CPU was.
pub fn run(qemu: &Path, elf: &Path, image: &Path, options: &Options) -> Result<bool, String> {
    let cases = list(qemu, image, options)?;
    let symbols = Symbols::from_elf(elf);
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|case| match &options.filter {
            None => true,
            Some(filter) if options.exact => case.name == *filter,
            Some(filter) => case.name.contains(filter.as_str()),
        })
        .collect();
    if selected.is_empty() {
        let filter = options.filter.as_deref().unwrap_or("");
        return Err(format!(
            "no on-target test matches {filter:?} (see `cargo run -- test --list`)"
        ));
    }
    if options.list {
        for case in &selected {
            outln!(
                "{}: on-target test ({} CPU{})",
                case.name,
                case.cpus,
                if case.cpus == 1 { "" } else { "s" }
            );
        }
        return Ok(true);
    }
    outln!(
        "\nrunning {} on-target tests (one qemu-system-ppc64 -M pseries per test)",
        selected.len()
    );
    let mut failures = Vec::new();
    for (index, case) in selected.iter().enumerate() {
        let expect = if options.ignore_expectations {
            Expectation::Pass
        } else {
            case.expect.clone()
        };
        let timeout = match expect {
            Expectation::Hang => case.timeout.unwrap_or(options.hang_timeout),
            _ => options
                .timeout
                .or(case.timeout)
                .unwrap_or(DEFAULT_TEST_TIMEOUT),
        };
        let cpus = options.cpus.unwrap_or(case.cpus);
        let config = RunConfig {
            memory_bytes: options.memory_bytes,
            cpus,
            token: token(index),
        };
        let input = format!(
            "{}\n{}{:x}\n",
            RunLine {
                name: &case.name,
                config
            },
            protocol::INPUT,
            config.token
        );
        // A test with a host side gets the NIC and a free port of 127.0.0.1 forwarded to it.
        let host_side = nic::host_side(&case.name);
        let forwards = match host_side {
            Some(side) => {
                let host = machine::free_port()?;
                let tcp = Forward {
                    host,
                    guest: nic::GUEST_PORT,
                    udp: false,
                };
                let udp = Forward { udp: true, ..tcp };
                if side.udp {
                    vec![tcp, udp]
                } else {
                    vec![tcp]
                }
            }
            None => options.forwards.clone(),
        };
        let boot = Boot {
            image,
            memory_bytes: options.memory_bytes,
            cpus,
            gdb: false,
            forwards: &forwards,
            extra: &options.qemu_args,
            // A test that is meant to hang needs no report of where.
            hang_symbols: (expect != Expectation::Hang).then_some(&symbols),
        };
        let companion = host_side.map(|side| {
            let port = forwards[0].host;
            Box::new(move |console: &Console| (side.run)(console, port)) as Companion<'_>
        });
        let outcome =
            machine::run_with(qemu, &boot, Some(&input), Some(timeout), false, companion)?;
        let observed = with_host_side(observe(&outcome, &case.name, timeout), &outcome);
        let verdict = judge(&expect, &observed);
        let seconds = outcome.elapsed.as_secs_f64();
        match &verdict {
            Verdict::Ok(None) => outln!("test {} ... ok ({seconds:.2} s)", case.name),
            Verdict::Ok(Some(note)) => {
                outln!("test {} ... ok, {note} ({seconds:.2} s)", case.name)
            }
            Verdict::Failed(_) => outln!("test {} ... FAILED ({seconds:.2} s)", case.name),
        }
        if options.nocapture {
            outln!(
                "---- {} console ----\n{}",
                case.name,
                outcome.console.trim_end()
            );
        }
        if let Verdict::Failed(reason) = verdict {
            failures.push((case.name.clone(), reason, outcome));
        }
    }
    if !failures.is_empty() {
        outln!("\nfailures:");
        for (name, reason, outcome) in &failures {
            outln!("\n---- {name} ----\n{reason}");
            if let Some(report) = &outcome.hang_report {
                outln!("-- {report}");
            }
            if !options.nocapture {
                outln!("-- console --\n{}", outcome.console.trim_end());
            }
            if !outcome.stderr.trim().is_empty() {
                outln!("-- qemu --\n{}", outcome.stderr.trim_end());
            }
        }
        outln!("\nfailed tests:");
        for (name, _, _) in &failures {
            outln!("    {name}");
        }
    }
    outln!();
    outln!(
        "{} passed, {} failed",
        selected.len() - failures.len(),
        failures.len()
    );
    Ok(failures.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<i32>, timed_out: bool, console: &str) -> Outcome {
        Outcome {
            code,
            timed_out,
            hang_report: None,
            console: console.into(),
            stderr: String::new(),
            elapsed: Duration::ZERO,
            companion: None,
        }
    }

    const PANIC_CONSOLE: &str = "boot\nspindle-test: running s::t\n\nspindle: panicked on CPU 0 at tests/src/x.rs:3:5:\nassertion `left == right` failed\n  left: 4\n right: 5\nspindle: tasklet: none\nspindle: heap: 0 of 4 bytes in use\nspindle: boot-to-exit: 9 instructions on CPU 0\nspindle: exit failure\n";

    #[test]
    fn list_output_becomes_cases() {
        let console = "Spindle booting\nspindle-test: ready\nspindle-test: test\ts::a\t1\t0\tpass\nspindle-test: test\ts::b\t2\t0\tpanic\tboom here\nspindle-test: test\ts::c\t1\t9\thang\nspindle-test: end of list\nspindle: exit success\n";
        let cases = parse_list(console).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(
            cases[1],
            Case {
                name: "s::b".into(),
                cpus: 2,
                timeout: None,
                expect: Expectation::Panic("boom here".into())
            }
        );
        assert_eq!(cases[2].expect, Expectation::Hang);
        assert_eq!(cases[2].timeout, Some(Duration::from_secs(9)));
        assert!(
            parse_list("spindle-test: test\ts::a\t1\t0\tpass\n").is_err(),
            "a cut-off list is an error"
        );
        assert!(
            parse_list("spindle-test: test\ts::a\tx\t0\tpass\nspindle-test: end of list\n")
                .is_err()
        );
    }

    #[test]
    fn reports_are_cut_from_the_console() {
        let report = extract_report(PANIC_CONSOLE).unwrap();
        assert_eq!(report, "panicked on CPU 0 at tests/src/x.rs:3:5:\nassertion `left == right` failed\n  left: 4\n right: 5");
        let crash = "spindle: CRASH: unexpected exception 0x700 (program: illegal instruction) at 0x10 on CPU 0\n  SRR0 0x10\nspindle: tasklet: x\n";
        assert!(extract_report(crash)
            .unwrap()
            .starts_with("CRASH: unexpected exception 0x700"));
        assert_eq!(extract_report("all fine\n"), None);
    }

    #[test]
    fn runs_are_observed_as_returned_failed_hung_or_broken() {
        let timeout = Duration::from_secs(3);
        let ok = "spindle-test: running s::t\nspindle-test: returned s::t\nspindle: exit success\n";
        assert_eq!(
            observe(&outcome(Some(0), false, ok), "s::t", timeout),
            Observed::Returned
        );
        assert!(matches!(
            observe(&outcome(Some(0), false, ok), "s::other", timeout),
            Observed::Broken(_)
        ));
        assert!(
            matches!(observe(&outcome(Some(1), false, PANIC_CONSOLE), "s::t", timeout), Observed::Failed(r) if r.contains("left: 4"))
        );
        assert_eq!(
            observe(
                &outcome(None, true, "spindle-test: running s::t\n"),
                "s::t",
                timeout
            ),
            Observed::Hung(timeout)
        );
        let silent = observe(
            &outcome(Some(1), false, "spindle-test: running s::t\n"),
            "s::t",
            timeout,
        );
        assert!(matches!(silent, Observed::Failed(r) if r.contains("status 1 and no report")));
    }

    #[test]
    fn a_failed_host_side_fails_the_test() {
        let ok =
            "spindle-test: running nic::t\nspindle-test: returned nic::t\nspindle: exit success\n";
        let mut run = outcome(Some(0), false, ok);
        let timeout = Duration::from_secs(3);
        assert_eq!(
            with_host_side(observe(&run, "nic::t", timeout), &run),
            Observed::Returned
        );
        run.companion = Some(Ok(()));
        assert_eq!(
            with_host_side(observe(&run, "nic::t", timeout), &run),
            Observed::Returned
        );
        run.companion = Some(Err("echo differs at byte 9".into()));
        assert_eq!(
            with_host_side(observe(&run, "nic::t", timeout), &run),
            Observed::Failed("host side: echo differs at byte 9".into())
        );
        let hung = outcome(None, true, "");
        assert_eq!(
            with_host_side(observe(&hung, "nic::t", timeout), &hung),
            Observed::Hung(timeout),
            "a hang stays a hang"
        );
    }

    #[test]
    fn verdicts_follow_expectations() {
        let failed = Observed::Failed("panicked at x: deliberate boom".into());
        let hung = Observed::Hung(Duration::from_secs(3));
        assert_eq!(
            judge(&Expectation::Pass, &Observed::Returned),
            Verdict::Ok(None)
        );
        assert!(
            matches!(judge(&Expectation::Pass, &failed), Verdict::Failed(r) if r.contains("deliberate boom"))
        );
        assert!(
            matches!(judge(&Expectation::Pass, &hung), Verdict::Failed(r) if r.starts_with("hung"))
        );
        let boom = Expectation::Panic("boom".into());
        assert_eq!(
            judge(&boom, &failed),
            Verdict::Ok(Some("failed as expected".into()))
        );
        assert!(
            matches!(judge(&Expectation::Panic("bang".into()), &failed), Verdict::Failed(r) if r.contains("lacks"))
        );
        assert!(matches!(
            judge(&boom, &Observed::Returned),
            Verdict::Failed(_)
        ));
        assert!(matches!(judge(&boom, &hung), Verdict::Failed(_)));
        assert_eq!(
            judge(&Expectation::Hang, &hung),
            Verdict::Ok(Some("hung as expected".into()))
        );
        assert!(matches!(
            judge(&Expectation::Hang, &Observed::Returned),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(&Expectation::Hang, &failed),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(&Expectation::Hang, &Observed::Broken("x".into())),
            Verdict::Failed(_)
        ));
    }
}
