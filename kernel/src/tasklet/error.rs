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
