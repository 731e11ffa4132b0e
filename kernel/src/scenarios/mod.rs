//! Test bodies shared by the host, user-mode and on-target suites (feature `scenarios`).
//!
//! Each scenario is a function that panics on failure. A host test in `kernel/tests/` (tiers 1
//! and 2: x86_64 and user-mode PowerPC64) and an on-target test in `tests/src/` (tier 3, bare
//! metal) both call it, each with the sizes and counts that suit its tier as parameters, and
//! each keeps its own name. What needs threads stays in the host suite; what needs bare-metal
//! APIs (the decrementer, interrupts, secondary CPUs) stays in the target suite.
//!
//! - The seed scenario (re-exported here from `seed`): a value in flight survives whatever
//!   cleanup runs after the switch away from a dying sender.
//! - [`sync`]: Lock, Event and Queue on one CPU.
//! - [`tasklets`]: run order, yielding, kill and throw, sleeps, stacks, spilling, the budget.
//! - [`slicing`]: sliced tasklets: saved slices, hand-offs into them, kill, spill, overflow, budget.
//! - [`soak`]: random programs on every CPU for a given time, every value counted to its drop.

// Every function under this module is `#[inline]`, so that its code is generated only in the
// suites that call it. As ordinary functions they would be compiled into the kernel's own object,
// and the linker would keep them in every image (23 KB in the demo) although only the test image
// calls them.

mod seed;
pub mod slicing;
pub mod soak;
pub mod sync;
pub mod tasklets;

pub use seed::{
    deep, receive_deep, seed_round, seed_rounds, triangle, SeedDepths, SeedRound, Trap,
};
