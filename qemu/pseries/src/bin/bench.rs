//! The benchmark image: PMC5 instruction counts of every registered benchmark, then of the boot.
//!
//! Each benchmark runs one warm-up sample and then [`SAMPLES`] samples of `iters` iterations;
//! the median instructions per iteration is printed as `suite::name: N instructions`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
spindle_pseries::entry!(main);

/// Measured samples per benchmark.
#[cfg(target_os = "none")]
const SAMPLES: usize = 11;

#[cfg(target_os = "none")]
fn main() -> ! {
    use spindle::kprintln;
    use spindle_arch::powerpc64::pmc;

    kprintln!(
        "boot::to_rust: {} instructions",
        spindle_pseries::board().boot_to_rust_instructions
    );
    for suite in spindle_target_tests::BENCH_SUITES {
        for bench in suite.benches {
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
            let mut per_iter = [0u64; SAMPLES];
            for sample in 0..=SAMPLES {
                let start = pmc::instructions();
                (bench.run)(bench.iters);
                let spent = u64::from(pmc::elapsed(start, pmc::instructions()));
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

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the bench image runs under QEMU: run `cargo run -- bench` at the repository root");
    std::process::exit(2);
}
