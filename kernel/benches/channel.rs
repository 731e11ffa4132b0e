//! Benchmark placeholder: replaced by the channel benchmark.
fn main() {}
