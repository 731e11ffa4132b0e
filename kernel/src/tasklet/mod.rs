//! Tasklets: Stackless-style microthreads on a per-CPU round-robin run ring.
//!
//! ```
//! use spindle::tasklet::{self, Builder, TaskletError};
//! use std::sync::Mutex;
//!
//! static TRACE: Mutex<Vec<&str>> = Mutex::new(Vec::new());
//!
//! /// Notes its name twice, yielding to the next runnable tasklet after each.
//! fn steps(name: &'static str) -> Result<usize, TaskletError> {
//!     for _ in 0..2 {
//!         TRACE.lock().unwrap().push(name);
//!         tasklet::schedule()?; // a kill or a throw aimed at this tasklet comes back here
//!     }
//!     Ok(name.len())
//! }
//!
//! let first = tasklet::spawn(|| steps("first"))?; // runs when the caller yields or runs
//! let second = Builder::new()
//!     .name("second") // named in overflow and crash reports
//!     .stack_size(16 * 1024) // at least MIN_STACK_BYTES, in every build profile
//!     .spawn(|| steps("second"))?;
//! assert_eq!(tasklet::live_count(), 3); // the caller (main) and the two spawned
//! tasklet::run()?; // round robin until only main is left
//! let expected = ["first", "second", "first", "second"];
//! assert_eq!(*TRACE.lock().unwrap(), expected);
//! assert_eq!(first.result(), Some(Ok(Ok(5))));
//! assert_eq!(second.result(), Some(Ok(Ok(6))));
//! assert_eq!(tasklet::live_count(), 1);
//! # Ok::<(), TaskletError>(())
//! ```
//!
//! A tasklet runs a `'static` closure on its own small stack. The running tasklet yields with
//! [`schedule`]; [`run`] runs the ring until only the main tasklet (the CPU's original context)
//! is left, and [`run_with_timeout`] does so under a watchdog that hands back a tasklet that
//! overran its budget. Blocking operations (channels, [`sleep`], [`JoinHandle::join`]) return a
//! [`TaskletError`] instead of a value when the tasklet is killed, has an error thrown into it,
//! times out, or would deadlock, so code unwinds with `?` and its destructors run.
//!
//! # Preemption
//! On boards whose platform preempts (PowerPC64: the decrementer), the watchdog interrupts a
//! running tasklet from the timer interrupt. Hosted builds have no interrupts: the budget is
//! enforced at cooperative check points — [`schedule`], every channel operation, [`sleep`] and
//! [`checkpoint`] — so a loop that never reaches one is not interrupted there.
//!
//! # Atomic sections
//! [`atomic`] (or [`AtomicGuard`]) forbids involuntary switches of the current tasklet on its
//! CPU; voluntary ones (blocking, yielding) still happen. Atomic is per CPU: it does not stop
//! other CPUs, and protects nothing from them — shared state between CPUs needs a lock
//! ([`spin`] or the locks in [`crate::sync`]).
//!
//! # Stacks
//! Stacks come from a per-CPU byte budget ([`set_stack_budget`]); exhausting it fails the spawn
//! with [`TaskletError::StackBudgetExhausted`]. A stack's size counts its guard zone and is at
//! least [`MIN_STACK_BYTES`], which unoptimised builds raise (their frames are several times
//! larger), so the example above names 16 KiB, a size every profile accepts. Every switch away
//! from a tasklet checks its stack pointer against its stack and at least the guard word nearest
//! the stack: the switches of [`schedule`], of blocking and of a rendezvous check only that
//! word; the others (yields that take the full path, [`Tasklet::run`], [`Tasklet::switch`],
//! watchdog interruptions) and [`check_stack`] check every guard word. An overflowed tasklet is
//! reported on the console with its name and abandoned, and the kernel stays up. [`spill`]
//! continues deep recursion on a fresh segment when the remaining stack runs low.
//!
//! # Cost of a switch
//! The common paths of [`schedule`] and of channel operations are inlined into the caller, with
//! their bookkeeping out of line. The switch declares every non-volatile register clobbered, so
//! a loop that yields saves its live registers once rather than on every call (measured by
//! `cargo bench -p spindle --bench tasklet` and, on target, `cargo run -- bench`).
//!
//! # Cross-CPU rules
//! A tasklet lives on the CPU that spawned it. Channels and joins work across CPUs; `kill`,
//! `throw`, `insert`, `remove`, `run` and `switch` must be called on the tasklet's own CPU and
//! return [`TaskletError::WrongCpu`] elsewhere.
//!
//! # Coming from Stackless
//! `kernel/docs/for-stackless-users.md` maps each Stackless API to its spelling here and lists
//! the remaining differences, with their reasons; `kernel/tests/conformance.rs` checks the
//! shared behaviour against traces recorded on a real Stackless 3.7.
//!
//! # Rooms
//! The scheduler is split by job; a room's state is a type of its own, and only the files named
//! here change it.
//! - `tcb.rs`: the control block (never on a stack), its wait queues, and the links every list
//!   threads through; each field is reached through an accessor as visible as its owners.
//! - `list.rs`: the one intrusive list implementation (a linear list, a ring, and a FIFO on a
//!   ring kept by one pointer) and all its pointer surgery.
//! - `ring.rs`: the run ring of one CPU and its position; `timers.rs`: the timer queue by
//!   deadline; `inbox.rs`: wake-ups from other CPUs; `group.rs`: CPU groups and their stuck
//!   count; `attention.rs`: the bits of the one word the fast paths test.
//! - `sched.rs`: the decisions: switching (with the stack checks), the fast yield, blocking,
//!   waking, raising errors, finishing a resumption. `idle.rs`: what a CPU does with nothing to
//!   run (drain the inbox, fire timers, idle, declare deadlock). `watchdog.rs`: preemption of
//!   [`run_with_timeout`]. `lifecycle.rs`: retiring a tasklet and reaping its stack.
//!   `per_cpu.rs`: finding this CPU's scheduler and its group membership. `invariants.rs`:
//!   [`check_invariants`], which walks this CPU's lists and checks its counts and bits.
//! - `waiter.rs`: the wake primitive the locks, events, queues and blocking sockets wait on;
//!   `slot.rs`: the value slot of a hand-off; `stack.rs` and `spill.rs`: stacks, guards and
//!   spilling; `handle.rs`: the [`Tasklet`] and [`JoinHandle`] API.

mod attention;
mod error;
mod group;
mod handle;
mod idle;
mod inbox;
mod invariants;
mod lifecycle;
mod list;
pub(crate) mod per_cpu;
pub(crate) mod ring;
mod saved_slice;
pub(crate) mod sched;
pub mod slicing;
pub(crate) mod slot;
mod spill;
mod stack;
pub(crate) mod tcb;
mod timers;
pub(crate) mod waiter;
mod watchdog;

pub use error::{TaskletError, Thrown};
pub use group::CpuGroup;
pub use handle::{Blocked, JoinHandle, Tasklet};
pub use invariants::check_invariants;
pub use slicing::{SliceStats, DEFAULT_SLICE_AREA_BYTES};
pub use spill::{check_stack, spill, spill_with, stack_remaining};
pub use stack::{
    DEFAULT_SPILL_SEGMENT, DEFAULT_SPILL_WATERMARK, DEFAULT_STACK_BYTES, GUARD_BYTES,
    MIN_STACK_BYTES,
};

use crate::time::Deadline;
use core::time::Duration;
use per_cpu::this_cpu;
use ring::Placement;
use spindle_arch::context;
use stack::StackRegion;
use tcb::{Body, State, Tcb, TcbRef};

/// Returns (and clears) an error raised into `tcb` by kill/throw/deadlock.
#[inline(always)]
pub(crate) fn take_pending(tcb: &Tcb) -> Result<(), TaskletError> {
    // Tested before taking, so that the common case is one load and no store.
    if tcb.has_pending() {
        take_raised(tcb)
    } else {
        Ok(())
    }
}

/// [`take_pending`]'s uncommon case. Every caller passes the current tasklet, so its scheduler
/// is this CPU's.
#[cold]
#[inline(never)]
fn take_raised(tcb: &Tcb) -> Result<(), TaskletError> {
    this_cpu().take_raised(tcb).map_or(Ok(()), Err)
}

/// Options for spawning a tasklet.
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    name: &'static str,
    stack_size: usize,
    paused: bool,
    sliced: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Default options: unnamed, [`DEFAULT_STACK_BYTES`] of stack, scheduled at once.
    pub const fn new() -> Self {
        Self {
            name: "",
            stack_size: DEFAULT_STACK_BYTES,
            paused: false,
            sliced: false,
        }
    }

    /// Names the tasklet (shown in crash and overflow reports).
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Stack size in bytes, the guard zone included. Below [`MIN_STACK_BYTES`], which debug
    /// builds raise to about 10 KiB (4 KiB optimised), the spawn fails with
    /// [`TaskletError::StackTooSmall`]: 16 KiB or more fits every build profile. Above 4 GiB
    /// less 16 bytes (the most a control block records), or above what is left of the CPU's
    /// stack budget, it fails with [`TaskletError::StackBudgetExhausted`].
    pub const fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Runs the tasklet on its CPU's shared slice area instead of a stack of its own: while it
    /// is suspended it costs its live stack (copied out exactly sized when another sliced
    /// tasklet needs the area) rather than a whole stack. For the many tasklets that mostly
    /// wait; a switch into one whose slice was saved copies it back (see [`slicing`] for the
    /// design). [`Builder::stack_size`] does not apply; the area's size does
    /// ([`set_slice_area_bytes`]).
    pub const fn sliced(mut self) -> Self {
        self.sliced = true;
        self
    }

    /// Leaves the tasklet paused: it runs once inserted or run.
    pub const fn paused(mut self) -> Self {
        self.paused = true;
        self
    }

    /// Spawns `function` as a tasklet of the calling CPU.
    pub fn spawn<F, R>(self, function: F) -> Result<JoinHandle<R>, TaskletError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let scheduler = this_cpu();
        let _busy = scheduler.enter();
        let (stack, stack_low) = if self.sliced {
            (
                StackRegion::NONE,
                scheduler.ensure_slice_area()?.usable_low(),
            )
        } else {
            let stack = StackRegion::allocate(self.stack_size, &scheduler.budget)?;
            (stack, stack.usable_low())
        };
        let free_stack = || {
            if stack.base != 0 {
                // SAFETY: the fresh stack was never used.
                unsafe { stack.free(&scheduler.budget) };
            }
        };
        let tcb = match TcbRef::allocate(scheduler.next_id()) {
            Ok(tcb) => tcb,
            Err(error) => {
                free_stack();
                return Err(error);
            }
        };
        let body = match Body::<F, R>::allocate(self.name, function) {
            Ok(body) => body,
            Err(_unrun) => {
                free_stack();
                return Err(TaskletError::OutOfMemory);
            }
        };
        tcb.body().set(body);
        scheduler.adopt(&tcb);
        tcb.stack().set(stack);
        tcb.stack_low().set(stack_low);
        let initial_sp = if self.sliced {
            tcb.set_flag(tcb::FLAG_SLICED, true);
            // Its first run goes through the restorer, which lays out its first frame at the
            // top of the area.
            scheduler.restorer_context()
        } else {
            // SAFETY: the stack region is fresh, 16-byte aligned at its top and exclusively this
            // tasklet's; the control block outlives the context (the scheduler's reference).
            unsafe {
                context::init_stack(stack.top(), lifecycle::tasklet_entry, tcb.as_ptr() as usize)
            }
        };
        tcb.saved_sp().set(initial_sp);
        // The scheduler's own reference, released when the tasklet is reaped.
        let _scheduler_reference = tcb.clone().into_raw();
        scheduler.add_live(1);
        if self.paused {
            tcb.set_state(State::Paused);
        } else {
            scheduler.ring.insert(&tcb, Placement::Tail);
        }
        Ok(JoinHandle::new(tcb))
    }
}

/// Spawns `function` as a tasklet of the calling CPU with default options.
pub fn spawn<F, R>(function: F) -> Result<JoinHandle<R>, TaskletError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().spawn(function)
}

/// Yields to the next runnable tasklet (Stackless's `schedule()`). Returns an error raised into
/// the current tasklet (kill, throw) instead of continuing normally.
///
/// The common case is inlined into the caller on purpose: the switch declares every
/// non-volatile register clobbered, so the caller saves only what is live at the call, once per
/// enclosing function — an out-of-line `schedule` would save all of them on every call.
#[inline(always)]
pub fn schedule() -> Result<(), TaskletError> {
    let scheduler = this_cpu();
    match scheduler.try_fast_yield() {
        sched::FastYield::Resumed => Ok(()),
        sched::FastYield::ResumedWithAttention(me) => resume_slow(scheduler, me),
        sched::FastYield::NotTaken => schedule_slow(scheduler),
    }
}

/// The way back from a fast yield when the attention word is not clear.
#[cold]
#[inline(never)]
fn resume_slow(scheduler: &'static sched::Scheduler, me: &Tcb) -> Result<(), TaskletError> {
    scheduler.finish_resume();
    take_pending(me)
}

/// [`schedule`] for callers that are themselves out-of-line kernel code: inlining the switch
/// there would make every call of theirs save all non-volatile registers.
#[inline(never)]
pub(crate) fn schedule_out_of_line() -> Result<(), TaskletError> {
    schedule()
}

#[inline(never)]
fn schedule_slow(scheduler: &'static sched::Scheduler) -> Result<(), TaskletError> {
    let me = scheduler.current();
    scheduler.before_blocking(me)?;
    let busy = scheduler.enter();
    scheduler.yield_now();
    busy.finish_resume();
    take_pending(me)
}

/// Takes the current tasklet out of the run queue and switches away (Stackless's
/// `schedule_remove()`); it runs again once inserted or run.
///
/// When nothing else can run, the main tasklet is revived as in Stackless: a paused main
/// tasklet is put back in the ring and runs next (so the main tasklet calling this alone
/// simply goes on, still scheduled). Only a tasklet that is the last runnable one while the
/// main tasklet waits in a blocking operation fails, with [`TaskletError::Deadlock`], staying
/// scheduled: nothing could ever run it again.
pub fn schedule_remove() -> Result<(), TaskletError> {
    let scheduler = this_cpu();
    let me = scheduler.current();
    take_pending(me)?;
    let busy = scheduler.enter();
    if scheduler.run_count() <= 1 {
        if me.is_main() {
            return Ok(());
        }
        if scheduler.main().state() != State::Paused {
            return Err(TaskletError::Deadlock);
        }
    }
    scheduler.ring.remove(me);
    me.set_state(State::Paused);
    let next = scheduler.find_next(None);
    scheduler.switch_to(me, next);
    busy.finish_resume();
    take_pending(me)
}

/// Runs the ring until the main tasklet is the only runnable one and no tasklet of this CPU is
/// sleeping. Call from the main tasklet.
///
/// As in Stackless, the main tasklet floats meanwhile: it reads as paused and is not counted
/// by [`run_count`], and it takes over again when nothing else can run — every other tasklet
/// has ended, blocked or paused itself — so tasklets left blocked stay blocked for a later
/// send instead of failing with [`TaskletError::Deadlock`]. It also returns as soon as a
/// tasklet inserts, runs or switches to the main tasklet, the others still runnable.
pub fn run() -> Result<(), TaskletError> {
    run_with_timeout(None).map(|_| ())
}

/// Runs the ring like [`run`] under a watchdog: once `timeout` has passed, the running tasklet
/// (unless atomic) is interrupted, taken out of the run queue and returned (insert it to let it
/// go on, or kill it). `Ok(None)` when the ring emptied first. Call from the main tasklet.
///
/// The budget is time since the call (Stackless counts ticks, and restarts them at each switch
/// unless `totaltimeout`). A kill of the interrupted tasklet is raised at its next scheduling
/// point or blocking operation, not inside the loop it was interrupted in, as Stackless would:
/// Rust code cannot be unwound at an arbitrary instruction ([`Tasklet::kill_forced`] abandons a
/// loop that never reaches one).
pub fn run_with_timeout(timeout: Option<Duration>) -> Result<Option<Tasklet>, TaskletError> {
    let scheduler = this_cpu();
    let main = scheduler.current();
    if !main.is_main() {
        return Err(TaskletError::InvalidTarget);
    }
    // The watchdog's deadline 0 means "disarmed": a deadline at boot is the next instant.
    let deadline = timeout.map(|timeout| Deadline::after(timeout).as_ns().max(1));
    scheduler.arm_watchdog(deadline);
    let outcome = loop {
        if let Some(interrupted) = scheduler.take_interrupted() {
            break Ok(Some(Tasklet::from_ref(interrupted)));
        }
        if scheduler.run_count() <= 1 {
            // Only main is runnable: wait for sleepers, or stop when there are none.
            if scheduler.wait_for_timers() {
                continue;
            }
            break Ok(None);
        }
        scheduler.main_floating.set(true);
        let yielded = schedule();
        if !scheduler.main_floating.replace(false) {
            // A tasklet inserted, ran or switched to main while others could still run:
            // `run` returns then, as Stackless's does.
            break yielded.map(|()| scheduler.take_interrupted().map(Tasklet::from_ref));
        }
        if let Err(error) = yielded {
            break Err(error);
        }
    };
    scheduler.main_floating.set(false);
    scheduler.arm_watchdog(None);
    outcome
}

/// Makes an error that a tasklet of this CPU does not handle reach the main tasklet, as in
/// Stackless, and returns the previous setting (off by default).
///
/// Unhandled means the tasklet panicked (hosted builds catch the panic at its boundary),
/// overflowed its stack, or had an error thrown into it before it ever ran — a kill is not an
/// error, as Stackless's `TaskletExit` is none, and a body that returns `Err` has handled its
/// error by returning it. On, the error is raised in the main tasklet: its current or next
/// blocking operation or scheduling point returns it, [`run`] included (a blocked main tasklet
/// is woken with it). Either way the tasklet's [`JoinHandle::result`] keeps the error.
pub fn raise_unhandled_in_main(on: bool) -> bool {
    this_cpu().raise_unhandled.replace(on)
}

/// A cooperative preemption point: where the watchdog of [`run_with_timeout`] may interrupt
/// the current tasklet on platforms without timer preemption (hosted builds).
pub fn checkpoint() {
    this_cpu().checkpoint();
}

/// The tasklet running now on this CPU.
pub fn current() -> Tasklet {
    Tasklet::from_tcb(this_cpu().current())
}

/// This CPU's main tasklet.
pub fn main() -> Tasklet {
    Tasklet::from_tcb(this_cpu().main())
}

/// Number of runnable tasklets on this CPU, the running one included (Stackless's
/// `getruncount()`; the main tasklet does not count while it floats in [`run`]).
pub fn run_count() -> usize {
    this_cpu().visible_run_count()
}

/// Number of live tasklets on this CPU, the main one included.
pub fn live_count() -> usize {
    this_cpu().live()
}

/// Number of tasklets on this CPU with an error raised into them (kill, throw, deadlock, a
/// timeout) that they have not yet taken.
pub fn raised_count() -> usize {
    this_cpu().raised_count()
}

/// Forbids involuntary switches of the current tasklet until dropped. Nestable.
#[derive(Debug)]
pub struct AtomicGuard {
    tcb: *const Tcb,
}

impl AtomicGuard {
    /// Enters an atomic section.
    pub fn new() -> Self {
        let tcb = this_cpu().current();
        tcb.atomic().set(tcb.atomic().get().saturating_add(1));
        Self { tcb }
    }
}

impl Default for AtomicGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AtomicGuard {
    fn drop(&mut self) {
        // SAFETY: the guard lives on the current tasklet's stack; the tasklet (and its control
        // block) outlives it.
        let tcb = unsafe { &*self.tcb };
        tcb.atomic().set(tcb.atomic().get().saturating_sub(1));
        if tcb.atomic().get() == 0 {
            this_cpu().after_atomic();
        }
    }
}

/// Sets or clears the current tasklet's atomic flag outright (Stackless's `set_atomic`) and
/// returns whether it was atomic before. Clearing it ends every [`AtomicGuard`] section of the
/// tasklet at once (a guard dropped later leaves the flag clear); prefer the guard, which nests.
pub fn set_atomic(atomic: bool) -> bool {
    let tcb = this_cpu().current();
    let was = tcb.atomic().get() > 0;
    tcb.atomic().set(u16::from(atomic));
    if was && !atomic {
        this_cpu().after_atomic();
    }
    was
}

/// Runs `body` in an atomic section (see [`AtomicGuard`]).
pub fn atomic<R>(body: impl FnOnce() -> R) -> R {
    let _guard = AtomicGuard::new();
    body()
}

/// Sets this CPU's stack budget in bytes (stacks and spill segments). Stacks already allocated
/// stay; a budget below what is in use only stops new allocations.
pub fn set_stack_budget(bytes: usize) {
    this_cpu().budget.limit.set(bytes);
}

/// This CPU's stack budget and the bytes of it in use.
pub fn stack_budget() -> (usize, usize) {
    let budget = &this_cpu().budget;
    (budget.limit.get(), budget.in_use.get())
}

/// Sets the size of this CPU's slice area (where [sliced](Builder::sliced) tasklets run), before
/// the CPU's first sliced spawn makes it: fails with [`TaskletError::SliceAreaInUse`] after, and
/// with [`TaskletError::StackTooSmall`] below [`MIN_STACK_BYTES`].
pub fn set_slice_area_bytes(bytes: usize) -> Result<(), TaskletError> {
    this_cpu().slices.set_area_bytes(bytes)
}

/// Sets whether this CPU's saved slices of waiting tasklets leave their runs of zero words out
/// (on by default; a runnable tasklet's slice is always saved whole): a blocked sliced tasklet
/// then keeps no copy of the save slots of register classes it never used, and costs about a
/// third less, for a switch that scans the slice and copies it in pieces (about twice the
/// instructions; see [`slicing`] for the figures). Turn it off for sliced tasklets that block
/// and wake each other all the time; slices already saved keep their form.
pub fn set_slice_compaction(on: bool) {
    this_cpu().slices.set_compaction(on);
}

/// What this CPU's slice area has copied so far (see [`slicing`]).
pub fn slice_stats() -> SliceStats {
    this_cpu().slices.stats()
}

/// Makes this CPU's scheduler a member of `group` (hosted threads that share channels; see
/// [`CpuGroup`]). Call before the thread's tasklets start waiting on one another.
pub fn join_group(group: &'static CpuGroup) {
    this_cpu().join(group);
}

/// Starts an OS thread that runs `body` as a member of `group` (hosted builds: threads stand
/// for CPUs). The thread counts as a member from this call on, so tasklets of other members
/// waiting on it are never declared deadlocked before it starts; it leaves the group when
/// `body` returns.
#[cfg(any(test, feature = "std"))]
pub fn spawn_cpu_thread<F, R>(group: &'static CpuGroup, body: F) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    extern crate std;
    group.reserve_member();
    std::thread::spawn(move || {
        this_cpu().join_reserved(group);
        let result = body();
        this_cpu().leave_group();
        result
    })
}

/// Starts secondary CPU `cpu` running `entry(cpu)` (through the platform), counting it in the
/// CPU group from now on so that tasklets waiting for it are not declared deadlocked while it
/// boots. Its tasklets are created by `entry` on that CPU.
#[cfg(not(any(test, feature = "std")))]
pub fn start_cpu(cpu: usize, entry: fn(usize) -> !) -> Result<(), crate::platform::StartCpuError> {
    // The caller's own CPU must be a group member before the new one can wait on it.
    this_cpu();
    let reserved = per_cpu::reserve_cpu(cpu);
    let started = crate::platform::platform().start_cpu(cpu, entry);
    if started.is_err() && reserved {
        per_cpu::unreserve_cpu(cpu);
    }
    started
}

/// The CPU group this CPU's scheduler belongs to (for `call_async` pools and other sources of
/// outside work that must keep the group from declaring deadlock); `None` after
/// [`leave_group`].
pub fn current_group() -> Option<&'static CpuGroup> {
    this_cpu().group()
}

/// Takes this CPU's scheduler out of its group: from now on it decides deadlock on its own.
/// A hosted thread about to wait outside the scheduler (e.g. an OS-level join) calls this so
/// that the group's remaining members are not kept waiting for it.
pub fn leave_group() {
    this_cpu().leave_group();
}

/// Puts the current tasklet to sleep for `duration` (other tasklets run meanwhile).
pub fn sleep(duration: Duration) -> Result<(), TaskletError> {
    sleep_until_deadline(Deadline::after(duration))
}

/// Puts the current tasklet to sleep until `deadline_ns` on the platform clock (the
/// [`Deadline::as_ns`] of a [`Deadline`]; [`sleep_until_deadline`] takes one).
pub fn sleep_until(deadline_ns: u64) -> Result<(), TaskletError> {
    sleep_until_deadline(Deadline::at_ns(deadline_ns))
}

/// Puts the current tasklet to sleep until `deadline` (other tasklets run meanwhile). Returns
/// an error raised into it meanwhile (kill, throw) instead.
pub fn sleep_until_deadline(deadline: Deadline) -> Result<(), TaskletError> {
    let scheduler = this_cpu();
    let me = scheduler.current();
    scheduler.before_blocking(me)?;
    if me.has_flag(tcb::FLAG_BLOCK_TRAP) {
        return Err(TaskletError::BlockTrap);
    }
    let busy = scheduler.enter();
    me.set_state(State::Blocked);
    scheduler.block_current(me, None, Some(deadline));
    busy.finish_resume();
    take_pending(me)
}

/// Size in bytes of a tasklet control block (for memory budgeting): 192 on 64-bit targets, and
/// never more (checked at compile time).
pub const CONTROL_BLOCK_BYTES: usize = core::mem::size_of::<Tcb>();

/// Entry from a board's timer interrupt (the decrementer on PowerPC64): preemption by the
/// watchdog of [`run_with_timeout`], and the timers of [`sleep`] and timed waits.
///
/// Call it with interrupts disabled, on the interrupted context's stack, after saving every
/// volatile register and the interrupted program counter and machine state in the interrupt
/// frame: the scheduler may switch to another tasklet from inside this call and return only when
/// the interrupted tasklet is resumed.
pub fn timer_interrupt() {
    this_cpu().on_timer_interrupt();
}

/// Writes a short description of the tasklet running on this CPU (for crash reports): its id and
/// name, or that the boot context is running. Never allocates, never blocks.
pub fn write_current(out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let tcb = this_cpu().current();
    if tcb.is_main() {
        write!(out, "main tasklet of cpu {}", this_cpu().cpu.get())
    } else if tcb.has_flag(tcb::FLAG_SLICED) {
        write!(
            out,
            "tasklet #{} '{}' (sliced, area {} bytes)",
            tcb.id(),
            tcb.name(),
            this_cpu().slices.area().size
        )
    } else {
        write!(
            out,
            "tasklet #{} '{}' (stack {} bytes)",
            tcb.id(),
            tcb.name(),
            tcb.stack().get().size
        )
    }
}
