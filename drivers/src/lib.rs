//! Spindle's devices: the pseries hypervisor console, RTAS and virtual NIC, the TCP/IP stack over
//! it, and a fault-injecting mock network.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod devtree;
pub mod hcall;
pub mod hvterm;
pub mod llan;
#[cfg(any(test, feature = "llan-model"))]
pub mod llan_model;
pub mod mock_net;
pub mod rtas;
pub mod tcpip;
pub mod xics;
