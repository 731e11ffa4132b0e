//! The network's state: every host's sockets, their buffers, connections and pending faults.

use super::alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use spindle::net::{NetError, PollFlags, RawPollFd, RawSocket, Shutdown, FD_SETSIZE};

use super::faults::{ConnId, Fault, FaultScript, ScheduledFault, Side, Trigger};
use super::ring::Ring;

/// Most sockets one mock network can hold.
pub const MAX_MOCK_SOCKETS: usize = 4 * FD_SETSIZE;

/// Sizes and behaviour of a mock network, checked by [`super::MockNet::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockConfig {
    /// Sockets on the whole network, 1..=[`MAX_MOCK_SOCKETS`] (accepted ends count too). Sockets
    /// numbered from [`FD_SETSIZE`] up work with poll but not select, as on BSD.
    pub max_sockets: usize,
    /// Receive buffer of each connected socket, in bytes (at least 1).
    pub recv_buffer: usize,
    /// Send buffer of each connected socket, in bytes (at least 1).
    pub send_buffer: usize,
    /// Largest backlog a listener may ask for (larger requests are clamped, as BSD does).
    pub max_backlog: usize,
    /// Whether raw select/poll fail with a pending socket error, as the console's did.
    pub quirk: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            max_sockets: 64,
            recv_buffer: 4096,
            send_buffer: 4096,
            max_backlog: 16,
            quirk: true,
        }
    }
}

/// What happened on the network so far (for tests and the demo). Every counter saturates at its
/// type's maximum rather than wrap (or panic), however long the network runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Driver calls made.
    pub ops: u64,
    /// Connections established.
    pub connections: u32,
    /// Connections reset (by faults or by abortive closes).
    pub resets: u32,
    /// Connects refused.
    pub refused: u32,
    /// Sends that accepted fewer bytes than offered.
    pub partial_writes: u32,
    /// Raw select/poll calls that failed with a pending socket error (the quirk in action).
    pub quirk_errors: u32,
    /// Scripted faults that fired.
    pub faults_fired: u32,
    /// Bytes delivered into receive buffers.
    pub bytes_delivered: u64,
    /// Bytes accepted by send and then dropped by a reset (their senders got the error).
    pub bytes_dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    #[default]
    Free,
    /// Created, maybe bound, not connected.
    Fresh,
    Listening,
    /// A non-blocking connect waiting for the next network step.
    Connecting,
    Connected,
    /// The connection ended abnormally (reset); data received before stays readable.
    Dead,
    /// Closed by its owner while its sent bytes still drain to the peer.
    Orphan,
}

#[derive(Debug, Default)]
struct Sock {
    state: State,
    host: Option<Ipv4Addr>,
    local: Option<SocketAddrV4>,
    remote: Option<SocketAddrV4>,
    nonblocking: bool,
    pending_error: Option<NetError>,
    recv: Ring,
    send: Ring,
    conn: ConnId,
    side: Option<Side>,
    peer: Option<usize>,
    /// Listener and arrival order while waiting in a listener's accept queue.
    queued_on: Option<(usize, u64)>,
    backlog: usize,
    /// Connections waiting in this listener's accept queue.
    accept_queue: usize,
    /// The peer shut its sending side and every byte it sent has arrived.
    peer_fin: bool,
    read_shut: bool,
    write_shut: bool,
    fin_sent: bool,
    stalled: bool,
    /// Bytes this socket sent that reached the peer's receive buffer.
    delivered: u64,
}

impl Sock {
    fn is_connection_end(&self) -> bool {
        matches!(self.state, State::Connected | State::Orphan)
    }

    fn readiness(&self) -> PollFlags {
        let mut flags = PollFlags::NONE;
        if self.pending_error.is_some() {
            flags |= PollFlags::IN | PollFlags::OUT | PollFlags::ERR;
        }
        match self.state {
            State::Listening if self.accept_queue > 0 => flags |= PollFlags::IN,
            State::Fresh => flags |= PollFlags::OUT | PollFlags::HUP,
            State::Dead => flags |= PollFlags::IN | PollFlags::OUT | PollFlags::HUP,
            State::Connected => {
                if !self.recv.is_empty() || self.peer_fin || self.read_shut {
                    flags |= PollFlags::IN;
                }
                if self.write_shut || self.peer.is_none() || self.send.free() > 0 {
                    flags |= PollFlags::OUT;
                }
                if self.peer_fin && self.write_shut {
                    flags |= PollFlags::HUP;
                }
            }
            _ => {}
        }
        flags
    }
}

/// The whole network. Socket numbers are indices into `sockets`, shared by all hosts.
pub(super) struct Network {
    config: MockConfig,
    sockets: Vec<Sock>,
    stats: MockStats,
    next_conn: ConnId,
    next_arrival: u64,
    next_ephemeral_port: u16,
    connecting: usize,
    script: Vec<ScheduledFault>,
    refuse_connects: u32,
    write_limit: Option<usize>,
}

fn pick<T>(items: &mut [T], first: usize, second: usize) -> (&mut T, &mut T) {
    debug_assert_ne!(first, second);
    if first < second {
        let (low, high) = items.split_at_mut(second);
        (&mut low[first], &mut high[0])
    } else {
        let (low, high) = items.split_at_mut(first);
        (&mut high[0], &mut low[second])
    }
}

impl Network {
    pub(super) fn new(config: MockConfig) -> Result<Network, NetError> {
        if config.max_sockets == 0
            || config.max_sockets > MAX_MOCK_SOCKETS
            || config.recv_buffer == 0
            || config.send_buffer == 0
            || config.max_backlog == 0
        {
            return Err(NetError::InvalidInput);
        }
        let mut sockets = Vec::new();
        sockets
            .try_reserve_exact(config.max_sockets)
            .map_err(|_| NetError::NoBuffers)?;
        sockets.resize_with(config.max_sockets, Sock::default);
        Ok(Network {
            config,
            sockets,
            stats: MockStats::default(),
            next_conn: 0,
            next_arrival: 0,
            next_ephemeral_port: 49152,
            connecting: 0,
            script: Vec::new(),
            refuse_connects: 0,
            write_limit: None,
        })
    }

    pub(super) fn stats(&self) -> MockStats {
        self.stats
    }

    pub(super) fn config(&self) -> MockConfig {
        self.config
    }

    /// Sockets not free (open, queued for accept, or draining after close).
    pub(super) fn sockets_in_use(&self) -> usize {
        self.sockets
            .iter()
            .filter(|sock| sock.state != State::Free)
            .count()
    }

    pub(super) fn load_script(&mut self, script: &FaultScript) -> Result<(), NetError> {
        self.script.clear();
        self.script
            .try_reserve(script.faults().len())
            .map_err(|_| NetError::NoBuffers)?;
        self.script.extend_from_slice(script.faults());
        Ok(())
    }

    pub(super) fn pending_faults(&self) -> usize {
        self.script.len()
    }

    /// The socket `raw` if `host` owns it and it is open.
    fn owned(&self, host: Ipv4Addr, raw: RawSocket) -> Result<usize, NetError> {
        let index = raw.index();
        match self.sockets.get(index) {
            Some(sock)
                if sock.host == Some(host)
                    && sock.queued_on.is_none()
                    && !matches!(sock.state, State::Free | State::Orphan) =>
            {
                Ok(index)
            }
            _ => Err(NetError::BadDescriptor),
        }
    }

    /// The start of a call on one socket: a network step, then the ownership check.
    fn enter(&mut self, host: Ipv4Addr, raw: RawSocket) -> Result<usize, NetError> {
        self.step();
        self.owned(host, raw)
    }

    /// One network step, at the start of every driver call: scripted faults, connect completion.
    fn step(&mut self) {
        self.stats.ops = self.stats.ops.saturating_add(1);
        if self.connecting > 0 {
            for index in 0..self.sockets.len() {
                if self.sockets[index].state == State::Connecting {
                    self.connecting -= 1;
                    self.sockets[index].state = State::Fresh;
                    if let Some(addr) = self.sockets[index].remote {
                        if let Err(error) = self.establish(index, addr) {
                            self.sockets[index].pending_error = Some(error);
                        }
                    }
                }
            }
        }
        let ops = self.stats.ops;
        self.fire_where(|trigger, _| matches!(trigger, Trigger::AtOp(at) if at <= ops));
    }

    /// Fires every scripted fault whose trigger `due` accepts and whose connection exists;
    /// faults aimed at connections that ended are dropped.
    fn fire_where(&mut self, due: impl Fn(Trigger, &Network) -> bool) {
        let mut position = 0;
        while position < self.script.len() {
            let scheduled = self.script[position];
            if !due(scheduled.trigger, self) {
                position += 1;
                continue;
            }
            match scheduled.fault.target() {
                Some(conn) if conn >= self.next_conn => {
                    position += 1;
                    continue;
                }
                _ => {}
            }
            self.script.remove(position);
            self.stats.faults_fired = self.stats.faults_fired.saturating_add(1);
            self.apply(scheduled.fault);
        }
    }

    fn conn_ends(&self, conn: ConnId) -> impl Iterator<Item = usize> + '_ {
        self.sockets
            .iter()
            .enumerate()
            .filter(move |(_, sock)| {
                sock.conn == conn && (sock.is_connection_end() || sock.state == State::Dead)
            })
            .map(|(index, _)| index)
    }

    fn conn_delivered(&self, conn: ConnId) -> u64 {
        self.conn_ends(conn)
            .map(|index| self.sockets[index].delivered)
            .fold(0, u64::saturating_add)
    }

    /// Applies a fault now.
    pub(super) fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::Reset { conn } => self.reset_conn(conn),
            Fault::ResetAll => {
                for conn in 0..self.next_conn {
                    self.reset_conn(conn);
                }
            }
            Fault::HalfClose { conn, side } => {
                let end = self
                    .conn_ends(conn)
                    .find(|&index| self.sockets[index].side == Some(side));
                if let Some(index) = end {
                    if self.sockets[index].state == State::Connected {
                        self.shut_write(index);
                    }
                }
            }
            // Injected counts add up, and saturate: u32::MAX pending refusals outlast any run.
            Fault::RefuseConnects { count } => {
                self.refuse_connects = self.refuse_connects.saturating_add(count);
            }
            Fault::PartialWrites { limit } => self.write_limit = limit.map(|limit| limit.max(1)),
            Fault::Stall { conn, stalled } => {
                let ends: heapless::Vec<usize, 2> = self.conn_ends(conn).take(2).collect();
                for &index in &ends {
                    self.sockets[index].stalled = stalled;
                }
                if !stalled {
                    for &index in &ends {
                        self.pump(index);
                    }
                }
            }
        }
    }

    /// Resets a connection: both live ends get ECONNRESET; undelivered bytes are dropped.
    fn reset_conn(&mut self, conn: ConnId) {
        let ends: heapless::Vec<usize, 2> = self
            .conn_ends(conn)
            .filter(|&index| self.sockets[index].state != State::Dead)
            .take(2)
            .collect();
        if ends.is_empty() {
            return;
        }
        self.count_reset();
        for &index in &ends {
            self.abort_end(index);
        }
    }

    fn count_reset(&mut self) {
        self.stats.resets = self.stats.resets.saturating_add(1);
    }

    /// One end of a reset: drop in-flight bytes, record the error, cut the link.
    fn abort_end(&mut self, index: usize) {
        let sock = &mut self.sockets[index];
        self.stats.bytes_dropped = self
            .stats
            .bytes_dropped
            .saturating_add(sock.send.len() as u64);
        sock.send.clear();
        sock.peer = None;
        if sock.state == State::Orphan {
            self.free(index);
            return;
        }
        sock.state = State::Dead;
        sock.pending_error = Some(NetError::ConnectionReset);
    }

    fn free(&mut self, index: usize) {
        let sock = &mut self.sockets[index];
        if let Some(peer) = sock.peer.take() {
            // The peer must not keep a link to a number that may be reused.
            self.sockets[peer].peer = None;
        }
        self.sockets[index] = Sock::default();
    }

    /// Moves bytes from `index`'s send buffer to its peer's receive buffer, then checks triggers.
    fn pump(&mut self, index: usize) {
        let Some(peer) = self.sockets[index].peer else {
            return;
        };
        let (sock, peer_sock) = pick(&mut self.sockets, index, peer);
        if sock.stalled || peer_sock.read_shut {
            return;
        }
        let moved = sock.send.move_into(&mut peer_sock.recv, usize::MAX);
        sock.delivered = sock.delivered.saturating_add(moved as u64);
        self.stats.bytes_delivered = self.stats.bytes_delivered.saturating_add(moved as u64);
        if sock.write_shut && sock.send.is_empty() && !sock.fin_sent {
            sock.fin_sent = true;
            peer_sock.peer_fin = true;
        }
        if sock.state == State::Orphan && sock.send.is_empty() {
            self.free(index);
        }
        if moved > 0
            && self
                .script
                .iter()
                .any(|s| matches!(s.trigger, Trigger::AfterBytes { .. }))
        {
            self.fire_where(|trigger, network| match trigger {
                Trigger::AfterBytes { conn, bytes } => network.conn_delivered(conn) >= bytes,
                _ => false,
            });
        }
    }

    fn shut_write(&mut self, index: usize) {
        self.sockets[index].write_shut = true;
        self.pump(index);
    }

    fn allocate(&self) -> Option<usize> {
        self.sockets
            .iter()
            .position(|sock| sock.state == State::Free)
    }

    fn ephemeral(&mut self, host: Ipv4Addr) -> SocketAddrV4 {
        loop {
            let port = self.next_ephemeral_port;
            self.next_ephemeral_port = self.next_ephemeral_port.checked_add(1).unwrap_or(49152);
            let addr = SocketAddrV4::new(host, port);
            if !self.bound(addr) {
                return addr;
            }
        }
    }

    fn bound(&self, addr: SocketAddrV4) -> bool {
        self.sockets.iter().any(|sock| {
            sock.state != State::Free && sock.side.is_none() && sock.local == Some(addr)
        })
    }

    /// Connects `client` to the listener at `addr` now, or reports why not.
    fn establish(&mut self, client: usize, addr: SocketAddrV4) -> Result<(), NetError> {
        let listener = self
            .sockets
            .iter()
            .position(|sock| sock.state == State::Listening && sock.local == Some(addr));
        let refused = self.refuse_connects > 0;
        let Some(listener) = listener.filter(|&listener| {
            !refused && self.sockets[listener].accept_queue < self.sockets[listener].backlog
        }) else {
            self.refuse_connects = self.refuse_connects.saturating_sub(1);
            self.stats.refused = self.stats.refused.saturating_add(1);
            return Err(NetError::ConnectionRefused);
        };
        // Connection numbers must stay unique (faults name connections by them), so they neither
        // wrap nor saturate: once u32::MAX connections have been made, connects fail.
        let next_conn = self.next_conn.checked_add(1).ok_or(NetError::NoBuffers)?;
        let server = self.allocate().ok_or(NetError::NoBuffers)?;
        let client_rings = (
            Ring::allocate(self.config.recv_buffer)?,
            Ring::allocate(self.config.send_buffer)?,
        );
        let server_rings = (
            Ring::allocate(self.config.recv_buffer)?,
            Ring::allocate(self.config.send_buffer)?,
        );
        let conn = self.next_conn;
        self.next_conn = next_conn;
        self.stats.connections = self.stats.connections.saturating_add(1);
        let arrival = self.next_arrival;
        // One arrival per connection, so fewer than u32::MAX: this cannot overflow.
        self.next_arrival += 1;
        let client_addr = self.sockets[client].local;
        let server_host = self.sockets[listener].host;
        self.sockets[server] = Sock {
            state: State::Connected,
            host: server_host,
            local: Some(addr),
            remote: client_addr,
            recv: server_rings.0,
            send: server_rings.1,
            conn,
            side: Some(Side::Server),
            peer: Some(client),
            queued_on: Some((listener, arrival)),
            ..Sock::default()
        };
        let sock = &mut self.sockets[client];
        sock.state = State::Connected;
        sock.recv = client_rings.0;
        sock.send = client_rings.1;
        sock.conn = conn;
        sock.side = Some(Side::Client);
        sock.peer = Some(server);
        sock.remote = Some(addr);
        self.sockets[listener].accept_queue += 1;
        Ok(())
    }

    // ---- the BSD calls, per host ----

    pub(super) fn socket(&mut self, host: Ipv4Addr) -> Result<RawSocket, NetError> {
        self.step();
        let index = self.allocate().ok_or(NetError::TooManyDescriptors)?;
        self.sockets[index] = Sock {
            state: State::Fresh,
            host: Some(host),
            ..Sock::default()
        };
        Ok(RawSocket(index as u32))
    }

    pub(super) fn bind(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        addr: SocketAddrV4,
    ) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        if self.sockets[index].state != State::Fresh || self.sockets[index].local.is_some() {
            return Err(NetError::InvalidInput);
        }
        if !addr.ip().is_unspecified() && *addr.ip() != host {
            return Err(NetError::AddrNotAvailable);
        }
        let addr = if addr.port() == 0 {
            self.ephemeral(host)
        } else {
            SocketAddrV4::new(host, addr.port())
        };
        if self.bound(addr) {
            return Err(NetError::AddrInUse);
        }
        self.sockets[index].local = Some(addr);
        Ok(())
    }

    pub(super) fn listen(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        backlog: usize,
    ) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        let sock = &mut self.sockets[index];
        match sock.state {
            State::Listening => {}
            State::Fresh if sock.local.is_some() => sock.state = State::Listening,
            _ => return Err(NetError::InvalidInput),
        }
        sock.backlog = backlog.clamp(1, self.config.max_backlog);
        Ok(())
    }

    pub(super) fn accept(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
    ) -> Result<(RawSocket, SocketAddrV4), NetError> {
        let listener = self.enter(host, raw)?;
        if self.sockets[listener].state != State::Listening {
            return Err(NetError::InvalidInput);
        }
        let oldest = self
            .sockets
            .iter()
            .enumerate()
            .filter_map(|(index, sock)| match sock.queued_on {
                Some((on, arrival)) if on == listener => Some((arrival, index)),
                _ => None,
            })
            .min();
        let Some((_, accepted)) = oldest else {
            return Err(NetError::WouldBlock);
        };
        self.sockets[accepted].queued_on = None;
        self.sockets[listener].accept_queue -= 1;
        let peer = self.sockets[accepted]
            .remote
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        Ok((RawSocket(accepted as u32), peer))
    }

    pub(super) fn connect(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        addr: SocketAddrV4,
    ) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        match self.sockets[index].state {
            State::Fresh => {}
            State::Connecting => return Err(NetError::AlreadyInProgress),
            State::Connected | State::Dead => return Err(NetError::AlreadyConnected),
            _ => return Err(NetError::InvalidInput),
        }
        if self.sockets[index].local.is_none() {
            let local = self.ephemeral(host);
            self.sockets[index].local = Some(local);
        }
        if self.sockets[index].nonblocking {
            let sock = &mut self.sockets[index];
            sock.state = State::Connecting;
            sock.remote = Some(addr);
            self.connecting += 1;
            return Err(NetError::InProgress);
        }
        self.establish(index, addr)
    }

    pub(super) fn send(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        data: &[u8],
    ) -> Result<usize, NetError> {
        let index = self.enter(host, raw)?;
        let write_limit = self.write_limit;
        let sock = &mut self.sockets[index];
        if let Some(error) = sock.pending_error.take() {
            return Err(error);
        }
        match sock.state {
            State::Connected => {}
            State::Connecting => return Err(NetError::WouldBlock),
            State::Dead => return Err(NetError::BrokenPipe),
            _ => return Err(NetError::NotConnected),
        }
        if sock.write_shut || sock.peer.is_none() {
            return Err(NetError::BrokenPipe);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let offered = data.len().min(write_limit.unwrap_or(usize::MAX));
        let accepted = sock.send.push(&data[..offered]);
        if accepted == 0 {
            return Err(NetError::WouldBlock);
        }
        if accepted < data.len() {
            self.stats.partial_writes = self.stats.partial_writes.saturating_add(1);
        }
        self.pump(index);
        Ok(accepted)
    }

    pub(super) fn recv(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        buf: &mut [u8],
    ) -> Result<usize, NetError> {
        let index = self.enter(host, raw)?;
        let sock = &mut self.sockets[index];
        match sock.state {
            State::Connected | State::Dead => {}
            State::Connecting => return Err(NetError::WouldBlock),
            _ => return Err(NetError::NotConnected),
        }
        if sock.read_shut || buf.is_empty() {
            return Ok(0);
        }
        if !sock.recv.is_empty() {
            let count = sock.recv.pop(buf);
            if let Some(peer) = sock.peer {
                self.pump(peer);
            }
            return Ok(count);
        }
        if let Some(error) = sock.pending_error.take() {
            return Err(error);
        }
        if sock.peer_fin || sock.state == State::Dead {
            return Ok(0);
        }
        Err(NetError::WouldBlock)
    }

    pub(super) fn shutdown(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        how: Shutdown,
    ) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        if !matches!(self.sockets[index].state, State::Connected | State::Dead) {
            return Err(NetError::NotConnected);
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.sockets[index].read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.shut_write(index);
        }
        Ok(())
    }

    pub(super) fn close(&mut self, host: Ipv4Addr, raw: RawSocket) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        match self.sockets[index].state {
            State::Listening => {
                // Connections nobody accepted are reset, as a closing BSD listener does.
                for queued in 0..self.sockets.len() {
                    if matches!(self.sockets[queued].queued_on, Some((on, _)) if on == index) {
                        if let Some(client) = self.sockets[queued].peer {
                            self.count_reset();
                            self.abort_end(client);
                        }
                        self.free(queued);
                    }
                }
                self.free(index);
            }
            State::Connecting => {
                self.connecting -= 1;
                self.free(index);
            }
            State::Connected => {
                let peer = self.sockets[index].peer;
                let unread = !self.sockets[index].recv.is_empty()
                    || peer.is_some_and(|peer| !self.sockets[peer].send.is_empty());
                match peer {
                    // Both owners have closed: nobody can read what is still in flight.
                    Some(peer) if self.sockets[peer].state == State::Orphan => {
                        self.free(peer);
                        self.free(index);
                    }
                    // Closing with unread data aborts the connection (BSD sends a reset).
                    Some(peer) if unread => {
                        self.count_reset();
                        self.abort_end(peer);
                        self.free(index);
                    }
                    Some(_) => {
                        self.sockets[index].state = State::Orphan;
                        self.shut_write(index);
                    }
                    None => self.free(index),
                }
            }
            _ => self.free(index),
        }
        Ok(())
    }

    pub(super) fn set_nonblocking(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
        nonblocking: bool,
    ) -> Result<(), NetError> {
        let index = self.enter(host, raw)?;
        self.sockets[index].nonblocking = nonblocking;
        Ok(())
    }

    pub(super) fn take_error(
        &mut self,
        host: Ipv4Addr,
        raw: RawSocket,
    ) -> Result<Option<NetError>, NetError> {
        let index = self.enter(host, raw)?;
        Ok(self.sockets[index].pending_error.take())
    }

    /// Raw poll with the quirk: revents are filled, but a pending error fails the call.
    pub(super) fn poll(
        &mut self,
        host: Ipv4Addr,
        fds: &mut [RawPollFd],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.step();
        let mut ready = self.fill_revents(host, fds);
        if ready == 0 && timeout != Some(Duration::ZERO) {
            self.fire_where(|trigger, _| trigger == Trigger::WhileWaiting);
            ready = self.fill_revents(host, fds);
        }
        if let Some(error) = self.quirk_error(host, fds.iter().map(|entry| entry.socket)) {
            return Err(error);
        }
        self.finish_wait(ready, timeout)
    }

    fn fill_revents(&self, host: Ipv4Addr, fds: &mut [RawPollFd]) -> usize {
        let mut ready = 0;
        for entry in fds.iter_mut() {
            entry.revents = match self.owned(host, entry.socket) {
                Ok(index) => {
                    self.sockets[index].readiness() & (entry.events | PollFlags::ALWAYS_REPORTED)
                }
                Err(_) => PollFlags::NVAL,
            };
            if !entry.revents.is_empty() {
                ready += 1;
            }
        }
        ready
    }

    /// The console's behaviour: the first pending error among the watched sockets fails the call.
    fn quirk_error(
        &mut self,
        host: Ipv4Addr,
        mut watched: impl Iterator<Item = RawSocket>,
    ) -> Option<NetError> {
        if !self.config.quirk {
            return None;
        }
        let error = watched.find_map(|raw| {
            let index = self.owned(host, raw).ok()?;
            self.sockets[index].pending_error
        })?;
        self.stats.quirk_errors = self.stats.quirk_errors.saturating_add(1);
        Some(error)
    }

    /// A wait that found nothing: time "passes" at once, since nothing else runs while the caller
    /// waits; without a timeout the wait could never end, so it is interrupted.
    fn finish_wait(&self, ready: usize, timeout: Option<Duration>) -> Result<usize, NetError> {
        if ready == 0 && timeout.is_none() {
            return Err(NetError::Interrupted);
        }
        Ok(ready)
    }

    /// Raw select with the quirk: a pending error fails the call and leaves the sets unchanged.
    pub(super) fn select(
        &mut self,
        host: Ipv4Addr,
        mut sets: [Option<&mut spindle::net::RawFdSet>; 3],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        self.step();
        let mut watched = spindle::net::RawFdSet::new();
        for set in sets.iter().flatten() {
            for raw in set.iter() {
                self.owned(host, raw)?;
                watched.insert(raw)?;
            }
        }
        let mut ready = self.select_ready(&sets, &watched);
        if ready.iter().all(|set| set.is_empty()) && timeout != Some(Duration::ZERO) {
            self.fire_where(|trigger, _| trigger == Trigger::WhileWaiting);
            ready = self.select_ready(&sets, &watched);
        }
        if let Some(error) = self.quirk_error(host, watched.iter()) {
            return Err(error);
        }
        let mut count = 0;
        for (set, ready) in sets.iter_mut().zip(ready) {
            if let Some(set) = set {
                **set = ready;
                count += ready.len();
            }
        }
        self.finish_wait(count, timeout)
    }

    fn select_ready(
        &self,
        sets: &[Option<&mut spindle::net::RawFdSet>; 3],
        watched: &spindle::net::RawFdSet,
    ) -> [spindle::net::RawFdSet; 3] {
        let mut ready = [spindle::net::RawFdSet::new(); 3];
        for raw in watched.iter() {
            let flags = self.sockets[raw.index()].readiness();
            let lands = [
                flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
                flags.intersects(PollFlags::OUT | PollFlags::ERR),
                flags.contains(PollFlags::PRI),
            ];
            for ((set, out), lands) in sets.iter().zip(ready.iter_mut()).zip(lands) {
                if lands && set.as_ref().is_some_and(|set| set.contains(raw)) {
                    // Numbers come from a RawFdSet, so they fit.
                    let _ = out.insert(raw);
                }
            }
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    //! Counters at their limits, reached by setting them directly (billions of calls otherwise).

    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const ADDR: SocketAddrV4 = SocketAddrV4::new(SERVER, 7);

    /// A network whose server host listens on [`ADDR`].
    fn listening() -> Network {
        let mut net = Network::new(MockConfig::default()).unwrap();
        let listener = net.socket(SERVER).unwrap();
        net.bind(SERVER, listener, ADDR).unwrap();
        net.listen(SERVER, listener, 4).unwrap();
        net
    }

    /// A blocking connect from a new client socket: the socket, or why it failed.
    fn connect(net: &mut Network) -> Result<RawSocket, NetError> {
        let client = net.socket(CLIENT)?;
        net.connect(CLIENT, client, ADDR).map(|()| client)
    }

    /// Moves every counter of `stats` at least once, starting from `stats`.
    fn move_every_counter(stats: MockStats) -> MockStats {
        let mut net = listening();
        net.stats = stats;
        net.apply(Fault::RefuseConnects { count: u32::MAX });
        net.apply(Fault::RefuseConnects { count: u32::MAX });
        assert_eq!(net.refuse_connects, u32::MAX, "injected counts saturate");
        assert_eq!(connect(&mut net), Err(NetError::ConnectionRefused));
        net.refuse_connects = 0;

        let client = connect(&mut net).unwrap();
        net.apply(Fault::PartialWrites { limit: Some(2) });
        assert_eq!(net.send(CLIENT, client, b"abc"), Ok(2));
        net.apply(Fault::Stall {
            conn: 0,
            stalled: true,
        });
        assert_eq!(net.send(CLIENT, client, b"cd"), Ok(2));
        let script = FaultScript::new()
            .with(
                Trigger::AfterBytes {
                    conn: 0,
                    bytes: u64::MAX,
                },
                Fault::ResetAll,
            )
            .unwrap()
            .with(Trigger::AtOp(0), Fault::Reset { conn: 0 })
            .unwrap();
        net.load_script(&script).unwrap();
        // The reset fires (and drops the stalled bytes) at this call's step.
        let mut fds = [RawPollFd {
            socket: client,
            events: PollFlags::IN,
            revents: PollFlags::NONE,
        }];
        assert_eq!(
            net.poll(CLIENT, &mut fds, Some(Duration::ZERO)),
            Err(NetError::ConnectionReset),
            "the quirk"
        );
        // Byte counts of a connection add up without overflowing, too.
        for end in 0..net.sockets.len() {
            if net.sockets[end].conn == 0 && net.sockets[end].side.is_some() {
                net.sockets[end].delivered = u64::MAX;
            }
        }
        assert_eq!(net.conn_delivered(0), u64::MAX);
        assert_eq!(net.pending_faults(), 1, "the byte-count trigger waits");
        net.stats
    }

    #[test]
    fn every_counter_saturates_at_its_maximum() {
        let moved = move_every_counter(MockStats::default());
        let MockStats {
            ops,
            connections,
            resets,
            refused,
            partial_writes,
            quirk_errors,
            faults_fired,
            bytes_delivered,
            bytes_dropped,
        } = moved;
        assert!(
            ops > 0 && bytes_delivered > 0 && bytes_dropped > 0,
            "{moved:?}"
        );
        assert!(
            [
                connections,
                resets,
                refused,
                partial_writes,
                quirk_errors,
                faults_fired
            ]
            .iter()
            .all(|&count| count > 0),
            "{moved:?}"
        );
        let saturated = MockStats {
            ops: u64::MAX,
            connections: u32::MAX,
            resets: u32::MAX,
            refused: u32::MAX,
            partial_writes: u32::MAX,
            quirk_errors: u32::MAX,
            faults_fired: u32::MAX,
            bytes_delivered: u64::MAX,
            bytes_dropped: u64::MAX,
        };
        assert_eq!(move_every_counter(saturated), saturated);
    }

    #[test]
    fn connection_numbers_run_out_with_a_typed_error_instead_of_wrapping() {
        let mut net = listening();
        net.next_conn = u32::MAX - 1;
        let last = connect(&mut net).unwrap();
        assert_eq!(net.sockets[last.index()].conn, u32::MAX - 1);
        assert_eq!(connect(&mut net), Err(NetError::NoBuffers));
        assert_eq!(net.next_conn, u32::MAX);
        // The last connection is still the one its number names.
        net.apply(Fault::Reset { conn: u32::MAX - 1 });
        assert_eq!(
            net.take_error(CLIENT, last),
            Ok(Some(NetError::ConnectionReset))
        );
    }
}
