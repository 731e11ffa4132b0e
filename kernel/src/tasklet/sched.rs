//! The per-CPU scheduler: run ring, switching, blocking and waking, timers, idling, deadlock.
//!
//! Each CPU (each thread, hosted) owns one [`Scheduler`]. Only that CPU touches its ring,
//! timers and budget; other CPUs reach it through its inbox (a locked list of tasklets they woke).
//! Whoever resumes after a switch finishes the switch: it claims its value first, then runs the
//! post-switch cleanup ([`Scheduler::finish_resume`]), so a destructor run by that cleanup can
//! never touch a value in flight.

use super::group::CpuGroup;
use super::inbox::Inbox;
use super::list::{List, Ring};
pub(crate) use super::per_cpu::this_cpu;
pub(crate) use super::ring::Placement;
use super::stack::{self, StackBudget};
use super::tcb::{self, Blocker, RingLinks, State, Tcb, TimerLinks, WaitLinks};
pub(crate) use super::wait_queue::WaitQueue;
use super::TaskletError;
use crate::platform::platform;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use spindle_arch::context;

/// Stack budget of a CPU until the board or the application sets one.
pub const DEFAULT_STACK_BUDGET: usize = if cfg!(any(test, feature = "std")) {
    1 << 30
} else {
    8 << 20
};

/// Bits of [`Scheduler::attention`]: why a yield cannot take the fast path, and why a tasklet
/// resumed by one must take the slow way back.
pub(super) mod attention {
    /// The timer queue is not empty.
    pub(in crate::tasklet) const TIMERS: u32 = 1 << 0;
    /// A `run` watchdog budget is armed.
    pub(in crate::tasklet) const WATCHDOG: u32 = 1 << 1;
    /// The watchdog fired while the running tasklet could not be interrupted.
    pub(in crate::tasklet) const PREEMPT: u32 = 1 << 2;
    /// Other CPUs queued wake-ups in the inbox.
    pub(in crate::tasklet) const INBOX: u32 = 1 << 3;
    /// Work awaits whoever resumes next: a tasklet found overflowed at a switch, or dead
    /// tasklets' stacks (queued by `retire`, from an exit, a kill or an overflow).
    pub(in crate::tasklet) const DEFERRED: u32 = 1 << 4;
    /// One tasklet of this CPU with an error raised into it and not yet taken: the bits from
    /// here up count them, so that neither the fast yield nor the way back from its switch
    /// reads the running tasklet's own `pending`.
    pub(in crate::tasklet) const PENDING_ONE: u32 = 1 << 8;
}

/// One CPU's scheduler.
pub(crate) struct Scheduler {
    pub(crate) main_tcb: Tcb,
    pub(super) current: Cell<*const Tcb>,
    /// The ring position: the running tasklet while it is in the ring, else whoever runs next.
    /// (Stale for a moment while a tasklet blocks: between `ring_remove_head` and the switch
    /// that follows, which sets it.)
    pub(super) ring_head: Cell<*const Tcb>,
    pub(super) ring_len: Cell<usize>,
    pub(super) initialized: Cell<bool>,
    /// Non-zero while scheduler state is being changed: an interrupt must not preempt then. A
    /// byte rather than an `AtomicBool`, so a guard restores what it read without turning it
    /// into a `bool` and back.
    pub(super) busy: AtomicU8,
    /// One word the fast yield tests instead of each condition it stands for (see the
    /// [`attention`] bits). Other CPUs set [`attention::INBOX`]; the rest is this CPU's.
    pub(super) attention: AtomicU32,
    pub(super) watchdog_deadline: Cell<u64>,
    pub(super) interrupted: Cell<*const Tcb>,
    /// A tasklet found overrunning its stack at the last switch, to be retired after it.
    pub(super) overflowed: Cell<*const Tcb>,
    /// Dead tasklets whose stacks await release after the switch away from them.
    pub(super) reap: List<WaitLinks>,
    /// Tasklets with a deadline (sleeping or in a timed wait), earliest first.
    pub(super) timers: List<TimerLinks>,
    pub(super) inbox: spin::Mutex<Inbox>,
    pub(super) inbox_count: AtomicUsize,
    pub(crate) cpu: Cell<usize>,
    pub(super) group: Cell<*const CpuGroup>,
    pub(crate) budget: StackBudget,
    pub(super) next_id: Cell<u32>,
    pub(super) live: Cell<usize>,
    pub(super) scratch_sp: Cell<usize>,
}

// SAFETY: a scheduler is reached from other CPUs only through its inbox (a spin lock), the
// atomics, and `cpu`/`group` read after initialisation; everything else is touched by its own CPU.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    pub(crate) const fn new() -> Self {
        Self {
            main_tcb: Tcb::new(0, tcb::FLAG_MAIN | tcb::FLAG_STARTED),
            current: Cell::new(core::ptr::null()),
            ring_head: Cell::new(core::ptr::null()),
            ring_len: Cell::new(0),
            initialized: Cell::new(false),
            busy: AtomicU8::new(0),
            attention: AtomicU32::new(0),
            watchdog_deadline: Cell::new(0),
            interrupted: Cell::new(core::ptr::null()),
            overflowed: Cell::new(core::ptr::null()),
            reap: List::new(),
            timers: List::new(),
            inbox: spin::Mutex::new(List::new()),
            inbox_count: AtomicUsize::new(0),
            cpu: Cell::new(0),
            group: Cell::new(core::ptr::null()),
            budget: StackBudget::new(DEFAULT_STACK_BUDGET),
            next_id: Cell::new(1),
            live: Cell::new(1),
            scratch_sp: Cell::new(0),
        }
    }

    pub(super) fn initialize(&'static self, group: &'static CpuGroup, reserved: bool) {
        let main = &self.main_tcb;
        main.home.set(self);
        // SAFETY: the main control block lives in this 'static scheduler, in no ring yet.
        unsafe { Ring::<RingLinks>::link_alone(main) };
        main.set_state(State::Runnable);
        if let Some((low, high)) = platform().cpu_stack_bounds() {
            if high > low + stack::GUARD_BYTES {
                // SAFETY: the board vouches that [low, high) is this CPU's stack; its bottom
                // guard-sized part is far below anything running now (we are near the top).
                main.stack_low.set(unsafe { stack::arm_guard(low) });
            }
        }
        self.current.set(main);
        self.ring_head.set(main);
        self.ring_len.set(1);
        self.cpu.set(platform().cpu_index());
        if reserved {
            self.join_reserved(group);
        } else {
            self.join(group);
        }
        self.initialized.set(true);
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
        self.ring_len.get() + self.inbox_count.load(Ordering::Acquire)
    }

    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn add_live(&self, count: usize) {
        self.live.set(self.live.get() + count);
    }

    #[inline]
    pub(crate) fn is_here(&self, tcb: &Tcb) -> bool {
        core::ptr::eq(tcb.home.get(), self)
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
        let low = from.stack_low.get();
        // SAFETY: a non-zero stack_low is the usable low of the live segment `from` runs on.
        let intact = low == 0 || unsafe { stack::guard_intact(low, context::stack_pointer()) };
        self.switch_checked(from, to, intact, switch_from);
    }

    /// [`Scheduler::switch_to`] for the hot switches (fast yield, blocking, rendezvous): checks
    /// only the stack pointer and the guard word nearest the stack (see
    /// [`stack::first_guard_intact`]); the other switches check every guard word.
    #[inline(always)]
    pub(crate) fn switch_to_quick(&self, from: &Tcb, to: &Tcb) {
        let low = from.stack_low.get();
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
        let mut save_sp = from.saved_sp.as_ptr();
        if !stack_intact {
            save_sp = self.unlink_overflowed(from);
        }
        self.set_ring_head(to);
        self.current.set(to);
        // SAFETY: `to` is a live runnable tasklet of this CPU whose saved_sp came from its last
        // suspension (or init_stack); `save_sp` points into a control block (or the scratch word);
        // the interrupt variant is used exactly from the timer interrupt's handler.
        unsafe {
            match switch_from {
                SwitchFrom::Tasklet => context::switch_without_arg(save_sp, to.saved_sp.get()),
                SwitchFrom::Interrupt => {
                    context::switch_from_interrupt(save_sp, to.saved_sp.get(), 0);
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
            self.ring_remove(from);
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
        let next = Ring::<RingLinks>::next(me);
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
        if tcb.pending.replace(Some(error)).is_none() {
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
        let error = tcb.pending.take();
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
        match tcb.blocker.get() {
            // SAFETY: the blocker was installed by the blocking operation for this tasklet and
            // its object outlives the wait (the waiter holds it).
            Some(blocker) => unsafe { (blocker.cancel)(blocker.object, tcb) },
            None => true,
        }
    }

    /// Picks who runs after the current tasklet left the ring (blocked, removed, died), waiting
    /// for wake-ups when nothing is runnable. `blocking` is the current tasklet if it is
    /// blocking (it is the deadlock victim); otherwise a blocked main tasklet is.
    #[inline]
    pub(crate) fn find_next(&'static self, blocking: Option<&Tcb>) -> &'static Tcb {
        match self.ring_head_tcb() {
            Some(next) => next,
            None => self.wait_for_next(blocking),
        }
    }

    /// The rest of `find_next`: nothing is runnable here yet.
    #[inline(never)]
    fn wait_for_next(&'static self, blocking: Option<&Tcb>) -> &'static Tcb {
        loop {
            if let Some(next) = self.ring_head_tcb() {
                return next;
            }
            self.drain_inbox();
            if let Some(next) = self.ring_head_tcb() {
                return next;
            }
            let now = platform().now_ns();
            self.fire_timers(now);
            if let Some(next) = self.ring_head_tcb() {
                return next;
            }
            let victim = blocking.unwrap_or(&self.main_tcb);
            let can_be_victim = victim.state() == State::Blocked;
            if self.idle_unless_deadlocked(self.next_timer_deadline(), can_be_victim) {
                self.wake_with_error(victim, TaskletError::Deadlock);
            }
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
            tcb.blocker.set(None);
            tcb.direction.store(0, Ordering::Relaxed);
            self.raise_pending(tcb, error);
            self.disarm_timer(tcb);
            self.ring_insert(tcb, Placement::Tail);
        }
        cancelled
    }

    /// Blocks the running tasklet, which the caller has already put in a wait queue (under that
    /// queue's lock, now released) with state [`State::Blocked`], until a waker, a kill, a
    /// timeout (`deadline`, on the platform clock) or deadlock detection makes it runnable.
    /// Returns with the scheduler still entered: claim the slot, then `finish_resume`.
    ///
    /// Only the switch is inlined (see [`crate::tasklet::schedule`] for why); the bookkeeping
    /// around it is out of line.
    #[inline(always)]
    pub(crate) fn block_current(
        &'static self,
        me: &'static Tcb,
        blocker: Option<Blocker>,
        deadline: Option<u64>,
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
        deadline: Option<u64>,
    ) -> Option<&'static Tcb> {
        me.blocker.set(blocker);
        if let Some(deadline) = deadline {
            self.arm_timer(me, deadline);
        }
        self.debug_check_attention();
        // Whoever else is runnable runs next (switched to by `block_switch` straight after);
        // `me` is not among them any more.
        if let Some(next) = self.ring_remove_head(me) {
            return Some(next);
        }
        let next = self.wait_for_next(Some(me));
        if core::ptr::eq(next, me) {
            self.set_ring_head(me);
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
            self.fire_timers(platform().now_ns());
        }
        if !Ring::<RingLinks>::is_linked(me) {
            return;
        }
        let next = Ring::<RingLinks>::next(me);
        if !core::ptr::eq(next, me) {
            self.switch_to(me, next);
        }
    }

    // ---- cross-CPU wake-ups ---------------------------------------------------------------

    /// Debug builds: the bits this CPU owns match what they stand for. (The inbox bit is set by
    /// other CPUs a moment after their count changes, so it is not compared here.)
    #[inline(always)]
    pub(super) fn debug_check_attention(&self) {
        if cfg!(debug_assertions) {
            let word = self.attention.load(Ordering::Relaxed);
            // Work implies the bit; the bit stays set a while longer during a reap.
            assert!(
                word & attention::DEFERRED != 0
                    || (self.overflowed.get().is_null() && self.reap.is_empty()),
                "deferred work without the deferred bit"
            );
            assert!(
                self.current().pending.get().is_none() || word >= attention::PENDING_ONE,
                "a raised error not counted in the attention word"
            );
            let owned =
                self.attention.load(Ordering::Relaxed) & (attention::TIMERS | attention::WATCHDOG);
            let mut expected = 0;
            if !self.timers.is_empty() {
                expected |= attention::TIMERS;
            }
            if self.watchdog_deadline.get() != 0 {
                expected |= attention::WATCHDOG;
            }
            assert_eq!(
                owned, expected,
                "attention bits out of step with timers/watchdog"
            );
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

/// Makes a tasklet that a waker just took out of a wait queue runnable: directly in this CPU's
/// ring if it lives here, else through its CPU's inbox. With [`Placement::Next`] the caller then
/// switches to it (only meaningful on the same CPU).
pub(crate) fn wake(tcb: &Tcb, placement: Placement) {
    let _ = this_cpu().wake(tcb, placement);
}

impl Scheduler {
    /// [`wake`] from this scheduler's CPU. Returns whether `tcb` lives here (and so is in
    /// this ring now, where the caller may switch to it).
    #[inline]
    #[must_use]
    pub(crate) fn wake(&self, tcb: &Tcb, placement: Placement) -> bool {
        tcb.direction.store(0, Ordering::Relaxed);
        // SAFETY: `home` is set at creation to a 'static scheduler.
        let home = unsafe { &*tcb.home.get() };
        if core::ptr::eq(home, self) {
            self.ring_insert(tcb, placement);
            true
        } else {
            home.inbox_push(tcb);
            false
        }
    }
}
