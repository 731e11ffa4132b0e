//! Stack slicing: many tasklets share one stack area per CPU, and a suspended one keeps only its live slice.
//!
//! A tasklet spawned with [`Builder::sliced`](super::Builder::sliced) has no stack of its own. It
//! runs on its CPU's **slice area** (one guarded stack region, [`DEFAULT_SLICE_AREA_BYTES`] by
//! default), and when it is suspended its stack is just the live part from its stack pointer to
//! the area's top — a few hundred bytes for a tasklet blocked in a channel receive. That part is
//! copied out to an exactly sized heap block only when another sliced tasklet needs the area
//! (**lazy save**), without its long runs of zero words (the save slots of register classes the
//! tasklet never used, mostly: see `saved_slice.rs`), and copied back to the same addresses
//! before the tasklet resumes, so pointers into its stack stay valid. Stackless and greenlet
//! keep their idle tasklets the same way; what a blocked tasklet costs is its control block
//! plus its live slice.
//!
//! # How a switch reaches a saved tasklet
//! Every CPU has a **restorer**: a small context of its own (its own little stack) that loops
//! forever. A sliced tasklet whose slice is saved has the restorer's suspended stack pointer as
//! its saved context, so the ordinary switch needs no test at all: switching to such a tasklet
//! resumes the restorer, which (on its own stack, touching neither the area nor the suspended
//! stacks) saves the area's current occupant if it is alive, copies the target's slice in,
//! frees its block and jumps into it. The restorer suspends itself at the same place every time,
//! so its stack pointer is one fixed value, read once when the area is set up. Tasklets on
//! stacks of their own and switches between them never go near it, and pay nothing: the
//! restorer learns who switched (in case it has to go back) from the word the switch saved the
//! switcher's context in, which every switch leaves in a register (`switch_reporting_saver`).
//!
//! # Out of memory
//! Saving the occupant needs a heap block (counted in the CPU's stack budget). If that fails,
//! the restorer goes back to the tasklet that switched, with
//! [`TaskletError::OutOfMemory`] (or [`StackBudgetExhausted`](TaskletError::StackBudgetExhausted))
//! raised in it: the operation that was switching returns that error (a blocking one leaves its
//! wait first, so a value it was sending is given back), and the target stays runnable. A
//! tasklet that was finishing cannot take an error: the restorer then releases the stacks of
//! dead tasklets and tries again, and if memory is still short, the tasklet it could not bring
//! back is abandoned with `OutOfMemory` (its joiners see it; what its stack held is leaked, as
//! for a stack overflow) and the next one runs. Spawning a sliced tasklet allocates only its
//! control block and body (and the area and restorer on the first sliced spawn of a CPU): all
//! fallible, reported to the spawner.
//!
//! # Everything else
//! The area has a guard zone like any stack, checked at every switch away from a sliced
//! tasklet. A sliced tasklet may [`spill`](super::spill) onto a segment: it then uses the area
//! from where it left it, recorded in the segment's header, and its stack pointer while saved
//! is kept in that header too. Kill, throw, timeouts, deadlock detection, channels (across CPUs
//! as well: a tasklet never leaves its home CPU) and the watchdog work unchanged, since nothing
//! in the kernel points into a tasklet's stack: wait links, value slots and timers live in its
//! control block. The price is the copy: a switch to a saved tasklet copies its slice in and,
//! if the area's occupant is alive, the occupant's out.
//!
//! # Compaction: memory against switch time
//! Saved slices of waiting tasklets (blocked, or removed from the ring) leave out their long
//! runs of zero words (`saved_slice.rs`), on by default and per CPU with
//! [`set_slice_compaction`](super::set_slice_compaction); a runnable tasklet's slice (it yielded
//! or was preempted) is saved whole, since it comes back within a turn of the ring. Measured on
//! the target (`cargo run -- test slicing::ten --nocapture`, and `cargo run -- count
//! scheduling::sliced_rendezvous`, two rendezvous between sliced tasklets whose frames hold 256
//! bytes, each switch saving one slice and restoring the other):
//!
//! | slices | bytes per tasklet blocked under 4 frames of 64-byte locals | instructions per two rendezvous |
//! |---|---|---|
//! | compacted (default) | 1,167 | 6,085 |
//! | saved whole | 1,759 | 2,969 |
//!
//! A tasklet that waits long is worth compacting; a pair of sliced tasklets that hand values
//! back and forth all the time is better off with compaction off, or on stacks of their own.

use super::error::TaskletError;
use super::lifecycle::tasklet_entry;
use super::ring::Placement;
use super::saved_slice::{self, SlicePlan};
use super::sched::Scheduler;
use super::stack::StackRegion;
use super::tcb::{self, State, Tcb};
use core::cell::Cell;
use core::sync::atomic::Ordering;
use spindle_arch::context;

/// Size of a CPU's slice area unless the application sets one before its first sliced spawn
/// ([`set_slice_area_bytes`](super::set_slice_area_bytes)): the deepest a sliced tasklet's
/// stack can go (beyond it, [`spill`](super::spill)). Hosted builds give it the hosted default
/// stack size, since the standard library's panic machinery runs on the panicking stack.
pub const DEFAULT_SLICE_AREA_BYTES: usize = if cfg!(any(test, feature = "std")) {
    super::stack::DEFAULT_STACK_BYTES
} else {
    32 * 1024
};

const WORD: usize = core::mem::size_of::<usize>();

/// The restorer's own stack: the copy and, after a failure, the scheduler's choice of who runs
/// next (including idling) run there.
const RESTORER_STACK_BYTES: usize = if cfg!(any(test, feature = "std")) {
    64 * 1024
} else {
    16 * 1024
};

/// One CPU's slice area, its occupant and its restorer.
pub(crate) struct SliceArea {
    /// The shared stack region (`NONE` until the first sliced spawn).
    area: Cell<StackRegion>,
    /// The tasklet whose live stack is in the area (null: none, or it was saved).
    occupant: Cell<*const Tcb>,
    restorer_stack: Cell<StackRegion>,
    /// The restorer's suspended stack pointer: the saved context of every saved tasklet.
    restorer_sp: Cell<usize>,
    area_bytes: Cell<usize>,
    /// Whether saved slices leave their zero runs out (see `saved_slice.rs`).
    compact: Cell<bool>,
    counters: SliceCounters,
}

/// What the slice area has done (see [`slice_stats`](super::slice_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SliceStats {
    /// Slices saved out of the area.
    pub saved: u64,
    /// Slices copied back into the area (first runs not included).
    pub restored: u64,
    /// Bytes copied either way.
    pub bytes_copied: u64,
    /// Bytes of saved slices not stored because they were long runs of zero words (such as
    /// the save slots of register classes a tasklet never used).
    pub bytes_left_out: u64,
    /// Bytes of the area (0 until the first sliced spawn on this CPU).
    pub area_bytes: usize,
}

#[derive(Default)]
struct SliceCounters {
    saved: Cell<u64>,
    restored: Cell<u64>,
    bytes_copied: Cell<u64>,
    bytes_left_out: Cell<u64>,
}

impl SliceArea {
    pub(crate) const fn new() -> Self {
        Self {
            area: Cell::new(StackRegion::NONE),
            occupant: Cell::new(core::ptr::null()),
            restorer_stack: Cell::new(StackRegion::NONE),
            restorer_sp: Cell::new(0),
            area_bytes: Cell::new(DEFAULT_SLICE_AREA_BYTES),
            compact: Cell::new(true),
            counters: SliceCounters {
                saved: Cell::new(0),
                restored: Cell::new(0),
                bytes_copied: Cell::new(0),
                bytes_left_out: Cell::new(0),
            },
        }
    }

    pub(crate) fn stats(&self) -> SliceStats {
        SliceStats {
            saved: self.counters.saved.get(),
            restored: self.counters.restored.get(),
            bytes_copied: self.counters.bytes_copied.get(),
            bytes_left_out: self.counters.bytes_left_out.get(),
            area_bytes: self.area.get().size,
        }
    }

    /// Sets the size of the area made at the first sliced spawn; fails once it exists.
    pub(crate) fn set_area_bytes(&self, bytes: usize) -> Result<(), TaskletError> {
        if self.area.get().base != 0 {
            return Err(TaskletError::SliceAreaInUse);
        }
        if bytes < super::stack::MIN_STACK_BYTES {
            return Err(TaskletError::StackTooSmall);
        }
        self.area_bytes.set(bytes);
        Ok(())
    }

    /// Sets whether slices saved from now on leave their zero runs out.
    pub(crate) fn set_compaction(&self, on: bool) {
        self.compact.set(on);
    }

    /// The tasklet whose live stack is in the area (null if none).
    pub(crate) fn occupant(&self) -> *const Tcb {
        self.occupant.get()
    }

    /// Forgets the occupant (the invariant checker's tests corrupt the state with it).
    #[cfg(test)]
    pub(crate) fn clear_occupant_for_tests(&self) {
        self.occupant.set(core::ptr::null());
    }

    /// The region sliced tasklets run on (`NONE` before the first sliced spawn).
    pub(crate) fn area(&self) -> StackRegion {
        self.area.get()
    }
}

impl Scheduler {
    /// Makes this CPU's slice area and restorer if they do not exist yet. Called by a sliced
    /// spawn, with the scheduler entered, from an ordinary (non-sliced, or already set up) context.
    pub(crate) fn ensure_slice_area(&'static self) -> Result<StackRegion, TaskletError> {
        let slices = &self.slices;
        if slices.area.get().base != 0 {
            return Ok(slices.area.get());
        }
        let area = StackRegion::allocate_zeroed(slices.area_bytes.get(), &self.budget)?;
        let restorer = match StackRegion::allocate(RESTORER_STACK_BYTES, &self.budget) {
            Ok(restorer) => restorer,
            Err(error) => {
                // SAFETY: the area was just allocated and never used.
                unsafe { area.free(&self.budget) };
                return Err(error);
            }
        };
        // SAFETY: the restorer's stack is fresh and exclusively its own; `self` is 'static.
        let first_sp = unsafe {
            context::init_stack(restorer.top(), restorer_entry, self as *const Self as usize)
        };
        let mut here = 0usize;
        // Priming: the restorer starts, reads where to go back from `here` (the switch has
        // stored our stack pointer there by then) and suspends at its one switch, whose stack
        // pointer is then fixed for good.
        // SAFETY: `first_sp` came from init_stack on a live stack; `here` outlives the switch.
        unsafe { context::switch(&mut here, first_sp, &mut here as *mut usize as usize) };
        slices.restorer_stack.set(restorer);
        slices.area.set(area);
        Ok(area)
    }

    /// The tasklet whose switch saved its context at `saver` (a control block's saved-context
    /// word), or null for the scratch word (a finished or overflowed tasklet, never resumed).
    fn switcher_of(&self, saver: *mut usize) -> *const Tcb {
        if core::ptr::eq(saver, self.scratch_sp.as_ptr()) {
            core::ptr::null()
        } else {
            Tcb::from_saved_sp_word(saver)
        }
    }

    /// The saved context a new sliced tasklet starts with (the restorer's).
    pub(crate) fn restorer_context(&self) -> usize {
        self.slices.restorer_sp.get()
    }

    /// Called by the restorer each time it is resumed: `from` is the tasklet that switched (null
    /// if it cannot be resumed: it finished or overflowed) and the scheduler's current tasklet
    /// is the sliced one to bring into the area. Returns the stack pointer to resume.
    fn bring_in_current(&'static self, from: *const Tcb) -> usize {
        // No preemption while the area is half copied (the resumed tasklet's own return path
        // leaves the scheduler, as after any switch).
        self.busy.store(1, Ordering::Relaxed);
        let from = if core::ptr::eq(from, self.overflowed.get()) {
            core::ptr::null()
        } else {
            from
        };
        let mut released_dead_stacks = false;
        loop {
            let target = self.current();
            debug_assert!(target.has_flag(tcb::FLAG_SLICED));
            debug_assert_eq!(target.saved_sp().get(), self.slices.restorer_sp.get());
            match self.make_resident(target) {
                Ok(sp) => return sp,
                // SAFETY: a non-null `from` is the live tasklet that switched here.
                Err(error) => match unsafe { from.as_ref() } {
                    Some(from) => return self.refuse_switch(from, error),
                    None if !released_dead_stacks => {
                        released_dead_stacks = true;
                        self.release_dead_stacks();
                    }
                    None => {
                        if let Some(sp) = self.abandon_unrestorable(target, error) {
                            return sp;
                        }
                    }
                },
            }
        }
    }

    /// Saves the area's occupant (if alive) and copies `target`'s slice in; returns the stack
    /// pointer to resume `target` at. On failure nothing has changed.
    fn make_resident(&self, target: &Tcb) -> Result<usize, TaskletError> {
        let slices = &self.slices;
        // SAFETY: the occupant is a tasklet of this CPU kept alive by its reference until its
        // reaping clears the occupancy.
        if let Some(occupant) = unsafe { slices.occupant.get().as_ref() } {
            debug_assert!(!core::ptr::eq(occupant, target));
            if self.worth_saving(occupant) {
                self.slice_out(occupant)?;
            }
            slices.occupant.set(core::ptr::null());
        }
        let sp = self.slice_in(target);
        slices.occupant.set(target);
        Ok(sp)
    }

    /// Whether the occupant's stack may ever run again (not dead, not abandoned).
    fn worth_saving(&self, occupant: &Tcb) -> bool {
        occupant.state() != State::Dead
            && !occupant.has_flag(tcb::FLAG_ABANDONED)
            && !core::ptr::eq(occupant, self.overflowed.get())
    }

    /// Copies the suspended occupant's live stack out of the area to a new block.
    fn slice_out(&self, occupant: &Tcb) -> Result<(), TaskletError> {
        let slices = &self.slices;
        let top = slices.area.get().top();
        let saved_sp = occupant.saved_sp().get();
        let spill_top = self.spill_top_of(occupant);
        let live_low = if spill_top == 0 {
            saved_sp - context::SUSPENDED_BYTES_BELOW_SP
        } else {
            // SAFETY: the chain of live spill segments of a suspended tasklet of this CPU.
            unsafe { area_left_at(spill_top) }
        };
        let area = slices.area.get();
        debug_assert!(live_low >= area.usable_low() && live_low <= top);
        let length = top - live_low;
        debug_assert_eq!(length % WORD, 0, "stack pointers are word aligned");
        // SAFETY: [live_low, top) is inside the area, the suspended occupant's live stack, which
        // nothing runs on now (we are on the restorer's stack).
        let slice = unsafe { core::slice::from_raw_parts(live_low as *const usize, length / WORD) };
        // Only a waiting tasklet's slice is worth the scan: a runnable one (it yielded, or was
        // preempted) comes back within a turn of the ring.
        let waiting = matches!(occupant.state(), State::Blocked | State::Paused);
        let plan = if slices.compact.get() && waiting {
            SlicePlan::scan(slice)
        } else {
            SlicePlan::whole(slice.len())
        };
        let block_words = plan.encoded_words();
        let block = StackRegion::allocate_slice(block_words * WORD, &self.budget)?;
        // SAFETY: the block is fresh, word aligned and at least that long; a spilled occupant's
        // segment header is live.
        unsafe {
            plan.encode(
                slice,
                core::slice::from_raw_parts_mut(block.base as *mut usize, block_words),
            );
            if spill_top != 0 {
                StackRegion::segment_parked_sp(spill_top).write(saved_sp);
            }
        }
        occupant.stack().set(StackRegion {
            base: block.base,
            size: block_words * WORD,
        });
        occupant.saved_sp().set(slices.restorer_sp.get());
        let counters = &slices.counters;
        counters.saved.set(counters.saved.get() + 1);
        counters
            .bytes_copied
            .set(counters.bytes_copied.get() + length as u64);
        counters
            .bytes_left_out
            .set(counters.bytes_left_out.get() + (plan.zero_words() * WORD) as u64);
        Ok(())
    }

    /// Copies `target`'s saved slice back to the top of the area (or lays out its first frame)
    /// and frees the block; returns its stack pointer.
    fn slice_in(&self, target: &Tcb) -> usize {
        let slices = &self.slices;
        let top = slices.area.get().top();
        let saved = target.stack().replace(StackRegion::NONE);
        if saved.base == 0 {
            debug_assert!(!target.has_flag(tcb::FLAG_STARTED));
            // SAFETY: the area is free (its occupant was saved or is dead) and 16-byte aligned at
            // its top; the control block outlives the context (the scheduler's reference).
            return unsafe {
                context::init_stack(top, tasklet_entry, target as *const Tcb as usize)
            };
        }
        // SAFETY: the block holds a slice saved by `slice_out`, `saved.size` bytes of words.
        let block =
            unsafe { core::slice::from_raw_parts(saved.base as *const usize, saved.size / WORD) };
        let slice_words = saved_slice::decoded_words(block[0]);
        let live_low = top - slice_words * WORD;
        let spill_top = self.spill_top_of(target);
        // SAFETY: the block holds the slice saved from [live_low, top) of this same area, which
        // nobody uses now; the block is freed once copied (the size given back is the rounded
        // size it was allocated with); a spilled target's segment header is live.
        let sp = unsafe {
            saved_slice::decode(
                block,
                core::slice::from_raw_parts_mut(live_low as *mut usize, slice_words),
            );
            saved.free_slice(&self.budget);
            if spill_top == 0 {
                live_low + context::SUSPENDED_BYTES_BELOW_SP
            } else {
                StackRegion::segment_parked_sp(spill_top).read()
            }
        };
        let counters = &slices.counters;
        counters.restored.set(counters.restored.get() + 1);
        counters
            .bytes_copied
            .set(counters.bytes_copied.get() + (slice_words * WORD) as u64);
        sp
    }

    /// Frees a dead or never-started sliced tasklet's saved slice, and gives up the area if it
    /// is the occupant.
    pub(super) fn release_slice(&self, tcb: &Tcb) {
        let saved = tcb.stack().replace(StackRegion::NONE);
        if saved.base != 0 {
            // SAFETY: the tasklet will never run again; its block came from allocate_slice.
            unsafe { saved.free_slice(&self.budget) };
        }
        if core::ptr::eq(self.slices.occupant.get(), tcb) {
            self.slices.occupant.set(core::ptr::null());
        }
    }

    /// A switch into a saved tasklet failed for want of memory: `from` (alive, suspended) runs
    /// on with `error` raised, back where it was. Returns its stack pointer.
    fn refuse_switch(&'static self, from: &'static Tcb, error: TaskletError) -> usize {
        match from.state() {
            State::Blocked => {
                // Its wait is cancelled as a timeout would be: a value it was sending is given
                // back by the operation, which returns `error`.
                if !self.wake_with_error(from, error) {
                    while from.state() != State::Runnable {
                        self.drain_inbox();
                        core::hint::spin_loop();
                    }
                }
            }
            State::Waking => {
                // A waker on another CPU took it out of its wait and is about to queue it here.
                while from.state() != State::Runnable {
                    self.drain_inbox();
                    core::hint::spin_loop();
                }
            }
            State::Paused => {
                from.set_state(State::Runnable);
                self.ring.insert(from, Placement::Tail);
                self.raise_pending(from, error);
            }
            State::Runnable => self.raise_pending(from, error),
            State::Dead => unreachable!("a dead tasklet switched with its own context"),
        }
        debug_assert_eq!(from.state(), State::Runnable);
        self.ring.set_head(from);
        self.current.set(from);
        from.saved_sp().get()
    }

    /// Releases the stacks of dead tasklets awaiting reaping (their references and bodies are
    /// left to the reaping, which runs destructors: not here).
    fn release_dead_stacks(&self) {
        for dead in self.reap.iter() {
            // SAFETY: reap-list entries are dead tasklets nothing runs on (we are on the
            // restorer's stack); releasing is idempotent, so the reaping later finds nothing.
            unsafe { self.release_stacks(dead) };
        }
    }

    /// The current tasklet cannot be brought back for want of memory, and whoever switched
    /// cannot take the error: it is abandoned and the next runnable tasklet is chosen. Returns
    /// the stack pointer to resume if that one is ready to run (on a stack of its own, or in the
    /// area already), else `None` (the restorer brings it in).
    fn abandon_unrestorable(
        &'static self,
        target: &'static Tcb,
        error: TaskletError,
    ) -> Option<usize> {
        crate::kprintln!(
            "spindle: out of memory restoring sliced tasklet #{} '{}': tasklet abandoned",
            target.id(),
            target.name()
        );
        self.ring.remove(target);
        target.set_flag(tcb::FLAG_ABANDONED, true);
        self.retire(target, Some(error));
        let next = self.find_next(None);
        self.ring.set_head(next);
        self.current.set(next);
        let sp = next.saved_sp().get();
        (!next.has_flag(tcb::FLAG_SLICED) || sp != self.slices.restorer_sp.get()).then_some(sp)
    }
}

/// The area stack pointer a sliced tasklet left from when it spilled: recorded in the
/// outermost live segment of the chain whose innermost base is `spill_top`.
///
/// # Safety
/// `spill_top` is the innermost segment of a live chain of spill segments.
unsafe fn area_left_at(spill_top: usize) -> usize {
    let mut base = spill_top;
    loop {
        // SAFETY: live segments of the chain; their headers link them.
        let (_, previous) = unsafe { StackRegion::read_segment(base) };
        if previous == 0 {
            // SAFETY: as above; every segment records where it was entered from.
            return unsafe { StackRegion::segment_entered_from(base) };
        }
        base = previous;
    }
}

/// The restorer's context: primed once, then resumed by every switch into a saved tasklet.
extern "C" fn restorer_entry(arg: usize, data: usize) -> ! {
    // SAFETY: `data` is the 'static scheduler that made this context (ensure_slice_area).
    let scheduler: &'static Scheduler = unsafe { &*(data as *const Scheduler) };
    // SAFETY: the priming switch passed the word it saved its stack pointer in.
    let mut resume = unsafe { *(arg as *const usize) };
    loop {
        // SAFETY: `resume` is a suspended context of this CPU (the primer, the tasklet brought
        // in, or the one a failed switch goes back to); the restorer's own stack pointer is kept
        // where every saved tasklet's context names it.
        let saver = unsafe {
            context::switch_reporting_saver(scheduler.slices.restorer_sp.as_ptr(), resume)
        };
        resume = scheduler.bring_in_current(scheduler.switcher_of(saver));
    }
}
