//! The attention word: one word the fast paths test instead of each condition it stands for.
//!
//! A yield, a blocking call or a resumption takes its fast path when the word is zero; each bit
//! says why not. Other CPUs set [`INBOX`]; every other bit belongs to the home CPU, which keeps
//! it in step with what it stands for (see `Scheduler::debug_check_attention`).

/// The timer queue is not empty.
pub(super) const TIMERS: u32 = 1 << 0;
/// A `run` watchdog budget is armed.
pub(super) const WATCHDOG: u32 = 1 << 1;
/// The watchdog fired while the running tasklet could not be interrupted.
pub(super) const PREEMPT: u32 = 1 << 2;
/// Other CPUs queued wake-ups in the inbox.
pub(super) const INBOX: u32 = 1 << 3;
/// Work awaits whoever resumes next: a tasklet found overflowed at a switch, or dead tasklets'
/// stacks (queued by `retire`, from an exit, a kill or an overflow).
pub(super) const DEFERRED: u32 = 1 << 4;
/// One tasklet of this CPU with an error raised into it and not yet taken: the bits from here
/// up count them, so that neither the fast yield nor the way back from its switch reads the
/// running tasklet's own `pending`.
pub(super) const PENDING_ONE: u32 = 1 << 8;
