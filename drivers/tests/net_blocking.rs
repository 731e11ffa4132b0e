//! Tasklet-blocking sockets over the mock network: the seed scenario, timeouts, close, kill,
//! `embedded_io` streams, more parked waits than descriptors, and the limits of the wait tables.
//!
//! The seed scenario is the select quirk's setting in the seed (the Stackless-on-PS3 document
//! Spindle was made from): a connection is reset while one tasklet waits in recv on it and
//! another in select over it and other sockets, on a network whose raw select/poll fail with
//! the pending ECONNRESET.

use core::time::Duration;

use embedded_io::{Read, ReadReady, Write, WriteReady};
use spindle::net::{FdSet, Net, NetConfig, NetError, PollFd, PollFlags};
use spindle::tasklet;
use spindle_drivers::mock_net::scenarios::{
    self, blocking, roomy, CLIENT_HOST, SAFETY_TIMEOUT, SERVER, SERVER_HOST,
};
use spindle_drivers::mock_net::{MockConfig, MockNet};

/// Yields until every tasklet in `tasklets` waits (parked in a blocking call).
fn until_waiting(tasklets: &[&tasklet::Tasklet]) {
    for _ in 0..100_000 {
        if tasklets.iter().all(|t| t.is_blocked() || t.is_paused()) {
            return;
        }
        tasklet::schedule().unwrap();
    }
    panic!("the tasklets never parked");
}

#[test]
fn seed_scenario_reset_wakes_the_recv_and_the_select_and_leaves_the_rest_alone() {
    scenarios::seed_scenario(5);
}

#[test]
fn no_parked_call_outlives_its_timeout_its_close_or_a_kill() {
    let setup = blocking(MockConfig::default(), NetConfig::default(), 5);
    let mut pairs = setup.pairs;
    let (mut timed, _) = pairs.remove(0);
    let (closed, _) = pairs.remove(0);
    let (killed, _) = pairs.remove(0);
    let (selected, _) = pairs.remove(0);
    let (polled, _) = pairs.remove(0);

    timed.set_timeout(Some(Duration::from_millis(5)));
    let timed = tasklet::spawn(move || timed.recv(&mut [0u8; 4])).unwrap();

    // These two wait for the closer; the long timeouts only turn a broken closer into a
    // failure instead of a hang.
    let closed_fd = closed.fd().unwrap();
    let mut closed = closed;
    closed.set_timeout(Some(SAFETY_TIMEOUT));
    let closed_waiter = tasklet::spawn(move || closed.recv(&mut [0u8; 4])).unwrap();

    let mut killed = killed;
    killed.set_timeout(Some(SAFETY_TIMEOUT));
    let killed_waiter = tasklet::spawn(move || killed.recv(&mut [0u8; 4])).unwrap();

    let net = setup.net.clone();
    let selected_fd = selected.fd().unwrap();
    let selecting = roomy()
        .spawn(move || {
            let mut read = FdSet::new();
            read.insert(selected_fd);
            let count = net.select(Some(&mut read), None, None, Some(Duration::from_millis(3)));
            (count, read.is_empty())
        })
        .unwrap();

    let net = setup.net.clone();
    let polled_fd = polled.fd().unwrap();
    let polling = roomy()
        .spawn(move || {
            let mut entries = [PollFd::new(polled_fd, PollFlags::IN)];
            net.poll(&mut entries, Some(Duration::from_millis(3)))
        })
        .unwrap();

    let net = setup.net.clone();
    let killer_target = killed_waiter.tasklet().clone();
    let close_target = closed_waiter.tasklet().clone();
    let closer = tasklet::spawn(move || {
        // Only these two: on a slow machine the timed calls may be over before they are counted.
        until_waiting(&[&killer_target, &close_target]);
        killer_target.kill().unwrap();
        net.close(closed_fd)
    })
    .unwrap();

    tasklet::run().unwrap();

    assert_eq!(timed.result().unwrap().unwrap(), Err(NetError::TimedOut));
    assert_eq!(
        closed_waiter.result().unwrap().unwrap(),
        Err(NetError::BadDescriptor)
    );
    assert_eq!(closer.result().unwrap().unwrap(), Ok(()));
    assert_eq!(
        killed_waiter.result().unwrap(),
        Ok(Err(NetError::Interrupted)),
        "the kill ends the parked recv with EINTR"
    );
    assert_eq!(selecting.result().unwrap().unwrap(), (Ok(0), true));
    assert_eq!(polling.result().unwrap().unwrap(), Ok(0));
    assert_eq!(setup.net.parked(), 0, "the killed call took its wait out");
    assert_eq!(tasklet::live_count(), 1);
    drop((selected, polled, pairs));
    assert_eq!(
        setup.net.with_sockets(|s| s.open_count()),
        0,
        "sockets close when dropped"
    );
}

#[test]
fn embedded_io_streams_echo_between_tasklets() {
    let mock = MockNet::new(MockConfig {
        recv_buffer: 256,
        send_buffer: 256,
        ..MockConfig::default()
    })
    .unwrap();
    let server_net = Net::new(mock.host(SERVER_HOST), NetConfig::default()).unwrap();
    let client_net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let listener = server_net.socket().unwrap();
    listener.bind(SERVER).unwrap();
    listener.listen(4).unwrap();

    let server = tasklet::spawn(move || {
        let (mut stream, _) = listener.accept()?;
        let mut buf = [0u8; 100];
        let mut echoed = 0;
        loop {
            let count = stream.read(&mut buf)?;
            if count == 0 {
                return Ok::<usize, NetError>(echoed);
            }
            stream.write_all(&buf[..count])?;
            echoed += count;
        }
    })
    .unwrap();

    let client = tasklet::spawn(move || {
        let mut stream = client_net.socket()?;
        stream.connect(SERVER)?;
        assert!(stream.write_ready()?);
        let message: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut back = vec![0u8; message.len()];
        // Writes and reads interleave: the buffers (256 bytes) are far smaller than the message.
        let mut written = 0;
        let mut read = 0;
        while read < message.len() {
            if written < message.len() {
                written += stream.write(&message[written..(written + 300).min(message.len())])?;
            }
            while read < written && (read < message.len()) {
                read += stream.read(&mut back[read..written])?;
                if !stream.read_ready()? {
                    break;
                }
            }
        }
        stream.shutdown(spindle::net::Shutdown::Write)?;
        assert_eq!(
            stream.read(&mut [0u8; 4])?,
            0,
            "the server closes after the echo"
        );
        Ok::<bool, NetError>(back == message)
    })
    .unwrap();

    tasklet::run().unwrap();
    assert_eq!(client.result().unwrap().unwrap(), Ok(true));
    assert_eq!(server.result().unwrap().unwrap(), Ok(5000));
    assert_eq!(mock.sockets_in_use(), 0);
}

#[test]
fn a_refused_blocking_connect_reports_the_refusal() {
    let mock = MockNet::new(MockConfig::default()).unwrap();
    let net = Net::new(mock.host(CLIENT_HOST), NetConfig::default()).unwrap();
    let connecting = tasklet::spawn(move || {
        let socket = net.socket()?;
        socket.connect(SERVER)
    })
    .unwrap();
    tasklet::run().unwrap();
    assert_eq!(
        connecting.result().unwrap().unwrap(),
        Err(NetError::ConnectionRefused)
    );
}

/// Waits outnumbering the descriptor table: two selects on all 4 sockets of a 4-descriptor table
/// park 8 waits; the poller must poll them all (the table's poll takes at most 4 entries) and wake
/// both when data arrives on one, long before their 3 s timeout.
#[test]
fn two_selects_whose_waits_outnumber_the_descriptors_wake_on_data() {
    scenarios::selects_whose_waits_outnumber_the_descriptors_wake_on_data();
}

/// The default sizes (64 descriptors, 256 waits) with 2 × 33 waits, and no timeout: an untimed
/// select and an untimed poll are woken by data. If they were not, a guard closes the sockets
/// after [`SAFETY_TIMEOUT`], so the test fails (with `BadDescriptor`) instead of hanging.
#[test]
fn untimed_select_and_poll_beyond_the_default_table_wake_on_data() {
    const SOCKETS: usize = 33;
    let mock_config = MockConfig {
        max_sockets: 2 * SOCKETS + 1,
        ..MockConfig::default()
    };
    scenarios::untimed_select_and_poll_wake_on_data(mock_config, NetConfig::default(), SOCKETS);
}

/// `max_parked`: a call that would park beyond it fails at once with `NoBuffers` (the calls
/// already parked are untouched), and a slot freed by a woken call serves the next one.
#[test]
fn a_call_beyond_max_parked_fails_with_no_buffers() {
    scenarios::a_call_beyond_max_parked_fails_with_no_buffers();
}

/// `max_waits`: a select naming more descriptors than all waits together fails at once with
/// `NoBuffers`, and so does one needing more waits than are left; a call that fits parks.
#[test]
fn a_call_beyond_max_waits_fails_with_no_buffers() {
    scenarios::a_call_beyond_max_waits_fails_with_no_buffers();
}

/// The stack budget: a call that must park but cannot start the poller (its stack does not fit
/// the CPU's budget) fails at once with `NoBuffers` instead of parking with nobody to wake it
/// (an untimed call waited forever); once the budget has room again, blocking calls work.
#[test]
fn a_call_that_cannot_start_the_poller_fails_with_no_buffers() {
    scenarios::a_call_that_cannot_start_the_poller_fails_with_no_buffers();
}
