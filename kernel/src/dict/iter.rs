//! Iterating a dict (borrowing, mutable, owning), and the standard trait impls.

use super::*;

impl<K, V> Default for Dict<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> fmt::Debug for Dict<K, V, S>
where
    K: fmt::Debug,
    V: fmt::Debug,
{
    /// Like Python's `repr`: `{1: 2, 3: 4}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V, S> PartialEq for Dict<K, V, S>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
{
    /// Same keys with equal values, whatever the configurations and orders.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: Hash + Eq, V: Eq, S: BuildHasher> Eq for Dict<K, V, S> {}

impl<K, V, S> Extend<(K, V)> for Dict<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Inserts one by one without presizing, as CPython's `dict(iterable)`, so the sizes follow
    /// the resize rule.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, V, S> FromIterator<(K, V)> for Dict<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    /// With the default profile.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut dict = Self::with_hasher(S::default());
        dict.extend(iter);
        dict
    }
}

/// Implements `Iterator` (from `$next`, given `$inner`, the iterator's `inner` field),
/// `ExactSizeIterator` and `FusedIterator` for an iterator that counts down its `left` field.
macro_rules! counted_iterator {
    ($name:ident $(<$lt:lifetime>)?, $item:ty, |$inner:ident| $next:expr) => {
        impl<$($lt,)? K, V> Iterator for $name<$($lt,)? K, V> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                let $inner = &mut self.inner;
                let next = $next;
                self.left -= usize::from(next.is_some());
                next
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                (self.left, Some(self.left))
            }
        }

        impl<$($lt,)? K, V> ExactSizeIterator for $name<$($lt,)? K, V> {}
        impl<$($lt,)? K, V> FusedIterator for $name<$($lt,)? K, V> {}
    };
}

/// Borrowing iterator over a [`Dict`]'s entries.
pub struct Iter<'a, K, V> {
    pub(super) inner: IterInner<'a, K, V>,
    pub(super) left: usize,
}

// By hand: derived impls would demand `K: Clone, V: Clone`, which cloning borrows does not need.
impl<K, V> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            IterInner::Sparse(slots) => IterInner::Sparse(slots.clone()),
            IterInner::Compact(entries) => IterInner::Compact(entries.clone()),
        };
        Self {
            inner,
            left: self.left,
        }
    }
}

pub(super) enum IterInner<'a, K, V> {
    Sparse(sparse::Iter<'a, K, V>),
    Compact(slice::Iter<'a, (K, V)>),
}

counted_iterator!(Iter<'a>, (&'a K, &'a V), |inner| match inner {
    IterInner::Sparse(slots) => slots.next(),
    IterInner::Compact(entries) => entries.next().map(|(k, v)| (k, v)),
});

/// Iterator over a [`Dict`]'s entries with mutable values.
pub struct IterMut<'a, K, V> {
    pub(super) inner: IterMutInner<'a, K, V>,
    pub(super) left: usize,
}

pub(super) enum IterMutInner<'a, K, V> {
    Sparse(sparse::IterMut<'a, K, V>),
    Compact(slice::IterMut<'a, (K, V)>),
}

counted_iterator!(IterMut<'a>, (&'a K, &'a mut V), |inner| match inner {
    IterMutInner::Sparse(slots) => slots.next(),
    IterMutInner::Compact(entries) => entries.next().map(|(k, v)| (&*k, v)),
});

/// Owning iterator over a [`Dict`]'s entries.
pub struct IntoIter<K, V> {
    pub(super) inner: IntoIterInner<K, V>,
    pub(super) left: usize,
}

pub(super) enum IntoIterInner<K, V> {
    Sparse(sparse::IntoIter<K, V>),
    Compact(vec::IntoIter<(K, V)>),
}

counted_iterator!(IntoIter, (K, V), |inner| match inner {
    IntoIterInner::Sparse(entries) => entries.next(),
    IntoIterInner::Compact(entries) => entries.next(),
});

impl<K, V, S> IntoIterator for Dict<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        let left = self.len();
        let inner = match self.table {
            Table::Unallocated(_) => IntoIterInner::Compact(Vec::new().into_iter()),
            Table::Sparse(t) | Table::SparseExact(t) | Table::TwoChoice(t) => {
                IntoIterInner::Sparse(t.into_entries())
            }
            Table::Compact(t) => IntoIterInner::Compact(t.into_raw().into_iter()),
        };
        IntoIter { inner, left }
    }
}

impl<'a, K, V, S> IntoIterator for &'a Dict<K, V, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K, V, S> IntoIterator for &'a mut Dict<K, V, S> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}
