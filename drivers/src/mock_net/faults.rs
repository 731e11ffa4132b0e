//! Fault scripts: what goes wrong on the mock network, and when, reproducibly.

use super::alloc::vec::Vec;

use spindle::net::NetError;

/// Connections are numbered in the order they are established, from 0. Numbers are never
/// reused: a network establishes at most `u32::MAX` connections, after which connects fail with
/// [`NetError::NoBuffers`].
pub type ConnId = u32;

/// One end of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The end that called connect.
    Client,
    /// The end that accept returned.
    Server,
}

/// Something that goes wrong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The connection is reset: both ends get a pending ECONNRESET, bytes still in flight are
    /// dropped (their senders learn through the error), bytes already delivered stay readable.
    Reset {
        /// Which connection.
        conn: ConnId,
    },
    /// Every open connection is reset at once (pending errors on many sockets together).
    ResetAll,
    /// One end's application shuts its sending side: the other end reads end of stream after the
    /// delivered bytes, and the closing end's later sends fail with EPIPE.
    HalfClose {
        /// Which connection.
        conn: ConnId,
        /// The end that closes.
        side: Side,
    },
    /// The next `count` connects are refused (ECONNREFUSED), listener or not. Counts injected
    /// before earlier ones are used up add to them, saturating at `u32::MAX` (which refuses
    /// every connect any run can make) instead of overflowing.
    RefuseConnects {
        /// How many.
        count: u32,
    },
    /// Every send accepts at most `limit` bytes (partial writes); `None` lifts the limit.
    PartialWrites {
        /// Largest accepted write, at least 1.
        limit: Option<usize>,
    },
    /// Delivery on the connection stops (`true`) or resumes (`false`), so buffers fill up.
    Stall {
        /// Which connection.
        conn: ConnId,
        /// Stop or resume.
        stalled: bool,
    },
}

impl Fault {
    /// The connection the fault needs, if any: it waits until that connection exists.
    pub fn target(self) -> Option<ConnId> {
        match self {
            Fault::Reset { conn } | Fault::HalfClose { conn, .. } | Fault::Stall { conn, .. } => {
                Some(conn)
            }
            Fault::ResetAll | Fault::RefuseConnects { .. } | Fault::PartialWrites { .. } => None,
        }
    }
}

/// When a scripted fault fires.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trigger {
    /// When the network's operation counter (one per driver call) reaches this value.
    AtOp(u64),
    /// When the connection has delivered at least this many bytes (both directions together).
    AfterBytes {
        /// Which connection.
        conn: ConnId,
        /// Delivered bytes.
        bytes: u64,
    },
    /// When a select or poll with a non-zero timeout finds nothing ready and would wait.
    WhileWaiting,
}

/// A fault and its trigger.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ScheduledFault {
    /// When.
    pub trigger: Trigger,
    /// What.
    pub fault: Fault,
}

/// Most faults one script may hold: scripts live in fixed memory.
pub const MAX_SCRIPTED_FAULTS: usize = 64;

/// An ordered list of scheduled faults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultScript {
    faults: Vec<ScheduledFault>,
}

impl FaultScript {
    /// An empty script.
    pub fn new() -> FaultScript {
        FaultScript::default()
    }

    /// Adds a fault; more than [`MAX_SCRIPTED_FAULTS`], or a zero write limit, is
    /// [`NetError::InvalidInput`].
    pub fn push(&mut self, trigger: Trigger, fault: Fault) -> Result<(), NetError> {
        if self.faults.len() >= MAX_SCRIPTED_FAULTS
            || fault == (Fault::PartialWrites { limit: Some(0) })
        {
            return Err(NetError::InvalidInput);
        }
        self.faults
            .try_reserve(1)
            .map_err(|_| NetError::NoBuffers)?;
        self.faults.push(ScheduledFault { trigger, fault });
        Ok(())
    }

    /// Adds a fault, builder style.
    pub fn with(mut self, trigger: Trigger, fault: Fault) -> Result<FaultScript, NetError> {
        self.push(trigger, fault)?;
        Ok(self)
    }

    /// The scheduled faults, in order.
    pub fn faults(&self) -> &[ScheduledFault] {
        &self.faults
    }

    /// A random script from a seed: `count` faults over the first `horizon_ops` operations and
    /// connections `0..conns`. The same arguments give the same script on every machine.
    pub fn random(seed: u64, count: usize, horizon_ops: u64, conns: u32) -> FaultScript {
        let mut rng = SplitMix64(seed);
        let mut script = FaultScript::new();
        let conns = conns.max(1);
        for _ in 0..count.min(MAX_SCRIPTED_FAULTS) {
            let conn = (rng.next() % u64::from(conns)) as ConnId;
            let trigger = match rng.next() % 4 {
                0 | 1 => Trigger::AtOp(rng.next() % horizon_ops.max(1)),
                2 => Trigger::AfterBytes {
                    conn,
                    bytes: rng.next() % 4096,
                },
                _ => Trigger::WhileWaiting,
            };
            let side = if rng.next().is_multiple_of(2) {
                Side::Client
            } else {
                Side::Server
            };
            let fault = match rng.next() % 8 {
                0 | 1 => Fault::Reset { conn },
                2 => Fault::ResetAll,
                3 => Fault::HalfClose { conn, side },
                4 => Fault::RefuseConnects {
                    count: 1 + (rng.next() % 2) as u32,
                },
                5 => Fault::PartialWrites {
                    limit: (rng.next().is_multiple_of(2)).then(|| 1 + (rng.next() % 64) as usize),
                },
                _ => Fault::Stall {
                    conn,
                    stalled: rng.next().is_multiple_of(2),
                },
            };
            // Within MAX_SCRIPTED_FAULTS and never a zero limit, so push cannot refuse.
            let _ = script.push(trigger, fault);
        }
        script
    }
}

/// SplitMix64: tiny, seedable, and good enough to spread faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
