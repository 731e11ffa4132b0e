//! Property: under random fault scripts, nothing a send accepted is lost silently, select/poll
//! never fail with a socket's error, and no descriptor or mock socket leaks.

mod common;

use core::time::Duration;

use common::{proptest_cases, script, TwoHosts, MAX_CONNS, SERVER};
use proptest::prelude::*;
use spindle::net::{Fd, FdSet, NetError, PollFd, PollFlags, SocketKind, Sockets};
use spindle_drivers::mock_net::{Fault, FaultScript, MockConfig, MockDriver};

#[derive(Clone, Debug)]
enum Op {
    Send {
        conn: usize,
        from_client: bool,
        len: usize,
    },
    Recv {
        conn: usize,
        at_client: bool,
        len: usize,
    },
    Poll {
        at_client: bool,
        wait: bool,
    },
    Select {
        at_client: bool,
        wait: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0..MAX_CONNS as usize;
    prop_oneof![
        3 => (conn.clone(), any::<bool>(), 1usize..100)
            .prop_map(|(conn, from_client, len)| Op::Send { conn, from_client, len }),
        3 => (conn, any::<bool>(), 1usize..100)
            .prop_map(|(conn, at_client, len)| Op::Recv { conn, at_client, len }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(at_client, wait)| Op::Poll { at_client, wait }),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(at_client, wait)| Op::Select { at_client, wait }),
    ]
}

/// The byte at `offset` of one direction's stream: position-dependent, so loss, duplication and
/// reordering all show.
fn pattern(conn: usize, from_client: bool, offset: usize) -> u8 {
    let mixed = (offset as u64 ^ (conn as u64) << 40 ^ u64::from(from_client) << 48)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 56) as u8
}

/// One direction of one connection, as the test saw it.
#[derive(Default, Debug)]
struct Stream {
    accepted: Vec<u8>,
    received: Vec<u8>,
}

struct Conn {
    client: Fd,
    server: Fd,
    /// [client→server, server→client]
    streams: [Stream; 2],
    /// Whether each end (client, server) has been told of a connection failure.
    learned: [bool; 2],
}

fn is_connection_failure(error: NetError) -> bool {
    error.is_pending_socket_error() || error == NetError::BrokenPipe
}

/// The timeout of a select/poll op: a short wait, or zero (a check that returns at once).
fn wait_timeout(wait: bool) -> Option<Duration> {
    Some(if wait {
        Duration::from_millis(1)
    } else {
        Duration::ZERO
    })
}

struct World {
    hosts: TwoHosts,
    conns: Vec<Conn>,
}

impl World {
    fn table(&mut self, at_client: bool) -> &mut Sockets<MockDriver> {
        if at_client {
            &mut self.hosts.client
        } else {
            &mut self.hosts.server
        }
    }

    fn send(&mut self, index: usize, from_client: bool, len: usize) -> Result<(), TestCaseError> {
        let Some(conn) = self.conns.get(index) else {
            return Ok(());
        };
        let fd = if from_client {
            conn.client
        } else {
            conn.server
        };
        let stream = usize::from(!from_client);
        let start = conn.streams[stream].accepted.len();
        let data: Vec<u8> = (start..start + len)
            .map(|offset| pattern(index, from_client, offset))
            .collect();
        match self.table(from_client).send(fd, &data) {
            Ok(count) => {
                prop_assert!(count > 0 && count <= len);
                self.conns[index].streams[stream]
                    .accepted
                    .extend_from_slice(&data[..count]);
            }
            Err(NetError::WouldBlock) => {}
            Err(error) if is_connection_failure(error) => {
                self.conns[index].learned[usize::from(!from_client)] = true;
            }
            Err(error) => return Err(TestCaseError::fail(format!("send: {error}"))),
        }
        Ok(())
    }

    /// Receives once; returns whether bytes came.
    fn recv(&mut self, index: usize, at_client: bool, len: usize) -> Result<bool, TestCaseError> {
        let Some(conn) = self.conns.get(index) else {
            return Ok(false);
        };
        let fd = if at_client { conn.client } else { conn.server };
        let mut buf = vec![0u8; len];
        match self.table(at_client).recv(fd, &mut buf) {
            Ok(0) | Err(NetError::WouldBlock) => Ok(false),
            Ok(count) => {
                // Bytes at the client flow server→client.
                let stream = usize::from(at_client);
                self.conns[index].streams[stream]
                    .received
                    .extend_from_slice(&buf[..count]);
                Ok(true)
            }
            Err(error) if is_connection_failure(error) => {
                self.conns[index].learned[usize::from(!at_client)] = true;
                Ok(false)
            }
            Err(error) => Err(TestCaseError::fail(format!("recv: {error}"))),
        }
    }

    fn fds(&self, at_client: bool) -> Vec<Fd> {
        self.conns
            .iter()
            .map(|conn| if at_client { conn.client } else { conn.server })
            .collect()
    }

    fn poll(&mut self, at_client: bool, wait: bool) -> Result<(), TestCaseError> {
        let mut entries: Vec<PollFd> = self
            .fds(at_client)
            .into_iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN | PollFlags::OUT))
            .collect();
        let timeout = wait_timeout(wait);
        let count = self
            .table(at_client)
            .poll(&mut entries, timeout)
            .map_err(|error| TestCaseError::fail(format!("poll failed: {error}")))?;
        let nonempty = entries.iter().filter(|e| !e.revents.is_empty()).count();
        prop_assert_eq!(count, nonempty);
        prop_assert!(entries.iter().all(|e| !e.revents.contains(PollFlags::NVAL)));
        Ok(())
    }

    fn select(&mut self, at_client: bool, wait: bool) -> Result<(), TestCaseError> {
        let fds = self.fds(at_client);
        let mut read = FdSet::new();
        fds.iter().for_each(|&fd| read.insert(fd));
        let mut write = read;
        let timeout = wait_timeout(wait);
        let count = self
            .table(at_client)
            .select(Some(&mut read), Some(&mut write), None, timeout)
            .map_err(|error| TestCaseError::fail(format!("select failed: {error}")))?;
        prop_assert_eq!(count, read.len() + write.len());
        Ok(())
    }

    /// Lifts every fault that only delays, then reads everything that can still arrive.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        self.hosts.net.load_script(&FaultScript::new()).unwrap();
        for conn in 0..MAX_CONNS {
            self.hosts.net.inject(Fault::Stall {
                conn,
                stalled: false,
            });
        }
        self.hosts.net.inject(Fault::PartialWrites { limit: None });
        for index in 0..self.conns.len() {
            for at_client in [true, false] {
                while self.recv(index, at_client, 256)? {}
            }
            // A failure still pending is learned when the sender asks (SO_ERROR).
            for (end, at_client) in [(0, true), (1, false)] {
                let fd = if at_client {
                    self.conns[index].client
                } else {
                    self.conns[index].server
                };
                if let Ok(Some(error)) = self.table(at_client).take_error(fd) {
                    prop_assert!(is_connection_failure(error));
                    self.conns[index].learned[end] = true;
                }
            }
        }
        Ok(())
    }
}

fn run(script: &FaultScript, conns: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let config = MockConfig {
        max_sockets: 16,
        recv_buffer: 64,
        send_buffer: 48,
        max_backlog: 4,
        quirk: true,
    };
    let mut world = World {
        hosts: TwoHosts::new(config, 4),
        conns: Vec::new(),
    };
    world.hosts.net.load_script(script).unwrap();
    for _ in 0..conns {
        match world.hosts.pair() {
            Ok((client, server)) => {
                world.hosts.client.set_nonblocking(client, true).unwrap();
                world.hosts.server.set_nonblocking(server, true).unwrap();
                world.conns.push(Conn {
                    client,
                    server,
                    streams: Default::default(),
                    learned: [false; 2],
                });
            }
            Err(NetError::ConnectionRefused) => {}
            Err(error) => return Err(TestCaseError::fail(format!("connect: {error}"))),
        }
    }
    for op in ops {
        match *op {
            Op::Send {
                conn,
                from_client,
                len,
            } => world.send(conn, from_client, len)?,
            Op::Recv {
                conn,
                at_client,
                len,
            } => {
                world.recv(conn, at_client, len)?;
            }
            Op::Poll { at_client, wait } => world.poll(at_client, wait)?,
            Op::Select { at_client, wait } => world.select(at_client, wait)?,
        }
    }
    world.settle()?;
    for (index, conn) in world.conns.iter().enumerate() {
        for (stream, sender) in [(0, 0), (1, 1)] {
            let Stream { accepted, received } = &conn.streams[stream];
            prop_assert!(
                received.len() <= accepted.len() && accepted[..received.len()] == received[..],
                "conn {index} stream {stream}: received bytes are not the accepted ones in order"
            );
            prop_assert!(
                received.len() == accepted.len() || conn.learned[sender],
                "conn {index} stream {stream}: {} of {} accepted bytes lost and the sender was \
                 never told",
                accepted.len() - received.len(),
                accepted.len()
            );
        }
    }
    world.hosts.close_all();
    prop_assert_eq!(world.hosts.client.open_count(), 0);
    prop_assert_eq!(world.hosts.server.open_count(), 0);
    prop_assert_eq!(world.hosts.net.sockets_in_use(), 0, "a mock socket leaked");
    // The listener was closed too; a fresh table over the same network starts empty.
    let mut again = Sockets::new(world.hosts.net.host(common::CLIENT_HOST), 4).unwrap();
    let fd = again.socket(SocketKind::Stream).unwrap();
    prop_assert_eq!(again.connect(fd, SERVER), Err(NetError::ConnectionRefused));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(192)))]

    #[test]
    fn accepted_bytes_arrive_in_order_or_the_sender_learns(
        script in script(),
        conns in 1..=MAX_CONNS as usize,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        run(&script, conns, &ops)?;
    }

    #[test]
    fn the_same_holds_under_seeded_scripts(
        seed in any::<u64>(),
        faults in 0usize..12,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        run(&FaultScript::random(seed, faults, 150, MAX_CONNS), MAX_CONNS as usize, &ops)?;
    }
}
