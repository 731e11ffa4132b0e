//! The random programs: a round's operations, and the generator that draws them from the seed.

use super::{NetFault, CHANNELS, MAX_OPS, MAX_TASKLETS};
use crate::channel::Preference;
use alloc::vec::Vec;

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Send {
        ch: usize,
        timeout: Option<u8>,
        spill: u8,
    },
    Receive {
        ch: usize,
        timeout: Option<u8>,
        spill: u8,
    },
    Close(usize),
    Open(usize),
    QueueSend(Option<u8>),
    QueueReceive(Option<u8>),
    QueueClose,
    QueueOpen,
    Lock(u8),
    Semaphore(u8),
    EventWait(u8),
    EventSet,
    EventClear,
    Schedule,
    Sleep(u8),
    Kill(usize),
    Courier {
        ch: usize,
        send: bool,
        yields: u8,
    },
    Echo(u16),
    Fault(NetFault),
}

/// One round's program.
pub(super) struct Program {
    pub(super) round: u32,
    pub(super) preferences: [(Preference, bool); CHANNELS],
    pub(super) net: bool,
    /// Per CPU, per tasklet, its script.
    pub(super) cpus: Vec<Vec<Vec<Op>>>,
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    #[inline]
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    #[inline]
    /// A timeout in quarters of a millisecond (0.25 to 2 ms), half the time.
    fn timeout(&mut self) -> Option<u8> {
        self.chance(50).then(|| 1 + self.below(8) as u8)
    }

    #[inline]
    fn spill(&mut self) -> u8 {
        if self.chance(20) {
            1 + self.below(2) as u8
        } else {
            0
        }
    }
}

impl Program {
    #[inline]
    pub(super) fn draw(seed: u64, round: u32, cpus: usize, network: bool) -> Self {
        let mut rng = Rng(seed ^ u64::from(round).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let preferences = core::array::from_fn(|_| {
            let preference = [
                Preference::Receiver,
                Preference::Neither,
                Preference::Sender,
            ][rng.below(3)];
            (preference, rng.chance(20))
        });
        let net = network && rng.chance(40);
        let cpus = (0..cpus)
            .map(|_| {
                (0..1 + rng.below(MAX_TASKLETS))
                    .map(|_| {
                        (0..1 + rng.below(MAX_OPS))
                            .map(|_| Self::op(&mut rng, net))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            round,
            preferences,
            net,
            cpus,
        }
    }

    #[inline]
    fn op(rng: &mut Rng, net: bool) -> Op {
        let ch = rng.below(CHANNELS);
        loop {
            let op = match rng.below(100) {
                0..=19 => Op::Send {
                    ch,
                    timeout: rng.timeout(),
                    spill: rng.spill(),
                },
                20..=39 => Op::Receive {
                    ch,
                    timeout: rng.timeout(),
                    spill: rng.spill(),
                },
                40..=41 => Op::Close(ch),
                42..=44 => Op::Open(ch),
                45..=49 => Op::QueueSend(rng.timeout()),
                50..=54 => Op::QueueReceive(rng.timeout()),
                55 => Op::QueueClose,
                56 => Op::QueueOpen,
                57..=60 => Op::Lock(rng.below(3) as u8),
                61..=63 => Op::Semaphore(rng.below(3) as u8),
                64..=65 => Op::EventWait(1 + rng.below(4) as u8),
                66..=67 => Op::EventSet,
                68 => Op::EventClear,
                69..=75 => Op::Schedule,
                76..=78 => Op::Sleep(rng.below(100) as u8),
                79..=82 => Op::Kill(rng.below(MAX_TASKLETS)),
                83..=87 => Op::Courier {
                    ch,
                    send: rng.chance(50),
                    yields: rng.below(4) as u8,
                },
                88..=96 if net => Op::Echo(1 + rng.below(600) as u16),
                97..=99 if net => Op::Fault(match rng.below(6) {
                    0 => NetFault::ResetAll,
                    1 => NetFault::PartialWrites(Some(1 + rng.below(16))),
                    2 => NetFault::PartialWrites(None),
                    3 => NetFault::RefuseConnect,
                    _ => NetFault::ResetLatest,
                }),
                _ => continue,
            };
            return op;
        }
    }
}
