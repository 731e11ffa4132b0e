//! Spindle's portable core: tasklets, channels, tight dicts and sockets over pluggable platforms.
//!
//! The crate owns no entry point, global allocator or panic handler: a board crate (ours is
//! `qemu/pseries`) or an embedder's firmware wires those and installs a [`platform::Platform`].
//! With the `std` feature the crate runs hosted (tests, benchmarks): one scheduler per thread and a
//! std-backed platform.
//!
//! Each public module's docs open with an example that runs as a doc test. Doc tests are hosted
//! programs, and the crate's dev-dependency on itself turns on `std` (and `scenarios`) for every
//! `cargo test` of it, doc tests included: the examples run on the std-backed platform.
//!
//! The docs use Stackless Python's terms (tasklet, main tasklet, run ring, tempval, hand-off,
//! rendezvous, balance, preference, spilling, slicing, watchdog, atomic) and speak of "the
//! seed", the Stackless-on-PS3 document Spindle was made from, with its bug, its dict table and
//! its select quirk. Each is defined, with where it lives in the code, in the "Glossary" section
//! of the repository's `README.md`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod channel;
pub mod dict;
pub mod net;
pub mod platform;
pub mod record;
#[cfg(feature = "scenarios")]
pub mod scenarios;
pub mod sync;
pub mod tasklet;
pub mod time;

/// The README's Rust examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
