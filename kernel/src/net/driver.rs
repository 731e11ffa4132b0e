//! The network-driver contract: a platform's BSD-like socket API, call for call.
//!
//! A driver wraps whatever the platform offers (a console's network library, a TCP/IP stack, the
//! in-memory mock). Every call has a default that answers [`NetError::Unsupported`], so a driver
//! implements what its platform has and the rest fails cleanly instead of panicking. Drivers report
//! what the platform reports: the socket layer ([`super::Sockets`]) owns descriptor bookkeeping and
//! repairs the platform's select/poll quirk.

use core::net::SocketAddrV4;
use core::time::Duration;

use super::error::NetError;
use super::sets::{PollFlags, RawFdSet, RawSocket};

/// The kind of socket to create.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SocketKind {
    /// A reliable byte stream (TCP).
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

/// Which direction [`NetDriver::shutdown`] ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shutdown {
    /// No more receiving.
    Read,
    /// No more sending: the peer sees end of stream once the sent data is read.
    Write,
    /// Both.
    Both,
}

/// One entry of a raw poll (BSD `struct pollfd` over raw sockets).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawPollFd {
    /// The socket to watch.
    pub socket: RawSocket,
    /// Events asked for.
    pub events: PollFlags,
    /// Events that happened (written by the driver).
    pub revents: PollFlags,
}

/// A platform's BSD-like socket API.
///
/// Calls never block the CPU longer than the platform does; the tasklet-blocking layer only ever
/// uses non-blocking mode and zero-timeout select/poll. Errors follow the platform: a pending
/// socket error is reported (and cleared) by `recv`, `send` or `take_error`, data that arrived
/// before a reset is returned first.
pub trait NetDriver {
    /// socket(): creates an unconnected socket.
    fn socket(&mut self, kind: SocketKind) -> Result<RawSocket, NetError> {
        let _ = kind;
        Err(NetError::Unsupported)
    }

    /// bind(): gives the socket a local address.
    fn bind(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        let _ = (socket, addr);
        Err(NetError::Unsupported)
    }

    /// listen(): accepts connections, keeping at most `backlog` unaccepted ones.
    fn listen(&mut self, socket: RawSocket, backlog: usize) -> Result<(), NetError> {
        let _ = (socket, backlog);
        Err(NetError::Unsupported)
    }

    /// accept(): takes the oldest pending connection.
    fn accept(&mut self, socket: RawSocket) -> Result<(RawSocket, SocketAddrV4), NetError> {
        let _ = socket;
        Err(NetError::Unsupported)
    }

    /// connect(): connects to a listening address ([`NetError::InProgress`] when non-blocking).
    fn connect(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        let _ = (socket, addr);
        Err(NetError::Unsupported)
    }

    /// send(): queues bytes, returning how many were accepted.
    fn send(&mut self, socket: RawSocket, data: &[u8]) -> Result<usize, NetError> {
        let _ = (socket, data);
        Err(NetError::Unsupported)
    }

    /// recv(): takes received bytes; `Ok(0)` is end of stream.
    fn recv(&mut self, socket: RawSocket, buf: &mut [u8]) -> Result<usize, NetError> {
        let _ = (socket, buf);
        Err(NetError::Unsupported)
    }

    /// shutdown(): ends one or both directions.
    fn shutdown(&mut self, socket: RawSocket, how: Shutdown) -> Result<(), NetError> {
        let _ = (socket, how);
        Err(NetError::Unsupported)
    }

    /// close(): releases the socket. The number is invalid afterwards, even on error.
    fn close(&mut self, socket: RawSocket) -> Result<(), NetError> {
        let _ = socket;
        Err(NetError::Unsupported)
    }

    /// Sets or clears non-blocking mode (O_NONBLOCK / FIONBIO).
    fn set_nonblocking(&mut self, socket: RawSocket, nonblocking: bool) -> Result<(), NetError> {
        let _ = (socket, nonblocking);
        Err(NetError::Unsupported)
    }

    /// getsockopt(SO_ERROR): returns the pending error, if any, and clears it.
    fn take_error(&mut self, socket: RawSocket) -> Result<Option<NetError>, NetError> {
        let _ = socket;
        Err(NetError::Unsupported)
    }

    /// The platform's select(): keeps in each given set the sockets that are ready and returns
    /// how many bits remain set in all. `None` timeout waits without limit.
    ///
    /// A quirky platform may fail with a pending socket error here; the socket layer copes.
    fn select(
        &mut self,
        read: Option<&mut RawFdSet>,
        write: Option<&mut RawFdSet>,
        except: Option<&mut RawFdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let _ = (read, write, except, timeout);
        Err(NetError::Unsupported)
    }

    /// The platform's poll(): fills `revents` and returns how many entries have any. `Err` is a
    /// return of -1 with that errno.
    ///
    /// A quirky platform may return -1 with a pending socket error here; the socket layer copes.
    fn poll(
        &mut self,
        fds: &mut [RawPollFd],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let _ = (fds, timeout);
        Err(NetError::Unsupported)
    }
}
