//! Benchmark placeholder: replaced by the net benchmark.
fn main() {}
