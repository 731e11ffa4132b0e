//! Exhaustive small interleavings of the cross-CPU scheduler and channel paths, by a model checker.
//!
//! - [`seq`]: small fixed-size hashable sequences (rings, inboxes, wait queues);
//! - [`state`]: the model's state ([`state::World`]), down to each CPU's place in the kernel code;
//! - [`scenario`]: per-CPU programs of channel operations, kills and joins, the world they start
//!   from, and the expectations of their final states;
//! - [`model`]: the kernel's own steps (operations, wake-ups, cancels, the ring), one at a time;
//! - [`find_next`]: a CPU with nothing to run: inbox drain, timers, deadlock check, idle;
//! - [`invariants`]: what must hold in every state, and where the values went in a final one;
//! - [`explorer`]: the exhaustive breadth-first search, and its checks over whole runs;
//! - [`channel_cases`], [`deadlock_cases`]: the scenarios and their tests;
//! - [`mutations`]: known-bad variants of the model, each of which the checker must catch.

mod channel_cases;
mod deadlock_cases;
mod explorer;
mod find_next;
mod invariants;
mod model;
mod mutations;
mod scenario;
mod seq;
mod state;
