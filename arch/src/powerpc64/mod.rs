//! PowerPC64 (big-endian, ELFv2): context switch, and bare-metal boot, vectors, timer and counters.

pub mod context;
