//! x86_64 System V: the context switch used by host tests and benchmarks.

pub mod context;
pub mod selftest;
