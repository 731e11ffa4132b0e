//! The current tasklet's stack: how much is left, checking its guard, and stack spilling
//! (continuing deep recursion on a fresh segment).

use super::error::TaskletError;
use super::per_cpu::this_cpu;
use super::stack::{self, StackRegion, DEFAULT_SPILL_SEGMENT, DEFAULT_SPILL_WATERMARK};
use spindle_arch::context;

/// Bytes of stack left below the current stack pointer (`usize::MAX` on the main tasklet,
/// whose stack is the CPU's own and unbounded as far as the kernel knows).
pub fn stack_remaining() -> usize {
    let low = this_cpu().current().stack_low().get();
    if low == 0 {
        usize::MAX
    } else {
        context::stack_pointer().saturating_sub(low)
    }
}

/// Checks the current tasklet's stack guard now (it is also checked at every switch).
/// Returns [`TaskletError::StackOverflow`] if it was overrun — the tasklet should stop at once;
/// it will be abandoned at its next switch.
pub fn check_stack() -> Result<(), TaskletError> {
    let low = this_cpu().current().stack_low().get();
    // SAFETY: a non-zero stack_low is the usable low of the live segment we run on.
    if low == 0 || unsafe { stack::guard_intact(low, context::stack_pointer()) } {
        Ok(())
    } else {
        Err(TaskletError::StackOverflow)
    }
}

/// Runs `body`, on a fresh stack segment if less than [`DEFAULT_SPILL_WATERMARK`] bytes of stack
/// remain (Stackless's stack spilling). See [`spill_with`].
pub fn spill<R>(body: impl FnOnce() -> R) -> Result<R, TaskletError> {
    spill_with(DEFAULT_SPILL_WATERMARK, DEFAULT_SPILL_SEGMENT, body)
}

/// Runs `body` directly if at least `watermark` bytes of stack remain, else on a fresh segment
/// of `segment_bytes` from this CPU's stack budget (freed when `body` returns). Fails with a
/// budget or memory error instead of overflowing. The segment is part of the tasklet's stack:
/// it may block and switch inside `body` as usual.
pub fn spill_with<F: FnOnce() -> R, R>(
    watermark: usize,
    segment_bytes: usize,
    body: F,
) -> Result<R, TaskletError> {
    if stack_remaining() >= watermark {
        return Ok(body());
    }
    let scheduler = this_cpu();
    let me = scheduler.current();
    let segment = {
        let _busy = scheduler.enter();
        StackRegion::allocate(segment_bytes, &scheduler.budget)?
    };
    let previous_top = scheduler.spill_top_of(me);
    // SAFETY: the segment is fresh and ours; its header chains the segment it interrupts so a
    // forced kill can free the whole chain.
    unsafe { segment.write_segment_header(previous_top) };
    let previous_low = me.stack_low().replace(segment.usable_low());

    let mut frame: SpillFrame<F, R> = SpillFrame {
        body: Some(body),
        result: None,
        panic: None,
    };
    // SAFETY: the segment is exclusively this call's; `frame` outlives the call, and
    // `run_spilled` catches panics so nothing unwinds through the switch of stacks. The stack
    // pointer recorded is the one `call_on_stack` (inlined) leaves from: a sliced tasklet's
    // shared area is live from there up while it runs on the segment.
    unsafe {
        segment.set_segment_entered_from(context::stack_pointer());
        context::call_on_stack(
            segment.top(),
            run_spilled::<F, R>,
            &mut frame as *mut SpillFrame<F, R> as usize,
        )
    };

    me.stack_low().set(previous_low);
    {
        let _busy = scheduler.enter();
        // SAFETY: the body returned; nothing runs on the segment any more.
        unsafe { segment.free(&scheduler.budget) };
    }
    resume_panic(frame.panic.take());
    Ok(frame
        .result
        .take()
        .expect("spilled body returned without a result"))
}

struct SpillFrame<F, R> {
    body: Option<F>,
    result: Option<R>,
    panic: Option<PanicPayload>,
}

#[cfg(any(test, feature = "std"))]
type PanicPayload = alloc::boxed::Box<dyn core::any::Any + Send>;
#[cfg(not(any(test, feature = "std")))]
type PanicPayload = core::convert::Infallible;

extern "C" fn run_spilled<F: FnOnce() -> R, R>(data: usize) {
    // SAFETY: `data` is the SpillFrame passed by spill_with, alive for the whole call.
    let frame = unsafe { &mut *(data as *mut SpillFrame<F, R>) };
    let Some(body) = frame.body.take() else {
        return;
    };
    #[cfg(any(test, feature = "std"))]
    {
        extern crate std;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            Ok(result) => frame.result = Some(result),
            Err(payload) => frame.panic = Some(payload),
        }
    }
    #[cfg(not(any(test, feature = "std")))]
    {
        frame.result = Some(body());
    }
}

#[cfg(any(test, feature = "std"))]
fn resume_panic(payload: Option<PanicPayload>) {
    if let Some(payload) = payload {
        extern crate std;
        std::panic::resume_unwind(payload);
    }
}

#[cfg(not(any(test, feature = "std")))]
fn resume_panic(payload: Option<PanicPayload>) {
    if let Some(never) = payload {
        match never {}
    }
}
