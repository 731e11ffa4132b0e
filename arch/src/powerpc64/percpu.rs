//! Per-CPU blocks: each CPU's index, stacks, timer state and wake flag, reached through r13.
//!
//! The boot code points r13 (and SPRG0, for the vector code) at the CPU's block before any Rust
//! runs. ELFv2 reserves r13 and `no_std` code has no thread-local storage, so nothing else ever
//! writes it; the tasklet switch does not save it either, so it always names the CPU running the
//! code. PIR is no use for this: under QEMU it reads 0 on every CPU started through RTAS.
//!
//! This is the ground floor of the bare-metal modules: it imports none of them (the boot code's
//! secondary-CPU entry it names by its symbol only). The boot code ([`super::boot`]) reads the
//! blocks' layout and runs a secondary CPU's recorded entry; the decrementer driver
//! ([`super::timer`]) keeps its schedule in the [`CpuTimer`] of each block.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};

/// Most CPUs a Spindle image drives; CPUs beyond it in the device tree stay stopped.
pub const MAX_CPUS: usize = 8;
/// Bytes of each CPU's boot stack (the stack its entry function runs on).
pub const CPU_STACK_BYTES: usize = 128 * 1024;
/// Bytes of each CPU's crash stack (used only by the crash report of an unexpected interrupt).
pub const CRASH_STACK_BYTES: usize = 64 * 1024;

const _: () =
    assert!(CPU_STACK_BYTES.is_multiple_of(0x10000) && CRASH_STACK_BYTES.is_multiple_of(0x10000));

/// One CPU's block. Fields are atomics: other CPUs read them (wake flags, start state).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct PerCpu {
    index: u64,
    stack_top: AtomicU64,
    crash_stack_top: AtomicU64,
    entry: AtomicUsize,
    started: AtomicBool,
    /// Set by `wake_cpu`, consumed by the CPU's idle loop.
    pub wake_pending: AtomicBool,
    /// Timer state of this CPU (see [`super::timer`]).
    pub timer: CpuTimer,
    /// A word the kernel keeps per CPU (its scheduler's address), so that finding it on every
    /// switch is one r13-relative load instead of a call through the platform.
    pub kernel_slot: AtomicUsize,
}

/// Byte offsets into [`PerCpu`] used by the boot assembly.
pub mod offsets {
    use super::PerCpu;
    use core::mem::offset_of;

    /// `stack_top`.
    pub const STACK_TOP: usize = offset_of!(PerCpu, stack_top);
    /// `crash_stack_top`.
    pub const CRASH_STACK_TOP: usize = offset_of!(PerCpu, crash_stack_top);
}

impl PerCpu {
    const fn new(index: u64) -> Self {
        Self {
            index,
            stack_top: AtomicU64::new(0),
            crash_stack_top: AtomicU64::new(0),
            entry: AtomicUsize::new(0),
            started: AtomicBool::new(index == 0),
            wake_pending: AtomicBool::new(false),
            timer: CpuTimer::new(),
            kernel_slot: AtomicUsize::new(0),
        }
    }

    /// This block's CPU index (0 is the boot CPU).
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// Whether this CPU was started (the boot CPU always is).
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The entry function [`prepare_secondary`] recorded for this (secondary) CPU.
    pub(super) fn secondary_entry(&self) -> fn(usize) -> ! {
        let entry = self.entry.load(Ordering::Acquire);
        // SAFETY: `entry` was stored from a `fn(usize) -> !` by prepare_secondary before the
        // firmware was asked to start this CPU, and fn pointers round-trip through usize.
        unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) }
    }
}

/// One CPU's timer schedule and counters, kept in its block. The decrementer driver
/// ([`super::timer`]) owns the schedule: it alone writes these fields (with interrupts masked, or
/// from the decrementer interrupt) and programs the decrementer from them. Times are timebase
/// values; a deadline of 0 means "none".
#[derive(Debug)]
pub struct CpuTimer {
    pub(super) tick_period: AtomicU64,
    pub(super) next_tick: AtomicU64,
    pub(super) preempt_at: AtomicU64,
    pub(super) wake_at: AtomicU64,
    pub(super) ticks: AtomicU64,
    pub(super) deadlines: AtomicU64,
    pub(super) last_deadline_tb: AtomicU64,
}

impl CpuTimer {
    const fn new() -> Self {
        Self {
            tick_period: AtomicU64::new(0),
            next_tick: AtomicU64::new(0),
            preempt_at: AtomicU64::new(0),
            wake_at: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            deadlines: AtomicU64::new(0),
            last_deadline_tb: AtomicU64::new(0),
        }
    }

    /// Periodic ticks this CPU has taken.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Relaxed)
    }

    /// The tick counter itself, for code that watches it without calls (e.g. from assembly).
    pub fn tick_counter(&self) -> &AtomicU64 {
        &self.ticks
    }

    /// Preemption deadlines that expired on this CPU.
    pub fn deadlines(&self) -> u64 {
        self.deadlines.load(Relaxed)
    }

    /// Timebase value at which the last preemption deadline was handled.
    pub fn last_deadline_tb(&self) -> u64 {
        self.last_deadline_tb.load(Relaxed)
    }
}

/// The per-CPU blocks, indexed by CPU. Initialised data (not .bss) so that the index is right even
/// for an interrupt taken before the boot code clears .bss.
#[unsafe(no_mangle)]
pub static SPINDLE_PERCPU: [PerCpu; MAX_CPUS] = {
    let mut blocks = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        blocks[i] = PerCpu::new(i as u64);
        i += 1;
    }
    blocks
};

/// Stack memory, never zeroed at boot (the linker script puts `.stacks` in a NOLOAD region).
#[repr(C, align(16))]
pub struct StackArea<const BYTES: usize>(UnsafeCell<MaybeUninit<[[u8; BYTES]; MAX_CPUS]>>);

// SAFETY: each CPU's slice is used only by that CPU (its stack); the area is never read as data.
unsafe impl<const BYTES: usize> Sync for StackArea<BYTES> {}

impl<const BYTES: usize> StackArea<BYTES> {
    /// End (highest address) of CPU `cpu`'s stack.
    fn top(&self, cpu: usize) -> u64 {
        (self.0.get() as usize + (cpu + 1) * BYTES) as u64
    }
}

/// CPU `cpu`'s boot stack as `(lowest, highest)` address.
pub fn stack_bounds(cpu: usize) -> (usize, usize) {
    let high = SPINDLE_CPU_STACKS.top(cpu) as usize;
    (high - CPU_STACK_BYTES, high)
}

/// Boot stacks of all CPUs; CPU 0's top is set up by `_start`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
pub static SPINDLE_CPU_STACKS: StackArea<CPU_STACK_BYTES> =
    StackArea(UnsafeCell::new(MaybeUninit::uninit()));

/// Crash stacks of all CPUs.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
pub static SPINDLE_CRASH_STACKS: StackArea<CRASH_STACK_BYTES> =
    StackArea(UnsafeCell::new(MaybeUninit::uninit()));

/// The calling CPU's block.
#[inline(always)]
pub fn current() -> &'static PerCpu {
    let block: *const PerCpu;
    // SAFETY: reads r13; no memory access.
    unsafe {
        core::arch::asm!("mr {}, 13", out(reg) block, options(nomem, nostack, preserves_flags, pure))
    };
    // SAFETY: the boot and secondary entry code set r13 to an element of SPINDLE_PERCPU before
    // any Rust runs, and nothing writes r13 afterwards (see the module documentation).
    unsafe { &*block }
}

/// Index of the calling CPU.
#[inline(always)]
pub fn cpu_index() -> usize {
    current().index()
}

/// Block of CPU `cpu`, or `None` beyond [`MAX_CPUS`].
pub fn get(cpu: usize) -> Option<&'static PerCpu> {
    SPINDLE_PERCPU.get(cpu)
}

/// Why a secondary CPU could not be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareError {
    /// The index is 0 (the boot CPU) or not below [`MAX_CPUS`].
    NoSuchCpu,
    /// The CPU was already started.
    AlreadyStarted,
}

/// Claims CPU `cpu` and records the entry it will run; returns the value to pass in r3 to
/// the CPU starting at [`secondary_entry_address`] (the address of its block).
///
/// The firmware call that actually starts the CPU is the board's; if it fails, call
/// [`abandon_secondary`] so that a later attempt may claim the CPU again.
pub fn prepare_secondary(cpu: usize, entry: fn(usize) -> !) -> Result<usize, PrepareError> {
    let block = match SPINDLE_PERCPU.get(cpu) {
        Some(block) if cpu != 0 => block,
        _ => return Err(PrepareError::NoSuchCpu),
    };
    if block.started.swap(true, Ordering::AcqRel) {
        return Err(PrepareError::AlreadyStarted);
    }
    block
        .stack_top
        .store(SPINDLE_CPU_STACKS.top(cpu), Ordering::Relaxed);
    block
        .crash_stack_top
        .store(SPINDLE_CRASH_STACKS.top(cpu), Ordering::Relaxed);
    block.entry.store(entry as usize, Ordering::Release);
    Ok(block as *const PerCpu as usize)
}

/// Releases a CPU claimed by [`prepare_secondary`] whose start failed.
pub fn abandon_secondary(cpu: usize) {
    if let Some(block) = SPINDLE_PERCPU.get(cpu).filter(|_| cpu != 0) {
        block.entry.store(0, Ordering::Relaxed);
        block.started.store(false, Ordering::Release);
    }
}

unsafe extern "C" {
    /// The secondary-CPU entry of the boot code ([`super::boot`]): r3 = the CPU's block.
    #[link_name = "__spindle_secondary_start"]
    fn spindle_secondary_start();
}

/// Address a secondary CPU must start at, with r3 = its per-CPU block (for RTAS `start-cpu`).
pub fn secondary_entry_address() -> usize {
    spindle_secondary_start as *const () as usize
}
