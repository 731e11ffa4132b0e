//! Errno-style socket errors and their mapping to `embedded_io::ErrorKind`.
//!
//! The bottom of `net`: it imports nothing else from the layer, and every other module imports it.

use alloc::vec::Vec;
use core::fmt;

/// A socket error, one variant per BSD errno value the layer can meet.
///
/// Drivers return these from every raw call; the socket layer passes them through unchanged, except
/// that a raw select/poll failing with a pending socket error is turned into a successful call (see
/// [`NetError::is_pending_socket_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetError {
    /// EBADF: the descriptor is not open (or was closed).
    BadDescriptor,
    /// EINTR: the call was interrupted before anything happened.
    Interrupted,
    /// EINVAL: an argument is out of range (empty buffer, oversized descriptor set, bad state).
    InvalidInput,
    /// EAGAIN/EWOULDBLOCK: a non-blocking call could not proceed now.
    WouldBlock,
    /// EINPROGRESS: a non-blocking connect has started; writability reports its end.
    InProgress,
    /// EALREADY: a connect is already in progress on this socket.
    AlreadyInProgress,
    /// ECONNRESET: the peer reset the connection.
    ConnectionReset,
    /// ECONNABORTED: the connection was aborted locally.
    ConnectionAborted,
    /// ECONNREFUSED: nobody listens at the address, or its backlog is full.
    ConnectionRefused,
    /// ENOTCONN: the socket is not connected.
    NotConnected,
    /// EISCONN: the socket is already connected.
    AlreadyConnected,
    /// EPIPE: the connection can no longer send (shut down, closed or reset).
    BrokenPipe,
    /// ETIMEDOUT: the connection timed out (or a blocking call's own timeout passed).
    TimedOut,
    /// EADDRINUSE: the address is already bound.
    AddrInUse,
    /// EADDRNOTAVAIL: the address is not local to this host.
    AddrNotAvailable,
    /// EHOSTUNREACH: no route to the host.
    HostUnreachable,
    /// ENETUNREACH: no route to the network.
    NetworkUnreachable,
    /// ENETDOWN: the network is down.
    NetworkDown,
    /// ENOBUFS: the driver has no buffer space left.
    NoBuffers,
    /// EMFILE: the descriptor table is full.
    TooManyDescriptors,
    /// EOPNOTSUPP/ENOSYS: the driver does not provide this call.
    Unsupported,
    /// Any other errno value a platform reported, kept as its number.
    Other(i32),
}

/// Linux errno numbers: the ones the platform headers use, so raw values round-trip.
const ERRNO_TABLE: [(NetError, i32); 21] = [
    (NetError::BadDescriptor, 9),
    (NetError::Interrupted, 4),
    (NetError::InvalidInput, 22),
    (NetError::WouldBlock, 11),
    (NetError::InProgress, 115),
    (NetError::AlreadyInProgress, 114),
    (NetError::ConnectionReset, 104),
    (NetError::ConnectionAborted, 103),
    (NetError::ConnectionRefused, 111),
    (NetError::NotConnected, 107),
    (NetError::AlreadyConnected, 106),
    (NetError::BrokenPipe, 32),
    (NetError::TimedOut, 110),
    (NetError::AddrInUse, 98),
    (NetError::AddrNotAvailable, 99),
    (NetError::HostUnreachable, 113),
    (NetError::NetworkUnreachable, 101),
    (NetError::NetworkDown, 100),
    (NetError::NoBuffers, 105),
    (NetError::TooManyDescriptors, 24),
    (NetError::Unsupported, 95),
];

/// ENOSYS: a platform's "function not implemented", which means the same as EOPNOTSUPP here.
const ENOSYS: i32 = 38;

impl NetError {
    /// The errno number (Linux numbering).
    pub fn errno(self) -> i32 {
        if let NetError::Other(number) = self {
            return number;
        }
        ERRNO_TABLE
            .iter()
            .find(|(error, _)| *error == self)
            .map_or(0, |(_, number)| *number)
    }

    /// The error for an errno number; unknown numbers become [`NetError::Other`].
    pub fn from_errno(number: i32) -> NetError {
        if number == ENOSYS {
            return NetError::Unsupported;
        }
        ERRNO_TABLE
            .iter()
            .find(|(_, known)| *known == number)
            .map_or(NetError::Other(number), |(error, _)| *error)
    }

    /// Whether this is an error *of a socket* that a platform's select/poll may wrongly report as
    /// the call's own failure (the console quirk): the call must then be treated as successful.
    ///
    /// Select itself can only fail with EBADF, EINTR or EINVAL (and ENOMEM); everything here
    /// belongs to a connection.
    pub fn is_pending_socket_error(self) -> bool {
        self.ends_connection()
            || matches!(
                self,
                NetError::HostUnreachable | NetError::NetworkUnreachable | NetError::NetworkDown
            )
    }

    /// Whether a socket holding this pending error has lost its connection, so poll adds POLLHUP.
    pub fn ends_connection(self) -> bool {
        matches!(
            self,
            NetError::ConnectionReset
                | NetError::ConnectionAborted
                | NetError::ConnectionRefused
                | NetError::NotConnected
                | NetError::BrokenPipe
                | NetError::TimedOut
        )
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            NetError::BadDescriptor => "bad descriptor",
            NetError::Interrupted => "interrupted",
            NetError::InvalidInput => "invalid argument",
            NetError::WouldBlock => "operation would block",
            NetError::InProgress => "connect in progress",
            NetError::AlreadyInProgress => "connect already in progress",
            NetError::ConnectionReset => "connection reset by peer",
            NetError::ConnectionAborted => "connection aborted",
            NetError::ConnectionRefused => "connection refused",
            NetError::NotConnected => "not connected",
            NetError::AlreadyConnected => "already connected",
            NetError::BrokenPipe => "broken pipe",
            NetError::TimedOut => "timed out",
            NetError::AddrInUse => "address in use",
            NetError::AddrNotAvailable => "address not available",
            NetError::HostUnreachable => "host unreachable",
            NetError::NetworkUnreachable => "network unreachable",
            NetError::NetworkDown => "network down",
            NetError::NoBuffers => "no buffer space",
            NetError::TooManyDescriptors => "descriptor table full",
            NetError::Unsupported => "operation not supported by the network driver",
            NetError::Other(number) => return write!(f, "errno {number}"),
        };
        write!(f, "{text} (errno {})", self.errno())
    }
}

impl core::error::Error for NetError {}

impl embedded_io::Error for NetError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            NetError::ConnectionReset => ErrorKind::ConnectionReset,
            NetError::ConnectionAborted => ErrorKind::ConnectionAborted,
            NetError::ConnectionRefused => ErrorKind::ConnectionRefused,
            NetError::NotConnected => ErrorKind::NotConnected,
            NetError::BrokenPipe => ErrorKind::BrokenPipe,
            NetError::TimedOut => ErrorKind::TimedOut,
            NetError::AddrInUse => ErrorKind::AddrInUse,
            NetError::AddrNotAvailable => ErrorKind::AddrNotAvailable,
            NetError::AlreadyConnected => ErrorKind::AlreadyExists,
            NetError::BadDescriptor | NetError::InvalidInput => ErrorKind::InvalidInput,
            // embedded-io has no WouldBlock: its traits block, so a leak of EAGAIN through them
            // is an interruption the caller may retry.
            NetError::Interrupted | NetError::WouldBlock => ErrorKind::Interrupted,
            NetError::Unsupported => ErrorKind::Unsupported,
            NetError::NoBuffers | NetError::TooManyDescriptors => ErrorKind::OutOfMemory,
            NetError::InProgress
            | NetError::AlreadyInProgress
            | NetError::HostUnreachable
            | NetError::NetworkUnreachable
            | NetError::NetworkDown
            | NetError::Other(_) => ErrorKind::Other,
        }
    }
}

/// An empty vector with room for `capacity` items, or [`NetError::NoBuffers`].
pub(super) fn reserved<T>(capacity: usize) -> Result<Vec<T>, NetError> {
    let mut items = Vec::new();
    items
        .try_reserve_exact(capacity)
        .map_err(|_| NetError::NoBuffers)?;
    Ok(items)
}
