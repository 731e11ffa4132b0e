//! Channels: Stackless's synchronous rendezvous between tasklets, on one CPU or across CPUs.
//!
//! ```
//! use spindle::channel::{Channel, Preference};
//! use spindle::tasklet::{self, TaskletError};
//! use std::sync::Mutex;
//!
//! static WORDS: Channel<&str> = Channel::new(); // `new` is a const fn: channels can be statics
//! static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
//!
//! fn note(line: String) {
//!     LOG.lock().unwrap().push(line);
//! }
//!
//! let receiver = tasklet::spawn(|| -> Result<(), TaskletError> {
//!     for _ in 0..2 {
//!         let word = WORDS.receive()?; // blocks this tasklet until a sender comes
//!         note(format!("got {word}"));
//!     }
//!     Ok(())
//! })?;
//! tasklet::schedule()?; // the receiver runs up to its first receive
//! assert_eq!(WORDS.balance(), -1); // one receiver waits
//!
//! // The default preference is the receiver's: it runs at once, before `send` returns.
//! WORDS.send("hello").map_err(|failure| failure.error)?; // a failed send gives the value back
//! note("sent hello".into());
//! // Without a preference the receiver queues at the end of the run ring; the sender goes on.
//! WORDS.set_preference(Preference::Neither);
//! WORDS.send("world").map_err(|failure| failure.error)?;
//! note("sent world".into());
//! tasklet::run()?;
//! let expected = ["got hello", "sent hello", "sent world", "got world"];
//! assert_eq!(*LOG.lock().unwrap(), expected);
//! assert_eq!(receiver.result(), Some(Ok(Ok(()))));
//! # Ok::<(), TaskletError>(())
//! ```
//!
//! A send meets a waiting receiver (or blocks until one comes) and vice versa; nothing is
//! buffered. The value waits in the blocked tasklet's control block ([`crate::tasklet`]'s value
//! slot), never on a stack, and a tasklet resumed by a rendezvous claims it before any
//! post-switch cleanup runs, so no destructor run after the switch can lose or clobber it.
//!
//! # Who runs after a rendezvous
//! With `dir` = +1 for a send and -1 for a receive, when the caller finds a waiting partner:
//! - `schedule_all`: the partner goes to the end of the run queue and the caller yields;
//! - `preference == -dir` (the partner's side is preferred): the partner is inserted right after
//!   the caller and switched to at once; the caller ends up last in the queue;
//! - otherwise: the partner goes to the end of the run queue and the caller continues.
//!
//! The default preference is -1 (prefer the receiver), as in Stackless. A partner on another CPU
//! is woken on its own CPU; the caller always continues then.
//!
//! # Closing
//! [`Channel::close`] marks the channel closing: operations that would block fail with
//! [`TaskletError::Closed`], while tasklets already waiting can still be met. The channel is
//! [`closed`](Channel::is_closed) once closing and nobody waits.
//!
//! Errors are values: a failed send gives the value back in [`SendError`], so nothing accepted
//! is ever lost.

use crate::tasklet::per_cpu::this_cpu;
use crate::tasklet::ring::Placement;
use crate::tasklet::slot::Staged;
use crate::tasklet::tcb::{Blocker, State, Tcb, WaitKind, WaitQueue, FLAG_BLOCK_TRAP};
use crate::tasklet::{Tasklet, TaskletError, Thrown};
use crate::time::Deadline;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;
use core::time::Duration;

/// A failed send: the value comes back with the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T> {
    /// The value that was not delivered.
    pub value: T,
    /// Why.
    pub error: TaskletError,
}

impl<T> core::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "send failed: {}", self.error)
    }
}

/// A failed send converts into its error with `?` in a function returning
/// `Result<_, TaskletError>`, so send, receive and scheduling errors share one type. The value
/// that was not delivered is dropped then: match on the [`SendError`] to keep it.
impl<T> From<SendError<T>> for TaskletError {
    fn from(failure: SendError<T>) -> Self {
        failure.error
    }
}

/// Which side a channel favours after a rendezvous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// The receiver runs at once (Stackless's default, -1).
    Receiver,
    /// Neither: the woken partner queues at the end (0).
    Neither,
    /// The sender runs at once (+1).
    Sender,
}

impl Preference {
    /// From Stackless's integer form: any value is clamped to its sign.
    pub fn from_int(value: i64) -> Self {
        match value.signum() {
            -1 => Self::Receiver,
            0 => Self::Neither,
            _ => Self::Sender,
        }
    }

    /// Stackless's integer form (-1, 0, +1).
    pub fn as_int(self) -> i8 {
        match self {
            Self::Receiver => -1,
            Self::Neither => 0,
            Self::Sender => 1,
        }
    }
}

struct ChannelState {
    /// Blocked senders (> 0) or receivers (< 0).
    balance: isize,
    waiters: WaitQueue,
    closing: bool,
    preference: i8,
    schedule_all: bool,
    /// What a send and a receive do after a match, from the two above (see [`after_match`]).
    after_send: AfterMatch,
    after_receive: AfterMatch,
}

/// The rule of "Who runs after a rendezvous" for one direction, worked out whenever the
/// preference or `schedule_all` changes, so that a match reads one byte.
#[derive(Clone, Copy)]
struct AfterMatch(u8);

impl AfterMatch {
    /// The partner goes right after the caller, to be switched to at once (else to the end).
    const PARTNER_NEXT: u8 = 1;
    /// The caller yields after queueing the partner.
    const YIELD: u8 = 2;

    const fn rule(preference: i8, schedule_all: bool, direction: i8) -> Self {
        if schedule_all {
            AfterMatch(Self::YIELD)
        } else if preference == -direction {
            AfterMatch(Self::PARTNER_NEXT)
        } else {
            AfterMatch(0)
        }
    }
}

impl ChannelState {
    const fn new(preference: i8, schedule_all: bool) -> Self {
        Self {
            balance: 0,
            waiters: WaitQueue::new(),
            closing: false,
            preference,
            schedule_all,
            after_send: AfterMatch::rule(preference, schedule_all, SEND),
            after_receive: AfterMatch::rule(preference, schedule_all, RECEIVE),
        }
    }

    fn set_rules(&mut self, preference: i8, schedule_all: bool) {
        self.preference = preference;
        self.schedule_all = schedule_all;
        self.after_send = AfterMatch::rule(preference, schedule_all, SEND);
        self.after_receive = AfterMatch::rule(preference, schedule_all, RECEIVE);
    }
}

/// The type-independent part of a channel: its lock and waiters.
struct Core {
    state: spin::Mutex<ChannelState>,
}

/// A synchronous channel carrying values of type `T`.
///
/// Share it between tasklets (and CPUs) through an `Arc`, a `static` (`Channel::new` is
/// `const`), or any other shared reference that outlives the tasklets using it.
pub struct Channel<T> {
    core: Core,
    values: PhantomData<fn(T) -> T>,
}

// SAFETY: values cross tasklets (and CPUs) through the channel, which is sound when T: Send; the
// channel's own state is behind a spin lock.
unsafe impl<T: Send> Sync for Channel<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Channel<T> {}

impl<T> core::fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = self.core.state.lock();
        f.debug_struct("Channel")
            .field("balance", &state.balance)
            .field("closing", &state.closing)
            .field("preference", &state.preference)
            .field("schedule_all", &state.schedule_all)
            .finish()
    }
}

impl<T: Send> Default for Channel<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Direction of an operation: +1 send, -1 receive (Stackless's `dir`).
const SEND: i8 = 1;
const RECEIVE: i8 = -1;

/// Takes a blocked tasklet out of its channel's wait queue ([`WaitKind::Channel`]).
pub(crate) unsafe fn cancel_wait(object: *const (), tcb: &Tcb) -> bool {
    // SAFETY: `object` is the Core of the channel the tasklet waits on; the waiting tasklet
    // borrows the channel for the whole wait, so it is alive.
    let core = unsafe { &*(object as *const Core) };
    let mut state = core.state.lock();
    let direction = tcb.direction().load(Ordering::Relaxed);
    if state.waiters.remove(tcb) {
        state.balance -= direction as isize;
        true
    } else {
        false
    }
}

impl<T: Send> Channel<T> {
    /// A new open channel preferring receivers.
    pub const fn new() -> Self {
        Self {
            core: Core {
                state: spin::Mutex::new(ChannelState::new(-1, false)),
            },
            values: PhantomData,
        }
    }

    /// Blocked senders (> 0) or receivers (< 0).
    pub fn balance(&self) -> isize {
        self.core.state.lock().balance
    }

    /// The side favoured after a rendezvous.
    pub fn preference(&self) -> Preference {
        Preference::from_int(self.core.state.lock().preference.into())
    }

    /// Sets the side favoured after a rendezvous.
    pub fn set_preference(&self, preference: Preference) {
        let mut state = self.core.state.lock();
        let schedule_all = state.schedule_all;
        state.set_rules(preference.as_int(), schedule_all);
    }

    /// Whether a rendezvous makes the caller yield to the whole run queue.
    pub fn schedule_all(&self) -> bool {
        self.core.state.lock().schedule_all
    }

    /// Makes every rendezvous queue the partner at the end and yield (Stackless's
    /// `schedule_all`), overriding the preference.
    pub fn set_schedule_all(&self, schedule_all: bool) {
        let mut state = self.core.state.lock();
        let preference = state.preference;
        state.set_rules(preference, schedule_all);
    }

    /// Marks the channel closing: operations that would block now fail with
    /// [`TaskletError::Closed`]; waiting tasklets can still be met.
    pub fn close(&self) {
        self.core.state.lock().closing = true;
    }

    /// Reopens a closing channel.
    pub fn open(&self) {
        self.core.state.lock().closing = false;
    }

    /// Whether [`Channel::close`] was called (and not undone by [`Channel::open`]).
    pub fn is_closing(&self) -> bool {
        self.core.state.lock().closing
    }

    /// Whether the channel is closing and nobody waits on it any more.
    pub fn is_closed(&self) -> bool {
        let state = self.core.state.lock();
        state.closing && state.balance == 0
    }

    /// The tasklets waiting, front first.
    pub fn waiting(&self) -> alloc::vec::Vec<Tasklet> {
        let state = self.core.state.lock();
        let mut waiting = alloc::vec::Vec::with_capacity(state.waiters.len());
        state
            .waiters
            .for_each(|tcb| waiting.push(Tasklet::from_tcb(tcb)));
        waiting
    }

    /// The first waiting tasklet (Stackless's `queue`).
    pub fn queue_front(&self) -> Option<Tasklet> {
        self.core
            .state
            .lock()
            .waiters
            .front()
            .map(Tasklet::from_tcb)
    }

    /// Sends `value`, blocking until a receiver takes it.
    #[inline(always)]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_until(value, None)
    }

    /// Sends `value`, giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_until(value, Some(Deadline::after(timeout)))
    }

    /// Sends an error: the receiver's receive returns `Err(TaskletError::Thrown(error))`
    /// (Stackless's `send_exception`).
    pub fn send_error(&self, error: Thrown) -> Result<(), TaskletError> {
        self.send_bomb(TaskletError::Thrown(error))
    }

    /// Sends any [`TaskletError`] for the receiver's receive to return (e.g. `Killed` to tell it
    /// to stop, as Stackless's `send_throw(TaskletExit)`).
    pub fn send_bomb(&self, error: TaskletError) -> Result<(), TaskletError> {
        match self.transfer_send(Parcel::Bomb(error), None) {
            Ok(()) => Ok(()),
            Err((_, error)) => Err(error),
        }
    }

    /// Sends every item in turn; returns how many were sent. On failure the unsent item comes
    /// back with the count sent before it.
    pub fn send_sequence<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<usize, (usize, SendError<T>)> {
        let mut sent = 0;
        for item in items {
            self.send(item).map_err(|failure| (sent, failure))?;
            sent += 1;
        }
        Ok(sent)
    }

    #[inline(always)]
    fn send_until(&self, value: T, deadline: Option<Deadline>) -> Result<(), SendError<T>> {
        let staged = match Staged::new(value) {
            Ok(staged) => staged,
            Err(value) => {
                return Err(SendError {
                    value,
                    error: TaskletError::OutOfMemory,
                })
            }
        };
        self.transfer_send(Parcel::Value(staged), deadline).map_err(
            |(parcel, error)| match parcel {
                Some(Parcel::Value(staged)) => SendError {
                    value: staged.into_value(),
                    error,
                },
                _ => unreachable!("a value send gives its value back"),
            },
        )
    }

    /// The send half of a rendezvous. On failure the parcel comes back (None once it was
    /// parked and then taken back out of the slot as a bomb, which cannot happen for values).
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    fn transfer_send(
        &self,
        parcel: Parcel<T>,
        deadline: Option<Deadline>,
    ) -> Result<(), (Option<Parcel<T>>, TaskletError)> {
        let scheduler = this_cpu();
        let me = scheduler.current();
        if let Err(error) = scheduler.before_blocking(me) {
            return Err((Some(parcel), error));
        }
        let busy = scheduler.enter();
        let mut state = self.core.state.lock();
        if state.balance < 0 {
            let receiver = state
                .waiters
                .pop_front()
                .expect("negative balance means receivers wait");
            state.balance += 1;
            // SAFETY: the receiver is blocked and we hold its queue's lock: its slot is ours.
            unsafe { parcel.put_into(receiver) };
            let (placement, yield_after) = after_match(&state, SEND);
            drop(state);
            let here = scheduler.wake(receiver, placement);
            let switch_now = placement == Placement::Next && here;
            if switch_now {
                scheduler.switch_to_partner(me, receiver, busy);
            } else {
                drop(busy);
                if yield_after {
                    let _ = crate::tasklet::schedule_out_of_line();
                }
            }
            return Ok(());
        }
        // The block trap first, as in Stackless.
        if me.has_flag(FLAG_BLOCK_TRAP) {
            return Err((Some(parcel), TaskletError::BlockTrap));
        }
        if state.closing {
            return Err((Some(parcel), TaskletError::Closed));
        }
        // Park the value in our own slot and wait for a receiver.
        // SAFETY: our own slot, empty while we run; the queue lock is held.
        unsafe { parcel.put_into(me) };
        self.enqueue_current(&mut state, me, SEND);
        drop(state);
        scheduler.block_current(me, Some(self.blocker()), deadline);
        // Claim before anything else runs (post-switch cleanup comes after).
        // SAFETY: we are running again and out of every queue: our slot is ours; it holds what
        // we parked (a T or a bomb) if the receiver never took it.
        let leftover = unsafe { me.slot().take::<T>() };
        let error = wait_error(me, leftover.is_some());
        busy.finish_resume();
        match leftover {
            None => Ok(()),
            Some(value) => {
                let error = self.explain(error);
                let parcel = match value {
                    Ok(value) => Parcel::Value(Staged::Inline(value)),
                    Err(bomb) => Parcel::Bomb(bomb),
                };
                Err((Some(parcel), error))
            }
        }
    }

    /// Receives a value, blocking until a sender provides one.
    #[inline(always)]
    pub fn receive(&self) -> Result<T, TaskletError> {
        self.receive_until(None)
    }

    /// Receives a value, giving up with [`TaskletError::TimedOut`] after `timeout`.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<T, TaskletError> {
        self.receive_until(Some(Deadline::after(timeout)))
    }

    #[inline(always)]
    fn receive_until(&self, deadline: Option<Deadline>) -> Result<T, TaskletError> {
        let scheduler = this_cpu();
        let me = scheduler.current();
        scheduler.before_blocking(me)?;
        let busy = scheduler.enter();
        let mut state = self.core.state.lock();
        if state.balance > 0 {
            let sender = state
                .waiters
                .pop_front()
                .expect("positive balance means senders wait");
            state.balance -= 1;
            let (placement, yield_after) = after_match(&state, RECEIVE);
            let may_switch_away = placement == Placement::Next || yield_after;
            let received = if may_switch_away {
                // The value waits in this receiver's own slot until it runs again: there it is
                // the kernel's to drop if the receiver is killed for good meanwhile, not on a
                // stack that would be abandoned.
                // SAFETY: the sender is blocked and we hold its queue's lock, so its slot is
                // ours; ours is empty (every receive claims what it got) and only we touch it
                // while we run.
                unsafe { me.slot().move_from(sender.slot()) };
                None
            } else {
                // SAFETY: as above; the sender's slot holds a T (or a bomb) parked by this
                // channel's send.
                Some(unsafe { sender.slot().take::<T>() }.expect("a waiting sender parks a value"))
            };
            drop(state);
            let here = scheduler.wake(sender, placement);
            let switch_now = placement == Placement::Next && here;
            if switch_now {
                scheduler.switch_to_partner(me, sender, busy);
            } else {
                drop(busy);
                if yield_after {
                    let _ = crate::tasklet::schedule_out_of_line();
                }
            }
            return match received {
                Some(received) => received,
                // SAFETY: running again; the value moved into our slot above is still there
                // (nobody hands a value to a tasklet that is not blocked receiving).
                None => unsafe { me.slot().take::<T>() }.expect("the received value waits here"),
            };
        }
        if me.has_flag(FLAG_BLOCK_TRAP) {
            return Err(TaskletError::BlockTrap);
        }
        if state.closing {
            return Err(TaskletError::Closed);
        }
        self.enqueue_current(&mut state, me, RECEIVE);
        drop(state);
        scheduler.block_current(me, Some(self.blocker()), deadline);
        // Claim the value first: the cleanup below may run arbitrary destructors.
        // SAFETY: running again and out of every queue; a sender put a T (or a bomb) here.
        let received = unsafe { me.slot().take::<T>() };
        let error = wait_error(me, received.is_none());
        busy.finish_resume();
        match received {
            Some(result) => result,
            None => Err(self.explain(error)),
        }
    }

    /// A wait that nothing can end on a closing channel ended because it closed.
    fn explain(&self, error: Option<TaskletError>) -> TaskletError {
        match error {
            Some(TaskletError::Deadlock) if self.is_closing() => TaskletError::Closed,
            Some(error) => error,
            None => TaskletError::Closed,
        }
    }

    fn enqueue_current(&self, state: &mut ChannelState, me: &Tcb, direction: i8) {
        me.direction().store(direction, Ordering::Relaxed);
        me.set_state(State::Blocked);
        state.waiters.push_back(me);
        state.balance += direction as isize;
    }

    fn blocker(&self) -> Blocker {
        Blocker::new(WaitKind::Channel, &self.core)
    }

    /// Iterates over received values until the channel is closing with no sender left (or a
    /// receive fails: the error is the last item).
    ///
    /// A sender ends a receiver's iteration at once, as Stackless's
    /// `send_exception(StopIteration)` does, with `send_bomb(TaskletError::Closed)`: the
    /// iterator ends (returns `None`) rather than yielding the error.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            channel: self,
            done: false,
        }
    }
}

/// Iterator over a channel's values (see [`Channel::iter`]).
pub struct Iter<'a, T> {
    channel: &'a Channel<T>,
    done: bool,
}

impl<T: Send> Iterator for Iter<'_, T> {
    type Item = Result<T, TaskletError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        {
            let state = self.channel.core.state.lock();
            if state.closing && state.balance <= 0 {
                self.done = true;
                return None;
            }
        }
        match self.channel.receive() {
            Ok(value) => Some(Ok(value)),
            Err(TaskletError::Closed) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

enum Parcel<T> {
    Value(Staged<T>),
    Bomb(TaskletError),
}

impl<T> Parcel<T> {
    /// # Safety
    /// The caller has exclusive access to `tcb`'s empty slot.
    unsafe fn put_into(self, tcb: &Tcb) {
        match self {
            // SAFETY: forwarded.
            Self::Value(staged) => unsafe { tcb.slot().put_staged(staged) },
            // SAFETY: forwarded.
            Self::Bomb(error) => unsafe { tcb.slot().put_bomb(error) },
        }
    }
}

/// What ended a blocked send or receive, if it `failed` (the value is still the sender's, or
/// nothing was received): claimed before the post-switch cleanup runs arbitrary destructors. A
/// wait that succeeded leaves an error raised meanwhile pending for the next operation.
#[inline(always)]
fn wait_error(me: &Tcb, failed: bool) -> Option<TaskletError> {
    if failed {
        this_cpu().take_raised(me)
    } else {
        None
    }
}

/// Where the woken partner goes, and whether the caller yields afterwards.
fn after_match(state: &ChannelState, direction: i8) -> (Placement, bool) {
    let rule = if direction == SEND {
        state.after_send.0
    } else {
        state.after_receive.0
    };
    let placement = if rule & AfterMatch::PARTNER_NEXT != 0 {
        Placement::Next
    } else {
        Placement::Tail
    };
    (placement, rule & AfterMatch::YIELD != 0)
}
