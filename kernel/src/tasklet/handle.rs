//! Tasklet handles: inspecting a tasklet, moving it on or off its ring, killing or throwing
//! into it, and joining it for its result.

use super::error::{TaskletError, Thrown};
use super::per_cpu::this_cpu;
use super::ring::{Placement, RunRing};
use super::sched;
use super::take_pending;
use super::tcb::{self, State, Tcb, TcbRef};
use core::marker::PhantomData;
use core::sync::atomic::Ordering;

/// Which way a tasklet is blocked on a channel (Stackless's `blocked`: +1, -1, 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Not blocked on a channel (it may still wait for a timer or a join).
    No,
    /// Blocked in a send.
    Sending,
    /// Blocked in a receive.
    Receiving,
}

/// A handle to a tasklet. Cloning it is cheap; the tasklet lives on until it finishes, whether
/// or not handles remain.
#[derive(Clone)]
pub struct Tasklet {
    tcb: TcbRef,
}

impl core::fmt::Debug for Tasklet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Tasklet(#{} {:?}, {:?})",
            self.tcb.id(),
            self.tcb.name(),
            self.tcb.state()
        )
    }
}

impl PartialEq for Tasklet {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self.tcb.as_ptr(), other.tcb.as_ptr())
    }
}

impl Eq for Tasklet {}

impl Tasklet {
    /// The handle that owns `tcb`, a counted reference.
    pub(super) fn from_ref(tcb: TcbRef) -> Self {
        Self { tcb }
    }

    pub(crate) fn from_tcb(tcb: &Tcb) -> Self {
        Self {
            tcb: TcbRef::from_tcb(tcb),
        }
    }

    /// Identifier, unique among the live tasklets of a CPU (the main tasklet is 0).
    pub fn id(&self) -> u32 {
        self.tcb.id()
    }

    /// The name given at spawn (`"main"` for the main tasklet).
    pub fn name(&self) -> &'static str {
        self.tcb.name()
    }

    /// Whether the tasklet has not finished.
    pub fn is_alive(&self) -> bool {
        self.tcb.state() != State::Dead
    }

    /// Whether this is its CPU's main tasklet.
    pub fn is_main(&self) -> bool {
        self.tcb.is_main()
    }

    /// Whether this is the tasklet running now on this CPU.
    pub fn is_current(&self) -> bool {
        core::ptr::eq(this_cpu().current(), &*self.tcb)
    }

    /// Whether it is in its run ring, on its way there from another CPU's wake-up, or blocked
    /// (Stackless's `scheduled`: a blocked tasklet is scheduled on what it waits for).
    /// The main tasklet floating in [`run`](super::run) is not scheduled (it is paused).
    pub fn is_scheduled(&self) -> bool {
        matches!(
            self.tcb.state(),
            State::Runnable | State::Waking | State::Blocked
        ) && !self.is_floating()
    }

    /// Whether it is alive but neither scheduled nor blocked.
    pub fn is_paused(&self) -> bool {
        self.tcb.state() == State::Paused || self.is_floating()
    }

    /// Whether this is the main tasklet floating in `run` (and not running).
    fn is_floating(&self) -> bool {
        let scheduler = this_cpu();
        scheduler.is_floating(&self.tcb)
            && scheduler.is_here(&self.tcb)
            && !core::ptr::eq(scheduler.current(), &*self.tcb)
    }

    /// Whether it is blocked on a channel, and which way.
    pub fn blocked(&self) -> Blocked {
        match self.tcb.direction().load(Ordering::Relaxed) {
            1 => Blocked::Sending,
            -1 => Blocked::Receiving,
            _ => Blocked::No,
        }
    }

    /// Whether it waits in any blocking operation (channel, join, sleep).
    pub fn is_blocked(&self) -> bool {
        self.tcb.state() == State::Blocked
    }

    /// Nesting depth of its atomic sections.
    pub fn atomic_depth(&self) -> u16 {
        self.tcb.atomic().get()
    }

    /// Makes blocking operations of this tasklet fail with [`TaskletError::BlockTrap`] instead
    /// of blocking (Stackless's `block_trap`).
    pub fn set_block_trap(&self, trap: bool) {
        self.tcb.set_flag(tcb::FLAG_BLOCK_TRAP, trap);
    }

    /// Whether its blocking operations fail instead of blocking (see
    /// [`Tasklet::set_block_trap`]).
    pub fn block_trap(&self) -> bool {
        self.tcb.has_flag(tcb::FLAG_BLOCK_TRAP)
    }

    /// Index of the CPU it lives on (Stackless's `thread_id`).
    pub fn cpu(&self) -> usize {
        sched::Scheduler::home_of(&self.tcb).cpu.get()
    }

    /// The tasklet after it in its run queue (Stackless's `next`; itself when it runs alone),
    /// or `None` when it is not in the run queue (paused, blocked, dead) or is asked about from
    /// another CPU.
    pub fn next(&self) -> Option<Tasklet> {
        self.ring_neighbour(RunRing::next_after)
    }

    /// The tasklet before it in its run queue (Stackless's `prev`); see [`Tasklet::next`].
    pub fn prev(&self) -> Option<Tasklet> {
        self.ring_neighbour(RunRing::prev_before)
    }

    fn ring_neighbour(&self, step: fn(&Tcb) -> Option<&'static Tcb>) -> Option<Tasklet> {
        let scheduler = self.check_home().ok()?;
        let _busy = scheduler.enter();
        if self.tcb.state() != State::Runnable || self.is_floating() {
            return None;
        }
        // A floating main tasklet is not in the run queue as Stackless shows it.
        let neighbour = step(&self.tcb)?;
        let floating = scheduler.is_floating(neighbour);
        let neighbour = if floating && !core::ptr::eq(neighbour, scheduler.current()) {
            step(neighbour)?
        } else {
            neighbour
        };
        Some(Tasklet::from_tcb(neighbour))
    }

    /// Bytes of its own stack (0 for the main tasklet, which runs on the CPU's own stack, and
    /// for a sliced one, which has none).
    pub fn stack_size(&self) -> usize {
        if self.is_sliced() {
            0
        } else {
            self.tcb.stack().get().size
        }
    }

    /// Whether it runs on its CPU's slice area ([`Builder::sliced`](super::Builder::sliced)).
    pub fn is_sliced(&self) -> bool {
        self.tcb.has_flag(tcb::FLAG_SLICED)
    }

    /// Bytes its live stack takes while saved out of the slice area: the stack without its long
    /// runs of zero words, plus a short description of them (0 if it is not sliced, or its
    /// stack is in the area now, or it has not run yet).
    pub fn saved_slice_bytes(&self) -> usize {
        if self.is_sliced() {
            self.tcb.stack().get().size
        } else {
            0
        }
    }

    /// Most bytes of its own stack ever in use (0 for the main tasklet, a sliced one, or once
    /// dead).
    pub fn stack_high_water(&self) -> usize {
        let stack = self.tcb.stack().get();
        if stack.base == 0 || self.is_sliced() {
            0
        } else {
            stack.high_water()
        }
    }

    fn check_home(&self) -> Result<&'static sched::Scheduler, TaskletError> {
        let scheduler = this_cpu();
        if scheduler.is_here(&self.tcb) {
            Ok(scheduler)
        } else {
            Err(TaskletError::WrongCpu)
        }
    }

    /// Appends a paused tasklet to the end of the run queue. A scheduled one stays where it is.
    pub fn insert(&self) -> Result<(), TaskletError> {
        let scheduler = self.check_home()?;
        let _busy = scheduler.enter();
        match self.tcb.state() {
            State::Paused => {
                scheduler.ring.insert(&self.tcb, Placement::Tail);
                Ok(())
            }
            State::Runnable | State::Waking => {
                // Inserting the main tasklet floating in `run` ends that `run`.
                if self.tcb.is_main() {
                    scheduler.main_floating.set(false);
                }
                Ok(())
            }
            State::Blocked => Err(TaskletError::InvalidTarget),
            State::Dead => Err(TaskletError::Dead),
        }
    }

    /// Takes a scheduled tasklet out of the run queue (it becomes paused). Not for the running
    /// tasklet (use [`schedule_remove`](super::schedule_remove)) or a blocked one
    /// ([`TaskletError::InvalidTarget`]); a paused or dead one is left as it is.
    pub fn remove(&self) -> Result<(), TaskletError> {
        let scheduler = self.check_home()?;
        let _busy = scheduler.enter();
        if self.is_current() {
            return Err(TaskletError::InvalidTarget);
        }
        match self.tcb.state() {
            State::Runnable => {
                scheduler.ring.remove(&self.tcb);
                self.tcb.set_state(State::Paused);
                Ok(())
            }
            State::Paused | State::Dead => Ok(()),
            State::Waking | State::Blocked => Err(TaskletError::InvalidTarget),
        }
    }

    /// Switches to this tasklet now; the current one stays runnable.
    ///
    /// As in Stackless, a scheduled target is switched to where it stands in the run queue (the
    /// tasklets between the caller and it wait for their next turn), and a paused one is first
    /// appended to the end of the queue, just before the caller, which therefore runs right
    /// after it. A blocked target fails with [`TaskletError::InvalidTarget`], a dead one with
    /// [`TaskletError::Dead`].
    pub fn run(&self) -> Result<(), TaskletError> {
        self.switch_in(false)
    }

    /// Switches to this tasklet now and pauses the current one (it runs again only when
    /// inserted or run). The target is placed as by [`Tasklet::run`]. When the main tasklet
    /// pauses itself this way and everything else ends or blocks, it is revived (put back in
    /// the run queue) rather than leaving nothing to run.
    pub fn switch(&self) -> Result<(), TaskletError> {
        self.switch_in(true)
    }

    fn switch_in(&self, pause_current: bool) -> Result<(), TaskletError> {
        let scheduler = self.check_home()?;
        let me = scheduler.current();
        take_pending(me)?;
        if core::ptr::eq(me, &*self.tcb) {
            return Ok(());
        }
        let _busy = scheduler.enter();
        if self.tcb.is_main() {
            // Switching to the main tasklet floating in `run` ends that `run`.
            scheduler.main_floating.set(false);
        }
        match self.tcb.state() {
            State::Paused => scheduler.ring.insert(&self.tcb, Placement::Tail),
            State::Runnable => {}
            State::Blocked | State::Waking => return Err(TaskletError::InvalidTarget),
            State::Dead => return Err(TaskletError::Dead),
        }
        if pause_current {
            scheduler.ring.remove(me);
            me.set_state(State::Paused);
        }
        scheduler.switch_to(me, &self.tcb);
        scheduler.finish_resume();
        take_pending(me)
    }

    /// Kills the tasklet (Stackless's `kill`): its current or next blocking operation returns
    /// [`TaskletError::Killed`], and it is switched to at once so it can unwind (placed as by
    /// [`Tasklet::run`]: a blocked or paused target runs next, then the caller). An unstarted
    /// tasklet dies as it starts, its closure dropped unrun. Killing a dead tasklet does
    /// nothing; killing the current tasklet returns `Err(Killed)` at once, for it to unwind.
    ///
    /// Unlike Stackless, a kill (or throw) never takes back a hand-off that already happened:
    /// a tasklet whose send or receive completed but which has not run since returns the
    /// result of that operation (a received value is never dropped, and a send that returned
    /// an error would claim its value came back), and the kill is raised at its next
    /// scheduling point or blocking operation.
    pub fn kill(&self) -> Result<(), TaskletError> {
        self.raise(TaskletError::Killed, false)
    }

    /// Like [`Tasklet::kill`], but the tasklet only sees the error when it next runs; the
    /// current tasklet keeps running.
    pub fn kill_pending(&self) -> Result<(), TaskletError> {
        self.raise(TaskletError::Killed, true)
    }

    /// Throws `error` into the tasklet: its current (or next) blocking operation returns
    /// [`TaskletError::Thrown`]. With `pending`, the caller keeps running (a blocked or paused
    /// target is made runnable, at the end of the queue); otherwise the target runs at once, as
    /// with [`Tasklet::kill`]. An unstarted tasklet stays alive and scheduled until it starts,
    /// then ends with the error without running its closure. Throwing into the current tasklet
    /// returns the error at once; into a dead one fails with [`TaskletError::Dead`].
    pub fn throw(&self, error: Thrown, pending: bool) -> Result<(), TaskletError> {
        self.raise(TaskletError::Thrown(error), pending)
    }

    fn raise(&self, error: TaskletError, pending: bool) -> Result<(), TaskletError> {
        let scheduler = self.check_home()?;
        let me = scheduler.current();
        let target = &*self.tcb;
        let busy = scheduler.enter();
        match target.state() {
            State::Dead if error == TaskletError::Killed => return Ok(()),
            State::Dead => return Err(TaskletError::Dead),
            _ if core::ptr::eq(me, target) => {
                // Raised at once, as Stackless raises in the current tasklet: an error raised
                // earlier and not yet taken is replaced.
                let _ = scheduler.take_raised(me);
                return Err(error);
            }
            _ => scheduler.raise_into(target, error),
        }
        drop(busy);
        if !pending && target.state() == State::Runnable {
            return self.run();
        }
        Ok(())
    }

    /// Abandons the tasklet at once, without letting it run again: its stack is freed and the
    /// destructors of what lives on it do **not** run (what they own leaks). A value in flight
    /// that the kernel holds for it (one it was blocked sending, or one handed to it that it
    /// never took) is dropped before this returns. For runaway tasklets handed back by
    /// [`run_with_timeout`](super::run_with_timeout). Not for the running or the main tasklet.
    pub fn kill_forced(&self) -> Result<(), TaskletError> {
        let scheduler = self.check_home()?;
        let target = &*self.tcb;
        if target.is_main() || core::ptr::eq(scheduler.current(), target) {
            return Err(TaskletError::InvalidTarget);
        }
        let busy = scheduler.enter();
        match target.state() {
            State::Dead => return Ok(()),
            State::Waking => return Err(TaskletError::InvalidTarget),
            State::Blocked => {
                if !scheduler.wake_with_error(target, TaskletError::Killed) {
                    return Err(TaskletError::InvalidTarget);
                }
                scheduler.ring.remove(target);
            }
            State::Runnable => scheduler.ring.remove(target),
            State::Paused => {}
        }
        scheduler.retire(target, Some(TaskletError::Killed));
        // Finishing reaps it: its stack is freed and a value still in its slot (one it was
        // sending, or one handed to it that it never claimed) is dropped there, outside the
        // scheduler and exactly once, not whenever the last handle goes.
        busy.finish_resume();
        Ok(())
    }
}

/// A spawned tasklet whose result can be collected.
pub struct JoinHandle<R> {
    tasklet: Tasklet,
    result: PhantomData<fn() -> R>,
}

impl<R> core::fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.tasklet).finish()
    }
}

impl<R> core::ops::Deref for JoinHandle<R> {
    type Target = Tasklet;
    fn deref(&self) -> &Tasklet {
        &self.tasklet
    }
}

impl<R> JoinHandle<R> {
    /// The handle of a freshly spawned tasklet whose body returns `R`.
    pub(super) fn new(tcb: TcbRef) -> Self {
        Self {
            tasklet: Tasklet::from_ref(tcb),
            result: PhantomData,
        }
    }
}

impl<R: Send + 'static> JoinHandle<R> {
    /// The tasklet handle.
    pub fn tasklet(&self) -> &Tasklet {
        &self.tasklet
    }

    /// Takes the result if the tasklet has finished: its return value, or why it did not
    /// return ([`TaskletError::Killed`], [`TaskletError::Panicked`], ...). `None` while it runs,
    /// or once taken.
    ///
    /// Unlike Stackless, which re-raises a tasklet's uncaught exception in the main tasklet, a
    /// failure stays here, a value, until someone looks; [`raise_unhandled_in_main`] also
    /// raises it in main.
    ///
    /// [`raise_unhandled_in_main`]: super::raise_unhandled_in_main
    pub fn result(&self) -> Option<Result<R, TaskletError>> {
        if self.tasklet.is_alive() {
            return None;
        }
        let body = self.tasklet.tcb.body().get();
        // SAFETY: the body was created for this R at spawn; the tasklet is dead, so nothing else
        // touches its result.
        unsafe { tcb::take_result::<R>(body) }
    }

    /// Blocks the current tasklet until this one finishes, then takes its result.
    pub fn join(&self) -> Result<R, TaskletError> {
        let scheduler = this_cpu();
        let me = scheduler.current();
        if core::ptr::eq(me, &*self.tasklet.tcb) {
            return Err(TaskletError::InvalidTarget);
        }
        loop {
            scheduler.before_blocking(me)?;
            let busy = scheduler.enter();
            let target = &*self.tasklet.tcb;
            {
                let mut joiners = target.joiners();
                if target.state() == State::Dead {
                    drop(joiners);
                    drop(busy);
                    return self.result().unwrap_or(Err(TaskletError::Dead));
                }
                if me.has_flag(tcb::FLAG_BLOCK_TRAP) {
                    return Err(TaskletError::BlockTrap);
                }
                me.set_state(State::Blocked);
                joiners.push_back(me);
            }
            let blocker = tcb::Blocker::new(tcb::WaitKind::Join, target);
            scheduler.block_current(me, Some(blocker), None);
            busy.finish_resume();
        }
    }
}

impl<T: Send + 'static> JoinHandle<Result<T, TaskletError>> {
    /// [`JoinHandle::result`] flattened for a body that returns `Result<T, TaskletError>`:
    /// a kill (or any error) reads the same whether the tasklet unwound with it (`?`) or died
    /// before it ran — `Some(Err(Killed))` rather than `Some(Ok(Err(Killed)))` or
    /// `Some(Err(Killed))` depending on timing.
    pub fn outcome(&self) -> Option<Result<T, TaskletError>> {
        self.result().map(|result| result.and_then(|inner| inner))
    }

    /// [`JoinHandle::join`] flattened the same way (see [`JoinHandle::outcome`]).
    pub fn join_flat(&self) -> Result<T, TaskletError> {
        self.join().and_then(|inner| inner)
    }
}

/// Takes a joiner out of the joined tasklet's joiners ([`tcb::WaitKind::Join`]).
pub(super) unsafe fn cancel_join(object: *const (), waiter: &Tcb) -> bool {
    // SAFETY: `object` is the joined tasklet's control block, kept alive by the joiner's handle.
    let target = unsafe { &*(object as *const Tcb) };
    target.joiners().remove(waiter)
}
