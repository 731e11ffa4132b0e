//! Property: whatever bytes reach the NIC's receive ring — random frames, real frames mutated or
//! truncated, random queue entries marked new (correlators of the driver's own tag among them) — neither
//! the driver nor the TCP/IP stack above it panics, and afterwards the ring still delivers and
//! the stack still answers a connection.

mod common;

use core::net::{Ipv4Addr, SocketAddrV4};

use common::proptest_cases;

use proptest::prelude::*;
use spindle::net::{NetDriver, NetError, SocketKind};
use spindle_drivers::llan::{Llan, CORRELATOR_TAG, RX_ENTRY_BYTES};
use spindle_drivers::llan_model::{test_stack, LlanModel};
use spindle_drivers::tcpip::TcpIp;

const RX_BUFFERS: usize = 16;
const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

type Stack = TcpIp<Llan<LlanModel>>;

fn stack(last: u8, address: Ipv4Addr) -> (Stack, LlanModel) {
    test_stack(last, address, 4, RX_BUFFERS)
}

/// Frames a real peer sends while connecting to the guest's port 7: ARP request, then SYN.
fn real_frames() -> Vec<Vec<u8>> {
    let (mut guest, guest_model) = stack(0x56, GUEST);
    let (mut peer, peer_model) = stack(0x57, PEER);
    let listener = guest.socket(SocketKind::Stream).unwrap();
    guest.bind(listener, SocketAddrV4::new(GUEST, 7)).unwrap();
    guest.listen(listener, 2).unwrap();
    let client = peer.socket(SocketKind::Stream).unwrap();
    assert_eq!(
        peer.connect(client, SocketAddrV4::new(GUEST, 7)),
        Err(NetError::InProgress)
    );
    let mut frames = Vec::new();
    for _ in 0..4 {
        for frame in peer_model.take_sent() {
            guest_model.deliver(&frame);
            frames.push(frame);
        }
        guest.poll_link();
        for frame in guest_model.take_sent() {
            peer_model.deliver(&frame);
        }
        peer.poll_link();
    }
    assert!(frames.len() >= 2, "an ARP request and a SYN at least");
    frames
}

#[derive(Clone, Debug)]
enum Op {
    /// A frame of random bytes.
    Random(Vec<u8>),
    /// A real frame with bytes changed and maybe cut short.
    Mutated {
        frame: usize,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
    },
    /// A raw queue entry marked new (the adapter writes entries in order, so one it never marked
    /// would stall the ring, as on hardware), its correlator maybe one of the driver's.
    Entry {
        bytes: [u8; RX_ENTRY_BYTES],
        ours: Option<u16>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1600).prop_map(Op::Random),
        (
            0usize..8,
            prop::collection::vec((0usize..1600, any::<u8>()), 0..6),
            prop::option::of(0usize..1600)
        )
            .prop_map(|(frame, flips, cut)| Op::Mutated { frame, flips, cut }),
        (any::<[u8; RX_ENTRY_BYTES]>(), prop::option::of(0u16..40))
            .prop_map(|(bytes, ours)| Op::Entry { bytes, ours }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(64)))]
    #[test]
    fn the_receive_ring_survives_any_bytes(ops in prop::collection::vec(op(), 1..60)) {
        let real = real_frames();
        let (mut guest, model) = stack(0x56, GUEST);
        let listener = guest.socket(SocketKind::Stream).unwrap();
        guest.bind(listener, SocketAddrV4::new(GUEST, 7)).unwrap();
        guest.listen(listener, 2).unwrap();
        for op in ops {
            match op {
                Op::Random(bytes) => {
                    model.deliver(&bytes);
                }
                Op::Mutated { frame, flips, cut } => {
                    let mut bytes = real[frame % real.len()].clone();
                    for (at, value) in flips {
                        if let Some(byte) = bytes.get_mut(at) {
                            *byte = value;
                        }
                    }
                    if let Some(cut) = cut {
                        bytes.truncate(cut);
                    }
                    model.deliver(&bytes);
                }
                Op::Entry { mut bytes, ours } => {
                    if let Some(index) = ours {
                        bytes[8..].copy_from_slice(&(CORRELATOR_TAG | u64::from(index)).to_be_bytes());
                    }
                    model.inject_entry(bytes, true);
                }
            }
            guest.poll_link();
            let _ = model.take_sent();
        }
        // The ring still delivers, and the stack still answers a real peer's connect.
        for frame in &real {
            prop_assert!(model.deliver(frame), "the ring has no buffer left");
            guest.poll_link();
        }
        let answers = model.take_sent();
        prop_assert!(!answers.is_empty(), "no ARP reply or SYN-ACK after the storm");
        let stats = guest.device().stats();
        prop_assert!(stats.rx_frames > 0);
    }
}
