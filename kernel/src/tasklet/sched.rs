//! The per-CPU scheduler: run ring, switching, blocking and waking, timers, idling, deadlock.
//!
//! Each CPU (each thread, hosted) owns one [`Scheduler`]. Only that CPU touches its ring,
//! timers and budget; other CPUs reach it through its inbox (a locked list of tasklets they woke).
//! Whoever resumes after a switch finishes the switch: it claims its value first, then runs the
//! post-switch cleanup ([`Scheduler::finish_resume`]), so a destructor run by that cleanup can
//! never touch a value in flight.

use super::list::{List, Ring};
use super::stack::{self, StackBudget, StackRegion};
use super::tcb::{self, Blocker, RingLinks, State, Tcb, TcbRef, TimerLinks, WaitLinks};
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

/// CPUs whose tasklets may wake each other. Deadlock is declared only when every member is
/// idle with nothing that could wake it: no timers, no wake-ups in flight, no outside work
/// (such as `call_async` jobs) pending.
///
/// Hosted, every thread starts in a group of its own; threads that share channels join one
/// group with [`join_group`](super::join_group). On bare metal all CPUs share one group.
pub struct CpuGroup {
    state: spin::Mutex<GroupState>,
    in_flight: AtomicUsize,
    external: AtomicUsize,
}

struct GroupState {
    members: usize,
    stuck: usize,
    /// CPUs idling with nothing that could wake them but another member: woken to re-check
    /// when a member leaves or outside work ends. (Beyond its capacity a CPU relies on the
    /// platform's periodic idle returns instead.)
    stuck_cpus: heapless::Vec<usize, 32>,
}

impl GroupState {
    fn wake_stuck(cpus: &heapless::Vec<usize, 32>) {
        for &cpu in cpus {
            platform().wake_cpu(cpu);
        }
    }
}

impl CpuGroup {
    /// An empty group.
    pub const fn new() -> Self {
        Self {
            state: spin::Mutex::new(GroupState {
                members: 0,
                stuck: 0,
                stuck_cpus: heapless::Vec::new(),
            }),
            in_flight: AtomicUsize::new(0),
            external: AtomicUsize::new(0),
        }
    }

    /// Notes work outside any scheduler (a job on a worker) that will wake a member later:
    /// while any is pending, members idle instead of declaring deadlock.
    pub fn begin_external(&self) {
        self.external.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends what [`CpuGroup::begin_external`] began (waking idle members to re-check).
    pub fn end_external(&self) {
        self.external.fetch_sub(1, Ordering::AcqRel);
        let stuck = self.state.lock().stuck_cpus.clone();
        GroupState::wake_stuck(&stuck);
    }

    fn leave(&self) {
        let stuck = {
            let mut state = self.state.lock();
            state.members -= 1;
            state.stuck_cpus.clone()
        };
        // The remaining members may now be all stuck: let them re-check.
        GroupState::wake_stuck(&stuck);
    }

    /// Counts a CPU that will join with `join_reserved` before it exists.
    pub(crate) fn reserve_member(&self) {
        self.state.lock().members += 1;
    }

    /// Number of schedulers in the group.
    pub fn members(&self) -> usize {
        self.state.lock().members
    }
}

impl Default for CpuGroup {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(any(test, feature = "std")))]
static GLOBAL_GROUP: CpuGroup = CpuGroup::new();

/// Tasklets other CPUs woke for this one, in wake order (through their wait links: a tasklet
/// on its way home is in no wait queue).
type Inbox = List<WaitLinks>;

/// Where a woken tasklet goes in its ring.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Placement {
    /// At the end of the run queue.
    Tail,
    /// Right after the current tasklet (to be switched to at once by the caller).
    Next,
}

/// Bits of [`Scheduler::attention`]: why a yield cannot take the fast path, and why a tasklet
/// resumed by one must take the slow way back.
mod attention {
    /// The timer queue is not empty.
    pub(super) const TIMERS: u32 = 1 << 0;
    /// A `run` watchdog budget is armed.
    pub(super) const WATCHDOG: u32 = 1 << 1;
    /// The watchdog fired while the running tasklet could not be interrupted.
    pub(super) const PREEMPT: u32 = 1 << 2;
    /// Other CPUs queued wake-ups in the inbox.
    pub(super) const INBOX: u32 = 1 << 3;
    /// Work awaits whoever resumes next: a tasklet found overflowed at a switch, or dead
    /// tasklets' stacks (queued by `retire`, from an exit, a kill or an overflow).
    pub(super) const DEFERRED: u32 = 1 << 4;
    /// One tasklet of this CPU with an error raised into it and not yet taken: the bits from
    /// here up count them, so that neither the fast yield nor the way back from its switch
    /// reads the running tasklet's own `pending`.
    pub(super) const PENDING_ONE: u32 = 1 << 8;
}

/// One CPU's scheduler.
pub(crate) struct Scheduler {
    pub(crate) main_tcb: Tcb,
    current: Cell<*const Tcb>,
    /// The ring position: the running tasklet while it is in the ring, else whoever runs next.
    /// (Stale for a moment while a tasklet blocks: between `ring_remove_head` and the switch
    /// that follows, which sets it.)
    ring_head: Cell<*const Tcb>,
    ring_len: Cell<usize>,
    initialized: Cell<bool>,
    /// Non-zero while scheduler state is being changed: an interrupt must not preempt then. A
    /// byte rather than an `AtomicBool`, so a guard restores what it read without turning it
    /// into a `bool` and back.
    busy: AtomicU8,
    /// One word the fast yield tests instead of each condition it stands for (see the
    /// [`attention`] bits). Other CPUs set [`attention::INBOX`]; the rest is this CPU's.
    attention: AtomicU32,
    watchdog_deadline: Cell<u64>,
    interrupted: Cell<*const Tcb>,
    /// A tasklet found overrunning its stack at the last switch, to be retired after it.
    overflowed: Cell<*const Tcb>,
    /// Dead tasklets whose stacks await release after the switch away from them.
    reap: List<WaitLinks>,
    /// Tasklets with a deadline (sleeping or in a timed wait), earliest first.
    timers: List<TimerLinks>,
    inbox: spin::Mutex<Inbox>,
    inbox_count: AtomicUsize,
    pub(crate) cpu: Cell<usize>,
    group: Cell<*const CpuGroup>,
    pub(crate) budget: StackBudget,
    next_id: Cell<u32>,
    live: Cell<usize>,
    scratch_sp: Cell<usize>,
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

    fn initialize(&'static self, group: &'static CpuGroup, reserved: bool) {
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

    pub(crate) fn join(&self, group: &'static CpuGroup) {
        self.move_to_group(Some(group), true);
    }

    /// Moves into `group`, whose member count already includes this CPU (a reservation made
    /// before the thread started, so no other member ever saw the group without it).
    pub(crate) fn join_reserved(&self, group: &'static CpuGroup) {
        self.move_to_group(Some(group), false);
    }

    #[cfg_attr(
        not(any(test, feature = "std")),
        allow(dead_code, reason = "hosted threads and embedders")
    )]
    pub(crate) fn leave_group(&self) {
        self.move_to_group(None, false);
    }

    pub(crate) fn group(&self) -> Option<&'static CpuGroup> {
        // SAFETY: groups are 'static (join takes &'static).
        unsafe { self.group.get().as_ref() }
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

    // ---- the ring -------------------------------------------------------------------------

    /// Links `tcb` into the ring (it must not be in it).
    #[inline]
    pub(crate) fn ring_insert(&self, tcb: &Tcb, placement: Placement) {
        tcb.set_state(State::Runnable);
        // SAFETY: `tcb` is a tasklet of this CPU in no ring (its callers make it runnable from
        // paused, blocked or waking), kept alive by this scheduler while it lives.
        unsafe {
            match self.ring_head_tcb() {
                None => {
                    Ring::<RingLinks>::link_alone(tcb);
                    self.ring_head.set(tcb);
                }
                // The tail is just before the head.
                Some(head) => match placement {
                    Placement::Tail => Ring::<RingLinks>::insert_before(head, tcb),
                    Placement::Next => Ring::<RingLinks>::insert_after(head, tcb),
                },
            }
        }
        self.ring_len.set(self.ring_len.get() + 1);
    }

    /// Unlinks the running tasklet `me` from the ring, whose head it is (see `ring_head`), and
    /// returns its successor, if any, which the caller must switch to at once: the switch makes
    /// it the head (the ring head is left stale until then, saving a store). (Not through
    /// [`Scheduler::ring_remove`]: blocking knows where `me` is, which saves a test.)
    #[inline]
    fn ring_remove_head(&self, me: &Tcb) -> Option<&'static Tcb> {
        debug_assert!(
            core::ptr::eq(self.ring_head.get(), me),
            "blocking off the ring head"
        );
        let next = Ring::<RingLinks>::unlink(me);
        if next.is_none() {
            self.ring_head.set(core::ptr::null());
        }
        self.ring_len.set(self.ring_len.get() - 1);
        next
    }

    /// Unlinks `tcb` from the ring (it must be in it); the head moves to its successor.
    pub(crate) fn ring_remove(&self, tcb: &Tcb) {
        let next = Ring::<RingLinks>::unlink(tcb);
        if core::ptr::eq(self.ring_head.get(), tcb) {
            self.ring_head
                .set(next.map_or(core::ptr::null(), |next| next as *const Tcb));
        }
        self.ring_len.set(self.ring_len.get() - 1);
    }

    #[inline]
    pub(crate) fn set_ring_head(&self, tcb: &Tcb) {
        self.ring_head.set(tcb);
    }

    // ---- switching ------------------------------------------------------------------------

    /// Switches from the running tasklet `from` to `to` (which must be runnable and not `from`);
    /// returns when `from` is resumed. The caller then claims any value and calls
    /// [`Scheduler::finish_resume`].
    #[inline(always)]
    pub(crate) fn switch_to(&self, from: &Tcb, to: &Tcb) {
        self.switch_fully_checked(from, to, SwitchFrom::Tasklet);
    }

    #[inline(always)]
    fn switch_fully_checked(&self, from: &Tcb, to: &Tcb, switch_from: SwitchFrom) {
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
    fn switch_checked(&self, from: &Tcb, to: &Tcb, stack_intact: bool, switch_from: SwitchFrom) {
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

    fn reap(&self) {
        while let Some(dead) = self.reap.pop_front() {
            // SAFETY: reap-list entries are dead tasklets whose reference this scheduler gave up
            // to the list; nothing runs on their stacks any more (we switched away from them).
            unsafe {
                self.release_stacks(dead);
                drop(TcbRef::from_raw(dead));
            }
        }
    }

    /// Frees a dead tasklet's stack and any spill segments it died on.
    ///
    /// # Safety
    /// Nothing runs on those stacks.
    unsafe fn release_stacks(&self, tcb: &Tcb) {
        let mut segment_base = tcb.spill_top.replace(0);
        while segment_base != 0 {
            // SAFETY: live spill segments of a dead tasklet; their headers chain them.
            unsafe {
                let (segment, previous_base) = StackRegion::read_segment(segment_base);
                segment.free(&self.budget);
                segment_base = previous_base;
            }
        }
        let stack = tcb.stack.replace(StackRegion { base: 0, size: 0 });
        if stack.base != 0 {
            // SAFETY: the caller guarantees nothing runs on it.
            unsafe { stack.free(&self.budget) };
        }
        tcb.stack_low.set(0);
    }

    fn push_reap(&self, tcb: &Tcb) {
        // SAFETY: a dead tasklet is in no wait queue, inbox or reap list (it left them to die),
        // and this scheduler's reference keeps it alive until `reap` drops it. Newest first.
        unsafe { self.reap.push_front(tcb) };
        self.set_attention(attention::DEFERRED, true);
    }

    /// Marks `tcb` dead (it is not running any more, or is about to switch away for good), fails
    /// its body with `error` unless it finished, wakes its joiners, and queues its stack for
    /// release.
    pub(crate) fn retire(&self, tcb: &Tcb, error: Option<TaskletError>) {
        if let Some(error) = error {
            let body = tcb.body.get();
            if !body.is_null() {
                // SAFETY: the body is live while the control block is; this CPU owns it.
                unsafe { ((*body).vtable.fail)(body, error) };
            }
        }
        self.disarm_timer(tcb);
        // An error raised into it that it never took dies with it.
        let _ = self.take_raised(tcb);
        tcb.set_state(State::Dead);
        self.live.set(self.live.get() - 1);
        let mut joiners = tcb.joiners.lock();
        while let Some(joiner) = joiners.pop_front() {
            wake(joiner, Placement::Tail);
        }
        drop(joiners);
        self.push_reap(tcb);
    }

    fn abandon_overflowed(&self, tcb: &Tcb) {
        let stack = tcb.stack.get();
        crate::kprintln!(
            "spindle: stack overflow in tasklet #{} '{}' (stack {} bytes): tasklet abandoned",
            tcb.id,
            tcb.name(),
            stack.size
        );
        // Found as it blocked: out of its wait queue first, or a waker would hand it on (and
        // switch into its ruined stack). If a waker on another CPU has already taken it out, it
        // is on its way to this CPU's inbox, which retires it when it arrives.
        let out_of_wait = match tcb.state() {
            State::Blocked => self.take_out_of_wait(tcb),
            State::Waking => false,
            _ => true,
        };
        if out_of_wait {
            self.retire(tcb, Some(TaskletError::StackOverflow));
        } else {
            tcb.set_flag(tcb::FLAG_ABANDONED, true);
        }
    }

    /// Takes a blocked tasklet of this CPU out of what it waits in, through the blocker its
    /// wait installed. False if a waker took it out first.
    fn take_out_of_wait(&self, tcb: &Tcb) -> bool {
        match tcb.blocker.get() {
            // SAFETY: the blocker was installed by the blocking operation for this tasklet and
            // its object outlives the wait (the waiter holds it).
            Some(blocker) => unsafe { (blocker.cancel)(blocker.object, tcb) },
            None => true,
        }
    }

    /// The running tasklet finished: retire it and run something else, for good.
    pub(crate) fn exit_current(&'static self) -> ! {
        let _busy = self.enter();
        let me = self.current();
        self.ring_remove(me);
        self.retire(me, None);
        let next = self.find_next(None);
        self.set_ring_head(next);
        self.current.set(next);
        // SAFETY: `next` is runnable; the dead tasklet's context is never resumed, so its save
        // goes to the scratch word. Its stack stays allocated until `next` reaps it.
        unsafe { context::switch(self.scratch_sp.as_ptr(), next.saved_sp.get(), 0) };
        unreachable!("a dead tasklet was resumed");
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

    fn ring_head_tcb(&self) -> Option<&'static Tcb> {
        // SAFETY: ring members are live control blocks of this CPU.
        unsafe { self.ring_head.get().as_ref() }
    }

    /// With nothing runnable here: returns true if this CPU's group is deadlocked (no member
    /// can make progress, no timer, no wake-up in flight, no outside work) and a victim is
    /// available; otherwise idles until a wake-up, `deadline` or a spurious return. The check
    /// and this CPU's counting itself stuck happen under one lock, so of several CPUs blocking
    /// at once the last one always sees the others stuck.
    fn idle_unless_deadlocked(&self, deadline: Option<u64>, can_be_victim: bool) -> bool {
        let group = self.group();
        let stuck = deadline.is_none();
        if stuck {
            match group {
                None => {
                    if can_be_victim {
                        return true;
                    }
                }
                Some(group) => {
                    let mut state = group.state.lock();
                    let quiet = self.inbox_count.load(Ordering::Acquire) == 0
                        && group.in_flight.load(Ordering::Acquire) == 0
                        && group.external.load(Ordering::Acquire) == 0;
                    if quiet && can_be_victim && state.stuck + 1 >= state.members {
                        return true;
                    }
                    state.stuck += 1;
                    let _ = state.stuck_cpus.push(self.cpu.get());
                }
            }
        }
        if self.inbox_count.load(Ordering::Acquire) == 0 {
            platform().idle(deadline);
        }
        if let (Some(group), true) = (group, stuck) {
            let mut state = group.state.lock();
            state.stuck -= 1;
            let me = self.cpu.get();
            if let Some(position) = state.stuck_cpus.iter().position(|&cpu| cpu == me) {
                state.stuck_cpus.swap_remove(position);
            }
        }
        false
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

    // ---- blocking -------------------------------------------------------------------------

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

    fn inbox_push(&self, tcb: &Tcb) {
        tcb.set_state(State::Waking);
        {
            let inbox = self.inbox.lock();
            // Counted in the group the home belongs to now; group changes happen under the
            // same lock and carry the count along (see `move_to_group`).
            if let Some(group) = self.group() {
                group.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            // SAFETY: a woken tasklet left its wait queue before its waker got here, so its
            // wait link is free; its home (this scheduler) keeps it alive.
            unsafe { inbox.push_back(tcb) };
            self.inbox_count.fetch_add(1, Ordering::AcqRel);
            self.attention.fetch_or(attention::INBOX, Ordering::Release);
        }
        platform().wake_cpu(self.cpu.get());
    }

    fn drain_inbox(&self) {
        if self.inbox_count.load(Ordering::Acquire) == 0 {
            return;
        }
        // This CPU is running (not counted stuck), so the wake-ups stop being "in flight" as
        // soon as they are detached.
        let (arrived, detached) = {
            let inbox = self.inbox.lock();
            let arrived = inbox.take_all();
            self.attention
                .fetch_and(!attention::INBOX, Ordering::Relaxed);
            let detached = self.inbox_count.load(Ordering::Acquire);
            if let Some(group) = self.group() {
                group.in_flight.fetch_sub(detached, Ordering::AcqRel);
            }
            (arrived, detached)
        };
        while let Some(tcb) = arrived.pop_front() {
            if tcb.has_flag(tcb::FLAG_ABANDONED) {
                self.retire(tcb, Some(TaskletError::StackOverflow));
            } else {
                self.ring_insert(tcb, Placement::Tail);
            }
        }
        self.inbox_count.fetch_sub(detached, Ordering::AcqRel);
    }

    /// Moves this CPU from its group to `group` (or none), under the inbox lock so that
    /// wake-ups already queued here move their in-flight count along.
    fn move_to_group(&self, group: Option<&'static CpuGroup>, count_member: bool) {
        let old = {
            let _inbox = self.inbox.lock();
            let pending = self.inbox_count.load(Ordering::Acquire);
            let old = self.group();
            if let Some(old) = old {
                old.in_flight.fetch_sub(pending, Ordering::AcqRel);
            }
            if let Some(new) = group {
                new.in_flight.fetch_add(pending, Ordering::AcqRel);
                if count_member {
                    new.state.lock().members += 1;
                }
            }
            self.group
                .set(group.map_or(core::ptr::null(), |new| new as *const CpuGroup));
            old
        };
        if let Some(old) = old {
            old.leave();
        }
    }

    // ---- timers ---------------------------------------------------------------------------

    pub(crate) fn arm_timer(&self, tcb: &Tcb, deadline: u64) {
        self.disarm_timer(tcb);
        tcb.timer_deadline.set(deadline);
        // After every timer due no later: equal deadlines fire in arming order.
        let later = self
            .timers
            .iter()
            .find(|entry| entry.timer_deadline.get() > deadline);
        // SAFETY: disarmed just above, so in no timer queue; a tasklet of this CPU, alive while
        // it lives (and a dying tasklet disarms its timer in `retire`).
        unsafe { self.timers.insert_before(later, tcb) };
        self.set_attention(attention::TIMERS, true);
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, true);
    }

    /// Out of line: inlined blocking paths call it only when a timer is armed.
    #[inline(never)]
    pub(crate) fn disarm_timer(&self, tcb: &Tcb) {
        if !tcb.has_flag(tcb::FLAG_TIMER_ARMED) {
            return;
        }
        // SAFETY: the armed flag is set exactly while the tasklet is in this CPU's timer queue.
        unsafe { self.timers.remove(tcb) };
        self.set_attention(attention::TIMERS, !self.timers.is_empty());
        tcb.set_flag(tcb::FLAG_TIMER_ARMED, false);
    }

    /// Debug builds: the bits this CPU owns match what they stand for. (The inbox bit is set by
    /// other CPUs a moment after their count changes, so it is not compared here.)
    #[inline(always)]
    fn debug_check_attention(&self) {
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

    fn set_attention(&self, bit: u32, on: bool) {
        // Read-modify-write although only this CPU changes these bits: another CPU may be
        // setting the inbox bit at the same time.
        if on {
            self.attention.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.attention.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    fn preempt_pending(&self) -> bool {
        self.attention.load(Ordering::Relaxed) & attention::PREEMPT != 0
    }

    fn set_watchdog_deadline(&self, deadline: u64) {
        self.watchdog_deadline.set(deadline);
        self.set_attention(attention::WATCHDOG, deadline != 0);
    }

    /// Waits (idling the CPU) until the earliest timer expires or a wake-up arrives, then makes
    /// the due tasklets runnable. For `run`, when only the main tasklet is runnable.
    pub(crate) fn wait_for_timers(&self) -> bool {
        let Some(deadline) = self.next_timer_deadline() else {
            return false;
        };
        if self.inbox_count.load(Ordering::Acquire) == 0 && platform().now_ns() < deadline {
            platform().idle(Some(deadline));
        }
        self.drain_inbox();
        self.fire_timers(platform().now_ns());
        true
    }

    fn next_timer_deadline(&self) -> Option<u64> {
        self.timers.front().map(|tcb| tcb.timer_deadline.get())
    }

    /// Wakes every tasklet whose timer expired by `now`: a sleeper normally, a tasklet blocked
    /// with a timeout with [`TaskletError::TimedOut`].
    pub(crate) fn fire_timers(&self, now: u64) {
        while let Some(tcb) = self.timers.front() {
            if tcb.timer_deadline.get() > now {
                return;
            }
            self.disarm_timer(tcb);
            if tcb.state() != State::Blocked {
                continue;
            }
            if tcb.blocker.get().is_some() {
                self.wake_with_error(tcb, TaskletError::TimedOut);
            } else {
                self.ring_insert(tcb, Placement::Tail);
            }
        }
    }

    // ---- preemption -----------------------------------------------------------------------

    pub(crate) fn arm_watchdog(&self, deadline: Option<u64>) {
        self.set_watchdog_deadline(deadline.unwrap_or(0));
        self.set_attention(attention::PREEMPT, false);
        platform().set_preempt_deadline(deadline);
    }

    pub(crate) fn take_interrupted(&self) -> Option<TcbRef> {
        let interrupted = self.interrupted.replace(core::ptr::null());
        // SAFETY: `interrupted` holds a reference given up by into_raw in `interrupt_current`.
        (!interrupted.is_null()).then(|| unsafe { TcbRef::from_raw(interrupted) })
    }

    fn watchdog_expired(&self) -> bool {
        let deadline = self.watchdog_deadline.get();
        deadline != 0 && platform().now_ns() >= deadline
    }

    /// A cooperative check point: if the watchdog budget of `run` is spent and the running
    /// tasklet may be interrupted, hand it back to the main tasklet.
    #[inline(always)]
    pub(crate) fn checkpoint(&'static self) {
        if self.attention.load(Ordering::Relaxed) & (attention::WATCHDOG | attention::PREEMPT) != 0
        {
            self.checkpoint_armed();
        }
    }

    #[inline(never)]
    fn checkpoint_armed(&'static self) {
        if self.watchdog_expired() {
            let _busy = self.enter();
            self.interrupt_current(SwitchFrom::Tasklet);
            self.finish_resume();
        }
    }

    /// Interrupts the running tasklet for the watchdog if it may be: not main, not atomic.
    /// Returns after the tasklet is resumed again (if it was interrupted).
    fn interrupt_current(&'static self, switch_from: SwitchFrom) {
        let me = self.current();
        if me.is_main() || me.atomic.get() > 0 || self.main_tcb.state() != State::Runnable {
            if !me.is_main() {
                self.set_attention(attention::PREEMPT, true);
            }
            return;
        }
        self.set_attention(attention::PREEMPT, false);
        self.set_watchdog_deadline(0);
        platform().set_preempt_deadline(None);
        self.ring_remove(me);
        me.set_state(State::Paused);
        let previous = self.interrupted.replace(TcbRef::from_tcb(me).into_raw());
        if !previous.is_null() {
            // SAFETY: a reference given up by into_raw earlier and not yet taken back.
            drop(unsafe { TcbRef::from_raw(previous) });
        }
        self.switch_fully_checked(me, &self.main_tcb, switch_from);
    }

    /// From the board's timer interrupt (interrupts off, on the interrupted stack).
    pub(crate) fn on_timer_interrupt(&'static self) {
        if !self.initialized.get() || !self.watchdog_expired() {
            return;
        }
        if self.busy.load(Ordering::Relaxed) != 0 {
            self.set_attention(attention::PREEMPT, true);
            return;
        }
        self.busy.store(1, Ordering::Relaxed);
        self.interrupt_current(SwitchFrom::Interrupt);
        self.finish_resume_without_reap();
    }

    fn finish_resume_without_reap(&self) {
        // Destructors must not run inside an interrupt handler: the next ordinary resumption
        // reaps instead.
        self.busy.store(0, Ordering::Relaxed);
    }

    /// After leaving an atomic section: honour a watchdog that fired meanwhile.
    pub(crate) fn after_atomic(&'static self) {
        if self.preempt_pending() {
            self.checkpoint();
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
enum SwitchFrom {
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

// ---- per-CPU access -----------------------------------------------------------------------

#[cfg(any(test, feature = "std"))]
mod per_cpu {
    extern crate std;
    use super::{CpuGroup, Scheduler};
    use core::cell::Cell;

    /// Leaves the thread's group when the thread ends.
    struct Registration(Cell<*const Scheduler>);

    impl Drop for Registration {
        fn drop(&mut self) {
            // SAFETY: the scheduler is leaked ('static); leaving its group lets the remaining
            // members of a shared group detect deadlock without this thread.
            if let Some(scheduler) = unsafe { self.0.get().as_ref() } {
                scheduler.leave_group();
            }
        }
    }

    std::thread_local! {
        // Without a destructor, so reading it is a plain thread-pointer-relative load.
        static THIS: Cell<*const Scheduler> = const { Cell::new(core::ptr::null()) };
        static REGISTRATION: Registration = const { Registration(Cell::new(core::ptr::null())) };
    }

    #[inline]
    pub(super) fn this_cpu() -> &'static Scheduler {
        let existing = THIS.with(Cell::get);
        if existing.is_null() {
            return initialize();
        }
        // SAFETY: set by `initialize` to a leaked, never-freed scheduler.
        unsafe { &*existing }
    }

    #[cold]
    fn initialize() -> &'static Scheduler {
        let scheduler: &'static Scheduler =
            std::boxed::Box::leak(std::boxed::Box::new(Scheduler::new()));
        let group: &'static CpuGroup = std::boxed::Box::leak(std::boxed::Box::new(CpuGroup::new()));
        scheduler.initialize(group, false);
        THIS.with(|this| this.set(scheduler));
        REGISTRATION.with(|registration| registration.0.set(scheduler));
        scheduler
    }
}

#[cfg(not(any(test, feature = "std")))]
mod per_cpu {
    use super::{Scheduler, GLOBAL_GROUP};
    use core::sync::atomic::{AtomicBool, Ordering};

    /// CPUs counted in the global group before they started (see `reserve_cpu`).
    static RESERVED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

    /// Counts `cpu` as a member of the global group before it starts, so that no other CPU
    /// declares deadlock while it boots. False if it was reserved or started already.
    pub(crate) fn reserve_cpu(cpu: usize) -> bool {
        let Some(flag) = RESERVED.get(cpu) else {
            return false;
        };
        if SCHEDULERS.0[cpu].initialized.get() || flag.swap(true, Ordering::AcqRel) {
            return false;
        }
        GLOBAL_GROUP.reserve_member();
        true
    }

    /// Undoes a reservation whose CPU failed to start.
    pub(crate) fn unreserve_cpu(cpu: usize) {
        if let Some(flag) = RESERVED.get(cpu) {
            if flag.swap(false, Ordering::AcqRel) {
                GLOBAL_GROUP.state.lock().members -= 1;
            }
        }
    }

    /// Most CPUs a bare-metal kernel schedules on (each costs a scheduler in `.data`).
    pub(crate) const MAX_CPUS: usize = 16;

    struct Slots([Scheduler; MAX_CPUS]);

    static SCHEDULERS: Slots = Slots([const { Scheduler::new() }; MAX_CPUS]);

    // SAFETY: each CPU touches only its own slot's non-atomic state (see Scheduler's Sync).
    unsafe impl Sync for Slots {}

    /// On PowerPC64 the scheduler's address is cached in the CPU's r13 block (see
    /// `spindle_arch::powerpc64::percpu`), which the boot code of every CPU sets up: the common
    /// case is one load, with no call through the platform. Boards whose r13 is not a
    /// `spindle_arch` block build without the `percpu-r13` feature.
    #[cfg(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    ))]
    #[inline(always)]
    pub(super) fn this_cpu() -> &'static Scheduler {
        let slot = &spindle_arch::powerpc64::percpu::current().kernel_slot;
        let cached = slot.load(Ordering::Relaxed) as *const Scheduler;
        // SAFETY: only `lookup` below stores here: the address of this CPU's static scheduler.
        match unsafe { cached.as_ref() } {
            Some(scheduler) => scheduler,
            None => cache_lookup(slot),
        }
    }

    #[cfg(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    ))]
    #[cold]
    #[inline(never)]
    fn cache_lookup(slot: &core::sync::atomic::AtomicUsize) -> &'static Scheduler {
        let scheduler = lookup();
        slot.store(scheduler as *const Scheduler as usize, Ordering::Relaxed);
        scheduler
    }

    #[cfg(not(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    )))]
    #[inline]
    pub(super) fn this_cpu() -> &'static Scheduler {
        lookup()
    }

    #[inline]
    fn lookup() -> &'static Scheduler {
        let index = crate::platform::platform().cpu_index();
        let Some(scheduler) = SCHEDULERS.0.get(index) else {
            too_many_cpus(index)
        };
        if !scheduler.initialized.get() {
            initialize(scheduler, index);
        }
        scheduler
    }

    /// A board that starts more CPUs than the kernel has schedulers for is misconfigured.
    #[cold]
    #[inline(never)]
    fn too_many_cpus(index: usize) -> ! {
        panic!("spindle: CPU index {index} is beyond the kernel's {MAX_CPUS} per-CPU schedulers")
    }

    #[cold]
    #[inline(never)]
    fn initialize(scheduler: &'static Scheduler, index: usize) {
        let reserved = RESERVED
            .get(index)
            .is_some_and(|flag| flag.load(Ordering::Acquire));
        scheduler.initialize(&GLOBAL_GROUP, reserved);
    }
}

#[cfg(not(any(test, feature = "std")))]
pub(crate) use per_cpu::{reserve_cpu, unreserve_cpu};

/// The calling CPU's scheduler (initialised on first use).
#[inline(always)]
pub(crate) fn this_cpu() -> &'static Scheduler {
    per_cpu::this_cpu()
}

/// Entry of every spawned tasklet's context.
pub(crate) extern "C" fn tasklet_entry(_arg: usize, data: usize) -> ! {
    let scheduler = this_cpu();
    scheduler.finish_resume();
    // SAFETY: `data` is the control block pointer given to init_stack at spawn; the scheduler's
    // reference keeps it alive while the tasklet runs.
    let tcb = unsafe { &*(data as *const Tcb) };
    tcb.set_flag(tcb::FLAG_STARTED, true);
    let body = tcb.body.get();
    // SAFETY: the body is live while the control block is; only this tasklet runs it.
    unsafe { ((*body).vtable.run)(body) };
    scheduler.exit_current()
}
