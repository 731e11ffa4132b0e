//! Late-bound entry points the scheduler fills in (timer interrupt, crash-report details).

use core::fmt;

/// Forwards a board timer interrupt to the scheduler's preemption logic.
pub(crate) fn timer_interrupt() {
    crate::tasklet::on_timer_interrupt();
}

/// Describes the running tasklet for crash reports.
pub(crate) fn write_current_tasklet(out: &mut dyn fmt::Write) -> fmt::Result {
    crate::tasklet::write_current(out)
}
