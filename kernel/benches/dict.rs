//! Benchmark placeholder: replaced by the dict benchmark.
fn main() {}
