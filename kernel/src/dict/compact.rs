//! The compact layout: CPython 3.6's sparse index array over dense, ordered entries.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem;

use super::config::{tail_bits, tail_exact, tail_of};
use super::probe::{Probe, Reduce};
use super::{Pos, TryReserveError, Vacancy};

/// The width of a table's index slots: entry numbers of `bits` bits, packed into bytes
/// little-endian, with the two largest values of the width meaning "empty" and "dummy".
///
/// Every access moves one 8-byte window, so any width up to 56 bits (or exactly 64) costs the same
/// code. The bytes after the index (the configuration's tail) usually complete the last window;
/// a window that would pass the end of the array is read and written short.
#[derive(Clone, Copy)]
pub(crate) struct Width {
    bits: u32,
    mask: u64,
}

impl Width {
    #[inline]
    pub(crate) fn new(bits: u32) -> Self {
        Self {
            bits,
            mask: u64::MAX >> (64 - bits),
        }
    }

    #[inline]
    fn empty(self) -> u64 {
        self.mask
    }

    #[inline]
    fn dummy(self) -> u64 {
        self.mask - 1
    }

    /// Bytes of `slots` index slots.
    pub(crate) fn bytes_for(self, slots: usize) -> Option<usize> {
        Some(slots.checked_mul(self.bits as usize)?.div_ceil(8))
    }

    #[inline]
    fn window(self, slot: usize) -> (usize, u32) {
        let bit = slot * self.bits as usize;
        (bit / 8, (bit % 8) as u32)
    }

    /// The value in `slot`. Cannot panic (past the end reads as zero bits), so a lookup built on
    /// it reads memory only, which lets a caller's loop keep the dict's fields in registers
    /// across the out-of-line call.
    #[inline]
    fn get(self, bytes: &[u8], slot: usize) -> u64 {
        let (at, shift) = self.window(slot);
        let word = match bytes.get(at..at.wrapping_add(8)) {
            Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) => {
                u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7])
            }
            _ => short_window(bytes, at),
        };
        (word >> shift) & self.mask
    }

    #[inline]
    fn set(self, bytes: &mut [u8], slot: usize, value: u64) {
        let (at, shift) = self.window(slot);
        let put = |word: u64| (word & !(self.mask << shift)) | (value << shift);
        match bytes.get_mut(at..at + 8) {
            Some(window) => {
                let mut word = [0; 8];
                word.copy_from_slice(window);
                window.copy_from_slice(&put(u64::from_le_bytes(word)).to_le_bytes());
            }
            None => {
                let word = put(short_window(bytes, at)).to_le_bytes();
                for (to, from) in bytes[at..].iter_mut().zip(word) {
                    *to = from;
                }
            }
        }
    }
}

/// The window at `at` where fewer than 8 bytes are left, zero-filled.
#[inline]
fn short_window(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    for (to, from) in word.iter_mut().zip(bytes.get(at..).unwrap_or_default()) {
        *to = *from;
    }
    u64::from_le_bytes(word)
}

/// A compact table's index and entries and its slot count: what a lookup reads (see the sparse
/// layout's `View` for why lookups take this rather than the dict).
pub(crate) struct View<'a, K, V> {
    index: &'a [u8],
    entries: &'a [(K, V)],
    slots: usize,
}

impl<K, V> Clone for View<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for View<'_, K, V> {}

impl<'a, K, V> View<'a, K, V> {
    /// The view of a table of `slots` index slots from its [`parts`](Self::parts).
    #[inline(always)]
    pub(crate) fn new(index: &'a [u8], entries: &'a [(K, V)], slots: usize) -> Self {
        Self {
            index,
            entries,
            slots,
        }
    }

    /// The index bytes and the entries.
    #[inline(always)]
    pub(crate) fn parts(self) -> (&'a [u8], &'a [(K, V)]) {
        (self.index, self.entries)
    }

    /// Whether the table has exact sizes (else powers of two).
    #[inline]
    pub(crate) fn exact(self) -> bool {
        tail_exact(self.index)
    }

    /// The entry for `key`, if present: where it is, and its key and value.
    #[inline]
    pub(crate) fn find<R: Reduce, Q>(self, hash: u64, key: &Q) -> Option<(Pos, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let width = Width::new(tail_bits(self.index));
        let empty = width.empty();
        let mut probe = Probe::<R>::new(self.slots, hash);
        loop {
            let entry = width.get(self.index, probe.slot);
            if entry == empty {
                return None;
            }
            // A dummy names no entry (it is at least the capacity), so it falls through too.
            if let Some((k, v)) = self.entries.get(entry as usize) {
                if k.borrow() == key {
                    let pos = Pos {
                        slot: probe.slot,
                        entry: entry as usize,
                    };
                    return Some((pos, k, v));
                }
            }
            probe.advance();
        }
    }
}

/// The index (its slots, then the configuration's tail, whose last byte is the index width) and
/// the entries, whose capacity always covers the index's max load so a push never reallocates.
/// The slot count and the live-or-dummy count of index slots are the dict's.
pub(crate) struct Compact<K, V> {
    index: Box<[u8]>,
    entries: Vec<(K, V)>,
}

impl<K: Clone, V: Clone> Clone for Compact<K, V> {
    /// Keeps the entries' capacity, which a cloned `Vec` would trim to its length.
    fn clone(&self) -> Self {
        let mut entries = Vec::with_capacity(self.entries.capacity());
        entries.extend(self.entries.iter().cloned());
        Self {
            index: self.index.clone(),
            entries,
        }
    }
}

impl<K, V> Compact<K, V> {
    /// No table: what [`rebuild`](Self::rebuild) starts a dict's first table from.
    pub(crate) fn new() -> Self {
        Self {
            index: Box::default(),
            entries: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub(crate) fn width(&self) -> Width {
        Width::new(tail_bits(&self.index))
    }

    /// Whether the table has exact sizes (else powers of two).
    #[inline]
    pub(crate) fn exact(&self) -> bool {
        tail_exact(&self.index)
    }

    /// The configuration's tail.
    pub(crate) fn tail(&self) -> &[u8] {
        tail_of(&self.index)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.index.len() + self.entries.capacity() * mem::size_of::<(K, V)>()
    }

    /// The index and entries, for lookups, in a table of `slots` index slots.
    #[inline(always)]
    pub(crate) fn view(&self, slots: usize) -> View<'_, K, V> {
        View {
            index: &self.index,
            entries: &self.entries,
            slots,
        }
    }

    /// The key's position, or the index slot inserting it would take (first dummy, else the
    /// empty slot ending the probe).
    pub(crate) fn find_or_vacant<R: Reduce, Q>(
        &self,
        slots: usize,
        hash: u64,
        key: &Q,
    ) -> Result<Pos, Vacancy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let width = self.width();
        let (empty, dummy) = (width.empty(), width.dummy());
        let mut probe = Probe::<R>::new(slots, hash);
        let mut first_dummy = None;
        loop {
            let entry = width.get(&self.index, probe.slot);
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
    fn slot_holding<R: Reduce>(&self, width: Width, slots: usize, hash: u64, value: u64) -> usize {
        let mut probe = Probe::<R>::new(slots, hash);
        while width.get(&self.index, probe.slot) != value {
            probe.advance();
        }
        probe.slot
    }

    /// Vacancy for an absent key straight after a rebuild (no dummies).
    pub(crate) fn fresh_vacancy<R: Reduce>(&self, slots: usize, hash: u64) -> Vacancy {
        Vacancy {
            slot: self.slot_holding::<R>(self.width(), slots, hash, self.width().empty()),
            empty: true,
        }
    }

    pub(crate) fn insert_at(&mut self, slot: usize, key: K, value: V) -> (&K, &mut V) {
        let entry = self.entries.len();
        debug_assert!(entry < self.entries.capacity(), "entries were not reserved");
        self.width().set(&mut self.index, slot, entry as u64);
        self.entries.push((key, value));
        let (k, v) = &mut self.entries[entry];
        (k, v)
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
    pub(crate) fn remove_at<R: Reduce>(
        &mut self,
        slots: usize,
        pos: Pos,
        hash: impl Fn(&K) -> u64,
    ) -> (K, V) {
        let width = self.width();
        let last = self.entries.len() - 1;
        // Hashed before anything changes: should the hasher panic, the table is as it was.
        let moved_hash = (pos.entry != last).then(|| hash(&self.entries[last].0));
        width.set(&mut self.index, pos.slot, width.dummy());
        let removed = self.entries.swap_remove(pos.entry);
        if let Some(moved_hash) = moved_hash {
            let slot = self.slot_holding::<R>(width, slots, moved_hash, last as u64);
            width.set(&mut self.index, slot, pos.entry as u64);
        }
        removed
    }

    /// Rebuilds the index at `slots` (non-zero) slots of `bits` bits followed by `tail` (which
    /// ends with `bits`), and sizes the entries for `capacity` (at least the live count); on
    /// failure nothing changes.
    pub(crate) fn rebuild<R: Reduce>(
        &mut self,
        slots: usize,
        capacity: usize,
        tail: &[u8],
        hash: impl Fn(&K) -> u64,
    ) -> Result<(), TryReserveError> {
        let width = Width::new(tail_bits(tail));
        let len = width
            .bytes_for(slots)
            .and_then(|b| b.checked_add(tail.len()))
            .ok_or(TryReserveError::CapacityOverflow)?;
        let mut index = Vec::new();
        index
            .try_reserve_exact(len)
            .map_err(|_| TryReserveError::refused::<u8>(len))?;
        // All ones: every slot starts empty.
        index.resize(len - tail.len(), 0xff);
        index.extend_from_slice(tail);
        let mut index = index.into_boxed_slice();
        // The index first: should the hasher panic, the table is left as it was.
        let empty = width.empty();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let mut probe = Probe::<R>::new(slots, hash(k));
            while width.get(&index, probe.slot) != empty {
                probe.advance();
            }
            width.set(&mut index, probe.slot, i as u64);
        }
        let live = self.entries.len();
        if self.entries.capacity() < capacity {
            // Grows in place when the allocator can; a refusal leaves the entries as they were.
            self.entries
                .try_reserve_exact(capacity - live)
                .map_err(|_| TryReserveError::refused::<(K, V)>(capacity))?;
        } else if self.entries.capacity() > capacity {
            let mut entries = Vec::new();
            entries
                .try_reserve_exact(capacity)
                .map_err(|_| TryReserveError::refused::<(K, V)>(capacity))?;
            entries.append(&mut self.entries);
            self.entries = entries;
        }
        self.index = index;
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
            let width = Width::new(bits);
            // No padding after the last slot: its window is read and written short.
            let mut bytes = alloc::vec![0xff; width.bytes_for(37).unwrap()];
            let mask = width.mask;
            assert!((0..37).all(|s| width.get(&bytes, s) == width.empty()));
            let value = |slot: usize| (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask;
            for slot in 0..37 {
                width.set(&mut bytes, slot, value(slot));
            }
            for slot in 0..37 {
                assert_eq!(
                    width.get(&bytes, slot),
                    value(slot),
                    "{bits} bits, slot {slot}"
                );
            }
        }
    }
}
