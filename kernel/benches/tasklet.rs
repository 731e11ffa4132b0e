//! Benchmark placeholder: replaced by the tasklet benchmark.
fn main() {}
