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
//! - [`NetDriver`]: the driver contract, one method per call of a platform's BSD-like API; calls
//!   a driver lacks answer [`NetError::Unsupported`].
//! - [`Sockets`]: descriptors in a fixed table, errno-style [`NetError`]s that map to
//!   `embedded_io::ErrorKind`, and `select`/`poll` with POSIX results even over a platform whose
//!   select/poll fail when a socket has a pending error (the console quirk, below).
//! - [`Net`] and [`Socket`]: tasklet-blocking sockets (`embedded_io` `Read`/`Write`/`ReadReady`/
//!   `WriteReady`): a blocking call parks only its tasklet, one poller tasklet wakes it.
//!
//! # The console quirk
//!
//! Some platforms' select()/poll() fail with a socket's pending error (ECONNRESET and kin)
//! instead of reporting that socket ready. POSIX and Linux report such a socket readable and
//! writable (poll: `ERR`, plus `HUP` once the connection is gone) and leave the error for
//! recv/send/SO_ERROR, and so do [`Sockets::select`] and [`Sockets::poll`]: they take such a
//! failure as success and rebuild the result by probing each socket, without reading its error.
#![forbid(unsafe_code)]

// The layers, top to bottom; each module imports only from those below it, and the items are
// exported once, here:
// - `blocking`: `Net`, `NetConfig`, `Socket`; joins the reactor to the scheduler.
// - `wake`: the wake slots of parked calls and the tables they share (internal).
// - `reactor`: the wait table of parked calls and the poll pass that wakes them (internal).
// - `select`: `PollFd`, `Sockets::select` and `Sockets::poll`, with the quirk repair.
// - `socket`: `Sockets`, the descriptor table.
// - `driver`: `NetDriver` and its call types `RawPollFd`, `SocketKind`, `Shutdown`.
// - `sets`, the ground floor: `Fd`, `RawSocket`, `FdSet`, `RawFdSet`, `PollFlags`, `FD_SETSIZE`.
// - `error`: `NetError` and the table allocation helper; imports nothing from `net`.
mod blocking;
mod driver;
mod error;
mod reactor;
mod select;
mod sets;
mod socket;
mod wake;

pub use blocking::{Net, NetConfig, Socket};
pub use driver::{NetDriver, RawPollFd, Shutdown, SocketKind};
pub use error::NetError;
pub use select::PollFd;
pub use sets::{Fd, FdSet, PollFlags, RawFdSet, RawSocket, FD_SETSIZE};
pub use socket::Sockets;
