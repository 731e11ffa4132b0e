//! Synchronisation for tasklets built on channels: locks, events, semaphores, conditions, queues.
//!
//! Like stacklesslib's, these primitives block the *tasklet*, not the CPU: a waiter blocks on a
//! [`Channel`](crate::channel::Channel) and other tasklets run meanwhile. Their state sits behind
//! a [`spin::Mutex`], so they work across CPUs (threads in hosted builds): a tasklet on one CPU can
//! release a lock another CPU's tasklet waits for.
//!
//! Every blocking call returns `Result<_, TaskletError>`: a kill, a throw, a timeout or a deadlock
//! ends the wait with that error and leaves the primitive consistent (a waiter that leaves takes
//! nothing with it and passes on anything handed to it as it left). Nothing is lost: a value
//! whose send fails comes back to the caller.
//!
//! [`call_async`] runs blocking calls on a fixed pool of worker CPUs while the calling tasklet
//! waits on a channel.
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
