//! Secondary CPUs: started through RTAS `start-cpu` with their own stacks and per-CPU blocks.

use crate::board::board;
use spindle::platform::StartCpuError;
use spindle_arch::powerpc64::percpu::{self, PrepareError, MAX_CPUS};
use spindle_drivers::rtas::RtasError;
use spindle_drivers::xics;

/// What a secondary CPU runs: its index in, never out.
type Entry = fn(usize) -> !;

/// Entry functions of secondary CPUs, from `start_cpu` to the CPU's first code.
static ENTRIES: [spin::Mutex<Option<Entry>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];

/// First board code on a secondary CPU: admits interrupts (the wake-up IPI) at the interrupt
/// controller, then runs the entry given to [`start_cpu`].
fn secondary_main(cpu: usize) -> ! {
    if let Err(err) = xics::set_priority(xics::PRIORITY_NONE) {
        panic!("CPU {cpu}: cannot open its interrupt priority: {err}");
    }
    match ENTRIES.get(cpu).and_then(|slot| slot.lock().take()) {
        Some(entry) => entry(cpu),
        None => panic!("CPU {cpu} started without an entry function"),
    }
}

/// Starts CPU `cpu` running `entry(cpu)` on its own stack with interrupts masked and the
/// decrementer ticking at the boot CPU's rate. This is what `Platform::start_cpu` does.
pub fn start_cpu(cpu: usize, entry: Entry) -> Result<(), StartCpuError> {
    let board = board();
    let server = board
        .server(cpu)
        .filter(|_| cpu != 0)
        .ok_or(StartCpuError::NoSuchCpu)?;
    let block = percpu::prepare_secondary(cpu, secondary_main).map_err(|err| match err {
        PrepareError::NoSuchCpu => StartCpuError::NoSuchCpu,
        PrepareError::AlreadyStarted => StartCpuError::AlreadyStarted,
    })?;
    if let Some(slot) = ENTRIES.get(cpu) {
        *slot.lock() = Some(entry);
    }
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
