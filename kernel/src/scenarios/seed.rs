//! The seed's bug class (the seed: the Stackless-on-PS3 document Spindle was made from, whose
//! Stackless lost a channel value to cleanup run after a switch): a value in flight must survive
//! whatever post-switch cleanup runs. One round spawns a receiver (optionally receiving from deep
//! inside spilled recursion on a small stack) and a sender that finishes right after its send; the
//! sender's result is a [`Trap`] whose drop runs after the switch away from the dead sender, in
//! whichever tasklet resumes, and there sends on another channel, schedules and runs a spilled
//! recursion. The round checks the received value exactly.

use crate::channel::{Channel, Preference};
use crate::tasklet::{self, Builder, TaskletError};
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

/// How deep a [`SeedRound`] recurses, and on what stacks.
#[derive(Debug, Clone, Copy)]
pub struct SeedDepths {
    /// Stack of the receiving tasklet.
    pub receiver_stack: usize,
    /// Spilled frames the receiver is inside when it receives (0: receives at once).
    pub receive_depth: u32,
    /// Spilled recursion computing what the trap sends on the side channel.
    pub side_depth: u64,
    /// Spilled recursion the trap runs after scheduling.
    pub drop_depth: u64,
}

/// One round of the scenario: the data channel's preference, the value sent, and the depths.
#[derive(Debug, Clone)]
pub struct SeedRound {
    /// Preference of the data channel (every value must arrive under each).
    pub preference: Preference,
    /// What the dying sender sends.
    pub payload: String,
    /// Recursion depths and stack sizes.
    pub depths: SeedDepths,
}

/// Returned by a finishing sender: its drop sends, schedules and spills wherever it runs.
pub struct Trap {
    side: Arc<Channel<u64>>,
    ran: Arc<AtomicBool>,
    depths: SeedDepths,
}

impl Trap {
    /// A trap that sends `deep(side_depth)` on `side` and sets `ran` when dropped.
    #[inline]
    pub fn new(side: Arc<Channel<u64>>, ran: Arc<AtomicBool>, depths: SeedDepths) -> Self {
        Self { side, ran, depths }
    }
}

impl Drop for Trap {
    #[inline]
    fn drop(&mut self) {
        self.side
            .send(deep(self.depths.side_depth))
            .expect("the trap's side send");
        tasklet::schedule().expect("schedule in the trap's drop");
        assert_eq!(
            deep(self.depths.drop_depth),
            triangle(self.depths.drop_depth)
        );
        self.ran.store(true, Ordering::Release);
    }
}

/// 1 + 2 + ... + `depth`, one spilled frame per term.
#[inline]
pub fn deep(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let pad = core::hint::black_box([depth; 8]);
    pad[1] + tasklet::spill(|| deep(depth - 1)).expect("spill")
}

/// What [`deep`] returns for `depth`.
pub const fn triangle(depth: u64) -> u64 {
    depth * (depth + 1) / 2
}

/// Receives on `data` from inside `depth` spilled frames.
#[inline]
pub fn receive_deep(data: &Channel<String>, depth: u32) -> Result<String, TaskletError> {
    if depth == 0 {
        return data.receive();
    }
    let pad = core::hint::black_box([depth; 16]);
    let got = tasklet::spill(|| receive_deep(data, depth - 1)).expect("spill");
    core::hint::black_box(pad);
    got
}

/// Runs one round on the calling CPU and checks that the payload arrived exactly, that the trap
/// ran, and that the side channel delivered its value. Panics (naming the round) otherwise.
#[inline]
pub fn seed_round(round: &SeedRound) {
    let depths = round.depths;
    let data = Arc::new(Channel::<String>::new());
    data.set_preference(round.preference);
    let side = Arc::new(Channel::<u64>::new());
    let ran = Arc::new(AtomicBool::new(false));
    let side_receiver = {
        let side = side.clone();
        tasklet::spawn(move || side.receive()).expect("spawn the side receiver")
    };
    let receiver = {
        let data = data.clone();
        Builder::new()
            .name("receiver")
            .stack_size(depths.receiver_stack)
            .spawn(move || receive_deep(&data, depths.receive_depth))
            .expect("spawn the receiver")
    };
    tasklet::schedule().expect("let both receivers wait");
    {
        let (data, side, ran) = (data.clone(), side.clone(), ran.clone());
        let payload = round.payload.clone();
        // Detached: the scheduler holds the last reference, released after the switch away
        // from the dead sender.
        drop(
            Builder::new()
                .name("sender")
                .spawn(move || {
                    data.send(payload).expect("send to the waiting receiver");
                    Trap::new(side, ran, depths)
                })
                .expect("spawn the sender"),
        );
    }
    tasklet::run().expect("run the round");
    assert!(
        ran.load(Ordering::Acquire),
        "{round:?}: the trap's drop ran"
    );
    assert_eq!(
        receiver.result(),
        Some(Ok(Ok(round.payload.clone()))),
        "{round:?}: value lost or clobbered"
    );
    assert_eq!(
        side_receiver.result(),
        Some(Ok(Ok(triangle(depths.side_depth)))),
        "{round:?}: the side value"
    );
}

/// The round under each preference, receiving at once or from deep spilled recursion.
#[inline]
pub fn seed_rounds(payload: impl Fn(usize) -> String, depths: SeedDepths) {
    for (index, preference) in [
        Preference::Receiver,
        Preference::Neither,
        Preference::Sender,
    ]
    .into_iter()
    .enumerate()
    {
        seed_round(&SeedRound {
            preference,
            payload: payload(index),
            depths,
        });
    }
}
