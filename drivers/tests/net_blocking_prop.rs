//! Property: echo tasklets on blocking sockets under random fault scripts all finish (none stays
//! parked), echoes come back in order or the client learns of the failure, nothing leaks.

mod common;

use core::time::Duration;

use common::{proptest_cases, script, CLIENT_HOST, SERVER, SERVER_HOST};
use proptest::prelude::*;
use spindle::net::{Net, NetConfig, NetError, Shutdown};
use spindle::tasklet;
use spindle_drivers::mock_net::{FaultScript, MockConfig, MockNet};

/// Every blocking call's limit: long enough for a healthy echo, short enough to end stalls.
const CALL_TIMEOUT: Duration = Duration::from_millis(20);

/// What a client saw: bytes its sends accepted, the echo, and whether it was told of a failure
/// (an error, or end of stream before the whole echo).
#[derive(Debug)]
struct Seen {
    accepted: Vec<u8>,
    echoed: Vec<u8>,
    failed: bool,
}

fn client(net: Net<spindle_drivers::mock_net::MockDriver>, id: usize, length: usize) -> Seen {
    let message: Vec<u8> = (0..length).map(|i| (i * 13 + id * 101) as u8).collect();
    let mut seen = Seen {
        accepted: Vec::new(),
        echoed: Vec::new(),
        failed: false,
    };
    let run = |seen: &mut Seen| -> Result<(), NetError> {
        let mut socket = net.socket()?;
        socket.set_timeout(Some(CALL_TIMEOUT));
        socket.connect(SERVER)?;
        let mut buf = [0u8; 128];
        while seen.accepted.len() < message.len() {
            let start = seen.accepted.len();
            let count = socket.send(&message[start..(start + 200).min(message.len())])?;
            seen.accepted
                .extend_from_slice(&message[start..start + count]);
            // Read what is echoed so far, so neither side's buffers stay full.
            while socket.recv_ready()? {
                let count = socket.recv(&mut buf)?;
                if count == 0 {
                    return Err(NetError::ConnectionAborted);
                }
                seen.echoed.extend_from_slice(&buf[..count]);
            }
        }
        socket.shutdown(Shutdown::Write)?;
        loop {
            let count = socket.recv(&mut buf)?;
            if count == 0 {
                return Ok(());
            }
            seen.echoed.extend_from_slice(&buf[..count]);
        }
    };
    let outcome = run(&mut seen);
    seen.failed = outcome.is_err() || seen.echoed.len() < seen.accepted.len();
    seen
}

fn server(net: Net<spindle_drivers::mock_net::MockDriver>, clients: usize) -> usize {
    let Ok(mut listener) = net.socket() else {
        return 0;
    };
    if listener
        .bind(SERVER)
        .and_then(|()| listener.listen(4))
        .is_err()
    {
        return 0;
    }
    listener.set_timeout(Some(CALL_TIMEOUT * 4));
    let mut served = 0;
    for _ in 0..clients {
        let Ok((mut stream, _)) = listener.accept() else {
            break;
        };
        served += 1;
        let net = net.clone();
        let echo = move || {
            let _keep_net = net;
            stream.set_timeout(Some(CALL_TIMEOUT));
            let mut buf = [0u8; 96];
            while let Ok(count @ 1..) = stream.recv(&mut buf) {
                let mut sent = 0;
                while sent < count {
                    match stream.send(&buf[sent..count]) {
                        Ok(accepted) => sent += accepted,
                        Err(_) => return,
                    }
                }
            }
        };
        if tasklet::spawn(echo).is_err() {
            break;
        }
    }
    served
}

fn run(script: &FaultScript, lengths: &[usize]) -> Result<(), TestCaseError> {
    let mock = MockNet::new(MockConfig {
        max_sockets: 16,
        recv_buffer: 128,
        send_buffer: 96,
        max_backlog: 4,
        quirk: true,
    })
    .unwrap();
    mock.load_script(script).unwrap();
    let server_net = Net::new(mock.host(SERVER_HOST), NetConfig::default()).unwrap();
    let client_net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let serving = {
        let net = server_net.clone();
        let clients = lengths.len();
        tasklet::spawn(move || server(net, clients)).unwrap()
    };
    let clients: Vec<_> = lengths
        .iter()
        .enumerate()
        .map(|(id, &length)| {
            let net = client_net.clone();
            tasklet::spawn(move || client(net, id, length)).unwrap()
        })
        .collect();

    tasklet::run().unwrap();

    prop_assert!(serving.result().is_some(), "the server tasklet finished");
    for (id, handle) in clients.iter().enumerate() {
        let seen = handle
            .result()
            .ok_or_else(|| TestCaseError::fail(format!("client {id} never finished")))?
            .map_err(|error| TestCaseError::fail(format!("client {id}: {error}")))?;
        prop_assert!(
            seen.echoed.len() <= seen.accepted.len()
                && seen.accepted[..seen.echoed.len()] == seen.echoed[..],
            "client {id}: the echo is not what it sent, in order"
        );
        prop_assert!(
            seen.echoed.len() == seen.accepted.len() || seen.failed,
            "client {id}: echo short by {} bytes and no failure reported",
            seen.accepted.len() - seen.echoed.len()
        );
    }
    prop_assert_eq!(tasklet::live_count(), 1, "no tasklet is left parked");
    prop_assert_eq!(client_net.parked() + server_net.parked(), 0);
    prop_assert_eq!(client_net.with_sockets(|s| s.open_count()), 0);
    prop_assert_eq!(server_net.with_sockets(|s| s.open_count()), 0);
    prop_assert_eq!(mock.sockets_in_use(), 0, "a mock socket leaked");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(40)))]

    #[test]
    fn echo_tasklets_finish_and_lose_nothing_silently(
        script in script(),
        lengths in proptest::collection::vec(1usize..1500, 1..=3),
    ) {
        run(&script, &lengths)?;
    }
}
