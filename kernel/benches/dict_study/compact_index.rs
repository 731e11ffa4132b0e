//! Issue 17 study: a compact index over dense entries that never move, as `lean` might grow.
//!
//! Not the dict: a prototype timed and sized beside it (`-- compact-index`). Entries live in
//! chunks of `CHUNK` that are never copied once full (only the last chunk grows, in small steps,
//! by reallocation). The index is a table of 2-byte slots under one control byte each: the byte
//! holds a 6-bit tag of the hash and the entry number's 17th bit, so 3 bytes a slot number up to
//! 131072 entries. It is probed as `lean` probes its entries: two groups of 16 a key (the emptier
//! takes an insert; a lookup reads both, then walks on in pairs only past two groups that were
//! full). Growth rebuilds the index alone, from the entries' keys rehashed in order.

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
};
use std::hash::BuildHasher;

use spindle::dict::hash::FastState;

/// Control bytes a group holds (one SSE2 register).
const GROUP: usize = 16;
const EMPTY: u8 = 0xff;
/// Past the last slot of a table smaller than a group: never matches, never vacant.
const PAD: u8 = 0xbf;
/// Entries a full chunk holds.
const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Entry numbers the 17 bits (2 bytes and a control bit) can hold.
const MAX_ENTRIES: usize = 1 << 17;

/// The index's max load and growth (the load after a rebuild is about max load / growth).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub max_load: (usize, usize),
    pub growth: (usize, usize),
}

#[derive(Clone)]
pub struct CompactIndex {
    chunks: Vec<Vec<(u64, u64)>>,
    len: usize,
    ctrl: Box<[u8]>,
    slot: Box<[u16]>,
    /// A group's flag: some entry walked past a pair holding it (both groups full), so a miss
    /// there walks on. As `lean`'s overflow counts: a group's emptiness alone would end few
    /// misses, since the emptier-of-two placement fills groups evenly to the brim.
    passed: Box<[bool]>,
    groups: usize,
    /// The control bytes' tag bits: `0xff` (7-bit tags) while entry numbers fit 16 bits, else
    /// `0xfe` (the low bit is the entry number's 17th).
    keep: u8,
    /// Full slots (removal empties its slot: there are no tombstones).
    used: usize,
    /// `used` at which the index is rebuilt.
    cap: usize,
    params: Params,
    /// Keys rehashed into a new index, over the map's life.
    pub rehashes: usize,
    /// Entries copied by the last chunk's reallocations.
    pub copied: usize,
}

#[derive(Clone, Copy)]
struct Group(__m128i);

impl Group {
    #[inline(always)]
    fn load(ctrl: &[u8], group: usize) -> Self {
        debug_assert!((group + 1) * GROUP <= ctrl.len());
        // SAFETY: callers pass a group of the table (`pair` and `next` stay below `groups`, and
        // the control bytes are `groups * GROUP` long): 16 bytes read unaligned. SSE2 is
        // baseline on x86_64, the only target this bench study builds for.
        Group(unsafe { _mm_loadu_si128(ctrl.as_ptr().add(group * GROUP).cast()) })
    }

    /// Slots whose byte, masked by `keep` (less the entry bit in a wide table), is `tagged`.
    #[inline(always)]
    fn matching(self, tagged: u8, keep: u8) -> u32 {
        // SAFETY: SSE2 is baseline on x86_64; the intrinsics only compute.
        let mask = unsafe {
            let masked = _mm_and_si128(self.0, _mm_set1_epi8(keep as i8));
            _mm_movemask_epi8(_mm_cmpeq_epi8(masked, _mm_set1_epi8(tagged as i8)))
        };
        mask as u32 & 0xffff
    }

    #[inline(always)]
    fn equal(self, byte: u8) -> u32 {
        // SAFETY: SSE2 is baseline on x86_64; the intrinsics only compute.
        let mask = unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(self.0, _mm_set1_epi8(byte as i8))) };
        mask as u32 & 0xffff
    }

    #[inline(always)]
    fn vacant(self) -> u32 {
        self.equal(EMPTY)
    }
}

#[inline(always)]
fn hash(key: u64) -> u64 {
    FastState.hash_one(key)
}

/// The control byte's tag (bits 40..47 of the hash: neither group's reduction leans on them):
/// 7 bits, or in a wide table (entry numbers of 17 bits) 6 bits over the entry bit.
#[inline(always)]
fn tagged(h: u64, keep: u8) -> u8 {
    (h >> 40) as u8 & 0x7f & keep
}

impl CompactIndex {
    pub fn new(params: Params) -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
            ctrl: Box::new([]),
            slot: Box::new([]),
            passed: Box::new([]),
            groups: 0,
            keep: 0xff,
            used: 0,
            cap: 0,
            params,
            rehashes: 0,
            copied: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Struct and heap bytes, as a counting allocator sees them.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<(u64, u64)>>()
            + self.chunks.iter().map(|c| c.capacity() * 16).sum::<usize>()
            + self.ctrl.len()
            + self.slot.len() * 2
            + self.passed.len()
    }

    #[inline(always)]
    fn pair(&self, h: u64) -> (usize, usize) {
        let groups = self.groups as u64;
        let a = ((h & 0xffff_ffff) * groups) >> 32;
        let b = ((h >> 32) * groups) >> 32;
        (a as usize, b as usize)
    }

    #[inline(always)]
    fn next(&self, g: usize) -> usize {
        if g + 1 == self.groups {
            0
        } else {
            g + 1
        }
    }

    #[inline(always)]
    fn entry(&self, e: usize) -> &(u64, u64) {
        debug_assert!(e < self.len);
        // SAFETY: `e` is an entry number read from a full index slot, which is below `len`:
        // chunk `e / CHUNK` exists and holds entry `e % CHUNK`.
        unsafe {
            self.chunks
                .get_unchecked(e >> CHUNK_BITS)
                .get_unchecked(e & (CHUNK - 1))
        }
    }

    #[inline(always)]
    fn entry_at(&self, slot: usize) -> usize {
        debug_assert!(slot < self.slot.len());
        // SAFETY: `slot` is a full slot from a group's match, and full slots are below
        // `slot.len()` (past it the control bytes are `PAD`, which never matches).
        unsafe {
            *self.slot.get_unchecked(slot) as usize
                | (usize::from(*self.ctrl.get_unchecked(slot) & !self.keep) << 16)
        }
    }

    /// The slot and entry number of `key`.
    #[inline(always)]
    fn find(&self, key: u64, h: u64) -> Option<(usize, usize)> {
        if self.groups == 0 {
            return None;
        }
        let keep = self.keep;
        let tag = tagged(h, keep);
        let (mut a, mut b) = self.pair(h);
        loop {
            let (ga, gb) = (Group::load(&self.ctrl, a), Group::load(&self.ctrl, b));
            let mut bits = ga.matching(tag, keep) | (gb.matching(tag, keep) << 16);
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let slot = if i < GROUP {
                    a * GROUP + i
                } else {
                    b * GROUP + i - GROUP
                };
                let e = self.entry_at(slot);
                if self.entry(e).0 == key {
                    return Some((slot, e));
                }
            }
            if !(self.passed[a] && self.passed[b]) {
                return None;
            }
            a = self.next(a);
            b = self.next(b);
        }
    }

    #[inline(always)]
    pub fn get(&self, key: &u64) -> Option<&u64> {
        self.find(*key, hash(*key)).map(|(_, e)| &self.entry(e).1)
    }

    /// Puts entry number `e` of hash `h` in the emptier of its groups (the one whose lowest
    /// vacant slot is lower), walking on in pairs past two full groups.
    fn place(&mut self, h: u64, e: usize) {
        let (mut a, mut b) = self.pair(h);
        loop {
            let va = Group::load(&self.ctrl, a).vacant();
            let vb = Group::load(&self.ctrl, b).vacant();
            if va | vb != 0 {
                let (g, v) = if va != 0 && (vb == 0 || va.trailing_zeros() <= vb.trailing_zeros()) {
                    (a, va)
                } else {
                    (b, vb)
                };
                let slot = g * GROUP + v.trailing_zeros() as usize;
                if self.ctrl[slot] == EMPTY {
                    self.used += 1;
                }
                self.ctrl[slot] = tagged(h, self.keep) | (e >> 16) as u8;
                self.slot[slot] = e as u16;
                return;
            }
            self.passed[a] = true;
            self.passed[b] = true;
            a = self.next(a);
            b = self.next(b);
        }
    }

    /// Rebuilds the index for `wanted` entries at load max load / growth.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, wanted: usize) {
        let Params {
            max_load: (ln, ld),
            growth: (gn, gd),
        } = self.params;
        let slots = (wanted * gn * ld).div_ceil(gd * ln).max(wanted + 1);
        let (groups, slots) = if slots <= GROUP {
            (1, slots)
        } else {
            let groups = slots.div_ceil(GROUP);
            (groups, groups * GROUP)
        };
        let mut ctrl = vec![EMPTY; groups * GROUP];
        ctrl[slots..].fill(PAD);
        self.ctrl = ctrl.into_boxed_slice();
        self.slot = vec![0; slots].into_boxed_slice();
        self.passed = vec![false; groups].into_boxed_slice();
        self.groups = groups;
        self.keep = if slots > 1 << 16 { 0xfe } else { 0xff };
        self.used = 0;
        self.cap = (slots * ln / ld).clamp(1, slots);
        for e in 0..self.len {
            let h = hash(self.entry(e).0);
            self.place(h, e);
        }
        self.rehashes += self.len;
    }

    /// Room for one more entry at the end of the last chunk.
    fn push_entry(&mut self, entry: (u64, u64)) {
        let full = self.chunks.last().is_none_or(|c| c.len() == CHUNK);
        if full {
            self.chunks.push(Vec::new());
        }
        let last = self.chunks.last_mut().unwrap();
        if last.len() == last.capacity() {
            let step = (last.capacity() / 4).clamp(4, 16);
            self.copied += last.len();
            last.reserve_exact(step.min(CHUNK - last.len()));
        }
        last.push(entry);
        self.len += 1;
    }

    #[inline(always)]
    pub fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        let h = hash(key);
        if let Some((_, e)) = self.find(key, h) {
            let (chunk, at) = (e >> CHUNK_BITS, e & (CHUNK - 1));
            return Some(std::mem::replace(&mut self.chunks[chunk][at].1, value));
        }
        assert!(
            self.len < MAX_ENTRIES,
            "the study's index numbers 2^17 entries"
        );
        if self.used >= self.cap {
            self.rebuild(self.len + 1);
        }
        self.place(h, self.len);
        self.push_entry((key, value));
        None
    }

    /// Reserves index slots for `additional` more entries (the entries grow as they come).
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len + additional;
        if wanted > self.cap.saturating_sub(self.used - self.len) {
            let Params {
                max_load: (ln, ld),
                growth: (gn, gd),
            } = self.params;
            // Sized so that `wanted` entries fit under the max load.
            self.rebuild((wanted * ld * gd).div_ceil(ln * gn));
        }
    }

    #[inline(always)]
    pub fn remove(&mut self, key: &u64) -> Option<u64> {
        let (slot, e) = self.find(*key, hash(*key))?;
        // Walks end on the groups' flags, not on empty slots, so the slot is simply empty again.
        self.ctrl[slot] = EMPTY;
        self.used -= 1;
        let last = self.len - 1;
        let moved = self.chunks.last_mut().unwrap().pop().unwrap();
        if self.chunks.last().unwrap().is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        let value = if e == last {
            moved.1
        } else {
            // The last entry fills the hole; its index slot is found by its hash and number.
            let (chunk, at) = (e >> CHUNK_BITS, e & (CHUNK - 1));
            let removed = std::mem::replace(&mut self.chunks[chunk][at], moved);
            let h = hash(moved.0);
            let (mut a, mut b) = self.pair(h);
            'walk: loop {
                for g in [a, b] {
                    let keep = self.keep;
                    let mut bits = Group::load(&self.ctrl, g).matching(tagged(h, keep), keep);
                    while bits != 0 {
                        let s = g * GROUP + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if self.entry_at(s) == last {
                            self.ctrl[s] = tagged(h, keep) | (e >> 16) as u8;
                            self.slot[s] = e as u16;
                            break 'walk;
                        }
                    }
                }
                a = self.next(a);
                b = self.next(b);
            }
            removed.1
        };
        Some(value)
    }
}
