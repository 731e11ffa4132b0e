//! The end of a tasklet's life: retiring it, and releasing its stack after the switch away.
//!
//! A tasklet dies by returning, by a kill taken at a scheduling point, or abandoned after a
//! stack overflow. `retire` fails or finishes its body, wakes its joiners and queues it on the
//! reap list; whoever resumes next frees its stack and drops the scheduler's reference there
//! (`finish_resume`), never on the dead tasklet's own stack.

use super::attention;
use super::per_cpu::this_cpu;
use super::per_cpu::wake;
use super::ring::Placement;
use super::sched::Scheduler;
use super::stack::StackRegion;
use super::tcb::{self, State, Tcb, TcbRef};
use super::TaskletError;
use spindle_arch::context;

impl Scheduler {
    pub(super) fn reap(&self) {
        while let Some(dead) = self.reap.pop_front() {
            // SAFETY: reap-list entries are dead tasklets whose reference this scheduler gave up
            // to the list; nothing runs on their stacks any more (we switched away from them),
            // and they are out of every wait queue and ring, so no channel, waker or CPU reaches
            // their value slot.
            unsafe {
                self.release_stacks(dead);
                // A value still in its slot (one it was sending when killed or abandoned, or
                // one handed to it that it never claimed) can be neither delivered nor given
                // back: it is dropped now, not whenever the last handle goes.
                dead.slot().clear();
                drop(TcbRef::from_raw(dead));
            }
        }
    }

    /// Frees a dead tasklet's stack and any spill segments it died on.
    ///
    /// # Safety
    /// Nothing runs on those stacks.
    pub(super) unsafe fn release_stacks(&self, tcb: &Tcb) {
        let mut segment_base = self.spill_top_of(tcb);
        while segment_base != 0 {
            // SAFETY: live spill segments of a dead tasklet; their headers chain them.
            unsafe {
                let (segment, previous_base) = StackRegion::read_segment(segment_base);
                segment.free(&self.budget);
                segment_base = previous_base;
            }
        }
        if tcb.has_flag(tcb::FLAG_SLICED) {
            self.release_slice(tcb);
            tcb.stack_low().set(0);
            return;
        }
        let stack = tcb.stack().replace(StackRegion::NONE);
        if stack.base != 0 {
            // SAFETY: the caller guarantees nothing runs on it.
            unsafe { stack.free(&self.budget) };
        }
        tcb.stack_low().set(0);
    }

    pub(super) fn push_reap(&self, tcb: &Tcb) {
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
            let _ = self.unhandled(tcb, error);
            let body = tcb.body().get();
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
        let mut joiners = tcb.joiners();
        while let Some(joiner) = joiners.pop_front() {
            wake(joiner, Placement::Tail);
        }
        drop(joiners);
        self.push_reap(tcb);
    }

    /// A tasklet failed with `error` without handling it (it panicked, overflowed its stack, or
    /// had an error raised into it before it ever ran): with [`super::raise_unhandled_in_main`]
    /// on, the error is raised in the main tasklet as Stackless does (waking it from a wait; a
    /// kill is no error, as `TaskletExit` is none).
    /// Returns whether it was raised in main.
    pub(crate) fn unhandled(&self, tcb: &Tcb, error: TaskletError) -> bool {
        if !self.raise_unhandled.get() || error == TaskletError::Killed || tcb.is_main() {
            return false;
        }
        let main = &self.main_tcb;
        if main.state() == State::Dead {
            return false;
        }
        self.raise_into(main, error);
        true
    }

    pub(super) fn abandon_overflowed(&self, tcb: &Tcb) {
        let stack_bytes = if tcb.has_flag(tcb::FLAG_SLICED) {
            self.slices.area().size
        } else {
            tcb.stack().get().size
        };
        crate::kprintln!(
            "spindle: stack overflow in tasklet #{} '{}' (stack {} bytes): tasklet abandoned",
            tcb.id(),
            tcb.name(),
            stack_bytes
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

    /// The running tasklet finished: retire it and run something else, for good. Never inlined:
    /// the switch in it makes its frame save every callee-saved register, which no caller's
    /// frame should carry while the tasklet runs.
    ///
    /// `failure` is an error it did not handle (a panic, an error raised before it ran): with
    /// [`super::raise_unhandled_in_main`] on, it is raised in the main tasklet, which then runs
    /// next if it can (Stackless hands the error straight to main).
    #[inline(never)]
    pub(crate) fn exit_current(&'static self, failure: Option<TaskletError>) -> ! {
        let _busy = self.enter();
        let me = self.current();
        let main_next = failure.is_some_and(|error| self.unhandled(me, error));
        self.ring.remove(me);
        self.retire(me, None);
        let main = &self.main_tcb;
        let next = if main_next && main.state() == State::Runnable {
            main
        } else {
            self.find_next(None)
        };
        self.ring.set_head(next);
        self.current.set(next);
        // SAFETY: `next` is runnable; the dead tasklet's context is never resumed, so its save
        // goes to the scratch word. Its stack stays allocated until `next` reaps it.
        unsafe { context::switch(self.scratch_sp.as_ptr(), next.saved_sp().get(), 0) };
        unreachable!("a dead tasklet was resumed");
    }
}

/// Entry of every spawned tasklet's context.
pub(crate) extern "C" fn tasklet_entry(_arg: usize, data: usize) -> ! {
    // Nothing is kept across the body's run: this frame stays under every frame of the
    // tasklet for its whole life (and in every slice a sliced tasklet saves), so it is kept
    // to the ABI's minimum; the work before and after lies in functions of their own.
    let body = start_body(data);
    // SAFETY: the body is live while the control block is; only this tasklet runs it.
    let panicked = unsafe { ((*body).vtable.run)(body) };
    this_cpu().exit_current(panicked.then_some(TaskletError::Panicked))
}

/// The first steps of a new tasklet: finishes the switch into it, marks it started and returns
/// its body to run. A kill or throw raised before it ever ran ends it here instead, its closure
/// dropped unrun (as Stackless raises it at the tasklet's first instruction).
#[inline(never)]
fn start_body(data: usize) -> *mut tcb::BodyHeader {
    let scheduler = this_cpu();
    scheduler.finish_resume();
    // SAFETY: `data` is the control block pointer given to init_stack at spawn (or by the
    // restorer); the scheduler's reference keeps it alive while the tasklet runs.
    let tcb = unsafe { &*(data as *const Tcb) };
    tcb.set_flag(tcb::FLAG_STARTED, true);
    let body = tcb.body().get();
    if let Some(error) = scheduler.take_raised(tcb) {
        // SAFETY: the body is live while the control block is; only this tasklet touches it.
        unsafe { ((*body).vtable.fail)(body, error) };
        scheduler.exit_current(Some(error))
    }
    body
}
