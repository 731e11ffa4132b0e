//! Tight dict: a CPython-style open-addressing hash table tunable for fixed memory.
//!
//! ```
//! use spindle::dict::{Dict, DictConfig};
//!
//! let mut squares: Dict<u32, u32> = Dict::new(); // the tight profile; allocates nothing yet
//! for n in 0..12 {
//!     // Fallible: a refused allocation hands the key and value back and changes nothing.
//!     squares.try_insert(n, n * n).expect("the heap has room");
//! }
//! assert_eq!(squares.get(&11), Some(&121));
//!
//! let mut cpython = Dict::with_config(DictConfig::cpython27());
//! let mut compact = Dict::with_config(DictConfig::exact_compact());
//! cpython.extend((0..12).map(|n| (n, n * n)));
//! compact.extend((0..12).map(|n| (n, n * n)));
//! assert!(cpython == squares && compact == squares); // the same entries in every layout
//!
//! // The seed (the Stackless-on-PS3 document Spindle was made from) measured 32-bit CPython:
//! // its tuned build holds these 12 entries in 448 bytes, CPython 2.7 in 532.
//! assert_eq!(squares.cpython32_size(), Some(448));
//! assert_eq!(cpython.cpython32_size(), Some(532));
//! // In bytes of this build (struct and allocations), the bit-packed compact profile is smallest.
//! assert!(compact.footprint() < squares.footprint());
//!
//! assert_eq!(squares.remove(&3), Some(9));
//! assert_eq!(squares.len(), 11);
//! ```
//!
//! [`Dict`] is CPython's dict rebuilt for a kernel heap: open addressing with CPython's perturbed
//! probing, dummy slots for deleted keys that count toward the fill, and every memory-relevant
//! constant a validated parameter ([`DictConfig`]). It allocates fallibly ([`Dict::try_insert`],
//! [`Dict::try_reserve`]): a refused allocation leaves the dict as it was and hands the key and
//! value back. An empty dict allocates nothing.
//!
//! One chapter of the seed (see the glossary in the README) tunes CPython 2.7's dict for memory
//! and measures its sizes, "the seed's table"; `tight` is that tuning. Design notes (how its
//! parameters were read from the table, the probing schemes tried and their figures) are in
//! `kernel/docs/dict-notes.md`.
//!
//! # Profiles
//!
//! A configuration combines a [`Layout`], a [`Sizing`] and the numbers below; six profiles name
//! useful points, and [`Dict::new`] takes `tight`:
//!
//! | profile | layout | sizes | small | max load | growth |
//! |---|---|---|---|---|---|
//! | [`cpython27`](DictConfig::cpython27) | sparse | 2^k | 8 | 2/3 | 4x, 2x above 50000 |
//! | [`tight`](DictConfig::tight) | sparse | 2^k | 1 | 3/4 | 3/2 |
//! | [`exact`](DictConfig::exact) | sparse | any | 1 | 7/8 | 9/8 |
//! | [`compact`](DictConfig::compact) | compact, 1/2/4/8-byte indices | 2^k | 8 | 2/3 | 3x |
//! | [`exact_compact`](DictConfig::exact_compact) | compact, bit-packed indices | any | 1 | 7/8 | 17/16 |
//! | [`lean`](DictConfig::lean) | two-choice | any | 1 | 31/32 | 11/10 |
//!
//! - **Sparse** (CPython 2.7): each entry in its slot, and a separate array of one control byte
//!   a slot: empty, dummy, or full with 7 bits of the key's hash. Probes read the control bytes
//!   and open a slot only on a match. No hash is stored: a resize rehashes. An empty slot is
//!   uninitialised memory rather than a `None`, which would add a tag word (24 bytes instead of
//!   16 for `(u64, u64)`): that is the dict's main `unsafe`, kept in `sparse.rs` and checked by
//!   the `dict_drops` tests. As with `hashbrown`, the table's destructor counts as using its
//!   entries: a dict of borrowed keys or values must be dropped before what they borrow.
//! - **Compact** (CPython 3.6+): entries dense in insertion order in a `Vec<(K, V)>`, probed
//!   through an array of small integers naming them. A removal moves the newest entry into the
//!   hole (as `indexmap`'s `swap_remove`), so iteration is insertion order until the first
//!   removal.
//! - **Two-choice**: the sparse layout's slots and control bytes, probed differently (see
//!   "Probing"): a key sits in one of two groups of slots, so lookups cost the same at any load
//!   and the table can stay nearly full. Removals empty their slot (no dummies). Tables of up
//!   to 8 slots may fill completely, so a dict of a few entries takes little more than them.
//! - **Exact** sizes are any integer, reduced with Lemire's `(hash * size) >> 64` instead of a
//!   mask, so growth can be fine-grained (the seed's wish: "there is no inherent need for [powers
//!   of two] except that it makes for nice bitwise arithmetic").
//! - The **small** table is the size a dict starts with and never shrinks below (CPython's
//!   `PyDict_MINSIZE`), allocated by the first insert.
//!
//! An insert that adds a key resizes when, counting it, live plus dummy slots reach the max load
//! (`fill * den >= slots * num`, CPython 2.7's `ma_fill*3 >= (ma_mask+1)*2`), to CPython's
//! `dictresize(growth * used)` size or, for exact sizes, the smallest size holding
//! `growth * used` entries below the max load ([`DictConfig`] has the details). The check runs
//! before the key is placed, so a refused allocation changes nothing. [`Dict::cpython32_size`]
//! models `sys.getsizeof` of a 32-bit CPython 2.7 dict with the same slots: with it `cpython27`
//! and `tight` reproduce both columns of the seed's table exactly (`kernel/tests/dict_seed.rs`).
//! The seed's source states a max load of 4/5, but its table needs one in (11/16, 3/4]: `tight`
//! takes 3/4.
//!
//! # Probing
//!
//! CPython 2.7's sequence: a cursor `i` starts at the hash and steps `i = 5*i + 1 + perturb;
//! perturb >>= 5` (perturb starting at the hash). Power-of-two sizes look at `i & mask`, where
//! `5*i + 1` alone reaches every position once `perturb` is spent; exact sizes look at
//! `(i * size) >> 64` for the perturbed steps (at most 13) and then continue linearly. Every
//! table keeps an empty slot (the max load is below 1), so every probe ends.
//!
//! The compact layout and exact sparse tables run the sequence over slots. Power-of-two sparse
//! tables (`tight`, `cpython27`) run it over aligned **groups** of control bytes (16 by SSE2 on
//! x86_64, 8 in a word elsewhere; a smaller table is padded to one group): a probe compares a
//! whole group with the key's tag at once, opens the slots that match, and ends a miss at the
//! first group with an empty slot. Inserts take the first dummy or empty slot along the same
//! path, so a lookup never stops short of its key. Between CPUs, the group width changes the
//! probe order, the iteration order and the padding of tables smaller than a group.
//!
//! Two-choice tables (`lean`) are bucketized two-choice ("cuckoo") hashing over the same
//! groups: the control bytes are padded to whole groups, and the hash names two groups by
//! Lemire's reduction (of its top bits and of its bits 31 down) and a 7-bit tag (its low bits).
//! A lookup reads both groups at once and opens the slots whose byte is the tag, in one loop
//! over both. An insert takes the emptier of the two groups (judged by its lowest empty slot);
//! if both are full, it moves one of their entries to that entry's other group, and only if none
//! can move does it take the first group with room after the second, counting the overflow in
//! a byte per group (kept after the control bytes, saturating). A lookup goes past its two
//! groups only while those counts are non-zero, which at these loads is rare, so neither hits
//! nor misses wait on a branch that depends on the load. A resize moves the entries in a
//! scattered order: in slot order they would arrive clustered (each entry of an old group has
//! one of its new groups at the same place) and overflow.
//!
//! # Memory and speed
//!
//! [`Dict::footprint`] is the struct (48 bytes whatever `K`, `V` and the configuration) plus
//! every allocation it owns; once there is a table, the configuration lives in a 2-byte tail
//! after its control or index bytes (17 bytes for a configuration that is not a named profile).
//! Group lookups are inlined in the caller: a hash (one folded multiply for an integer key), one
//! load and compare of a group, one slot opened; at these loads the first group almost always
//! decides. Two-choice lookups are inlined too: two multiplies, two groups, one slot opened. The
//! other layouts are probed out of line and pay for their parameters: at a 7/8 max load a hit
//! averages 2.2 probes and a miss 6.7, growth of 9/8 or 17/16 moves each entry 8 or 17 times on
//! the way to 100000 entries, and a compact probe must read the entry to compare keys.
//!
//! `cargo bench -p spindle --bench dict` measures the trade-off for `(u64, u64)` entries: every
//! profile's footprint beside `hashbrown`, CPython 3.11 and the 16n lower bound (also drawn in
//! `target/dict-footprint.svg`), then insert, lookup and remove times against `hashbrown`'s
//! (every design once a round, 15 rounds of fresh random keys, medians). Its figures on x86_64
//! (speeds: the range over several runs on two shared cores of an AMD EPYC VM):
//!
//! | profile | bytes an entry at n = 1000, 100000 | lookups vs `hashbrown` at n = 1000: hit, miss | at n = 100000: hit, miss |
//! |---|---|---|---|
//! | `cpython27` | 34.9, 44.6 | 0.9x, 0.7-0.8x | 0.6x, 2.0x |
//! | `tight` | 34.9, 44.6 | 0.8-0.9x, 0.7-0.9x | 0.75-0.95x, 1.6-2.3x |
//! | `exact` | 20.2, 20.0 | 0.25x, 0.13x | 0.4-0.5x, 0.27x |
//! | `compact` | 26.0, 76.9 | 0.3x, 0.2x | 0.3x, 0.5x |
//! | `exact_compact` | 18.2, 19.3 | 0.17x, 0.10x | 0.2x, 0.2x |
//! | `lean` | 18.7, 18.2 | 0.46x, 0.41x | 0.6x, 0.84-0.9x |
//! | `hashbrown` | 34.9, 22.3 | 1x | 1x |
//!
//! `exact_compact` stays at or below `hashbrown`'s footprint for every n from 1 to 100000. At
//! n = 100000 a `tight` table is twice `hashbrown`'s size (262144 slots, load 0.38): a hit waits
//! on memory twice, for its group and its slot, while a miss seldom leaves the quarter MiB of
//! control bytes. Inserts into `exact` and `exact_compact` run at a fifth and a tenth of
//! `hashbrown`'s speed; into the others at 0.6x to 1.4x.
//!
//! `lean` is the profile meant to be both tight and fast. Its memory: at most 19.4 bytes an entry
//! for every n from 1000 to 100000 and never above `hashbrown` for n from 1 to 100000 (0.995x at
//! worst), because a table is at least 7/8 full (`hashbrown`'s max load) once it has resized and
//! a table of up to 8 slots fills completely. Its price, against `hashbrown` (two runs):
//!
//! | lean vs `hashbrown` | hit | miss | insert | remove |
//! |---|---|---|---|---|
//! | n = 1000 | 0.46x | 0.41x | 0.16x | 0.31-0.32x |
//! | n = 100000 | 0.59-0.61x | 0.84-0.90x | 0.10x | 0.33-0.35x |
//!
//! A lookup reads two groups where `hashbrown` reads one, and sees 30 candidate bytes for its
//! 7-bit tag instead of 16, so a fifth of misses open a slot; at n = 100000 the two reads of the
//! small control array overlap and cost little beside the slot's. Inserts pay for the memory
//! bound: a table that must stay 7/8 full cannot grow by more than 8/7 of its max load, and each
//! resize moves every entry, about 10 moves an insert (with `try_reserve` first, an insert at
//! n = 1000 costs about what one into `tight` does: 16.7 ns against 15.3). Against
//! `exact_compact`, the smallest profile before it, `lean` takes less memory and is 1.4 to 1.6
//! times as fast at inserts and 3 to 4.4 times at lookups. `kernel/docs/dict-notes.md` has the design's trail and why the
//! speed goals it was built for (lookups 0.7x, inserts and removals 0.4x) are not all met.
//!
//! # Hashing
//!
//! [`DefaultHashBuilder`] is a fast unkeyed folded-multiply hash, not resistant to chosen keys;
//! [`hash::Keyed`] is keyed SipHash-1-3 for keys an adversary picks (see [`hash`]).
#![deny(unsafe_code)]

mod compact;
mod config;
mod entry;
mod error;
mod group;
pub mod hash;
mod iter;
mod probe;
mod sparse;
mod table;

use alloc::vec::{self, Vec};
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::iter::FusedIterator;
use core::mem;
use core::slice;

use compact::Compact;
use probe::{Lemire, Mask};
use sparse::Sparse;

pub use config::{
    ConfigError, DictConfig, DictConfigBuilder, Fraction, IndexWidth, Layout, ShrinkPolicy, Sizing,
};
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use error::{InsertError, TryReserveError};
pub use hash::DefaultHashBuilder;
pub use iter::{IntoIter, Iter, IterMut};
use iter::{IterInner, IterMutInner};
use table::{Pos, Table, Vacancy};

/// Bytes of a 32-bit CPython 2.7 dict besides its slots, as `sys.getsizeof` counts them (object,
/// GC header): the seed's 148 less 8 slots, or its 64 less 1.
pub const CPYTHON32_HEADER: usize = 52;
/// Bytes of a 32-bit CPython 2.7 slot: hash, key pointer, value pointer.
pub const CPYTHON32_SLOT: usize = 12;

/// A hash table from `K` to `V` with CPython's probing and tunable memory use.
///
/// 48 bytes (with the default hasher) whatever `K`, `V` and the configuration: the table (or,
/// before it, the configuration) and two counts; tables hold fewer than 2^32 slots (see
/// "Memory and speed" in the module docs).
///
/// ```
/// use spindle::dict::{Dict, DictConfig};
///
/// let mut ages: Dict<&str, u32> = Dict::with_config(DictConfig::exact_compact());
/// ages.insert("ada", 36);
/// *ages.entry("ada").or_insert(0) += 1;
/// assert_eq!(ages.get("ada"), Some(&37));
/// assert_eq!(format!("{ages:?}"), r#"{"ada": 37}"#);
/// ```
#[derive(Clone)]
pub struct Dict<K, V, S = DefaultHashBuilder> {
    table: Table<K, V>,
    /// Inserts into empty slots left before the table reaches its max load (hashbrown's
    /// `growth_left`): the table's capacity less its filled (live or dummy) slots. Kept instead
    /// of the fill so that an insert checks it without the configuration.
    growth_left: u32,
    /// Sparse layout: live entries (compact keeps them in its `Vec`'s length). Compact layout:
    /// index slots (sparse has its slice's length).
    count: u32,
    hasher: S,
}

impl<K, V> Dict<K, V, DefaultHashBuilder> {
    /// An empty dict with the default profile ([`DictConfig::tight`]); allocates nothing.
    pub fn new() -> Self {
        Self::with_config(DictConfig::default())
    }

    /// An empty dict with `config`; allocates nothing.
    pub fn with_config(config: DictConfig) -> Self {
        Self::with_config_and_hasher(config, DefaultHashBuilder::default())
    }
}

impl<K, V, S> Dict<K, V, S> {
    /// An empty dict with the default profile hashing with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_config_and_hasher(DictConfig::default(), hasher)
    }

    /// An empty dict with `config`, hashing with `hasher`; allocates nothing.
    pub fn with_config_and_hasher(config: DictConfig, hasher: S) -> Self {
        Self {
            table: Table::Unallocated(config),
            growth_left: 0,
            count: 0,
            hasher,
        }
    }

    /// The configuration this dict was built with (kept in the table's tail once there is a
    /// table, hence by value).
    pub fn config(&self) -> DictConfig {
        match &self.table {
            Table::Unallocated(config) => *config,
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => {
                DictConfig::from_tail(t.tail())
            }
            Table::Compact(t) => DictConfig::from_tail(t.tail()),
        }
    }

    /// The hasher builder.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.table {
            Table::Compact(t) => t.len(),
            _ => self.count as usize,
        }
    }

    /// Whether the dict has no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots of the table (index slots for the compact layout); 0 before the first insert.
    pub fn slots(&self) -> usize {
        match &self.table {
            Table::Unallocated(_) => 0,
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => t.slots(),
            Table::Compact(_) => self.count as usize,
        }
    }

    /// Live plus dummy slots: what the max load is checked against.
    fn fill(&self, config: &DictConfig) -> usize {
        match self.slots() {
            0 => 0,
            slots => config.capacity_of(slots) - self.growth_left as usize,
        }
    }

    /// Whether the configuration has a shrink policy, without decoding it all (a removal asks).
    #[inline]
    fn may_shrink(&self) -> bool {
        match &self.table {
            Table::Unallocated(_) => false,
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => {
                config::tail_shrinks(t.tail())
            }
            Table::Compact(t) => config::tail_shrinks(t.tail()),
        }
    }

    /// Bytes used: the struct plus every heap allocation it owns (not what `K` or `V` own).
    pub fn footprint(&self) -> usize {
        mem::size_of::<Self>()
            + match &self.table {
                Table::Unallocated(_) => 0,
                Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => t.heap_bytes(),
                Table::Compact(t) => t.heap_bytes(),
            }
    }

    /// What `sys.getsizeof` would report for a 32-bit CPython 2.7 dict with this dict's small
    /// table and table size: [`CPYTHON32_HEADER`], the small table inline and, when the table is
    /// larger, the table, at [`CPYTHON32_SLOT`] bytes a slot. `None` for the compact layout,
    /// which 2.7 does not have.
    pub fn cpython32_size(&self) -> Option<usize> {
        let config = self.config();
        if config.layout() != Layout::Sparse {
            return None;
        }
        let small = config.small_table();
        let separate = if self.slots() > small {
            self.slots()
        } else {
            0
        };
        Some(CPYTHON32_HEADER + CPYTHON32_SLOT * (small + separate))
    }

    /// Removes every entry and frees the table.
    pub fn clear(&mut self) {
        let config = self.config();
        let old = mem::replace(&mut self.table, Table::Unallocated(config));
        self.growth_left = 0;
        self.count = 0;
        // Dropped last: should a destructor panic, the dict is already empty and consistent.
        drop(old);
    }

    /// The entries, in slot order (sparse) or insertion order (compact, until a removal).
    pub fn iter(&self) -> Iter<'_, K, V> {
        let inner = match &self.table {
            Table::Unallocated(_) => IterInner::Compact([].iter()),
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => {
                IterInner::Sparse(t.iter())
            }
            Table::Compact(t) => IterInner::Compact(t.raw().iter()),
        };
        Iter {
            inner,
            left: self.len(),
        }
    }

    /// The entries with mutable values.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        let left = self.len();
        let inner = match &mut self.table {
            Table::Unallocated(_) => IterMutInner::Compact([].iter_mut()),
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => {
                IterMutInner::Sparse(t.iter_mut())
            }
            Table::Compact(t) => IterMutInner::Compact(t.raw_mut().iter_mut()),
        };
        IterMut { inner, left }
    }

    /// The keys, in iteration order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + Clone + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values, in iteration order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + Clone + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The values, mutable, in iteration order.
    pub fn values_mut(&mut self) -> impl ExactSizeIterator<Item = &mut V> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }

    fn entry_at(&self, pos: Pos) -> (&K, &V) {
        match &self.table {
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => t.entry(pos.slot),
            Table::Compact(t) => t.entry(pos),
            Table::Unallocated(_) => unreachable!("an empty dict has no positions"),
        }
    }

    fn entry_at_mut(&mut self, pos: Pos) -> (&K, &mut V) {
        match &mut self.table {
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => t.entry_mut(pos.slot),
            Table::Compact(t) => t.entry_mut(pos),
            Table::Unallocated(_) => unreachable!("an empty dict has no positions"),
        }
    }
}

impl<K, V, S> Dict<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// The value for `key`.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_entry(key).map(|(_, v)| v)
    }

    /// The stored key and value for `key`.
    #[inline]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_entry(key)
    }

    /// The value for `key`, mutable.
    #[inline]
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (pos, ..) = self.find(key)?;
        Some(self.entry_at_mut(pos).1)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_entry(key).is_some()
    }

    /// Inserts or replaces; returns the replaced value. If the table cannot grow, the key and
    /// value come back in the error and the dict is unchanged. Replacing never allocates.
    pub fn try_insert(&mut self, key: K, value: V) -> Result<Option<V>, InsertError<K, V>> {
        let hash = self.hash(&key);
        match self.find_or_vacant(hash, &key) {
            Ok(pos) => {
                let old = mem::replace(self.entry_at_mut(pos).1, value);
                // The stored key stays (as CPython's); the new one is dropped while `old` is a
                // local, as in [`Dict::remove`].
                drop(key);
                Ok(Some(old))
            }
            Err(vacancy) => self.insert_vacant(hash, vacancy, key, value).map(|_| None),
        }
    }

    /// Inserts or replaces; returns the replaced value. Aborts as `Vec` does if out of memory.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.try_insert(key, value) {
            Ok(old) => old,
            Err(e) => error::or_abort(Err(e.error)),
        }
    }

    /// Removes `key`; returns its value. The slot becomes a dummy; with the compact layout the
    /// newest entry takes the removed one's place in iteration order.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (stored, value) = self.remove_entry(key)?;
        // Dropped while `value` is still a local: were the key's destructor to panic, the
        // unwinding drops the value too (a value already returned would leak).
        drop(stored);
        Some(value)
    }

    /// Removes `key`; returns the stored key and its value.
    ///
    /// With the compact layout the newest entry takes the removed one's place in iteration order.
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        // The tight layout inline, as lookups; the others out of line.
        if let Table::Sparse(t) = &mut self.table {
            let (slot, ..) = t.view().find::<Mask, Q>(hash, key)?;
            self.count -= 1;
            let removed = t.remove_at(slot);
            self.shrink_after_removal();
            Some(removed)
        } else {
            self.remove_entry_other(hash, key)
        }
    }

    /// [`remove_entry`](Self::remove_entry) in the other layouts.
    #[inline]
    fn remove_entry_other<Q>(&mut self, hash: u64, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Table::TwoChoice(t) = &mut self.table {
            // The key's hash is the stored key's: no need to hash that again.
            let (slot, ..) = t.view().find_two_choice(hash, key)?;
            let removed = t.remove_two_choice(slot, hash);
            self.count -= 1;
            self.growth_left += 1;
            self.shrink_after_removal();
            return Some(removed);
        }
        let (pos, ..) = self.find_hashed(hash, key)?;
        Some(self.remove_at(pos))
    }

    /// The entry for `key`, for in-place update or insertion.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V, S> {
        let hash = self.hash(&key);
        match self.find_or_vacant(hash, &key) {
            Ok(pos) => Entry::Occupied(OccupiedEntry { dict: self, pos }),
            Err(vacancy) => Entry::Vacant(VacantEntry {
                dict: self,
                key,
                hash,
                vacancy,
            }),
        }
    }

    /// Makes room so that the next `additional` inserts of new keys allocate nothing. On failure
    /// the dict is unchanged.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        let config = self.config();
        let slots = self.slots();
        let fill = self
            .fill(&config)
            .checked_add(additional)
            .ok_or(TryReserveError::CapacityOverflow)?;
        if additional == 0 || (slots > 0 && !config.at_max_load(slots, fill)) {
            return Ok(());
        }
        let wanted = self.len() + additional;
        let size = config
            .size_for(wanted)
            .ok_or(TryReserveError::CapacityOverflow)?;
        self.rebuild(config, size)
    }

    /// [`try_reserve`](Self::try_reserve), aborting as `Vec` does if out of memory.
    pub fn reserve(&mut self, additional: usize) {
        error::or_abort(self.try_reserve(additional));
    }

    /// Rebuilds at the smallest size holding the entries (freeing everything when empty) and
    /// drops dummies. On failure the dict is unchanged.
    pub fn try_shrink_to_fit(&mut self) -> Result<(), TryReserveError> {
        let config = self.config();
        let size = if self.is_empty() {
            0
        } else {
            config
                .size_for(self.len())
                .ok_or(TryReserveError::CapacityOverflow)?
        };
        if size == self.slots() && self.fill(&config) == self.len() {
            return Ok(());
        }
        self.rebuild(config, size)
    }

    /// [`try_shrink_to_fit`](Self::try_shrink_to_fit); keeps the old table if out of memory.
    pub fn shrink_to_fit(&mut self) {
        let _ = self.try_shrink_to_fit();
    }
}
