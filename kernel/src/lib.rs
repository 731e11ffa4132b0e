//! Spindle's portable core: tasklets, channels, tight dicts and sockets over pluggable platforms.
//!
//! The crate owns no entry point, global allocator or panic handler: a board crate (ours is
//! `qemu/pseries`) or an embedder's firmware wires those and installs a [`platform::Platform`].
//! With the `std` feature the crate runs hosted (tests, benchmarks): one scheduler per thread and a
//! std-backed platform.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod channel;
pub mod dict;
mod hooks;
pub mod net;
pub mod platform;
pub mod record;
#[cfg(feature = "scenarios")]
pub mod scenarios;
pub mod sync;
pub mod tasklet;
