//! Errors of fallible dict operations.

use core::alloc::Layout;
use core::fmt;

/// An allocation a dict needed could not be made; the dict is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TryReserveError {
    /// The size asked for does not fit the address space.
    CapacityOverflow,
    /// The allocator refused this request.
    OutOfMemory {
        /// The refused allocation.
        layout: Layout,
    },
}

impl TryReserveError {
    /// The error for a refused allocation of `count` values of `T`.
    pub(crate) fn refused<T>(count: usize) -> Self {
        match Layout::array::<T>(count) {
            Ok(layout) => Self::OutOfMemory { layout },
            Err(_) => Self::CapacityOverflow,
        }
    }
}

impl fmt::Display for TryReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CapacityOverflow => write!(f, "dict capacity overflow"),
            Self::OutOfMemory { layout } => {
                write!(
                    f,
                    "out of memory allocating {} bytes for a dict",
                    layout.size()
                )
            }
        }
    }
}

/// A failed [`Dict::try_insert`](super::Dict::try_insert): the error, and the key and value handed
/// back so nothing is lost.
#[derive(PartialEq, Eq, Debug)]
pub struct InsertError<K, V> {
    /// Why the insert failed.
    pub error: TryReserveError,
    /// The key that was not inserted.
    pub key: K,
    /// The value that was not inserted.
    pub value: V,
}

impl<K, V> fmt::Display for InsertError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// Unwraps the result of an allocation for an infallible method, failing as `Vec` does.
pub(crate) fn or_abort<T>(result: Result<T, TryReserveError>) -> T {
    match result {
        Ok(value) => value,
        Err(TryReserveError::CapacityOverflow) => panic!("dict capacity overflow"),
        Err(TryReserveError::OutOfMemory { layout }) => alloc::alloc::handle_alloc_error(layout),
    }
}
