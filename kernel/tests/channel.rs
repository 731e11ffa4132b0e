//! Channel semantics: rendezvous, preference, close, kill, errors, timeouts, and the hand-off
//! that post-switch cleanup must never lose, on one CPU and across CPUs. That last is the seed's
//! bug class: the seed, the Stackless-on-PS3 document Spindle was made from, tells of a value
//! in flight through a channel lost when cleanup run after the switch (releasing a dead
//! tasklet) spilled the stack.

use spindle::channel::{Channel, Preference};
use spindle::scenarios::{self, SeedDepths, Trap};
use spindle::tasklet::{self, Builder, CpuGroup, JoinHandle, TaskletError, Thrown};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Trace = Arc<Mutex<Vec<String>>>;

/// A small stack, so that receiving inside deep recursion spills (never below the minimum,
/// which unoptimised builds raise).
const SMALL_STACK: usize = if tasklet::MIN_STACK_BYTES > 8 * 1024 {
    tasklet::MIN_STACK_BYTES
} else {
    8 * 1024
};

fn trace() -> Trace {
    Arc::new(Mutex::new(Vec::new()))
}

fn note(trace: &Trace, entry: impl Into<String>) {
    trace.lock().unwrap().push(entry.into());
}

fn entries(trace: &Trace) -> Vec<String> {
    trace.lock().unwrap().clone()
}

/// A tasklet that receives once on `channel`.
fn spawn_receiver<T: Send + 'static>(
    channel: &Arc<Channel<T>>,
) -> JoinHandle<Result<T, TaskletError>> {
    let channel = channel.clone();
    tasklet::spawn(move || channel.receive()).unwrap()
}

/// `count` tasklets, spawned in order, each sending its number (0, 1, ...) on `channel`.
fn spawn_senders(
    channel: &Arc<Channel<u32>>,
    count: u32,
) -> Vec<JoinHandle<Result<(), TaskletError>>> {
    (0..count)
        .map(|value| {
            let channel = channel.clone();
            tasklet::spawn(move || channel.send(value).map_err(|failure| failure.error)).unwrap()
        })
        .collect()
}

#[test]
fn send_and_receive_meet_and_balance_counts_waiters() {
    let channel = Arc::new(Channel::<u32>::new());
    let receiver = spawn_receiver(&channel);
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), -1);
    assert_eq!(receiver.blocked(), tasklet::Blocked::Receiving);
    assert_eq!(channel.queue_front().as_ref(), Some(&*receiver));
    channel.send(7).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok(7))));
    assert_eq!(channel.balance(), 0);

    let senders = spawn_senders(&channel, 3);
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), 3);
    assert_eq!(channel.waiting().len(), 3);
    let received: Vec<u32> = (0..3).map(|_| channel.receive().unwrap()).collect();
    assert_eq!(
        received,
        [0, 1, 2],
        "waiters are served first in, first out"
    );
    tasklet::run().unwrap();
    assert!(senders
        .iter()
        .all(|sender| sender.result() == Some(Ok(Ok(())))));
}

/// Runs one rendezvous case and returns the order of events. A partner tasklet waits first; a
/// bystander tasklet is runnable; main then performs the other half of the rendezvous.
fn rendezvous_order(main_sends: bool, preference: Preference, schedule_all: bool) -> Vec<String> {
    let channel = Arc::new(Channel::<u32>::new());
    channel.set_preference(preference);
    channel.set_schedule_all(schedule_all);
    let events = trace();
    {
        let (channel, events) = (channel.clone(), events.clone());
        tasklet::spawn(move || {
            if main_sends {
                let value = channel.receive().unwrap();
                note(&events, format!("partner received {value}"));
            } else {
                channel.send(5).unwrap();
                note(&events, "partner sent");
            }
        })
        .unwrap();
    }
    tasklet::schedule().unwrap(); // the partner blocks
    {
        let events = events.clone();
        tasklet::spawn(move || note(&events, "bystander")).unwrap();
    }
    if main_sends {
        channel.send(5).unwrap();
        note(&events, "main sent");
    } else {
        let value = channel.receive().unwrap();
        note(&events, format!("main received {value}"));
    }
    tasklet::run().unwrap();
    entries(&events)
}

#[test]
fn every_preference_and_direction_decides_who_runs_next() {
    use Preference::*;
    // Columns: whether main sends, the preference, the order of events.
    #[rustfmt::skip]
    let cases = [
        // main sends (dir +1) to a waiting receiver. When the partner's side is preferred it runs
        // at once and the caller ends up last in the queue, behind the bystander.
        (true,  Receiver, ["partner received 5", "bystander", "main sent"]),
        (true,  Neither,  ["main sent", "bystander", "partner received 5"]),
        (true,  Sender,   ["main sent", "bystander", "partner received 5"]),
        // main receives (dir -1) from a waiting sender.
        (false, Receiver, ["main received 5", "bystander", "partner sent"]),
        (false, Neither,  ["main received 5", "bystander", "partner sent"]),
        (false, Sender,   ["partner sent", "bystander", "main received 5"]),
    ];
    for (main_sends, preference, order) in cases {
        assert_eq!(
            rendezvous_order(main_sends, preference, false),
            order,
            "main sends: {main_sends}, {preference:?}"
        );
    }
    // schedule_all: the partner queues last and the caller yields to the run queue.
    for preference in [Receiver, Neither, Sender] {
        assert_eq!(
            rendezvous_order(true, preference, true),
            ["bystander", "partner received 5", "main sent"]
        );
        assert_eq!(
            rendezvous_order(false, preference, true),
            ["bystander", "partner sent", "main received 5"]
        );
    }
}

#[test]
fn preference_is_clamped_to_its_sign() {
    assert_eq!(Preference::from_int(-7), Preference::Receiver);
    assert_eq!(Preference::from_int(0), Preference::Neither);
    assert_eq!(Preference::from_int(42), Preference::Sender);
    assert_eq!(Preference::Sender.as_int(), 1);
}

#[test]
fn close_refuses_new_waits_but_lets_waiting_partners_meet() {
    let channel = Arc::new(Channel::<u32>::new());
    let senders = spawn_senders(&channel, 2);
    tasklet::schedule().unwrap();
    channel.close();
    assert!(channel.is_closing() && !channel.is_closed());
    assert_eq!(channel.receive(), Ok(0));
    assert_eq!(channel.receive(), Ok(1));
    assert!(channel.is_closed());
    assert_eq!(channel.receive(), Err(TaskletError::Closed));
    let failure = channel.send(9).unwrap_err();
    assert_eq!((failure.value, failure.error), (9, TaskletError::Closed));
    tasklet::run().unwrap();
    assert!(senders
        .iter()
        .all(|sender| sender.result() == Some(Ok(Ok(())))));
    channel.open();
    assert!(!channel.is_closing());

    // Receivers waiting when the channel closes can still be met by senders.
    let receiver = spawn_receiver(&channel);
    tasklet::schedule().unwrap();
    channel.close();
    channel.send(3).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok(3))));
    assert!(channel.is_closed());
}

#[test]
fn killing_a_blocked_sender_returns_its_value_and_fixes_the_balance() {
    let channel = Arc::new(Channel::<String>::new());
    let sender = {
        let channel = channel.clone();
        tasklet::spawn(move || {
            channel
                .send("precious".to_string())
                .map_err(|failure| (failure.value, failure.error))
        })
        .unwrap()
    };
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), 1);
    sender.kill().unwrap();
    assert_eq!(channel.balance(), 0);
    assert_eq!(
        sender.result(),
        Some(Ok(Err(("precious".to_string(), TaskletError::Killed))))
    );
    assert_eq!(
        channel.receive_timeout(Duration::from_millis(1)),
        Err(TaskletError::TimedOut)
    );
}

#[test]
fn killing_a_blocked_receiver_fixes_the_balance() {
    let channel = Arc::new(Channel::<u8>::new());
    let receivers: Vec<_> = (0..3).map(|_| spawn_receiver(&channel)).collect();
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), -3);
    receivers[1].kill().unwrap();
    assert_eq!(channel.balance(), -2);
    channel.send(1).unwrap();
    channel.send(2).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receivers[0].result(), Some(Ok(Ok(1))));
    assert_eq!(receivers[1].result(), Some(Ok(Err(TaskletError::Killed))));
    assert_eq!(receivers[2].result(), Some(Ok(Ok(2))));
}

/// A value that counts its drops; `PAD` words make it inline (0) or out of line (8: 64 bytes).
#[derive(Debug)]
struct Counted<const PAD: usize> {
    drops: Arc<AtomicUsize>,
    _pad: [u64; PAD],
}

impl<const PAD: usize> Counted<PAD> {
    fn new(drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            drops: drops.clone(),
            _pad: [0; PAD],
        }
    }
}

impl<const PAD: usize> Drop for Counted<PAD> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A tasklet blocked sending a fresh `Counted` on `channel` (it has run up to the block).
fn blocked_counted_sender<const PAD: usize>(
    channel: &Arc<Channel<Counted<PAD>>>,
    drops: &Arc<AtomicUsize>,
) -> JoinHandle<Result<(), TaskletError>> {
    let sender = {
        let channel = channel.clone();
        let value = Counted::<PAD>::new(drops);
        tasklet::spawn(move || channel.send(value).map_err(|failure| failure.error)).unwrap()
    };
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), 1);
    sender
}

/// `kill_forced` of a blocked sender drops the value parked in its control block at once
/// (it cannot go back to a dead sender), exactly once, although a handle keeps the block alive.
fn kill_forced_drops_a_blocked_senders_value<const PAD: usize>() {
    let drops = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Channel::<Counted<PAD>>::new());
    let sender = blocked_counted_sender(&channel, &drops);
    sender.kill_forced().unwrap();
    assert_eq!(channel.balance(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped by the kill");
    tasklet::run().unwrap();
    assert_eq!(sender.result(), Some(Err(TaskletError::Killed)));
    drop(sender);
    tasklet::schedule().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once only");
}

/// A receiver that took a waiting sender's value and switched away before its `receive`
/// returned (the sender preferred, or `schedule_all`) is abandoned with `kill_forced`: the value
/// waited in the receiver's control block, not on its abandoned stack, and is dropped once.
#[test]
fn kill_forced_of_a_receiver_switched_away_with_its_value_drops_it_once() {
    for (preference, schedule_all) in [
        (Preference::Sender, false),
        (Preference::Receiver, true),
        (Preference::Neither, true),
    ] {
        let drops = Arc::new(AtomicUsize::new(0));
        let channel = Arc::new(Channel::<Counted<0>>::new());
        channel.set_preference(preference);
        channel.set_schedule_all(schedule_all);
        let sender = blocked_counted_sender(&channel, &drops);
        let receiver = {
            let channel = channel.clone();
            tasklet::spawn(move || channel.receive().map(drop)).unwrap()
        };
        // The receiver runs, takes the value and switches away before returning.
        tasklet::schedule().unwrap();
        assert_eq!(
            channel.balance(),
            0,
            "{preference:?} {schedule_all}: matched"
        );
        assert!(
            receiver.is_alive(),
            "{preference:?} {schedule_all}: not back yet"
        );
        receiver.kill_forced().unwrap();
        tasklet::run().unwrap();
        assert_eq!(sender.result(), Some(Ok(Ok(()))));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "{preference:?} {schedule_all}: the abandoned receiver's value"
        );
        drop(receiver);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once only");
    }
}

/// Uses the stack down to `margin` bytes above its usable end, then sends there, so that the
/// send itself runs past the end, into the guard zone, where the switch finds it.
fn send_near_the_end(
    channel: &Channel<Counted<0>>,
    value: Counted<0>,
    margin: usize,
) -> Result<(), TaskletError> {
    if tasklet::stack_remaining() > margin {
        let pad = std::hint::black_box([0u32; 16]);
        return send_near_the_end(channel, value, margin).map(|()| assert_eq!(pad[3], 0));
    }
    send_in_a_frame_of_its_own(channel, value)
}

/// The send, in a frame below its caller's (inlined, it could run in the caller's frame, at the
/// very end of the stack but not past it).
#[inline(never)]
fn send_in_a_frame_of_its_own(
    channel: &Channel<Counted<0>>,
    value: Counted<0>,
) -> Result<(), TaskletError> {
    channel.send(value).map_err(|failure| failure.error)
}

/// A sender found overflowed as it blocks is abandoned: its value, parked in its control
/// block, is dropped when it is reaped, although its handle keeps the block alive.
#[test]
fn an_abandoned_senders_value_is_dropped_when_it_is_reaped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let channel: &'static Channel<Counted<0>> = Box::leak(Box::new(Channel::new()));
    let value = Counted::<0>::new(&drops);
    let victim = Builder::new()
        .name("deep sender")
        .stack_size(16 * 1024)
        .spawn(move || send_near_the_end(channel, value, 0))
        .unwrap();
    tasklet::run().unwrap();
    assert_eq!(victim.result(), Some(Err(TaskletError::StackOverflow)));
    assert_eq!(channel.balance(), 0, "the abandoned sender no longer waits");
    tasklet::schedule().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped when reaped");
    drop(victim);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once only");
}

#[test]
fn kill_forced_of_a_blocked_sender_drops_its_value_once() {
    kill_forced_drops_a_blocked_senders_value::<0>();
    kill_forced_drops_a_blocked_senders_value::<8>();
}

#[test]
fn kill_forced_of_a_woken_sender_drops_its_unclaimed_value_once() {
    // A kill made it runnable with its value still parked; it is abandoned before it runs.
    let drops = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Channel::<Counted<0>>::new());
    let sender = blocked_counted_sender(&channel, &drops);
    sender.kill_pending().unwrap();
    assert!(sender.is_scheduled());
    sender.kill_forced().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(sender);
    tasklet::run().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn kill_forced_after_a_receiver_took_the_value_does_not_drop_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Channel::<Counted<0>>::new());
    channel.set_preference(Preference::Neither);
    let sender = blocked_counted_sender(&channel, &drops);
    let received = channel.receive().unwrap();
    // The sender is woken (runnable, not yet run): its value is the receiver's now.
    assert!(sender.is_scheduled());
    sender.kill_forced().unwrap();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the receiver's value survives"
    );
    drop(sender);
    tasklet::run().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(received);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn kill_forced_of_a_receiver_handed_a_value_drops_it_once() {
    // The value was delivered into the receiver's block; it dies before claiming it.
    let drops = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Channel::<Counted<8>>::new());
    channel.set_preference(Preference::Neither);
    let receiver = spawn_receiver(&channel);
    tasklet::schedule().unwrap();
    channel.send(Counted::new(&drops)).unwrap();
    assert!(receiver.is_scheduled());
    receiver.kill_forced().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(receiver);
    tasklet::run().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn send_error_raises_in_the_receiver_and_bombs_wait_like_values() {
    let channel = Arc::new(Channel::<u32>::new());
    let failure = Thrown::new(104, "connection reset");
    let receiver = spawn_receiver(&channel);
    tasklet::schedule().unwrap();
    channel.send_error(failure).unwrap();
    tasklet::run().unwrap();
    assert_eq!(
        receiver.result(),
        Some(Ok(Err(TaskletError::Thrown(failure))))
    );
    // A bomb sent with nobody waiting blocks its sender until a receiver takes it.
    let bomber = {
        let channel = channel.clone();
        tasklet::spawn(move || channel.send_bomb(TaskletError::Killed)).unwrap()
    };
    tasklet::schedule().unwrap();
    assert_eq!(channel.receive(), Err(TaskletError::Killed));
    tasklet::run().unwrap();
    assert_eq!(bomber.result(), Some(Ok(Ok(()))));
}

#[test]
fn send_sequence_and_iteration_carry_every_item_until_close() {
    let channel = Arc::new(Channel::<u32>::new());
    let producer = {
        let channel = channel.clone();
        tasklet::spawn(move || {
            let sent = channel
                .send_sequence(0..5)
                .map_err(|(count, failure)| (count, failure.error));
            channel.close();
            sent
        })
        .unwrap()
    };
    let received: Vec<u32> = channel.iter().map(|item| item.unwrap()).collect();
    assert_eq!(received, [0, 1, 2, 3, 4]);
    tasklet::run().unwrap();
    assert_eq!(producer.result(), Some(Ok(Ok(5))));
}

#[test]
fn receiving_with_nobody_to_send_is_a_deadlock_not_a_hang() {
    let channel = Channel::<u32>::new();
    assert_eq!(channel.receive(), Err(TaskletError::Deadlock));
    let failure = channel.send(4).unwrap_err();
    assert_eq!((failure.value, failure.error), (4, TaskletError::Deadlock));
    assert_eq!(channel.balance(), 0);
}

#[test]
fn timeouts_end_waits_and_block_trap_refuses_them() {
    let channel = Channel::<u32>::new();
    let started = std::time::Instant::now();
    assert_eq!(
        channel.receive_timeout(Duration::from_millis(20)),
        Err(TaskletError::TimedOut)
    );
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        channel
            .send_timeout(1, Duration::from_millis(1))
            .unwrap_err()
            .error,
        TaskletError::TimedOut
    );
    assert_eq!(channel.balance(), 0);
    tasklet::current().set_block_trap(true);
    assert_eq!(channel.receive(), Err(TaskletError::BlockTrap));
    tasklet::current().set_block_trap(false);
}

#[test]
fn large_values_travel_out_of_line() {
    let channel = Arc::new(Channel::<[u64; 64]>::new());
    let receiver = {
        let channel = channel.clone();
        tasklet::spawn(move || channel.receive().map(|block| block.iter().sum::<u64>())).unwrap()
    };
    tasklet::schedule().unwrap();
    let block: [u64; 64] = core::array::from_fn(|index| index as u64);
    channel.send(block).unwrap();
    tasklet::run().unwrap();
    assert_eq!(receiver.result(), Some(Ok(Ok((0..64).sum()))));
}

// ---- the seed's bug class: post-switch cleanup must never lose a value in flight -------------

fn payload(round: usize) -> String {
    format!("chunk #{round} of a long download")
}

/// What a trap's drop does on the host: sends the sum of a 400-frame spilled recursion, then
/// runs a 600-frame one.
const TRAP_DEPTHS: SeedDepths = SeedDepths {
    receiver_stack: 64 * 1024,
    receive_depth: 0,
    side_depth: 400,
    drop_depth: 600,
};

#[test]
fn seed_bug_dying_sender_whose_drop_sends_schedules_and_spills_loses_nothing() {
    scenarios::seed_rounds(payload, TRAP_DEPTHS);
}

#[test]
fn seed_bug_receiver_spilling_while_receiving_loses_nothing() {
    scenarios::seed_rounds(
        payload,
        SeedDepths {
            receiver_stack: SMALL_STACK,
            receive_depth: 400,
            ..TRAP_DEPTHS
        },
    );
}

#[test]
fn seed_bug_across_cpus_loses_nothing() {
    static GROUP: CpuGroup = CpuGroup::new();
    let data = Arc::new(Channel::<String>::new());
    let side = Arc::new(Channel::<u64>::new());
    const ROUNDS: usize = 40;
    tasklet::join_group(&GROUP);
    let receiver_thread = {
        let (data, side) = (data.clone(), side.clone());
        tasklet::spawn_cpu_thread(&GROUP, move || {
            let side_receiver =
                tasklet::spawn(move || (0..ROUNDS).map(|_| side.receive().unwrap()).sum::<u64>())
                    .unwrap();
            let receiver = Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    (0..ROUNDS)
                        .map(|_| {
                            tasklet::spill_with(usize::MAX, 32 * 1024, || data.receive().unwrap())
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap();
            // run() stops when only main is runnable; these wait on the other CPU, so join.
            (receiver.join(), side_receiver.join())
        })
    };
    let sender_thread = {
        let (data, side) = (data.clone(), side.clone());
        tasklet::spawn_cpu_thread(&GROUP, move || {
            let ran = Arc::new(AtomicBool::new(false));
            for round in 0..ROUNDS {
                let (data, side, ran) = (data.clone(), side.clone(), ran.clone());
                // Detached, so each trap drops in post-switch cleanup on this CPU.
                // Roomy stacks: formatting in unoptimised builds is stack-hungry.
                drop(
                    Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            data.send(payload(round)).unwrap();
                            Trap::new(side, ran, TRAP_DEPTHS)
                        })
                        .unwrap(),
                );
            }
            while tasklet::live_count() > 1 {
                tasklet::sleep(Duration::from_millis(1)).unwrap();
            }
            ran.load(Ordering::Acquire)
        })
    };
    // This thread now waits outside the scheduler: leave the group, or a failure on the other
    // threads would leave them waiting on a member that can never run (a hang, not an error).
    tasklet::leave_group();
    assert!(sender_thread.join().unwrap(), "the traps ran");
    let (received, side_total) = receiver_thread.join().unwrap();
    // Each value arrives exactly once and intact. (Order across senders may vary: a sender can
    // be delayed before its own send by the cleanup of a dead one, which blocks in its drop.)
    let mut received = received.expect("receiver finished");
    received.sort();
    let mut expected: Vec<String> = (0..ROUNDS).map(payload).collect();
    expected.sort();
    assert_eq!(received, expected);
    assert_eq!(
        side_total,
        Ok(ROUNDS as u64 * scenarios::triangle(TRAP_DEPTHS.side_depth))
    );
}

#[test]
fn threads_rendezvous_and_an_idle_cpu_waits_instead_of_deadlocking() {
    static GROUP: CpuGroup = CpuGroup::new();
    let ping = Arc::new(Channel::<u32>::new());
    let pong = Arc::new(Channel::<u32>::new());
    // Join before the other thread can wait on us, or it would rightly see itself alone.
    tasklet::join_group(&GROUP);
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        tasklet::spawn_cpu_thread(&GROUP, move || {
            // Nothing else is runnable here: this thread idles until the other sends.
            for _ in 0..200 {
                let value = ping.receive().unwrap();
                pong.send(value + 1).unwrap();
            }
        })
    };
    for value in 0..200 {
        ping.send(value).unwrap();
        assert_eq!(pong.receive().unwrap(), value + 1);
    }
    tasklet::leave_group();
    echo.join().unwrap();
}

#[test]
fn a_group_whose_cpus_all_wait_detects_the_deadlock() {
    static GROUP: CpuGroup = CpuGroup::new();
    let never = Arc::new(Channel::<u32>::new());
    tasklet::join_group(&GROUP);
    let other = {
        let never = never.clone();
        tasklet::spawn_cpu_thread(&GROUP, move || never.receive())
    };
    let mine = never.receive();
    // This thread is about to wait outside the scheduler (an OS join): leave the group so the
    // other CPU can tell it is alone.
    tasklet::leave_group();
    let theirs = other.join().unwrap();
    // Both wait on a channel nobody sends to: one is told it deadlocked, then the other once
    // it is alone in the group.
    assert_eq!(mine, Err(TaskletError::Deadlock));
    assert_eq!(theirs, Err(TaskletError::Deadlock));
}

#[test]
fn a_closed_bomb_ends_a_receivers_iteration_and_send_errors_convert_with_question_mark() {
    let channel = Arc::new(Channel::new());
    let sender = channel.clone();
    let producer = tasklet::spawn(move || -> Result<(), TaskletError> {
        sender.send(1)?;
        sender.send(2)?;
        // Stackless's send_exception(StopIteration): the receiver's loop ends.
        sender.send_bomb(TaskletError::Closed)?;
        // Nobody receives any more: the send fails, and `?` turned it into a TaskletError.
        sender.close();
        sender.send(3)?;
        Ok(())
    })
    .unwrap();
    let received: Vec<u32> = channel.iter().map(Result::unwrap).collect();
    assert_eq!(received, [1, 2]);
    tasklet::run().unwrap();
    assert_eq!(producer.outcome(), Some(Err(TaskletError::Closed)));
}
