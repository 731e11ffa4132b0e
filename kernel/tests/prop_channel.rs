//! Property test of channels: random programs over several channels, on one CPU or on two or three
//! threads standing for CPUs, whose tasklets spawn, send, receive (some with timeouts, some from
//! inside spilled stack segments), send errors, kill each other, close and reopen channels, and
//! yield. Each channel gets a random preference and `schedule_all`.
//!
//! Every value sent is a unique id, and so is every error sent with `send_error`. At the end of
//! each case:
//! - every value a tasklet tried to send was either received exactly once, or given back to
//!   that sender in a `SendError` — never both, never neither, never twice;
//! - a send that returned `Ok` was received; every error whose `send_error` returned `Ok` was
//!   received exactly once, and no other error was;
//! - every channel's balance is back to 0 and nobody waits on it;
//! - in debug builds, each CPU's scheduler invariants held after every operation
//!   (`tasklet::check_invariants`, called by every tasklet after each of its operations and by
//!   each CPU's main tasklet as it runs and joins them);
//! - nothing hung: the case finished within its time limit (blocking operations end by a
//!   partner, a timeout, close, kill or deadlock detection; a CPU's main tasklet joins its
//!   tasklets and, told it deadlocked, kills the ones left).
//!
//! One-CPU cases are deterministic for a given program (timeouts aside); multi-CPU cases depend
//! on thread timing, and the properties hold for every interleaving. `PROPTEST_RNG_SEED` fixes
//! the generated programs.

use proptest::prelude::*;
use spindle::channel::{Channel, Preference, SendError};
use spindle::tasklet::{self, Builder, CpuGroup, JoinHandle, Tasklet, TaskletError, Thrown};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Tasklet stacks: roomy for unoptimised PowerPC64 builds (the bodies record events in vectors).
const STACK: usize = 64 * 1024;
/// Spill segments (every spill level forces one).
const SEGMENT: usize = 32 * 1024;
/// Longest a case may take before it counts as hung (qemu-user is slow).
const CASE_LIMIT: Duration = Duration::from_secs(120);

/// Debug builds: this CPU's scheduler invariants (ring, timers, counts, attention bits).
fn check_invariants() {
    if cfg!(debug_assertions) {
        tasklet::check_invariants();
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Send a fresh id on channel `ch` (with a timeout in ms, from `spill` nested spilled
    /// segments).
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
    /// `send_error` of a fresh code.
    SendError {
        ch: usize,
    },
    Schedule,
    /// Kill a tasklet of the same CPU (by index, modulo their number; possibly itself).
    Kill(usize),
    Close(usize),
    Open(usize),
}

#[derive(Debug, Clone)]
struct Program {
    /// Per channel: preference, schedule_all.
    channels: Vec<(Preference, bool)>,
    /// Per CPU, per tasklet, its operations.
    cpus: Vec<Vec<Vec<Op>>>,
}

fn op_strategy(channels: usize) -> impl Strategy<Value = Op> {
    let ch = 0..channels;
    let timeout = proptest::option::weighted(0.5, 1u8..=8);
    prop_oneof![
        5 => (ch.clone(), timeout.clone(), prop_oneof![3 => Just(0u8), 1 => 1u8..=2])
            .prop_map(|(ch, timeout, spill)| Op::Send { ch, timeout, spill }),
        5 => (ch.clone(), timeout, prop_oneof![3 => Just(0u8), 1 => 1u8..=2])
            .prop_map(|(ch, timeout, spill)| Op::Receive { ch, timeout, spill }),
        1 => ch.clone().prop_map(|ch| Op::SendError { ch }),
        2 => Just(Op::Schedule),
        1 => (0usize..8).prop_map(Op::Kill),
        1 => ch.clone().prop_map(Op::Close),
        1 => ch.prop_map(Op::Open),
    ]
}

fn program_strategy() -> impl Strategy<Value = Program> {
    (
        1usize..=3,
        prop_oneof![2 => Just(1usize), 2 => Just(2), 1 => Just(3)],
    )
        .prop_flat_map(|(channels, cpus)| {
            let preference = prop_oneof![
                Just(Preference::Receiver),
                Just(Preference::Neither),
                Just(Preference::Sender)
            ];
            let tasklet = proptest::collection::vec(op_strategy(channels), 1..=8);
            let cpu = proptest::collection::vec(tasklet, 1..=5);
            (
                proptest::collection::vec((preference, proptest::bool::weighted(0.2)), channels),
                proptest::collection::vec(cpu, cpus),
            )
                .prop_map(|(channels, cpus)| Program { channels, cpus })
        })
}

/// What one tasklet did.
#[derive(Debug, Default)]
struct Events {
    /// Ids it tried to send.
    attempted: Vec<u64>,
    /// Ids whose send returned `Ok`.
    delivered: Vec<u64>,
    /// Ids given back in a `SendError`.
    returned: Vec<u64>,
    received: Vec<u64>,
    /// Codes whose `send_error` returned `Ok`.
    errors_sent: Vec<i32>,
    errors_received: Vec<i32>,
}

fn value_id(cpu: usize, tasklet: usize, op: usize) -> u64 {
    ((cpu * 16 + tasklet) * 64 + op) as u64 + 1
}

/// Runs `body` `depth` spilled segments deep (each level forces a fresh segment).
fn with_spill<R>(depth: u8, body: impl FnOnce() -> R) -> R {
    if depth == 0 {
        return body();
    }
    let pad = std::hint::black_box([u64::from(depth); 8]);
    let result = tasklet::spill_with(usize::MAX, SEGMENT, || with_spill(depth - 1, body))
        .expect("spill segment within the budget");
    std::hint::black_box(pad);
    result
}

fn run_script(
    cpu: usize,
    index: usize,
    ops: Vec<Op>,
    channels: Arc<Vec<Channel<u64>>>,
    siblings: Arc<OnceLock<Vec<Tasklet>>>,
) -> Events {
    let mut events = Events::default();
    for (op_index, op) in ops.into_iter().enumerate() {
        let id = value_id(cpu, index, op_index);
        let killed = match op {
            Op::Send { ch, timeout, spill } => {
                events.attempted.push(id);
                let channel = &channels[ch];
                let result = with_spill(spill, || match timeout {
                    Some(ms) => channel.send_timeout(id, Duration::from_millis(u64::from(ms))),
                    None => channel.send(id),
                });
                match result {
                    Ok(()) => {
                        events.delivered.push(id);
                        false
                    }
                    Err(SendError { value, error }) => {
                        assert_eq!(value, id, "a failed send gives back its own value");
                        events.returned.push(value);
                        error == TaskletError::Killed
                    }
                }
            }
            Op::Receive { ch, timeout, spill } => {
                let channel = &channels[ch];
                let result = with_spill(spill, || match timeout {
                    Some(ms) => channel.receive_timeout(Duration::from_millis(u64::from(ms))),
                    None => channel.receive(),
                });
                match result {
                    Ok(value) => {
                        events.received.push(value);
                        false
                    }
                    Err(TaskletError::Thrown(thrown)) => {
                        events.errors_received.push(thrown.code);
                        false
                    }
                    Err(error) => error == TaskletError::Killed,
                }
            }
            Op::SendError { ch } => {
                let code = id as i32;
                match channels[ch].send_error(Thrown::new(code, "sent by the property test")) {
                    Ok(()) => {
                        events.errors_sent.push(code);
                        false
                    }
                    Err(error) => error == TaskletError::Killed,
                }
            }
            Op::Schedule => tasklet::schedule() == Err(TaskletError::Killed),
            Op::Kill(target) => {
                let siblings = siblings
                    .get()
                    .expect("siblings are known before anything runs");
                let target = &siblings[target % siblings.len()];
                // `kill` switches to its target, a scheduling point: an error pending for the
                // killer itself (it killed itself earlier) comes out here.
                match target.kill() {
                    Ok(()) => false,
                    Err(TaskletError::Killed) => true,
                    Err(error) => panic!("kill of a tasklet of this CPU: {error:?}"),
                }
            }
            Op::Close(ch) => {
                channels[ch].close();
                false
            }
            Op::Open(ch) => {
                channels[ch].open();
                false
            }
        };
        check_invariants();
        if killed {
            // Killed: unwind, as `?` would.
            break;
        }
    }
    events
}

/// The body of one CPU thread: spawns its tasklets, runs them, and joins them all (killing what
/// is left if its main tasklet is told the group deadlocked).
fn run_cpu(cpu: usize, scripts: Vec<Vec<Op>>, channels: Arc<Vec<Channel<u64>>>) -> Vec<Events> {
    let siblings = Arc::new(OnceLock::new());
    let handles: Vec<JoinHandle<Events>> = scripts
        .into_iter()
        .enumerate()
        .map(|(index, ops)| {
            let (channels, siblings) = (channels.clone(), siblings.clone());
            Builder::new()
                .name("prop_channel")
                .stack_size(STACK)
                .spawn(move || run_script(cpu, index, ops, channels, siblings))
                .expect("spawn")
        })
        .collect();
    siblings
        .set(
            handles
                .iter()
                .map(|handle| handle.tasklet().clone())
                .collect(),
        )
        .expect("set once");
    check_invariants();
    tasklet::run().expect("run from main");
    check_invariants();
    let mut all = Vec::new();
    for handle in &handles {
        loop {
            let joined = handle.join();
            check_invariants();
            match joined {
                Ok(events) => {
                    all.push(events);
                    break;
                }
                // Killed before it ever ran: it did nothing.
                Err(TaskletError::Killed) if !handle.is_alive() => break,
                // Every CPU of the group is stuck: end what is left here.
                Err(TaskletError::Deadlock) => {
                    for other in &handles {
                        other.kill().expect("kill of a tasklet of this CPU");
                        check_invariants();
                    }
                }
                Err(error) => panic!("cpu {cpu}: a tasklet ended with {error:?}"),
            }
        }
    }
    assert_eq!(
        tasklet::live_count(),
        1,
        "cpu {cpu}: every tasklet finished"
    );
    all
}

fn run_program(program: &Program) -> Result<(), TestCaseError> {
    let channels: Arc<Vec<Channel<u64>>> = Arc::new(
        program
            .channels
            .iter()
            .map(|&(preference, schedule_all)| {
                let channel = Channel::new();
                channel.set_preference(preference);
                channel.set_schedule_all(schedule_all);
                channel
            })
            .collect(),
    );
    // A fresh group per case: whatever a failed case left behind cannot leak into the next.
    let group: &'static CpuGroup = Box::leak(Box::new(CpuGroup::new()));
    let (done, finished) = std::sync::mpsc::channel();
    let threads: Vec<_> = program
        .cpus
        .iter()
        .enumerate()
        .map(|(cpu, scripts)| {
            let (scripts, channels, done) = (scripts.clone(), channels.clone(), done.clone());
            tasklet::spawn_cpu_thread(group, move || {
                let events = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_cpu(cpu, scripts, channels)
                }));
                let _ = done.send(());
                events
            })
        })
        .collect();
    for _ in 0..threads.len() {
        prop_assert!(
            finished.recv_timeout(CASE_LIMIT).is_ok(),
            "a CPU did not finish within {CASE_LIMIT:?}: hung"
        );
    }
    let mut events = Vec::new();
    for (cpu, thread) in threads.into_iter().enumerate() {
        match thread.join().expect("cpu thread") {
            Ok(cpu_events) => events.extend(cpu_events),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                return Err(TestCaseError::fail(format!(
                    "cpu {cpu} panicked: {message:?}"
                )));
            }
        }
    }
    prop_assert_eq!(group.members(), 0, "every CPU left the group");
    check_events(&events, &channels)
}

fn check_events(events: &[Events], channels: &[Channel<u64>]) -> Result<(), TestCaseError> {
    // Every value attempted: received exactly once xor returned to its sender.
    let mut seen: HashMap<u64, (usize, usize)> = HashMap::new();
    for tasklet in events {
        for &id in &tasklet.attempted {
            prop_assert!(
                seen.insert(id, (0, 0)).is_none(),
                "id {} attempted twice",
                id
            );
        }
    }
    for tasklet in events {
        for &id in &tasklet.received {
            let Some(count) = seen.get_mut(&id) else {
                return Err(TestCaseError::fail(format!(
                    "received {id}, which nobody sent"
                )));
            };
            count.0 += 1;
        }
        for &id in &tasklet.returned {
            seen.get_mut(&id).expect("returned ids were attempted").1 += 1;
        }
    }
    for (id, (received, returned)) in &seen {
        prop_assert!(
            (*received, *returned) == (1, 0) || (*received, *returned) == (0, 1),
            "value {} received {} times and returned {} times",
            id,
            received,
            returned
        );
    }
    for tasklet in events {
        for id in &tasklet.delivered {
            prop_assert_eq!(
                seen[id],
                (1, 0),
                "send of {} returned Ok but it was not received once",
                id
            );
        }
    }
    // Errors sent: delivered exactly once if send_error returned Ok, else not at all.
    let mut errors: HashMap<i32, usize> = events
        .iter()
        .flat_map(|tasklet| tasklet.errors_sent.iter().map(|&code| (code, 0)))
        .collect();
    for tasklet in events {
        for code in &tasklet.errors_received {
            let Some(count) = errors.get_mut(code) else {
                return Err(TestCaseError::fail(format!(
                    "received error {code}, whose send_error did not return Ok"
                )));
            };
            *count += 1;
        }
    }
    for (code, count) in &errors {
        prop_assert_eq!(*count, 1, "error {} received {} times", code, count);
    }
    for (index, channel) in channels.iter().enumerate() {
        prop_assert_eq!(channel.balance(), 0, "channel {} balance", index);
        prop_assert!(
            channel.waiting().is_empty(),
            "channel {} still has waiters",
            index
        );
    }
    Ok(())
}

/// `default` cases, or as many as `PROPTEST_CASES` says when it is set (proptest's default
/// config reads it, but a count written here would override it).
fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: proptest_cases(64),
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_value_is_received_once_or_given_back(program in program_strategy()) {
        run_program(&program)?;
    }
}

/// A send of a fresh id on `ch`.
fn send(ch: usize, timeout: Option<u8>, spill: u8) -> Op {
    Op::Send { ch, timeout, spill }
}

fn receive(ch: usize, timeout: Option<u8>, spill: u8) -> Op {
    Op::Receive { ch, timeout, spill }
}

/// Fixed programs touching every operation on one and on three CPUs, so a plain run covers
/// them whatever the random cases draw.
#[test]
fn fixed_programs_covering_every_operation() {
    use Op::{Close, Kill, Open, Schedule, SendError};
    let one_cpu = Program {
        channels: vec![(Preference::Receiver, false), (Preference::Sender, true)],
        cpus: vec![vec![
            vec![receive(0, None, 2), send(1, None, 0), Schedule],
            vec![
                send(0, Some(5), 1),
                SendError { ch: 1 },
                receive(1, None, 0),
            ],
            vec![
                receive(1, None, 0),
                receive(1, Some(2), 0),
                Close(0),
                send(0, None, 0),
            ],
            vec![
                send(1, None, 0),
                Kill(1),
                Open(0),
                Kill(3),
                send(0, None, 0),
            ],
        ]],
    };
    run_program(&one_cpu).unwrap();
    let three_cpus = Program {
        channels: vec![
            (Preference::Neither, false),
            (Preference::Receiver, false),
            (Preference::Sender, false),
        ],
        cpus: vec![
            vec![
                vec![send(0, None, 1), receive(1, None, 0)],
                vec![receive(2, None, 0), Kill(0)],
            ],
            vec![vec![
                receive(0, None, 2),
                send(1, None, 0),
                SendError { ch: 2 },
            ]],
            vec![vec![send(2, Some(3), 0), receive(0, Some(4), 0), Close(2)]],
        ],
    };
    for _ in 0..10 {
        run_program(&three_cpus).unwrap();
    }
}
