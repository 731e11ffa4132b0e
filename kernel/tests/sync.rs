//! Lock, Event, Semaphore, Condition and Queue: FIFO service, wake-one versus wake-all, counts,
//! blocking both ways, close, timeouts, kills that leave state consistent, use across threads,
//! and a property test of Queue against a `VecDeque` model.

use proptest::prelude::*;
use spindle::scenarios::sync::{
    self as scenarios, all_succeeded, spawn, spawn_each, spawn_with, Log,
};
use spindle::sync::{Condition, Event, Lock, Queue, Semaphore, TryReceiveError, TrySendError};
use spindle::tasklet::{self, CpuGroup, JoinHandle, TaskletError, Thrown};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `body` on a fresh thread and fails if it has not finished within `seconds` (a test
/// that would hang fails instead; the stuck thread is left behind).
fn within<R: Send + 'static>(seconds: u64, body: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let result = body();
        let _ = done.send(());
        result
    });
    match finished.recv_timeout(Duration::from_secs(seconds)) {
        Ok(()) => thread.join().unwrap(),
        // The body panicked: re-raise its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not finish within {seconds} s")
        }
    }
}

fn log() -> Arc<Log> {
    Arc::new(Log::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<u32> {
    log.lock().clone()
}

fn note(log: &Log, id: u32) {
    log.lock().push(id);
}

/// A CPU thread of [`tasklets_on_threads`]: its tasklets' results once they have all finished.
type TaskletThread = std::thread::JoinHandle<Vec<Result<(), TaskletError>>>;

/// Starts `threads` CPU threads in `group`, each running `per_thread` tasklets of `body`.
fn tasklets_on_threads(
    group: &'static CpuGroup,
    threads: usize,
    per_thread: usize,
    body: fn() -> Result<(), TaskletError>,
) -> Vec<TaskletThread> {
    (0..threads)
        .map(|_| {
            tasklet::spawn_cpu_thread(group, move || {
                let tasklets: Vec<_> = (0..per_thread).map(|_| spawn(body)).collect();
                tasklets
                    .iter()
                    .map(|tasklet| tasklet.join().and_then(|result| result))
                    .collect()
            })
        })
        .collect()
}

/// Joins the threads and checks that every tasklet on them succeeded.
fn assert_all_threads_succeeded(threads: Vec<TaskletThread>) {
    for thread in threads {
        let results = thread.join().unwrap();
        assert!(
            results.iter().all(|result| *result == Ok(())),
            "{results:?}"
        );
    }
}

// ---- Lock ---------------------------------------------------------------------------------

#[test]
fn lock_waiters_are_served_in_fifo_order_and_a_newcomer_cannot_overtake() {
    scenarios::lock_waiters_are_served_in_fifo_order(3);
}

#[test]
fn acquiring_a_held_lock_again_is_a_typed_error() {
    let lock = Lock::new();
    let guard = lock.acquire().unwrap();
    assert_eq!(lock.acquire().unwrap_err(), TaskletError::Deadlock);
    assert!(lock.try_acquire().is_none());
    guard.unlock();
    assert!(!lock.is_locked());
}

#[test]
fn a_lock_nobody_can_release_fails_with_deadlock() {
    let lock = Arc::new(Lock::new());
    let holder = spawn_with(&lock, move |lock| std::mem::forget(lock.acquire().unwrap()));
    tasklet::run().unwrap();
    assert_eq!(holder.result(), Some(Ok(())));
    assert_eq!(lock.acquire().unwrap_err(), TaskletError::Deadlock);
    assert_eq!(lock.waiting(), 0);
}

#[test]
fn lock_acquire_timeout_gives_up_and_leaves_no_waiter() {
    let lock = Arc::new(Lock::new());
    let held = lock.acquire().unwrap();
    let waiter = spawn_with(&lock, move |lock| {
        lock.acquire_timeout(Duration::from_millis(5)).map(drop)
    });
    tasklet::run().unwrap();
    assert_eq!(waiter.result(), Some(Ok(Err(TaskletError::TimedOut))));
    assert_eq!(lock.waiting(), 0);
    drop(held);
    assert!(!lock.is_locked(), "nobody was handed the lock");
}

#[test]
fn killing_a_blocked_lock_waiter_leaves_the_lock_consistent() {
    let lock = Arc::new(Lock::new());
    let held = lock.acquire().unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| spawn_with(&lock, move |lock| lock.acquire().map(drop)))
        .collect();
    tasklet::schedule().unwrap();
    assert_eq!(lock.waiting(), 2);
    waiters[0].kill().unwrap();
    assert_eq!(waiters[0].result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(lock.waiting(), 1);
    drop(held);
    tasklet::run().unwrap();
    assert_eq!(waiters[1].result(), Some(Ok(Ok(()))));
    assert!(!lock.is_locked());
}

#[test]
fn a_waiter_killed_as_the_lock_is_handed_to_it_passes_the_lock_on() {
    within(
        10,
        scenarios::a_waiter_killed_as_the_lock_is_handed_to_it_passes_the_lock_on,
    );
}

#[test]
fn a_lock_waiter_whose_timeout_passes_as_the_lock_is_handed_over_keeps_it() {
    within(10, || {
        let lock = Arc::new(Lock::new());
        // The holder sleeps until T1, the waiter gives up at T2 > T1. Both times pass before
        // this CPU looks at its timers, so one timer pass wakes the holder first and then the
        // waiter (with TimedOut): the holder's release commits the lock to the waiter, which is
        // still registered, and the waiter takes it instead of failing.
        let holder = spawn_with(&lock, |lock| {
            let guard = lock.acquire()?;
            tasklet::sleep(Duration::from_millis(1))?;
            drop(guard);
            Ok::<_, TaskletError>(())
        });
        let waiter = spawn_with(&lock, |lock| {
            let guard = lock.acquire_timeout(Duration::from_millis(3))?;
            Ok::<_, TaskletError>(guard.lock().is_locked())
        });
        tasklet::schedule().unwrap();
        assert_eq!(lock.waiting(), 1);
        std::thread::sleep(Duration::from_millis(10));
        tasklet::run().unwrap();
        assert_eq!(holder.result(), Some(Ok(Ok(()))));
        assert_eq!(waiter.result(), Some(Ok(Ok(true))));
        assert!(!lock.is_locked());
        assert_eq!(lock.waiting(), 0);
    });
}

// ---- Event --------------------------------------------------------------------------------

#[test]
fn event_set_wakes_every_waiter_and_clear_makes_waits_block_again() {
    scenarios::event_set_wakes_every_waiter_and_clear_makes_waits_block_again(3);
}

#[test]
fn an_event_nobody_sets_fails_with_deadlock_and_a_killed_waiter_is_not_counted() {
    let event = Arc::new(Event::new());
    assert_eq!(event.wait(), Err(TaskletError::Deadlock));
    let waiters: Vec<_> = (0..2)
        .map(|_| spawn_with(&event, move |event| event.wait()))
        .collect();
    tasklet::schedule().unwrap();
    waiters[1].throw(Thrown::new(7, "stop"), false).unwrap();
    assert_eq!(
        waiters[1].result(),
        Some(Ok(Err(TaskletError::Thrown(Thrown::new(7, "stop")))))
    );
    assert_eq!(event.waiting(), 1);
    assert_eq!(event.set(), 1);
    tasklet::run().unwrap();
    assert_eq!(waiters[0].result(), Some(Ok(Ok(()))));
}

// ---- Semaphore ----------------------------------------------------------------------------

#[test]
fn semaphore_counts_permits_and_serves_waiters_in_order() {
    let semaphore = Arc::new(Semaphore::new(2));
    assert_eq!(semaphore.acquire(), Ok(()));
    assert!(semaphore.try_acquire());
    assert_eq!(semaphore.available(), 0);
    assert!(!semaphore.try_acquire());
    let order = log();
    let waiters = spawn_each(&semaphore, &order, 3, |semaphore, id, order| {
        semaphore.acquire()?;
        note(order, id);
        Ok(())
    });
    tasklet::schedule().unwrap();
    assert_eq!(semaphore.waiting(), 3);
    semaphore.release();
    semaphore.release();
    // Both permits went to waiters; none is free for a newcomer.
    assert_eq!(semaphore.available(), 0);
    assert!(!semaphore.try_acquire());
    tasklet::run().unwrap();
    assert_eq!(entries(&order), [0, 1]);
    assert_eq!(semaphore.waiting(), 1);
    semaphore.release();
    tasklet::run().unwrap();
    assert_eq!(entries(&order), [0, 1, 2]);
    assert!(all_succeeded(&waiters));
    semaphore.release();
    semaphore.release();
    assert_eq!(semaphore.available(), 2);
}

#[test]
fn semaphore_timeout_and_kill_leave_the_count_right() {
    let semaphore = Arc::new(Semaphore::new(0));
    assert_eq!(
        semaphore.acquire_timeout(Duration::from_millis(2)),
        Err(TaskletError::TimedOut)
    );
    let waiters: Vec<_> = (0..2)
        .map(|_| spawn_with(&semaphore, move |semaphore| semaphore.acquire()))
        .collect();
    tasklet::schedule().unwrap();
    waiters[0].kill().unwrap();
    assert_eq!(semaphore.waiting(), 1);
    semaphore.release();
    semaphore.release();
    tasklet::run().unwrap();
    assert_eq!(waiters[0].result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(waiters[1].result(), Some(Ok(Ok(()))));
    assert_eq!(semaphore.available(), 1);
    assert_eq!(semaphore.waiting(), 0);
}

// ---- Condition ----------------------------------------------------------------------------

/// Tasklets that take the lock and wait on the condition, noting their id once notified.
fn condition_waiters(
    pair: &Arc<(Lock, Condition)>,
    woken: &Arc<Log>,
    count: u32,
) -> Vec<JoinHandle<Result<(), TaskletError>>> {
    spawn_each(pair, woken, count, |(lock, condition), id, woken| {
        let guard = condition.wait(lock.acquire()?)?;
        note(woken, id);
        drop(guard);
        Ok(())
    })
}

#[test]
fn condition_notify_wakes_one_and_notify_all_wakes_the_rest() {
    let pair = Arc::new((Lock::new(), Condition::new()));
    let (lock, condition) = (&pair.0, &pair.1);
    let woken = log();
    let waiters = condition_waiters(&pair, &woken, 3);
    tasklet::run().unwrap();
    assert_eq!(condition.waiting(), 3);
    assert!(!lock.is_locked(), "waiting releases the lock");
    {
        let _guard = lock.acquire().unwrap();
        assert!(condition.notify());
    }
    tasklet::run().unwrap();
    assert_eq!(
        entries(&woken),
        [0],
        "notify wakes exactly the first waiter"
    );
    assert_eq!(condition.waiting(), 2);
    {
        let _guard = lock.acquire().unwrap();
        assert_eq!(condition.notify_all(), 2);
    }
    tasklet::run().unwrap();
    assert_eq!(entries(&woken), [0, 1, 2]);
    assert!(all_succeeded(&waiters));
    assert!(!condition.notify());
    assert!(!lock.is_locked());
}

#[test]
fn condition_wait_timeout_takes_the_lock_back_and_a_killed_waiter_does_not_hold_it() {
    let pair = Arc::new((Lock::new(), Condition::new()));
    let (lock, condition) = (&pair.0, &pair.1);
    let guard = lock.acquire().unwrap();
    let (guard, notified) = condition
        .wait_timeout(guard, Duration::from_millis(2))
        .unwrap();
    assert!(!notified);
    assert!(lock.is_locked());
    drop(guard);

    let woken = log();
    let waiters = condition_waiters(&pair, &woken, 2);
    tasklet::run().unwrap();
    waiters[0].kill().unwrap();
    assert_eq!(waiters[0].result(), Some(Ok(Err(TaskletError::Killed))));
    assert!(!lock.is_locked());
    assert_eq!(condition.waiting(), 1);
    assert!(condition.notify());
    tasklet::run().unwrap();
    assert_eq!(entries(&woken), [1]);
    assert_eq!(waiters[1].result(), Some(Ok(Ok(()))));
}

// ---- Queue --------------------------------------------------------------------------------

#[test]
fn queue_blocks_receivers_when_empty_and_senders_when_full() {
    let queue = Arc::new(Queue::<u32, 2>::new());
    assert_eq!(queue.capacity(), 2);
    let receiver = spawn_with(&queue, move |queue| queue.receive());
    tasklet::schedule().unwrap();
    assert_eq!(queue.waiting_receivers(), 1);
    queue.send(1).unwrap();
    // The value is promised to the waiting receiver: a newcomer cannot take it.
    assert_eq!(queue.try_receive(), Err(TryReceiveError::Empty));
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok(1))));

    queue.send(2).unwrap();
    queue.try_send(3).unwrap();
    assert!(queue.is_full());
    assert_eq!(queue.try_send(4), Err(TrySendError::Full(4)));
    let sender = spawn_with(&queue, move |queue| {
        queue.send(4).map_err(|failure| failure.error)
    });
    tasklet::schedule().unwrap();
    assert_eq!(queue.waiting_senders(), 1);
    assert_eq!(queue.receive(), Ok(2));
    // The freed place is promised to the blocked sender.
    assert_eq!(queue.try_send(5), Err(TrySendError::Full(5)));
    tasklet::run().unwrap();
    assert_eq!(sender.result(), Some(Ok(Ok(()))));
    assert_eq!(queue.receive(), Ok(3));
    assert_eq!(queue.receive(), Ok(4));
    assert!(queue.is_empty());
}

#[test]
fn queue_close_fails_senders_with_their_values_and_lets_receivers_drain() {
    let queue = Arc::new(Queue::<String, 1>::new());
    queue.send("kept".to_string()).unwrap();
    let sender = spawn_with(&queue, move |queue| {
        queue
            .send("returned".to_string())
            .map_err(|failure| (failure.value, failure.error))
    });
    tasklet::schedule().unwrap();
    queue.close();
    assert!(queue.is_closing() && !queue.is_closed());
    tasklet::run().unwrap();
    assert_eq!(
        sender.result(),
        Some(Ok(Err(("returned".to_string(), TaskletError::Closed))))
    );
    assert_eq!(
        queue.try_send("late".into()),
        Err(TrySendError::Closed("late".to_string()))
    );
    let failure = queue.send("late".into()).unwrap_err();
    assert_eq!(
        (failure.value.as_str(), failure.error),
        ("late", TaskletError::Closed)
    );
    assert_eq!(queue.receive().as_deref(), Ok("kept"));
    assert!(queue.is_closed());
    assert_eq!(queue.receive(), Err(TaskletError::Closed));
    assert_eq!(queue.try_receive(), Err(TryReceiveError::Closed));

    // Receivers blocked when the queue closes fail with Closed; reopening works again.
    queue.open();
    let receivers: Vec<_> = (0..2)
        .map(|_| spawn_with(&queue, move |queue| queue.receive()))
        .collect();
    tasklet::schedule().unwrap();
    queue.close();
    tasklet::run().unwrap();
    assert!(receivers
        .iter()
        .all(|receiver| receiver.result() == Some(Ok(Err(TaskletError::Closed)))));
    assert_eq!(queue.waiting_receivers(), 0);
    queue.open();
    queue.send("again".into()).unwrap();
    assert_eq!(queue.receive().as_deref(), Ok("again"));
}

#[test]
fn queue_timeouts_give_values_back() {
    let queue = Queue::<u32, 1>::new();
    scenarios::queue_timeouts_give_values_back(&queue, Duration::from_millis(2));
    assert_eq!(queue.receive(), Ok(1));
    assert_eq!(
        queue.receive(),
        Err(TaskletError::Deadlock),
        "nobody can ever send"
    );
}

#[test]
fn killing_blocked_queue_waiters_leaves_the_queue_consistent() {
    within(10, killed_queue_waiters);
}

fn killed_queue_waiters() {
    let queue = Arc::new(Queue::<u32, 1>::new());
    queue.send(10).unwrap();
    let senders: Vec<_> = (11..13)
        .map(|value| {
            spawn_with(&queue, move |queue| {
                queue
                    .send(value)
                    .map_err(|failure| (failure.value, failure.error))
            })
        })
        .collect();
    tasklet::schedule().unwrap();
    assert_eq!(queue.waiting_senders(), 2);
    senders[0].kill().unwrap();
    assert_eq!(
        senders[0].result(),
        Some(Ok(Err((11, TaskletError::Killed))))
    );
    assert_eq!(queue.waiting_senders(), 1);
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.receive(), Ok(10));
    tasklet::run().unwrap();
    assert_eq!(senders[1].result(), Some(Ok(Ok(()))));
    assert_eq!(queue.receive(), Ok(12));

    // A receiver killed as a value is promised to it passes the promise on.
    let doomed = spawn_with(&queue, move |queue| queue.receive());
    tasklet::schedule().unwrap();
    doomed.kill_pending().unwrap();
    queue.send(20).unwrap();
    assert_eq!(doomed.result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(queue.waiting_receivers(), 0);
    assert_eq!(queue.try_receive(), Ok(20), "the value is free again");
    let doomed = spawn_with(&queue, move |queue| queue.receive());
    tasklet::schedule().unwrap();
    doomed.kill_pending().unwrap();
    let next = spawn_with(&queue, move |queue| queue.receive());
    queue.send(21).unwrap();
    tasklet::run().unwrap();
    assert_eq!(doomed.result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(next.result(), Some(Ok(Ok(21))));
    assert!(queue.is_empty());
    assert_eq!(queue.waiting_receivers(), 0);
}

// ---- Across threads -----------------------------------------------------------------------

#[test]
fn lock_excludes_tasklets_on_several_threads() {
    static GROUP: CpuGroup = CpuGroup::new();
    static LOCK: Lock = Lock::new();
    static INSIDE: AtomicBool = AtomicBool::new(false);
    static ENTRIES: AtomicUsize = AtomicUsize::new(0);
    const ROUNDS: usize = 40;
    fn worker() -> Result<(), TaskletError> {
        for _ in 0..ROUNDS {
            let guard = LOCK.acquire()?;
            assert!(!INSIDE.swap(true, Ordering::SeqCst), "two holders at once");
            ENTRIES.fetch_add(1, Ordering::SeqCst);
            tasklet::schedule()?;
            INSIDE.store(false, Ordering::SeqCst);
            drop(guard);
            tasklet::schedule()?;
        }
        Ok(())
    }
    tasklet::join_group(&GROUP);
    let threads = tasklets_on_threads(&GROUP, 2, 2, worker);
    let local: Vec<_> = (0..2).map(|_| spawn(worker)).collect();
    for tasklet in &local {
        assert_eq!(tasklet.join(), Ok(Ok(())));
    }
    tasklet::leave_group();
    assert_all_threads_succeeded(threads);
    assert_eq!(ENTRIES.load(Ordering::SeqCst), 6 * ROUNDS);
    assert!(!LOCK.is_locked());
    assert_eq!(LOCK.waiting(), 0);
}

#[test]
fn queue_carries_every_value_across_threads_exactly_once() {
    static GROUP: CpuGroup = CpuGroup::new();
    static QUEUE: Queue<u64, 3> = Queue::new();
    const PER_PRODUCER: u64 = 200;
    tasklet::join_group(&GROUP);
    let producers: Vec<_> = (0..2u64)
        .map(|producer| {
            tasklet::spawn_cpu_thread(&GROUP, move || {
                let senders: Vec<_> = (0..2u64)
                    .map(|half| {
                        spawn(move || {
                            for index in 0..PER_PRODUCER / 2 {
                                let value = producer * 1_000_000 + half * 1000 + index;
                                QUEUE.send(value).map_err(|failure| failure.error)?;
                            }
                            Ok::<_, TaskletError>(())
                        })
                    })
                    .collect();
                senders
                    .iter()
                    .map(|sender| sender.join().and_then(|result| result))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            spawn(|| {
                let mut got = Vec::new();
                loop {
                    match QUEUE.receive() {
                        Ok(value) => got.push(value),
                        Err(TaskletError::Closed) => return Ok(got),
                        Err(error) => return Err(error),
                    }
                }
            })
        })
        .collect();
    let sent: Vec<_> = producers
        .into_iter()
        .flat_map(|producer| {
            // Joining an OS thread blocks this one: first let our receivers drain while waiting.
            while !producer.is_finished() {
                tasklet::sleep(Duration::from_millis(1)).unwrap();
            }
            producer.join().unwrap()
        })
        .collect();
    assert!(sent.iter().all(|result| *result == Ok(())), "{sent:?}");
    QUEUE.close();
    let mut received: Vec<u64> = Vec::new();
    for receiver in &receivers {
        received.extend(receiver.join().unwrap().unwrap());
    }
    tasklet::leave_group();
    received.sort_unstable();
    let mut expected: Vec<u64> = (0..2u64)
        .flat_map(|producer| {
            (0..2u64).flat_map(move |half| {
                (0..PER_PRODUCER / 2).map(move |index| producer * 1_000_000 + half * 1000 + index)
            })
        })
        .collect();
    expected.sort_unstable();
    assert_eq!(received, expected);
    assert!(QUEUE.is_closed());
}

#[test]
fn event_set_on_one_thread_wakes_waiters_on_others() {
    static GROUP: CpuGroup = CpuGroup::new();
    static EVENT: Event = Event::new();
    static READY: Semaphore = Semaphore::new(0);
    tasklet::join_group(&GROUP);
    let threads = tasklets_on_threads(&GROUP, 2, 3, || {
        READY.release();
        EVENT.wait()
    });
    for _ in 0..6 {
        READY.acquire().unwrap();
    }
    // Every waiter released READY just before waiting; some may not have registered yet, but
    // set() wakes the registered ones and the rest find the flag set.
    EVENT.set();
    tasklet::leave_group();
    assert_all_threads_succeeded(threads);
    assert_eq!(EVENT.waiting(), 0);
}

#[test]
fn semaphore_bounds_concurrency_across_threads() {
    static GROUP: CpuGroup = CpuGroup::new();
    static PERMITS: Semaphore = Semaphore::new(2);
    static INSIDE: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    fn worker() -> Result<(), TaskletError> {
        for _ in 0..30 {
            PERMITS.acquire()?;
            let now = INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
            MOST.fetch_max(now, Ordering::SeqCst);
            tasklet::schedule()?;
            INSIDE.fetch_sub(1, Ordering::SeqCst);
            PERMITS.release();
        }
        Ok(())
    }
    tasklet::join_group(&GROUP);
    let threads = tasklets_on_threads(&GROUP, 2, 3, worker);
    let local: Vec<_> = (0..3).map(|_| spawn(worker)).collect();
    assert!(local.iter().all(|tasklet| tasklet.join() == Ok(Ok(()))));
    tasklet::leave_group();
    assert_all_threads_succeeded(threads);
    let most = MOST.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "at most 2 holders at once, saw {most}"
    );
    assert_eq!(PERMITS.available(), 2);
}

#[test]
fn condition_hands_work_across_threads() {
    static GROUP: CpuGroup = CpuGroup::new();
    static LOCK: Lock = Lock::new();
    static CONDITION: Condition = Condition::new();
    static PENDING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    static DONE: AtomicBool = AtomicBool::new(false);
    tasklet::join_group(&GROUP);
    let consumer = tasklet::spawn_cpu_thread(&GROUP, || {
        let consumer = spawn(|| {
            let mut taken = Vec::new();
            let mut guard = LOCK.acquire()?;
            loop {
                taken.append(&mut PENDING.lock().unwrap());
                if DONE.load(Ordering::SeqCst) {
                    return Ok::<_, TaskletError>(taken);
                }
                guard = CONDITION.wait(guard)?;
            }
        });
        consumer.join().and_then(|result| result)
    });
    for value in 0..50 {
        let _guard = LOCK.acquire().unwrap();
        PENDING.lock().unwrap().push(value);
        CONDITION.notify();
        drop(_guard);
        tasklet::schedule().unwrap();
    }
    {
        let _guard = LOCK.acquire().unwrap();
        DONE.store(true, Ordering::SeqCst);
        CONDITION.notify_all();
    }
    tasklet::leave_group();
    let taken = consumer.join().unwrap().unwrap();
    assert_eq!(taken, (0..50).collect::<Vec<_>>());
}

// ---- Property test: Queue against a VecDeque model ---------------------------------------

const CAPACITY: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    TrySend,
    TryReceive,
    /// A tasklet that sends (blocking if full).
    Send,
    /// A tasklet that receives (blocking if empty).
    Receive,
    Close,
    Open,
    /// Kill the oldest blocked sender (if any).
    KillSender,
    /// Kill the oldest blocked receiver (if any).
    KillReceiver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::TrySend),
        3 => Just(Op::TryReceive),
        3 => Just(Op::Send),
        3 => Just(Op::Receive),
        1 => Just(Op::Close),
        1 => Just(Op::Open),
        1 => Just(Op::KillSender),
        1 => Just(Op::KillReceiver),
    ]
}

type SendOutcome = Result<(), (u32, TaskletError)>;

/// What the model expects of the queue after each operation, once every tasklet that can run has.
#[derive(Default)]
struct Model {
    items: VecDeque<u32>,
    closing: bool,
    /// Blocked senders: (index into `senders`, value), oldest first.
    blocked_senders: VecDeque<(usize, u32)>,
    /// Blocked receivers: index into `receivers`, oldest first.
    blocked_receivers: VecDeque<usize>,
    sender_outcomes: Vec<Option<SendOutcome>>,
    receiver_outcomes: Vec<Option<Result<u32, TaskletError>>>,
}

impl Model {
    /// Moves values into free places and to blocked receivers, as the queue's hand-offs do.
    fn settle(&mut self) {
        loop {
            if !self.closing && self.items.len() < CAPACITY {
                if let Some((sender, value)) = self.blocked_senders.pop_front() {
                    self.items.push_back(value);
                    self.sender_outcomes[sender] = Some(Ok(()));
                    continue;
                }
            }
            if !self.items.is_empty() {
                if let Some(receiver) = self.blocked_receivers.pop_front() {
                    let value = self.items.pop_front().unwrap();
                    self.receiver_outcomes[receiver] = Some(Ok(value));
                    continue;
                }
            }
            return;
        }
    }
}

fn run_program(ops: &[Op]) -> Result<(), TestCaseError> {
    let queue = Arc::new(Queue::<u32, CAPACITY>::new());
    let mut model = Model::default();
    let mut senders: Vec<JoinHandle<SendOutcome>> = Vec::new();
    let mut receivers: Vec<JoinHandle<Result<u32, TaskletError>>> = Vec::new();
    let mut next_value = 0u32;
    let mut returned = Vec::new(); // values given back to their sender
    let mut received = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::TrySend => {
                let value = next_value;
                next_value += 1;
                let outcome = queue.try_send(value);
                let expected = if model.closing {
                    Err(TrySendError::Closed(value))
                } else if model.items.len() == CAPACITY || !model.blocked_senders.is_empty() {
                    Err(TrySendError::Full(value))
                } else {
                    model.items.push_back(value);
                    Ok(())
                };
                prop_assert_eq!(outcome, expected, "step {}: {:?}", step, op);
                if outcome.is_err() {
                    returned.push(value);
                }
            }
            Op::TryReceive => {
                let outcome = queue.try_receive();
                let expected = match model.items.pop_front() {
                    Some(value) => Ok(value),
                    None if model.closing => Err(TryReceiveError::Closed),
                    None => Err(TryReceiveError::Empty),
                };
                prop_assert_eq!(outcome, expected, "step {}: {:?}", step, op);
                if let Ok(value) = outcome {
                    received.push(value);
                }
            }
            Op::Send => {
                let value = next_value;
                next_value += 1;
                let queue = queue.clone();
                senders.push(spawn(move || {
                    queue
                        .send(value)
                        .map_err(|failure| (failure.value, failure.error))
                }));
                model.sender_outcomes.push(None);
                let index = senders.len() - 1;
                if model.closing {
                    model.sender_outcomes[index] = Some(Err((value, TaskletError::Closed)));
                } else {
                    model.blocked_senders.push_back((index, value));
                }
            }
            Op::Receive => {
                let queue = queue.clone();
                receivers.push(spawn(move || queue.receive()));
                model.receiver_outcomes.push(None);
                let index = receivers.len() - 1;
                if model.items.is_empty() && model.closing {
                    model.receiver_outcomes[index] = Some(Err(TaskletError::Closed));
                } else {
                    model.blocked_receivers.push_back(index);
                }
            }
            Op::Close => {
                queue.close();
                model.closing = true;
                for (sender, value) in model.blocked_senders.drain(..) {
                    model.sender_outcomes[sender] = Some(Err((value, TaskletError::Closed)));
                }
                if model.items.is_empty() {
                    for receiver in model.blocked_receivers.drain(..) {
                        model.receiver_outcomes[receiver] = Some(Err(TaskletError::Closed));
                    }
                }
            }
            Op::Open => {
                queue.open();
                model.closing = false;
            }
            Op::KillSender => {
                if let Some((sender, value)) = model.blocked_senders.pop_front() {
                    senders[sender].kill().unwrap();
                    model.sender_outcomes[sender] = Some(Err((value, TaskletError::Killed)));
                }
            }
            Op::KillReceiver => {
                if let Some(receiver) = model.blocked_receivers.pop_front() {
                    receivers[receiver].kill().unwrap();
                    model.receiver_outcomes[receiver] = Some(Err(TaskletError::Killed));
                }
            }
        }
        model.settle();
        tasklet::run().unwrap();
        // Compare everything observable once the ring is quiet.
        prop_assert_eq!(queue.len(), model.items.len(), "step {}: {:?}", step, op);
        prop_assert_eq!(queue.is_closing(), model.closing);
        prop_assert_eq!(
            queue.waiting_senders(),
            model.blocked_senders.len(),
            "step {}: {:?}",
            step,
            op
        );
        prop_assert_eq!(
            queue.waiting_receivers(),
            model.blocked_receivers.len(),
            "step {}: {:?}",
            step,
            op
        );
        for (index, sender) in senders.iter().enumerate() {
            prop_assert_eq!(
                sender.is_alive(),
                model.sender_outcomes[index].is_none(),
                "step {}: sender {}",
                step,
                index
            );
        }
        for (index, receiver) in receivers.iter().enumerate() {
            prop_assert_eq!(
                receiver.is_alive(),
                model.receiver_outcomes[index].is_none(),
                "step {}: receiver {}",
                step,
                index
            );
        }
    }
    // Drain: close, take what is left, and check every value once.
    queue.close();
    model.closing = true;
    for (sender, value) in model.blocked_senders.drain(..) {
        model.sender_outcomes[sender] = Some(Err((value, TaskletError::Closed)));
    }
    for receiver in model.blocked_receivers.drain(..) {
        let outcome = model.items.pop_front().ok_or(TaskletError::Closed);
        model.receiver_outcomes[receiver] = Some(outcome);
    }
    tasklet::run().unwrap();
    while let Ok(value) = queue.try_receive() {
        prop_assert_eq!(Some(value), model.items.pop_front());
        received.push(value);
    }
    prop_assert!(model.items.is_empty());
    for (index, sender) in senders.iter().enumerate() {
        let outcome = sender.result().unwrap().unwrap();
        prop_assert_eq!(
            Some(outcome),
            model.sender_outcomes[index],
            "sender {}",
            index
        );
        if let Err((value, _)) = outcome {
            returned.push(value);
        }
    }
    for (index, receiver) in receivers.iter().enumerate() {
        let outcome = receiver.result().unwrap().unwrap();
        prop_assert_eq!(
            Some(outcome),
            model.receiver_outcomes[index],
            "receiver {}",
            index
        );
        if let Ok(value) = outcome {
            received.push(value);
        }
    }
    // Every value was received exactly once or given back to its sender, and nothing else.
    let mut all: Vec<u32> = received.iter().chain(&returned).copied().collect();
    all.sort_unstable();
    prop_assert_eq!(all, (0..next_value).collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn queue_behaves_like_a_vecdeque(ops in proptest::collection::vec(op(), 1..40)) {
        run_program(&ops)?;
    }
}

// ---- Regressions: waits these primitives rely on are served while other tasklets yield -----

/// Loops `schedule()` until `done` is set; false if 300 ms pass first.
fn yield_until(done: &AtomicBool) -> bool {
    let start = std::time::Instant::now();
    while !done.load(Ordering::SeqCst) {
        if start.elapsed() > Duration::from_millis(300) {
            return false;
        }
        tasklet::schedule().unwrap();
    }
    true
}

/// Timers once fired only when the running tasklet was alone in its ring or the ring was empty:
/// one tasklet that kept yielding while main was in `run()` starved every sleeper and timeout.
#[test]
fn a_sleeper_wakes_while_another_tasklet_keeps_yielding() {
    static DONE: AtomicBool = AtomicBool::new(false);
    spawn(|| {
        tasklet::sleep(Duration::from_millis(1)).unwrap();
        DONE.store(true, Ordering::SeqCst);
    });
    let yielder = spawn(|| yield_until(&DONE));
    tasklet::run().unwrap();
    assert_eq!(yielder.result(), Some(Ok(true)), "the sleeper starved");
}

/// Wake-ups from other CPUs wait in the inbox, once drained only when timers fired: two tasklets
/// yielding to each other starved a tasklet whose partner on another thread had already met it
/// (delaying a Lock, Event or Queue hand-off from another CPU indefinitely).
#[test]
fn a_cross_cpu_wake_up_is_served_while_two_tasklets_keep_yielding() {
    static GROUP: CpuGroup = CpuGroup::new();
    static EVENT: Event = Event::new();
    static DONE: AtomicBool = AtomicBool::new(false);
    tasklet::join_group(&GROUP);
    spawn(|| {
        EVENT.wait().unwrap();
        DONE.store(true, Ordering::SeqCst);
    });
    tasklet::schedule().unwrap();
    let setter = tasklet::spawn_cpu_thread(&GROUP, || EVENT.set());
    let yielders: Vec<_> = (0..2).map(|_| spawn(|| yield_until(&DONE))).collect();
    let outcomes: Vec<_> = yielders.iter().map(|yielder| yielder.join()).collect();
    tasklet::leave_group();
    assert_eq!(setter.join().unwrap(), 1);
    assert_eq!(outcomes, [Ok(true), Ok(true)], "the woken waiter starved");
}
