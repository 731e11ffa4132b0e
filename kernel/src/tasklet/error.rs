//! Errors of tasklet operations: what a blocking call returns instead of a value.

use core::fmt;

/// A caller-supplied error thrown into a tasklet with [`Tasklet::throw`](super::Tasklet::throw),
/// or sent through a channel with `send_error`: a code and a static message, so delivering it
/// never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thrown {
    /// Application-defined error code.
    pub code: i32,
    /// Human-readable description.
    pub message: &'static str,
}

impl Thrown {
    /// A thrown error with `code` and `message`.
    pub const fn new(code: i32, message: &'static str) -> Self {
        Self { code, message }
    }
}

/// Why a tasklet operation did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskletError {
    /// The tasklet was killed (Stackless's `TaskletExit`): unwind and return.
    Killed,
    /// An error thrown into the tasklet, or sent to it through a channel.
    Thrown(Thrown),
    /// The last runnable tasklet tried to block with nothing that could wake it.
    Deadlock,
    /// The channel is closing or closed.
    Closed,
    /// The operation's timeout passed first.
    TimedOut,
    /// The tasklet asked not to be blocked (`block_trap`) and the operation would block.
    BlockTrap,
    /// Allocation failed (stack, control block, or an out-of-line channel value).
    OutOfMemory,
    /// The stack budget of this CPU cannot hold the requested stack.
    StackBudgetExhausted,
    /// A requested stack is smaller than [`MIN_STACK_BYTES`](super::MIN_STACK_BYTES).
    StackTooSmall,
    /// The tasklet's stack overflowed its guard; it was abandoned.
    StackOverflow,
    /// The tasklet panicked (hosted builds catch the panic at the tasklet boundary).
    Panicked,
    /// The operation needs a live tasklet and this one has finished.
    Dead,
    /// The operation must be called on the tasklet's own CPU.
    WrongCpu,
    /// The operation does not apply to the main tasklet, or to the current tasklet.
    InvalidTarget,
    /// Returning would leave no runnable tasklet (e.g. `schedule_remove` by the last one).
    NothingRunnable,
    /// The slice area's size was set after the area was made (by the CPU's first sliced spawn).
    SliceAreaInUse,
}

impl fmt::Display for TaskletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Killed => f.write_str("tasklet killed"),
            Self::Thrown(thrown) => write!(f, "error {}: {}", thrown.code, thrown.message),
            Self::Deadlock => f.write_str("deadlock: the last runnable tasklet cannot be blocked"),
            Self::Closed => f.write_str("operation on a closed channel"),
            Self::TimedOut => f.write_str("timed out"),
            Self::BlockTrap => f.write_str("this tasklet does not like to be blocked"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::StackBudgetExhausted => f.write_str("stack budget exhausted"),
            Self::StackTooSmall => f.write_str("requested stack is too small"),
            Self::StackOverflow => f.write_str("stack overflow"),
            Self::Panicked => f.write_str("tasklet panicked"),
            Self::Dead => f.write_str("tasklet is dead"),
            Self::WrongCpu => f.write_str("tasklet belongs to another CPU"),
            Self::InvalidTarget => f.write_str("operation does not apply to this tasklet"),
            Self::NothingRunnable => f.write_str("no other tasklet is runnable"),
            Self::SliceAreaInUse => f.write_str("the slice area already exists"),
        }
    }
}

impl core::error::Error for TaskletError {}

/// A [`TaskletError`] (or none) taken apart into a kind byte, a code and a message, so that a
/// control block can keep one with the kind and the code among its small fields: kept whole,
/// an `Option<TaskletError>` takes 32 bytes, 11 of them padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ErrorParts {
    /// [`ErrorParts::NONE_KIND`], [`ErrorParts::THROWN_KIND`], or which other variant.
    pub(crate) kind: u8,
    /// The code of a thrown error (0 otherwise).
    pub(crate) code: i32,
    /// The message of a thrown error (empty otherwise).
    pub(crate) message: &'static str,
}

/// The kind bytes of the variants without data, from one list: the match that makes them is
/// exhaustive, so a new variant does not compile until it has a kind.
macro_rules! unit_kinds {
    ($($variant:ident = $kind:literal,)*) => {
        const fn unit_kind(error: TaskletError) -> u8 {
            match error {
                TaskletError::Thrown(_) => ErrorParts::THROWN_KIND,
                $(TaskletError::$variant => $kind,)*
            }
        }

        const fn unit_error(kind: u8) -> Option<TaskletError> {
            match kind {
                $($kind => Some(TaskletError::$variant),)*
                _ => None,
            }
        }
    };
}

unit_kinds! {
    Killed = 2,
    Deadlock = 3,
    Closed = 4,
    TimedOut = 5,
    BlockTrap = 6,
    OutOfMemory = 7,
    StackBudgetExhausted = 8,
    StackTooSmall = 9,
    StackOverflow = 10,
    Panicked = 11,
    Dead = 12,
    WrongCpu = 13,
    InvalidTarget = 14,
    NothingRunnable = 15,
    SliceAreaInUse = 16,
}

impl ErrorParts {
    /// The kind of no error.
    pub(crate) const NONE_KIND: u8 = 0;
    /// The kind of [`TaskletError::Thrown`].
    pub(crate) const THROWN_KIND: u8 = 1;
    /// No error.
    pub(crate) const NONE: Self = Self {
        kind: Self::NONE_KIND,
        code: 0,
        message: "",
    };

    /// Takes `error` apart.
    #[inline]
    pub(crate) const fn of(error: Option<TaskletError>) -> Self {
        match error {
            None => Self::NONE,
            Some(TaskletError::Thrown(thrown)) => Self {
                kind: Self::THROWN_KIND,
                code: thrown.code,
                message: thrown.message,
            },
            Some(error) => Self {
                kind: unit_kind(error),
                ..Self::NONE
            },
        }
    }

    /// Puts the error back together (`None` for [`ErrorParts::NONE`]).
    #[inline]
    pub(crate) const fn error(self) -> Option<TaskletError> {
        match self.kind {
            Self::THROWN_KIND => Some(TaskletError::Thrown(Thrown::new(self.code, self.message))),
            kind => unit_error(kind),
        }
    }
}

impl embedded_io::Error for TaskletError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Self::TimedOut => ErrorKind::TimedOut,
            Self::OutOfMemory | Self::StackBudgetExhausted => ErrorKind::OutOfMemory,
            Self::Closed => ErrorKind::BrokenPipe,
            Self::Killed | Self::Deadlock => ErrorKind::Interrupted,
            Self::StackTooSmall | Self::InvalidTarget | Self::WrongCpu => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Every kind byte that names a variant without data, and that variant.
    fn unit_variants() -> Vec<(u8, TaskletError)> {
        (0..=u8::MAX)
            .filter_map(|kind| unit_error(kind).map(|error| (kind, error)))
            .collect()
    }

    #[test]
    fn every_error_survives_being_taken_apart() {
        let units = unit_variants();
        // 16 variants: Thrown and the 15 without data.
        assert_eq!(units.len(), 15);
        for (kind, error) in units {
            let parts = ErrorParts::of(Some(error));
            assert_eq!(parts.kind, kind, "{error:?}");
            assert_eq!(parts.error(), Some(error));
        }
        for thrown in [
            Thrown::new(0, ""),
            Thrown::new(i32::MIN, "minimum"),
            Thrown::new(i32::MAX, "a message with more than one word in it, é"),
        ] {
            let error = TaskletError::Thrown(thrown);
            let parts = ErrorParts::of(Some(error));
            assert_eq!(parts.kind, ErrorParts::THROWN_KIND);
            assert_eq!(parts.error(), Some(error));
            assert!(core::ptr::eq(parts.message, thrown.message));
        }
        assert_eq!(ErrorParts::of(None), ErrorParts::NONE);
        assert_eq!(ErrorParts::NONE.error(), None);
    }

    #[test]
    fn kinds_are_distinct() {
        let mut kinds: Vec<u8> = unit_variants().iter().map(|(kind, _)| *kind).collect();
        kinds.push(ErrorParts::THROWN_KIND);
        kinds.push(ErrorParts::NONE_KIND);
        let count = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), count);
    }
}
