//! Secondary CPUs: started through RTAS `start-cpu` with their own stacks and per-CPU blocks.

use crate::board::board;
use spindle::platform::StartCpuError;
use spindle_arch::powerpc64::percpu::{self, PrepareError};
use spindle_drivers::rtas::RtasError;

/// Starts CPU `cpu` running `entry(cpu)` on its own stack with interrupts masked and the
/// decrementer ticking at the boot CPU's rate. This is what `Platform::start_cpu` does.
pub fn start_cpu(cpu: usize, entry: fn(usize) -> !) -> Result<(), StartCpuError> {
    let board = board();
    let server = board
        .server(cpu)
        .filter(|_| cpu != 0)
        .ok_or(StartCpuError::NoSuchCpu)?;
    let block = percpu::prepare_secondary(cpu, entry).map_err(|err| match err {
        PrepareError::NoSuchCpu => StartCpuError::NoSuchCpu,
        PrepareError::AlreadyStarted => StartCpuError::AlreadyStarted,
    })?;
    let entry_addr = percpu::secondary_entry_address() as u64;
    board
        .rtas
        .start_cpu(server, entry_addr, block as u64)
        .map_err(|err| {
            percpu::abandon_secondary(cpu);
            match err {
                RtasError::Status(status) => StartCpuError::Firmware(status),
                _ => StartCpuError::Unsupported,
            }
        })
}
