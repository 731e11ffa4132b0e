//! Channel tests on the target: Stackless semantics, the post-switch hand-off, and two CPUs.

use crate::{Suite, TargetTest};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use core::time::Duration;
use spindle::channel::{Channel, Preference};
use spindle::platform::platform;
use spindle::scenarios::{self, SeedDepths};
use spindle::tasklet::{self, Builder, TaskletError};
use spindle_arch::powerpc64::irq;

/// The channel suite.
pub const SUITE: Suite = Suite::new(
    "channels",
    &[
        TargetTest::new(
            "preference_decides_who_runs_next",
            preference_decides_who_runs_next,
        ),
        TargetTest::new("close_with_waiters", close_with_waiters),
        TargetTest::new(
            "killed_sender_gets_its_value_back",
            killed_sender_gets_its_value_back,
        ),
        TargetTest::new(
            "kill_forced_drops_a_blocked_senders_value_once",
            kill_forced_drops_a_blocked_senders_value_once,
        ),
        TargetTest::new("seed_bug_dying_sender", seed_bug_dying_sender),
        TargetTest::new("seed_bug_spilling_receiver", seed_bug_spilling_receiver),
        TargetTest::new(
            "receive_timeout_on_the_decrementer",
            receive_timeout_on_the_decrementer,
        ),
        TargetTest::new("cross_cpu_ping_pong", cross_cpu_ping_pong).cpus(2),
        TargetTest::new(
            "idle_cpu_waits_instead_of_deadlock",
            idle_cpu_waits_instead_of_deadlock,
        )
        .cpus(2),
        TargetTest::new("seed_bug_across_cpus", seed_bug_across_cpus).cpus(2),
    ],
);

fn order_after_rendezvous(main_sends: bool, preference: Preference) -> Vec<&'static str> {
    let channel = Arc::new(Channel::<u32>::new());
    channel.set_preference(preference);
    let events = Arc::new(spin::Mutex::new(Vec::new()));
    {
        let (channel, events) = (channel.clone(), events.clone());
        tasklet::spawn(move || {
            if main_sends {
                channel.receive().unwrap();
            } else {
                channel.send(1).unwrap();
            }
            events.lock().push("partner");
        })
        .unwrap();
    }
    tasklet::schedule().unwrap();
    {
        let events = events.clone();
        tasklet::spawn(move || events.lock().push("bystander")).unwrap();
    }
    if main_sends {
        channel.send(1).unwrap();
    } else {
        channel.receive().unwrap();
    }
    events.lock().push("main");
    tasklet::run().unwrap();
    let order = events.lock().clone();
    order
}

fn preference_decides_who_runs_next() {
    assert_eq!(
        order_after_rendezvous(true, Preference::Receiver),
        ["partner", "bystander", "main"]
    );
    assert_eq!(
        order_after_rendezvous(true, Preference::Sender),
        ["main", "bystander", "partner"]
    );
    assert_eq!(
        order_after_rendezvous(false, Preference::Sender),
        ["partner", "bystander", "main"]
    );
    assert_eq!(
        order_after_rendezvous(false, Preference::Receiver),
        ["main", "bystander", "partner"]
    );
}

fn close_with_waiters() {
    let channel = Arc::new(Channel::<u32>::new());
    for value in 0..2 {
        let channel = channel.clone();
        tasklet::spawn(move || channel.send(value).unwrap()).unwrap();
    }
    tasklet::schedule().unwrap();
    channel.close();
    assert!(channel.is_closing() && !channel.is_closed());
    assert_eq!((channel.receive(), channel.receive()), (Ok(0), Ok(1)));
    assert!(channel.is_closed());
    assert_eq!(channel.receive(), Err(TaskletError::Closed));
    tasklet::run().unwrap();
}

fn killed_sender_gets_its_value_back() {
    let channel = Arc::new(Channel::<String>::new());
    let sender = {
        let channel = channel.clone();
        tasklet::spawn(move || {
            channel
                .send(String::from("kept"))
                .map_err(|failure| failure.value)
        })
        .unwrap()
    };
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), 1);
    sender.kill().unwrap();
    assert_eq!(channel.balance(), 0);
    assert_eq!(sender.result(), Some(Ok(Err(String::from("kept")))));
}

/// A value that counts its drops; `PAD` words make it inline (0) or out of line (8: 64 bytes).
struct Counted<const PAD: usize> {
    drops: Arc<AtomicUsize>,
    _pad: [u64; PAD],
}

impl<const PAD: usize> Drop for Counted<PAD> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// Blocks a sender of a `Counted<PAD>`, then abandons it with `kill_forced` (the same code as
/// on the host: the value sits in the control block, not on the abandoned stack). With
/// `taken`, a receiver takes the value first (the sender is woken, not yet run): then the kill
/// must not drop it. Returns the drops counted right after the kill and at the end.
fn kill_forced_sender<const PAD: usize>(taken: bool) -> (usize, usize) {
    let drops = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Channel::<Counted<PAD>>::new());
    channel.set_preference(Preference::Neither);
    let sender = {
        let channel = channel.clone();
        let value = Counted::<PAD> {
            drops: drops.clone(),
            _pad: [0; PAD],
        };
        tasklet::spawn(move || channel.send(value).map_err(|failure| failure.error)).unwrap()
    };
    tasklet::schedule().unwrap();
    assert_eq!(channel.balance(), 1);
    let received = taken.then(|| channel.receive().ok().unwrap());
    sender.kill_forced().unwrap();
    assert_eq!(channel.balance(), 0);
    let after_kill = drops.load(SeqCst);
    tasklet::run().unwrap();
    assert_eq!(sender.result(), Some(Err(TaskletError::Killed)));
    drop(sender);
    tasklet::schedule().unwrap();
    drop(received);
    (after_kill, drops.load(SeqCst))
}

fn kill_forced_drops_a_blocked_senders_value_once() {
    assert_eq!(kill_forced_sender::<0>(false), (1, 1), "inline value");
    assert_eq!(kill_forced_sender::<8>(false), (1, 1), "boxed value");
    assert_eq!(
        kill_forced_sender::<0>(true),
        (0, 1),
        "value the receiver took"
    );
}

/// The trap's drop on target: sends the sum of a 300-frame spilled recursion, then runs a
/// 500-frame one.
const TRAP_DEPTHS: SeedDepths = SeedDepths {
    receiver_stack: 8 * 1024,
    receive_depth: 0,
    side_depth: 300,
    drop_depth: 500,
};

fn payload(round: usize) -> String {
    format!("payload #{round} in flight")
}

/// The seed's bug class (the seed: the Stackless-on-PS3 document Spindle was made from): a
/// value in flight must survive post-switch cleanup, here a dying sender's result whose drop
/// sends, schedules and spills (see `spindle::scenarios`).
fn seed_bug_dying_sender() {
    scenarios::seed_rounds(payload, TRAP_DEPTHS);
}

fn seed_bug_spilling_receiver() {
    scenarios::seed_rounds(
        payload,
        SeedDepths {
            receive_depth: 300,
            ..TRAP_DEPTHS
        },
    );
}

fn receive_timeout_on_the_decrementer() {
    let channel = Channel::<u32>::new();
    let start = platform().now_ns();
    assert_eq!(
        channel.receive_timeout(Duration::from_millis(20)),
        Err(TaskletError::TimedOut)
    );
    let waited = platform().now_ns() - start;
    assert!(waited >= 20_000_000, "timed out after only {waited} ns");
    assert_eq!(channel.balance(), 0);
}

// ---- two CPUs ------------------------------------------------------------------------------

static PING: Channel<u64> = Channel::new();
static PONG: Channel<u64> = Channel::new();
const ROUNDS: u64 = 200;

fn echo_cpu(_cpu: usize) -> ! {
    irq::enable();
    for _ in 0..ROUNDS {
        let value = PING.receive().expect("ping on CPU 1");
        PONG.send(value * 2).expect("pong from CPU 1");
    }
    loop {
        platform().idle(None);
    }
}

fn cross_cpu_ping_pong() {
    tasklet::start_cpu(1, echo_cpu).expect("start CPU 1");
    for value in 0..ROUNDS {
        PING.send(value).unwrap();
        assert_eq!(PONG.receive().unwrap(), value * 2);
    }
}

static LATE: Channel<u64> = Channel::new();
static LATE_RESULT: AtomicU64 = AtomicU64::new(0);

fn late_receiver_cpu(_cpu: usize) -> ! {
    irq::enable();
    // Nothing else runs here: this CPU must idle until CPU 0 sends, not call it a deadlock.
    let value = LATE.receive().unwrap_or(u64::MAX);
    LATE_RESULT.store(value, Release);
    loop {
        platform().idle(None);
    }
}

fn idle_cpu_waits_instead_of_deadlock() {
    tasklet::start_cpu(1, late_receiver_cpu).expect("start CPU 1");
    tasklet::sleep(Duration::from_millis(30)).unwrap();
    LATE.send(42).unwrap();
    let start = platform().now_ns();
    while LATE_RESULT.load(Acquire) == 0 && platform().now_ns() - start < 1_000_000_000 {
        tasklet::sleep(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(LATE_RESULT.load(Acquire), 42);
}

static DATA: Channel<String> = Channel::new();
static SIDE: Channel<u64> = Channel::new();
static TRAPS_RAN: AtomicU64 = AtomicU64::new(0);
const CROSS_ROUNDS: u64 = 20;

struct RemoteTrap;

impl Drop for RemoteTrap {
    fn drop(&mut self) {
        SIDE.send(scenarios::deep(200))
            .expect("side send across CPUs");
        tasklet::schedule().expect("schedule in drop");
        TRAPS_RAN.fetch_add(1, AcqRel);
    }
}

fn sender_cpu(_cpu: usize) -> ! {
    irq::enable();
    for round in 0..CROSS_ROUNDS {
        drop(
            Builder::new()
                .stack_size(16 * 1024)
                .spawn(move || {
                    DATA.send(format!("chunk {round}")).unwrap();
                    RemoteTrap
                })
                .unwrap(),
        );
    }
    while tasklet::live_count() > 1 {
        let _ = tasklet::sleep(Duration::from_millis(1));
    }
    loop {
        platform().idle(None);
    }
}

fn seed_bug_across_cpus() {
    let side = tasklet::spawn(|| {
        (0..CROSS_ROUNDS)
            .map(|_| SIDE.receive().unwrap())
            .sum::<u64>()
    })
    .unwrap();
    let receiver = Builder::new()
        .stack_size(8 * 1024)
        .spawn(|| {
            (0..CROSS_ROUNDS)
                .map(|_| {
                    tasklet::spill_with(usize::MAX, 16 * 1024, || DATA.receive().unwrap()).unwrap()
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    tasklet::start_cpu(1, sender_cpu).expect("start CPU 1");
    let mut received = receiver.join().unwrap();
    assert_eq!(side.join().unwrap(), CROSS_ROUNDS * 200 * 201 / 2);
    received.sort();
    let mut expected: Vec<String> = (0..CROSS_ROUNDS)
        .map(|round| format!("chunk {round}"))
        .collect();
    expected.sort();
    assert_eq!(received, expected);
    let start = platform().now_ns();
    while TRAPS_RAN.load(Acquire) < CROSS_ROUNDS && platform().now_ns() - start < 1_000_000_000 {
        tasklet::sleep(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(TRAPS_RAN.load(Acquire), CROSS_ROUNDS);
}
