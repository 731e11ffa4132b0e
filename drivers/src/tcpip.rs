//! TCP over a real link: a [`NetDriver`] on the smoltcp stack, for any smoltcp device.
//!
//! [`TcpIp`] gives the socket layer ([`spindle::net::Sockets`], select/poll, the blocking `Net`)
//! BSD calls over smoltcp's TCP sockets, with a static IPv4 address (QEMU's user network gives
//! the guest 10.0.2.15/24 behind the gateway 10.0.2.2, which reaches the host's loopback).
//!
//! Memory is fixed at construction ([`TcpIpConfig`]): a table of socket slots, and a pool of
//! smoltcp TCP sockets (the connection table), each with its receive and send buffers, all
//! allocated once. A listener keeps up to its backlog of pool sockets listening; an accepted one
//! is replaced from the pool. When the pool is empty a connect fails with
//! [`NetError::NoBuffers`] and a new peer's SYN finds no listening socket and is refused (RST),
//! so a flood of connections is turned away rather than allocated for.
//!
//! Every call moves the stack (frames in and out) before it answers, and so does every
//! select/poll, which is how the blocking layer's poller drives the link: receiving is polled.
//! Errors follow POSIX: a connect that the peer refuses leaves [`NetError::ConnectionRefused`]
//! pending, a connection the peer resets [`NetError::ConnectionReset`] — after every byte that
//! arrived before the reset has been read. A blocking-mode call that cannot proceed answers
//! [`NetError::WouldBlock`] as the mock does (the stack cannot run while a caller spins); the
//! blocking layer uses non-blocking mode throughout. Datagram sockets are
//! [`NetError::Unsupported`]. With [`TcpIpConfig::quirk`], raw select/poll fail with a watched
//! socket's pending error as the console's did, so the socket layer's repair runs over real TCP.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State as TcpState};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use spindle::net::{
    NetDriver, NetError, PollFlags, RawFdSet, RawPollFd, RawSocket, Shutdown, SocketKind,
    FD_SETSIZE,
};
use spindle::time::Deadline;

/// Most TCP sockets in the pool.
pub const MAX_TCP_SOCKETS: usize = 256;

/// Sizes and addresses of a [`TcpIp`], checked by [`TcpIp::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpIpConfig {
    /// The interface's MAC address.
    pub mac: [u8; 6],
    /// The interface's IPv4 address.
    pub address: Ipv4Addr,
    /// Its prefix length (24 for 10.0.2.0/24).
    pub prefix_len: u8,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Socket slots, listeners and unconnected sockets included (1..=[`FD_SETSIZE`]).
    pub sockets: usize,
    /// TCP sockets in the pool: connections, listening sockets of backlogs, and closing ones
    /// (1..=[`MAX_TCP_SOCKETS`]).
    pub tcp_sockets: usize,
    /// Receive buffer of each TCP socket, bytes (the advertised window; at least 1024).
    pub rx_buffer: usize,
    /// Send buffer of each TCP socket, bytes (at least 1024).
    pub tx_buffer: usize,
    /// Largest backlog a listener may ask for (larger ones are clamped, as BSD does).
    pub max_backlog: usize,
    /// How long a connect or an unacknowledged send may go without progress before the
    /// connection ends with [`NetError::TimedOut`].
    pub timeout: Duration,
    /// Whether raw select/poll fail with a watched socket's pending error, as the console's did
    /// (the socket layer repairs it; on, the repair runs over a real wire).
    pub quirk: bool,
    /// How a select/poll with a timeout waits for the link.
    pub wait: Wait,
}

/// How a select/poll with a timeout (the blocking layer's poller, when nothing else can run)
/// waits for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll the link again and again until something is ready or the timeout passes: the
    /// lowest latency, and the CPU busy the whole time.
    Spin,
    /// Between polls, idle the CPU (the platform's `idle`: H_CEDE on pseries) until the timeout;
    /// an interrupt ends it early. With the NIC's interrupt on ([`crate::llan::Llan::set_interrupts`])
    /// every frame does, so the CPU sleeps while the link is quiet; without it a frame waits for
    /// the timeout.
    Cede,
}

impl TcpIpConfig {
    /// QEMU's user network: 10.0.2.15/24 behind 10.0.2.2, with `mac` (from the device tree).
    pub fn qemu_user(mac: [u8; 6]) -> Self {
        Self {
            mac,
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            sockets: 32,
            tcp_sockets: 16,
            rx_buffer: 16 << 10,
            tx_buffer: 16 << 10,
            max_backlog: 8,
            timeout: Duration::from_secs(10),
            quirk: false,
            wait: Wait::Cede,
        }
    }

    /// Bytes each pool socket takes: its buffers, the socket and its slot in the set.
    pub fn bytes_per_tcp_socket(&self) -> usize {
        self.rx_buffer
            + self.tx_buffer
            + core::mem::size_of::<tcp::Socket<'static>>()
            + core::mem::size_of::<SocketStorage<'static>>()
    }
}

/// Counters of the stack's connections; they saturate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpIpStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connects that reached the peer.
    pub connected: u64,
    /// Connects refused (or timed out) by the peer.
    pub refused: u64,
    /// Connections reset by the peer (or timed out).
    pub resets: u64,
    /// Connects and listens that found the TCP pool empty.
    pub pool_exhausted: u64,
    /// Raw select/poll calls failed with a pending socket error ([`TcpIpConfig::quirk`]).
    pub quirk_errors: u64,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// SYN sent, no answer yet.
    Connecting,
    /// Established once (it may be closing since).
    Open,
    /// Ended abnormally (refused, reset, timed out): the pending error says how.
    Ended,
}

#[derive(Debug)]
enum State {
    Free,
    /// Created, maybe bound.
    Fresh {
        local: Option<SocketAddrV4>,
    },
    /// Listening at `local`; `queue` holds its pool sockets, listening or connected.
    Listening {
        local: SocketAddrV4,
        backlog: usize,
        queue: Vec<SocketHandle>,
    },
    /// A connection (or an attempt).
    Stream {
        handle: SocketHandle,
        phase: Phase,
        /// The smoltcp state seen at the last refresh.
        last: TcpState,
        started: Deadline,
        read_shut: bool,
        write_shut: bool,
    },
}

#[derive(Debug)]
struct Slot {
    state: State,
    pending_error: Option<NetError>,
}

impl Slot {
    const FREE: Slot = Slot {
        state: State::Free,
        pending_error: None,
    };
}

/// The stack over a smoltcp device.
pub struct TcpIp<D: Device> {
    config: TcpIpConfig,
    device: D,
    iface: Interface,
    set: SocketSet<'static>,
    slots: Vec<Slot>,
    /// Pool sockets free for a listen or connect.
    free: Vec<SocketHandle>,
    /// Pool sockets closed by their owner, waiting for their connection to end.
    closing: Vec<SocketHandle>,
    next_port: u16,
    stats: TcpIpStats,
}

impl<D: Device> core::fmt::Debug for TcpIp<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpIp")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn now() -> Instant {
    Instant::from_micros((Deadline::now().as_ns() / 1000) as i64)
}

/// An empty vector with room for `capacity` items, or [`NetError::NoBuffers`].
fn reserved<T>(capacity: usize) -> Result<Vec<T>, NetError> {
    let mut items = Vec::new();
    items
        .try_reserve_exact(capacity)
        .map_err(|_| NetError::NoBuffers)?;
    Ok(items)
}

/// A zeroed buffer of `len` bytes, or [`NetError::NoBuffers`].
fn buffer(len: usize) -> Result<Vec<u8>, NetError> {
    let mut bytes = reserved(len)?;
    bytes.resize(len, 0);
    Ok(bytes)
}

fn endpoint(addr: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(*addr.ip()), addr.port())
}

/// Whether a pool socket in this state is a connection an accept can hand out.
fn accepted_state(state: TcpState) -> bool {
    !matches!(
        state,
        TcpState::Listen | TcpState::SynReceived | TcpState::Closed
    )
}

impl<D: Device> TcpIp<D> {
    /// The stack over `device`, every table and buffer allocated now.
    pub fn new(mut device: D, config: TcpIpConfig) -> Result<Self, NetError> {
        let sizes_ok = (1..=FD_SETSIZE).contains(&config.sockets)
            && (1..=MAX_TCP_SOCKETS).contains(&config.tcp_sockets)
            && config.rx_buffer >= 1024
            && config.tx_buffer >= 1024
            && config.max_backlog >= 1
            && config.prefix_len <= 32;
        if !sizes_ok {
            return Err(NetError::InvalidInput);
        }
        let hardware = HardwareAddress::Ethernet(EthernetAddress(config.mac));
        let mut iface = Interface::new(Config::new(hardware), &mut device, now());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(
                IpAddress::Ipv4(config.address),
                config.prefix_len,
            ));
        });
        if let Some(gateway) = config.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gateway)
                .map_err(|_| NetError::NoBuffers)?;
        }
        let mut storage = reserved(config.tcp_sockets)?;
        storage.resize_with(config.tcp_sockets, || SocketStorage::EMPTY);
        // A fixed slice: the set can never grow past the pool.
        let mut set = SocketSet::new(storage);
        let mut free = reserved(config.tcp_sockets)?;
        for _ in 0..config.tcp_sockets {
            let rx = tcp::SocketBuffer::new(buffer(config.rx_buffer)?);
            let tx = tcp::SocketBuffer::new(buffer(config.tx_buffer)?);
            free.push(set.add(tcp::Socket::new(rx, tx)));
        }
        let mut slots = reserved(config.sockets)?;
        slots.resize_with(config.sockets, || Slot::FREE);
        Ok(Self {
            config,
            device,
            iface,
            set,
            slots,
            free,
            closing: reserved(config.tcp_sockets)?,
            next_port: 49152,
            stats: TcpIpStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TcpIpConfig {
        &self.config
    }

    /// Sets how a select/poll with a timeout waits ([`TcpIpConfig::wait`]).
    pub fn set_wait(&mut self, wait: Wait) {
        self.config.wait = wait;
    }

    /// Turns the console's select/poll quirk on or off ([`TcpIpConfig::quirk`]).
    pub fn set_quirk(&mut self, on: bool) {
        self.config.quirk = on;
    }

    /// The device (its counters).
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The counters.
    pub fn stats(&self) -> TcpIpStats {
        self.stats
    }

    /// Pool sockets free now.
    pub fn free_tcp_sockets(&self) -> usize {
        self.free.len()
    }

    /// Socket slots in use.
    pub fn sockets_in_use(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| !matches!(slot.state, State::Free))
            .count()
    }

    /// Moves frames in and out, then brings every slot's view of its connection up to date.
    pub fn poll_link(&mut self) {
        self.iface.poll(now(), &mut self.device, &mut self.set);
        self.refresh();
    }

    /// How long until the stack needs polling again (a retransmission, a timer), if ever.
    pub fn poll_delay(&mut self) -> Option<Duration> {
        self.iface
            .poll_delay(now(), &self.set)
            .map(|delay| Duration::from_micros(delay.total_micros()))
    }

    fn refresh(&mut self) {
        for slot in &mut self.slots {
            if let State::Listening {
                local,
                backlog,
                queue,
            } = &mut slot.state
            {
                rearm(&mut self.set, &mut self.free, local.port(), *backlog, queue);
                continue;
            }
            let State::Stream {
                handle,
                phase,
                last,
                started,
                ..
            } = &mut slot.state
            else {
                continue;
            };
            let state = self.set.get::<tcp::Socket>(*handle).state();
            match (*phase, state) {
                (Phase::Connecting, TcpState::SynSent) => {}
                (Phase::Connecting, TcpState::Closed) => {
                    *phase = Phase::Ended;
                    let timed_out = started.saturating_add(self.config.timeout).has_passed();
                    slot.pending_error = Some(if timed_out {
                        NetError::TimedOut
                    } else {
                        NetError::ConnectionRefused
                    });
                    count(&mut self.stats.refused);
                }
                (Phase::Connecting, _) => {
                    *phase = Phase::Open;
                    count(&mut self.stats.connected);
                }
                (Phase::Open, TcpState::Closed)
                    if !matches!(
                        *last,
                        TcpState::TimeWait | TcpState::LastAck | TcpState::Closing
                    ) =>
                {
                    // Closed straight from an open state: an RST (or the stack's timeout).
                    *phase = Phase::Ended;
                    slot.pending_error = Some(NetError::ConnectionReset);
                    count(&mut self.stats.resets);
                }
                _ => {}
            }
            *last = state;
        }
        // Closed sockets go back to the pool once their connection has ended.
        let set = &mut self.set;
        let free = &mut self.free;
        self.closing.retain(|handle| {
            let socket = set.get_mut::<tcp::Socket>(*handle);
            match socket.state() {
                TcpState::Closed | TcpState::TimeWait => {
                    socket.abort();
                    free.push(*handle);
                    false
                }
                _ => true,
            }
        });
    }

    fn slot(&mut self, socket: RawSocket) -> Result<&mut Slot, NetError> {
        match self.slots.get_mut(socket.index()) {
            Some(slot) if !matches!(slot.state, State::Free) => Ok(slot),
            _ => Err(NetError::BadDescriptor),
        }
    }

    fn slot_ref(&self, socket: RawSocket) -> Result<&Slot, NetError> {
        match self.slots.get(socket.index()) {
            Some(slot) if !matches!(slot.state, State::Free) => Ok(slot),
            _ => Err(NetError::BadDescriptor),
        }
    }

    fn new_slot(&mut self, state: State) -> Result<RawSocket, NetError> {
        let index = self
            .slots
            .iter()
            .position(|slot| matches!(slot.state, State::Free))
            .ok_or(NetError::TooManyDescriptors)?;
        self.slots[index] = Slot {
            state,
            pending_error: None,
        };
        Ok(RawSocket(index as u32))
    }

    fn take_pool_socket(&mut self) -> Result<SocketHandle, NetError> {
        self.free.pop().ok_or_else(|| {
            count(&mut self.stats.pool_exhausted);
            NetError::NoBuffers
        })
    }

    /// Ends a pool socket's use: gracefully (FIN) or abortively (RST), then waits in `closing`.
    fn release(&mut self, handle: SocketHandle, abort: bool) {
        let socket = self.set.get_mut::<tcp::Socket>(handle);
        if abort {
            socket.abort();
        } else {
            socket.close();
        }
        self.closing.push(handle);
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.slots.iter().any(|slot| match &slot.state {
            State::Fresh { local: Some(local) } | State::Listening { local, .. } => {
                local.port() == port
            }
            _ => false,
        })
    }

    fn ephemeral_port(&mut self) -> u16 {
        for _ in 0..16384 {
            let port = self.next_port;
            self.next_port = if port == u16::MAX { 49152 } else { port + 1 };
            if !self.port_in_use(port) {
                return port;
            }
        }
        self.next_port
    }

    fn readiness(&self, slot: &Slot) -> PollFlags {
        if let Some(error) = slot.pending_error {
            let mut flags = PollFlags::IN | PollFlags::OUT | PollFlags::ERR;
            if error.ends_connection() {
                flags |= PollFlags::HUP;
            }
            return flags;
        }
        match &slot.state {
            State::Free => PollFlags::NVAL,
            State::Fresh { .. } => PollFlags::OUT | PollFlags::HUP,
            State::Listening { queue, .. } => {
                let ready = queue
                    .iter()
                    .any(|handle| accepted_state(self.set.get::<tcp::Socket>(*handle).state()));
                if ready {
                    PollFlags::IN
                } else {
                    PollFlags::NONE
                }
            }
            State::Stream {
                handle,
                phase,
                read_shut,
                write_shut,
                ..
            } => {
                if *phase == Phase::Connecting {
                    return PollFlags::NONE;
                }
                if *phase == Phase::Ended {
                    return PollFlags::IN | PollFlags::OUT | PollFlags::HUP;
                }
                let socket = self.set.get::<tcp::Socket>(*handle);
                let mut flags = PollFlags::NONE;
                if *read_shut || socket.can_recv() || !socket.may_recv() {
                    flags |= PollFlags::IN;
                }
                if *write_shut || socket.can_send() || !socket.may_send() {
                    flags |= PollFlags::OUT;
                }
                if !socket.may_recv() && !socket.may_send() {
                    flags |= PollFlags::HUP;
                }
                flags
            }
        }
    }

    fn readiness_of(&self, socket: RawSocket) -> PollFlags {
        match self.slots.get(socket.index()) {
            Some(slot) => self.readiness(slot),
            None => PollFlags::NVAL,
        }
    }

    /// With the quirk on: the pending error of the first watched socket that has one, which a
    /// quirky select/poll fails with (leaving it pending).
    fn quirk_error(
        &mut self,
        mut watched: impl Iterator<Item = RawSocket>,
    ) -> Result<(), NetError> {
        if !self.config.quirk {
            return Ok(());
        }
        let error = watched.find_map(|socket| self.slots.get(socket.index())?.pending_error);
        match error {
            Some(error) => {
                count(&mut self.stats.quirk_errors);
                Err(error)
            }
            None => Ok(()),
        }
    }

    fn wait_until(&mut self, timeout: Option<Duration>, mut ready: impl FnMut(&mut Self) -> bool) {
        let deadline = timeout.map(Deadline::after);
        loop {
            self.poll_link();
            if ready(self) || deadline.is_some_and(Deadline::has_passed) {
                return;
            }
            match self.config.wait {
                Wait::Spin => core::hint::spin_loop(),
                Wait::Cede => {
                    // The stack's own timers (retransmissions) bound the nap too.
                    let timer = self.poll_delay().map(Deadline::after);
                    let until = match (deadline, timer) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    spindle::platform::platform().idle(until.map(Deadline::as_ns));
                }
            }
        }
    }
}

/// Keeps a listener's queue at its backlog from the pool: connections reset before they were
/// accepted listen again, missing sockets are taken from the pool while it has any.
fn rearm(
    set: &mut SocketSet<'static>,
    free: &mut Vec<SocketHandle>,
    port: u16,
    backlog: usize,
    queue: &mut Vec<SocketHandle>,
) {
    for handle in queue.iter() {
        let socket = set.get_mut::<tcp::Socket>(*handle);
        if socket.state() == TcpState::Closed {
            let _ = socket.listen(port);
        }
    }
    while queue.len() < backlog {
        let Some(handle) = free.pop() else { return };
        if set.get_mut::<tcp::Socket>(handle).listen(port).is_err() {
            free.push(handle);
            return;
        }
        queue.push(handle);
    }
}

fn count(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

impl<D: Device> NetDriver for TcpIp<D> {
    fn socket(&mut self, kind: SocketKind) -> Result<RawSocket, NetError> {
        match kind {
            SocketKind::Stream => self.new_slot(State::Fresh { local: None }),
            SocketKind::Datagram => Err(NetError::Unsupported),
        }
    }

    fn bind(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        if !addr.ip().is_unspecified() && *addr.ip() != self.config.address {
            return Err(NetError::AddrNotAvailable);
        }
        let port = if addr.port() == 0 {
            self.ephemeral_port()
        } else if self.port_in_use(addr.port()) {
            return Err(NetError::AddrInUse);
        } else {
            addr.port()
        };
        let local = SocketAddrV4::new(self.config.address, port);
        match &mut self.slot(socket)?.state {
            State::Fresh {
                local: slot_local @ None,
            } => {
                *slot_local = Some(local);
                Ok(())
            }
            _ => Err(NetError::InvalidInput),
        }
    }

    fn listen(&mut self, socket: RawSocket, backlog: usize) -> Result<(), NetError> {
        let State::Fresh { local: Some(local) } = self.slot(socket)?.state else {
            return Err(NetError::InvalidInput);
        };
        let backlog = backlog.clamp(1, self.config.max_backlog);
        let mut queue = reserved(backlog)?;
        rearm(
            &mut self.set,
            &mut self.free,
            local.port(),
            backlog,
            &mut queue,
        );
        if queue.is_empty() {
            count(&mut self.stats.pool_exhausted);
            return Err(NetError::NoBuffers);
        }
        self.slots[socket.index()].state = State::Listening {
            local,
            backlog,
            queue,
        };
        Ok(())
    }

    fn accept(&mut self, socket: RawSocket) -> Result<(RawSocket, SocketAddrV4), NetError> {
        self.poll_link();
        let State::Listening { local, queue, .. } = &self.slot_ref(socket)?.state else {
            return Err(NetError::InvalidInput);
        };
        let local = *local;
        // Connections reset before they were accepted are dropped (and the socket reused).
        let mut found = None;
        for (position, handle) in queue.iter().enumerate() {
            let socket = self.set.get::<tcp::Socket>(*handle);
            if accepted_state(socket.state()) {
                found = Some((position, *handle));
                break;
            }
        }
        let Some((position, handle)) = found else {
            return Err(NetError::WouldBlock);
        };
        let remote = match self.set.get::<tcp::Socket>(handle).remote_endpoint() {
            Some(IpEndpoint {
                addr: IpAddress::Ipv4(ip),
                port,
            }) => SocketAddrV4::new(ip, port),
            _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        let state = self.set.get::<tcp::Socket>(handle).state();
        let accepted = self.new_slot(State::Stream {
            handle,
            phase: Phase::Open,
            last: state,
            started: Deadline::now(),
            read_shut: false,
            write_shut: false,
        })?;
        count(&mut self.stats.accepted);
        // Re-arm the listener from the pool, if it has a socket left.
        let State::Listening { queue, backlog, .. } = &mut self.slots[socket.index()].state else {
            return Err(NetError::InvalidInput);
        };
        queue.remove(position);
        rearm(&mut self.set, &mut self.free, local.port(), *backlog, queue);
        Ok((accepted, remote))
    }

    fn connect(&mut self, socket: RawSocket, addr: SocketAddrV4) -> Result<(), NetError> {
        let local = match &self.slot(socket)?.state {
            State::Fresh { local } => *local,
            State::Stream {
                phase: Phase::Connecting,
                ..
            } => return Err(NetError::AlreadyInProgress),
            State::Stream { .. } => return Err(NetError::AlreadyConnected),
            _ => return Err(NetError::InvalidInput),
        };
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(NetError::AddrNotAvailable);
        }
        let port = match local {
            Some(local) => local.port(),
            None => self.ephemeral_port(),
        };
        let handle = self.take_pool_socket()?;
        let timeout = smoltcp::time::Duration::from_micros(self.config.timeout.as_micros() as u64);
        let tcp = self.set.get_mut::<tcp::Socket>(handle);
        tcp.set_timeout(Some(timeout));
        tcp.set_nagle_enabled(false);
        if let Err(error) = tcp.connect(self.iface.context(), endpoint(addr), port) {
            self.free.push(handle);
            return Err(match error {
                tcp::ConnectError::Unaddressable => NetError::NetworkUnreachable,
                tcp::ConnectError::InvalidState => NetError::InvalidInput,
            });
        }
        self.slots[socket.index()].state = State::Stream {
            handle,
            phase: Phase::Connecting,
            last: TcpState::SynSent,
            started: Deadline::now(),
            read_shut: false,
            write_shut: false,
        };
        self.poll_link();
        Err(NetError::InProgress)
    }

    fn send(&mut self, socket: RawSocket, data: &[u8]) -> Result<usize, NetError> {
        let slot = self.slot(socket)?;
        if let Some(error) = slot.pending_error.take() {
            return Err(error);
        }
        let State::Stream {
            handle,
            phase,
            write_shut,
            ..
        } = slot.state
        else {
            return Err(NetError::NotConnected);
        };
        match phase {
            Phase::Connecting => return Err(NetError::WouldBlock),
            Phase::Ended => return Err(NetError::BrokenPipe),
            Phase::Open if write_shut => return Err(NetError::BrokenPipe),
            Phase::Open => {}
        }
        let tcp = self.set.get_mut::<tcp::Socket>(handle);
        if !tcp.may_send() {
            return Err(NetError::BrokenPipe);
        }
        let sent = tcp.send_slice(data).map_err(|_| NetError::BrokenPipe)?;
        if sent == 0 {
            self.poll_link();
            return Err(NetError::WouldBlock);
        }
        self.poll_link();
        Ok(sent)
    }

    fn recv(&mut self, socket: RawSocket, buf: &mut [u8]) -> Result<usize, NetError> {
        for attempt in 0..2 {
            let State::Stream {
                handle,
                phase,
                read_shut,
                ..
            } = self.slot_ref(socket)?.state
            else {
                return Err(NetError::NotConnected);
            };
            if read_shut {
                return Ok(0);
            }
            if phase == Phase::Connecting {
                return Err(NetError::WouldBlock);
            }
            let tcp = self.set.get_mut::<tcp::Socket>(handle);
            if tcp.can_recv() {
                let count = tcp.recv_slice(buf).map_err(|_| NetError::NotConnected)?;
                // Reading opened the window: let the peer know without waiting for the poller.
                self.poll_link();
                return Ok(count);
            }
            let may_recv = tcp.may_recv();
            if let Some(error) = self.slots[socket.index()].pending_error.take() {
                return Err(error);
            }
            if phase == Phase::Ended || !may_recv {
                return Ok(0);
            }
            if attempt == 0 {
                self.poll_link();
            }
        }
        Err(NetError::WouldBlock)
    }

    fn shutdown(&mut self, socket: RawSocket, how: Shutdown) -> Result<(), NetError> {
        let State::Stream {
            handle,
            read_shut,
            write_shut,
            phase,
            ..
        } = &mut self.slot(socket)?.state
        else {
            return Err(NetError::NotConnected);
        };
        if *phase == Phase::Connecting {
            return Err(NetError::NotConnected);
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            *read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) && !*write_shut {
            *write_shut = true;
            let handle = *handle;
            self.set.get_mut::<tcp::Socket>(handle).close();
            self.poll_link();
        }
        Ok(())
    }

    fn close(&mut self, socket: RawSocket) -> Result<(), NetError> {
        let slot = core::mem::replace(self.slot(socket)?, Slot::FREE);
        match slot.state {
            State::Stream { handle, phase, .. } => {
                // Unread data or an attempt still connecting end abortively, as BSD does.
                let unread = self.set.get::<tcp::Socket>(handle).can_recv();
                self.release(handle, unread || phase != Phase::Open);
            }
            State::Listening { queue, .. } => {
                for handle in queue {
                    self.release(handle, true);
                }
            }
            State::Fresh { .. } | State::Free => {}
        }
        self.poll_link();
        Ok(())
    }

    fn set_nonblocking(&mut self, socket: RawSocket, _nonblocking: bool) -> Result<(), NetError> {
        // Calls never block either way (see the module docs).
        self.slot(socket).map(drop)
    }

    fn take_error(&mut self, socket: RawSocket) -> Result<Option<NetError>, NetError> {
        Ok(self.slot(socket)?.pending_error.take())
    }

    fn select(
        &mut self,
        read: Option<&mut RawFdSet>,
        write: Option<&mut RawFdSet>,
        except: Option<&mut RawFdSet>,
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let mut sets = [read, write, except];
        // What makes a socket count in each set, as select on Linux reports poll's events.
        let wanted = [
            PollFlags::IN | PollFlags::HUP | PollFlags::ERR,
            PollFlags::OUT | PollFlags::ERR,
            PollFlags::PRI | PollFlags::ERR,
        ];
        for set in sets.iter().flatten() {
            for socket in set.iter() {
                match self.slots.get(socket.index()) {
                    None => return Err(NetError::InvalidInput),
                    Some(Slot {
                        state: State::Free, ..
                    }) => return Err(NetError::BadDescriptor),
                    Some(_) => {}
                }
            }
        }
        let ready_in = |this: &Self, sets: &[Option<&mut RawFdSet>; 3]| {
            sets.iter().zip(wanted).any(|(set, flags)| {
                set.as_ref().is_some_and(|set| {
                    set.iter()
                        .any(|socket| this.readiness_of(socket).intersects(flags))
                })
            })
        };
        self.wait_until(timeout, |this| ready_in(this, &sets));
        self.quirk_error(sets.iter().flatten().flat_map(|set| set.iter()))?;
        let mut total = 0;
        for (set, flags) in sets.iter_mut().zip(wanted) {
            let Some(set) = set else { continue };
            let mut kept = RawFdSet::new();
            for socket in set.iter() {
                if self.readiness_of(socket).intersects(flags) {
                    kept.insert(socket)?;
                    total += 1;
                }
            }
            **set = kept;
        }
        Ok(total)
    }

    fn poll(
        &mut self,
        fds: &mut [RawPollFd],
        timeout: Option<Duration>,
    ) -> Result<usize, NetError> {
        let report = |this: &Self, entry: &RawPollFd| {
            this.readiness_of(entry.socket) & (entry.events | PollFlags::ALWAYS_REPORTED)
        };
        self.wait_until(timeout, |this| {
            fds.iter().any(|entry| !report(this, entry).is_empty())
        });
        self.quirk_error(fds.iter().map(|entry| entry.socket))?;
        let mut ready = 0;
        for entry in fds.iter_mut() {
            entry.revents = report(self, entry);
            if !entry.revents.is_empty() {
                ready += 1;
            }
        }
        Ok(ready)
    }
}
