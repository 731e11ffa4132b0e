//! The soak's network: the faults it injects, and the echo exchanges checked byte by byte.

use super::Soak;
use crate::net::{Net, NetDriver, NetError, Socket};
use crate::tasklet::{self, Builder, Tasklet, TaskletError};
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use core::sync::atomic::Ordering::*;
use core::time::Duration;

/// The blocking socket calls' own timeout.
const SOCKET_TIMEOUT: Duration = Duration::from_millis(20);
/// The listener's accept timeout (how often the echo server looks at the round's end).
pub(super) const ACCEPT_TIMEOUT: Duration = Duration::from_millis(1);

/// A fault the soak asks the network to suffer (the caller's driver decides what it means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// Reset the most recent connection.
    ResetLatest,
    /// Reset every connection.
    ResetAll,
    /// Accept at most this many bytes per send (`None`: no limit).
    PartialWrites(Option<usize>),
    /// Refuse the next connect.
    RefuseConnect,
}

/// The network of a soak: a server host and a client host over one driver kind.
pub struct SoakNet<D: NetDriver + Send + 'static> {
    /// The listener of the echo server (bound and listening at `address`; the soak sets its
    /// timeout).
    pub listener: Socket<D>,
    /// The echo server's address.
    pub address: SocketAddrV4,
    /// The client host's blocking sockets.
    pub client: Net<D>,
    /// Applies a fault to the network.
    pub inject: Box<dyn Fn(NetFault) + Send + Sync>,
}

impl<D: NetDriver + Send + 'static> Soak<D> {
    /// One echo exchange of `bytes` bytes; socket errors are expected (faults), wrong bytes are
    /// not. True if the tasklet was killed meanwhile.
    pub(super) fn echo(&self, bytes: usize, cpu: usize) -> bool {
        let Some(net) = &self.net else {
            return false;
        };
        let seed = (cpu * 7 + bytes) as u8;
        let pattern = |index: usize| seed.wrapping_add((index * 13) as u8);
        let outcome = (|| -> Result<usize, NetError> {
            let mut socket = net.client.socket()?;
            socket.set_timeout(Some(SOCKET_TIMEOUT));
            socket.connect(net.address)?;
            let mut chunk = [0u8; 64];
            let mut sent = 0;
            let mut received = 0;
            while received < bytes {
                if sent < bytes {
                    let count = (bytes - sent).min(chunk.len());
                    for (offset, byte) in chunk[..count].iter_mut().enumerate() {
                        *byte = pattern(sent + offset);
                    }
                    sent += socket.send(&chunk[..count])?;
                }
                let count = socket.recv(&mut chunk)?;
                if count == 0 {
                    return Err(NetError::ConnectionAborted);
                }
                for (offset, &byte) in chunk[..count].iter().enumerate() {
                    if received + offset >= sent || byte != pattern(received + offset) {
                        self.fail(format!(
                            "echo: byte {} came back as {byte:#x}, sent {:#x} ({sent} sent)",
                            received + offset,
                            pattern(received + offset)
                        ));
                    }
                }
                received += count;
            }
            Ok(received)
        })();
        match outcome {
            Ok(received) => {
                self.counters.echoes.fetch_add(1, Relaxed);
                self.counters.echo_bytes.fetch_add(received as u64, Relaxed);
                false
            }
            Err(NetError::Interrupted) => true,
            Err(_) => {
                self.counters.net_errors.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// CPU 0 in a round with sockets: accepts connections until the round's scripts ended on
    /// every CPU, echoing each in a tasklet of its own.
    pub(super) fn echo_server(&'static self, extras: &spin::Mutex<Vec<Tasklet>>) {
        let Some(net) = &self.net else {
            return;
        };
        while self.scripts_done.load(Acquire) < self.config.cpus {
            match net.listener.accept() {
                Ok((mut connection, _peer)) => {
                    connection.set_timeout(Some(SOCKET_TIMEOUT));
                    let handler = Builder::new()
                        .name("soak echo")
                        .stack_size(self.config.stack)
                        .spawn(move || self.echo_connection(&connection));
                    match handler {
                        Ok(handler) => extras.lock().push(handler.tasklet().clone()),
                        Err(error) => self.fail(format!("spawn an echo handler: {error:?}")),
                    }
                }
                Err(NetError::Interrupted) => return,
                Err(_) => {
                    if tasklet::schedule() == Err(TaskletError::Killed) {
                        return;
                    }
                }
            }
        }
    }

    fn echo_connection(&self, connection: &Socket<D>) {
        let mut buffer = [0u8; 128];
        loop {
            let count = match connection.recv(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(count) => count,
            };
            let mut sent = 0;
            while sent < count {
                match connection.send(&buffer[sent..count]) {
                    Ok(more) => sent += more,
                    Err(_) => return,
                }
            }
        }
    }
}
