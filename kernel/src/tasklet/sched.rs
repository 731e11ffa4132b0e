//! The per-CPU scheduler's decisions: switching, blocking and waking, and the attention word.
//!
//! Each CPU (each thread, hosted) owns one [`Scheduler`]. Only that CPU touches its ring,
//! timers and budget; other CPUs reach it through its inbox (a locked list of tasklets they woke).
//! Whoever resumes after a switch finishes the switch: it claims its value first, then runs the
//! post-switch cleanup ([`Scheduler::finish_resume`]), so a destructor run by that cleanup can
//! never touch a value in flight.

use super::attention;
use super::error::TaskletError;
use super::group::CpuGroup;
use super::inbox::Inbox;
use super::list::List;
use super::ring::{Placement, RunRing};
use super::slicing::SliceArea;
use super::stack::{self, StackBudget};
use super::tcb::{self, Blocker, State, Tcb, WaitLinks};
use super::timers::TimerQueue;
use crate::platform::platform;
use crate::time::Deadline;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use spindle_arch::context;

/// Stack budget of a CPU until the board or the application sets one.
pub const DEFAULT_STACK_BUDGET: usize = if cfg!(any(test, feature = "std")) {
    1 << 30
} else {
    8 << 20
};

/// One CPU's scheduler.
pub(crate) struct Scheduler {
    pub(crate) main_tcb: Tcb,
    pub(super) current: Cell<*const Tcb>,
    /// The runnable tasklets, the running one at the head.
    pub(super) ring: RunRing,
    pub(super) initialized: Cell<bool>,
    /// Non-zero while scheduler state is being changed: an interrupt must not preempt then. A
    /// byte rather than an `AtomicBool`, so a guard restores what it read without turning it
    /// into a `bool` and back.
    pub(super) busy: AtomicU8,
    /// One word the fast yield tests instead of each condition it stands for (see
    /// [`attention`]). Other CPUs set [`attention::INBOX`]; the rest is this CPU's.
    pub(super) attention: AtomicU32,
    pub(super) watchdog_deadline: Cell<u64>,
    pub(super) interrupted: Cell<*const Tcb>,
    /// A tasklet found overrunning its stack at the last switch, to be retired after it.
    pub(super) overflowed: Cell<*const Tcb>,
    /// Dead tasklets whose stacks await release after the switch away from them.
    pub(super) reap: List<WaitLinks>,
    /// Tasklets with a deadline (sleeping or in a timed wait), earliest first.
    pub(super) timers: TimerQueue,
    /// Tasklets other CPUs woke for this one.
    pub(super) inbox: Inbox,
    pub(crate) cpu: Cell<usize>,
    pub(super) group: Cell<*const CpuGroup>,
    pub(crate) budget: StackBudget,
    pub(super) next_id: Cell<u32>,
    pub(super) live: Cell<usize>,
    pub(super) scratch_sp: Cell<usize>,
    /// The shared stack area of sliced tasklets and its restorer.
    pub(super) slices: SliceArea,
    /// The main tasklet's guarded stack low (0: unguarded), where it is when not spilled.
    pub(super) main_stack_low: Cell<usize>,
    /// The main tasklet is inside `run`, acting as Stackless's floating watchdog: it stays in
    /// the ring (its turns just yield again, so the blocking paths stay as shallow as they
    /// are), but reads as paused and out of the run count, and `run` returns once a tasklet
    /// inserts, runs or switches to it (which clears this).
    pub(crate) main_floating: Cell<bool>,
    /// Errors tasklets did not handle are raised in the main tasklet (see `unhandled`).
    pub(crate) raise_unhandled: Cell<bool>,
}

// SAFETY: a scheduler is reached from other CPUs only through its inbox (a spin lock), the
// atomics, and `cpu`/`group` read after initialisation; everything else is touched by its own CPU.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    pub(crate) const fn new() -> Self {
        Self {
            main_tcb: Tcb::new(0, tcb::FLAG_MAIN | tcb::FLAG_STARTED),
            current: Cell::new(core::ptr::null()),
            ring: RunRing::new(),
            initialized: Cell::new(false),
            busy: AtomicU8::new(0),
            attention: AtomicU32::new(0),
            watchdog_deadline: Cell::new(0),
            interrupted: Cell::new(core::ptr::null()),
            overflowed: Cell::new(core::ptr::null()),
            reap: List::new(),
            timers: TimerQueue::new(),
            inbox: Inbox::new(),
            cpu: Cell::new(0),
            group: Cell::new(core::ptr::null()),
            budget: StackBudget::new(DEFAULT_STACK_BUDGET),
            next_id: Cell::new(1),
            live: Cell::new(1),
            scratch_sp: Cell::new(0),
            slices: SliceArea::new(),
            main_stack_low: Cell::new(0),
            main_floating: Cell::new(false),
            raise_unhandled: Cell::new(false),
        }
    }

    pub(super) fn initialize(&'static self, group: &'static CpuGroup, reserved: bool) {
        let main = &self.main_tcb;
        self.adopt(main);
        if let Some((low, high)) = platform().cpu_stack_bounds() {
            if high > low + stack::GUARD_BYTES {
                // SAFETY: the board vouches that [low, high) is this CPU's stack; its bottom
                // guard-sized part is far below anything running now (we are near the top).
                main.stack_low().set(unsafe { stack::arm_guard(low) });
                self.main_stack_low.set(main.stack_low().get());
            }
        }
        self.current.set(main);
        self.ring.start(main);
        self.cpu.set(platform().cpu_index());
        if reserved {
            self.join_reserved(group);
        } else {
            self.join(group);
        }
        self.initialized.set(true);
    }

    /// The base of the innermost spill segment `tcb` (of this CPU) runs or is suspended on, 0
    /// if none: a tasklet is on a segment exactly when its stack low is not its own stack's (or
    /// the slice area's, or for main the CPU's), and a segment's usable low lies one guard zone
    /// above its base.
    pub(super) fn spill_top_of(&self, tcb: &Tcb) -> usize {
        let low = tcb.stack_low().get();
        let home_low = if tcb.is_main() {
            self.main_stack_low.get()
        } else if tcb.has_flag(tcb::FLAG_SLICED) {
            self.slices.area().usable_low()
        } else {
            match tcb.stack().get() {
                stack if stack.base == 0 => 0,
                stack => stack.usable_low(),
            }
        };
        if low == 0 || low == home_low {
            0
        } else {
            low - stack::GUARD_BYTES
        }
    }

    #[inline]
    pub(crate) fn current(&self) -> &'static Tcb {
        // SAFETY: current is always a live control block once initialised (this scheduler holds
        // a reference to every live tasklet).
        unsafe { &*self.current.get() }
    }

    pub(crate) fn main(&'static self) -> &'static Tcb {
        &self.main_tcb
    }

    pub(crate) fn run_count(&self) -> usize {
        self.ring.len() + self.inbox.count()
    }

    /// [`Scheduler::run_count`] as Stackless counts it: without the main tasklet while it
    /// floats in `run`.
    pub(crate) fn visible_run_count(&self) -> usize {
        self.run_count() - usize::from(self.main_floating.get())
    }

    /// Whether `tcb` is the main tasklet floating in `run` (see `main_floating`).
    pub(crate) fn is_floating(&self, tcb: &Tcb) -> bool {
        tcb.is_main() && self.main_floating.get()
    }

    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn add_live(&self, count: usize) {
        self.live.set(self.live.get() + count);
    }

    /// Makes this scheduler the home of `tcb`, a new tasklet (or its own main tasklet).
    pub(crate) fn adopt(&'static self, tcb: &Tcb) {
        tcb.home().set((self as *const Self).cast());
    }

    /// The home scheduler of `tcb`.
    #[inline]
    pub(crate) fn home_of(tcb: &Tcb) -> &'static Scheduler {
        // SAFETY: `home` is set by `adopt`, before the tasklet is reachable, to a 'static
        // scheduler, and never changes.
        unsafe { &*tcb.home().get().cast::<Scheduler>() }
    }

    #[inline]
    pub(crate) fn is_here(&self, tcb: &Tcb) -> bool {
        core::ptr::eq(tcb.home().get(), (self as *const Self).cast())
    }

    #[inline]
    pub(crate) fn enter(&self) -> BusyGuard<'_> {
        // Only this CPU writes its busy flag (its interrupts included), so a plain load and
        // store suffice; a locked swap would cost more than the rest of a switch.
        let was_busy = self.busy.load(Ordering::Relaxed);
        self.busy.store(1, Ordering::Relaxed);
        BusyGuard {
            scheduler: self,
            was_busy,
        }
    }

    pub(crate) fn next_id(&self) -> u32 {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1).max(1));
        id
    }

    /// Switches from the running tasklet `from` to `to` (which must be runnable and not `from`);
    /// returns when `from` is resumed. The caller then claims any value and calls
    /// [`Scheduler::finish_resume`].
    #[inline(always)]
    pub(crate) fn switch_to(&self, from: &Tcb, to: &Tcb) {
        self.switch_fully_checked(from, to, SwitchFrom::Tasklet);
    }

    #[inline(always)]
    pub(super) fn switch_fully_checked(&self, from: &Tcb, to: &Tcb, switch_from: SwitchFrom) {
        let low = from.stack_low().get();
        // SAFETY: a non-zero stack_low is the usable low of the live segment `from` runs on.
        let intact = low == 0 || unsafe { stack::guard_intact(low, context::stack_pointer()) };
        self.switch_checked(from, to, intact, switch_from);
    }

    /// [`Scheduler::switch_to`] for the hot switches (fast yield, blocking, rendezvous): checks
    /// only the stack pointer and the guard word nearest the stack (see
    /// [`stack::first_guard_intact`]); the other switches check every guard word.
    #[inline(always)]
    pub(crate) fn switch_to_quick(&self, from: &Tcb, to: &Tcb) {
        let low = from.stack_low().get();
        // SAFETY: as in switch_to.
        let intact =
            low == 0 || unsafe { stack::first_guard_intact(low, context::stack_pointer()) };
        self.switch_checked(from, to, intact, SwitchFrom::Tasklet);
    }

    #[inline(always)]
    pub(super) fn switch_checked(
        &self,
        from: &Tcb,
        to: &Tcb,
        stack_intact: bool,
        switch_from: SwitchFrom,
    ) {
        debug_assert!(!core::ptr::eq(from, to));
        let mut save_sp = from.saved_sp().as_ptr();
        if !stack_intact {
            save_sp = self.unlink_overflowed(from);
        }
        self.ring.set_head(to);
        self.current.set(to);
        // SAFETY: `to` is a live runnable tasklet of this CPU whose saved_sp came from its last
        // suspension (or init_stack, or is the restorer's, which learns from `save_sp` who
        // switched: see `slicing`); `save_sp` points into a control block (or the scratch word);
        // the interrupt variant is used exactly from the timer interrupt's handler.
        unsafe {
            match switch_from {
                SwitchFrom::Tasklet => context::switch_without_arg(save_sp, to.saved_sp().get()),
                SwitchFrom::Interrupt => {
                    context::switch_from_interrupt(save_sp, to.saved_sp().get(), 0);
                }
            }
        };
    }

    /// Unlinks a tasklet found overrunning its stack, doing as little as possible on that stack:
    /// it is reported and retired from the healthy stack switched to (see `finish_resume`).
    /// Returns where the switch saves the abandoned context (a scratch word).
    #[cold]
    #[inline(never)]
    fn unlink_overflowed(&self, from: &Tcb) -> *mut usize {
        // A blocking tasklet stays in its wait (and `Blocked` or `Waking`) until
        // `abandon_overflowed` takes it out from the healthy stack.
        if from.state() == State::Runnable {
            self.ring.remove(from);
            from.set_state(State::Paused);
        }
        self.overflowed.set(from);
        self.set_attention(attention::DEFERRED, true);
        self.scratch_sp.as_ptr()
    }

    /// The common case of `schedule()`, small enough to inline into the caller so that the
    /// switch jumps between call sites without unbalancing the return predictor: nothing
    /// pending, no sleepers, no watchdog, no cross-CPU wake-ups waiting, another tasklet next
    /// in the ring.
    ///
    /// One test of the attention word stands for all of that, the running tasklet's own raised
    /// error included (the word counts the tasklets that have one), and one more on the way
    /// back stands for deferred work and an error raised meanwhile.
    #[inline(always)]
    pub(crate) fn try_fast_yield(&self) -> FastYield {
        self.debug_check_attention();
        let me = self.current();
        if self.attention.load(Ordering::Relaxed) != 0 {
            return FastYield::NotTaken;
        }
        // The current tasklet is in the ring (the fast path is for ring members only).
        let next = RunRing::next_of_member(me);
        if core::ptr::eq(next, me) {
            return FastYield::NotTaken;
        }
        // No busy flag on the way out: the timer interrupt preempts only when a watchdog is
        // armed, which sends every yield down the full path. It is cleared on the way back in
        // all the same, since whoever switched here may have left it set.
        self.switch_to_quick(me, next);
        if self.attention.load(Ordering::Relaxed) != 0 {
            return FastYield::ResumedWithAttention(me);
        }
        self.busy.store(0, Ordering::Relaxed);
        FastYield::Resumed
    }

    /// Before an operation that may block or yield, for the running tasklet `me`: honours a
    /// spent watchdog budget ([`Scheduler::checkpoint`]), then returns an error raised into it
    /// (also one raised while the check point had it interrupted). One test of the attention
    /// word when neither applies.
    #[inline(always)]
    pub(crate) fn before_blocking(&'static self, me: &Tcb) -> Result<(), TaskletError> {
        if self.attention.load(Ordering::Relaxed) == 0 {
            Ok(())
        } else {
            self.before_blocking_slow(me)
        }
    }

    #[cold]
    #[inline(never)]
    fn before_blocking_slow(&'static self, me: &Tcb) -> Result<(), TaskletError> {
        // The check point first: a tasklet interrupted there may be killed or thrown into
        // before it is resumed, and the operation it was starting must return that.
        self.checkpoint();
        super::take_pending(me)
    }

    /// Raises `error` into `tcb`, a tasklet of this CPU, replacing any raised before: its next
    /// scheduling point or blocking operation returns it. With [`Scheduler::take_raised`] the
    /// only writers of a `pending` (they keep the attention word's count).
    pub(crate) fn raise_pending(&self, tcb: &Tcb, error: TaskletError) {
        debug_assert!(self.is_here(tcb), "an error raised from another CPU");
        if !tcb.set_pending(error) {
            self.attention
                .fetch_add(attention::PENDING_ONE, Ordering::Relaxed);
        }
    }

    /// Tasklets of this CPU with a raised error not yet taken (the attention word's count).
    pub(crate) fn raised_count(&self) -> usize {
        (self.attention.load(Ordering::Relaxed) / attention::PENDING_ONE) as usize
    }

    /// Takes the error raised into `tcb`, a tasklet of this CPU, if there is one.
    pub(crate) fn take_raised(&self, tcb: &Tcb) -> Option<TaskletError> {
        debug_assert!(self.is_here(tcb), "an error taken on another CPU");
        let error = tcb.take_pending();
        if error.is_some() {
            self.attention
                .fetch_sub(attention::PENDING_ONE, Ordering::Relaxed);
        }
        error
    }

    /// Completes a resumption: releases what the switch left behind (dead tasklets' stacks and
    /// references, whose destructors may run arbitrary code), then leaves the scheduler.
    #[inline(always)]
    pub(crate) fn finish_resume(&self) {
        if self.attention.load(Ordering::Relaxed) & attention::DEFERRED != 0 {
            self.finish_resume_slow();
        } else {
            self.busy.store(0, Ordering::Relaxed);
        }
    }

    #[cold]
    #[inline(never)]
    fn finish_resume_slow(&self) {
        let overflowed = self.overflowed.replace(core::ptr::null());
        // SAFETY: set by switch_checked to a live tasklet of this CPU that will never run again.
        if let Some(tcb) = unsafe { overflowed.as_ref() } {
            self.abandon_overflowed(tcb);
        }
        self.busy.store(0, Ordering::Relaxed);
        // The deferred bit stays set while reaping: a destructor that switches away leaves the
        // rest of the list to whoever resumes next.
        self.reap();
        self.set_attention(
            attention::DEFERRED,
            !self.overflowed.get().is_null() || !self.reap.is_empty(),
        );
    }

    /// Takes a blocked tasklet of this CPU out of what it waits in, through the blocker its
    /// wait installed. False if a waker took it out first.
    pub(super) fn take_out_of_wait(&self, tcb: &Tcb) -> bool {
        match tcb.blocker().get() {
            // SAFETY: the blocker was installed by the blocking operation for this tasklet and
            // its object outlives the wait (the waiter holds it).
            Some(blocker) => unsafe { blocker.cancel(tcb) },
            None => true,
        }
    }

    /// Picks who runs after the current tasklet left the ring (blocked, removed, died), waiting
    /// for wake-ups when nothing is runnable. `blocking` is the current tasklet if it is
    /// blocking (it is the deadlock victim); otherwise a blocked main tasklet is.
    #[inline]
    pub(crate) fn find_next(&'static self, blocking: Option<&Tcb>) -> &'static Tcb {
        match self.ring.head() {
            Some(next) => next,
            None => self.wait_for_next(blocking),
        }
    }

    /// Stackless's `revive_main`: a paused main tasklet goes back in the ring, to run when
    /// nothing else can. `None` if the main tasklet is not paused.
    #[inline(always)]
    pub(super) fn revive_floating_main(&'static self) -> Option<&'static Tcb> {
        let main = &self.main_tcb;
        if main.state() != State::Paused {
            return None;
        }
        self.ring.insert(main, Placement::Tail);
        Some(main)
    }

    /// Raises `error` into `tcb`, a live tasklet of this CPU that is not running: a blocked
    /// one is taken out of its wait, a paused one appended to the run queue, so it runs to see
    /// the error (kill, throw, an unhandled error for main).
    pub(crate) fn raise_into(&self, tcb: &Tcb, error: TaskletError) {
        match tcb.state() {
            State::Blocked => {
                if !self.wake_with_error(tcb, error) {
                    self.raise_pending(tcb, error);
                }
            }
            State::Paused => {
                self.raise_pending(tcb, error);
                self.ring.insert(tcb, Placement::Tail);
            }
            State::Runnable | State::Waking => self.raise_pending(tcb, error),
            State::Dead => {}
        }
    }

    /// Takes a blocked tasklet of this CPU out of what it waits in and makes it runnable with
    /// `error` pending. False if a waker got there first (it is on its way here anyway).
    pub(crate) fn wake_with_error(&self, tcb: &Tcb, error: TaskletError) -> bool {
        if tcb.state() != State::Blocked {
            return false;
        }
        let cancelled = self.take_out_of_wait(tcb);
        if cancelled {
            tcb.blocker().set(None);
            tcb.direction().store(0, Ordering::Relaxed);
            self.raise_pending(tcb, error);
            self.disarm_timer(tcb);
            self.ring.insert(tcb, Placement::Tail);
        }
        cancelled
    }

    /// Blocks the running tasklet, which the caller has already put in a wait queue (under that
    /// queue's lock, now released) with state [`State::Blocked`], until a waker, a kill, a
    /// timeout (`deadline`) or deadlock detection makes it runnable.
    /// Returns with the scheduler still entered: claim the slot, then `finish_resume`.
    ///
    /// Only the switch is inlined (see [`crate::tasklet::schedule`] for why); the bookkeeping
    /// around it is out of line.
    #[inline(always)]
    pub(crate) fn block_current(
        &'static self,
        me: &'static Tcb,
        blocker: Option<Blocker>,
        deadline: Option<Deadline>,
    ) {
        let next = self.block_prepare(me, blocker, deadline);
        self.block_switch(me, next, deadline.is_some());
    }

    /// The first half of [`Scheduler::block_current`]: takes the running tasklet `me` out of
    /// the ring and picks who runs instead (`None` if it was woken meanwhile and runs on), to
    /// be switched to at once by [`Scheduler::block_switch`].
    #[inline]
    fn block_prepare(
        &'static self,
        me: &'static Tcb,
        blocker: Option<Blocker>,
        deadline: Option<Deadline>,
    ) -> Option<&'static Tcb> {
        me.blocker().set(blocker);
        if let Some(deadline) = deadline {
            self.arm_timer(me, deadline);
        }
        self.debug_check_attention();
        // Whoever else is runnable runs next (switched to by `block_switch` straight after);
        // `me` is not among them any more.
        if let Some(next) = self.ring.remove_head(me) {
            return Some(next);
        }
        let next = self.wait_for_next(Some(me));
        if core::ptr::eq(next, me) {
            self.ring.set_head(me);
            None
        } else {
            Some(next)
        }
    }

    /// The second half of [`Scheduler::block_current`]: switches to `next` (if any) and, once
    /// resumed, disarms the wait's timer if it had a deadline (`timed`) that did not expire. (A
    /// wait without one cannot have a timer armed: only a blocking call with a deadline arms one,
    /// and its own resumption disarms it.)
    ///
    /// The blocker stays: only a tasklet in state `Blocked` has its blocker read, and every
    /// wait installs its own.
    #[inline(always)]
    fn block_switch(&self, me: &Tcb, next: Option<&'static Tcb>, timed: bool) {
        if let Some(next) = next {
            self.switch_to_quick(me, next);
        }
        if timed && me.has_flag(tcb::FLAG_TIMER_ARMED) {
            self.disarm_timer(me);
        }
    }

    /// Switches from the running tasklet `me` to `partner`, just placed right after it by a
    /// rendezvous; `me` stays runnable, last in the queue. `busy` is the guard the rendezvous
    /// took before matching: held until the switch, so that no watchdog can interrupt the
    /// running tasklet between the match and the switch (and let the partner run, block or die
    /// meanwhile). The partner is therefore still runnable here.
    #[inline(always)]
    pub(crate) fn switch_to_partner(&self, me: &Tcb, partner: &Tcb, busy: BusyGuard<'_>) {
        debug_assert!(core::ptr::eq(me, self.current()));
        debug_assert!(partner.state() == State::Runnable && self.is_here(partner));
        debug_assert!(
            !core::ptr::eq(partner, me),
            "a tasklet met itself on a channel"
        );
        self.switch_to_quick(me, partner);
        busy.finish_resume();
    }

    /// Yields to the next runnable tasklet; the caller stays in the ring. Wake-ups from other
    /// CPUs and expired timers join the ring first, so tasklets that keep yielding to each
    /// other cannot starve them.
    pub(crate) fn yield_now(&'static self) {
        let me = self.current();
        self.drain_inbox();
        if !self.timers.is_empty() {
            self.fire_timers(Deadline::now());
        }
        if let Some(next) = RunRing::next_after(me) {
            if core::ptr::eq(next, me) {
                self.check_lone_stack(me);
            } else {
                self.switch_to(me, next);
            }
        }
    }

    /// A tasklet yielding with nobody else to run (the main tasklet floating in `run`) switches
    /// nowhere, so its stack is checked here: an overflowed one is abandoned by a switch to the
    /// main tasklet, revived for it. (A main tasklet blocked meanwhile leaves the check to the
    /// next switch.)
    #[inline(never)]
    fn check_lone_stack(&self, me: &Tcb) {
        let low = me.stack_low().get();
        // SAFETY: a non-zero stack_low is the usable low of the live segment `me` runs on.
        if low == 0 || unsafe { stack::guard_intact(low, context::stack_pointer()) } {
            return;
        }
        let main = &self.main_tcb;
        if main.state() != State::Paused {
            return;
        }
        self.ring.insert(main, Placement::Tail);
        self.switch_checked(me, main, false, SwitchFrom::Tasklet);
    }

    // ---- cross-CPU wake-ups ---------------------------------------------------------------

    pub(crate) fn arm_timer(&self, tcb: &Tcb, deadline: Deadline) {
        self.timers.arm(tcb, deadline);
        self.set_attention(attention::TIMERS, true);
    }

    /// Out of line: inlined blocking paths call it only when a timer is armed.
    #[inline(never)]
    pub(crate) fn disarm_timer(&self, tcb: &Tcb) {
        if self.timers.disarm(tcb) {
            self.set_attention(attention::TIMERS, !self.timers.is_empty());
        }
    }

    pub(super) fn set_attention(&self, bit: u32, on: bool) {
        // Read-modify-write although only this CPU changes these bits: another CPU may be
        // setting the inbox bit at the same time.
        if on {
            self.attention.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.attention.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

/// How [`Scheduler::try_fast_yield`] went.
pub(crate) enum FastYield {
    /// The fast path does not apply: nothing was done.
    NotTaken,
    /// Switched away and back; nothing needs attention.
    Resumed,
    /// Switched away and back, this tasklet; something needs attention: finish the resumption
    /// and take any raised error the slow way.
    ResumedWithAttention(&'static Tcb),
}

/// Whether a switch leaves tasklet code or an interrupt handler (see
/// `context::switch_from_interrupt`: the resumed tasklet must run with interrupts enabled).
#[derive(Clone, Copy)]
pub(super) enum SwitchFrom {
    /// Tasklet code, a cooperative watchdog check point included.
    Tasklet,
    /// The board's timer interrupt handler, interrupts masked.
    Interrupt,
}

/// Marks the scheduler busy (no preemption) until dropped.
pub(crate) struct BusyGuard<'a> {
    scheduler: &'a Scheduler,
    was_busy: u8,
}

impl BusyGuard<'_> {
    /// Leaves the scheduler after a switch back to this tasklet: [`Scheduler::finish_resume`]
    /// clears the busy flag itself, so the guard's own store would be a second one.
    #[inline(always)]
    pub(crate) fn finish_resume(self) {
        let scheduler = self.scheduler;
        core::mem::forget(self);
        scheduler.finish_resume();
    }
}

impl Drop for BusyGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.scheduler.busy.store(self.was_busy, Ordering::Relaxed);
    }
}

impl Scheduler {
    /// [`wake`] from this scheduler's CPU. Returns whether `tcb` lives here (and so is in
    /// this ring now, where the caller may switch to it).
    #[inline]
    #[must_use]
    pub(crate) fn wake(&self, tcb: &Tcb, placement: Placement) -> bool {
        tcb.direction().store(0, Ordering::Relaxed);
        let home = Self::home_of(tcb);
        if core::ptr::eq(home, self) {
            self.ring.insert(tcb, placement);
            true
        } else {
            home.wake_from_elsewhere(tcb);
            false
        }
    }

    /// [`Scheduler::wake`] of a tasklet of this (another) CPU: through the inbox. Out of line,
    /// to keep the same-CPU wake-up of a rendezvous small.
    #[inline(never)]
    fn wake_from_elsewhere(&self, tcb: &Tcb) {
        self.inbox.push(tcb, || self.group(), &self.attention);
        platform().wake_cpu(self.cpu.get());
    }
}
