//! Lock, Event and Queue on one CPU, run by the host suite (`kernel/tests/sync.rs`) and the
//! on-target suite (`tests/src/sync.rs`).

use crate::platform::platform;
use crate::sync::{Event, Lock, Queue};
use crate::tasklet::{self, Builder, JoinHandle, TaskletError};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

/// Spawns with a roomy stack: unoptimised PowerPC64 builds have big frames around formatting.
#[inline]
pub fn spawn<F, R>(body: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new()
        .stack_size(64 * 1024)
        .spawn(body)
        .expect("spawn")
}

/// Spawns a tasklet running `body` on a shared `S`.
#[inline]
pub fn spawn_with<S, R, F>(shared: &Arc<S>, body: F) -> JoinHandle<R>
where
    S: Send + Sync + 'static,
    R: Send + 'static,
    F: FnOnce(&S) -> R + Send + 'static,
{
    let shared = shared.clone();
    spawn(move || body(&shared))
}

/// Ids noted by tasklets, in the order they noted them.
pub type Log = spin::Mutex<Vec<u32>>;

/// Spawns tasklets 0, 1, ... `count - 1`, each running `body(shared, id, log)`.
#[inline]
pub fn spawn_each<S: Send + Sync + 'static>(
    shared: &Arc<S>,
    log: &Arc<Log>,
    count: u32,
    body: fn(&S, u32, &Log) -> Result<(), TaskletError>,
) -> Vec<JoinHandle<Result<(), TaskletError>>> {
    (0..count)
        .map(|id| {
            let (shared, log) = (shared.clone(), log.clone());
            spawn(move || body(&shared, id, &log))
        })
        .collect()
}

/// Whether every tasklet has finished and returned `Ok(())`.
#[inline]
pub fn all_succeeded(tasklets: &[JoinHandle<Result<(), TaskletError>>]) -> bool {
    tasklets
        .iter()
        .all(|tasklet| tasklet.result() == Some(Ok(Ok(()))))
}

/// `waiters` tasklets block on a lock main holds; its release hands the lock to the first of
/// them (main cannot take it back), and they get it in the order they asked.
#[inline]
pub fn lock_waiters_are_served_in_fifo_order(waiters: u32) {
    let lock = Arc::new(Lock::new());
    let order = Arc::new(Log::new(Vec::new()));
    let held = lock.acquire().expect("main takes the free lock");
    let tasklets = spawn_each(&lock, &order, waiters, |lock, id, order| {
        let guard = lock.acquire()?;
        order.lock().push(id);
        tasklet::schedule()?;
        drop(guard);
        Ok(())
    });
    tasklet::schedule().expect("let the waiters block");
    assert_eq!(lock.waiting(), waiters as usize);
    drop(held);
    // Handed to the first waiter, not freed: a newcomer cannot overtake.
    assert!(lock.is_locked());
    assert!(lock.try_acquire().is_none(), "handed over, not freed");
    tasklet::run().expect("run the waiters");
    assert_eq!(*order.lock(), (0..waiters).collect::<Vec<_>>());
    assert!(all_succeeded(&tasklets));
    assert!(!lock.is_locked());
    assert_eq!(lock.waiting(), 0);
    assert!(lock.try_acquire().is_some());
}

/// A waiter woken with a kill pending but not yet run: the release commits the lock to it and
/// waits for it to take the hand-off; it takes it, and passes it on as it leaves (to nobody,
/// then to a second waiter).
#[inline]
pub fn a_waiter_killed_as_the_lock_is_handed_to_it_passes_the_lock_on() {
    let lock = Arc::new(Lock::new());
    let held = lock.acquire().expect("main takes the free lock");
    let doomed = spawn_with(&lock, |lock| lock.acquire().map(drop));
    tasklet::schedule().expect("let the waiter block");
    doomed.kill_pending().expect("kill the waiter");
    drop(held);
    assert_eq!(doomed.result(), Some(Ok(Err(TaskletError::Killed))));
    assert!(!lock.is_locked());
    assert_eq!(lock.waiting(), 0);

    // The same with a second waiter: the lock goes on to it.
    let held = lock.acquire().expect("main takes the free lock again");
    let doomed = spawn_with(&lock, |lock| lock.acquire().map(drop));
    tasklet::schedule().expect("let the waiter block");
    doomed.kill_pending().expect("kill the waiter");
    let next = spawn_with(&lock, |lock| {
        let guard = lock.acquire()?;
        Ok::<_, TaskletError>(guard.lock().is_locked())
    });
    drop(held);
    tasklet::run().expect("run the waiters");
    assert_eq!(doomed.result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(next.result(), Some(Ok(Ok(true))));
    assert!(!lock.is_locked());
    assert_eq!(lock.waiting(), 0);
}

/// `waiters` tasklets wait on an event; `set` wakes them all, in the order they waited. A set
/// event lets waits through at once; cleared, waits block (and here time out).
#[inline]
pub fn event_set_wakes_every_waiter_and_clear_makes_waits_block_again(waiters: u32) {
    let event = Arc::new(Event::new());
    let woken = Arc::new(Log::new(Vec::new()));
    let tasklets = spawn_each(&event, &woken, waiters, |event, id, woken| {
        event.wait()?;
        woken.lock().push(id);
        Ok(())
    });
    tasklet::schedule().expect("let the waiters block");
    assert_eq!(event.waiting(), waiters as usize);
    assert!(woken.lock().is_empty());
    assert_eq!(event.set(), waiters as usize);
    assert!(event.is_set());
    tasklet::run().expect("run the woken waiters");
    assert_eq!(*woken.lock(), (0..waiters).collect::<Vec<_>>());
    assert!(all_succeeded(&tasklets));
    assert_eq!(event.wait(), Ok(()));
    event.clear();
    assert!(!event.is_set());
    assert_eq!(
        event.wait_timeout(Duration::from_millis(2)),
        Err(TaskletError::TimedOut)
    );
    assert_eq!(event.waiting(), 0);
    assert_eq!(event.set(), 0);
}

/// On an empty `queue` of one place: a receive gives up after `receive_timeout` (not before),
/// and a send with a timeout on the full queue gives its value back. Leaves the queue holding 1.
#[inline]
pub fn queue_timeouts_give_values_back(queue: &Queue<u32, 1>, receive_timeout: Duration) {
    let start = platform().now_ns();
    assert_eq!(
        queue.receive_timeout(receive_timeout),
        Err(TaskletError::TimedOut)
    );
    let waited = platform().now_ns() - start;
    assert!(
        u128::from(waited) >= receive_timeout.as_nanos(),
        "the receive gave up after {waited} ns, before {receive_timeout:?}"
    );
    queue.send(1).expect("send into the free place");
    let failure = queue
        .send_timeout(2, Duration::from_millis(2))
        .expect_err("the queue is full");
    assert_eq!((failure.value, failure.error), (2, TaskletError::TimedOut));
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.waiting_senders(), 0);
}
