//! Spindle's devices: the pseries hypervisor console and RTAS, and a fault-injecting mock network.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod devtree;
pub mod hcall;
pub mod hvterm;
pub mod mock_net;
pub mod rtas;
pub mod xics;
