//! The sparse layout: CPython 2.7's one array of slots, with a byte of control per slot; also
//! the two-choice layout's storage, which probes the same slots differently.
//!
//! The dict's main use of `unsafe` (the other is the SSE2 groups of control bytes). A slot is
//! a `MaybeUninit<(K, V)>`, which holds an entry exactly
//! when the slot's control byte says full: 16 bytes for `(u64, u64)`, where an `Option` would add
//! a tag word (24 bytes: half as much memory again for every sparse table, and more cache misses
//! in a large one). Every write of a control byte keeps that rule, and every read or drop
//! of a slot is preceded by a control byte that says full; the rule is the `SAFETY` argument of
//! every block here, and nothing outside this module sees a slot. Lookups in power-of-two tables
//! also index without bounds checks, from the rule that the control bytes describe the slots.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::mem::{self, MaybeUninit};
use core::slice;

use super::group::{Group, PairSlots, Slots, GROUP};
use super::probe::{Probe, Reduce};
use super::{config, TryReserveError, Vacancy};

// A slot's control byte: empty, dummy, padding (after the slots of a table smaller than a
// group: a probe neither opens nor stops at it, and no insert takes it), or (below 0x80) full
// with 7 bits of the key's hash (`tag`).
//
// CPython reads each probed slot's stored hash and key; here a probe reads the control bytes,
// one byte a slot and so mostly cached, and touches a slot only when its 7 bits match — a miss
// usually never leaves the control array. Deleted entries leave dummies: probes go past them,
// inserts may reuse them, and they count toward the fill.
use super::group::byte::{DUMMY, EMPTY, PAD};

/// The control bytes a sparse table keeps for `slots` slots: with a mask, which probes groups,
/// at least one group.
#[inline(always)]
fn ctrl_len<R: Reduce>(slots: usize) -> usize {
    if R::MASK {
        slots.max(GROUP)
    } else {
        slots
    }
}

/// The control byte of a full slot holding a key with `hash`: bits that the reduction has not
/// used to pick the slot. A mask uses the low bits, so the tag is the top 7 (one shift); Lemire's
/// reduction uses the top bits first, so the tag comes from the middle.
#[inline(always)]
fn tag<R: Reduce>(hash: u64) -> u8 {
    if R::MASK {
        (hash >> 57) as u8
    } else {
        (hash >> 32) as u8 & 0x7f
    }
}

/// Probes whose control bytes a slot-by-slot lookup (exact sizes) reads before it branches on
/// whether the key is absent: at loads of 0.375 to 0.75 a branch per probe would be wrong for a
/// third to a half of the misses.
const MISS_PROBES: usize = 4;

/// Whether a control byte says its slot holds an entry.
#[inline(always)]
fn is_full(byte: u8) -> bool {
    byte < 0x80
}

/// Groups of a two-choice table of `slots` slots: the last one padded if `slots` is not a
/// multiple of the group width.
#[inline(always)]
fn two_choice_groups(slots: usize) -> usize {
    slots.div_ceil(GROUP)
}

/// The group after `group` in a table of `groups`, wrapping.
#[inline(always)]
fn next_group(group: usize, groups: usize) -> usize {
    if group + 1 == groups {
        0
    } else {
        group + 1
    }
}

/// Where a key may sit in a two-choice table: its two groups, from independent bits of its
/// hash by Lemire's reduction (which uses the top bits of its input), and its tag, from the low
/// bits, which neither choice uses.
#[derive(Clone, Copy)]
struct Choices {
    first: usize,
    second: usize,
    tag: u8,
}

impl Choices {
    #[inline(always)]
    fn new(hash: u64, groups: usize) -> Self {
        let reduce = |bits: u64| ((u128::from(bits) * groups as u128) >> 64) as usize;
        Self {
            first: reduce(hash),
            second: reduce(hash.rotate_left(32)),
            tag: hash as u8 & 0x7f,
        }
    }

    /// Whether an entry in `group` passed overflow counts on its way there: whether it sits in
    /// neither of its groups.
    #[inline(always)]
    fn overflowed_to(self, group: usize) -> bool {
        group != self.first && group != self.second
    }
}

/// A step that visits every one of `count` places once, far apart: the one nearest
/// `count / phi` that shares no factor with `count`.
fn scattering_stride(count: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut stride = ((count as u128 * 0x9e37_79b9) >> 32) as usize;
    while gcd(stride.max(1), count) != 1 {
        stride += 1;
    }
    stride.max(1)
}

/// A slot: initialized exactly when its control byte is full. No stored hash (CPython keeps
/// one): it would cost a word a slot, and a resize can rehash the key instead.
type Slot<K, V> = MaybeUninit<(K, V)>;

/// Control bytes (then, for a power-of-two table smaller than a group, padding up to one group,
/// then the configuration's tail) and slots; slot `i` holds an entry exactly when `ctrl[i]` is
/// full. The live and filled counts are the dict's.
pub(crate) struct Sparse<K, V> {
    ctrl: Box<[u8]>,
    slots: Box<[Slot<K, V>]>,
}

/// A sparse table's control bytes (with padding and tail) and slots: what a lookup reads. Only
/// a [`Sparse`] makes one, so the control bytes always describe the slots, and the `unsafe`
/// blocks of lookups rely on it.
pub(crate) struct View<'a, K, V> {
    ctrl: &'a [u8],
    slots: &'a [Slot<K, V>],
}

impl<K, V> Clone for View<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for View<'_, K, V> {}

impl<'a, K, V> View<'a, K, V> {
    /// [`find`](Self::find), out of line: for the layouts other than the tight profile's, so
    /// that lookups stay small enough to inline into their callers.
    ///
    /// The call gets the table's slices, in registers, rather than the dict: with the dict
    /// passed, a caller's loop would reload the dict's fields after each lookup.
    #[inline(always)]
    pub(crate) fn find_out_of_line<R: Reduce, Q>(self, hash: u64, key: &Q) -> Option<(&'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        find_in_slices::<R, K, V, Q>(self.ctrl, self.slots, hash, key)
    }

    /// The entry for `key`, if present: its slot, and its key and value. The table always keeps
    /// an empty slot, which ends the probe.
    ///
    /// It cannot panic (an index out of bounds, which cannot happen, would end the probe) except
    /// in `K`'s `eq`, so an out-of-line call of it reads memory only and a caller's loop keeps the
    /// dict's fields in registers across it.
    #[inline(always)]
    pub(crate) fn find<R: Reduce, Q>(self, hash: u64, key: &Q) -> Option<(usize, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if R::MASK {
            self.find_in_groups::<R, Q>(hash, key)
        } else {
            self.find_slot_by_slot::<R, Q>(hash, key)
        }
    }

    /// The entry for `key` in a two-choice table: its slot, and its key and value. Reads the
    /// key's two groups, then (rarely) the groups after the second while their overflow counts
    /// say that a key passed them. Cannot panic but in `K`'s `eq` (see [`find`](Self::find)).
    #[inline(always)]
    pub(crate) fn find_two_choice<Q>(self, hash: u64, key: &Q) -> Option<(usize, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let groups = two_choice_groups(self.slots.len());
        let (ctrl, overflow) = self.ctrl.split_at_checked(groups * GROUP)?;
        let (ctrl, _) = ctrl.as_chunks::<GROUP>();
        let choices = Choices::new(hash, groups);
        let first = Group::load(ctrl.get(choices.first)?).matching(choices.tag);
        let second = Group::load(ctrl.get(choices.second)?).matching(choices.tag);
        let mut candidates = PairSlots::new(first, second);
        while let Some((in_second, in_group)) = candidates.next_lowest() {
            let group = if in_second {
                choices.second
            } else {
                choices.first
            };
            if let Some(found) = self.open(group * GROUP + in_group, key) {
                return Some(found);
            }
        }
        // Bounded by the table: a count that stays saturated cannot make the walk go round
        // for ever.
        let mut group = choices.second;
        for _ in 1..groups {
            if *overflow.get(group)? == 0 {
                return None;
            }
            group = next_group(group, groups);
            let mut matches = Group::load(ctrl.get(group)?).matching(choices.tag);
            while let Some(in_group) = matches.next_lowest() {
                if let Some(found) = self.open(group * GROUP + in_group, key) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// The entry in slot `at`, whose control byte matched `key`'s tag, if it has `key`.
    #[inline(always)]
    fn open<Q>(self, at: usize, key: &Q) -> Option<(usize, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // Padding is never full, so a matching byte is a slot's: `get` always finds it.
        let slot = self.slots.get(at)?;
        // SAFETY: the slot's control byte is the tag or the tag with its low bit flipped
        // (`Group::matching`), so full: the slot holds an entry.
        let (k, v) = unsafe { slot.assume_init_ref() };
        (k.borrow() == key).then_some((at, k, v))
    }

    /// [`find`](Self::find) in a power-of-two table, a group at a time: the slots whose control
    /// byte has the key's tag, from one load, and whether the group has an empty slot, which
    /// ends the probe. At the tight profile's loads the first group almost always decides, so a
    /// lookup has no branch that is often wrong.
    #[inline(always)]
    fn find_in_groups<R: Reduce, Q>(self, hash: u64, key: &Q) -> Option<(usize, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (groups, _) = self.ctrl.as_chunks::<GROUP>();
        let tag = tag::<R>(hash);
        let mut probe = Probe::<R>::new(ctrl_len::<R>(self.slots.len()) / GROUP, hash);
        loop {
            // SAFETY: the mask keeps the group below the count of groups of control bytes, a
            // power of two and at least one; the view's bytes hold those groups (and the tail).
            let group = Group::load(unsafe { groups.get_unchecked(probe.slot) });
            let mut matches = group.matching(tag);
            while let Some(in_group) = matches.next_lowest() {
                let at = probe.slot * GROUP + in_group;
                // SAFETY: the slot's control byte is the tag or the tag with its low bit flipped
                // (`Group::matching`), so full, and full bytes are those of slots (padding
                // follows them): the slot exists and holds an entry.
                let (k, v) = unsafe { self.slots.get_unchecked(at).assume_init_ref() };
                if k.borrow() == key {
                    return Some((at, k, v));
                }
            }
            if group.empty().any() {
                return None;
            }
            probe.advance();
        }
    }

    /// [`find`](Self::find) in a table of any size, a slot at a time.
    ///
    /// With Lemire's reduction the compiler cannot prove an index in bounds, so each probe is
    /// checked (and would end the lookup, which cannot happen).
    #[inline(always)]
    fn find_slot_by_slot<R: Reduce, Q>(self, hash: u64, key: &Q) -> Option<(usize, &'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let n = self.slots.len();
        let (ctrl, slots) = (self.ctrl.get(..n)?, self.slots);
        let tag = tag::<R>(hash);
        let mut probe = Probe::<R>::new(n, hash);
        // The first probes are peeled and decided without a branch that is often wrong (the
        // position of a key, or of the empty slot that ends a miss, is random: a branch per
        // probe is wrong for one hit in five to ten and a third to a half of the misses at
        // loads of 0.4 to 0.75). The slot opened is the first probe's if its control byte
        // has the key's tag, else the second's, chosen by arithmetic (the compiler folds a
        // select back into the branch); a miss is certain once none of the first
        // MISS_PROBES bytes has the tag before an empty one, one test of their maximum
        // (EMPTY is the largest byte). `kernel/docs/dict-notes.md` has the measurements.
        let at = probe.slot;
        let first = *ctrl.get(at)?;
        probe.advance();
        let in_first = usize::from(first == tag).wrapping_neg();
        let pick = probe.slot ^ ((at ^ probe.slot) & in_first);
        let picked = *ctrl.get(pick)?;
        if picked == tag {
            if let Some(slot) = slots.get(pick) {
                // SAFETY: the slot's control byte is a tag, so full.
                let (k, v) = unsafe { slot.assume_init_ref() };
                if k.borrow() == key {
                    return Some((pick, k, v));
                }
            }
            // A tag without the key (one in 128): the loop starts over from the first probe.
            probe = Probe::<R>::new(n, hash);
        } else {
            // Neither of the first two bytes has the tag (the second is the one picked): the
            // key is absent if an empty byte comes before any tag in the first MISS_PROBES
            // probes. `open` masks the bytes after a tag, which no longer end the probe.
            let mut ended = first.max(picked);
            let mut open = u8::MAX;
            for _ in 2..MISS_PROBES {
                probe.advance();
                let byte = *ctrl.get(probe.slot)?;
                ended = ended.max(byte & open);
                open &= u8::from(byte == tag).wrapping_sub(1);
            }
            if ended == EMPTY {
                return None;
            }
            probe = Probe::<R>::new(n, hash);
        }
        loop {
            let byte = *ctrl.get(probe.slot)?;
            if byte == tag {
                if let Some(slot) = slots.get(probe.slot) {
                    // SAFETY: the slot's control byte is a tag, so full.
                    let (k, v) = unsafe { slot.assume_init_ref() };
                    if k.borrow() == key {
                        return Some((probe.slot, k, v));
                    }
                }
            } else if byte == EMPTY {
                return None;
            }
            probe.advance();
        }
    }
}

/// [`View::find_out_of_line`]'s body: the view's slices, which come from a [`View`] and so keep
/// its rule.
#[inline(never)]
fn find_in_slices<'a, R: Reduce, K, V, Q>(
    ctrl: &'a [u8],
    slots: &'a [Slot<K, V>],
    hash: u64,
    key: &Q,
) -> Option<(&'a K, &'a V)>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let (_, k, v) = View { ctrl, slots }.find::<R, Q>(hash, key)?;
    Some((k, v))
}

impl<K, V> Sparse<K, V> {
    /// An empty table of `slots` (non-zero) slots ending with `tail`; on failure nothing is
    /// allocated.
    pub(crate) fn try_new<R: Reduce>(slots: usize, tail: &[u8]) -> Result<Self, TryReserveError> {
        Self::allocate(slots, ctrl_len::<R>(slots), 0, tail)
    }

    /// An empty two-choice table of `slots` (non-zero) slots ending with `tail`: its control
    /// bytes padded to whole groups, then a zero overflow count a group; on failure nothing is
    /// allocated.
    pub(crate) fn try_new_two_choice(slots: usize, tail: &[u8]) -> Result<Self, TryReserveError> {
        let groups = two_choice_groups(slots);
        Self::allocate(slots, groups * GROUP, groups, tail)
    }

    /// Slots, and control bytes: `slots` empty ones, padding up to `padded`, `zeros` zero
    /// bytes, and the tail.
    fn allocate(
        slots: usize,
        padded: usize,
        zeros: usize,
        tail: &[u8],
    ) -> Result<Self, TryReserveError> {
        let len = (padded + zeros)
            .checked_add(tail.len())
            .ok_or(TryReserveError::CapacityOverflow)?;
        let mut ctrl = Vec::new();
        ctrl.try_reserve_exact(len)
            .map_err(|_| TryReserveError::refused::<u8>(len))?;
        let mut fresh = Vec::new();
        fresh
            .try_reserve_exact(slots)
            .map_err(|_| TryReserveError::refused::<Slot<K, V>>(slots))?;
        ctrl.resize(slots, EMPTY);
        ctrl.resize(padded, PAD);
        ctrl.resize(padded + zeros, 0);
        ctrl.extend_from_slice(tail);
        fresh.resize_with(slots, MaybeUninit::uninit);
        Ok(Self {
            ctrl: ctrl.into_boxed_slice(),
            slots: fresh.into_boxed_slice(),
        })
    }

    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The configuration's tail.
    pub(crate) fn tail(&self) -> &[u8] {
        config::tail_of(&self.ctrl)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ctrl.len() + mem::size_of_val::<[Slot<K, V>]>(&self.slots)
    }

    /// The control bytes (with padding and tail) and slots, for lookups.
    #[inline(always)]
    pub(crate) fn view(&self) -> View<'_, K, V> {
        View {
            ctrl: &self.ctrl,
            slots: &self.slots,
        }
    }

    /// The key's slot, or where inserting it would go: the first dummy on its probe path, else
    /// the empty slot that ends the path (as CPython's `lookdict` `freeslot`). In a power-of-two
    /// table the path goes a group at a time, and within a group in slot order.
    #[inline]
    pub(crate) fn find_or_vacant<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Result<usize, Vacancy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if R::MASK {
            return self.find_or_vacant_in_groups::<R, Q>(hash, key);
        }
        let n = self.slots.len();
        let (ctrl, slots) = (&self.ctrl[..n], &self.slots[..n]);
        let tag = tag::<R>(hash);
        let mut probe = Probe::<R>::new(n, hash);
        let mut dummy = None;
        loop {
            match ctrl[probe.slot] {
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
                byte if byte == tag => {
                    // SAFETY: the slot's control byte is a tag, so full.
                    let (k, _) = unsafe { slots[probe.slot].assume_init_ref() };
                    if k.borrow() == key {
                        return Ok(probe.slot);
                    }
                }
                _ => {}
            }
            probe.advance();
        }
    }

    /// [`find_or_vacant`](Self::find_or_vacant) a group at a time.
    fn find_or_vacant_in_groups<R: Reduce, Q>(&self, hash: u64, key: &Q) -> Result<usize, Vacancy>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let view = self.view();
        if let Some((slot, ..)) = view.find_in_groups::<R, Q>(hash, key) {
            return Ok(slot);
        }
        // Absent: the first vacant slot on the same path, which ends no later than the lookup's.
        let slot = self.first_in_groups::<R>(hash, Group::vacant);
        Err(Vacancy {
            slot,
            empty: self.ctrl[slot] == EMPTY,
        })
    }

    /// The first slot on `hash`'s group path that `wanted` picks out of its group (the table
    /// must have one: every path reaches an empty slot).
    fn first_in_groups<R: Reduce>(&self, hash: u64, wanted: impl Fn(Group) -> Slots) -> usize {
        let n = ctrl_len::<R>(self.slots.len());
        let (groups, _) = self.ctrl[..n].as_chunks::<GROUP>();
        let mut probe = Probe::<R>::new(groups.len(), hash);
        loop {
            let found = wanted(Group::load(&groups[probe.slot]));
            if found.any() {
                return probe.slot * GROUP + found.lowest();
            }
            probe.advance();
        }
    }

    /// The empty slot ending `hash`'s probe path.
    #[inline]
    fn vacant<R: Reduce>(&self, hash: u64) -> usize {
        if R::MASK {
            return self.first_in_groups::<R>(hash, Group::empty);
        }
        let n = self.slots.len();
        let ctrl = &self.ctrl[..n];
        let mut probe = Probe::<R>::new(n, hash);
        while ctrl[probe.slot] != EMPTY {
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

    /// Puts an entry into `slot`, which must not be full (a vacancy's slot).
    #[inline]
    pub(crate) fn insert_at<R: Reduce>(
        &mut self,
        slot: usize,
        hash: u64,
        key: K,
        value: V,
    ) -> (&K, &mut V) {
        assert!(!is_full(self.ctrl[slot]), "dict vacancy is full");
        let (k, v) = self.slots[slot].write((key, value));
        // After the write: the byte then says full of a written slot.
        self.ctrl[slot] = tag::<R>(hash);
        (k, v)
    }

    /// The entry in `slot`, which must be full (a position found by a lookup).
    pub(crate) fn entry(&self, slot: usize) -> (&K, &V) {
        assert!(is_full(self.ctrl[slot]), "dict position names no entry");
        // SAFETY: the slot's control byte is full.
        let (k, v) = unsafe { self.slots[slot].assume_init_ref() };
        (k, v)
    }

    /// [`entry`](Self::entry) with the value mutable.
    pub(crate) fn entry_mut(&mut self, slot: usize) -> (&K, &mut V) {
        assert!(is_full(self.ctrl[slot]), "dict position names no entry");
        // SAFETY: the slot's control byte is full.
        let (k, v) = unsafe { self.slots[slot].assume_init_mut() };
        (k, v)
    }

    /// Takes the entry out of `slot`, leaving a dummy.
    pub(crate) fn remove_at(&mut self, slot: usize) -> (K, V) {
        let entry = &mut self.slots[slot];
        let byte = &mut self.ctrl[slot];
        assert!(is_full(*byte), "dict position names no entry");
        // Before the read: the byte no longer claims the entry being moved out.
        *byte = DUMMY;
        // SAFETY: the slot's control byte was full, and is now a dummy, so nothing reads or drops
        // the slot again: the entry is moved out once.
        unsafe { entry.assume_init_read() }
    }

    /// Moves every entry of `self` into `into` (empty, large enough, same reduction).
    pub(crate) fn move_into<R: Reduce>(mut self, into: &mut Self, hash: impl Fn(&K) -> u64) {
        for slot in 0..self.slots.len() {
            if !is_full(self.ctrl[slot]) {
                continue;
            }
            // Taken out first: if `hash` panics, the entry is dropped once, by the unwinding,
            // and the rest by `self`'s and `into`'s drops.
            let (k, v) = self.remove_at(slot);
            let h = hash(&k);
            let at = into.vacant::<R>(h);
            into.insert_at::<R>(at, h, k, v);
        }
    }

    /// The slot a two-choice insert of an absent key takes: an empty slot of the emptier of
    /// its two groups (the first on a tie); else one that moving an entry of those groups to its
    /// other group frees (one step of cuckoo hashing: `hash` hashes that entry's key); else an
    /// empty slot of the first group after the second that has one. `None` if the table is full.
    ///
    /// The move keeps overflows, and so lookups that go past their two groups, rare: without
    /// it one insert in a hundred overflows at the max load.
    ///
    /// A group's emptiness is judged by its lowest empty slot: inserts fill a group from its
    /// first slot, so that is its count of entries, unless removals have left holes (then the
    /// group looks emptier than it is, which costs a little balance and nothing else). It saves
    /// counting bits, which CPUs without a population count instruction do slowly.
    #[inline(always)]
    fn place(&mut self, choices: Choices, hash: &impl Fn(&K) -> u64) -> Option<usize> {
        let groups = two_choice_groups(self.slots.len());
        let (ctrl, _) = self.ctrl[..groups * GROUP].as_chunks::<GROUP>();
        let first = Group::load(&ctrl[choices.first]).empty();
        let second = Group::load(&ctrl[choices.second]).empty();
        if first.any() || second.any() {
            // Chosen by arithmetic: which group is emptier is a coin toss, and a branch on it
            // would be mispredicted for every other entry a resize moves. An empty set's lowest
            // slot is past any slot, so a full group is never the emptier.
            let in_first = first.lowest() <= second.lowest();
            let pick = usize::from(in_first).wrapping_neg();
            let at_first = choices.first * GROUP + first.lowest();
            let at_second = choices.second * GROUP + second.lowest();
            return Some(at_second ^ ((at_first ^ at_second) & pick));
        }
        if let Some(freed) = self.move_aside(choices, hash) {
            return Some(freed);
        }
        let groups = two_choice_groups(self.slots.len());
        let (ctrl, _) = self.ctrl[..groups * GROUP].as_chunks::<GROUP>();
        let mut group = choices.second;
        for _ in 1..groups {
            group = next_group(group, groups);
            let empty = Group::load(&ctrl[group]).empty();
            if empty.any() {
                return Some(group * GROUP + empty.lowest());
            }
        }
        None
    }

    /// Frees a slot of `choices`' two (full) groups by moving one of their entries to its other
    /// group, if that has an empty slot; returns the freed slot. Hashes each entry it considers
    /// before changing anything, so a panicking `hash` leaves the table as it was.
    #[cold]
    fn move_aside(&mut self, choices: Choices, hash: &impl Fn(&K) -> u64) -> Option<usize> {
        let groups = two_choice_groups(self.slots.len());
        for group in [choices.first, choices.second] {
            let end = (group * GROUP + GROUP).min(self.slots.len());
            for slot in group * GROUP..end {
                if !is_full(self.ctrl[slot]) {
                    continue;
                }
                // SAFETY: the slot's control byte is full.
                let (key, _) = unsafe { self.slots[slot].assume_init_ref() };
                let theirs = Choices::new(hash(key), groups);
                let other = if theirs.first == group {
                    theirs.second
                } else if theirs.second == group {
                    theirs.first
                } else {
                    // An overflowed entry: its overflow counts name this group.
                    continue;
                };
                let bytes: &[u8; GROUP] = self.ctrl[other * GROUP..][..GROUP]
                    .try_into()
                    .expect("a group's bytes");
                let empty = Group::load(bytes).empty();
                if other == group || !empty.any() {
                    continue;
                }
                let to = other * GROUP + empty.lowest();
                let tag = self.ctrl[slot];
                // Out, then in: the entry's tag moves with it, and it stays in one of its
                // groups, so no overflow count changes.
                self.ctrl[slot] = EMPTY;
                // SAFETY: the slot's control byte was full and is now empty: read once.
                let entry = unsafe { self.slots[slot].assume_init_read() };
                self.slots[to].write(entry);
                self.ctrl[to] = tag;
                return Some(slot);
            }
        }
        None
    }

    /// Inserts an absent key with `hash` into a two-choice table (which must have an empty
    /// slot: an insert grows it first if not); returns its slot. `rehash` hashes keys already
    /// in the table (see [`place`](Self::place)).
    pub(crate) fn insert_two_choice(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
    ) -> (usize, &K, &mut V) {
        let choices = Choices::new(hash, two_choice_groups(self.slots.len()));
        let slot = self
            .place(choices, &rehash)
            .expect("a dict table below its capacity has an empty slot");
        let (k, v) = self.put(slot, choices, (key, value));
        (slot, k, v)
    }

    /// Puts `entry`, whose key has `choices`, into the empty `slot`.
    #[inline(always)]
    fn put(&mut self, slot: usize, choices: Choices, entry: (K, V)) -> (&K, &mut V) {
        assert!(!is_full(self.ctrl[slot]), "dict vacancy is full");
        // A count that saturates stays so: lookups then always walk past its group.
        self.passed_groups(slot, choices, |count| count.saturating_add(1));
        let (k, v) = self.slots[slot].write(entry);
        // After the write: the byte then says full of a written slot.
        self.ctrl[slot] = choices.tag;
        (k, v)
    }

    /// Applies `change` to the overflow count of every group that a key with `choices` passed
    /// on its way to `slot`'s group (none if that is one of its two).
    #[inline(always)]
    fn passed_groups(&mut self, slot: usize, choices: Choices, change: impl Fn(u8) -> u8) {
        let target = slot / GROUP;
        if !choices.overflowed_to(target) {
            return;
        }
        let groups = two_choice_groups(self.slots.len());
        let counts = &mut self.ctrl[groups * GROUP..groups * GROUP + groups];
        let mut group = choices.second;
        while group != target {
            counts[group] = change(counts[group]);
            group = next_group(group, groups);
        }
    }

    /// Takes the entry out of `slot` of a two-choice table, whose key has `hash`, leaving the
    /// slot empty: lookups do not stop at empty slots, so no dummy is needed.
    #[inline]
    pub(crate) fn remove_two_choice(&mut self, slot: usize, hash: u64) -> (K, V) {
        assert!(is_full(self.ctrl[slot]), "dict position names no entry");
        let choices = Choices::new(hash, two_choice_groups(self.slots.len()));
        self.passed_groups(slot, choices, |count| match count {
            u8::MAX => u8::MAX,
            count => count.saturating_sub(1),
        });
        // Before the read: the byte no longer claims the entry being moved out.
        self.ctrl[slot] = EMPTY;
        // SAFETY: the slot's control byte was full, and is now empty, so nothing reads or drops
        // the slot again: the entry is moved out once.
        unsafe { self.slots[slot].assume_init_read() }
    }

    /// [`move_into`](Self::move_into) for two-choice tables (`into` must hold every entry).
    ///
    /// The old slots are visited in a scattered order, not one after the other: each entry of
    /// an old group has one of its new groups at about the same place in the new table, so in
    /// slot order the entries would all arrive where the new table is still empty and fill it,
    /// leaving later entries both of their groups full (a quarter of the groups overflowed after
    /// a resize at 100000 entries, against about 1 in 20 with the old groups scattered).
    pub(crate) fn move_into_two_choice(mut self, into: &mut Self, hash: impl Fn(&K) -> u64) {
        let slots = self.slots.len();
        let into_groups = two_choice_groups(into.slots.len());
        let stride = scattering_stride(slots);
        let mut slot = 0;
        for _ in 0..slots {
            if is_full(self.ctrl[slot]) {
                // As in `move_into`: out first, so a panicking hasher drops it once.
                let entry = self.remove_at(slot);
                let choices = Choices::new(hash(&entry.0), into_groups);
                let at = into
                    .place(choices, &hash)
                    .expect("a rebuilt dict table holds every entry");
                into.put(at, choices, entry);
            }
            slot += stride;
            if slot >= slots {
                slot -= slots;
            }
        }
    }

    /// The entries, in slot order.
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            ctrl: self.ctrl[..self.slots.len()].iter(),
            slots: self.slots.iter(),
        }
    }

    /// The entries with mutable values, in slot order.
    pub(crate) fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut {
            ctrl: self.ctrl[..self.slots.len()].iter(),
            slots: self.slots.iter_mut(),
        }
    }

    /// The entries by value, in slot order.
    pub(crate) fn into_entries(self) -> IntoIter<K, V> {
        IntoIter {
            table: self,
            next: 0,
        }
    }

    /// Drops every entry, emptying each slot's control byte first: an entry whose destructor
    /// panics is not dropped again.
    fn drop_entries(&mut self) {
        for (byte, slot) in self.ctrl.iter_mut().zip(self.slots.iter_mut()) {
            if is_full(*byte) {
                *byte = EMPTY;
                // SAFETY: the slot's control byte was full; it is now empty, so the entry is
                // dropped once.
                unsafe { slot.assume_init_drop() };
            }
        }
    }
}

impl<K, V> Drop for Sparse<K, V> {
    fn drop(&mut self) {
        if !mem::needs_drop::<(K, V)>() {
            return;
        }
        /// Drops the entries left should a destructor panic, as a slice's drop does.
        struct DropRest<'a, K, V>(&'a mut Sparse<K, V>);

        impl<K, V> Drop for DropRest<'_, K, V> {
            fn drop(&mut self) {
                self.0.drop_entries();
            }
        }

        let rest = DropRest(self);
        rest.0.drop_entries();
        mem::forget(rest);
    }
}

impl<K: Clone, V: Clone> Clone for Sparse<K, V> {
    fn clone(&self) -> Self {
        let n = self.slots.len();
        let mut ctrl = self.ctrl.clone();
        // Dummies stay (a probe must still pass them); full bytes come back with their entries.
        for byte in &mut ctrl[..n] {
            if is_full(*byte) {
                *byte = EMPTY;
            }
        }
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, MaybeUninit::uninit);
        let mut copy = Self {
            ctrl,
            slots: slots.into_boxed_slice(),
        };
        for slot in 0..n {
            let byte = self.ctrl[slot];
            if is_full(byte) {
                let (k, v) = self.entry(slot);
                copy.slots[slot].write((k.clone(), v.clone()));
                // After the write: should a later `clone` panic, the copy drops what it holds.
                copy.ctrl[slot] = byte;
            }
        }
        copy
    }
}

/// Borrowing iterator over a sparse table's entries.
pub(crate) struct Iter<'a, K, V> {
    ctrl: slice::Iter<'a, u8>,
    slots: slice::Iter<'a, Slot<K, V>>,
}

// By hand: derived impls would demand `K: Clone, V: Clone`, which cloning borrows does not need.
impl<K, V> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        Self {
            ctrl: self.ctrl.clone(),
            slots: self.slots.clone(),
        }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (byte, slot) = (self.ctrl.next()?, self.slots.next()?);
            if is_full(*byte) {
                // SAFETY: the slot's control byte is full, and the borrow of the table keeps it so.
                let (k, v) = unsafe { slot.assume_init_ref() };
                return Some((k, v));
            }
        }
    }
}

/// Iterator over a sparse table's entries with mutable values.
pub(crate) struct IterMut<'a, K, V> {
    ctrl: slice::Iter<'a, u8>,
    slots: slice::IterMut<'a, Slot<K, V>>,
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (byte, slot) = (self.ctrl.next()?, self.slots.next()?);
            if is_full(*byte) {
                // SAFETY: the slot's control byte is full, and the borrow of the table keeps it so.
                let (k, v) = unsafe { slot.assume_init_mut() };
                return Some((&*k, v));
            }
        }
    }
}

/// Owning iterator over a sparse table's entries; the entries not taken are dropped with it.
pub(crate) struct IntoIter<K, V> {
    table: Sparse<K, V>,
    /// The first slot not yet looked at.
    next: usize,
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        while self.next < self.table.slots.len() {
            let slot = self.next;
            self.next += 1;
            if is_full(self.table.ctrl[slot]) {
                return Some(self.table.remove_at(slot));
            }
        }
        None
    }
}
