//! The watchdog of `run_with_timeout`: preempting a tasklet that overruns its budget.
//!
//! Arming sets a deadline (and the platform's preemption timer). When it passes, the board's
//! timer interrupt ([`super::timer_interrupt`]) or a cooperative check point hands the running
//! tasklet back to the main tasklet, unless it is main, atomic, or the scheduler is busy — then
//! the preemption waits for the next check point ([`super::atomic`] sections end with one).

use super::attention;
use super::ring::Placement;
use super::sched::{Scheduler, SwitchFrom};
use super::tcb::{State, TcbRef};
use crate::platform::platform;
use core::sync::atomic::Ordering;

impl Scheduler {
    pub(super) fn set_watchdog_deadline(&self, deadline: u64) {
        self.watchdog_deadline.set(deadline);
        self.set_attention(attention::WATCHDOG, deadline != 0);
    }

    pub(super) fn preempt_pending(&self) -> bool {
        self.attention.load(Ordering::Relaxed) & attention::PREEMPT != 0
    }

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

    pub(super) fn watchdog_expired(&self) -> bool {
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
    pub(super) fn checkpoint_armed(&'static self) {
        if self.watchdog_expired() {
            let _busy = self.enter();
            self.interrupt_current(SwitchFrom::Tasklet);
            self.finish_resume();
        }
    }

    /// Interrupts the running tasklet for the watchdog if it may be: not main, not atomic, and
    /// the main tasklet not blocked (it floats, paused, while `run` runs the others).
    /// Returns after the tasklet is resumed again (if it was interrupted).
    pub(super) fn interrupt_current(&'static self, switch_from: SwitchFrom) {
        let me = self.current();
        let main = &self.main_tcb;
        let main_can_run = matches!(main.state(), State::Runnable | State::Paused);
        if me.is_main() || me.atomic().get() > 0 || !main_can_run {
            if !me.is_main() {
                self.set_attention(attention::PREEMPT, true);
            }
            return;
        }
        self.set_attention(attention::PREEMPT, false);
        self.set_watchdog_deadline(0);
        platform().set_preempt_deadline(None);
        self.ring.remove(me);
        me.set_state(State::Paused);
        let previous = self.interrupted.replace(TcbRef::from_tcb(me).into_raw());
        if !previous.is_null() {
            // SAFETY: a reference given up by into_raw earlier and not yet taken back.
            drop(unsafe { TcbRef::from_raw(previous) });
        }
        if main.state() == State::Paused {
            // Floating in `run`: back in the ring, as Stackless's watchdog is.
            self.ring.insert(main, Placement::Tail);
        }
        self.switch_fully_checked(me, main, switch_from);
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

    pub(super) fn finish_resume_without_reap(&self) {
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
