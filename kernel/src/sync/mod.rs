//! Synchronisation for tasklets: locks, events, semaphores, conditions, queues.
//!
//! ```
//! use spindle::sync::{Event, Queue};
//! use spindle::tasklet::{self, TaskletError};
//!
//! static JOBS: Queue<u32, 2> = Queue::new(); // room for two values, inside the queue itself
//! static START: Event = Event::new();
//!
//! let producer = tasklet::spawn(|| -> Result<(), TaskletError> {
//!     START.wait()?; // blocks this tasklet until the event is set
//!     for job in 1..=5 {
//!         JOBS.send(job).map_err(|failure| failure.error)?; // blocks while the queue is full
//!     }
//!     JOBS.close(); // receivers take what is queued, then get `Closed`
//!     Ok(())
//! })?;
//! let consumer = tasklet::spawn(|| {
//!     let mut total = 0;
//!     loop {
//!         match JOBS.receive() {
//!             Ok(job) => total += job,
//!             Err(error) => return (total, error),
//!         }
//!     }
//! })?;
//! tasklet::schedule()?; // both run until they block: one on the event, one on the queue
//! assert_eq!((START.waiting(), JOBS.waiting_receivers()), (1, 1));
//! START.set();
//! tasklet::run()?;
//! assert_eq!(consumer.result(), Some(Ok((15, TaskletError::Closed))));
//! assert_eq!(producer.result(), Some(Ok(Ok(()))));
//! assert!(JOBS.is_closed());
//! # Ok::<(), TaskletError>(())
//! ```
//!
//! Like stacklesslib's, these primitives block the *tasklet*, not the CPU: a waiter blocks in the
//! scheduler's wait queue of the primitive (the kernel's one wake primitive, the one the socket
//! layer's parked calls use too) and other tasklets run meanwhile. Their state sits behind a
//! [`spin::Mutex`], so they work across CPUs (threads in hosted builds): a tasklet on one CPU can
//! release a lock another CPU's tasklet waits for, and the waiter is woken on its own CPU.
//!
//! Every blocking call returns `Result<_, TaskletError>`: a kill, a throw, a timeout or a deadlock
//! ends the wait with that error and leaves the primitive consistent (a waiter that leaves takes
//! nothing with it and passes on anything handed to it as it left). Nothing is lost: a value
//! whose send fails comes back to the caller.
//!
//! [`call_async`] runs blocking calls on a fixed pool of worker CPUs while the calling tasklet
//! waits for the result.
#![forbid(unsafe_code)]

pub mod call_async;
mod condition;
mod event;
mod lock;
mod queue;
mod semaphore;
mod waiters;

#[cfg(any(test, feature = "std"))]
pub use call_async::ThreadCpus;
pub use call_async::{CallError, PlatformCpus, WorkerCpus, WorkerPool};
pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use queue::{Queue, TryReceiveError, TrySendError};
pub use semaphore::Semaphore;
