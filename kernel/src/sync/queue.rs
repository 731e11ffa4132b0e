//! A bounded buffered channel: a FIFO of up to `N` values in fixed storage.

use super::waiters::{Waiters, Woken};
use crate::channel::SendError;
use crate::tasklet::waiter::Grant;
use crate::tasklet::TaskletError;
use crate::time::Deadline;
use core::time::Duration;
use heapless::Deque;

/// Why [`Queue::try_send`] did not take a value; the value comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is full (every free place is promised to a waiting sender).
    Full(T),
    /// The queue is closing.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Closed(value) => value,
        }
    }
}

/// Why [`Queue::try_receive`] returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryReceiveError {
    /// Nothing to take now (every queued value is promised to a waiting receiver).
    Empty,
    /// The queue is closing and holds nothing more to take.
    Closed,
}

/// A bounded FIFO channel of up to `N` values (stacklesslib's buffered channel), on one CPU or
/// across CPUs. The values live in a [`heapless::Deque`] inside the queue: it never allocates.
///
/// [`Queue::send`] blocks the tasklet while the queue is full, [`Queue::receive`] while it is
/// empty. Blocked senders and receivers are served in FIFO order: a freed place or a new value is
/// promised to the longest waiter, so a newcomer's `try_send`/`try_receive` cannot take it.
///
/// # Closing
/// [`Queue::close`] makes sends fail with [`TaskletError::Closed`] (their values come back) and
/// wakes the blocked senders with that error. Receivers still take what is queued; once it is
/// empty, receives fail with `Closed` too. [`Queue::open`] undoes a close.
///
/// Nothing is lost: a send that fails returns its value in [`SendError`], and a receive that
/// fails takes nothing out.
pub struct Queue<T, const N: usize> {
    state: spin::Mutex<QueueState<T, N>>,
    /// Senders waiting for a free place.
    senders: Waiters,
    /// Receivers waiting for a value.
    receivers: Waiters,
}

struct QueueState<T, const N: usize> {
    items: Deque<T, N>,
    closing: bool,
}

impl<T, const N: usize> core::fmt::Debug for Queue<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Queue")
            .field("len", &state.items.len())
            .field("capacity", &N)
            .field("closing", &state.closing)
            .field("waiting_senders", &self.senders.ungranted())
            .field("waiting_receivers", &self.receivers.ungranted())
            .finish()
    }
}

impl<T: Send, const N: usize> Default for Queue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send, const N: usize> Queue<T, N> {
    const NOT_EMPTY: () = assert!(N > 0, "a queue needs room for at least one value");

    /// An empty open queue. `N` must be at least 1 (checked at compile time).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NOT_EMPTY;
        Self {
            state: spin::Mutex::new(QueueState {
                items: Deque::new(),
                closing: false,
            }),
            senders: Waiters::new(),
            receivers: Waiters::new(),
        }
    }

    /// Most values the queue holds.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Values queued now.
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// Whether no value is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `N` values.
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// Senders blocked on a full queue (and not yet promised a place).
    pub fn waiting_senders(&self) -> usize {
        let _state = self.state.lock();
        self.senders.ungranted()
    }

    /// Receivers blocked on an empty queue (and not yet promised a value).
    pub fn waiting_receivers(&self) -> usize {
        let _state = self.state.lock();
        self.receivers.ungranted()
    }

    /// Marks the queue closing: sends fail from now on and blocked senders are woken with
    /// [`TaskletError::Closed`]; receivers drain what is queued, then fail with `Closed`.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closing = true;
        let senders = self.senders.grant_all();
        let receivers = self.receivers.grant_all();
        drop(state);
        senders.hand_over();
        receivers.hand_over();
    }

    /// Reopens a closing queue.
    pub fn open(&self) {
        self.state.lock().closing = false;
    }

    /// Whether [`Queue::close`] was called (and not undone by [`Queue::open`]).
    pub fn is_closing(&self) -> bool {
        self.state.lock().closing
    }

    /// Whether the queue is closing and empty: no receive can succeed any more.
    pub fn is_closed(&self) -> bool {
        let state = self.state.lock();
        state.closing && state.items.is_empty()
    }

    /// Free places not promised to a woken sender (the state lock held).
    fn free_places(&self, state: &QueueState<T, N>) -> usize {
        (N - state.items.len()).saturating_sub(self.senders.granted())
    }

    /// Queued values not promised to a woken receiver (the state lock held).
    fn free_items(&self, state: &QueueState<T, N>) -> usize {
        state.items.len().saturating_sub(self.receivers.granted())
    }

    /// After a value arrived: promise it to a waiting receiver if one has no promise yet (the
    /// state lock held; hand the grant over once it is released).
    fn wake_receiver(&self, state: &QueueState<T, N>) -> Grant<'_> {
        if self.free_items(state) > 0 {
            self.receivers.grant()
        } else {
            Grant::Nobody
        }
    }

    /// After a place freed up: promise it to a waiting sender if one has no promise yet (as
    /// [`Queue::wake_receiver`]).
    fn wake_sender(&self, state: &QueueState<T, N>) -> Grant<'_> {
        if !state.closing && self.free_places(state) > 0 {
            self.senders.grant()
        } else {
            Grant::Nobody
        }
    }

    /// Queues `value` if there is a free place; never blocks.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.state.lock();
        if state.closing {
            return Err(TrySendError::Closed(value));
        }
        if self.free_places(&state) == 0 {
            return Err(TrySendError::Full(value));
        }
        if let Err(value) = state.items.push_back(value) {
            return Err(TrySendError::Full(value));
        }
        let wake = self.wake_receiver(&state);
        drop(state);
        wake.hand_over();
        Ok(())
    }

    /// Queues `value`, blocking the current tasklet while the queue is full. On failure
    /// (closing, killed, thrown into, deadlock) the value comes back in the error.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_by(value, None)
    }

    /// Like [`Queue::send`], giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_by(value, Some(Deadline::after(timeout)))
    }

    /// Like [`Queue::send`], giving up at `deadline_ns` on the platform clock (a
    /// [`Deadline::as_ns`]).
    pub fn send_until(&self, value: T, deadline_ns: Option<u64>) -> Result<(), SendError<T>> {
        self.send_by(value, deadline_ns.map(Deadline::at_ns))
    }

    fn send_by(&self, value: T, deadline: Option<Deadline>) -> Result<(), SendError<T>> {
        let mut value = value;
        let mut state = self.state.lock();
        loop {
            if state.closing {
                return Err(SendError {
                    value,
                    error: TaskletError::Closed,
                });
            }
            // A place is ours if one is free, or was promised to us by the wake-up just taken.
            if self.free_places(&state) > 0 {
                match state.items.push_back(value) {
                    Ok(()) => {
                        let wake = self.wake_receiver(&state);
                        drop(state);
                        wake.hand_over();
                        return Ok(());
                    }
                    Err(back) => value = back,
                }
            }
            self.senders.register();
            let (relocked, woken) = self.senders.wait(state, || self.state.lock(), deadline);
            state = relocked;
            match woken {
                Woken::Granted => {}
                Woken::Failed(error) => return Err(SendError { value, error }),
                Woken::Aborted(error) => {
                    // Promised a place while leaving: promise it to the next sender.
                    let wake = self.wake_sender(&state);
                    drop(state);
                    wake.hand_over();
                    return Err(SendError { value, error });
                }
            }
        }
    }

    /// Takes the oldest value if one is free to take; never blocks.
    pub fn try_receive(&self) -> Result<T, TryReceiveError> {
        let mut state = self.state.lock();
        if self.free_items(&state) == 0 {
            return Err(if state.closing && state.items.is_empty() {
                TryReceiveError::Closed
            } else {
                TryReceiveError::Empty
            });
        }
        match state.items.pop_front() {
            Some(value) => {
                let wake = self.wake_sender(&state);
                drop(state);
                wake.hand_over();
                Ok(value)
            }
            None => Err(TryReceiveError::Empty),
        }
    }

    /// Takes the oldest value, blocking the current tasklet while the queue is empty. Fails
    /// with [`TaskletError::Closed`] once the queue is closing and empty, or if the tasklet is
    /// killed, thrown into, or would deadlock.
    pub fn receive(&self) -> Result<T, TaskletError> {
        self.receive_by(None)
    }

    /// Like [`Queue::receive`], giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<T, TaskletError> {
        self.receive_by(Some(Deadline::after(timeout)))
    }

    /// Like [`Queue::receive`], giving up at `deadline_ns` on the platform clock (a
    /// [`Deadline::as_ns`]).
    pub fn receive_until(&self, deadline_ns: Option<u64>) -> Result<T, TaskletError> {
        self.receive_by(deadline_ns.map(Deadline::at_ns))
    }

    fn receive_by(&self, deadline: Option<Deadline>) -> Result<T, TaskletError> {
        let mut state = self.state.lock();
        loop {
            // A value is ours if one is free, or was promised to us by the wake-up just taken.
            if self.free_items(&state) > 0 {
                if let Some(value) = state.items.pop_front() {
                    let wake = self.wake_sender(&state);
                    drop(state);
                    wake.hand_over();
                    return Ok(value);
                }
            }
            if state.closing {
                return Err(TaskletError::Closed);
            }
            self.receivers.register();
            let (relocked, woken) = self.receivers.wait(state, || self.state.lock(), deadline);
            state = relocked;
            match woken {
                Woken::Granted => {}
                Woken::Failed(error) => return Err(error),
                Woken::Aborted(error) => {
                    // Promised a value while leaving: promise it to the next receiver.
                    let wake = self.wake_receiver(&state);
                    drop(state);
                    wake.hand_over();
                    return Err(error);
                }
            }
        }
    }
}
