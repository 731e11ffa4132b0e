//! The console: whole writes serialised across CPUs, and a lock-free path for crash reports.

use core::fmt;
use spindle_arch::powerpc64::irq;
use spindle_drivers::hvterm::HvTerm;

/// Serialises console writes so lines from different CPUs do not interleave mid-write.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Writes `bytes` as one unit. Interrupts are masked meanwhile, so an interrupt handler that
/// prints cannot deadlock against the code it interrupted.
pub fn write(bytes: &[u8]) {
    irq::without(|| {
        let _guard = LOCK.lock();
        HvTerm::write_raw(bytes);
    });
}

/// The crash-report console: no lock (the crashed code may hold it), no failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl fmt::Write for Raw {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        HvTerm::write_raw(text.as_bytes());
        Ok(())
    }
}
