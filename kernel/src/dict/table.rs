//! The table behind a dict: its three layouts, positions and vacancies, lookups, and rebuilds.

use super::*;

/// Where an entry is: its slot (sparse) or index slot (compact), and its entry number (compact;
/// equal to the slot for sparse).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pos {
    pub(super) slot: usize,
    pub(super) entry: usize,
}

impl Pos {
    #[inline]
    fn at(slot: usize) -> Self {
        Self { slot, entry: slot }
    }
}

/// Where an absent key would go, and whether that slot is empty (else a dummy, reused).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vacancy {
    pub(super) slot: usize,
    pub(super) empty: bool,
}

impl Vacancy {
    /// For a dict without a table yet: the insert allocates one first.
    const UNALLOCATED: Vacancy = Vacancy {
        slot: 0,
        empty: true,
    };
    /// For a two-choice table: the insert picks the slot once it has made sure of room (the
    /// table may be full before it grows). Its slot is never read.
    const UNPLACED: Vacancy = Vacancy {
        slot: usize::MAX,
        empty: true,
    };
}

/// A dict's storage. The configuration lives in the first variant until a table exists, then in
/// the table's tail (see "Memory and speed" in the module docs), so the enum is no larger than the
/// compact variant: 40 bytes, its discriminant in a niche of the entries' `Vec`.
#[derive(Clone)]
pub(super) enum Table<K, V> {
    /// No table yet, or cleared.
    Unallocated(DictConfig),
    /// Sparse layout, power-of-two sizes: the fast path every lookup tries first.
    Sparse(Sparse<K, V>),
    /// Sparse layout, exact sizes.
    SparseExact(Sparse<K, V>),
    /// Compact layout, either sizing (its tail says which).
    Compact(Compact<K, V>),
    /// Two-choice layout, either sizing (both reduce with Lemire's multiply).
    TwoChoice(Sparse<K, V>),
}

/// Runs `$body` with `$R` bound to the reduction a compact table's sizing uses.
macro_rules! compact_sized {
    ($t:expr, |$R:ident| $body:expr) => {
        if $t.exact() {
            type $R = Lemire;
            $body
        } else {
            type $R = Mask;
            $body
        }
    };
}

/// Bits of a compact index that names `capacity` entries plus the empty and dummy markers.
pub(super) fn index_bits(width: IndexWidth, capacity: usize) -> u32 {
    let bits = (64 - (capacity as u64 + 1).leading_zeros()).max(1);
    match width {
        IndexWidth::Bits if bits <= 56 => bits,
        IndexWidth::Bits => 64,
        IndexWidth::Bytes => bits.next_power_of_two().max(8),
    }
}

/// [`Dict::find_entry`] in a compact table of `slots` index slots: out of line, given the
/// table's slices (in registers) rather than the dict (see [`Dict::find_entry`]).
#[inline(never)]
pub(super) fn find_compact<'a, K, V, Q>(
    index: &'a [u8],
    entries: &'a [(K, V)],
    slots: usize,
    hash: u64,
    key: &Q,
) -> Option<(&'a K, &'a V)>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let view = compact::View::new(index, entries, slots);
    let (_, k, v) = compact_sized!(view, |R| view.find::<R, Q>(hash, key))?;
    Some((k, v))
}

impl<K, V, S> Dict<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    pub(super) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Where `key` is, and its key and value, every layout inline (for removals and mutable
    /// access, which are not inlined into their callers anyway).
    #[inline]
    pub(super) fn find<Q>(&self, key: &Q) -> Option<(Pos, &K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_hashed(self.hash(key), key)
    }

    /// [`find`](Self::find) for a key whose hash is `hash`.
    #[inline]
    pub(super) fn find_hashed<Q>(&self, hash: u64, key: &Q) -> Option<(Pos, &K, &V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match &self.table {
            Table::Sparse(t) => t
                .view()
                .find::<Mask, Q>(hash, key)
                .map(|(slot, k, v)| (Pos::at(slot), k, v)),
            Table::SparseExact(t) => t
                .view()
                .find::<Lemire, Q>(hash, key)
                .map(|(slot, k, v)| (Pos::at(slot), k, v)),
            Table::Compact(t) => {
                let view = t.view(self.count as usize);
                compact_sized!(view, |R| view.find::<R, Q>(hash, key))
            }
            Table::TwoChoice(t) => t
                .view()
                .find_two_choice(hash, key)
                .map(|(slot, k, v)| (Pos::at(slot), k, v)),
            Table::Unallocated(_) => None,
        }
    }

    /// `key`'s stored key and value: what `get` needs, returned in two registers. The layouts of
    /// the tight and lean profiles (sparse with power-of-two sizes, two-choice) are probed
    /// inline; the others out of line, so that lookups stay small enough to inline into their
    /// callers. (Inline, a lean hit at n = 1000 took 5.7 ns instead of 6.8.)
    ///
    /// The out-of-line lookup gets the table's slices, not the dict, and cannot panic or write
    /// memory: the compiler then knows that the call leaves the dict as it was, and a caller's
    /// loop keeps the dict's fields in registers instead of reloading them after every lookup
    /// (which costs about a fifth of a lookup's time on a large table).
    #[inline(always)]
    pub(super) fn find_entry<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        if let Table::Sparse(t) = &self.table {
            t.view().find::<Mask, Q>(hash, key).map(|(_, k, v)| (k, v))
        } else if let Table::TwoChoice(t) = &self.table {
            t.view().find_two_choice(hash, key).map(|(_, k, v)| (k, v))
        } else {
            // Tells the compiler to test for the tight and lean layouts alone first rather than
            // jump through a table of the five.
            core::hint::cold_path();
            match &self.table {
                Table::SparseExact(t) => t.view().find_out_of_line::<Lemire, Q>(hash, key),
                Table::Compact(t) => {
                    let (index, entries) = t.view(0).parts();
                    find_compact(index, entries, self.count as usize, hash, key)
                }
                Table::Sparse(_) | Table::TwoChoice(_) | Table::Unallocated(_) => None,
            }
        }
    }

    pub(super) fn find_or_vacant(&self, hash: u64, key: &K) -> Result<Pos, Vacancy> {
        match &self.table {
            Table::Unallocated(_) => Err(Vacancy::UNALLOCATED),
            Table::Sparse(t) => t.find_or_vacant::<Mask, K>(hash, key).map(Pos::at),
            Table::SparseExact(t) => t.find_or_vacant::<Lemire, K>(hash, key).map(Pos::at),
            Table::Compact(t) => {
                let slots = self.count as usize;
                compact_sized!(t, |R| t.find_or_vacant::<R, K>(slots, hash, key))
            }
            Table::TwoChoice(t) => match t.view().find_two_choice(hash, key) {
                Some((slot, ..)) => Ok(Pos::at(slot)),
                None => Err(Vacancy::UNPLACED),
            },
        }
    }

    /// Where an absent key with `hash` goes straight after a rebuild.
    pub(super) fn fresh_vacancy(&self, hash: u64) -> Vacancy {
        match &self.table {
            Table::Unallocated(_) => unreachable!("a rebuild leaves a table"),
            Table::Sparse(t) => t.fresh_vacancy::<Mask>(hash),
            Table::SparseExact(t) => t.fresh_vacancy::<Lemire>(hash),
            Table::Compact(t) => {
                let slots = self.count as usize;
                compact_sized!(t, |R| t.fresh_vacancy::<R>(slots, hash))
            }
            Table::TwoChoice(_) => Vacancy::UNPLACED,
        }
    }

    /// Rebuilds the table at `slots` slots (which must hold every entry; 0 frees an empty dict's
    /// table); on failure nothing changes.
    pub(super) fn rebuild(
        &mut self,
        config: DictConfig,
        slots: usize,
    ) -> Result<(), TryReserveError> {
        if slots == 0 {
            debug_assert!(self.is_empty());
            self.clear();
            return Ok(());
        }
        let count = u32::try_from(slots).map_err(|_| TryReserveError::CapacityOverflow)?;
        let hasher = &self.hasher;
        let hash = |k: &K| hasher.hash_one(k);
        match config.layout() {
            Layout::Sparse => {
                let exact = config.sizing() == Sizing::Exact;
                let tail = config.tail(0);
                let mut fresh = if exact {
                    Sparse::try_new::<Lemire>(slots, tail.as_slice())?
                } else {
                    Sparse::try_new::<Mask>(slots, tail.as_slice())?
                };
                // While the entries move the dict counts none: should the hasher panic, it is
                // left empty and consistent, each entry dropped once.
                let live = mem::take(&mut self.count);
                self.growth_left = 0;
                match mem::replace(&mut self.table, Table::Unallocated(config)) {
                    Table::Sparse(old) | Table::SparseExact(old) if exact => {
                        old.move_into::<Lemire>(&mut fresh, hash)
                    }
                    Table::Sparse(old) | Table::SparseExact(old) => {
                        old.move_into::<Mask>(&mut fresh, hash)
                    }
                    _ => {}
                }
                self.table = if exact {
                    Table::SparseExact(fresh)
                } else {
                    Table::Sparse(fresh)
                };
                self.count = live;
            }
            Layout::TwoChoice => {
                let tail = config.tail(0);
                let mut fresh = Sparse::try_new_two_choice(slots, tail.as_slice())?;
                // As for the sparse layout: no entries counted while they move.
                let live = mem::take(&mut self.count);
                self.growth_left = 0;
                if let Table::TwoChoice(old) =
                    mem::replace(&mut self.table, Table::Unallocated(config))
                {
                    old.move_into_two_choice(&mut fresh, hash);
                }
                self.table = Table::TwoChoice(fresh);
                self.count = live;
            }
            Layout::Compact => {
                let capacity = config.capacity_of(slots);
                let tail = config.tail(index_bits(config.index_width(), capacity));
                let tail = tail.as_slice();
                let exact = config.sizing() == Sizing::Exact;
                let build = |t: &mut Compact<K, V>| {
                    if exact {
                        t.rebuild::<Lemire>(slots, capacity, tail, hash)
                    } else {
                        t.rebuild::<Mask>(slots, capacity, tail, hash)
                    }
                };
                match &mut self.table {
                    Table::Compact(t) => build(t)?,
                    _ => {
                        let mut t = Compact::new();
                        build(&mut t)?;
                        self.table = Table::Compact(t);
                    }
                }
                self.count = count;
            }
        }
        // No dummies are left; the capacity fits 32 bits as the slots do.
        self.growth_left = (config.capacity_of(slots) - self.len()) as u32;
        Ok(())
    }

    /// Inserts a key known to be absent at `vacancy`, growing first if the insert would reach the
    /// max load.
    pub(super) fn insert_vacant(
        &mut self,
        hash: u64,
        mut vacancy: Vacancy,
        key: K,
        value: V,
    ) -> Result<&mut V, InsertError<K, V>> {
        // Reusing a dummy never grows; filling an empty slot grows when none is left to fill.
        if vacancy.empty && self.growth_left == 0 {
            let config = self.config();
            let small = config.small_table();
            let size = if self.slots() == 0 && !config.at_max_load(small, 1) {
                Some(small)
            } else {
                config.grown_size(self.len() + 1)
            };
            let grown = match size {
                Some(size) => self.rebuild(config, size),
                None => Err(TryReserveError::CapacityOverflow),
            };
            if let Err(error) = grown {
                return Err(InsertError { error, key, value });
            }
            vacancy = self.fresh_vacancy(hash);
        }
        // The counts change once the entry is in.
        let hasher = &self.hasher;
        let (value, counted) = match &mut self.table {
            Table::Sparse(t) => (t.insert_at::<Mask>(vacancy.slot, hash, key, value).1, 1),
            Table::SparseExact(t) => (t.insert_at::<Lemire>(vacancy.slot, hash, key, value).1, 1),
            Table::Compact(t) => (t.insert_at(vacancy.slot, key, value).1, 0),
            Table::TwoChoice(t) => {
                let rehash = |k: &K| hasher.hash_one(k);
                (t.insert_two_choice(hash, key, value, rehash).2, 1)
            }
            Table::Unallocated(_) => unreachable!("an insert allocates first"),
        };
        self.growth_left -= u32::from(vacancy.empty);
        self.count += counted;
        Ok(value)
    }

    /// Removes the entry at `pos`, then shrinks if the policy asks (best effort).
    pub(super) fn remove_at(&mut self, pos: Pos) -> (K, V) {
        let hasher = &self.hasher;
        let removed = match &mut self.table {
            Table::Sparse(t) | Table::SparseExact(t) => {
                self.count -= 1;
                t.remove_at(pos.slot)
            }
            Table::Compact(t) => {
                let slots = self.count as usize;
                compact_sized!(t, |R| t.remove_at::<R>(slots, pos, |k| hasher.hash_one(k)))
            }
            Table::TwoChoice(t) => {
                // Hashed before anything changes: should the hasher panic, nothing has.
                let hash = hasher.hash_one(t.entry(pos.slot).0);
                let removed = t.remove_two_choice(pos.slot, hash);
                self.count -= 1;
                self.growth_left += 1;
                removed
            }
            Table::Unallocated(_) => unreachable!("an empty dict has no positions"),
        };
        self.shrink_after_removal();
        removed
    }

    /// Shrinks the table after a removal if the policy asks (best effort: a refusal keeps the
    /// larger table, and the removal has happened either way).
    #[inline]
    pub(super) fn shrink_after_removal(&mut self) {
        if !self.may_shrink() {
            return;
        }
        let config = self.config();
        if config.wants_shrink(self.slots(), self.len()) {
            if let Some(size) = config.grown_size(self.len()) {
                if size < self.slots() {
                    let _ = self.rebuild(config, size);
                }
            }
        }
    }
}
