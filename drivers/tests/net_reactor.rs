//! The wait table over the mock network: who is woken, when, and why; at most once each.

mod common;

use core::time::Duration;

use common::TwoHosts;
use spindle::net::{Interest, NetError, Reactor, Wakeup};
use spindle_drivers::mock_net::{Fault, MockConfig};

type Woken = Vec<(&'static str, Wakeup)>;

fn pass(reactor: &mut Reactor<&'static str>, hosts: &mut TwoHosts, now_ns: u64) -> Woken {
    let mut woken = Vec::with_capacity(reactor.capacity());
    let count = reactor
        .pass(&mut hosts.client, Some(Duration::ZERO), now_ns, &mut woken)
        .unwrap();
    assert_eq!(count, woken.len());
    woken
}

#[test]
fn waiters_wake_when_ready_reset_timed_out_or_closed() {
    let mut hosts = TwoHosts::new(MockConfig::default(), 8);
    let (reader, reader_peer) = hosts.pair().unwrap();
    let (resetee, _) = hosts.pair().unwrap();
    let (sleeper, _) = hosts.pair().unwrap();
    let (closed, _) = hosts.pair().unwrap();
    let mut reactor = Reactor::new(8, 16).unwrap();
    reactor
        .park(&[(reader, Interest::Read)], None, "reader")
        .unwrap();
    reactor
        .park(&[(resetee, Interest::Read)], None, "resetee")
        .unwrap();
    reactor
        .park(&[(sleeper, Interest::Read)], Some(1_000), "sleeper")
        .unwrap();
    reactor
        .park(&[(closed, Interest::Read)], None, "closed")
        .unwrap();
    assert_eq!(reactor.parked(), 4);
    assert_eq!(reactor.next_deadline(), Some(1_000));

    assert_eq!(
        pass(&mut reactor, &mut hosts, 0),
        vec![],
        "nothing happened yet"
    );

    hosts.server.send(reader_peer, b"data").unwrap();
    hosts.net.inject(Fault::Reset { conn: 1 });
    let mut woken = pass(&mut reactor, &mut hosts, 999);
    woken.sort_by_key(|(name, _)| *name);
    assert_eq!(
        woken,
        vec![("reader", Wakeup::Ready), ("resetee", Wakeup::Ready)]
    );
    assert!(
        hosts.net.stats().quirk_errors > 0,
        "the reset went through the quirk"
    );

    assert_eq!(
        pass(&mut reactor, &mut hosts, 1_000),
        vec![("sleeper", Wakeup::TimedOut)]
    );

    let mut closed_now = Vec::new();
    reactor.take_fd(closed, &mut closed_now);
    assert_eq!(closed_now, vec![("closed", Wakeup::Closed)]);
    assert_eq!(reactor.parked(), 0);
    assert_eq!(Wakeup::Closed.into_result(), Err(NetError::BadDescriptor));
    assert_eq!(Wakeup::TimedOut.into_result(), Err(NetError::TimedOut));
}

#[test]
fn a_select_waiter_is_woken_once_for_many_ready_descriptors() {
    let mut hosts = TwoHosts::new(MockConfig::default(), 8);
    let pairs: Vec<_> = (0..4).map(|_| hosts.pair().unwrap()).collect();
    let interests: Vec<_> = pairs
        .iter()
        .map(|&(client, _)| (client, Interest::Read))
        .collect();
    let mut reactor = Reactor::new(2, 8).unwrap();
    reactor.park(&interests, None, "select").unwrap();
    for &(_, server) in &pairs {
        hosts.server.send(server, b"x").unwrap();
    }
    assert_eq!(
        pass(&mut reactor, &mut hosts, 0),
        vec![("select", Wakeup::Ready)]
    );
    assert_eq!(reactor.parked(), 0);
    // All four waits went with it: a new waiter can use every slot.
    reactor.park(&interests[..4], None, "again").unwrap();
    assert_eq!(reactor.parked(), 1);
}

#[test]
fn a_descriptor_closed_under_a_waiter_wakes_it_closed() {
    let mut hosts = TwoHosts::new(MockConfig::default(), 8);
    let (client, _) = hosts.pair().unwrap();
    let mut reactor = Reactor::new(2, 2).unwrap();
    reactor
        .park(&[(client, Interest::Write)], None, "writer")
        .unwrap();
    // Closed through the table without telling the reactor: the poll marks it NVAL.
    hosts.client.close(client).unwrap();
    assert_eq!(
        pass(&mut reactor, &mut hosts, 0),
        vec![("writer", Wakeup::Closed)]
    );
}

#[test]
fn a_full_table_refuses_and_cancel_frees() {
    let mut hosts = TwoHosts::new(MockConfig::default(), 8);
    let (a, _) = hosts.pair().unwrap();
    let (b, _) = hosts.pair().unwrap();
    let mut reactor = Reactor::new(2, 3).unwrap();
    let first = reactor
        .park(&[(a, Interest::Read), (b, Interest::Read)], None, "first")
        .unwrap();
    assert_eq!(
        reactor.park(
            &[(a, Interest::Write), (b, Interest::Write)],
            None,
            "second"
        ),
        Err((NetError::NoBuffers, "second")),
        "only one wait slot is left"
    );
    assert_eq!(
        reactor.park(&[], None, "empty"),
        Err((NetError::InvalidInput, "empty"))
    );
    assert_eq!(reactor.parked(), 1, "a refused park registers nothing");
    assert_eq!(reactor.cancel(first), Some("first"));
    assert_eq!(reactor.cancel(first), None, "a wait id is used once");
    reactor
        .park(
            &[(a, Interest::Write), (b, Interest::Write)],
            None,
            "second",
        )
        .unwrap();
    let mut all = Vec::new();
    reactor.take_all(&mut all);
    assert_eq!(all, vec![("second", Wakeup::Closed)]);
    assert_eq!(
        Reactor::<()>::new(0, 1).map(|_| ()),
        Err(NetError::InvalidInput)
    );
}
