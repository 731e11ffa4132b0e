//! The tracked values and their ledger: where every value of the current round is.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};

/// Mixed into every value's check word.
const CHECK: u64 = 0x5eed_5eed_c0de_f00d;

#[derive(Default)]
pub(super) struct Fate {
    pub(super) created: AtomicU8,
    pub(super) dropped: AtomicU8,
    pub(super) received: AtomicU8,
    pub(super) returned: AtomicU8,
}

/// Where every value of the current round is: created, received, given back, dropped.
pub(super) struct Ledger {
    pub(super) round: AtomicU64,
    pub(super) fates: Vec<Fate>,
    pub(super) failed: AtomicBool,
    pub(super) failure: spin::Mutex<Option<String>>,
}

impl Ledger {
    /// Records the first failure, then panics with it.
    #[cold]
    #[inline]
    pub(super) fn fail(&self, what: String) -> ! {
        {
            let mut failure = self.failure.lock();
            if failure.is_none() {
                *failure = Some(what.clone());
            }
        }
        self.failed.store(true, Release);
        panic!("soak: {what}");
    }

    #[inline]
    fn fate(&self, value: &Tracked) -> &Fate {
        if u64::from(value.round) != self.round.load(Acquire) {
            self.fail(format!(
                "value {} of round {} still alive in round {}",
                value.id,
                value.round,
                self.round.load(Acquire)
            ));
        }
        &self.fates[value.id as usize]
    }
}

/// A value the soak sends: unique in its round, counted from creation to its one drop, and
/// checked for corruption whenever it is received or given back.
pub struct Tracked {
    id: u32,
    round: u32,
    pub(super) origin: u8,
    check: u64,
    ledger: &'static Ledger,
}

impl Tracked {
    #[inline]
    pub(super) fn new(ledger: &'static Ledger, round: u32, id: usize, origin: usize) -> Self {
        let value = Self {
            id: id as u32,
            round,
            origin: origin as u8,
            check: Self::check_word(id as u32, round),
            ledger,
        };
        if ledger.fate(&value).created.fetch_add(1, AcqRel) != 0 {
            ledger.fail(format!("value {id} of round {round} created twice"));
        }
        value
    }

    #[inline]
    fn check_word(id: u32, round: u32) -> u64 {
        (u64::from(round) << 32 | u64::from(id)) ^ CHECK
    }

    #[inline]
    fn verify(&self) {
        if self.check != Self::check_word(self.id, self.round) {
            self.ledger.fail(format!(
                "value {} of round {} corrupted (check word {:#x})",
                self.id, self.round, self.check
            ));
        }
    }

    /// A receiver took it.
    #[inline]
    pub(super) fn received(&self) {
        self.verify();
        if self.ledger.fate(self).received.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} received twice",
                self.id, self.round
            ));
        }
    }

    /// A failed send gave it back to its sender.
    #[inline]
    pub(super) fn returned(&self) {
        self.verify();
        if self.ledger.fate(self).returned.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} given back twice",
                self.id, self.round
            ));
        }
    }
}

impl Drop for Tracked {
    #[inline]
    fn drop(&mut self) {
        self.verify();
        if self.ledger.fate(self).dropped.fetch_add(1, AcqRel) != 0 {
            self.ledger.fail(format!(
                "value {} of round {} dropped twice",
                self.id, self.round
            ));
        }
    }
}
