//! Spindle's demo application: what the `demo` image (`cargo run` at the repository root) runs.
//!
//! - [`echo`]: an echo server and clients over the fault-injecting mock network, one client
//!   reset mid-transfer (portable: also run on the host by `tests/echo.rs`, and on target by
//!   the `net::` suite).
//! - `tasklets`: producer and consumer tasklets over channels on CPU 0, the squaring done by a
//!   worker on CPU 1 when the machine has two (PowerPC64 only: it starts a CPU of the board).
//! - `net_echo`: a TCP echo server on the real NIC, the `echo` image's body (PowerPC64 only).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod echo;
#[cfg(target_arch = "powerpc64")]
pub mod net_echo;
#[cfg(target_arch = "powerpc64")]
pub mod tasklets;
