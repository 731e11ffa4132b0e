//! Sockets and select: a BSD-like socket layer over a pluggable network driver.
//!
//! ```
//! use core::net::{Ipv4Addr, SocketAddrV4};
//! use spindle::net::{Net, NetConfig, NetError};
//! use spindle::tasklet;
//! use spindle_drivers::mock_net::{MockConfig, MockNet};
//!
//! const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);
//! const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
//! let network = MockNet::new(MockConfig::default())?;
//! // One `Net` per host: its descriptor table, parked calls and poller tasklet.
//! let server_net = Net::new(network.host(*SERVER.ip()), NetConfig::default())?;
//! let client_net = Net::new(network.host(CLIENT), NetConfig::default())?;
//!
//! let listener = server_net.socket()?;
//! listener.bind(SERVER)?;
//! listener.listen(1)?;
//! let server = tasklet::spawn(move || -> Result<usize, NetError> {
//!     let (connection, _peer) = listener.accept()?; // parks this tasklet, not the CPU
//!     let mut buf = [0u8; 16];
//!     let count = connection.recv(&mut buf)?;
//!     connection.send(&buf[..count]) // both sockets close when dropped
//! })?;
//! let client = tasklet::spawn(move || -> Result<Vec<u8>, NetError> {
//!     let socket = client_net.socket()?;
//!     socket.connect(SERVER)?;
//!     socket.send(b"ping")?;
//!     let mut buf = [0u8; 16];
//!     let count = socket.recv(&mut buf)?;
//!     Ok(buf[..count].to_vec())
//! })?;
//! tasklet::run()?; // the tasklets and the pollers that wake them, until all are done
//! assert_eq!(client.result(), Some(Ok(Ok(b"ping".to_vec()))));
//! assert_eq!(server.result(), Some(Ok(Ok(4))));
//! assert_eq!(network.sockets_in_use(), 0); // every socket closed: nothing leaked
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An echo over blocking sockets, one tasklet at each end. Its driver is the in-memory network
//! of `spindle_drivers::mock_net` (a dev-dependency of this crate, for tests and examples); a
//! board passes its own [`NetDriver`].
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
