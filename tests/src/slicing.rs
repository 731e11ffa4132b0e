//! Stack slicing on the target: sliced tasklets on the real PowerPC64 switch, under preemption and across CPUs.

use crate::{Suite, TargetTest};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use core::time::Duration;
use spindle::channel::Channel;
use spindle::platform::platform;
use spindle::scenarios::slicing as scenarios;
use spindle::tasklet::{self, Builder, Tasklet, TaskletError};
use spindle_arch::powerpc64::irq;

/// The slicing suite.
pub const SUITE: Suite = Suite::new(
    "slicing",
    &[
        TargetTest::new("saved_slices_get_their_values", saved_slices_get_their_values),
        TargetTest::new("sliced_ping_pong", sliced_ping_pong),
        TargetTest::new("seed_bug_class_sliced", seed_bug_class_sliced),
        TargetTest::new("zero_runs_left_out", zero_runs_left_out),
        TargetTest::new("saved_whole_uncompacted", saved_whole_uncompacted),
        TargetTest::new("runnable_saved_whole", runnable_saved_whole),
        TargetTest::new("kill_and_throw_saved", kill_and_throw_saved),
        TargetTest::new("a_trap_can_run_in_its_own_victim", a_trap_can_run_in_its_own_victim)
            .timeout_secs(20),
        TargetTest::new("two_traps_kill_each_others_tasklets", two_traps_kill_each_other)
            .timeout_secs(20),
        TargetTest::new("spill_and_block_on_segments", spill_and_block_on_segments),
        TargetTest::new("area_overflow_is_reported", area_overflow_is_reported),
        TargetTest::new("budget_exhaustion_is_the_switchers_error", budget_exhaustion),
        TargetTest::new(
            "unrestorable_after_a_finish_is_abandoned",
            unrestorable_after_a_finish_is_abandoned,
        ),
        TargetTest::new("watchdog_preempts_a_sliced_loop", watchdog_preempts_a_sliced_loop),
        TargetTest::new("ten_thousand_blocked_sliced", ten_thousand_blocked_sliced),
        TargetTest::new("sliced_receivers_across_cpus", sliced_receivers_across_cpus).cpus(2),
    ],
);

fn runnable_saved_whole() {
    scenarios::a_runnable_tasklets_slice_is_saved_whole();
}

fn saved_whole_uncompacted() {
    scenarios::slices_are_saved_whole_with_compaction_off();
}

fn zero_runs_left_out() {
    scenarios::zero_runs_are_left_out_of_saved_slices();
}

fn saved_slices_get_their_values() {
    scenarios::sliced_tasklets_wait_in_saved_slices(200, 4, |saved| {
        spindle::kprintln!("200 waiting sliced tasklets: {saved} bytes of saved slices");
        assert!(saved > 0);
    });
}

fn sliced_ping_pong() {
    scenarios::sliced_ping_pong(500);
}

fn seed_bug_class_sliced() {
    scenarios::sliced_seed_rounds(6, 6);
}

fn kill_and_throw_saved() {
    scenarios::kill_and_throw_reach_saved_tasklets();
}

/// This and the next are the two ways the cross-CPU test below hung, made certain on one CPU:
/// a trap that retried its kill spun here for good (the runner's timeout reports it).
fn a_trap_can_run_in_its_own_victim() {
    scenarios::a_trap_can_run_in_its_own_victim(4);
}

fn two_traps_kill_each_other() {
    scenarios::two_traps_can_kill_each_others_tasklets(4);
}

fn spill_and_block_on_segments() {
    scenarios::sliced_tasklets_spill_and_block_on_segments(8);
}

fn area_overflow_is_reported() {
    scenarios::overflowing_the_area_is_reported_and_others_run_on();
}

fn budget_exhaustion() {
    scenarios::running_out_of_budget_while_slicing_is_an_error_for_the_switcher();
}

fn unrestorable_after_a_finish_is_abandoned() {
    scenarios::a_sliced_tasklet_that_cannot_be_restored_after_a_finish_is_abandoned();
}

/// The decrementer preempts a sliced tasklet in a loop without check points (its interrupt
/// frame is part of its live slice) while another sliced tasklet waits saved. A switch into the
/// waiter then saves the interrupted one; inserted again, it is restored from its saved slice
/// into the interrupt's return path and finishes with its frame intact.
fn watchdog_preempts_a_sliced_loop() {
    static SPINS: AtomicU64 = AtomicU64::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    static GATE: Channel<u64> = Channel::new();
    let waiter = Builder::new().sliced().spawn(|| GATE.receive()).unwrap();
    tasklet::schedule().unwrap();
    let runaway = Builder::new()
        .sliced()
        .name("runaway")
        .spawn(|| {
            let mine = core::hint::black_box([11u64; 8]);
            // No check points at all: only the decrementer can take the CPU back.
            while !STOP.load(Relaxed) {
                SPINS.fetch_add(1, Relaxed);
            }
            mine.iter().sum::<u64>()
        })
        .unwrap();
    let interrupted = tasklet::run_with_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(interrupted.as_ref(), Some(&*runaway));
    assert!(SPINS.load(Relaxed) > 0);
    assert!(runaway.is_paused());
    GATE.send(5).unwrap();
    assert_eq!(waiter.join(), Ok(Ok(5)));
    assert!(runaway.saved_slice_bytes() > 0, "the preempted slice was saved");
    STOP.store(true, Relaxed);
    runaway.insert().unwrap();
    assert_eq!(runaway.join(), Ok(88), "restored into its interrupt's return path");
}

fn ten_thousand_blocked_sliced() {
    let heap = crate::env::get().heap_bytes;
    let (limit, _) = tasklet::stack_budget();
    tasklet::set_stack_budget(heap / 2);
    let heap_in_use = || spindle_pseries::heap_stats().expect("heap not locked").used;
    // Frames of 64-byte locals above the receive: 4 (depth 3), and 1 (depth 0); then 4 with
    // the slices saved whole.
    for (depth, frames, compact) in [(3, 4, true), (0, 1, true), (3, 4, false)] {
        tasklet::set_slice_compaction(compact);
        let cost = scenarios::blocked_sliced_tasklets_cost(10_000, depth, heap_in_use);
        tasklet::set_slice_compaction(true);
        spindle::kprintln!(
            "10,000 sliced tasklets blocked in a receive under {frames} frame(s) of 64-byte \
             locals, slices {}: {} heap bytes each ({} saved slice, {} control block, the rest \
             body and allocator)",
            if compact { "compacted" } else { "uncompacted" },
            cost.heap_per_tasklet,
            cost.slice_per_tasklet,
            tasklet::CONTROL_BLOCK_BYTES
        );
        // A tasklet on a stack of its own costs at least the smallest stack plus its control
        // block.
        let own_stack = tasklet::MIN_STACK_BYTES + tasklet::CONTROL_BLOCK_BYTES;
        assert!(
            cost.heap_per_tasklet * 2 <= own_stack,
            "a blocked sliced tasklet costs {} bytes, not under half of an own-stack one \
             ({own_stack})",
            cost.heap_per_tasklet
        );
    }
    tasklet::set_stack_budget(limit);
}

static DATA: Channel<String> = Channel::new();
const CROSS_ROUNDS: u64 = 200;

/// The side channel the traps on CPU 1 send to (received by a sliced tasklet on CPU 0).
static SIDE: spin::Once<Arc<Channel<u64>>> = spin::Once::new();
static TRAPS_RAN: spin::Once<Arc<AtomicUsize>> = spin::Once::new();
const TRAP_DEPTH: u64 = 4;
/// CPU 1's count of victims that ended killed, sent once every trap has run.
static VERDICT: Channel<u64> = Channel::new();

/// CPU 1: per round, a sliced victim waits on a local channel and a sliced sender hands a value
/// to CPU 0 then finishes; its result, a trap, is dropped after the switch away from the dead
/// sender: it spills, sends to CPU 0's side receiver and kills the saved victim.
fn sliced_senders_cpu(_cpu: usize) -> ! {
    irq::enable();
    let idle = Arc::new(Channel::<u64>::new());
    let side = SIDE.get().expect("side channel").clone();
    let ran = TRAPS_RAN.get().expect("trap counter").clone();
    let mut victims = Vec::new();
    for round in 0..CROSS_ROUNDS {
        let victim = {
            let idle = idle.clone();
            Builder::new().sliced().spawn(move || idle.receive()).unwrap()
        };
        let (side, ran, doomed) = (side.clone(), ran.clone(), Tasklet::clone(&victim));
        drop(
            Builder::new()
                .sliced()
                .spawn(move || {
                    DATA.send(format!("value {round}")).unwrap();
                    scenarios::SlicedTrap::new(side, Some(doomed), ran, TRAP_DEPTH)
                })
                .unwrap(),
        );
        victims.push(victim);
    }
    // A victim that was running a trap when its kill came, or that ran its own trap, took the
    // kill there (a destructor cannot unwind) and waits on: those are killed again once every
    // trap has run.
    while (ran.load(Acquire) as u64) < CROSS_ROUNDS || tasklet::run_count() > 1 {
        let _ = tasklet::sleep(Duration::from_millis(1));
    }
    let killed = victims
        .iter()
        .filter(|victim| {
            if victim.is_alive() {
                victim.kill().expect("kill a victim that took its kill in a trap");
            }
            victim.join() == Ok(Err(TaskletError::Killed))
        })
        .count();
    VERDICT.send(killed as u64).expect("report to CPU 0");
    loop {
        platform().idle(None);
    }
}

/// Sliced senders on CPU 1 hand values to sliced receivers on CPU 0 that are saved out of CPU
/// 0's area between receives; each sender's trap, dropped on CPU 1 after the sender died,
/// spills, sends across to CPU 0 and kills a saved victim on CPU 1. Every value arrives once,
/// every receiver's frame survives, every trap's side value arrives.
fn sliced_receivers_across_cpus() {
    let side = SIDE.call_once(|| Arc::new(Channel::new())).clone();
    let ran = TRAPS_RAN.call_once(|| Arc::new(AtomicUsize::new(0))).clone();
    let side_receiver = Builder::new()
        .sliced()
        .spawn(move || (0..CROSS_ROUNDS).map(|_| side.receive().unwrap()).sum::<u64>())
        .unwrap();
    let receivers: Vec<_> = (0..4u64)
        .map(|index| {
            Builder::new()
                .sliced()
                .spawn(move || {
                    let mine = core::hint::black_box([index; 8]);
                    let got: Vec<String> = (0..CROSS_ROUNDS / 4)
                        .map(|_| {
                            let value = DATA.receive().unwrap();
                            tasklet::schedule().unwrap();
                            value
                        })
                        .collect();
                    (got, mine.iter().sum::<u64>())
                })
                .unwrap()
        })
        .collect();
    tasklet::schedule().unwrap();
    tasklet::start_cpu(1, sliced_senders_cpu).expect("start CPU 1");
    let mut all = Vec::new();
    for (index, receiver) in receivers.iter().enumerate() {
        let (got, sum) = receiver.join().unwrap();
        assert_eq!(sum, 8 * index as u64, "the receiver's frame survived");
        all.extend(got);
    }
    all.sort();
    let mut expected: Vec<String> = (0..CROSS_ROUNDS).map(|round| format!("value {round}")).collect();
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        side_receiver.join(),
        Ok(CROSS_ROUNDS * TRAP_DEPTH * (TRAP_DEPTH + 1) / 2),
        "every trap's side value arrived"
    );
    // CPU 1 counts the traps that ran only after they finished, past their side sends: its
    // report says when all of them did.
    assert_eq!(
        VERDICT.receive(),
        Ok(CROSS_ROUNDS),
        "every trap killed its victim"
    );
    assert_eq!(ran.load(Acquire) as u64, CROSS_ROUNDS, "every trap ran");
}
