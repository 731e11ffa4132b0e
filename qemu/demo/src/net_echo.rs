//! A TCP echo server on the real NIC: what the `echo` image (`cargo run -- echo --net 5555:7`)
//! serves, and the guest side of `cargo run -- netbench`.
//!
//! It listens on 10.0.2.15:7 and echoes every connection on its own tasklet until the peer ends
//! it, then prints what the connection cost: bytes echoed and the PMC5 instructions the CPU
//! completed meanwhile (everything it ran: the echo, the stack, the poller; PMC5 reads low under
//! QEMU, see the README's Benchmarks). It serves until the machine is stopped.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use spindle::kprintln;
use spindle::net::{Net, NetConfig, NetError, Socket};
use spindle::tasklet;
use spindle_arch::powerpc64::pmc;
use spindle_drivers::llan::{Hypervisor, Llan, LlanConfig};
use spindle_drivers::tcpip::{TcpIp, TcpIpConfig, Wait};

/// The port the server listens on.
pub const ECHO_PORT: u16 = 7;

type Stack = TcpIp<Llan<Hypervisor>>;

/// A builder for tasklets that call into the stack: a call may run a whole poll of smoltcp's
/// interface on the caller's stack, more than the default tasklet stack holds.
fn stacked() -> tasklet::Builder {
    tasklet::Builder::new().stack_size(64 << 10)
}

/// Instructions completed on this CPU, summed across PMC5's 32-bit wraps (sample it more often
/// than every 4 billion instructions).
struct InstructionCount {
    last: u32,
    total: u64,
}

impl InstructionCount {
    fn start() -> Self {
        Self {
            last: pmc::instructions(),
            total: 0,
        }
    }

    fn sample(&mut self) -> u64 {
        let now = pmc::instructions();
        self.total += u64::from(pmc::elapsed(self.last, now));
        self.last = now;
        self.total
    }
}

/// Echoes `connection` until end of stream; returns bytes echoed and instructions spent.
fn echo_counted(connection: &Socket<Stack>) -> Result<(u64, u64), NetError> {
    let mut count = InstructionCount::start();
    let mut buf = [0u8; 4096];
    let mut bytes = 0u64;
    loop {
        let n = connection.recv(&mut buf)?;
        count.sample();
        if n == 0 {
            return Ok((bytes, count.sample()));
        }
        let mut at = 0;
        while at < n {
            at += connection.send(&buf[at..n])?;
            count.sample();
        }
        bytes += n as u64;
    }
}

/// How the stack waits: [`Wait::Cede`] (the CPU sleeps until a frame's interrupt), or
/// [`Wait::Spin`] when the console's input starts with `spin` by boot (netbench compares both).
fn wait_mode() -> Wait {
    let mut line = [0u8; 8];
    // Whatever the host typed before boot is already there; nothing typed means the default.
    let typed = spindle_drivers::hvterm::HvTerm::console()
        .poll(&mut line)
        .unwrap_or(0);
    if line[..typed].starts_with(b"spin") {
        Wait::Spin
    } else {
        Wait::Cede
    }
}

/// Opens the NIC and serves echo forever; `Err` only when the network cannot be set up.
pub fn serve() -> Result<(), &'static str> {
    let node = spindle_pseries::board()
        .machine
        .llan
        .ok_or("no NIC in the device tree: boot with --net HOSTPORT:7")?;
    let board = spindle_pseries::board();
    let server = board.server(0).ok_or("no interrupt server for CPU 0")?;
    let llan = Llan::open_pseries(node, LlanConfig::default(), &board.rtas, server)
        .map_err(|_| "the NIC would not open")?;
    let config = TcpIpConfig {
        wait: wait_mode(),
        ..TcpIpConfig::qemu_user(node.mac)
    };
    let per_socket = config.bytes_per_tcp_socket();
    let stack = TcpIp::new(llan, config).map_err(|_| "no memory for the TCP/IP stack")?;
    let net = Net::new(stack, NetConfig::default()).map_err(|_| "no memory for the sockets")?;
    let listener = net.socket().map_err(|_| "no socket")?;
    listener
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT))
        .and_then(|()| listener.listen(config.max_backlog))
        .map_err(|_| "cannot listen")?;
    kprintln!(
        "echo: listening on {}:{ECHO_PORT}, waiting by {:?}; memory per TCP socket: {per_socket} bytes ({} receive + {} send buffer + {} socket)",
        config.address,
        config.wait,
        config.rx_buffer,
        config.tx_buffer,
        per_socket - config.rx_buffer - config.tx_buffer,
    );
    let server = stacked()
        .spawn(move || {
            let mut echoes = Vec::new();
            loop {
                let (connection, peer) = match listener.accept() {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        kprintln!("echo: accept failed: {error}");
                        continue;
                    }
                };
                echoes.retain(|echo: &tasklet::JoinHandle<()>| echo.result().is_none());
                let spawned = stacked().spawn(move || match echo_counted(&connection) {
                    Ok((bytes, instructions)) => kprintln!(
                        "echo: {peer} closed: {bytes} bytes echoed, {instructions} instructions"
                    ),
                    Err(error) => kprintln!("echo: {peer}: {error}"),
                });
                match spawned {
                    Ok(echo) => echoes.push(echo),
                    Err(error) => kprintln!("echo: no tasklet for {peer}: {error}"),
                }
            }
        })
        .map_err(|_| "no tasklet for the server")?;
    let _ = tasklet::run();
    drop(server);
    Err("the scheduler stopped")
}
