//! Shared timing helpers for Spindle's benchmark commands: medians of repeated samples.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Instant;

/// Runs `op` `iters` times per sample, `samples` times, and returns the median nanoseconds per
/// operation (after one warm-up sample).
pub fn median_ns_per_op(samples: usize, iters: u64, mut op: impl FnMut()) -> f64 {
    let mut per_op = Vec::with_capacity(samples);
    for sample in 0..=samples {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        let elapsed = start.elapsed().as_nanos() as f64 / iters as f64;
        if sample > 0 {
            per_op.push(elapsed);
        }
    }
    median(&mut per_op)
}

/// Median of a sample set (mean of the middle two for even counts).
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of no samples");
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Keeps a value alive and opaque to the optimiser.
pub fn keep<T>(value: T) -> T {
    black_box(value)
}
