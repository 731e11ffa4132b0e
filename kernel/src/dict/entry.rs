//! The entry API: one key's place in a dict, occupied or vacant.

use super::*;

/// A view into one key's place in a [`Dict`], from [`Dict::entry`].
pub enum Entry<'a, K, V, S> {
    /// The key is present.
    Occupied(OccupiedEntry<'a, K, V, S>),
    /// The key is absent.
    Vacant(VacantEntry<'a, K, V, S>),
}

/// A present key, from [`Dict::entry`].
pub struct OccupiedEntry<'a, K, V, S> {
    pub(super) dict: &'a mut Dict<K, V, S>,
    pub(super) pos: Pos,
}

/// An absent key and where it would go, from [`Dict::entry`].
pub struct VacantEntry<'a, K, V, S> {
    pub(super) dict: &'a mut Dict<K, V, S>,
    pub(super) key: K,
    pub(super) hash: u64,
    pub(super) vacancy: Vacancy,
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> Entry<'a, K, V, S> {
    /// The value, inserting `default` if absent.
    pub fn or_insert(self, default: V) -> &'a mut V {
        self.or_insert_with(|| default)
    }

    /// The value, inserting `make()` if absent.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        match self {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(make()),
        }
    }

    /// The value, inserting `V::default()` if absent.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// The value, inserting `default` if absent; if the table cannot grow, the dict is unchanged
    /// and the key and value come back.
    pub fn try_or_insert(self, default: V) -> Result<&'a mut V, InsertError<K, V>> {
        match self {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => e.try_insert(default),
        }
    }

    /// Applies `f` to the value if present.
    pub fn and_modify(mut self, f: impl FnOnce(&mut V)) -> Self {
        if let Entry::Occupied(e) = &mut self {
            f(e.get_mut());
        }
        self
    }

    /// The key.
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(e) => e.key(),
            Entry::Vacant(e) => e.key(),
        }
    }
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> OccupiedEntry<'a, K, V, S> {
    /// The stored key.
    pub fn key(&self) -> &K {
        self.dict.entry_at(self.pos).0
    }

    /// The value.
    pub fn get(&self) -> &V {
        self.dict.entry_at(self.pos).1
    }

    /// The value, mutable.
    pub fn get_mut(&mut self) -> &mut V {
        self.dict.entry_at_mut(self.pos).1
    }

    /// The value, mutable for the dict's borrow.
    pub fn into_mut(self) -> &'a mut V {
        self.dict.entry_at_mut(self.pos).1
    }

    /// Replaces the value; returns the old one.
    pub fn insert(&mut self, value: V) -> V {
        mem::replace(self.get_mut(), value)
    }

    /// Removes the entry; returns its value.
    pub fn remove(self) -> V {
        let (key, value) = self.dict.remove_at(self.pos);
        // Dropped while `value` is still a local, as in [`Dict::remove`].
        drop(key);
        value
    }

    /// Removes the entry; returns the key and value.
    pub fn remove_entry(self) -> (K, V) {
        self.dict.remove_at(self.pos)
    }
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> VacantEntry<'a, K, V, S> {
    /// The key that would be inserted.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Takes the key back.
    pub fn into_key(self) -> K {
        self.key
    }

    /// Inserts `value`; aborts as `Vec` does if out of memory.
    pub fn insert(self, value: V) -> &'a mut V {
        match self.try_insert(value) {
            Ok(v) => v,
            Err(e) => error::or_abort(Err(e.error)),
        }
    }

    /// Inserts `value`; if the table cannot grow, the dict is unchanged and the key and value
    /// come back.
    pub fn try_insert(self, value: V) -> Result<&'a mut V, InsertError<K, V>> {
        self.dict
            .insert_vacant(self.hash, self.vacancy, self.key, value)
    }
}
