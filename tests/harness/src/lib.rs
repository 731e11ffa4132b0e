//! Spindle's on-target test harness: the registry of tests and benchmarks, and the console protocol.
//!
//! An image's tests are [`Suite`]s of [`TargetTest`]s; the board's harness
//! (`spindle_pseries::test_main!`) lists them and runs the one the host names, and the host
//! runner (`spindle-qemu`) boots one fresh machine per test and judges each against its
//! [`Expect`]ation. Both sides share this crate, so they agree on names and the [`protocol`].
//!
//! ```
//! use spindle_test::{validate, Expect, Suite, TargetTest};
//!
//! fn adds() {
//!     assert_eq!(2 + 2, 4);
//! }
//! fn refuses_zero() {
//!     panic!("zero is not allowed");
//! }
//!
//! const SUITES: &[Suite] = &[Suite::new(
//!     "arith",
//!     &[
//!         TargetTest::new("adds", adds),
//!         TargetTest::new("refuses_zero", refuses_zero).expect_panic("not allowed"),
//!         TargetTest::new("on_two_cpus", adds).cpus(2),
//!     ],
//! )];
//! assert_eq!(validate(SUITES), Ok(()));
//! let test = spindle_test::find(SUITES, "arith::refuses_zero").unwrap();
//! assert_eq!(test.expect, Expect::Panic("not allowed"));
//! ```
#![no_std]
#![forbid(unsafe_code)]

pub mod protocol;

/// What a test is expected to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// Return normally.
    Pass,
    /// Fail (panic or crash) with a report containing this text.
    Panic(&'a str),
    /// Never finish: the runner's hang timeout must catch it.
    Hang,
}

/// One on-target test.
#[derive(Debug, Clone, Copy)]
pub struct TargetTest {
    /// Name within its suite (no whitespace).
    pub name: &'static str,
    /// The body: passes by returning.
    pub run: fn(),
    /// Expected outcome.
    pub expect: Expect<'static>,
    /// CPUs the machine is booted with (`-smp`).
    pub cpus: usize,
    /// Seconds the runner gives the test (to return, to fail, or to show it hangs); 0: the
    /// runner's default (`--timeout`, `--hang-timeout`).
    pub timeout_secs: u32,
}

impl TargetTest {
    /// A test expected to pass on one CPU, in the runner's default time.
    pub const fn new(name: &'static str, run: fn()) -> Self {
        Self {
            name,
            run,
            expect: Expect::Pass,
            cpus: 1,
            timeout_secs: 0,
        }
    }

    /// Expects the test to panic (or crash) with a report containing `message`.
    pub const fn expect_panic(self, message: &'static str) -> Self {
        Self {
            expect: Expect::Panic(message),
            ..self
        }
    }

    /// Expects the test to hang (caught by the runner's hang timeout).
    pub const fn expect_hang(self) -> Self {
        Self {
            expect: Expect::Hang,
            ..self
        }
    }

    /// Boots the test's machine with `cpus` CPUs.
    pub const fn cpus(self, cpus: usize) -> Self {
        Self { cpus, ..self }
    }

    /// Gives the test `seconds` instead of the runner's default: a slow test gets longer, and an
    /// [`expect_hang`](Self::expect_hang) test is judged hung after this long. A `--timeout` on
    /// the runner's command line still wins for tests that should finish.
    pub const fn timeout_secs(self, seconds: u32) -> Self {
        Self {
            timeout_secs: seconds,
            ..self
        }
    }
}

/// A named group of tests; a test's full name is `suite::test`.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// Suite name (no whitespace).
    pub name: &'static str,
    /// Its tests.
    pub tests: &'static [TargetTest],
}

impl Suite {
    /// A suite of `tests`.
    pub const fn new(name: &'static str, tests: &'static [TargetTest]) -> Self {
        Self { name, tests }
    }
}

/// One on-target benchmark: `run(iters)` performs the measured operation `iters` times.
#[derive(Debug, Clone, Copy)]
pub struct TargetBench {
    /// Name within its suite.
    pub name: &'static str,
    /// Performs the operation `iters` times.
    pub run: fn(iters: u64),
    /// Iterations per sample.
    pub iters: u64,
    /// CPUs it needs: with fewer the image reports it skipped instead of a count.
    pub cpus: usize,
    /// Counted exactly (`cargo run -- count`) only when the filter is its whole name: its run
    /// is long enough that QEMU's execution log would take gigabytes.
    pub counted_by_name_only: bool,
}

impl TargetBench {
    /// A benchmark of `iters` iterations per sample, on one CPU.
    pub const fn new(name: &'static str, run: fn(u64), iters: u64) -> Self {
        Self {
            name,
            run,
            iters,
            cpus: 1,
            counted_by_name_only: false,
        }
    }

    /// The same benchmark, needing `cpus` CPUs.
    pub const fn needing_cpus(self, cpus: usize) -> Self {
        Self { cpus, ..self }
    }

    /// The same benchmark, counted exactly only when named in full (see
    /// [`TargetBench::counted_by_name_only`]); the PMC5 run (`cargo run -- bench`) always runs it.
    pub const fn counted_by_name_only(self) -> Self {
        Self {
            counted_by_name_only: true,
            ..self
        }
    }
}

/// A named group of benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct BenchSuite {
    /// Suite name.
    pub name: &'static str,
    /// Its benchmarks.
    pub benches: &'static [TargetBench],
}

impl BenchSuite {
    /// A suite of `benches`.
    pub const fn new(name: &'static str, benches: &'static [TargetBench]) -> Self {
        Self { name, benches }
    }
}

/// Why the registry is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryError<'a> {
    /// A name is empty or contains whitespace or `::` inside a part.
    BadName(&'a str),
    /// Two tests share a full name.
    Duplicate(&'a str, &'a str),
    /// A test asks for no CPUs.
    NoCpus(&'a str),
    /// An expected panic message is empty or spans fields (tab) or lines.
    BadExpectation(&'a str),
}

impl core::fmt::Display for RegistryError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadName(name) => write!(
                f,
                "bad test or suite name {name:?}: use letters, digits and _"
            ),
            Self::Duplicate(suite, name) => write!(f, "duplicate test name {suite}::{name}"),
            Self::NoCpus(name) => write!(f, "test {name} asks for 0 CPUs"),
            Self::BadExpectation(name) => write!(
                f,
                "test {name}: expected panic text must be one non-empty line"
            ),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks names (non-empty, `[A-Za-z0-9_]`), uniqueness and CPU counts.
pub fn validate(suites: &[Suite]) -> Result<(), RegistryError<'static>> {
    if let Some(suite) = suites.iter().find(|suite| !valid_name(suite.name)) {
        return Err(RegistryError::BadName(suite.name));
    }
    let all = || {
        suites
            .iter()
            .flat_map(|suite| suite.tests.iter().map(move |test| (suite.name, test)))
    };
    for (i, (suite, test)) in all().enumerate() {
        if !valid_name(test.name) {
            return Err(RegistryError::BadName(test.name));
        }
        if test.cpus == 0 {
            return Err(RegistryError::NoCpus(test.name));
        }
        if let Expect::Panic(message) = test.expect {
            if message.is_empty() || message.contains(['\t', '\n']) {
                return Err(RegistryError::BadExpectation(test.name));
            }
        }
        if all()
            .take(i)
            .any(|(other_suite, other)| other_suite == suite && other.name == test.name)
        {
            return Err(RegistryError::Duplicate(suite, test.name));
        }
    }
    Ok(())
}

/// Finds a test by full name (`suite::test`).
pub fn find(suites: &[Suite], full_name: &str) -> Option<TargetTest> {
    let (suite_name, test_name) = full_name.split_once("::")?;
    let suite = suites.iter().find(|suite| suite.name == suite_name)?;
    suite
        .tests
        .iter()
        .find(|test| test.name == test_name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() {}

    #[test]
    fn validation_catches_bad_names_duplicates_and_zero_cpus() {
        const A: &[TargetTest] = &[
            TargetTest::new("one", nothing),
            TargetTest::new("one", nothing),
        ];
        assert_eq!(
            validate(&[Suite::new("s", A)]),
            Err(RegistryError::Duplicate("s", "one"))
        );
        const B: &[TargetTest] = &[TargetTest::new("one", nothing)];
        assert_eq!(
            validate(&[Suite::new("s", B), Suite::new("s", B)]),
            Err(RegistryError::Duplicate("s", "one"))
        );
        assert_eq!(validate(&[Suite::new("s", B), Suite::new("t", B)]), Ok(()));
        const C: &[TargetTest] = &[TargetTest::new("has space", nothing)];
        assert_eq!(
            validate(&[Suite::new("s", C)]),
            Err(RegistryError::BadName("has space"))
        );
        assert_eq!(
            validate(&[Suite::new("a::b", B)]),
            Err(RegistryError::BadName("a::b"))
        );
        const D: &[TargetTest] = &[TargetTest::new("zero", nothing).cpus(0)];
        assert_eq!(
            validate(&[Suite::new("s", D)]),
            Err(RegistryError::NoCpus("zero"))
        );
        const E: &[TargetTest] = &[TargetTest::new("tab", nothing).expect_panic("a\tb")];
        assert_eq!(
            validate(&[Suite::new("s", E)]),
            Err(RegistryError::BadExpectation("tab"))
        );
    }

    #[test]
    fn builders_set_expectations_and_cpus() {
        let test = TargetTest::new("t", nothing)
            .expect_panic("boom")
            .cpus(2)
            .timeout_secs(7);
        assert_eq!(
            (test.expect, test.cpus, test.timeout_secs),
            (Expect::Panic("boom"), 2, 7)
        );
        assert_eq!(TargetTest::new("t", nothing).timeout_secs, 0);
        assert_eq!(
            TargetTest::new("t", nothing).expect_hang().expect,
            Expect::Hang
        );
        assert_eq!(find(&[Suite::new("s", &[])], "s::t").map(|t| t.name), None);
        const ONE: &[TargetTest] = &[TargetTest::new("t", nothing)];
        assert_eq!(
            find(&[Suite::new("s", ONE)], "no-separator").map(|t| t.name),
            None
        );
    }
}
