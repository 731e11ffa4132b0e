//! Shared set-up for the mock-network tests: two hosts, a listener, connected pairs.
#![allow(dead_code)]

use core::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use spindle::net::{Fd, NetError, SocketKind, Sockets};
use spindle_drivers::mock_net::{
    Fault, FaultScript, MockConfig, MockDriver, MockNet, Side, Trigger,
};

pub const CLIENT_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const SERVER_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PORT: u16 = 7;
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(SERVER_HOST, PORT);

/// A network with a client host and a server host listening on [`SERVER`].
pub struct TwoHosts {
    pub net: MockNet,
    pub client: Sockets<MockDriver>,
    pub server: Sockets<MockDriver>,
    pub listener: Fd,
}

impl TwoHosts {
    pub fn new(config: MockConfig, backlog: usize) -> TwoHosts {
        let net = MockNet::new(config).unwrap();
        let client = Sockets::new(net.host(CLIENT_HOST), config.max_sockets).unwrap();
        let mut server = Sockets::new(net.host(SERVER_HOST), config.max_sockets).unwrap();
        let listener = server.socket(SocketKind::Stream).unwrap();
        server.bind(listener, SERVER).unwrap();
        server.listen(listener, backlog).unwrap();
        TwoHosts {
            net,
            client,
            server,
            listener,
        }
    }

    /// Connects a client socket (blocking connect) and accepts it: (client end, server end).
    pub fn pair(&mut self) -> Result<(Fd, Fd), NetError> {
        let client = self.client.socket(SocketKind::Stream)?;
        if let Err(error) = self.client.connect(client, SERVER) {
            self.client.close(client)?;
            return Err(error);
        }
        let (server, _) = self.server.accept(self.listener)?;
        Ok((client, server))
    }

    /// Closes every descriptor of both tables.
    pub fn close_all(&mut self) {
        for table in [&mut self.client, &mut self.server] {
            let fds: Vec<Fd> = table.descriptors().collect();
            for fd in fds {
                table.close(fd).unwrap();
            }
        }
    }
}

/// Reads until the socket would block, ends, or fails: (bytes, how it stopped).
pub fn drain(table: &mut Sockets<MockDriver>, fd: Fd) -> (Vec<u8>, Result<usize, NetError>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match table.recv(fd, &mut buf) {
            Ok(0) => return (got, Ok(0)),
            Ok(count) => got.extend_from_slice(&buf[..count]),
            Err(error) => return (got, Err(error)),
        }
    }
}

/// Connections the random fault scripts aim at.
pub const MAX_CONNS: u32 = 3;

pub fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![
        (0u64..150).prop_map(Trigger::AtOp),
        (0..MAX_CONNS, 0u64..400).prop_map(|(conn, bytes)| Trigger::AfterBytes { conn, bytes }),
        Just(Trigger::WhileWaiting),
    ]
}

pub fn fault() -> impl Strategy<Value = Fault> {
    let side = prop_oneof![Just(Side::Client), Just(Side::Server)];
    prop_oneof![
        (0..MAX_CONNS).prop_map(|conn| Fault::Reset { conn }),
        Just(Fault::ResetAll),
        (0..MAX_CONNS, side).prop_map(|(conn, side)| Fault::HalfClose { conn, side }),
        (1u32..3).prop_map(|count| Fault::RefuseConnects { count }),
        proptest::option::of(1usize..40).prop_map(|limit| Fault::PartialWrites { limit }),
        (0..MAX_CONNS, any::<bool>()).prop_map(|(conn, stalled)| Fault::Stall { conn, stalled }),
    ]
}

/// A random fault script of up to 10 faults over the first 150 operations.
pub fn script() -> impl Strategy<Value = FaultScript> {
    proptest::collection::vec((trigger(), fault()), 0..10).prop_map(|faults| {
        faults
            .into_iter()
            .fold(FaultScript::new(), |script, (trigger, fault)| {
                script
                    .with(trigger, fault)
                    .expect("within the script bound")
            })
    })
}

/// Proptest cases: `PROPTEST_CASES` (CI's scale run) or the test's own default.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}
