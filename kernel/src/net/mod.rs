//! Sockets and select: a BSD-like socket layer over a pluggable network driver.
//!
//! - [`driver`]: the [`NetDriver`] contract, one method per call of a platform's BSD-like API;
//!   calls a driver lacks answer [`NetError::Unsupported`].
//! - [`Sockets`]: descriptors in a fixed table, errno-style [`NetError`]s that map to
//!   `embedded_io::ErrorKind`, and `select`/`poll` with POSIX results even over a platform whose
//!   select/poll fail when a socket has a pending error (the console quirk; see [`select`]).
//! - [`Reactor`]: the parked calls of blocking sockets and the poll pass that wakes them.
//! - [`Net`] and [`Socket`]: tasklet-blocking sockets (`embedded_io` `Read`/`Write`/`ReadReady`/
//!   `WriteReady`): a blocking call parks only its tasklet, one poller tasklet wakes it.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

pub mod blocking;
pub mod driver;
mod error;
pub mod reactor;
pub mod select;
mod sets;
mod socket;

pub use blocking::{Net, NetConfig, Socket};
pub use driver::{NetDriver, RawPollFd, RawSocket, Shutdown, SocketKind};
pub use error::NetError;
pub use reactor::{Interest, Reactor, WaitId, Wakeup};
pub use select::PollFd;
pub use sets::{FdSet, PollFlags, RawFdSet, FD_SETSIZE};
pub use socket::{Fd, Sockets};

/// An empty vector with room for `capacity` items, or [`NetError::NoBuffers`].
fn reserved<T>(capacity: usize) -> Result<Vec<T>, NetError> {
    let mut items = Vec::new();
    items
        .try_reserve_exact(capacity)
        .map_err(|_| NetError::NoBuffers)?;
    Ok(items)
}
