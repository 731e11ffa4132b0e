//! The sparse layout: CPython 2.7's one array of slots, with a byte of control per slot.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem;

use super::probe::{Probe, Reduce};
use super::{Pos, TryReserveError, Vacancy};

/// A slot's control byte: empty, dummy, or (below 0x80) full with these 7 bits of the key's hash.
///
/// CPython reads each probed slot's stored hash and key; here a probe reads the control bytes,
/// one byte a slot and so mostly cached, and touches a slot only when its 7 bits match — a miss
/// usually never leaves the control array.
const EMPTY: u8 = 0xff;
/// A deleted entry: probes go past it, inserts may reuse it, and it counts toward the fill.
const DUMMY: u8 = 0xfe;

/// The control byte of a full slot holding a key with `hash`: bits that neither a mask (low
/// bits) nor Lemire's reduction (high bits) has used to pick the slot.
#[inline]
fn tag(hash: u64) -> u8 {
    (hash >> 32) as u8 & 0x7f
}

/// A slot. `None` when the control byte says empty or dummy; no stored hash (CPython keeps one):
/// it would cost a word a slot, and a resize can rehash the key instead.
pub(crate) type Slot<K, V> = Option<(K, V)>;

/// Control bytes, slots, and the live (`len`) and live-or-dummy (`fill`) counts.
#[derive(Clone)]
pub(crate) struct Sparse<K, V> {
    ctrl: Box<[u8]>,
    slots: Box<[Slot<K, V>]>,
    len: usize,
    fill: usize,
}

impl<K, V> Sparse<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            ctrl: Box::default(),
            slots: Box::default(),
            len: 0,
            fill: 0,
        }
    }

    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn fill(&self) -> usize {
        self.fill
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ctrl.len() + mem::size_of_val::<[Slot<K, V>]>(&self.slots)
    }

    #[inline(always)]
    pub(crate) fn find<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Option<Pos>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.len == 0 {
            return None;
        }
        let tag = tag(hash);
        let mut probe = Probe::new(R::for_slots(self.slots.len()), hash);
        loop {
            let ctrl = self.ctrl[probe.slot];
            if ctrl == tag {
                if let Some((k, _)) = &self.slots[probe.slot] {
                    if k.borrow() == key {
                        return Some(Pos::at(probe.slot));
                    }
                }
            } else if ctrl == EMPTY {
                return None;
            }
            probe.advance();
        }
    }

    /// The key's slot, or where inserting it would go: the first dummy on its probe path, else
    /// the empty slot that ends the path (as CPython's `lookdict` `freeslot`).
    pub(crate) fn find_or_vacant<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Result<Pos, Vacancy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.slots.is_empty() {
            return Err(Vacancy::UNALLOCATED);
        }
        let tag = tag(hash);
        let mut probe = Probe::new(R::for_slots(self.slots.len()), hash);
        let mut dummy = None;
        loop {
            match self.ctrl[probe.slot] {
                EMPTY => {
                    return Err(match dummy {
                        Some(slot) => Vacancy { slot, empty: false },
                        None => Vacancy {
                            slot: probe.slot,
                            empty: true,
                        },
                    })
                }
                DUMMY => dummy = dummy.or(Some(probe.slot)),
                ctrl if ctrl == tag => {
                    if let Some((k, _)) = &self.slots[probe.slot] {
                        if k.borrow() == key {
                            return Ok(Pos::at(probe.slot));
                        }
                    }
                }
                _ => {}
            }
            probe.advance();
        }
    }

    /// The empty slot ending `hash`'s probe path.
    fn vacant<R: Reduce>(ctrl: &[u8], hash: u64) -> usize {
        let mut probe = Probe::new(R::for_slots(ctrl.len()), hash);
        while ctrl[probe.slot] != EMPTY {
            probe.advance();
        }
        probe.slot
    }

    /// Vacancy for an absent key straight after a rebuild.
    pub(crate) fn fresh_vacancy<R: Reduce>(&self, hash: u64) -> Vacancy {
        Vacancy {
            slot: Self::vacant::<R>(&self.ctrl, hash),
            empty: true,
        }
    }

    pub(crate) fn insert_at(&mut self, vacancy: Vacancy, hash: u64, key: K, value: V) -> Pos {
        self.ctrl[vacancy.slot] = tag(hash);
        self.slots[vacancy.slot] = Some((key, value));
        self.len += 1;
        self.fill += usize::from(vacancy.empty);
        Pos::at(vacancy.slot)
    }

    pub(crate) fn entry(&self, pos: Pos) -> (&K, &V) {
        match &self.slots[pos.slot] {
            Some((k, v)) => (k, v),
            None => unreachable!("dict position names no entry"),
        }
    }

    pub(crate) fn entry_mut(&mut self, pos: Pos) -> (&K, &mut V) {
        match &mut self.slots[pos.slot] {
            Some((k, v)) => (k, v),
            None => unreachable!("dict position names no entry"),
        }
    }

    pub(crate) fn remove_at<R: Reduce>(&mut self, pos: Pos, _hash: impl Fn(&K) -> u64) -> (K, V) {
        match self.slots[pos.slot].take() {
            Some(entry) => {
                self.ctrl[pos.slot] = DUMMY;
                self.len -= 1;
                entry
            }
            None => unreachable!("dict position names no entry"),
        }
    }

    /// Moves every entry into a new table of `slots` slots (which must hold them all); on failure
    /// nothing changes.
    pub(crate) fn rebuild<R: Reduce>(
        &mut self,
        slots: usize,
        _capacity: usize,
        _index_bits: u32,
        hash: impl Fn(&K) -> u64,
    ) -> Result<(), TryReserveError> {
        let mut ctrl = Vec::new();
        ctrl.try_reserve_exact(slots)
            .map_err(|_| TryReserveError::refused::<u8>(slots))?;
        let mut fresh = Vec::new();
        fresh
            .try_reserve_exact(slots)
            .map_err(|_| TryReserveError::refused::<Slot<K, V>>(slots))?;
        ctrl.resize(slots, EMPTY);
        fresh.resize_with(slots, || None);
        let (mut ctrl, mut fresh) = (ctrl.into_boxed_slice(), fresh.into_boxed_slice());
        for (k, v) in mem::take(&mut self.slots).into_vec().into_iter().flatten() {
            let h = hash(&k);
            let at = Self::vacant::<R>(&ctrl, h);
            ctrl[at] = tag(h);
            fresh[at] = Some((k, v));
        }
        self.ctrl = ctrl;
        self.slots = fresh;
        self.fill = self.len;
        Ok(())
    }

    pub(crate) fn raw(&self) -> &[Slot<K, V>] {
        &self.slots
    }

    pub(crate) fn raw_mut(&mut self) -> &mut [Slot<K, V>] {
        &mut self.slots
    }

    pub(crate) fn into_raw(self) -> Box<[Slot<K, V>]> {
        self.slots
    }
}
