//! `call_async`: blocking calls run on a fixed pool of worker CPUs while the caller waits.
//!
//! A [`WorkerPool`] owns `JOBS` job slots and a queue of them, all in fixed storage, and is served
//! by up to `WORKERS` worker CPUs, each running [`WorkerPool::worker_loop`]. A tasklet calling
//! [`WorkerPool::call_async`] puts its closure in a free slot and waits for that slot's result;
//! other tasklets of its CPU run meanwhile. A worker runs the closure (it may block its CPU, e.g.
//! a driver call), leaves the result in the slot and wakes the caller.
//!
//! # Limits and errors
//! - The pool never grows. A call finding every slot taken (queued or running) fails at once
//!   with [`CallError::Full`]: back-pressure is the caller's choice (retry, sleep, give up).
//! - A job's closure is moved into one allocation made fallibly ([`CallError::OutOfMemory`]).
//! - A job that panics (hosted builds catch it) fails the call with [`CallError::Panicked`]; the
//!   worker lives on.
//! - A caller killed, thrown into or timed out while its job runs gets
//!   [`CallError::Interrupted`]; the job still runs to its end (a blocking call cannot be
//!   stopped from outside) and its result is dropped then, freeing the slot. A job still queued
//!   is cancelled unrun.
//! - While a call is in flight the pool's [`CpuGroup`] counts it as outside work
//!   ([`CpuGroup::begin_external`]), so the caller's CPU idles instead of declaring deadlock.
//!   Callers must run on CPUs of that group.
//!
//! # Worker CPUs
//! The pool parks and wakes workers through a small trait, [`WorkerCpus`]. Hosted builds use
//! `ThreadCpus` and `WorkerPool::start_threads` (feature `std`; one OS thread per worker). A
//! board uses [`PlatformCpus`] (the platform's `idle` and `wake_cpu`) and runs `worker_loop` on
//! secondary CPUs, started with `tasklet::start_cpu`; the CPUs that call into the pool join its
//! group first. Bare metal only, so not a doc-test here; the on-target `sync` suite
//! (`tests/src/sync.rs`, `call_async_on_a_worker_cpu`) runs this pattern:
//!
//! ```text
//! static GROUP: CpuGroup = CpuGroup::new();
//! static POOL: WorkerPool<PlatformCpus, 1, 8> = WorkerPool::new(PlatformCpus, &GROUP);
//! fn worker_cpu(_cpu: usize) -> ! {
//!     irq::enable();
//!     let outcome = POOL.worker_loop(); // returns only after POOL.shutdown()
//!     panic!("worker loop ended: {outcome:?}");
//! }
//! tasklet::join_group(&GROUP);
//! tasklet::start_cpu(1, worker_cpu)?;
//! let cpu = POOL.call_async(|| blocking_driver_call());
//! ```
//!
//! A worker takes itself out of its own CPU group, so a worker CPU never keeps its group from
//! detecting a deadlock.

use super::waiters::{Waiters, Woken};
use crate::tasklet::{CpuGroup, TaskletError};
use crate::time::Deadline;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;
use heapless::Deque;

/// Why [`WorkerPool::call_async`] did not return the job's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallError {
    /// Every job slot is taken (queued or running): the closure was dropped unrun.
    Full,
    /// No memory for the closure: it was dropped unrun.
    OutOfMemory,
    /// The job panicked (hosted builds); the worker survived.
    Panicked,
    /// The caller's wait ended with this error (killed, thrown into, timed out). A running job
    /// finishes on its worker and its result is dropped; a queued one is dropped unrun.
    Interrupted(TaskletError),
    /// The pool was shut down: the closure was dropped unrun.
    ShutDown,
    /// No worker has entered [`WorkerPool::worker_loop`]: nothing could run the job.
    NoWorkers,
    /// [`WorkerPool::worker_loop`] was entered by more workers than the pool has places for.
    TooManyWorkers,
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Full => f.write_str("every job slot of the worker pool is taken"),
            Self::OutOfMemory => f.write_str("out of memory for the job"),
            Self::Panicked => f.write_str("the job panicked"),
            Self::Interrupted(error) => write!(f, "wait for the job interrupted: {error}"),
            Self::ShutDown => f.write_str("the worker pool is shut down"),
            Self::NoWorkers => f.write_str("the worker pool has no workers"),
            Self::TooManyWorkers => f.write_str("the worker pool has no place for another worker"),
        }
    }
}

impl core::error::Error for CallError {}

impl From<TaskletError> for CallError {
    fn from(error: TaskletError) -> Self {
        Self::Interrupted(error)
    }
}

/// How a pool parks an idle worker and wakes it: the part of a worker CPU that differs between
/// boards and hosts.
pub trait WorkerCpus: Sync {
    /// An identifier of the calling worker, passed back to [`WorkerCpus::unpark`].
    fn current(&self) -> usize;
    /// Parks the calling worker until [`WorkerCpus::unpark`] names it. Must return at once if
    /// it was named since its last park; spurious returns are allowed.
    fn park(&self);
    /// Ends the park of worker `id` (or makes its next park return at once).
    fn unpark(&self, id: usize);
}

/// Worker CPUs parked through the installed [`Platform`](crate::platform::Platform): `idle`
/// until `wake_cpu` (bare metal: secondary CPUs; also works hosted, with polling idles).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlatformCpus;

impl WorkerCpus for PlatformCpus {
    fn current(&self) -> usize {
        crate::platform::platform().cpu_index()
    }

    fn park(&self) {
        crate::platform::platform().idle(None);
    }

    fn unpark(&self, id: usize) {
        crate::platform::platform().wake_cpu(id);
    }
}

#[cfg(any(test, feature = "std"))]
pub use threads::ThreadCpus;

#[cfg(any(test, feature = "std"))]
mod threads {
    extern crate std;
    use super::{CallError, WorkerCpus, WorkerPool};
    use core::sync::atomic::Ordering;
    use std::sync::Mutex;
    use std::thread::Thread;
    use std::vec::Vec;

    /// Worker CPUs that are OS threads, parked with `std::thread::park` (hosted builds). Start
    /// them with [`WorkerPool::start_threads`].
    #[derive(Debug, Default)]
    pub struct ThreadCpus {
        threads: Mutex<Vec<Thread>>,
    }

    impl ThreadCpus {
        /// No threads yet.
        pub const fn new() -> Self {
            Self {
                threads: Mutex::new(Vec::new()),
            }
        }
    }

    impl WorkerCpus for ThreadCpus {
        fn current(&self) -> usize {
            let me = std::thread::current();
            let mut threads = self
                .threads
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            match threads.iter().position(|thread| thread.id() == me.id()) {
                Some(index) => index,
                None => {
                    threads.push(me);
                    threads.len() - 1
                }
            }
        }

        fn park(&self) {
            std::thread::park();
        }

        fn unpark(&self, id: usize) {
            let threads = self
                .threads
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if let Some(thread) = threads.get(id) {
                thread.unpark();
            }
        }
    }

    impl<const WORKERS: usize, const JOBS: usize> WorkerPool<ThreadCpus, WORKERS, JOBS> {
        /// Starts `WORKERS` OS threads running [`WorkerPool::worker_loop`] and returns once all
        /// serve the pool (each thread's handle returns its loop's outcome after
        /// [`WorkerPool::shutdown`]). Fails with [`CallError::TooManyWorkers`] if workers were
        /// started already.
        #[allow(clippy::type_complexity)]
        pub fn start_threads(
            &'static self,
        ) -> Result<Vec<std::thread::JoinHandle<Result<(), CallError>>>, CallError> {
            if self.registered.load(Ordering::Acquire) != 0 {
                return Err(CallError::TooManyWorkers);
            }
            let handles: Vec<_> = (0..WORKERS)
                .map(|_| std::thread::spawn(move || self.worker_loop()))
                .collect();
            while self.workers() < WORKERS && !handles.iter().any(|handle| handle.is_finished()) {
                std::thread::yield_now();
            }
            Ok(handles)
        }
    }
}

/// One job: a closure and, once run, its outcome. Boxed as a one-element array so the box can
/// be made with a fallible reservation.
struct JobCell<F, R> {
    body: Option<F>,
    outcome: Option<Result<R, CallError>>,
}

trait Job: Send {
    fn run(&mut self);
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<F, R> Job for [JobCell<F, R>; 1]
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(&mut self) {
        let [cell] = self;
        if let Some(body) = cell.body.take() {
            cell.outcome = Some(run_catching(body));
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

#[cfg(any(test, feature = "std"))]
fn run_catching<R>(body: impl FnOnce() -> R) -> Result<R, CallError> {
    extern crate std;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).map_err(|_| CallError::Panicked)
}

#[cfg(not(any(test, feature = "std")))]
fn run_catching<R>(body: impl FnOnce() -> R) -> Result<R, CallError> {
    Ok(body())
}

/// Boxes `value` with a fallible allocation; gives it back if there is no memory.
fn try_box<T>(value: T) -> Result<Box<[T; 1]>, T> {
    let mut storage = Vec::new();
    if storage.try_reserve_exact(1).is_err() {
        return Err(value);
    }
    storage.push(value);
    match <Box<[T; 1]>>::try_from(storage.into_boxed_slice()) {
        Ok(boxed) => Ok(boxed),
        // One element went in, so the conversion to a one-element array cannot fail.
        Err(_) => unreachable!("a one-element slice converts to [T; 1]"),
    }
}

enum JobState {
    Free,
    Queued(Box<dyn Job>),
    Running,
    Done(Box<dyn Job>),
    /// Queued, but the caller left: the worker that dequeues it frees the slot.
    Cancelled,
    /// Running, but the caller left: the worker drops the result and frees the slot.
    Abandoned,
}

struct SlotState {
    job: JobState,
}

struct Slot {
    state: spin::Mutex<SlotState>,
    done: Waiters,
}

impl Slot {
    const fn new() -> Self {
        Self {
            state: spin::Mutex::new(SlotState {
                job: JobState::Free,
            }),
            done: Waiters::new(),
        }
    }
}

struct JobQueue<const JOBS: usize> {
    slots: Deque<usize, JOBS>,
    shutdown: bool,
    /// Workers inside `worker_loop`.
    active: usize,
}

/// A fixed pool of worker CPUs running blocking calls for tasklets; see the [module
/// docs](self). Up to `WORKERS` workers serve it and up to `JOBS` jobs are queued or running at
/// once.
pub struct WorkerPool<C: WorkerCpus, const WORKERS: usize, const JOBS: usize> {
    cpus: C,
    group: &'static CpuGroup,
    slots: [Slot; JOBS],
    queue: spin::Mutex<JobQueue<JOBS>>,
    /// Parked workers' identifiers.
    parked: spin::Mutex<heapless::Vec<usize, WORKERS>>,
    /// Workers that ever entered `worker_loop` (places taken).
    registered: AtomicUsize,
    shutdown: AtomicBool,
}

impl<C: WorkerCpus, const WORKERS: usize, const JOBS: usize> core::fmt::Debug
    for WorkerPool<C, WORKERS, JOBS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers())
            .field("queued", &self.queued())
            .field("jobs", &JOBS)
            .finish()
    }
}

/// Keeps the group's outside-work count raised while a call is in flight.
struct External(&'static CpuGroup);

impl External {
    fn begin(group: &'static CpuGroup) -> Self {
        group.begin_external();
        Self(group)
    }
}

impl Drop for External {
    fn drop(&mut self) {
        self.0.end_external();
    }
}

impl<C: WorkerCpus, const WORKERS: usize, const JOBS: usize> WorkerPool<C, WORKERS, JOBS> {
    const VALID: () = assert!(
        WORKERS > 0 && JOBS > 0,
        "a worker pool needs a worker and a job slot"
    );

    /// A pool whose callers run on CPUs of `group`. `WORKERS` and `JOBS` must be at least 1
    /// (checked at compile time).
    pub const fn new(cpus: C, group: &'static CpuGroup) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        Self {
            cpus,
            group,
            slots: [const { Slot::new() }; JOBS],
            queue: spin::Mutex::new(JobQueue {
                slots: Deque::new(),
                shutdown: false,
                active: 0,
            }),
            parked: spin::Mutex::new(heapless::Vec::new()),
            registered: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
        }
    }

    /// Workers serving the pool now (inside [`WorkerPool::worker_loop`]).
    pub fn workers(&self) -> usize {
        self.queue.lock().active
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queue.lock().slots.len()
    }

    /// The worker CPUs.
    pub fn cpus(&self) -> &C {
        &self.cpus
    }

    /// Runs `job` on a worker and blocks the current tasklet until it returns; other tasklets of
    /// this CPU run meanwhile. See [`CallError`] for the ways it can fail.
    pub fn call_async<F, R>(&self, job: F) -> Result<R, CallError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.call_until(job, None)
    }

    /// Like [`WorkerPool::call_async`], but the caller stops waiting after `timeout`
    /// ([`CallError::Interrupted`] with [`TaskletError::TimedOut`]).
    pub fn call_async_timeout<F, R>(&self, job: F, timeout: Duration) -> Result<R, CallError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.call_until(job, Some(Deadline::after(timeout)))
    }

    fn call_until<F, R>(&self, job: F, deadline: Option<Deadline>) -> Result<R, CallError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(CallError::ShutDown);
        }
        let cell = JobCell::<F, R> {
            body: Some(job),
            outcome: None,
        };
        let boxed: Box<dyn Job> = try_box(cell).map_err(|_| CallError::OutOfMemory)?;
        let (index, slot) = self.claim_slot(boxed)?;
        let external = External::begin(self.group);
        if let Err(error) = self.enqueue(index) {
            let mut state = slot.state.lock();
            let job = core::mem::replace(&mut state.job, JobState::Free);
            slot.done.unregister();
            drop(state);
            drop(job);
            return Err(error);
        }
        self.unpark_one();
        let (mut state, woken) = slot.done.wait((), || slot.state.lock(), deadline);
        let outcome = match woken {
            Woken::Granted => match core::mem::replace(&mut state.job, JobState::Free) {
                JobState::Done(job) => Ok(job),
                other => {
                    // Cannot happen: a wake-up is only granted once the job is done.
                    state.job = other;
                    Err(CallError::Panicked)
                }
            },
            Woken::Failed(error) => {
                let left = match core::mem::replace(&mut state.job, JobState::Free) {
                    JobState::Queued(job) => {
                        state.job = JobState::Cancelled;
                        Some(job)
                    }
                    JobState::Running => {
                        state.job = JobState::Abandoned;
                        None
                    }
                    JobState::Done(job) => Some(job),
                    other => {
                        state.job = other;
                        None
                    }
                };
                drop(state);
                drop(left);
                return Err(CallError::Interrupted(error));
            }
            Woken::Aborted(error) => {
                let left = core::mem::replace(&mut state.job, JobState::Free);
                drop(state);
                drop(left);
                return Err(CallError::Interrupted(error));
            }
        };
        drop(state);
        drop(external);
        let job = outcome?;
        match job.into_any().downcast::<[JobCell<F, R>; 1]>() {
            Ok(cell) => {
                let [cell] = *cell;
                cell.outcome.unwrap_or(Err(CallError::Panicked))
            }
            Err(_) => unreachable!("a slot hands back the job its caller put in"),
        }
    }

    /// Puts `job` into a free slot, registering the caller as its waiter.
    fn claim_slot(&self, job: Box<dyn Job>) -> Result<(usize, &Slot), CallError> {
        for (index, slot) in self.slots.iter().enumerate() {
            let mut state = slot.state.lock();
            if matches!(state.job, JobState::Free) {
                state.job = JobState::Queued(job);
                slot.done.register();
                return Ok((index, slot));
            }
        }
        Err(CallError::Full)
    }

    fn enqueue(&self, index: usize) -> Result<(), CallError> {
        let mut queue = self.queue.lock();
        if queue.shutdown {
            return Err(CallError::ShutDown);
        }
        if queue.active == 0 {
            return Err(CallError::NoWorkers);
        }
        // Each slot is queued at most once and only while claimed, so the queue has room.
        queue.slots.push_back(index).map_err(|_| CallError::Full)
    }

    fn unpark_one(&self) {
        let parked = self.parked.lock().pop();
        if let Some(id) = parked {
            self.cpus.unpark(id);
        }
    }

    /// Serves the pool on the calling CPU: runs queued jobs, parking while there are none.
    /// Returns after [`WorkerPool::shutdown`] once the queue is empty, or at once with
    /// [`CallError::TooManyWorkers`] when `WORKERS` workers have entered already. A bare-metal
    /// board calls it on each worker CPU and never shuts the pool down.
    pub fn worker_loop(&self) -> Result<(), CallError> {
        if self.registered.fetch_add(1, Ordering::AcqRel) >= WORKERS {
            self.registered.fetch_sub(1, Ordering::AcqRel);
            return Err(CallError::TooManyWorkers);
        }
        // A worker waits outside the scheduler: it must not count as a CPU of any group.
        crate::tasklet::leave_group();
        self.queue.lock().active += 1;
        loop {
            let next = {
                let mut queue = self.queue.lock();
                match queue.slots.pop_front() {
                    Some(index) => Some(index),
                    None if queue.shutdown => {
                        queue.active -= 1;
                        return Ok(());
                    }
                    None => None,
                }
            };
            match next {
                Some(index) => self.run_slot(index),
                None => self.park(),
            }
        }
    }

    fn park(&self) {
        let me = self.cpus.current();
        if self.parked.lock().push(me).is_err() {
            // More parkers than places cannot happen (one per worker); just poll.
            core::hint::spin_loop();
            return;
        }
        let pending = {
            let queue = self.queue.lock();
            !queue.slots.is_empty() || queue.shutdown
        };
        if !pending {
            self.cpus.park();
        }
        self.parked.lock().retain(|&id| id != me);
    }

    fn run_slot(&self, index: usize) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let job = {
            let mut state = slot.state.lock();
            match core::mem::replace(&mut state.job, JobState::Running) {
                JobState::Queued(job) => job,
                JobState::Cancelled => {
                    state.job = JobState::Free;
                    return;
                }
                other => {
                    state.job = other;
                    return;
                }
            }
        };
        let mut job = job;
        job.run();
        let mut state = slot.state.lock();
        if matches!(state.job, JobState::Abandoned) {
            state.job = JobState::Free;
            drop(state);
            drop(job);
            return;
        }
        state.job = JobState::Done(job);
        let wake = slot.done.grant();
        drop(state);
        wake.hand_over();
    }

    /// Stops the pool: later calls fail with [`CallError::ShutDown`]; workers finish the queued
    /// jobs, then leave [`WorkerPool::worker_loop`].
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.queue.lock().shutdown = true;
        let parked: heapless::Vec<usize, WORKERS> = core::mem::take(&mut *self.parked.lock());
        for id in parked {
            self.cpus.unpark(id);
        }
    }
}
