//! Spindle's CPU layer: one module per CPU behind one small contract.
//!
//! Every CPU module provides the context switch used by tasklets ([`context`]). The bare-metal
//! PowerPC64 module adds boot, exception vectors, the decrementer, the timebase and PMC5.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "powerpc64")]
pub mod powerpc64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(not(any(target_arch = "powerpc64", target_arch = "x86_64")))]
compile_error!("spindle-arch: support for this architecture is not implemented");

/// The running CPU's context switch: `switch`, `init_stack`, `call_on_stack`, `stack_pointer`.
#[cfg(target_arch = "powerpc64")]
pub use powerpc64::context;
/// The running CPU's context switch: `switch`, `init_stack`, `call_on_stack`, `stack_pointer`.
#[cfg(target_arch = "x86_64")]
pub use x86_64::context;
