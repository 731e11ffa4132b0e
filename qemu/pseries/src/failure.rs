//! Panics and unexpected interrupts: print what happened, then leave QEMU with a failure.
//!
//! Both paths write through the lock-free console (the failing code may hold the console lock)
//! and end in [`crate::exit`]. A failure while already failing (a panic inside a crash report,
//! or two CPUs failing at once) skips straight to the exit so that it can never loop or hang.

use crate::console::Raw;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use spindle_arch::powerpc64::crash::{Registers, Summary};
use spindle_arch::powerpc64::vectors::ExceptionFrame;
use spindle_arch::powerpc64::{irq, percpu};

static FAILING: AtomicBool = AtomicBool::new(false);

/// Claims the failure report; `false` if another failure is already being reported.
fn begin_failure() -> bool {
    irq::disable();
    !FAILING.swap(true, Ordering::AcqRel)
}

fn write_context(out: &mut Raw) {
    let _ = out.write_str("spindle: tasklet: ");
    let _ = spindle::tasklet::write_current(out);
    let _ = out.write_str("\n");
    match crate::heap::stats() {
        Some(stats) => {
            let _ = writeln!(
                out,
                "spindle: heap: {} of {} bytes in use",
                stats.used, stats.size
            );
        }
        None => {
            let _ = writeln!(out, "spindle: heap: locked by the failing code");
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = Raw;
    if !begin_failure() {
        let _ = writeln!(
            out,
            "\nspindle: panic on CPU {} while already failing",
            percpu::cpu_index()
        );
        crate::exit(false);
    }
    let _ = write!(out, "\nspindle: panicked on CPU {}", percpu::cpu_index());
    if let Some(location) = info.location() {
        let _ = write!(
            out,
            " at {}:{}:{}",
            location.file(),
            location.line(),
            location.column()
        );
    }
    let _ = writeln!(out, ":\n{}", info.message());
    write_context(&mut out);
    crate::exit(false)
}

/// Called by the vector code for every interrupt other than the decrementer.
#[unsafe(no_mangle)]
extern "C" fn spindle_board_exception(frame: &ExceptionFrame) -> ! {
    let mut out = Raw;
    let cpu = percpu::cpu_index();
    if !begin_failure() {
        let _ = writeln!(
            out,
            "\nspindle: {} while already failing",
            Summary { frame, cpu }
        );
        crate::exit(false);
    }
    let _ = writeln!(out, "\nspindle: CRASH: {}", Summary { frame, cpu });
    let _ = write!(out, "{}", Registers(frame));
    write_context(&mut out);
    crate::exit(false)
}
