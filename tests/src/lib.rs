//! Spindle's own on-target test suites and benchmarks, and the `test` and `bench` images that run them.
//!
//! # Adding tests
//! A suite is a module exporting `pub const SUITE: Suite`; add it to [`SUITES`] (one line). Each
//! [`TargetTest`] names a `fn()` that passes by returning and fails by panicking (use `assert!`).
//! The runner (`cargo run -- test`, part of `cargo test`) boots a fresh QEMU for every test, so a
//! test may leave the machine in any state; a test that panics, crashes or hangs is reported by
//! name and the run goes on. The registry types and the harness are `spindle_test`'s and the
//! board's, the same ones a user's crate gets (`spindle_pseries::test_main!`).
//!
//! ```
//! use spindle_target_tests::{Suite, TargetTest};
//! # fn ping_pong() {}
//! # fn cross_cpu() {}
//! # fn closed_send() { panic!("channel closed") }
//! pub const SUITE: Suite = Suite::new("channel", &[
//!     TargetTest::new("ping_pong", ping_pong),
//!     TargetTest::new("cross_cpu", cross_cpu).cpus(2),
//!     TargetTest::new("closed_send", closed_send).expect_panic("channel closed"),
//! ]);
//! assert_eq!(spindle_target_tests::validate(&[SUITE]), Ok(()));
//! ```
//!
//! Benchmarks work the same way with [`TargetBench`] and [`BENCH_SUITES`]: the `bench` image prints
//! the median PMC5 instruction count per iteration of each.
//!
//! Test bodies use bare-metal APIs, so the suites other than [`selftest`] exist only in PowerPC64
//! images; on the host the crate holds just the registry.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub use spindle_test::{
    find, protocol, validate, BenchSuite, Expect, RegistryError, Suite, TargetBench, TargetTest,
};

pub mod selftest;

/// Declares modules that exist only in bare-metal images.
macro_rules! bare_metal {
    ($($item:item)*) => { $( #[cfg(target_arch = "powerpc64")] $item )* };
}

bare_metal! {
    extern crate alloc;
    pub mod env;
    pub mod foundation;
    pub mod foundation_bench;
    pub mod dict;
    pub mod dict_bench;
    pub mod tasklets;
    pub mod slicing;
    pub mod channels;
    pub mod scheduling_bench;
    pub mod net;
    pub mod nic;
    pub mod sync;
    pub mod soak;
}

/// Every test suite, in run order. One line per suite.
pub const SUITES: &[Suite] = &[
    selftest::SUITE,
    #[cfg(target_arch = "powerpc64")]
    foundation::SUITE,
    #[cfg(target_arch = "powerpc64")]
    dict::SUITE,
    #[cfg(target_arch = "powerpc64")]
    tasklets::SUITE,
    #[cfg(target_arch = "powerpc64")]
    slicing::SUITE,
    #[cfg(target_arch = "powerpc64")]
    channels::SUITE,
    #[cfg(target_arch = "powerpc64")]
    net::SUITE,
    #[cfg(target_arch = "powerpc64")]
    nic::SUITE,
    #[cfg(target_arch = "powerpc64")]
    sync::SUITE,
    #[cfg(target_arch = "powerpc64")]
    soak::SUITE,
];

/// Every benchmark suite. One line per suite.
pub const BENCH_SUITES: &[BenchSuite] = &[
    #[cfg(target_arch = "powerpc64")]
    scheduling_bench::SUITE,
    #[cfg(target_arch = "powerpc64")]
    foundation_bench::SUITE,
    #[cfg(target_arch = "powerpc64")]
    net::BENCH_SUITE,
    #[cfg(target_arch = "powerpc64")]
    dict_bench::SUITE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_valid() {
        assert_eq!(validate(SUITES), Ok(()));
        assert!(find(SUITES, "selftest::panics").is_some());
    }
}
