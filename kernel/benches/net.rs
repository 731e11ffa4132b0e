//! Net benchmark: select/poll cost against descriptor count, and echo throughput and latency
//! through the mock network beside the host's loopback TCP. Run: `cargo bench -p spindle --bench net`.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{keep, median, median_ns_per_op};
use spindle::net::{Fd, FdSet, NetError, PollFd, PollFlags, SocketKind, Sockets};
use spindle_drivers::mock_net::{Fault, MockConfig, MockDriver, MockNet};

const SERVER_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: SocketAddrV4 = SocketAddrV4::new(SERVER_HOST, 7);

/// `count` idle connections: the client table holds exactly the client ends (numbered first, so
/// they fit select sets), the server table the listener and the accepted ends.
struct Idle {
    net: MockNet,
    client: Sockets<MockDriver>,
    fds: Vec<Fd>,
    _server: Sockets<MockDriver>,
}

fn idle_connections(count: usize) -> Idle {
    let config = MockConfig {
        max_sockets: 2 * count + 1,
        recv_buffer: 64,
        send_buffer: 64,
        max_backlog: count,
        quirk: true,
    };
    let net = MockNet::new(config).unwrap();
    let mut client = Sockets::new(net.host(CLIENT_HOST), count).unwrap();
    let fds: Vec<Fd> = (0..count)
        .map(|_| client.socket(SocketKind::Stream).unwrap())
        .collect();
    // Listener plus accepted ends must fit FD_SETSIZE: the last connection stays queued
    // unaccepted, which leaves it just as connected and idle.
    let mut server = Sockets::new(net.host(SERVER_HOST), count.max(2)).unwrap();
    let listener = server.socket(SocketKind::Stream).unwrap();
    server.bind(listener, SERVER).unwrap();
    server.listen(listener, count).unwrap();
    for (index, &fd) in fds.iter().enumerate() {
        client.connect(fd, SERVER).unwrap();
        if index + 1 < count {
            server.accept(listener).unwrap();
        }
    }
    Idle {
        net,
        client,
        fds,
        _server: server,
    }
}

fn iterations_for(descriptors: usize) -> u64 {
    (200_000 / descriptors as u64).clamp(20, 20_000)
}

fn select_poll_scaling() {
    println!(
        "select/poll over idle mock sockets (median ns per call; quirk = one socket reset, so"
    );
    println!("the raw call fails and the layer rebuilds the result by probing every descriptor)");
    println!(
        "{:>6} {:>11} {:>9} {:>11} {:>9} {:>13} {:>9}",
        "fds", "select ns", "ns/fd", "poll ns", "ns/fd", "quirk sel ns", "ns/fd"
    );
    for count in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] {
        let mut idle = idle_connections(count);
        let mut all = FdSet::new();
        idle.fds.iter().for_each(|&fd| all.insert(fd));
        let iters = iterations_for(count);
        let select_ns = median_ns_per_op(9, iters, || {
            let mut read = all;
            let ready = idle
                .client
                .select(Some(&mut read), None, None, Some(Duration::ZERO));
            assert_eq!(ready, Ok(0));
        });
        let mut entries: Vec<PollFd> = idle
            .fds
            .iter()
            .map(|&fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        let poll_ns = median_ns_per_op(9, iters, || {
            assert_eq!(idle.client.poll(&mut entries, Some(Duration::ZERO)), Ok(0));
        });
        // The last connection is reset: every select now meets the quirk.
        idle.net.inject(Fault::Reset {
            conn: count as u32 - 1,
        });
        let quirk_ns = median_ns_per_op(9, iters, || {
            let mut read = all;
            let ready = idle
                .client
                .select(Some(&mut read), None, None, Some(Duration::ZERO));
            assert_eq!(ready, Ok(1));
        });
        assert!(idle.net.stats().quirk_errors > 0);
        let per = |ns: f64| ns / count as f64;
        println!(
            "{count:>6} {select_ns:>11.0} {:>9.1} {poll_ns:>11.0} {:>9.1} {quirk_ns:>13.0} {:>9.1}",
            per(select_ns),
            per(poll_ns),
            per(quirk_ns)
        );
    }
}

/// Echo transfer: at most this many bytes per sample, moved lock-step (send a chunk, read it
/// back), and at most [`ECHO_ROUND_TRIPS`] chunks so small chunks over TCP stay quick.
const ECHO_TOTAL: usize = 8 << 20;
const ECHO_ROUND_TRIPS: usize = 8192;
const ROUND_TRIPS: usize = 2000;

struct MockEcho {
    client: Sockets<MockDriver>,
    server: Sockets<MockDriver>,
    client_fd: Fd,
    server_fd: Fd,
}

impl MockEcho {
    fn new(buffer: usize) -> MockEcho {
        let config = MockConfig {
            max_sockets: 4,
            recv_buffer: buffer,
            send_buffer: buffer,
            max_backlog: 1,
            quirk: true,
        };
        let net = MockNet::new(config).unwrap();
        let mut client = Sockets::new(net.host(CLIENT_HOST), 2).unwrap();
        let mut server = Sockets::new(net.host(SERVER_HOST), 2).unwrap();
        let listener = server.socket(SocketKind::Stream).unwrap();
        server.bind(listener, SERVER).unwrap();
        server.listen(listener, 1).unwrap();
        let client_fd = client.socket(SocketKind::Stream).unwrap();
        client.connect(client_fd, SERVER).unwrap();
        let (server_fd, _) = server.accept(listener).unwrap();
        MockEcho {
            client,
            server,
            client_fd,
            server_fd,
        }
    }

    /// Sends `message`, lets the server echo it, reads it back into `reply`.
    fn round_trip(&mut self, message: &[u8], reply: &mut [u8], scratch: &mut [u8]) {
        let mut sent = 0;
        let mut got = 0;
        while got < message.len() {
            if sent < message.len() {
                match self.client.send(self.client_fd, &message[sent..]) {
                    Ok(count) => sent += count,
                    Err(NetError::WouldBlock) => {}
                    Err(error) => panic!("send: {error}"),
                }
            }
            // The server echoes what it has.
            loop {
                match self.server.recv(self.server_fd, scratch) {
                    Ok(count) => {
                        let mut echoed = 0;
                        while echoed < count {
                            echoed += self
                                .server
                                .send(self.server_fd, &scratch[echoed..count])
                                .expect("echo send");
                        }
                    }
                    Err(NetError::WouldBlock) => break,
                    Err(error) => panic!("server recv: {error}"),
                }
            }
            match self.client.recv(self.client_fd, &mut reply[got..]) {
                Ok(count) => got += count,
                Err(NetError::WouldBlock) => {}
                Err(error) => panic!("client recv: {error}"),
            }
        }
    }
}

fn tcp_pair() -> (TcpStream, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) => {
                    if stream.write_all(&buf[..count]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    (client, server)
}

fn tcp_round_trip(stream: &mut TcpStream, message: &[u8], reply: &mut [u8]) {
    stream.write_all(message).unwrap();
    stream.read_exact(&mut reply[..message.len()]).unwrap();
}

/// Median MB/s over `samples` transfers in `chunk`-byte round trips.
fn throughput(samples: usize, chunk: usize, mut round_trip: impl FnMut(&[u8], &mut [u8])) -> f64 {
    let message: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
    let mut reply = vec![0u8; chunk];
    let mut rates = Vec::new();
    let trips = (ECHO_TOTAL / chunk).min(ECHO_ROUND_TRIPS);
    for sample in 0..=samples {
        let start = Instant::now();
        for _ in 0..trips {
            round_trip(&message, &mut reply);
        }
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(keep(&reply)[..], message[..], "the echo came back changed");
        if sample > 0 {
            rates.push((trips * chunk) as f64 / seconds / 1e6);
        }
    }
    median(&mut rates)
}

/// Median round-trip microseconds for a `size`-byte message.
fn latency(size: usize, mut round_trip: impl FnMut(&[u8], &mut [u8])) -> f64 {
    let message = vec![0x5au8; size];
    let mut reply = vec![0u8; size];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        round_trip(&message, &mut reply);
        times.push(start.elapsed().as_nanos() as f64 / 1000.0);
    }
    median(&mut times)
}

fn echo_comparison() {
    println!();
    println!("echo through the mock network (one thread, lock-step) vs loopback TCP 127.0.0.1");
    println!(
        "(std threads, TCP_NODELAY); medians of 5 transfers of min({} MiB, {ECHO_ROUND_TRIPS} chunks)",
        ECHO_TOTAL >> 20
    );
    println!(
        "{:>8} {:>12} {:>12} {:>8}",
        "chunk", "mock MB/s", "tcp MB/s", "ratio"
    );
    let (mut stream, server) = tcp_pair();
    for chunk in [64usize, 1024, 16 << 10] {
        let mut mock = MockEcho::new(64 << 10);
        let mut scratch = vec![0u8; 64 << 10];
        let mock_rate = throughput(5, chunk, |message, reply| {
            mock.round_trip(message, reply, &mut scratch)
        });
        let tcp_rate = throughput(5, chunk, |message, reply| {
            tcp_round_trip(&mut stream, message, reply)
        });
        println!(
            "{chunk:>8} {mock_rate:>12.1} {tcp_rate:>12.1} {:>8.1}",
            mock_rate / tcp_rate
        );
    }
    println!();
    println!("round-trip latency (median of {ROUND_TRIPS}, microseconds)");
    println!("{:>8} {:>12} {:>12}", "bytes", "mock us", "tcp us");
    for size in [1usize, 64, 1024] {
        let mut mock = MockEcho::new(64 << 10);
        let mut scratch = vec![0u8; 64 << 10];
        let mock_us = latency(size, |message, reply| {
            mock.round_trip(message, reply, &mut scratch)
        });
        let tcp_us = latency(size, |message, reply| {
            tcp_round_trip(&mut stream, message, reply)
        });
        println!("{size:>8} {mock_us:>12.2} {tcp_us:>12.2}");
    }
    drop(stream);
    server.join().unwrap();
}

fn main() {
    select_poll_scaling();
    echo_comparison();
}
