//! The wake primitive with real tasklets: waiting, woken, killed, timed out and deadlocked on one
//! CPU and across threads (its bookkeeping alone is checked in `ledger.rs`).

extern crate std;

use super::{WaitList, Waited};
use crate::tasklet::{self, Builder, CpuGroup, JoinHandle, TaskletError};
use crate::time::Deadline;
use std::string::String;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::vec::Vec;

// ---- real tasklets ---------------------------------------------------------------------------

/// A counting semaphore straight on a wait list: the smallest primitive with a condition.
struct Permits {
    free: spin::Mutex<usize>,
    list: WaitList,
}

impl Permits {
    const fn new(free: usize) -> Self {
        Self {
            free: spin::Mutex::new(free),
            list: WaitList::new(),
        }
    }

    fn acquire_by(&self, deadline: Option<Deadline>) -> Waited {
        let mut free = self.free.lock();
        if *free > 0 {
            *free -= 1;
            return Waited::Granted;
        }
        self.list.register();
        let (_free, waited) = self.list.wait(free, || self.free.lock(), deadline);
        waited
    }

    fn acquire(&self) -> Waited {
        self.acquire_by(None)
    }

    /// Hands a permit to a waiter, or keeps it; the handed-over waiter holds it.
    fn release(&self) {
        let mut free = self.free.lock();
        let grant = self.list.grant();
        if !grant.is_granted() {
            *free += 1;
        }
        drop(free);
        grant.hand_over();
    }

    fn free(&self) -> usize {
        *self.free.lock()
    }
}

type Trace = Arc<Mutex<Vec<String>>>;

fn note(trace: &Trace, line: impl Into<String>) {
    trace.lock().unwrap().push(line.into());
}

fn lines(trace: &Trace) -> Vec<String> {
    trace.lock().unwrap().clone()
}

fn spawn<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> JoinHandle<R> {
    Builder::new().stack_size(64 << 10).spawn(body).unwrap()
}

/// A waiter that notes its name once its acquire ends, with how.
fn waiter(permits: &Arc<Permits>, trace: &Trace, name: &'static str) -> JoinHandle<Waited> {
    let (permits, trace) = (permits.clone(), trace.clone());
    spawn(move || {
        let waited = permits.acquire();
        note(&trace, name);
        waited
    })
}

#[test]
fn grants_wake_blocked_waiters_in_order_at_the_end_of_the_ring() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let waiters: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| waiter(&permits, &trace, name))
        .collect();
    tasklet::schedule().unwrap();
    assert_eq!(permits.list.ungranted(), 3);
    permits.release();
    permits.release();
    // The waker goes on: the woken waiters wait their turn at the end of the ring.
    assert!(lines(&trace).is_empty());
    assert_eq!((permits.list.ungranted(), permits.list.granted()), (1, 2));
    tasklet::schedule().unwrap();
    assert_eq!(lines(&trace), ["a", "b"]);
    assert_eq!((permits.list.ungranted(), permits.list.granted()), (1, 0));
    permits.release();
    permits.release();
    tasklet::run().unwrap();
    assert_eq!(lines(&trace), ["a", "b", "c"]);
    assert!(waiters
        .iter()
        .all(|waiter| waiter.result() == Some(Ok(Waited::Granted))));
    assert_eq!(permits.free(), 1, "the last permit found nobody waiting");
}

#[test]
fn grant_all_wakes_every_waiter_and_counts_them() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let waiters: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| waiter(&permits, &trace, name))
        .collect();
    tasklet::schedule().unwrap();
    let grants = permits.list.grant_all();
    assert_eq!(grants.count(), 3);
    grants.hand_over();
    let again = permits.list.grant_all();
    assert_eq!(again.count(), 0, "every waiter has a grant already");
    again.hand_over();
    tasklet::run().unwrap();
    assert_eq!(lines(&trace), ["a", "b", "c"]);
    assert!(waiters
        .iter()
        .all(|waiter| waiter.result() == Some(Ok(Waited::Granted))));
    assert_eq!(permits.list.granted(), 0);
}

#[test]
fn a_grant_made_before_its_waiter_blocks_is_taken_on_arrival_and_its_waker_waits_for_that() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let late = {
        let (permits, trace) = (permits.clone(), trace.clone());
        spawn(move || {
            let free = permits.free.lock();
            permits.list.register();
            drop(free);
            note(&trace, "registered");
            // Registered but not blocked: main's grant floats meanwhile.
            tasklet::schedule().unwrap();
            let (_free, waited) = permits.list.wait((), || permits.free.lock(), None);
            note(&trace, "arrived");
            waited
        })
    };
    tasklet::schedule().unwrap();
    assert_eq!(lines(&trace), ["registered"]);
    // The grant floats; main waits until the late waiter has taken it.
    permits.release();
    note(&trace, "released");
    assert_eq!(lines(&trace), ["registered", "arrived", "released"]);
    assert_eq!(late.result(), Some(Ok(Waited::Granted)));
    assert_eq!((permits.list.ungranted(), permits.list.granted()), (0, 0));
}

#[test]
fn a_killed_waiter_leaves_and_the_next_grant_goes_on() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let doomed = waiter(&permits, &trace, "doomed");
    let next = waiter(&permits, &trace, "next");
    tasklet::schedule().unwrap();
    doomed.kill().unwrap();
    assert_eq!(
        doomed.result(),
        Some(Ok(Waited::Failed(TaskletError::Killed)))
    );
    assert_eq!(permits.list.ungranted(), 1);
    permits.release();
    tasklet::run().unwrap();
    assert_eq!(next.result(), Some(Ok(Waited::Granted)));
    assert_eq!(lines(&trace), ["doomed", "next"]);
}

#[test]
fn a_waiter_killed_as_it_is_granted_holds_the_grant_and_its_waker_waits_for_it() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let doomed = waiter(&permits, &trace, "doomed");
    tasklet::schedule().unwrap();
    // Out of the queue with the kill raised, not yet run: registered, so the grant is its.
    doomed.kill_pending().unwrap();
    assert_eq!(permits.list.ungranted(), 1);
    permits.release();
    assert_eq!(
        doomed.result(),
        Some(Ok(Waited::FailedHolding(TaskletError::Killed))),
        "the release returned once the doomed waiter held the permit"
    );
    assert_eq!(permits.free(), 0, "the permit went with the grant");
    assert_eq!((permits.list.ungranted(), permits.list.granted()), (0, 0));
}

#[test]
fn a_grant_to_a_queued_waiter_beats_a_later_kill() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let granted = waiter(&permits, &trace, "granted");
    tasklet::schedule().unwrap();
    permits.release();
    // Woken, not yet run: the kill finds it out of the queue and stays raised.
    granted.kill_pending().unwrap();
    tasklet::run().unwrap();
    assert_eq!(granted.result(), Some(Ok(Waited::Granted)));
    assert_eq!(tasklet::raised_count(), 0, "the raised kill died with it");
}

#[test]
fn timeouts_deadlock_and_block_traps_end_a_wait_and_leave_nothing_behind() {
    let permits = Permits::new(0);
    let started = Deadline::now();
    let waited = permits.acquire_by(Some(Deadline::after(Duration::from_millis(2))));
    assert_eq!(waited, Waited::Failed(TaskletError::TimedOut));
    assert!(started
        .saturating_add(Duration::from_millis(2))
        .has_passed());
    assert_eq!(permits.acquire(), Waited::Failed(TaskletError::Deadlock));
    tasklet::current().set_block_trap(true);
    assert_eq!(permits.acquire(), Waited::Failed(TaskletError::BlockTrap));
    tasklet::current().set_block_trap(false);
    assert_eq!((permits.list.ungranted(), permits.list.granted()), (0, 0));
    permits.release();
    assert_eq!(permits.free(), 1);
}

#[test]
fn a_waiter_whose_timeout_passes_as_it_is_granted_keeps_the_grant() {
    let permits = Arc::new(Permits::new(0));
    let releaser = {
        let permits = permits.clone();
        spawn(move || {
            tasklet::sleep(Duration::from_millis(1))?;
            permits.release();
            Ok::<_, TaskletError>(())
        })
    };
    let timed = {
        let permits = permits.clone();
        spawn(move || permits.acquire_by(Some(Deadline::after(Duration::from_millis(3)))))
    };
    tasklet::schedule().unwrap();
    // Both deadlines pass before the timers are looked at: one pass wakes the releaser, then
    // times the waiter out; the release finds it registered and grants it.
    std::thread::sleep(Duration::from_millis(10));
    tasklet::run().unwrap();
    assert_eq!(releaser.result(), Some(Ok(Ok(()))));
    assert_eq!(
        timed.result(),
        Some(Ok(Waited::FailedHolding(TaskletError::TimedOut)))
    );
    assert_eq!(permits.free(), 0);
}

#[test]
fn a_waker_killed_during_its_hand_off_still_hands_over_and_sees_the_kill_afterwards() {
    let permits = Arc::new(Permits::new(0));
    let trace = Trace::default();
    let late = {
        let (permits, trace) = (permits.clone(), trace.clone());
        spawn(move || {
            let free = permits.free.lock();
            permits.list.register();
            drop(free);
            // Parked, registered, until main inserts it again.
            tasklet::schedule_remove().unwrap();
            let (_free, waited) = permits.list.wait((), || permits.free.lock(), None);
            note(&trace, "late took it");
            waited
        })
    };
    let waker = {
        let (permits, trace) = (permits.clone(), trace.clone());
        spawn(move || {
            permits.release();
            note(&trace, "handed over");
            // The kill that came during the hand-off ends the next blocking call.
            tasklet::schedule()
        })
    };
    tasklet::schedule().unwrap();
    assert!(
        waker.is_blocked(),
        "waiting for the late waiter to take the grant"
    );
    waker.kill().unwrap();
    assert!(waker.is_blocked(), "a kill does not end a hand-off");
    late.insert().unwrap();
    tasklet::run().unwrap();
    assert_eq!(lines(&trace), ["late took it", "handed over"]);
    assert_eq!(late.result(), Some(Ok(Waited::Granted)));
    assert_eq!(waker.result(), Some(Ok(Err(TaskletError::Killed))));
}

#[test]
fn a_detached_grant_never_waits_and_wake_now_switches_to_the_waiter() {
    let list = Arc::new(WaitList::new());
    let trace = Trace::default();
    let blocked = {
        let (list, trace) = (list.clone(), trace.clone());
        spawn(move || {
            list.register();
            let ((), waited) = list.wait((), || (), None);
            note(&trace, "woken");
            waited
        })
    };
    tasklet::schedule().unwrap();
    let woken = list.grant_detached().expect("a blocked waiter");
    note(&trace, "granted");
    woken.wake_now();
    note(&trace, "back");
    assert_eq!(lines(&trace), ["granted", "woken", "back"]);
    assert_eq!(blocked.result(), Some(Ok(Waited::Granted)));

    // A waiter not blocked yet finds its grant when it gets there; the waker never waits.
    list.register();
    assert!(list.grant_detached().is_none());
    assert_eq!(list.wait((), || (), None), ((), Waited::Granted));
    assert!(list.grant_detached().is_none(), "nobody registered");
    assert_eq!((list.ungranted(), list.granted()), (0, 0));
}

#[test]
fn grants_reach_waiters_on_other_threads_and_none_is_lost() {
    static GROUP: CpuGroup = CpuGroup::new();
    static PERMITS: Permits = Permits::new(0);
    static TAKEN: AtomicUsize = AtomicUsize::new(0);
    const THREADS: usize = 3;
    const PER_THREAD: usize = 4;
    const ROUNDS: usize = 50;
    fn take_rounds() -> Result<(), TaskletError> {
        for _ in 0..ROUNDS {
            match PERMITS.acquire() {
                Waited::Granted => {
                    TAKEN.fetch_add(1, Ordering::SeqCst);
                }
                other => panic!("a wait ended with {other:?}"),
            }
            tasklet::schedule()?;
        }
        Ok(())
    }
    tasklet::join_group(&GROUP);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            tasklet::spawn_cpu_thread(&GROUP, || {
                let tasklets: Vec<_> = (0..PER_THREAD).map(|_| spawn(take_rounds)).collect();
                tasklets
                    .iter()
                    .map(|tasklet| tasklet.join())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Main hands out every permit, yielding now and then so that waiters arrive in between.
    for round in 0..THREADS * PER_THREAD * ROUNDS {
        PERMITS.release();
        if round % 7 == 0 {
            tasklet::schedule().unwrap();
        }
    }
    tasklet::leave_group();
    for thread in threads {
        for result in thread.join().unwrap() {
            assert_eq!(result, Ok(Ok(())));
        }
    }
    assert_eq!(TAKEN.load(Ordering::SeqCst), THREADS * PER_THREAD * ROUNDS);
    assert_eq!(PERMITS.free(), 0, "every permit was taken by a waiter");
    assert_eq!((PERMITS.list.ungranted(), PERMITS.list.granted()), (0, 0));
}

#[test]
fn grants_racing_timeouts_on_other_threads_are_each_held_once() {
    static GROUP: CpuGroup = CpuGroup::new();
    static PERMITS: Permits = Permits::new(0);
    static HELD: AtomicUsize = AtomicUsize::new(0);
    static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
    const THREADS: usize = 2;
    const PER_THREAD: usize = 3;
    const ROUNDS: usize = 40;
    const RELEASES: usize = 150;
    fn try_rounds() -> Result<(), TaskletError> {
        for _ in 0..ROUNDS {
            ATTEMPTS.fetch_add(1, Ordering::SeqCst);
            match PERMITS.acquire_by(Some(Deadline::after(Duration::from_micros(30)))) {
                // A timeout that came with a grant holds the permit as well.
                Waited::Granted | Waited::FailedHolding(TaskletError::TimedOut) => {
                    HELD.fetch_add(1, Ordering::SeqCst);
                }
                Waited::Failed(TaskletError::TimedOut) => {}
                other => panic!("a wait ended with {other:?}"),
            }
            tasklet::schedule()?;
        }
        Ok(())
    }
    tasklet::join_group(&GROUP);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            tasklet::spawn_cpu_thread(&GROUP, || {
                let tasklets: Vec<_> = (0..PER_THREAD).map(|_| spawn(try_rounds)).collect();
                tasklets
                    .iter()
                    .map(|tasklet| tasklet.join())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for round in 0..RELEASES {
        PERMITS.release();
        if round % 2 == 0 {
            // Spread the releases over the waiters' timeouts, so that some race them.
            tasklet::sleep(Duration::from_micros(20)).unwrap();
        }
    }
    tasklet::leave_group();
    for thread in threads {
        for result in thread.join().unwrap() {
            assert_eq!(result, Ok(Ok(())));
        }
    }
    assert_eq!(
        ATTEMPTS.load(Ordering::SeqCst),
        THREADS * PER_THREAD * ROUNDS
    );
    assert_eq!(
        HELD.load(Ordering::SeqCst) + PERMITS.free(),
        RELEASES,
        "every permit released is held once or still free"
    );
    assert_eq!((PERMITS.list.ungranted(), PERMITS.list.granted()), (0, 0));
}
