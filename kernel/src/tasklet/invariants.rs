//! The scheduler's invariants, checked on demand: [`check_invariants`] walks the calling CPU's
//! run ring, timer queue and reap list and compares its counts and attention word with what
//! they stand for, panicking with the first violation it finds.
//!
//! The walks only read: each room hands out a read-only walk (`RunRing::walk`,
//! `TimerQueue::walk`, `List::iter`), and a walk is bounded by the counts, so a list whose links
//! loop ends in a panic rather than a hang. The attention check that the fast paths run in debug
//! builds, `Scheduler::debug_check_attention`, is the constant-time part of the same checks.

use super::attention;
use super::per_cpu::this_cpu;
use super::ring::RunRing;
use super::sched::Scheduler;
use super::tcb::{self, State, Tcb};
use super::timers;
use core::fmt;
use core::sync::atomic::Ordering;

/// Checks the invariants of the calling CPU's scheduler, and panics with a message naming the
/// first one violated (a debugging aid: the property tests and the soak call it after every
/// operation). Call it from tasklet code, not from a destructor the scheduler runs.
///
/// It checks that
/// - the run ring closes on itself after exactly `run_count` members (less the wake-ups still
///   in the inbox), its position is the running tasklet, and every member is runnable, linked,
///   of this CPU, and a main tasklet only if it is this CPU's;
/// - the timer queue is sorted by deadline, and every member is flagged armed, of this CPU, and
///   blocked, waking or runnable (woken, its timer not yet disarmed) — never paused or dead;
/// - the reap list holds only dead tasklets of this CPU;
/// - the live count covers the runnable, the blocked on a timer and the waking, and the count
///   of raised errors covers every raised error the walks met and no more than the live count;
/// - the attention word's bits match what they stand for: timers armed, watchdog armed, a
///   preemption owed only while the watchdog is armed, deferred work (an overflowed tasklet,
///   dead tasklets to reap), the running tasklet's own raised error counted.
///
/// It walks each list once (time linear in the tasklets of this CPU) and changes nothing, so
/// release builds pay only where it is called. (The ring is walked forwards only: the list room
/// exposes no read-only way to its backward links.)
pub fn check_invariants() {
    this_cpu().check_invariants();
}

/// Names a tasklet in a violation message.
struct Who<'a>(&'a Tcb);

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tasklet #{} '{}'", self.0.id(), self.0.name())
    }
}

macro_rules! ensure {
    ($scheduler:expr, $condition:expr, $($what:tt)+) => {
        if !$condition {
            $scheduler.violated(format_args!($($what)+));
        }
    };
}

/// Most dead tasklets the reap list may hold before its walk counts as a loop.
const REAP_WALK_LIMIT: usize = 1 << 20;

impl Scheduler {
    /// See [`check_invariants`]; `self` is the calling CPU's scheduler.
    pub(super) fn check_invariants(&'static self) {
        self.check_attention();
        let live = self.live();
        ensure!(
            self,
            live >= 1,
            "live count {live}: the main tasklet is always live"
        );
        // Read before the walks: a tasklet another CPU wakes meanwhile is then counted once.
        let in_inbox = self.inbox.count();
        let (runnable, pending_in_ring) = self.check_ring();
        let (blocked_on_timers, pending_on_timers) = self.check_timers(live);
        self.check_reap_list();
        ensure!(
            self,
            runnable + blocked_on_timers + in_inbox <= live,
            "{runnable} runnable + {blocked_on_timers} blocked on timers + {in_inbox} in the \
             inbox exceed the live count {live}"
        );
        ensure!(
            self,
            self.attention.load(Ordering::Relaxed) & attention::PREEMPT == 0
                || self.watchdog_deadline.get() != 0,
            "a preemption owed with no watchdog armed"
        );
        let raised = self.raised_count();
        ensure!(
            self,
            raised >= pending_in_ring + pending_on_timers && raised <= live,
            "the attention word counts {raised} raised errors; the ring and timers hold \
             {pending_in_ring} + {pending_on_timers}, the live count is {live}"
        );
    }

    /// The run ring; returns its members and how many of them have an error raised.
    fn check_ring(&'static self) -> (usize, usize) {
        let current = self.current();
        let len = self.ring.len();
        ensure!(
            self,
            self.is_here(current),
            "the running {} belongs to another CPU",
            Who(current)
        );
        ensure!(
            self,
            current.state() == State::Runnable,
            "the running {} is {:?}, not runnable",
            Who(current),
            current.state()
        );
        match self.ring.head() {
            Some(head) => ensure!(
                self,
                core::ptr::eq(head, current),
                "the ring's position is {}, not the running {}",
                Who(head),
                Who(current)
            ),
            None => self.violated(format_args!(
                "the run ring is empty (length {len}) while {} runs",
                Who(current)
            )),
        }
        let (mut count, mut pending, mut saw_current) = (0, 0, false);
        for member in self.ring.walk().take(len.saturating_add(1)) {
            count += 1;
            ensure!(
                self,
                count <= len,
                "the run ring does not close after its length, {len}"
            );
            ensure!(
                self,
                RunRing::next_after(member).is_some(),
                "ring member {} is unlinked",
                Who(member)
            );
            ensure!(
                self,
                member.state() == State::Runnable,
                "ring member {} is {:?}, not runnable",
                Who(member),
                member.state()
            );
            ensure!(
                self,
                self.is_here(member),
                "ring member {} belongs to another CPU",
                Who(member)
            );
            ensure!(
                self,
                !member.is_main() || core::ptr::eq(member, &self.main_tcb),
                "another CPU's main tasklet is in this run ring"
            );
            saw_current |= core::ptr::eq(member, current);
            pending += usize::from(member.has_pending());
            self.check_slice_state(member, current);
        }
        ensure!(
            self,
            count == len,
            "the run ring links {count} tasklets, its length says {len}"
        );
        ensure!(
            self,
            saw_current,
            "the running {} is not in the run ring",
            Who(current)
        );
        (count, pending)
    }

    /// A runnable sliced tasklet is exactly one of: running (then it occupies the area), in the
    /// area suspended (its own context saved, no saved slice), or out of it (its context is the
    /// restorer's; a saved slice unless it never ran).
    fn check_slice_state(&'static self, member: &Tcb, current: &Tcb) {
        if !member.has_flag(tcb::FLAG_SLICED) {
            return;
        }
        let occupies = core::ptr::eq(self.slices.occupant(), member);
        if core::ptr::eq(member, current) {
            ensure!(
                self,
                occupies,
                "the running sliced {} does not occupy the slice area",
                Who(member)
            );
            return;
        }
        let parked = member.saved_sp().get() == self.restorer_context();
        ensure!(
            self,
            occupies != parked,
            "sliced {} is {} the area and its context {} the restorer's",
            Who(member),
            if occupies { "in" } else { "out of" },
            if parked { "is" } else { "is not" }
        );
        ensure!(
            self,
            !occupies || member.stack().get().base == 0,
            "sliced {} occupies the area and also has a saved slice",
            Who(member)
        );
        ensure!(
            self,
            member.stack().get().base != 0 || occupies || !member.has_flag(tcb::FLAG_STARTED),
            "sliced {} has run, is out of the area, and has no saved slice",
            Who(member)
        );
    }

    /// The timer queue; returns its blocked members and how many of those have an error raised.
    fn check_timers(&'static self, live: usize) -> (usize, usize) {
        let (mut count, mut blocked, mut pending) = (0, 0, 0);
        let mut previous = None;
        for member in self.timers.walk().take(live.saturating_add(1)) {
            count += 1;
            ensure!(
                self,
                count <= live,
                "the timer queue holds more tasklets than are live ({live}): its links loop"
            );
            ensure!(
                self,
                member.has_flag(tcb::FLAG_TIMER_ARMED),
                "timer queue member {} is not flagged armed",
                Who(member)
            );
            ensure!(
                self,
                self.is_here(member),
                "timer queue member {} belongs to another CPU",
                Who(member)
            );
            let state = member.state();
            ensure!(
                self,
                matches!(state, State::Blocked | State::Waking | State::Runnable),
                "timer queue member {} is {state:?}",
                Who(member)
            );
            let deadline = timers::deadline_of(member);
            ensure!(
                self,
                previous.is_none_or(|previous| previous <= deadline),
                "the timer queue is out of order at {} ({} ns after {:?})",
                Who(member),
                deadline.as_ns(),
                previous.map(|previous: crate::time::Deadline| previous.as_ns())
            );
            previous = Some(deadline);
            if state == State::Blocked {
                blocked += 1;
                pending += usize::from(member.has_pending());
            }
        }
        (blocked, pending)
    }

    /// The reap list: dead tasklets of this CPU whose stacks await release.
    fn check_reap_list(&'static self) {
        for (count, member) in self.reap.iter().take(REAP_WALK_LIMIT + 1).enumerate() {
            ensure!(
                self,
                count < REAP_WALK_LIMIT,
                "the reap list does not end: its links loop"
            );
            ensure!(
                self,
                member.state() == State::Dead && self.is_here(member),
                "reap list member {} is {:?} (of this CPU: {})",
                Who(member),
                member.state(),
                self.is_here(member)
            );
        }
    }

    /// Debug builds: [`Scheduler::check_attention`], for the fast paths (constant time).
    #[inline(always)]
    pub(super) fn debug_check_attention(&self) {
        if cfg!(debug_assertions) {
            self.check_attention();
        }
    }

    /// The bits this CPU owns match what they stand for. (The inbox bit is set by other CPUs a
    /// moment after their count changes, so it is not compared here.)
    #[inline]
    pub(super) fn check_attention(&self) {
        let word = self.attention.load(Ordering::Relaxed);
        // Work implies the bit; the bit stays set a while longer during a reap.
        ensure!(
            self,
            word & attention::DEFERRED != 0
                || (self.overflowed.get().is_null() && self.reap.is_empty()),
            "deferred work without the deferred bit"
        );
        ensure!(
            self,
            !self.current().has_pending() || word >= attention::PENDING_ONE,
            "a raised error not counted in the attention word"
        );
        let owned = word & (attention::TIMERS | attention::WATCHDOG);
        let mut expected = 0;
        if !self.timers.is_empty() {
            expected |= attention::TIMERS;
        }
        if self.watchdog_deadline.get() != 0 {
            expected |= attention::WATCHDOG;
        }
        ensure!(
            self,
            owned == expected,
            "attention bits out of step with timers/watchdog: {owned:#x}, expected {expected:#x}"
        );
    }

    /// Reports a violated invariant.
    #[cold]
    #[inline(never)]
    fn violated(&self, what: fmt::Arguments<'_>) -> ! {
        panic!(
            "spindle: scheduler invariant violated on CPU {}: {what}",
            self.cpu.get()
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::list::Ring;
    use super::super::tcb::RingLinks;
    use super::*;
    use crate::channel::Channel;
    use crate::tasklet::{self as api, Builder};
    use alloc::sync::Arc;
    use core::time::Duration;
    use std::string::String;

    /// Runs `corrupt` on a fresh thread's scheduler (after `setup` there), then expects
    /// `check_invariants` to panic naming the violation.
    fn expect_violation(setup: fn(), corrupt: fn(&'static Scheduler), expected: &'static str) {
        let outcome = std::thread::spawn(move || {
            setup();
            check_invariants();
            corrupt(this_cpu());
            check_invariants();
        })
        .join();
        let panic = outcome.expect_err("check_invariants missed the corruption");
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| String::from(*s)))
            .unwrap_or_default();
        assert!(
            message.contains("scheduler invariant violated") && message.contains(expected),
            "expected a violation naming {expected:?}, got {message:?}"
        );
    }

    /// Two runnable tasklets that have not run: main, then them, in the ring.
    fn two_runnable() {
        for _ in 0..2 {
            Builder::new().spawn(api::schedule).expect("spawn");
        }
    }

    /// Two tasklets sleeping (1 s and 2 s) on the timer queue.
    fn two_sleeping() {
        for seconds in [1, 2] {
            Builder::new()
                .spawn(move || api::sleep(Duration::from_secs(seconds)))
                .expect("spawn");
        }
        api::schedule().expect("let them go to sleep");
        assert_eq!(api::run_count(), 1);
    }

    /// The member after the running tasklet.
    fn second(scheduler: &'static Scheduler) -> &'static Tcb {
        RunRing::next_of_member(scheduler.current())
    }

    #[test]
    fn a_sound_scheduler_passes_after_every_step() {
        std::thread::spawn(|| {
            let channel = Arc::new(Channel::<u32>::new());
            let receiver = {
                let channel = channel.clone();
                api::spawn(move || {
                    check_invariants();
                    let value = channel.receive_timeout(Duration::from_secs(5));
                    check_invariants();
                    value
                })
                .unwrap()
            };
            let sleeper = api::spawn(|| {
                check_invariants();
                api::sleep(Duration::from_millis(1))?;
                check_invariants();
                api::schedule()
            })
            .unwrap();
            let paused = Builder::new().paused().spawn(|| ()).unwrap();
            check_invariants();
            api::schedule().unwrap();
            check_invariants();
            channel.send(7).unwrap();
            check_invariants();
            paused.kill().unwrap();
            check_invariants();
            api::run().unwrap();
            check_invariants();
            assert_eq!(receiver.result(), Some(Ok(Ok(7))));
            assert_eq!(sleeper.result(), Some(Ok(Ok(()))));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_tasklet_unlinked_behind_the_rings_back_breaks_the_count() {
        expect_violation(
            two_runnable,
            |scheduler| {
                let _ = Ring::<RingLinks>::unlink(second(scheduler));
            },
            "the run ring links 2 tasklets, its length says 3",
        );
    }

    #[test]
    fn a_ring_that_loops_past_its_position_is_caught() {
        expect_violation(
            two_runnable,
            |scheduler| {
                // main -> A -> B -> main becomes main -> B -> A -> B -> ...
                let (a, b) = (
                    second(scheduler),
                    RunRing::next_of_member(second(scheduler)),
                );
                // SAFETY: test-only corruption of live members (their blocks stay alive).
                unsafe { Ring::<RingLinks>::insert_before(a, b) };
            },
            "does not close after its length, 3",
        );
    }

    #[test]
    fn an_unlinked_position_is_caught() {
        expect_violation(
            two_runnable,
            |scheduler| {
                let _ = Ring::<RingLinks>::unlink(scheduler.current());
            },
            "is unlinked",
        );
    }

    /// Two sliced tasklets that yield twice: after one yield each, the first waits out of the
    /// area (saved) and the second in it.
    fn two_sliced() {
        for _ in 0..2 {
            Builder::new()
                .sliced()
                .spawn(|| {
                    api::schedule()?;
                    api::schedule()
                })
                .expect("spawn");
        }
        api::schedule().expect("let both run once");
    }

    #[test]
    fn a_saved_sliced_tasklet_without_the_restorers_context_is_caught() {
        expect_violation(
            two_sliced,
            |scheduler| {
                let saved = second(scheduler);
                assert!(saved.stack().get().base != 0, "the first one is saved");
                saved.saved_sp().set(saved.stack().get().base);
            },
            "is out of the area and its context is not the restorer's",
        );
    }

    #[test]
    fn a_sliced_tasklet_that_lost_the_area_without_a_saved_slice_is_caught() {
        expect_violation(
            two_sliced,
            |scheduler| {
                let resident = RunRing::next_of_member(second(scheduler));
                assert!(core::ptr::eq(scheduler.slices.occupant(), resident));
                scheduler.slices.clear_occupant_for_tests();
            },
            "is out of the area and its context is not the restorer's",
        );
    }

    #[test]
    fn a_ring_member_that_is_not_runnable_is_caught() {
        expect_violation(
            two_runnable,
            |scheduler| second(scheduler).set_state(State::Paused),
            "is Paused, not runnable",
        );
    }

    #[test]
    fn a_timer_queue_out_of_order_is_caught() {
        expect_violation(
            two_sleeping,
            |scheduler| {
                let first = scheduler.timers.walk().next().unwrap();
                first.timer_deadline().set(u64::MAX);
            },
            "the timer queue is out of order",
        );
    }

    #[test]
    fn a_timer_not_flagged_armed_is_caught() {
        expect_violation(
            two_sleeping,
            |scheduler| {
                let first = scheduler.timers.walk().next().unwrap();
                first.set_flag(tcb::FLAG_TIMER_ARMED, false);
            },
            "is not flagged armed",
        );
    }

    #[test]
    fn a_timer_bit_out_of_step_is_caught() {
        expect_violation(
            two_sleeping,
            |scheduler| scheduler.set_attention(attention::TIMERS, false),
            "attention bits out of step with timers/watchdog",
        );
    }

    #[test]
    fn a_raised_error_count_beyond_the_live_tasklets_is_caught() {
        expect_violation(
            two_runnable,
            |scheduler| {
                scheduler
                    .attention
                    .fetch_add(attention::PENDING_ONE * 9, Ordering::Relaxed);
            },
            "counts 9 raised errors",
        );
    }

    #[test]
    fn a_live_count_below_what_the_lists_hold_is_caught() {
        expect_violation(
            two_runnable,
            |scheduler| scheduler.live.set(2),
            "exceed the live count 2",
        );
    }
}
