//! The decrementer: a periodic tick plus one-shot deadlines (preemption, idle wake-up) per CPU.
//!
//! Each CPU keeps its own schedule in the [`CpuTimer`] of its [`super::percpu::PerCpu`] block;
//! only this module writes it. After every change and every decrementer interrupt the
//! decrementer is programmed for the earliest pending event, so one hardware timer serves all of
//! them. Times are timebase values.

use super::percpu;
use super::timebase::{self, Frequency};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One CPU's timer schedule and counters (defined with the per-CPU block that holds it).
pub use super::percpu::CpuTimer;

/// Largest value the (32-bit, non-large) decrementer accepts without going negative.
const DEC_MAX: u64 = 0x7fff_ffff;

/// Timebase frequency, set once at boot by [`init`]; 0 until then.
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);
/// Timebase value at [`init`], the zero of the monotonic clock.
static EPOCH_TB: AtomicU64 = AtomicU64::new(0);

/// What a decrementer interrupt found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerEvent {
    /// A periodic tick was counted.
    pub tick: bool,
    /// The armed preemption deadline passed (it is now disarmed).
    pub preempt: bool,
}

/// Programs the decrementer for the earliest pending event of `timer` (or as far out as it goes).
fn program(timer: &CpuTimer) {
    let now = timebase::read();
    let candidates = [
        (timer.tick_period.load(Relaxed) != 0).then(|| timer.next_tick.load(Relaxed)),
        nonzero(timer.preempt_at.load(Relaxed)),
        nonzero(timer.wake_at.load(Relaxed)),
    ];
    let delta = match candidates.into_iter().flatten().min() {
        Some(at) => at.saturating_sub(now).clamp(1, DEC_MAX),
        None => DEC_MAX,
    };
    set_decrementer(delta as u32);
}

fn nonzero(tb: u64) -> Option<u64> {
    (tb != 0).then_some(tb)
}

/// Writes the decrementer: an interrupt is raised about `ticks` timebase ticks from now.
pub fn set_decrementer(ticks: u32) {
    // SAFETY: writes DEC; no memory access. An early or spurious decrementer interrupt is harmless:
    // the handler re-reads the schedule.
    unsafe {
        core::arch::asm!("mtspr 22, {}", in(reg) u64::from(ticks), options(nomem, nostack, preserves_flags))
    };
}

/// Records the timebase frequency (from the device tree) and starts the monotonic clock.
pub fn init(frequency: Frequency) {
    TIMEBASE_HZ.store(frequency.hz(), Relaxed);
    EPOCH_TB.store(timebase::read(), Relaxed);
}

/// The timebase frequency given to [`init`], if it was called.
pub fn frequency() -> Option<Frequency> {
    Frequency::new(TIMEBASE_HZ.load(Relaxed)).ok()
}

/// Nanoseconds since [`init`] (0 before it).
pub fn now_ns() -> u64 {
    match frequency() {
        Some(frequency) => {
            frequency.ticks_to_ns(timebase::read().saturating_sub(EPOCH_TB.load(Relaxed)))
        }
        None => 0,
    }
}

/// The timebase value at `ns` on the [`now_ns`] clock (rounded up; 1 before [`init`]).
pub fn ns_to_timebase(ns: u64) -> u64 {
    match frequency() {
        Some(frequency) => EPOCH_TB
            .load(Relaxed)
            .saturating_add(frequency.ns_to_ticks(ns))
            .max(1),
        None => 1,
    }
}

/// Starts (or re-times) the calling CPU's periodic tick at `hz` per second; 0 stops it.
pub fn set_tick_hz(hz: u32) {
    let period = match (frequency(), hz) {
        (Some(frequency), 1..) => (frequency.hz() / u64::from(hz)).max(1),
        _ => 0,
    };
    set_tick_period(period);
}

/// Gives the calling (secondary) CPU the boot CPU's tick period, starting now.
pub(crate) fn inherit_boot_tick() {
    set_tick_period(percpu::get(0).map_or(0, |boot| boot.timer.tick_period.load(Relaxed)));
}

/// Ticks the calling CPU every `period` timebase ticks from now (0: no tick).
fn set_tick_period(period: u64) {
    let timer = &percpu::current().timer;
    super::irq::without(|| {
        timer.tick_period.store(period, Relaxed);
        timer
            .next_tick
            .store(timebase::read().saturating_add(period), Relaxed);
        program(timer);
    });
}

/// Arms (timebase value) or disarms (`None`) the calling CPU's one-shot preemption deadline.
pub fn set_preempt_deadline(tb: Option<u64>) {
    set_one_shot(|timer| &timer.preempt_at, tb);
}

/// Sets (or clears) the timebase value by which the calling CPU's idle wait must end.
pub fn set_wake_at(tb: Option<u64>) {
    set_one_shot(|timer| &timer.wake_at, tb);
}

fn set_one_shot(slot: fn(&CpuTimer) -> &AtomicU64, tb: Option<u64>) {
    let timer = &percpu::current().timer;
    super::irq::without(|| {
        slot(timer).store(tb.map_or(0, |tb| tb.max(1)), Relaxed);
        program(timer);
    });
}

/// The calling CPU's timer counters.
pub fn current() -> &'static CpuTimer {
    &percpu::current().timer
}

/// Bookkeeping for a decrementer interrupt on the calling CPU: counts the tick, expires due
/// deadlines and re-programs the decrementer. Call with interrupts masked (the handler is).
pub fn on_interrupt() -> TimerEvent {
    let timer = &percpu::current().timer;
    let now = timebase::read();
    let mut event = TimerEvent::default();
    let period = timer.tick_period.load(Relaxed);
    let next_tick = timer.next_tick.load(Relaxed);
    if period != 0 && now >= next_tick {
        event.tick = true;
        timer.ticks.fetch_add(1, Relaxed);
        // Ticks missed while interrupts were masked are dropped, not replayed in a burst.
        let next = next_tick.saturating_add(period);
        timer.next_tick.store(
            if next > now {
                next
            } else {
                now.saturating_add(period)
            },
            Relaxed,
        );
    }
    let preempt_at = timer.preempt_at.load(Relaxed);
    if preempt_at != 0 && now >= preempt_at {
        event.preempt = true;
        timer.preempt_at.store(0, Relaxed);
        timer.deadlines.fetch_add(1, Relaxed);
        timer.last_deadline_tb.store(now, Relaxed);
    }
    let wake_at = timer.wake_at.load(Relaxed);
    if wake_at != 0 && now >= wake_at {
        timer.wake_at.store(0, Relaxed);
    }
    program(timer);
    event
}
