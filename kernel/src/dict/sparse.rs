//! The sparse layout: CPython 2.7's one array of slots.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem;

use super::probe::{Probe, Reduce};
use super::{Pos, TryReserveError, Vacancy};

/// One slot. No stored hash (CPython keeps one): it would cost a word a slot, and a resize can
/// rehash the key instead.
#[derive(Clone)]
pub(crate) enum Slot<K, V> {
    Empty,
    /// A deleted entry: probes go past it, inserts may reuse it, and it counts toward the fill.
    Dummy,
    Full(K, V),
}

/// Slots plus the live (`len`) and live-or-dummy (`fill`) counts.
#[derive(Clone)]
pub(crate) struct Sparse<K, V> {
    slots: Box<[Slot<K, V>]>,
    len: usize,
    fill: usize,
}

impl<K, V> Sparse<K, V> {
    pub(crate) fn new() -> Self {
        Self {
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
        mem::size_of_val::<[Slot<K, V>]>(&self.slots)
    }

    #[inline]
    pub(crate) fn find<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Option<Pos>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.len == 0 {
            return None;
        }
        let mut probe = Probe::new(R::for_slots(self.slots.len()), hash);
        loop {
            match &self.slots[probe.slot] {
                Slot::Empty => return None,
                Slot::Full(k, _) if k.borrow() == key => return Some(Pos::at(probe.slot)),
                _ => probe.advance(),
            }
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
        let mut probe = Probe::new(R::for_slots(self.slots.len()), hash);
        let mut dummy = None;
        loop {
            match &self.slots[probe.slot] {
                Slot::Empty => {
                    return Err(match dummy {
                        Some(slot) => Vacancy { slot, empty: false },
                        None => Vacancy {
                            slot: probe.slot,
                            empty: true,
                        },
                    })
                }
                Slot::Dummy if dummy.is_none() => dummy = Some(probe.slot),
                Slot::Full(k, _) if k.borrow() == key => return Ok(Pos::at(probe.slot)),
                _ => {}
            }
            probe.advance();
        }
    }

    /// Where a key absent from a table without dummies goes.
    fn vacant<R: Reduce>(&self, hash: u64) -> usize {
        let mut probe = Probe::new(R::for_slots(self.slots.len()), hash);
        while !matches!(self.slots[probe.slot], Slot::Empty) {
            probe.advance();
        }
        probe.slot
    }

    /// Vacancy for an absent key straight after a rebuild.
    pub(crate) fn fresh_vacancy<R: Reduce>(&self, hash: u64) -> Vacancy {
        Vacancy {
            slot: self.vacant::<R>(hash),
            empty: true,
        }
    }

    pub(crate) fn insert_at(&mut self, vacancy: Vacancy, key: K, value: V) -> Pos {
        self.slots[vacancy.slot] = Slot::Full(key, value);
        self.len += 1;
        self.fill += usize::from(vacancy.empty);
        Pos::at(vacancy.slot)
    }

    pub(crate) fn entry(&self, pos: Pos) -> (&K, &V) {
        match &self.slots[pos.slot] {
            Slot::Full(k, v) => (k, v),
            _ => unreachable!("dict position names no entry"),
        }
    }

    pub(crate) fn entry_mut(&mut self, pos: Pos) -> (&K, &mut V) {
        match &mut self.slots[pos.slot] {
            Slot::Full(k, v) => (k, v),
            _ => unreachable!("dict position names no entry"),
        }
    }

    pub(crate) fn remove_at<R: Reduce>(&mut self, pos: Pos, _hash: impl Fn(&K) -> u64) -> (K, V) {
        match mem::replace(&mut self.slots[pos.slot], Slot::Dummy) {
            Slot::Full(k, v) => {
                self.len -= 1;
                (k, v)
            }
            _ => unreachable!("dict position names no entry"),
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
        let mut fresh = Vec::new();
        fresh
            .try_reserve_exact(slots)
            .map_err(|_| TryReserveError::refused::<Slot<K, V>>(slots))?;
        fresh.resize_with(slots, || Slot::Empty);
        let old = mem::replace(&mut self.slots, fresh.into_boxed_slice());
        for slot in old.into_vec() {
            if let Slot::Full(k, v) = slot {
                let at = self.vacant::<R>(hash(&k));
                self.slots[at] = Slot::Full(k, v);
            }
        }
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
