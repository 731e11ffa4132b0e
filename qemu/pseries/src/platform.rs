//! The kernel's [`Platform`] on pseries, and the decrementer hook that drives preemption.

use crate::board::board;
use core::sync::atomic::Ordering;
use spindle::platform::{Platform, StartCpuError};
use spindle_arch::powerpc64::vectors::InterruptFrame;
use spindle_arch::powerpc64::{irq, percpu, timer};
use spindle_drivers::{hcall, xics};

/// QEMU pseries as a [`Platform`].
#[derive(Debug)]
struct Pseries;

static PSERIES: Pseries = Pseries;

/// Installs the platform (once, at boot).
pub fn install() {
    // A second install can only come from a board bug; the first one stays in force.
    let _ = spindle::platform::install(&PSERIES);
}

impl Platform for Pseries {
    fn console_write(&self, bytes: &[u8]) {
        crate::console::write(bytes);
    }

    fn now_ns(&self) -> u64 {
        timer::now_ns()
    }

    fn cpu_index(&self) -> usize {
        percpu::cpu_index()
    }

    fn cpu_count(&self) -> usize {
        board().cpu_count()
    }

    fn cpu_stack_bounds(&self) -> Option<(usize, usize)> {
        Some(percpu::stack_bounds(percpu::cpu_index()))
    }

    /// Cedes the CPU to the hypervisor (H_CEDE) until a wake-up, the deadline or the next tick.
    fn idle(&self, deadline_ns: Option<u64>) {
        let me = percpu::current();
        let was_enabled = irq::disable();
        if !me.wake_pending.swap(false, Ordering::AcqRel) {
            let due = deadline_ns.is_some_and(|deadline| timer::now_ns() >= deadline);
            if !due {
                timer::set_wake_at(deadline_ns.map(timer::ns_to_timebase));
                // Returns on an interrupt, taken right after since cede sets MSR[EE]: the tick,
                // the deadline, or a wake-up IPI, which stays pending if it was sent after the
                // flag check above. A wake-up before the flag is cleared is answered by this return.
                hcall::cede();
                timer::set_wake_at(None);
                me.wake_pending.store(false, Ordering::Release);
            }
        }
        if was_enabled {
            irq::enable();
        } else {
            irq::disable();
        }
    }

    fn wake_cpu(&self, cpu: usize) {
        let Some(block) = percpu::get(cpu) else {
            return;
        };
        block.wake_pending.store(true, Ordering::Release);
        if cpu == percpu::cpu_index() {
            return; // the flag alone makes this CPU's next idle return
        }
        if let Some(server) = board().server(cpu) {
            // The IPI stays pending until the target takes it, so even a CPU about to cede wakes
            // up (H_PROD would not do: QEMU drops its latch whenever the target CPU resumes).
            let _ = xics::send_ipi(server, xics::PRIORITY_IPI);
        }
    }

    fn set_preempt_deadline(&self, deadline_ns: Option<u64>) {
        timer::set_preempt_deadline(deadline_ns.map(timer::ns_to_timebase));
    }

    fn preempts(&self) -> bool {
        true
    }

    fn exit(&self, success: bool) -> ! {
        crate::exit(success)
    }

    fn start_cpu(&self, cpu: usize, entry: fn(usize) -> !) -> Result<(), StartCpuError> {
        crate::smp::start_cpu(cpu, entry)
    }
}

/// Called by the external-interrupt vector with interrupts masked: takes the wake-up IPI (its only
/// job is to end a cede) and ends any other source, which nothing here enables.
#[unsafe(no_mangle)]
extern "C" fn spindle_board_external(_frame: &mut InterruptFrame) {
    let Ok(xirr) = xics::accept() else { return };
    if xics::source(xirr) == xics::XISR_IPI {
        if let Some(server) = board().server(percpu::cpu_index()) {
            let _ = xics::send_ipi(server, xics::PRIORITY_NONE);
        }
    }
    if xics::source(xirr) != 0 {
        let _ = xics::end(xirr);
    }
}

/// Called by the decrementer vector with interrupts masked, on the interrupted stack.
#[unsafe(no_mangle)]
extern "C" fn spindle_board_timer(_frame: &mut InterruptFrame) {
    if timer::on_interrupt().preempt {
        // May switch tasklets and return much later; the frame waits on this stack.
        spindle::tasklet::timer_interrupt();
    }
}
