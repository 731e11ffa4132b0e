//! Tasklet control blocks: links, saved context, value slot, timer, and the type-erased body.
//!
//! Everything the kernel keeps about a tasklet lives here, in a heap block that never moves —
//! never on the tasklet's stack — so stacks can later be moved (slicing). Control blocks are
//! reference counted by [`TcbRef`]; the home scheduler holds one reference while the tasklet lives.

use super::error::ErrorParts;
use super::list::{Adapter, Fifo, Link, List, RingFifo};
use super::slot::ValueSlot;
use super::stack::StackRegion;
use super::TaskletError;
use alloc::alloc::{alloc, dealloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI8, AtomicU32, AtomicU8, Ordering};

/// Lifecycle of a tasklet, readable from any CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// In its CPU's run ring (this includes the running tasklet).
    Runnable = 0,
    /// Alive but in no ring and no wait queue (removed, or spawned paused).
    Paused = 1,
    /// In a wait queue (channel, join) or sleeping on a timer.
    Blocked = 2,
    /// Taken out of a wait queue by a waker; on its way to its CPU's inbox or in it.
    Waking = 3,
    /// Finished (returned, killed, abandoned).
    Dead = 4,
}

impl State {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Runnable,
            1 => Self::Paused,
            2 => Self::Blocked,
            3 => Self::Waking,
            _ => Self::Dead,
        }
    }
}

pub(crate) const FLAG_MAIN: u8 = 1;
pub(crate) const FLAG_STARTED: u8 = 2;
pub(crate) const FLAG_BLOCK_TRAP: u8 = 4;
pub(crate) const FLAG_TIMER_ARMED: u8 = 16;
/// Found overflowed while a waker on another CPU was handing it back: retired on arrival.
pub(crate) const FLAG_ABANDONED: u8 = 32;
/// Runs on its CPU's shared slice area (see [`super::slicing`]); `stack` is its saved slice.
pub(crate) const FLAG_SLICED: u8 = 64;

/// How to take a blocked tasklet out of whatever it waits in (kill, timeout, deadlock), in one
/// word: the address of the object waited on, with the [`WaitKind`] in its low bits (every such
/// object is aligned to more than the kinds need, checked where a blocker is made).
#[derive(Clone, Copy)]
pub(crate) struct Blocker(NonNull<u8>);

/// What a [`Blocker`] names, and so which queue its cancel takes the tasklet out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// A channel's wait queue; the object is the channel's core.
    Channel,
    /// A wait list's queue of waiters; the object is the `WaitList`.
    Waiter,
    /// A wait list's queue of wakers waiting for their hand-off to be taken.
    Handoff,
    /// The joiners of a tasklet; the object is its control block.
    Join,
}

impl WaitKind {
    /// Every kind, at the index its tag is.
    const ALL: [Self; 4] = [Self::Channel, Self::Waiter, Self::Handoff, Self::Join];
    /// The low address bits that hold the tag.
    const TAG_MASK: usize = Self::ALL.len() - 1;
}

impl Blocker {
    /// The blocker of a wait of `kind` on `object`.
    #[inline(always)]
    pub(crate) fn new<T>(kind: WaitKind, object: &T) -> Self {
        const { assert!(core::mem::align_of::<T>() > WaitKind::TAG_MASK) };
        // The tag goes in low address bits that the alignment keeps clear.
        Self(
            NonNull::from(object)
                .cast::<u8>()
                .map_addr(|address| address | kind as usize),
        )
    }

    /// The kind of wait, and the object waited on.
    #[inline]
    pub(crate) fn parts(self) -> (WaitKind, *const ()) {
        let tag = self.0.addr().get() & WaitKind::TAG_MASK;
        let object = self.0.as_ptr().wrapping_sub(tag);
        (WaitKind::ALL[tag], object.cast_const().cast())
    }

    /// Takes `tcb` out of the queue this blocker names, under the queue's lock; false if a
    /// waker already took it out (it is then on its way to its CPU).
    ///
    /// # Safety
    /// The blocker was installed by `tcb`'s blocking operation, and the object it names
    /// outlives the wait (the waiter holds it).
    pub(crate) unsafe fn cancel(self, tcb: &Tcb) -> bool {
        let (kind, object) = self.parts();
        // SAFETY: forwarded contract; each kind names the object its cancel expects.
        unsafe {
            match kind {
                WaitKind::Channel => crate::channel::cancel_wait(object, tcb),
                WaitKind::Waiter => super::waiter::cancel_waiter(object, tcb),
                WaitKind::Handoff => super::waiter::cancel_handoff(object, tcb),
                WaitKind::Join => super::handle::cancel_join(object, tcb),
            }
        }
    }
}

/// The type-erased part of a tasklet body: its name and how to run, finish and drop it.
#[repr(C)]
pub(crate) struct BodyHeader {
    pub(crate) name: &'static str,
    pub(crate) vtable: &'static BodyVTable,
}

pub(crate) struct BodyVTable {
    /// Runs the closure (once) and stores its result; returns whether it panicked (a `bool`,
    /// in a register: the entry frame under the tasklet's whole life keeps no slot for it).
    pub(crate) run: unsafe fn(*mut BodyHeader) -> bool,
    /// Replaces the body's state with a failed result, dropping an unstarted closure. With
    /// `abandoned`, a started closure's state is on the abandoned stack and is not touched.
    pub(crate) fail: unsafe fn(*mut BodyHeader, TaskletError),
    /// Drops the body and frees its allocation.
    pub(crate) destroy: unsafe fn(*mut BodyHeader),
}

/// A tasklet control block: 192 bytes on a 64-bit target, with no padding, and at most
/// [`MAX_CONTROL_BLOCK_BYTES`] (checked at compile time). What its fields cost, and why:
///
/// | fields | bytes | why they stay |
/// |---|---|---|
/// | value slot | 40 | 32 inline bytes (an error, a `String`, four words) and a tag word |
/// | ring, wait and timer links | 48 | a timed wait is in a wait queue and the timer queue, and a tasklet it woke is in the ring before it disarms its timer |
/// | pending error | 21 | kind and code among the small fields, the message a `&'static str` ([`ErrorParts`]; a whole `Option<TaskletError>` would take 32) |
/// | stack base, size, low | 20 | the size in 32 bits (regions are capped at 4 GiB); the low of the segment running now (spilled, sliced) is read by every switch |
/// | joiners | 8 | a queue kept by one pointer ([`RingFifo`]), mostly empty |
/// | blocker | 8 | the object waited on, with the kind of wait in its low bits ([`Blocker`]) |
/// | home, saved context, deadline, body | 32 | one word each |
/// | id, refs, state, flags, direction, atomic depth, queued, joiners' lock | 15 | |
pub(crate) struct Tcb {
    refs: AtomicU32,
    id: u32,
    /// The home CPU's scheduler, erased so that control blocks need not know the scheduler's
    /// type (`Scheduler::adopt` sets it, `Scheduler::home_of` reads it).
    home: Cell<*const ()>,
    /// Run-ring link (home CPU only; see [`RingLinks`]).
    ring: Link<Tcb>,
    /// The link of a wait queue, the home CPU's inbox or its reap list (see [`WaitLinks`]).
    wait: Link<Tcb>,
    /// Whether the tasklet is in a wait queue (under that queue's lock).
    queued: Cell<bool>,
    /// The suspended context; for a sliced tasklet whose slice is saved, the restorer's.
    saved_sp: Cell<usize>,
    /// Its own stack; for a sliced tasklet, its saved slice (none while it is in the area): a
    /// [`StackRegion`] kept as its base and a 32-bit size, which packs among the small fields
    /// (regions are at most [`MAX_REGION_BYTES`](super::stack::MAX_REGION_BYTES)).
    stack_base: Cell<usize>,
    stack_size: Cell<u32>,
    /// Usable low of the stack segment running now (0: unguarded, the CPU's own stack).
    stack_low: Cell<usize>,
    state: AtomicU8,
    flags: Cell<u8>,
    /// +1 blocked sending, -1 blocked receiving, 0 otherwise.
    direction: AtomicI8,
    atomic: Cell<u16>,
    /// An error to raise at the tasklet's next (or current) blocking operation, taken apart
    /// ([`ErrorParts`]) so that its kind and code pack among the small fields. Written only
    /// through `Scheduler::raise_pending` and `Scheduler::take_raised`, which count it in the
    /// home scheduler's attention word.
    pending_kind: Cell<u8>,
    pending_code: Cell<i32>,
    pending_message: Cell<&'static str>,
    blocker: Cell<Option<Blocker>>,
    slot: ValueSlot,
    timer_deadline: Cell<u64>,
    /// Timer-queue link (home CPU only; see [`TimerLinks`]).
    timer: Link<Tcb>,
    body: Cell<*mut BodyHeader>,
    /// Tasklets waiting for this one to finish (a one-pointer queue: most tasklets are never
    /// joined).
    joiners: UnsafeCell<JoinQueue>,
    /// The lock of `joiners` (a byte among the small fields, where a `spin::Mutex` around the
    /// queue would cost a word of padding).
    joiners_lock: AtomicBool,
}

/// The most a control block may take: it is paid once per tasklet, and a blocked sliced
/// tasklet costs little more than it (see [`super::slicing`]).
pub(crate) const MAX_CONTROL_BLOCK_BYTES: usize = 192;

const _: () = assert!(
    core::mem::size_of::<Tcb>() <= MAX_CONTROL_BLOCK_BYTES,
    "the control block outgrew its bound: see the field costs in kernel/src/tasklet/tcb.rs"
);

// SAFETY: a control block is shared between CPUs, but every field has an owner: the home CPU's
// scheduler for the ring links, context, stack, flags and timer; the lock of the wait queue the
// tasklet is in for the wait links, the slot and the blocker while it is blocked; atomics for
// the state and reference count. The scheduler and channel code uphold that protocol.
unsafe impl Sync for Tcb {}
// SAFETY: see the Sync impl; nothing in a control block is tied to the thread that made it.
unsafe impl Send for Tcb {}

impl Tcb {
    pub(crate) const fn new(id: u32, flags: u8) -> Self {
        Self {
            refs: AtomicU32::new(1),
            id,
            home: Cell::new(core::ptr::null()),
            ring: Link::new(),
            wait: Link::new(),
            queued: Cell::new(false),
            saved_sp: Cell::new(0),
            stack_base: Cell::new(StackRegion::NONE.base),
            stack_size: Cell::new(StackRegion::NONE.size as u32),
            stack_low: Cell::new(0),
            state: AtomicU8::new(State::Paused as u8),
            flags: Cell::new(flags),
            direction: AtomicI8::new(0),
            atomic: Cell::new(0),
            pending_kind: Cell::new(ErrorParts::NONE.kind),
            pending_code: Cell::new(ErrorParts::NONE.code),
            pending_message: Cell::new(ErrorParts::NONE.message),
            blocker: Cell::new(None),
            slot: ValueSlot::new(),
            timer_deadline: Cell::new(0),
            timer: Link::new(),
            body: Cell::new(core::ptr::null_mut()),
            joiners: UnsafeCell::new(JoinQueue::new()),
            joiners_lock: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    #[inline]
    pub(crate) fn has_flag(&self, flag: u8) -> bool {
        self.flags.get() & flag != 0
    }

    #[inline]
    pub(crate) fn set_flag(&self, flag: u8, on: bool) {
        let flags = self.flags.get();
        self.flags
            .set(if on { flags | flag } else { flags & !flag });
    }

    #[inline]
    pub(crate) fn is_main(&self) -> bool {
        self.has_flag(FLAG_MAIN)
    }

    // Each field's accessor is as visible as its owners: the scheduler's rooms (`pub(super)`),
    // or also the channels and wait lists that hand values over (`pub(crate)`).

    /// The home scheduler (the scheduler owns it: `Scheduler::adopt`, `Scheduler::home_of`).
    #[inline(always)]
    pub(super) fn home(&self) -> &Cell<*const ()> {
        &self.home
    }

    /// The control block whose saved-context word is at `word` (what a switch was given to save
    /// into).
    pub(super) fn from_saved_sp_word(word: *mut usize) -> *const Tcb {
        word.cast::<u8>()
            .wrapping_sub(core::mem::offset_of!(Tcb, saved_sp))
            .cast::<Tcb>()
            .cast_const()
    }

    /// The saved context (the switch owns it).
    #[inline(always)]
    pub(super) fn saved_sp(&self) -> &Cell<usize> {
        &self.saved_sp
    }

    /// The stack region (spawn, slicing and reaping own it).
    #[inline(always)]
    pub(super) fn stack(&self) -> StackField<'_> {
        StackField {
            base: &self.stack_base,
            size: &self.stack_size,
        }
    }

    /// The guarded low of the running segment (switch checks and spilling own it).
    #[inline(always)]
    pub(super) fn stack_low(&self) -> &Cell<usize> {
        &self.stack_low
    }

    /// Which way it is blocked on a channel (the channel sets it, a waker clears it).
    #[inline(always)]
    pub(crate) fn direction(&self) -> &AtomicI8 {
        &self.direction
    }

    /// The atomic-section depth (`atomic` and the watchdog own it).
    #[inline(always)]
    pub(super) fn atomic(&self) -> &Cell<u16> {
        &self.atomic
    }

    /// Whether an error was raised into it and not taken yet (one byte to test).
    #[inline(always)]
    pub(super) fn has_pending(&self) -> bool {
        self.pending_kind.get() != ErrorParts::NONE_KIND
    }

    /// The raised error, if any.
    #[inline]
    pub(super) fn pending(&self) -> Option<TaskletError> {
        ErrorParts {
            kind: self.pending_kind.get(),
            code: self.pending_code.get(),
            message: self.pending_message.get(),
        }
        .error()
    }

    /// Raises `error` (only `Scheduler::raise_pending` does), replacing one raised before;
    /// returns whether there was one.
    pub(super) fn set_pending(&self, error: TaskletError) -> bool {
        let replaced = self.has_pending();
        let parts = ErrorParts::of(Some(error));
        self.pending_kind.set(parts.kind);
        self.pending_code.set(parts.code);
        self.pending_message.set(parts.message);
        replaced
    }

    /// Takes the raised error, if any (only `Scheduler::take_raised` does). The common case,
    /// none, is a test of one byte. All inline: out of line, the error would come back through
    /// a buffer in the frame of every blocking call (16 more bytes in each saved slice).
    #[inline(always)]
    pub(super) fn take_pending(&self) -> Option<TaskletError> {
        if !self.has_pending() {
            return None;
        }
        let error = self.pending();
        // The kind alone says there is none; the code and message left behind mean nothing.
        self.pending_kind.set(ErrorParts::NONE_KIND);
        error
    }

    /// How to cancel its wait (installed by `Scheduler::block_current`).
    #[inline(always)]
    pub(super) fn blocker(&self) -> &Cell<Option<Blocker>> {
        &self.blocker
    }

    /// The value slot of a hand-off (channels and wait lists own it while it is blocked).
    #[inline(always)]
    pub(crate) fn slot(&self) -> &ValueSlot {
        &self.slot
    }

    /// The timer deadline (the timer queue owns it).
    #[inline(always)]
    pub(super) fn timer_deadline(&self) -> &Cell<u64> {
        &self.timer_deadline
    }

    /// The type-erased body (spawn, retirement and the last reference own it).
    #[inline(always)]
    pub(super) fn body(&self) -> &Cell<*mut BodyHeader> {
        &self.body
    }

    /// Tasklets joining it (join and retirement own it).
    #[inline(always)]
    pub(super) fn joiners(&self) -> JoinersGuard<'_> {
        while self
            .joiners_lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        JoinersGuard { tcb: self }
    }
    /// The tasklet id (0 for a main tasklet).
    #[inline(always)]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn name(&self) -> &'static str {
        let body = self.body.get();
        if self.is_main() {
            "main"
        } else if body.is_null() {
            ""
        } else {
            // SAFETY: a non-null body stays valid until the control block is destroyed.
            unsafe { (*body).name }
        }
    }
}

/// A control block's stack region ([`Tcb::stack`]), read and written whole like a
/// `Cell<StackRegion>`.
pub(crate) struct StackField<'a> {
    base: &'a Cell<usize>,
    size: &'a Cell<u32>,
}

impl StackField<'_> {
    #[inline(always)]
    pub(crate) fn get(&self) -> StackRegion {
        StackRegion {
            base: self.base.get(),
            size: self.size.get() as usize,
        }
    }

    /// Stores `region`, one that [`StackRegion`]'s allocation made (or a part of one), so its
    /// size fits in 32 bits.
    #[inline(always)]
    pub(crate) fn set(&self, region: StackRegion) {
        debug_assert!(region.size <= super::stack::MAX_REGION_BYTES);
        self.base.set(region.base);
        self.size.set(region.size as u32);
    }

    #[inline(always)]
    pub(crate) fn replace(&self, region: StackRegion) -> StackRegion {
        let previous = self.get();
        self.set(region);
        previous
    }
}

/// The run ring: the runnable tasklets of one CPU, the running one included.
pub(crate) struct RingLinks;

impl Adapter for RingLinks {
    type Node = Tcb;
    #[inline(always)]
    fn link(tcb: &Tcb) -> &Link<Tcb> {
        &tcb.ring
    }
}

/// What a tasklet waits in, or passes through on its way back: a wait queue while `Blocked`
/// (under the queue's lock), the home CPU's inbox while `Waking` (under the inbox lock), the
/// reap list once `Dead` (home CPU). The states never overlap, so the three share one link: a
/// waker takes a tasklet out of its wait queue before it queues it in an inbox.
pub(crate) struct WaitLinks;

impl Adapter for WaitLinks {
    type Node = Tcb;
    #[inline(always)]
    fn link(tcb: &Tcb) -> &Link<Tcb> {
        &tcb.wait
    }
}

/// The timer queue of the home CPU: sleeping tasklets and timed waits, by deadline.
pub(crate) struct TimerLinks;

impl Adapter for TimerLinks {
    type Node = Tcb;
    #[inline(always)]
    fn link(tcb: &Tcb) -> &Link<Tcb> {
        &tcb.timer
    }
}

/// Wait queues: the FIFO of tasklets blocked on one object (a channel end, a join, a lock).
///
/// A queue is used under its owner's lock, which also owns the wait link and the `queued` flag
/// of every tasklet in it. A waker takes a tasklet out with [`WaitQueue::pop_front`] (and then
/// makes it runnable, see `per_cpu::wake`); a canceller (kill, timeout, deadlock) with
/// [`WaitQueue::remove`], which reports whether a waker got there first.
///
/// Its shape is a [`List`] (head and tail), or a [`RingFifo`] (one pointer) for the joiners
/// queue of every control block ([`JoinQueue`]).
pub(crate) struct WaitQueue<Q = List<WaitLinks>> {
    list: Q,
}

/// The queue of a tasklet's joiners.
pub(crate) type JoinQueue = WaitQueue<RingFifo<WaitLinks>>;

impl<Q: Fifo<Node = Tcb>> WaitQueue<Q> {
    pub(crate) const fn new() -> Self {
        Self { list: Q::EMPTY }
    }

    /// Number of queued tasklets (walks the queue: for inspection, not hot paths).
    pub(crate) fn len(&self) -> usize {
        self.list.walk().count()
    }

    #[inline]
    pub(crate) fn push_back(&mut self, tcb: &Tcb) {
        debug_assert!(!tcb.queued.get(), "tasklet queued twice");
        // SAFETY: a tasklet about to block is in no wait queue, inbox or reap list (it is
        // running), and its home scheduler keeps it alive until it leaves the queue.
        unsafe { self.list.push_back(tcb) };
        tcb.queued.set(true);
    }

    pub(crate) fn front(&self) -> Option<&Tcb> {
        self.list.front()
    }

    /// Unlinks the first tasklet. The `'static` is the home scheduler's reference, valid while
    /// the caller holds the lock and until the tasklet is woken and finishes.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<&'static Tcb> {
        let head = self.list.pop_front()?;
        head.queued.set(false);
        Some(head)
    }

    /// Unlinks `tcb` if it is queued here; false if it was not queued (a waker took it).
    pub(crate) fn remove(&mut self, tcb: &Tcb) -> bool {
        if !tcb.queued.get() {
            return false;
        }
        // SAFETY: `queued` is set exactly while the tasklet is in the queue of this lock's
        // owner, and a tasklet waits on one object at a time.
        unsafe { self.list.remove(tcb) };
        tcb.queued.set(false);
        true
    }

    /// Visits the queued tasklets front to back.
    pub(crate) fn for_each(&self, visit: impl FnMut(&Tcb)) {
        self.list.walk().for_each(visit);
    }
}

/// The locked queue of a tasklet's joiners ([`Tcb::joiners`]); unlocks when dropped.
pub(crate) struct JoinersGuard<'a> {
    tcb: &'a Tcb,
}

impl core::ops::Deref for JoinersGuard<'_> {
    type Target = JoinQueue;
    fn deref(&self) -> &JoinQueue {
        // SAFETY: the guard holds the joiners' lock.
        unsafe { &*self.tcb.joiners.get() }
    }
}

impl core::ops::DerefMut for JoinersGuard<'_> {
    fn deref_mut(&mut self) -> &mut JoinQueue {
        // SAFETY: the guard holds the joiners' lock, and is borrowed mutably.
        unsafe { &mut *self.tcb.joiners.get() }
    }
}

impl Drop for JoinersGuard<'_> {
    fn drop(&mut self) {
        self.tcb.joiners_lock.store(false, Ordering::Release);
    }
}

/// A counted reference to a control block.
pub(crate) struct TcbRef(NonNull<Tcb>);

// SAFETY: the control block is Sync + Send (see above) and the count is atomic.
unsafe impl Send for TcbRef {}
// SAFETY: as above.
unsafe impl Sync for TcbRef {}

impl TcbRef {
    /// Allocates a control block, fallibly.
    pub(crate) fn allocate(id: u32) -> Result<Self, TaskletError> {
        let layout = Layout::new::<Tcb>();
        // SAFETY: Tcb has a non-zero size.
        let raw = unsafe { alloc(layout) }.cast::<Tcb>();
        let pointer = NonNull::new(raw).ok_or(TaskletError::OutOfMemory)?;
        // SAFETY: fresh allocation with Tcb's layout.
        unsafe { pointer.as_ptr().write(Tcb::new(id, 0)) };
        Ok(Self(pointer))
    }

    /// A new counted reference to a live control block.
    pub(crate) fn from_tcb(tcb: &Tcb) -> Self {
        tcb.refs.fetch_add(1, Ordering::Relaxed);
        Self(NonNull::from(tcb))
    }

    /// Gives up this reference without decrementing (the holder keeps it as a raw pointer).
    pub(crate) fn into_raw(self) -> *const Tcb {
        let raw = self.0.as_ptr();
        core::mem::forget(self);
        raw
    }

    /// Takes back a reference given up by [`TcbRef::into_raw`].
    ///
    /// # Safety
    /// `raw` came from `into_raw` and is taken back once.
    pub(crate) unsafe fn from_raw(raw: *const Tcb) -> Self {
        // SAFETY: non-null by the contract (into_raw of a NonNull).
        Self(unsafe { NonNull::new_unchecked(raw.cast_mut()) })
    }

    pub(crate) fn as_ptr(&self) -> *const Tcb {
        self.0.as_ptr()
    }
}

impl core::ops::Deref for TcbRef {
    type Target = Tcb;
    fn deref(&self) -> &Tcb {
        // SAFETY: the reference keeps the block alive.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for TcbRef {
    fn clone(&self) -> Self {
        Self::from_tcb(self)
    }
}

impl Drop for TcbRef {
    fn drop(&mut self) {
        if self.refs.fetch_sub(1, Ordering::Release) != 1 || self.is_main() {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        let raw = self.0.as_ptr();
        // SAFETY: this was the last reference: nobody else can reach the block. The body is
        // destroyed first (its Drop may run user code, which cannot reach this block any more),
        // then the slot, then the block itself.
        unsafe {
            let body = (*raw).body.replace(core::ptr::null_mut());
            if !body.is_null() {
                ((*body).vtable.destroy)(body);
            }
            (*raw).slot.clear();
            core::ptr::drop_in_place(raw);
            dealloc(raw.cast(), Layout::new::<Tcb>());
        }
    }
}

/// The part of a body whose layout depends only on the result type, so a handle that knows `R`
/// (but not the closure type) can reach the result.
#[repr(C)]
struct BodyPrefix<R> {
    header: BodyHeader,
    result: UnsafeCell<ResultState<R>>,
}

enum ResultState<R> {
    Pending,
    Finished(Result<R, TaskletError>),
    Taken,
}

/// A tasklet body: its closure until it runs, then its result.
#[repr(C)]
pub(crate) struct Body<F, R> {
    prefix: BodyPrefix<R>,
    closure: UnsafeCell<Option<F>>,
}

impl<F, R> Body<F, R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    const VTABLE: BodyVTable = BodyVTable {
        run: Self::run,
        fail: Self::fail,
        destroy: Self::destroy,
    };

    /// Allocates a body for `function`, fallibly (giving the closure back on failure).
    pub(crate) fn allocate(name: &'static str, function: F) -> Result<*mut BodyHeader, F> {
        let layout = Layout::new::<Self>();
        // SAFETY: a body always has a non-zero size (it holds a header).
        let raw = unsafe { alloc(layout) }.cast::<Self>();
        if raw.is_null() {
            return Err(function);
        }
        let body = Self {
            prefix: BodyPrefix {
                header: BodyHeader {
                    name,
                    vtable: &Self::VTABLE,
                },
                result: UnsafeCell::new(ResultState::Pending),
            },
            closure: UnsafeCell::new(Some(function)),
        };
        // SAFETY: fresh allocation with this layout.
        unsafe { raw.write(body) };
        Ok(raw.cast())
    }

    unsafe fn run(header: *mut BodyHeader) -> bool {
        let body = header.cast::<Self>();
        // SAFETY: `header` is the first field of a live Body<F, R> (repr(C) all the way down);
        // only the tasklet itself runs its body, once.
        let Some(function) = (unsafe { (*(*body).closure.get()).take() }) else {
            return false;
        };
        let result = run_catching(function);
        let panicked = result.is_err();
        // SAFETY: as above; nobody else writes the result while the tasklet runs.
        unsafe { *(*body).prefix.result.get() = ResultState::Finished(result) };
        panicked
    }

    unsafe fn fail(header: *mut BodyHeader, error: TaskletError) {
        let body = header.cast::<Self>();
        // SAFETY: as in `run`. An unstarted closure is dropped here; a started one was moved onto
        // the tasklet's stack and is not reachable from the body any more.
        let closure = unsafe { (*(*body).closure.get()).take() };
        drop(closure);
        // SAFETY: as in `run`.
        unsafe { *(*body).prefix.result.get() = ResultState::Finished(Err(error)) };
    }

    unsafe fn destroy(header: *mut BodyHeader) {
        let body = header.cast::<Self>();
        // SAFETY: the last reference is gone; the body was allocated by `allocate`.
        unsafe {
            core::ptr::drop_in_place(body);
            dealloc(body.cast(), Layout::new::<Self>());
        }
    }
}

/// Takes the result out of a finished body created for return type `R`: `None` while it runs
/// (or once taken).
///
/// # Safety
/// `header` belongs to a live `Body<F, R>` for this `R` (any `F`), and no one else accesses its
/// result concurrently (the tasklet has finished, or the caller is on its CPU).
pub(crate) unsafe fn take_result<R>(header: *mut BodyHeader) -> Option<Result<R, TaskletError>> {
    let prefix = header.cast::<BodyPrefix<R>>();
    // SAFETY: the prefix layout depends only on R (repr(C)); forwarded contract.
    let state = unsafe { &mut *(*prefix).result.get() };
    match core::mem::replace(state, ResultState::Taken) {
        ResultState::Finished(result) => Some(result),
        other => {
            *state = other;
            None
        }
    }
}

#[cfg(any(test, feature = "std"))]
fn run_catching<F: FnOnce() -> R, R>(function: F) -> Result<R, TaskletError> {
    extern crate std;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(function))
        .map_err(|_| TaskletError::Panicked)
}

#[cfg(not(any(test, feature = "std")))]
fn run_catching<F: FnOnce() -> R, R>(function: F) -> Result<R, TaskletError> {
    Ok(function())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasklet::Thrown;

    #[test]
    fn a_blocker_gives_back_its_kind_and_object() {
        let objects = [Tcb::new(1, 0), Tcb::new(2, 0)];
        for object in &objects {
            for kind in WaitKind::ALL {
                let (found, address) = Blocker::new(kind, object).parts();
                assert_eq!(found, kind);
                assert!(core::ptr::eq(address, (object as *const Tcb).cast()));
            }
        }
        let installed = &objects[0];
        installed
            .blocker()
            .set(Some(Blocker::new(WaitKind::Join, &objects[1])));
        let (kind, address) = installed.blocker().get().map(Blocker::parts).unwrap();
        assert_eq!(kind, WaitKind::Join);
        assert!(core::ptr::eq(address, (&objects[1] as *const Tcb).cast()));
        assert_eq!(
            core::mem::size_of::<Option<Blocker>>(),
            core::mem::size_of::<usize>()
        );
    }

    #[test]
    fn the_pending_error_keeps_what_was_raised() {
        let tcb = Tcb::new(1, 0);
        assert!(!tcb.has_pending());
        assert_eq!(tcb.take_pending(), None);
        let thrown = TaskletError::Thrown(Thrown::new(-3, "thrown into a control block"));
        assert!(!tcb.set_pending(thrown), "nothing was replaced");
        assert!(tcb.has_pending());
        assert_eq!(tcb.pending(), Some(thrown));
        assert!(
            tcb.set_pending(TaskletError::Killed),
            "the throw was replaced"
        );
        assert_eq!(tcb.take_pending(), Some(TaskletError::Killed));
        assert!(!tcb.has_pending());
        assert_eq!(tcb.pending(), None);
        assert_eq!(tcb.take_pending(), None);
        assert!(!tcb.set_pending(thrown));
        assert_eq!(tcb.take_pending(), Some(thrown));
    }

    #[test]
    fn the_stack_field_keeps_a_whole_region() {
        let tcb = Tcb::new(1, 0);
        assert_eq!(tcb.stack().get(), StackRegion::NONE);
        let largest = StackRegion {
            base: usize::MAX & !15,
            size: super::super::stack::MAX_REGION_BYTES,
        };
        assert_eq!(tcb.stack().replace(largest), StackRegion::NONE);
        assert_eq!(tcb.stack().get(), largest);
        let slice = StackRegion {
            base: 0x1000,
            size: 1487,
        };
        assert_eq!(tcb.stack().replace(slice), largest);
        assert_eq!(tcb.stack().get(), slice);
    }
}
