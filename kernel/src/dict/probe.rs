//! Probe sequences: CPython's perturbed probing over a masked or a Lemire-reduced table.
//!
//! The rule and why every probe ends are in the dict module's "Probing" section.

/// How a probe cursor becomes a slot index.
pub(crate) trait Reduce: Copy {
    /// Whether this is a mask, so a table's size is a power of two: the sparse layout then
    /// probes groups of slots (see `group::GROUP`).
    const MASK: bool;
    /// The reduction for a table of `slots` (non-zero) slots.
    fn for_slots(slots: usize) -> Self;
    /// Slot of a cursor during the perturbed phase.
    fn slot(self, cursor: u64) -> usize;
    /// Moves `probe` to its next slot.
    fn advance(self, probe: &mut Probe<Self>);
}

/// Power-of-two tables: `i & mask`.
#[derive(Clone, Copy)]
pub(crate) struct Mask(u64);

impl Reduce for Mask {
    const MASK: bool = true;

    #[inline(always)]
    fn for_slots(slots: usize) -> Self {
        Mask(slots as u64 - 1)
    }

    #[inline(always)]
    fn slot(self, cursor: u64) -> usize {
        (cursor & self.0) as usize
    }

    /// CPython's step as it is: once `perturb` is spent, `5*i + 1 + perturb` is `5*i + 1`, so no
    /// phase test is needed.
    #[inline(always)]
    fn advance(self, probe: &mut Probe<Self>) {
        probe.perturbed_step();
    }
}

/// Any table size: Lemire's multiply-shift while the perturbation lasts, then linear.
#[derive(Clone, Copy)]
pub(crate) struct Lemire(u64);

impl Reduce for Lemire {
    const MASK: bool = false;

    #[inline]
    fn for_slots(slots: usize) -> Self {
        Lemire(slots as u64)
    }

    #[inline]
    fn slot(self, cursor: u64) -> usize {
        ((cursor as u128 * self.0 as u128) >> 64) as usize
    }

    #[inline]
    fn advance(self, probe: &mut Probe<Self>) {
        if probe.perturb != 0 {
            probe.perturbed_step();
        } else if probe.slot as u64 + 1 == self.0 {
            probe.slot = 0;
        } else {
            probe.slot += 1;
        }
    }
}

/// One probe sequence; `slot` is the slot to look at.
pub(crate) struct Probe<R> {
    reduce: R,
    cursor: u64,
    perturb: u64,
    pub(crate) slot: usize,
}

impl<R: Reduce> Probe<R> {
    /// The probe for `hash` in a table of `slots` (non-zero) slots.
    #[inline(always)]
    pub(crate) fn new(slots: usize, hash: u64) -> Self {
        let reduce = R::for_slots(slots);
        Self {
            reduce,
            cursor: hash,
            perturb: hash,
            slot: reduce.slot(hash),
        }
    }

    #[inline(always)]
    pub(crate) fn advance(&mut self) {
        self.reduce.advance(self);
    }

    /// CPython's step: `i = 5*i + 1 + perturb; perturb >>= 5`.
    #[inline(always)]
    fn perturbed_step(&mut self) {
        self.cursor = self
            .cursor
            .wrapping_mul(5)
            .wrapping_add(1)
            .wrapping_add(self.perturb);
        self.perturb >>= 5;
        self.slot = self.reduce.slot(self.cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot of a table is reached from any hash, so a probe always ends.
    fn covers<R: Reduce>(slots: usize) {
        for hash in [0u64, 1, 0xdead_beef, u64::MAX, 0x8000_0000_0000_0000] {
            let mut seen = alloc::vec![false; slots];
            let mut probe = Probe::<R>::new(slots, hash);
            for _ in 0..64 + 4 * slots {
                seen[probe.slot] = true;
                probe.advance();
            }
            assert!(seen.iter().all(|s| *s), "{slots} slots, hash {hash:#x}");
        }
    }

    #[test]
    fn masked_probes_visit_every_slot() {
        for bits in 0..10 {
            covers::<Mask>(1 << bits);
        }
    }

    #[test]
    fn lemire_probes_visit_every_slot() {
        for slots in 1..200 {
            covers::<Lemire>(slots);
        }
    }

    #[test]
    fn lemire_spreads_over_the_whole_table() {
        let reduce = Lemire::for_slots(10);
        assert_eq!(reduce.slot(0), 0);
        assert_eq!(reduce.slot(u64::MAX), 9);
        assert_eq!(reduce.slot(1 << 63), 5);
    }

    #[test]
    fn masked_probe_follows_cpython() {
        // CPython 2.7, mask 7, hash 10: i = 10 -> slot 2; i = 5*10 + 1 + 10 = 61 -> slot 5;
        // perturb = 0 then: i = 5*61 + 1 = 306 -> slot 2.
        let mut probe = Probe::<Mask>::new(8, 10);
        let mut slots = alloc::vec![probe.slot];
        for _ in 0..2 {
            probe.advance();
            slots.push(probe.slot);
        }
        assert_eq!(slots, [2, 5, 2]);
    }
}
