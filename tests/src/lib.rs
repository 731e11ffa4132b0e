//! Spindle's on-target test suites: test functions compiled into the pseries `test` image.
//!
//! # Adding tests
//! A suite is a module exporting `pub const SUITE: Suite`; add it to [`SUITES`] (one line). Each
//! [`TargetTest`] names a `fn()` that passes by returning and fails by panicking (use `assert!`).
//! The runner (`cargo run -- test`, part of `cargo test`) boots a fresh QEMU for every test, so a
//! test may leave the machine in any state; a test that panics, crashes or hangs is reported by
//! name and the run goes on.
//!
//! ```text
//! pub const SUITE: Suite = Suite::new("channel", &[
//!     TargetTest::new("ping_pong", ping_pong),
//!     TargetTest::new("cross_cpu", cross_cpu).cpus(2),
//!     TargetTest::new("closed_send", closed_send).expect_panic("channel closed"),
//! ]);
//! ```
//!
//! Benchmarks work the same way with [`TargetBench`] and [`BENCH_SUITES`]: the `bench` image prints
//! the median PMC5 instruction count per iteration of each.
//!
//! Test bodies use bare-metal APIs, so the suites other than [`selftest`] exist only in images
//! (`target_os = "none"`); the registry types and the console [`protocol`] build everywhere, and
//! the host runner shares them.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod protocol;
pub mod selftest;

/// Declares modules that exist only in bare-metal images.
macro_rules! bare_metal {
    ($($item:item)*) => { $( #[cfg(target_os = "none")] $item )* };
}

bare_metal! {
    extern crate alloc;
    pub mod env;
    pub mod foundation;
    pub mod foundation_bench;
    pub mod dict;
    pub mod tasklets;
    pub mod channels;
    pub mod scheduling_bench;
    pub mod net;
    pub mod sync;
}

/// Every test suite, in run order. One line per suite.
pub const SUITES: &[Suite] = &[
    selftest::SUITE,
    #[cfg(target_os = "none")]
    foundation::SUITE,
    #[cfg(target_os = "none")]
    dict::SUITE,
    #[cfg(target_os = "none")]
    tasklets::SUITE,
    #[cfg(target_os = "none")]
    channels::SUITE,
    #[cfg(target_os = "none")]
    net::SUITE,
    #[cfg(target_os = "none")]
    sync::SUITE,
];

/// Every benchmark suite. One line per suite.
pub const BENCH_SUITES: &[BenchSuite] = &[
    #[cfg(target_os = "none")]
    scheduling_bench::SUITE,
    #[cfg(target_os = "none")]
    foundation_bench::SUITE,
    #[cfg(target_os = "none")]
    net::BENCH_SUITE,
];

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
}

impl TargetTest {
    /// A test expected to pass on one CPU.
    pub const fn new(name: &'static str, run: fn()) -> Self {
        Self {
            name,
            run,
            expect: Expect::Pass,
            cpus: 1,
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
}

impl TargetBench {
    /// A benchmark of `iters` iterations per sample, on one CPU.
    pub const fn new(name: &'static str, run: fn(u64), iters: u64) -> Self {
        Self {
            name,
            run,
            iters,
            cpus: 1,
        }
    }

    /// The same benchmark, needing `cpus` CPUs.
    pub const fn needing_cpus(self, cpus: usize) -> Self {
        Self { cpus, ..self }
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
    fn the_registry_is_valid() {
        assert_eq!(validate(SUITES), Ok(()));
        assert!(find(SUITES, "selftest::panics").is_some());
    }

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
        let test = TargetTest::new("t", nothing).expect_panic("boom").cpus(2);
        assert_eq!((test.expect, test.cpus), (Expect::Panic("boom"), 2));
        assert_eq!(
            TargetTest::new("t", nothing).expect_hang().expect,
            Expect::Hang
        );
        assert_eq!(find(&[Suite::new("s", &[])], "s::t").map(|t| t.name), None);
        assert_eq!(find(SUITES, "no-separator").map(|t| t.name), None);
    }
}
