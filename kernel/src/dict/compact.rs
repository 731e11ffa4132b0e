//! The compact layout: CPython 3.6's sparse index array over dense, ordered entries.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem;

use super::probe::{Probe, Reduce};
use super::{Pos, TryReserveError, Vacancy};

/// Fixed-width unsigned integers packed into bytes, little-endian: entry numbers, with the two
/// largest values of the width meaning "empty" and "dummy".
///
/// Every access moves one 8-byte window, so any width up to 56 bits (or exactly 64) costs the same
/// code; 7 bytes of padding keep the last window inside the buffer.
#[derive(Clone)]
pub(crate) struct Index {
    bytes: Box<[u8]>,
    slots: usize,
    bits: u32,
}

const PADDING: usize = 7;

impl Index {
    fn none() -> Self {
        Self {
            bytes: Box::default(),
            slots: 0,
            bits: 0,
        }
    }

    /// `slots` empty slots of `bits` bits.
    fn try_new(slots: usize, bits: u32) -> Result<Self, TryReserveError> {
        let len = slots
            .checked_mul(bits as usize)
            .map(|b| b.div_ceil(8))
            .and_then(|b| b.checked_add(PADDING))
            .ok_or(TryReserveError::CapacityOverflow)?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| TryReserveError::refused::<u8>(len))?;
        // All ones: every slot starts empty.
        bytes.resize(len, 0xff);
        Ok(Self {
            bytes: bytes.into_boxed_slice(),
            slots,
            bits,
        })
    }

    #[inline]
    fn mask(&self) -> u64 {
        u64::MAX >> (64 - self.bits)
    }

    #[inline]
    fn empty(&self) -> u64 {
        self.mask()
    }

    #[inline]
    fn dummy(&self) -> u64 {
        self.mask() - 1
    }

    #[inline]
    fn window(&self, slot: usize) -> (usize, u32, u64) {
        let bit = slot * self.bits as usize;
        let at = bit / 8;
        let mut word = [0; 8];
        word.copy_from_slice(&self.bytes[at..at + 8]);
        (at, (bit % 8) as u32, u64::from_le_bytes(word))
    }

    #[inline]
    fn get(&self, slot: usize) -> u64 {
        let (_, shift, word) = self.window(slot);
        (word >> shift) & self.mask()
    }

    #[inline]
    fn set(&mut self, slot: usize, value: u64) {
        let (at, shift, word) = self.window(slot);
        let word = (word & !(self.mask() << shift)) | (value << shift);
        self.bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    }
}

/// The index, the entries (their capacity always covers the index's max load, so a push never
/// reallocates), and the live-or-dummy count of index slots.
pub(crate) struct Compact<K, V> {
    index: Index,
    entries: Vec<(K, V)>,
    fill: usize,
}

impl<K: Clone, V: Clone> Clone for Compact<K, V> {
    /// Keeps the entries' capacity, which a cloned `Vec` would trim to its length.
    fn clone(&self) -> Self {
        let mut entries = Vec::with_capacity(self.entries.capacity());
        entries.extend(self.entries.iter().cloned());
        Self {
            index: self.index.clone(),
            entries,
            fill: self.fill,
        }
    }
}

impl<K, V> Compact<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            index: Index::none(),
            entries: Vec::new(),
            fill: 0,
        }
    }

    pub(crate) fn slots(&self) -> usize {
        self.index.slots
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn fill(&self) -> usize {
        self.fill
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.index.bytes.len() + self.entries.capacity() * mem::size_of::<(K, V)>()
    }

    #[inline]
    pub(crate) fn find<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Option<Pos>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.entries.is_empty() {
            return None;
        }
        let (empty, dummy) = (self.index.empty(), self.index.dummy());
        let mut probe = Probe::new(R::for_slots(self.index.slots), hash);
        loop {
            let entry = self.index.get(probe.slot);
            if entry == empty {
                return None;
            }
            if entry != dummy && self.entries[entry as usize].0.borrow() == key {
                return Some(Pos {
                    slot: probe.slot,
                    entry: entry as usize,
                });
            }
            probe.advance();
        }
    }

    /// The key's position, or the index slot inserting it would take (first dummy, else the
    /// empty slot ending the probe).
    pub(crate) fn find_or_vacant<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Result<Pos, Vacancy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.index.slots == 0 {
            return Err(Vacancy::UNALLOCATED);
        }
        let (empty, dummy) = (self.index.empty(), self.index.dummy());
        let mut probe = Probe::new(R::for_slots(self.index.slots), hash);
        let mut first_dummy = None;
        loop {
            let entry = self.index.get(probe.slot);
            if entry == empty {
                return Err(match first_dummy {
                    Some(slot) => Vacancy { slot, empty: false },
                    None => Vacancy {
                        slot: probe.slot,
                        empty: true,
                    },
                });
            }
            if entry == dummy {
                first_dummy = first_dummy.or(Some(probe.slot));
            } else if self.entries[entry as usize].0.borrow() == key {
                return Ok(Pos {
                    slot: probe.slot,
                    entry: entry as usize,
                });
            }
            probe.advance();
        }
    }

    /// The first slot on `hash`'s probe path holding `value`.
    fn slot_holding<R: Reduce>(&self, hash: u64, value: u64) -> usize {
        let mut probe = Probe::new(R::for_slots(self.index.slots), hash);
        while self.index.get(probe.slot) != value {
            probe.advance();
        }
        probe.slot
    }

    /// Vacancy for an absent key straight after a rebuild (no dummies).
    pub(crate) fn fresh_vacancy<R: Reduce>(&self, hash: u64) -> Vacancy {
        Vacancy {
            slot: self.slot_holding::<R>(hash, self.index.empty()),
            empty: true,
        }
    }

    pub(crate) fn insert_at(&mut self, vacancy: Vacancy, _hash: u64, key: K, value: V) -> Pos {
        let entry = self.entries.len();
        debug_assert!(entry < self.entries.capacity(), "entries were not reserved");
        self.index.set(vacancy.slot, entry as u64);
        self.entries.push((key, value));
        self.fill += usize::from(vacancy.empty);
        Pos {
            slot: vacancy.slot,
            entry,
        }
    }

    pub(crate) fn entry(&self, pos: Pos) -> (&K, &V) {
        let (k, v) = &self.entries[pos.entry];
        (k, v)
    }

    pub(crate) fn entry_mut(&mut self, pos: Pos) -> (&K, &mut V) {
        let (k, v) = &mut self.entries[pos.entry];
        (k, v)
    }

    /// Removes the entry at `pos`; the newest entry moves into its place (so entries stay dense
    /// without a tag a slot) and its index slot is repointed.
    pub(crate) fn remove_at<R: Reduce>(&mut self, pos: Pos, hash: impl Fn(&K) -> u64) -> (K, V) {
        let dummy = self.index.dummy();
        self.index.set(pos.slot, dummy);
        let removed = self.entries.swap_remove(pos.entry);
        if let Some((moved, _)) = self.entries.get(pos.entry) {
            let from = self.entries.len() as u64;
            let slot = self.slot_holding::<R>(hash(moved), from);
            self.index.set(slot, pos.entry as u64);
        }
        removed
    }

    /// Rebuilds the index at `slots` slots of `bits` bits and sizes the entries for `capacity`
    /// (at least the live count); on failure nothing changes.
    pub(crate) fn rebuild<R: Reduce>(
        &mut self,
        slots: usize,
        capacity: usize,
        bits: u32,
        hash: impl Fn(&K) -> u64,
    ) -> Result<(), TryReserveError> {
        let mut index = if slots == 0 {
            Index::none()
        } else {
            Index::try_new(slots, bits)?
        };
        let len = self.entries.len();
        if self.entries.capacity() < capacity {
            // Grows in place when the allocator can; a refusal leaves the entries as they were.
            self.entries
                .try_reserve_exact(capacity - len)
                .map_err(|_| TryReserveError::refused::<(K, V)>(capacity))?;
        } else if self.entries.capacity() > capacity {
            let mut entries = Vec::new();
            entries
                .try_reserve_exact(capacity)
                .map_err(|_| TryReserveError::refused::<(K, V)>(capacity))?;
            entries.append(&mut self.entries);
            self.entries = entries;
        }
        if slots > 0 {
            let reduce = R::for_slots(slots);
            let empty = index.empty();
            for (i, (k, _)) in self.entries.iter().enumerate() {
                let mut probe = Probe::new(reduce, hash(k));
                while index.get(probe.slot) != empty {
                    probe.advance();
                }
                index.set(probe.slot, i as u64);
            }
        }
        self.index = index;
        self.fill = len;
        Ok(())
    }

    pub(crate) fn raw(&self) -> &[(K, V)] {
        &self.entries
    }

    pub(crate) fn raw_mut(&mut self) -> &mut [(K, V)] {
        &mut self.entries
    }

    pub(crate) fn into_raw(self) -> Vec<(K, V)> {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_indices_round_trip_at_every_width() {
        for bits in (1..=56).chain([64]) {
            let mut index = Index::try_new(37, bits).unwrap();
            let mask = index.mask();
            assert!((0..37).all(|s| index.get(s) == index.empty()));
            for slot in 0..37 {
                index.set(
                    slot,
                    (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask,
                );
            }
            for slot in 0..37 {
                assert_eq!(
                    index.get(slot),
                    (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask
                );
            }
        }
    }
}
