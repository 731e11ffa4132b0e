//! The benchmark image: PMC5 instruction counts of every registered benchmark, then of the boot.
//!
//! Each benchmark runs one warm-up sample and then [`SAMPLES`] samples of `iters` iterations;
//! the median instructions per iteration is printed as `suite::name: N instructions`.
//!
//! Built with `SPINDLE_BENCH_ONLY` (by `spindle-qemu count FILTER`), the image runs only the
//! benchmarks whose `suite::name` contains it, and calls `spindle_bench_mark` before and after
//! every sample (and twice first, to calibrate): the host counts the instructions between the
//! marks in QEMU's execution log, which is exact where PMC5 is not (QEMU adds a translated
//! block to PMC5 only if it ends in a direct branch or an exit; blocks ending in `blr`, `bctr`
//! or a branch to another page are not counted).
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

#[cfg(target_arch = "powerpc64")]
spindle_pseries::entry!(main);

/// Measured samples per benchmark.
#[cfg(target_arch = "powerpc64")]
const SAMPLES: usize = 11;

/// Only the benchmarks whose `suite::name` contains this run, between marks (see the module docs).
#[cfg(target_arch = "powerpc64")]
const ONLY: Option<&str> = option_env!("SPINDLE_BENCH_ONLY");

/// The mark the host finds in QEMU's execution log: its first translated block starts here.
#[cfg(target_arch = "powerpc64")]
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn spindle_bench_mark() {
    core::hint::black_box(());
}

/// Calls [`spindle_bench_mark`] when counting by marks.
#[cfg(target_arch = "powerpc64")]
fn mark() {
    if ONLY.is_some() {
        spindle_bench_mark();
    }
}

/// Whether `filter` is exactly `suite::bench`.
#[cfg(target_arch = "powerpc64")]
fn full_name_is(suite: &str, bench: &str, filter: &str) -> bool {
    filter.len() == suite.len() + 2 + bench.len()
        && filter.starts_with(suite)
        && filter[suite.len()..].starts_with("::")
        && filter.ends_with(bench)
}

/// Whether `suite::bench` contains `filter`.
#[cfg(target_arch = "powerpc64")]
fn full_name_contains(suite: &str, bench: &str, filter: &str) -> bool {
    let mut name = [0u8; 128];
    let mut len = 0;
    for part in [suite.as_bytes(), b"::", bench.as_bytes()] {
        let end = (len + part.len()).min(name.len());
        name[len..end].copy_from_slice(&part[..end - len]);
        len = end;
    }
    filter.is_empty()
        || name[..len]
            .windows(filter.len())
            .any(|window| window == filter.as_bytes())
}

#[cfg(target_arch = "powerpc64")]
fn main() -> ! {
    use spindle::kprintln;
    use spindle_arch::powerpc64::pmc;

    kprintln!(
        "boot::to_rust: {} instructions",
        spindle_pseries::board().boot_to_rust_instructions
    );
    if ONLY.is_some() {
        kprintln!(
            "spindle-bench: mark {:#x}, samples {}",
            spindle_bench_mark as *const () as usize,
            SAMPLES + 1
        );
        // Calibration: the marks' own cost, subtracted from every sample.
        mark();
        mark();
    }
    for suite in spindle_target_tests::BENCH_SUITES {
        for bench in suite.benches {
            if ONLY.is_some_and(|only| !full_name_contains(suite.name, bench.name, only)) {
                continue;
            }
            let cpus = spindle::platform::platform().cpu_count();
            if cpus < bench.cpus {
                kprintln!(
                    "{}::{}: skipped (needs {} CPUs, has {cpus}: cargo run -- bench --cpus {})",
                    suite.name,
                    bench.name,
                    bench.cpus,
                    bench.cpus
                );
                continue;
            }
            if let Some(only) = ONLY.filter(|_| bench.counted_by_name_only) {
                if !full_name_is(suite.name, bench.name, only) {
                    kprintln!(
                        "{}::{}: not counted (a long run: name it in full to count it)",
                        suite.name,
                        bench.name
                    );
                    continue;
                }
            }
            if ONLY.is_some() {
                kprintln!(
                    "spindle-bench: counting {}::{} iters {}",
                    suite.name,
                    bench.name,
                    bench.iters
                );
            }
            let mut per_iter = [0u64; SAMPLES];
            for sample in 0..=SAMPLES {
                mark();
                let start = pmc::instructions();
                (bench.run)(bench.iters);
                let spent = u64::from(pmc::elapsed(start, pmc::instructions()));
                mark();
                if sample > 0 {
                    per_iter[sample - 1] = spent.div_ceil(bench.iters.max(1));
                }
            }
            per_iter.sort_unstable();
            kprintln!(
                "{}::{}: {} instructions",
                suite.name,
                bench.name,
                per_iter[SAMPLES / 2]
            );
        }
    }
    // Everything since the reset vector, benchmarks included (the demo's exit line gives the
    // bare boot-to-exit figure).
    kprintln!("boot::to_exit: {} instructions", pmc::instructions());
    spindle_pseries::exit(true)
}

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the bench image runs under QEMU: run `cargo run -- bench` at the repository root");
    std::process::exit(2);
}
