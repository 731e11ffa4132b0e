//! The on-target test image: Spindle's own suites on the board's test harness, the same harness a
//! user's crate gets from `spindle_pseries::test_main!`.
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

#[cfg(target_arch = "powerpc64")]
spindle_pseries::test_main!(spindle_target_tests::SUITES);

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the test image runs under QEMU: run `cargo run -- test` at the repository root");
    std::process::exit(2);
}
