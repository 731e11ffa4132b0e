//! Late-bound entry points the scheduler fills in (timer interrupt, crash-report details).

use core::fmt;

/// Forwards a board timer interrupt to the scheduler's preemption logic.
pub(crate) fn timer_interrupt() {}

/// Describes the running tasklet for crash reports.
pub(crate) fn write_current_tasklet(out: &mut dyn fmt::Write) -> fmt::Result {
    out.write_str("boot context (no tasklet)")
}
