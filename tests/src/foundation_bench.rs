//! Foundation benchmarks: the cost of the primitives everything else is built on, in PMC5
//! instructions per iteration (loop overhead included; see `pmc5_empty_loop`).

use crate::{BenchSuite, TargetBench};
use alloc::boxed::Box;
use core::hint::black_box;
use spindle::platform::platform;
use spindle_arch::powerpc64::{irq, timebase};

/// The foundation benchmarks.
pub const SUITE: BenchSuite = BenchSuite::new(
    "foundation",
    &[
        TargetBench::new("pmc5_empty_loop", empty_loop, 1000),
        TargetBench::new("timebase_read", timebase_read, 1000),
        TargetBench::new("now_ns", now_ns, 1000),
        TargetBench::new("cpu_index", cpu_index, 1000),
        TargetBench::new("irq_disable_restore", irq_disable_restore, 1000),
        TargetBench::new("heap_box_64_bytes", heap_box_64_bytes, 200),
    ],
);

fn empty_loop(iters: u64) {
    for i in 0..iters {
        black_box(i);
    }
}

fn timebase_read(iters: u64) {
    for _ in 0..iters {
        black_box(timebase::read());
    }
}

fn now_ns(iters: u64) {
    let platform = platform();
    for _ in 0..iters {
        black_box(platform.now_ns());
    }
}

fn cpu_index(iters: u64) {
    let platform = black_box(platform());
    for _ in 0..iters {
        black_box(platform.cpu_index());
    }
}

fn irq_disable_restore(iters: u64) {
    for _ in 0..iters {
        let was_enabled = irq::disable();
        irq::restore(black_box(was_enabled));
    }
}

fn heap_box_64_bytes(iters: u64) {
    for i in 0..iters {
        black_box(Box::new([i as u8; 64]));
    }
}
