//! The echo demo's outcome: clean clients get every byte back, the reset one learns of it.

use spindle::net::NetError;
use spindle_demo::echo::{run_echo_demo, DEMO_BYTES_PER_CLIENT, DEMO_CLIENTS, DEMO_RESET_CLIENT};

#[test]
fn echo_demo_reports_what_each_client_saw() {
    let mut printed = String::new();
    let report = run_echo_demo(&mut printed).unwrap();
    print!("{printed}");
    for (index, client) in report.clients.iter().enumerate() {
        assert!(client.echo_intact, "client {index}: {client:?}");
        if index == DEMO_RESET_CLIENT {
            assert_eq!(client.ended, Err(NetError::ConnectionReset), "{client:?}");
            assert!(
                client.echoed < DEMO_BYTES_PER_CLIENT,
                "reset mid-transfer: {client:?}"
            );
        } else {
            assert_eq!(client.ended, Ok(()), "client {index}: {client:?}");
            assert_eq!(client.sent, DEMO_BYTES_PER_CLIENT);
            assert_eq!(client.echoed, DEMO_BYTES_PER_CLIENT);
        }
    }
    assert_eq!(report.server_accepted, DEMO_CLIENTS);
    assert_eq!(report.server_failures, 1);
    // The run is deterministic and nothing was in flight at the reset: every byte the server's
    // sends accepted for the reset client reached it before its error.
    let others = (DEMO_CLIENTS - 1) * DEMO_BYTES_PER_CLIENT;
    assert_eq!(
        report.clients[DEMO_RESET_CLIENT].echoed,
        report.server_echoed - others
    );
    assert!(
        report.quirk_repairs > 0,
        "the reset must have tripped the quirk"
    );
    assert_eq!(report.sockets_left, 0);
    assert_eq!(printed.lines().count(), DEMO_CLIENTS + 3, "{printed}");
    assert!(printed.contains(&format!("client {DEMO_RESET_CLIENT}: ")));
    assert!(
        printed.contains("ended with: connection reset by peer (errno 104)"),
        "{printed}"
    );
}
