//! A mock network driver: in-memory hosts and ports, the console select quirk, scripted faults.
//!
//! One [`MockNet`] is a whole network; [`MockNet::host`] gives each host its [`MockDriver`], a
//! [`NetDriver`] for [`spindle::net::Sockets`]. Connections are TCP-like byte streams with bounded
//! send and receive buffers (fixed memory: [`MockConfig`] bounds sockets and buffers). Its raw
//! select/poll behave as the console's did (unless [`MockConfig::quirk`] is off): a watched socket
//! with a pending error fails the whole call with that error.
//!
//! Faults come from a [`FaultScript`] (written by hand, or [`FaultScript::random`] from a seed) or
//! are applied at once with [`MockNet::inject`]; the same script and the same calls always give
//! the same run. The mock never blocks the CPU: nothing else can run while a caller waits, so a
//! blocking-mode call that cannot proceed answers EAGAIN (as a socket with a zero timeout), and a
//! select/poll wait first fires [`Trigger::WhileWaiting`] faults, then times out.
#![forbid(unsafe_code)]

extern crate alloc;

mod faults;
mod network;
mod ring;
#[cfg(feature = "scenarios")]
pub mod scenarios;

use alloc::sync::Arc;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use spin::Mutex;
use spindle::net::{NetDriver, NetError, RawFdSet, RawPollFd, RawSocket, Shutdown, SocketKind};

pub use faults::{ConnId, Fault, FaultScript, ScheduledFault, Side, Trigger, MAX_SCRIPTED_FAULTS};
pub use network::{MockConfig, MockStats, MAX_MOCK_SOCKETS};

use network::Network;

/// A whole in-memory network; clones share it.
#[derive(Clone)]
pub struct MockNet {
    network: Arc<Mutex<Network>>,
}

impl MockNet {
    /// A network sized by `config`: [`NetError::InvalidInput`] for a zero or oversized size,
    /// [`NetError::NoBuffers`] when the socket table cannot be allocated.
    pub fn new(config: MockConfig) -> Result<MockNet, NetError> {
        Ok(MockNet {
            network: Arc::new(Mutex::new(Network::new(config)?)),
        })
    }

    /// The driver for the host at `addr` (its sockets bind and connect from that address).
    pub fn host(&self, addr: Ipv4Addr) -> MockDriver {
        MockDriver {
            network: self.network.clone(),
            host: addr,
        }
    }

    /// Replaces the pending fault script.
    pub fn load_script(&self, script: &FaultScript) -> Result<(), NetError> {
        self.network.lock().load_script(script)
    }

    /// Applies a fault now (a connection that does not exist is left alone).
    pub fn inject(&self, fault: Fault) {
        self.network.lock().apply(fault);
    }

    /// Scripted faults that have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.network.lock().pending_faults()
    }

    /// Counters of what happened so far.
    pub fn stats(&self) -> MockStats {
        self.network.lock().stats()
    }

    /// The configuration.
    pub fn config(&self) -> MockConfig {
        self.network.lock().config()
    }

    /// Sockets in use on the whole network: open, waiting to be accepted, or draining after
    /// close. Zero once every socket is closed and every close has drained: nothing leaked.
    pub fn sockets_in_use(&self) -> usize {
        self.network.lock().sockets_in_use()
    }
}

impl core::fmt::Debug for MockNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MockNet")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// One host's view of a [`MockNet`]: its BSD-like API.
#[derive(Clone)]
pub struct MockDriver {
    network: Arc<Mutex<Network>>,
    host: Ipv4Addr,
}

impl MockDriver {
    /// The host's address.
    pub fn addr(&self) -> Ipv4Addr {
        self.host
    }
}

impl core::fmt::Debug for MockDriver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MockDriver")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl NetDriver for MockDriver {
    fn socket(&mut self, kind: SocketKind) -> Result<RawSocket, NetError> {
        match kind {
            SocketKind::Stream => self.network.lock().socket(self.host),
            SocketKind::Datagram => Err(NetError::Unsupported),
        }
    }

    fn bind(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        self.network.lock().bind(self.host, socket, addr)
    }

    fn listen(&mut self, socket: RawSocket, backlog: usize) -> Result<(), NetError> {
        self.network.lock().listen(self.host, socket, backlog)
    }

    fn accept(&mut self, socket: RawSocket) -> Result<(RawSocket, SocketAddrV4), NetError> {
        self.network.lock().accept(self.host, socket)
    }

    fn connect(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        self.network.lock().connect(self.host, socket, addr)
    }

    fn send(&mut self, socket: RawSocket, data: &[u8]) -> Result<usize, NetError> {
        self.network.lock().send(self.host, socket, data)
    }

    fn recv(&mut self, socket: RawSocket, buf: &mut [u8]) -> Result<usize, NetError> {
        self.network.lock().recv(self.host, socket, buf)
    }

    fn shutdown(&mut self, socket: RawSocket, how: Shutdown) -> Result<(), NetError> {
        self.network.lock().shutdown(self.host, socket, how)
    }

    fn close(&mut self, socket: RawSocket) -> Result<(), NetError> {
        self.network.lock().close(self.host, socket)
    }

    fn set_nonblocking(&mut self, socket: RawSocket, nonblocking: bool) -> Result<(), NetError> {
        self.network
            .lock()
            .set_nonblocking(self.host, socket, nonblocking)
    }

    fn take_error(&mut self, socket: RawSocket) -> Result<Option<NetError>, NetError> {
        self.network.lock().take_error(self.host, socket)
    }

    fn select(
        &mut self,
        read: Option<&mut RawFdSet>,
        write: Option<&mut RawFdSet>,
        except: Option<&mut RawFdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.network
            .lock()
            .select(self.host, [read, write, except], timeout)
    }

    fn poll(
        &mut self,
        fds: &mut [RawPollFd],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.network.lock().poll(self.host, fds, timeout)
    }
}
