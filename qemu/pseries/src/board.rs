//! Boot sequence, the machine facts found at boot, and leaving QEMU with a status.

use crate::{console, heap, platform};
use core::fmt::Write;
use spindle_arch::powerpc64::{irq, percpu, pmc, timebase::Frequency, timer};
use spindle_drivers::devtree::Machine;
use spindle_drivers::rtas::{Rtas, Tokens};

/// Decrementer ticks per second on every CPU.
pub const TICK_HZ: u32 = 100;

/// RTAS tokens of QEMU 7.2, used only when the device tree cannot be read at all, so that even
/// that failure can end the run with a status instead of a hang.
const FALLBACK_TOKENS: Tokens = Tokens {
    power_off: Some(0x2003),
    os_term: Some(0x201f),
    start_cpu: None,
    get_time_of_day: None,
    set_xive: None,
};

/// What the board found at boot.
#[derive(Debug)]
pub struct Board {
    /// The device tree's description of the machine.
    pub machine: Machine<'static>,
    /// RTAS services with the tree's tokens.
    pub rtas: Rtas,
    /// Address of the device tree (r3 at boot).
    pub fdt_addr: usize,
    /// Heap region.
    pub heap_start: usize,
    /// Heap size in bytes.
    pub heap_bytes: usize,
    /// PMC5 when the first Rust code ran: instructions from the reset vector to Rust.
    pub boot_to_rust_instructions: u32,
    /// The timebase frequency.
    pub timebase: Frequency,
}

impl Board {
    /// CPUs the kernel may use: the tree's CPU threads, at most [`percpu::MAX_CPUS`].
    pub fn cpu_count(&self) -> usize {
        self.machine.cpu_servers.len().min(percpu::MAX_CPUS)
    }

    /// Interrupt server number of CPU `cpu`.
    pub fn server(&self, cpu: usize) -> Option<u32> {
        self.machine
            .cpu_servers
            .get(cpu)
            .copied()
            .filter(|_| cpu < self.cpu_count())
    }
}

static BOARD: spin::Once<Board> = spin::Once::new();

/// The board's boot-time facts.
///
/// # Panics
/// Before the board has booted (only code running before `spindle_board_entry` could see that).
pub fn board() -> &'static Board {
    match BOARD.get() {
        Some(board) => board,
        None => panic!("spindle-pseries: board() called before boot finished"),
    }
}

// The image's main function, defined by [`crate::entry!`], is reached through this stub, whose
// reference to it is weak: an image without `entry!` then fails to link with the link script's
// message naming the macro, not with a bare "undefined symbol". The stub shares the image's one
// TOC, so a plain branch reaches the function.
core::arch::global_asm!(
    ".weak spindle_image_main",
    ".section .text.spindle_call_image_main, \"ax\", @progbits",
    ".global __spindle_call_image_main",
    ".hidden __spindle_call_image_main",
    ".p2align 2",
    "__spindle_call_image_main:",
    "    b spindle_image_main",
);

unsafe extern "C" {
    /// Tail-calls the image's `extern "C" fn spindle_image_main() -> !`.
    fn __spindle_call_image_main() -> !;
}

unsafe extern "C" {
    /// End of the image (after .bss and the stacks), from the linker script.
    static __image_end: u8;
}

/// First Rust code: called by `_start` on CPU 0 with the device tree address and PMC5.
#[unsafe(no_mangle)]
extern "C" fn spindle_board_entry(fdt_addr: usize, pmc5_at_entry: u64) -> ! {
    // SAFETY: QEMU passes the address of its device tree in r3 and leaves it in place; nothing
    // in the image writes there (the heap is checked against it below).
    let machine = match unsafe { Machine::from_address(fdt_addr) } {
        Ok(machine) => machine,
        Err(err) => fail_early(format_args!(
            "cannot read the device tree at {fdt_addr:#x}: {err}"
        )),
    };
    let rtas = Rtas::new(machine.rtas);
    let frequency = match Frequency::new(machine.timebase_hz) {
        Ok(frequency) => frequency,
        Err(err) => fail_early(format_args!("{err}")),
    };
    timer::init(frequency);

    let image_end = core::ptr::addr_of!(__image_end) as usize;
    let heap_bytes = match option_env!("SPINDLE_HEAP_SIZE").map(str::parse::<usize>) {
        None => crate::DEFAULT_HEAP_BYTES,
        Some(Ok(bytes)) => bytes,
        Some(Err(_)) => fail_early(format_args!("SPINDLE_HEAP_SIZE is not a byte count")),
    };
    let heap_start = image_end.next_multiple_of(4096);
    // The heap must end below the device tree (QEMU puts it near the top of real-mode memory).
    let limit = fdt_addr.min(machine.rma_bytes as usize);
    if heap_start
        .checked_add(heap_bytes)
        .is_none_or(|end| end > limit)
    {
        fail_early(format_args!(
            "a heap of {heap_bytes} bytes does not fit: {} bytes are free between the image end \
             ({heap_start:#x}) and the device tree ({fdt_addr:#x}); boot with more memory (-m) or \
             build with a smaller heap (spindle-qemu --heap)",
            limit.saturating_sub(heap_start)
        ));
    }
    // SAFETY: [heap_start, heap_start + heap_bytes) lies after everything the linker placed
    // (image_end) and before the device tree, inside real-mode memory (checked just above), and
    // nothing else in the image uses it.
    unsafe { heap::init(heap_start, heap_bytes) };

    BOARD.call_once(|| Board {
        machine,
        rtas,
        fdt_addr,
        heap_start,
        heap_bytes,
        boot_to_rust_instructions: pmc5_at_entry as u32,
        timebase: frequency,
    });
    platform::install();
    if let Err(err) = spindle_drivers::xics::set_priority(spindle_drivers::xics::PRIORITY_NONE) {
        fail_early(format_args!(
            "cannot open the interrupt priority of CPU 0: {err}"
        ));
    }
    timer::set_tick_hz(TICK_HZ);
    print_summary();
    irq::enable();
    // SAFETY: the stub tail-calls the image's main function, which `entry!` defines with this
    // signature (the link script refuses an image without it).
    unsafe { __spindle_call_image_main() }
}

/// Prints the boot banner and the platform summary.
fn print_summary() {
    let board = board();
    let machine = &board.machine;
    spindle::kprintln!(
        "Spindle {} on {} (pseries)",
        env!("CARGO_PKG_VERSION"),
        machine.model
    );
    spindle::kprintln!(
        "  memory   {} MiB (real-mode area {} MiB)",
        machine.memory_bytes >> 20,
        machine.rma_bytes >> 20
    );
    spindle::kprintln!(
        "  cpus     {} (device tree lists {})",
        board.cpu_count(),
        machine.cpu_servers.len()
    );
    spindle::kprintln!("  timebase {} Hz, tick {} Hz", machine.timebase_hz, TICK_HZ);
    spindle::kprintln!(
        "  heap     {} KiB at {:#x}",
        board.heap_bytes >> 10,
        board.heap_start
    );
    spindle::kprintln!(
        "  boot-to-rust: {} instructions",
        board.boot_to_rust_instructions
    );
}

/// Leaves QEMU: `success` powers off (exit status 0), failure terminates the OS (exit status 1
/// with `-action panic=exit-failure`, which the runner always passes).
pub fn exit(success: bool) -> ! {
    irq::disable();
    let instructions = pmc::instructions();
    let tokens = BOARD
        .get()
        .map_or(FALLBACK_TOKENS, |board| board.machine.rtas);
    let mut out = console::Raw;
    let _ = writeln!(
        out,
        "spindle: boot-to-exit: {instructions} instructions on CPU {}",
        percpu::cpu_index()
    );
    let _ = writeln!(
        out,
        "spindle: exit {}",
        if success { "success" } else { "failure" }
    );
    let rtas = Rtas::new(tokens);
    let err = if success {
        rtas.power_off()
    } else {
        rtas.os_term(c"spindle: run failed (see the console)")
    };
    let _ = writeln!(
        out,
        "spindle: could not leave QEMU through RTAS: {err}; halting this CPU"
    );
    loop {
        core::hint::spin_loop();
    }
}

/// A failure before the board is fully up: report it and leave with the fallback tokens.
fn fail_early(message: core::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(console::Raw, "spindle: boot failed: {message}");
    exit(false)
}
