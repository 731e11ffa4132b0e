//! Sliced tasklets on one CPU, run by the host suite (`kernel/tests/slicing.rs`) and the on-target suite (`tests/src/slicing.rs`).
//!
//! Every scenario mixes sliced tasklets with each other (so their slices are saved and restored
//! at every switch between them) and checks what crossed the switches exactly: values handed
//! over while the receiver was saved out of the area, stack locals that other frames point to,
//! spilled recursion, kills and throws into saved tasklets, overflow of the area, and running
//! out of budget while saving a slice (an error for whoever switched, nothing lost).

use super::seed::{deep, receive_deep, triangle};
use super::tasklets::overflow;
use crate::channel::{Channel, Preference, SendError};
use crate::tasklet::{self, Builder, JoinHandle, Tasklet, TaskletError, Thrown};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// A sliced spawn builder.
#[inline]
fn sliced(name: &'static str) -> Builder {
    Builder::new().name(name).sliced()
}

/// Adds `depth` frames, each holding a buffer the frames below point into, then receives; the
/// sum checks every frame's buffer after the switches (a slice restored to other addresses, or
/// clobbered, breaks it).
#[inline(never)]
fn receive_through_frames(channel: &Channel<u64>, depth: u32, above: &[u64; 8]) -> u64 {
    let mine = core::hint::black_box([u64::from(depth) * 3 + 1; 8]);
    let below = if depth == 0 {
        receive_here(channel)
    } else {
        receive_through_frames(channel, depth - 1, &mine)
    };
    below + above[depth as usize % 8] + mine[7]
}

/// The receive, in a frame of its own: the frames above stay ordinary ones (the function that
/// holds a switch saves every callee-saved register in its frame, as any caller of a switch must).
#[inline(never)]
fn receive_here(channel: &Channel<u64>) -> u64 {
    channel.receive().expect("receive in a sliced tasklet")
}

/// What [`receive_through_frames`] returns for `value` received under `depth` frames whose
/// outermost caller passed `outer`.
const fn frames_sum(value: u64, depth: u32, outer: u64) -> u64 {
    let mut sum = value;
    let mut level = 0;
    // Frame `level` adds its own buffer's word and its caller's (the frame above, or `outer`).
    while level <= depth {
        let own = level as u64 * 3 + 1;
        let caller = if level == depth {
            outer
        } else {
            (level as u64 + 1) * 3 + 1
        };
        sum += own + caller;
        level += 1;
    }
    sum
}

/// `count` sliced tasklets block in a receive under `depth` frames each; every one is saved out
/// of the area while the next runs. Values sent afterwards arrive exactly, the frames' buffers
/// survive, and `report` gets the bytes of saved slices while all of them wait.
#[inline]
pub fn sliced_tasklets_wait_in_saved_slices(count: usize, depth: u32, report: impl FnOnce(usize)) {
    let channel = Arc::new(Channel::<u64>::new());
    let handles: Vec<JoinHandle<u64>> = (0..count)
        .map(|index| {
            let channel = channel.clone();
            sliced("waiter")
                .spawn(move || {
                    let outer = [index as u64; 8];
                    receive_through_frames(&channel, depth, &outer)
                })
                .expect("spawn a sliced tasklet")
        })
        .collect();
    tasklet::schedule().expect("let them block");
    assert!(
        handles.iter().all(|handle| handle.is_blocked()),
        "all blocked"
    );
    let saved: usize = handles
        .iter()
        .map(|handle| handle.saved_slice_bytes())
        .sum();
    let saved_count = handles
        .iter()
        .filter(|handle| handle.saved_slice_bytes() != 0)
        .count();
    assert!(
        saved_count + 1 >= count,
        "all but the area's occupant are saved out ({saved_count} of {count})"
    );
    report(saved);
    for index in 0..count {
        channel.send(1000 + index as u64).expect("send");
    }
    tasklet::run().expect("run the waiters");
    for (index, handle) in handles.iter().enumerate() {
        let outer = index as u64;
        assert_eq!(
            handle.result(),
            Some(Ok(frames_sum(1000 + index as u64, depth, outer))),
            "waiter {index}"
        );
    }
}

/// Two sliced tasklets ping-pong `rounds` values through two channels: every hand-off switches
/// between them, so each switch saves one slice and restores the other. Both check their own
/// frames' buffers every round.
#[inline]
pub fn sliced_ping_pong(rounds: u64) {
    let ping = Arc::new(Channel::<u64>::new());
    let pong = Arc::new(Channel::<u64>::new());
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        sliced("echo")
            .spawn(move || {
                let mine = core::hint::black_box([7u64; 16]);
                for _ in 0..rounds {
                    let value = ping.receive().expect("ping");
                    pong.send(value + mine[3]).expect("pong");
                }
                mine.iter().sum::<u64>()
            })
            .expect("spawn echo")
    };
    let driver = sliced("driver")
        .spawn(move || {
            let mine = core::hint::black_box([5u64; 16]);
            let mut total = 0;
            for round in 0..rounds {
                ping.send(round).expect("send ping");
                total += pong.receive().expect("receive pong") - mine[9];
            }
            total
        })
        .expect("spawn driver");
    let before = tasklet::slice_stats();
    tasklet::run().expect("run the ping-pong");
    let after = tasklet::slice_stats();
    // 7 added, 5 taken per round.
    assert_eq!(
        driver.result(),
        Some(Ok(rounds * (rounds.saturating_sub(1)) / 2 + 2 * rounds))
    );
    assert_eq!(echo.result(), Some(Ok(7 * 16)));
    assert!(
        after.restored - before.restored >= rounds,
        "every round restores a slice ({} restores for {rounds} rounds)",
        after.restored - before.restored
    );
}

/// A post-switch cleanup that spills, sends to a sliced receiver and kills a sliced victim,
/// wherever it runs (the seed's bug class with slicing: "stack slicing itself, when it happened,
/// clobbered the current tasklet's tempval").
pub struct SlicedTrap {
    side: Arc<Channel<u64>>,
    victim: Option<Tasklet>,
    ran: Arc<AtomicUsize>,
    depth: u64,
}

impl SlicedTrap {
    /// A trap that, when dropped, sends `deep(depth)` on `side`, kills `victim` (if any, and
    /// unless the trap runs in it) and counts itself in `ran`.
    #[inline]
    pub fn new(
        side: Arc<Channel<u64>>,
        victim: Option<Tasklet>,
        ran: Arc<AtomicUsize>,
        depth: u64,
    ) -> Self {
        Self {
            side,
            victim,
            ran,
            depth,
        }
    }
}

impl Drop for SlicedTrap {
    #[inline]
    fn drop(&mut self) {
        // Spilled recursion, then a send that switches to a sliced receiver (saving whoever
        // holds the area), then a kill of a saved-out victim, then a yield. The cleanup runs in
        // whichever tasklet resumes, which may itself be another trap's victim: a kill raised
        // into it then ends one of these operations, and is taken here (a destructor cannot
        // unwind). A send that ends so gave its value back and is done again, so nothing the
        // trap owes is lost. A kill that ends so is not: the victim's kill was raised before
        // the switch that took ours, and the victim may be this tasklet (killing the current
        // tasklet returns `Killed` at once) or run a trap that kills this one — retried, either
        // kill would come back forever (see `a_trap_can_run_in_its_own_victim` and
        // `two_traps_can_kill_each_others_tasklets`).
        let mut value = deep(self.depth);
        loop {
            match self.side.send(value) {
                Ok(()) => break,
                Err(SendError {
                    value: back,
                    error: TaskletError::Killed,
                }) => value = back,
                Err(error) => panic!("the trap's side send: {:?}", error.error),
            }
        }
        if let Some(victim) = self.victim.take() {
            match victim.kill() {
                Ok(()) | Err(TaskletError::Killed) => {}
                Err(error) => panic!("kill the sliced victim: {error:?}"),
            }
        }
        match tasklet::schedule() {
            Ok(()) | Err(TaskletError::Killed) => {}
            Err(error) => panic!("schedule in the trap's drop: {error:?}"),
        }
        self.ran.fetch_add(1, AcqRel);
    }
}

/// What the traps of one scenario share: the side channel their drops send to, the channel
/// their victims wait on, and the count of drops that ran.
struct TrapChannels {
    side: Arc<Channel<u64>>,
    idle: Arc<Channel<u64>>,
    ran: Arc<AtomicUsize>,
}

impl TrapChannels {
    fn new() -> Self {
        Self {
            side: Arc::new(Channel::new()),
            idle: Arc::new(Channel::new()),
            ran: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A sliced tasklet that takes `count` side values and returns their sum.
    fn side_receiver(&self, count: usize) -> JoinHandle<Result<u64, TaskletError>> {
        let side = self.side.clone();
        sliced("side")
            .spawn(move || (0..count).map(|_| side.receive()).sum())
            .expect("spawn side")
    }

    /// A sliced tasklet that waits on the idle channel (running `first` before).
    fn waiter(
        &self,
        name: &'static str,
        first: impl FnOnce() -> Result<(), TaskletError> + Send + 'static,
    ) -> JoinHandle<Result<u64, TaskletError>> {
        let idle = self.idle.clone();
        sliced(name)
            .spawn(move || {
                first()?;
                idle.receive()
            })
            .expect("spawn a waiter")
    }

    /// A trap that kills `victim` (see [`SlicedTrap::new`]).
    fn trap(&self, victim: &Tasklet, depth: u64) -> SlicedTrap {
        SlicedTrap::new(
            self.side.clone(),
            Some(victim.clone()),
            self.ran.clone(),
            depth,
        )
    }

    fn ran(&self) -> usize {
        self.ran.load(Acquire)
    }
}

/// [`sliced_seed_round`] under each preference, receiving at once and from spilled frames; the
/// received payloads are checked exactly.
#[inline]
pub fn sliced_seed_rounds(receive_depth: u32, drop_depth: u64) {
    for (index, preference) in [
        Preference::Receiver,
        Preference::Neither,
        Preference::Sender,
    ]
    .into_iter()
    .enumerate()
    {
        for depth in [0, receive_depth] {
            let payload = format!("payload {index} at depth {depth}: {}", "x".repeat(40));
            let data_check = payload.clone();
            let got = sliced_seed_round(preference, payload, depth, drop_depth);
            assert_eq!(
                got, data_check,
                "{preference:?} depth {depth}: value lost or clobbered"
            );
        }
    }
}

/// One round of the seed scenario with slicing, under `preference`: a sliced receiver waits
/// (from inside `receive_depth` spilled frames) and is saved out of the area by the tasklets that
/// run after it; a sliced sender hands it `payload` and finishes, and its result's drop — a
/// [`SlicedTrap`] — runs after the switch away from the dead sender, in whichever tasklet resumes:
/// it spills `drop_depth` frames, sends to a sliced side receiver and kills a sliced victim.
/// Checks the victim ended `Killed` and the side value arrived; returns what the receiver got.
#[inline]
pub fn sliced_seed_round(
    preference: Preference,
    payload: String,
    receive_depth: u32,
    drop_depth: u64,
) -> String {
    let got = Arc::new(spin::Mutex::new(String::new()));
    let data = Arc::new(Channel::<String>::new());
    data.set_preference(preference);
    let traps = TrapChannels::new();
    let side_receiver = traps.side_receiver(1);
    let victim = traps.waiter("victim", || Ok(()));
    let receiver = {
        let (data, got) = (data.clone(), got.clone());
        sliced("receiver")
            .spawn(move || {
                let value = receive_deep(&data, receive_depth)?;
                *got.lock() = value;
                Ok::<(), TaskletError>(())
            })
            .expect("spawn the receiver")
    };
    let bystander = traps.waiter("bystander", || Ok(()));
    tasklet::schedule().expect("let the receivers wait");
    assert!(receiver.is_blocked() && victim.is_blocked() && bystander.is_blocked());
    assert!(
        receiver.saved_slice_bytes() > 0,
        "the receiver waits saved out of the area"
    );
    let trap = traps.trap(&victim, drop_depth);
    drop(
        sliced("sender")
            .spawn(move || {
                data.send(payload).expect("send to the saved receiver");
                trap
            })
            .expect("spawn the sender"),
    );
    tasklet::run().expect("run the round");
    assert_eq!(traps.ran(), 1, "{preference:?}: the trap's drop ran once");
    assert_eq!(receiver.result(), Some(Ok(Ok(()))));
    assert_eq!(side_receiver.result(), Some(Ok(Ok(triangle(drop_depth)))));
    assert_eq!(victim.result(), Some(Ok(Err(TaskletError::Killed))));
    traps.idle.send(9).expect("release the bystander");
    tasklet::run().expect("finish the bystander");
    assert_eq!(bystander.result(), Some(Ok(Ok(9))));
    let got = got.lock().clone();
    got
}

/// A [`SlicedTrap`] can run in its own victim: the cleanup after the sender's death runs in
/// whichever tasklet resumes, and here that is the victim, suspended in a yield it made to the
/// sender. Killing the current tasklet switches nowhere (it returns `Killed` at once, for the
/// tasklet to unwind) and a destructor cannot unwind, so the trap takes that kill itself and
/// returns; the victim goes on to wait, alive, and is killed afterwards. Checks the trap ran
/// once, its side value arrived, and the victim took no kill until the one sent after.
#[inline]
pub fn a_trap_can_run_in_its_own_victim(drop_depth: u64) {
    let traps = TrapChannels::new();
    let side_receiver = traps.side_receiver(1);
    // Yields to the sender; resumes right after it died, the only one left to run (the main
    // tasklet waits in the join below), so the sender's trap runs in it.
    let victim = traps.waiter("victim", tasklet::schedule);
    let trap = traps.trap(&victim, drop_depth);
    drop(
        sliced("sender")
            .spawn(move || trap)
            .expect("spawn the sender"),
    );
    assert_eq!(
        side_receiver.join(),
        Ok(Ok(triangle(drop_depth))),
        "the trap's side value arrived"
    );
    tasklet::run().expect("let the trap and its victim finish");
    assert_eq!(traps.ran(), 1, "the trap's drop ran once");
    kill_again_after_its_trap(&victim);
}

/// Checks that `trapped`, which took a kill inside a trap (a destructor cannot unwind), waits
/// on alive, and that a kill sent now ends it `Killed`.
fn kill_again_after_its_trap(trapped: &JoinHandle<Result<u64, TaskletError>>) {
    assert!(trapped.is_blocked(), "took its kill in a trap and waits on");
    trapped.kill().expect("kill it again");
    assert_eq!(trapped.result(), Some(Ok(Err(TaskletError::Killed))));
}

/// Two [`SlicedTrap`]s, each dropped in the tasklet the other kills: both wait in their side
/// sends until a receiver takes both values, then each kills the other's tasklet, whose trap
/// takes that kill (a destructor cannot unwind). Checks both traps end, both side values
/// arrive, and both tasklets go on to wait, alive, until killed afterwards.
#[inline]
pub fn two_traps_can_kill_each_others_tasklets(drop_depth: u64) {
    let traps = TrapChannels::new();
    let slots: [Arc<spin::Mutex<Option<SlicedTrap>>>; 2] = Default::default();
    let trapped: Vec<_> = slots
        .iter()
        .map(|slot| {
            let slot = slot.clone();
            traps.waiter("trapped", move || {
                drop(slot.lock().take());
                Ok(())
            })
        })
        .collect();
    for (slot, victim) in slots.iter().zip(trapped.iter().rev()) {
        *slot.lock() = Some(traps.trap(victim, drop_depth));
    }
    tasklet::run().expect("both traps wait in their side sends");
    assert!(
        trapped.iter().all(|tasklet| tasklet.is_blocked()),
        "both wait to send"
    );
    let side_receiver = traps.side_receiver(2);
    tasklet::run().expect("the traps kill each other's tasklets");
    assert_eq!(
        side_receiver.result(),
        Some(Ok(Ok(2 * triangle(drop_depth))))
    );
    assert_eq!(traps.ran(), 2, "both traps' drops ran once");
    trapped.iter().for_each(kill_again_after_its_trap);
}

/// Kill and throw reach sliced tasklets whose slices are saved, and a never-run sliced tasklet
/// can be killed before it ever has a slice; the rest of the ring is untouched.
#[inline]
pub fn kill_and_throw_reach_saved_tasklets() {
    let channel = Arc::new(Channel::<u64>::new());
    let spawn_waiter = |name| {
        let channel = channel.clone();
        sliced(name)
            .spawn(move || {
                let mine = core::hint::black_box([3u64; 8]);
                channel.receive().map(|value| value + mine[2])
            })
            .expect("spawn")
    };
    let killed = spawn_waiter("killed");
    let thrown = spawn_waiter("thrown");
    let survivor = spawn_waiter("survivor");
    let never_run = sliced("never run").spawn(|| 1u64).expect("spawn");
    never_run.kill_forced().expect("kill before it runs");
    tasklet::schedule().expect("let them block");
    assert!(killed.saved_slice_bytes() > 0 && thrown.saved_slice_bytes() > 0);
    killed.kill().expect("kill a saved tasklet");
    thrown
        .throw(Thrown::new(42, "thrown into a saved slice"), false)
        .expect("throw");
    channel.send(10).expect("send to the survivor");
    tasklet::run().expect("run");
    assert_eq!(killed.result(), Some(Ok(Err(TaskletError::Killed))));
    assert!(matches!(
        thrown.result(),
        Some(Ok(Err(TaskletError::Thrown(thrown)))) if thrown.code == 42
    ));
    assert_eq!(survivor.result(), Some(Ok(Ok(13))));
    assert_eq!(never_run.result(), Some(Err(TaskletError::Killed)));
}

/// A sliced tasklet spills onto segments and blocks inside them while others take the area: its
/// area part (above the spill) and its segments both survive, `depth` levels deep.
#[inline]
pub fn sliced_tasklets_spill_and_block_on_segments(depth: u32) {
    let data = Arc::new(Channel::<String>::new());
    let deep_receiver = {
        let data = data.clone();
        sliced("deep")
            .spawn(move || receive_deep(&data, depth))
            .expect("spawn")
    };
    let shallow = {
        let data = data.clone();
        sliced("shallow")
            .spawn(move || data.receive())
            .expect("spawn")
    };
    tasklet::schedule().expect("let both block");
    assert!(
        deep_receiver.saved_slice_bytes() > 0,
        "saved while on its segments"
    );
    data.send(String::from("to the deep one")).expect("send");
    data.send(String::from("to the shallow one")).expect("send");
    tasklet::run().expect("run");
    assert_eq!(
        deep_receiver.result(),
        Some(Ok(Ok(String::from("to the deep one"))))
    );
    assert_eq!(
        shallow.result(),
        Some(Ok(Ok(String::from("to the shallow one"))))
    );
    let summed = sliced("sum")
        .spawn(move || deep(u64::from(depth)))
        .expect("spawn");
    let other = sliced("other")
        .spawn(|| tasklet::schedule().map(|()| 5))
        .expect("spawn");
    tasklet::run().expect("run");
    assert_eq!(summed.result(), Some(Ok(triangle(u64::from(depth)))));
    assert_eq!(other.result(), Some(Ok(Ok(5))));
}

/// A sliced tasklet that overruns the slice area is abandoned with `StackOverflow`; saved
/// tasklets waiting meanwhile and later sliced spawns run on.
#[inline]
pub fn overflowing_the_area_is_reported_and_others_run_on() {
    let channel = Arc::new(Channel::<u64>::new());
    let waiter = {
        let channel = channel.clone();
        sliced("waiter")
            .spawn(move || channel.receive())
            .expect("spawn")
    };
    tasklet::schedule().expect("let the waiter block");
    let victim = sliced("deep").spawn(|| overflow(0)).expect("spawn");
    tasklet::run().expect("run the victim");
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    channel.send(77).expect("send to the saved waiter");
    tasklet::run().expect("run the waiter");
    assert_eq!(waiter.result(), Some(Ok(Ok(77))));
    let after = sliced("after")
        .spawn(|| "still running")
        .expect("spawn after");
    tasklet::run().expect("run after the overflow");
    assert_eq!(after.result(), Some(Ok("still running")));
}

/// With no budget left to save the area's occupant, a switch into another sliced tasklet fails
/// for the switching caller — a yield returns the error, a blocking send returns its value with
/// it — and once the budget allows, everything runs and every value arrives.
#[inline]
pub fn running_out_of_budget_while_slicing_is_an_error_for_the_switcher() {
    let channel = Arc::new(Channel::<u64>::new());
    let holder = {
        let channel = channel.clone();
        sliced("holder")
            .spawn(move || channel.receive())
            .expect("spawn")
    };
    tasklet::schedule().expect("the holder blocks in the area");
    assert_eq!(
        holder.saved_slice_bytes(),
        0,
        "the holder occupies the area"
    );
    let started = Arc::new(AtomicUsize::new(0));
    let fresh = {
        let started = started.clone();
        sliced("fresh")
            .spawn(move || {
                started.fetch_add(1, SeqCst);
                5u64
            })
            .expect("spawn")
    };
    let (limit, in_use) = tasklet::stack_budget();
    tasklet::set_stack_budget(in_use);
    // The yield to `fresh` needs the holder's slice saved: no budget.
    assert_eq!(tasklet::schedule(), Err(TaskletError::StackBudgetExhausted));
    assert_eq!(started.load(SeqCst), 0, "the fresh tasklet did not run");
    // A blocking send (nobody receives on this channel) that would switch to `fresh` fails
    // too, and gives its value back.
    let lonely = Channel::<u64>::new();
    let failed = lonely.send(99).expect_err("the send cannot block");
    assert_eq!(failed.error, TaskletError::StackBudgetExhausted);
    assert_eq!(failed.value, 99, "the value comes back");
    assert_eq!(lonely.balance(), 0, "the failed sender left the queue");
    tasklet::set_stack_budget(limit);
    channel.send(3).expect("send to the holder");
    tasklet::run().expect("run everything");
    assert_eq!(holder.result(), Some(Ok(Ok(3))));
    assert_eq!(fresh.result(), Some(Ok(5)));
    assert_eq!(started.load(SeqCst), 1);
}

/// Bytes a saved slice of a tasklet doing no floating-point or vector work leaves out at
/// least on PowerPC64: the save slots of f14-f31 and v20-v31 in the frame holding the switch
/// (336 bytes; whole 4-word blocks of them, at least 288), which start cleared and stay zero.
/// (x86_64 has no callee-saved registers of those classes.)
#[cfg(target_arch = "powerpc64")]
pub const LEFT_OUT_OF_AN_INTEGER_SLICE: usize = 288;

/// Zero runs are left out of saved slices and come back as zeros: a sliced tasklet doing only
/// integer work, saved while it waits under frames, leaves the save slots of unused register
/// classes out (on PowerPC64 at least `LEFT_OUT_OF_AN_INTEGER_SLICE` bytes); one that keeps
/// floating-point values (one of them zero) across its receive, saved the same way, gets every
/// value back.
#[inline]
pub fn zero_runs_are_left_out_of_saved_slices() {
    let channel = Arc::new(Channel::<u64>::new());
    let integers = {
        let channel = channel.clone();
        sliced("integers")
            .spawn(move || receive_through_frames(&channel, 2, &[5; 8]))
            .expect("spawn")
    };
    tasklet::schedule().expect("the integer tasklet blocks in the area");
    let before = tasklet::slice_stats();
    let floats = {
        let channel = channel.clone();
        sliced("floats")
            .spawn(move || {
                let (half, zero, third) = core::hint::black_box((0.5f64, 0.0f64, 1.0f64 / 3.0));
                let got = channel.receive().expect("receive") as f64;
                (got * half + zero, third * 3.0, zero.to_bits())
            })
            .expect("spawn")
    };
    tasklet::schedule().expect("the float tasklet saves the integer one and blocks");
    let after = tasklet::slice_stats();
    assert_eq!(
        after.saved,
        before.saved + 1,
        "the integer tasklet was saved"
    );
    let left_out = (after.bytes_left_out - before.bytes_left_out) as usize;
    #[cfg(target_arch = "powerpc64")]
    assert!(
        left_out >= LEFT_OUT_OF_AN_INTEGER_SLICE,
        "{left_out} bytes left out of the integer tasklet's slice, not {LEFT_OUT_OF_AN_INTEGER_SLICE}"
    );
    // What is kept, with a header of a few words, and what is left out make up the slice.
    let slice = (after.bytes_copied - before.bytes_copied) as usize;
    let header = integers.saved_slice_bytes() + left_out - slice;
    assert!(
        (8..=16 * 8).contains(&header),
        "a {slice}-byte slice kept in {} bytes with {left_out} left out",
        integers.saved_slice_bytes()
    );
    // The integer tasklet comes back first: the float one is saved.
    channel.send(8).expect("send to the integer tasklet");
    channel.send(6).expect("send to the float tasklet");
    tasklet::run().expect("run both");
    assert_eq!(
        integers.result(),
        Some(Ok(frames_sum(8, 2, 5))),
        "every frame came back"
    );
    assert_eq!(
        floats.result(),
        Some(Ok((3.0, 1.0, 0))),
        "every float came back"
    );
}

/// A runnable sliced tasklet (it yielded) is saved whole even with compaction on: it comes
/// back within a turn of the ring. (On PowerPC64 its innermost frame holds the zero save slots
/// [`zero_runs_are_left_out_of_saved_slices`] shows left out of a waiting tasklet's slice.)
#[inline]
pub fn a_runnable_tasklets_slice_is_saved_whole() {
    let yielder = sliced("yielder")
        .spawn(|| {
            let mine = core::hint::black_box([9u64; 8]);
            tasklet::schedule().expect("yield");
            mine.iter().sum::<u64>()
        })
        .expect("spawn");
    let other = sliced("other").spawn(|| 1u64).expect("spawn");
    let before = tasklet::slice_stats();
    // The yielder runs first and yields; `other` then needs the area and saves it, runnable.
    tasklet::run().expect("run both");
    let after = tasklet::slice_stats();
    assert_eq!(after.saved, before.saved + 1, "the yielder was saved once");
    assert_eq!(
        after.bytes_left_out, before.bytes_left_out,
        "a runnable tasklet's slice is saved whole"
    );
    assert_eq!(yielder.result(), Some(Ok(72)));
    assert_eq!(other.result(), Some(Ok(1)));
}

/// With compaction turned off ([`tasklet::set_slice_compaction`]) a saved slice is kept whole,
/// one header word beside it; a slice saved compacted before still comes back, and so does one
/// saved whole after compaction is turned on again.
#[inline]
pub fn slices_are_saved_whole_with_compaction_off() {
    let channel = Arc::new(Channel::<u64>::new());
    let spawn_receiver = |name| {
        let channel = channel.clone();
        sliced(name)
            .spawn(move || receive_through_frames(&channel, 2, &[3; 8]))
            .expect("spawn")
    };
    let compacted = spawn_receiver("compacted");
    tasklet::schedule().expect("it blocks in the area");
    let whole = spawn_receiver("whole");
    // Saving `compacted` (compaction on) to make room for `whole`.
    tasklet::schedule().expect("the second one saves the first and blocks");
    tasklet::set_slice_compaction(false);
    let before = tasklet::slice_stats();
    let third = spawn_receiver("third");
    tasklet::schedule().expect("the third saves the second, whole, and blocks");
    tasklet::set_slice_compaction(true);
    let after = tasklet::slice_stats();
    assert_eq!(after.saved, before.saved + 1);
    assert_eq!(
        after.bytes_left_out, before.bytes_left_out,
        "nothing left out"
    );
    let slice = (after.bytes_copied - before.bytes_copied) as usize;
    assert_eq!(
        whole.saved_slice_bytes(),
        slice + 8,
        "the slice and its header word"
    );
    for value in [10, 20, 30] {
        channel.send(value).expect("send");
    }
    tasklet::run().expect("run them");
    assert_eq!(compacted.result(), Some(Ok(frames_sum(10, 2, 3))));
    assert_eq!(whole.result(), Some(Ok(frames_sum(20, 2, 3))));
    assert_eq!(third.result(), Some(Ok(frames_sum(30, 2, 3))));
}

/// What [`blocked_sliced_tasklets_cost`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedCost {
    /// Heap bytes per blocked tasklet (control block, body, saved slice, allocator overhead).
    pub heap_per_tasklet: usize,
    /// Of those, bytes of saved slice (the stack budget's part).
    pub slice_per_tasklet: usize,
}

/// `count` sliced tasklets, each blocked in a channel receive under `depth` frames, with no
/// handle kept: returns the heap they cost (from `heap_in_use`, the allocator's bytes in use)
/// per tasklet; then releases them all and checks every one received its own value.
#[inline]
pub fn blocked_sliced_tasklets_cost(
    count: usize,
    depth: u32,
    heap_in_use: impl Fn() -> usize,
) -> BlockedCost {
    let channel = Arc::new(Channel::<u64>::new());
    let correct = Arc::new(AtomicUsize::new(0));
    // The area exists before measuring: one per CPU, not per tasklet.
    sliced("warm-up").spawn(|| ()).expect("spawn");
    tasklet::run().expect("run");
    let heap_before = heap_in_use();
    let (_, budget_before) = tasklet::stack_budget();
    for index in 0..count {
        let (channel, correct) = (channel.clone(), correct.clone());
        drop(
            sliced("blocked")
                .spawn(move || {
                    let outer = [index as u64; 8];
                    let got = receive_through_frames(&channel, depth, &outer);
                    if got == frames_sum(index as u64, depth, index as u64) {
                        correct.fetch_add(1, SeqCst);
                    }
                })
                .expect("spawn a sliced tasklet"),
        );
    }
    tasklet::schedule().expect("let them block");
    assert_eq!(
        channel.balance(),
        -(count as isize),
        "all blocked receiving"
    );
    let heap_during = heap_in_use();
    let (_, budget_during) = tasklet::stack_budget();
    for index in 0..count {
        channel.send(index as u64).expect("release");
    }
    tasklet::run().expect("run them to the end");
    assert_eq!(
        correct.load(SeqCst),
        count,
        "every tasklet got its own value"
    );
    assert_eq!(tasklet::live_count(), 1);
    BlockedCost {
        heap_per_tasklet: (heap_during - heap_before) / count,
        slice_per_tasklet: (budget_during - budget_before) / count,
    }
}

/// A tasklet finishing on a stack of its own cannot take an error: when the switch from it into
/// a sliced tasklet needs a slice saved and the budget is short even after the dead tasklets'
/// stacks are released, the sliced tasklet that cannot be brought in is abandoned with the
/// error (its joiners see it) and the rest runs on; with the budget back, the saved holder gets
/// its value.
#[inline]
pub fn a_sliced_tasklet_that_cannot_be_restored_after_a_finish_is_abandoned() {
    let channel = Arc::new(Channel::<u64>::new());
    let holder = {
        let channel = channel.clone();
        sliced("holder")
            .spawn(move || channel.receive())
            .expect("spawn")
    };
    tasklet::schedule().expect("the holder blocks in the area");
    let stack = tasklet::MIN_STACK_BYTES.max(16 * 1024);
    let finisher = Builder::new()
        .name("finisher")
        .stack_size(stack)
        .spawn(|| 1u64)
        .expect("spawn");
    let fresh = sliced("fresh").spawn(|| 5u64).expect("spawn");
    let (limit, in_use) = tasklet::stack_budget();
    // Even with the finisher's stack released there is no room for the holder's slice.
    tasklet::set_stack_budget(in_use - stack);
    tasklet::run().expect("run");
    tasklet::set_stack_budget(limit);
    assert_eq!(finisher.result(), Some(Ok(1)));
    assert_eq!(
        fresh.result(),
        Some(Err(TaskletError::StackBudgetExhausted)),
        "the tasklet that could not be restored was abandoned with the error"
    );
    assert!(holder.is_blocked(), "the holder still waits");
    channel.send(8).expect("send to the holder");
    tasklet::run().expect("run the holder");
    assert_eq!(holder.result(), Some(Ok(Ok(8))));
}
