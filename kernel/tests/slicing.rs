//! Stack slicing on the host and in user-mode PowerPC64: sliced tasklets share one area per CPU.

use spindle::channel::Channel;
use spindle::scenarios::slicing as scenarios;
use spindle::tasklet::{self, Builder, CpuGroup};
use std::sync::Arc;

#[test]
fn sliced_tasklets_wait_in_saved_slices_and_get_their_values() {
    scenarios::sliced_tasklets_wait_in_saved_slices(200, 4, |saved| {
        assert!(saved > 0, "slices were saved");
    });
}

#[test]
fn two_sliced_tasklets_ping_pong_through_the_area() {
    scenarios::sliced_ping_pong(500);
}

#[test]
fn seed_bug_class_with_the_receiver_saved_out_of_the_area() {
    scenarios::sliced_seed_rounds(6, 6);
}

#[test]
fn zero_runs_are_left_out_of_saved_slices() {
    scenarios::zero_runs_are_left_out_of_saved_slices();
}

#[test]
fn a_runnable_tasklets_slice_is_saved_whole() {
    scenarios::a_runnable_tasklets_slice_is_saved_whole();
}

#[test]
fn slices_are_saved_whole_with_compaction_off() {
    scenarios::slices_are_saved_whole_with_compaction_off();
}

#[test]
fn a_trap_can_run_in_its_own_victim() {
    on_a_cpu_of_its_own(|| scenarios::a_trap_can_run_in_its_own_victim(4));
}

#[test]
fn two_traps_can_kill_each_others_tasklets() {
    on_a_cpu_of_its_own(|| scenarios::two_traps_can_kill_each_others_tasklets(4));
}

/// Runs `scenario` on a CPU (thread) of its own and fails after a minute instead of hanging:
/// traps that kept retrying their kills would spin there for good.
fn on_a_cpu_of_its_own(scenario: fn()) {
    let cpu = std::thread::spawn(scenario);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cpu.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scenario did not finish within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Err(panic) = cpu.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn kill_and_throw_reach_saved_tasklets() {
    scenarios::kill_and_throw_reach_saved_tasklets();
}

#[test]
fn sliced_tasklets_spill_and_block_on_segments() {
    scenarios::sliced_tasklets_spill_and_block_on_segments(8);
}

#[test]
fn overflowing_the_slice_area_is_reported() {
    scenarios::overflowing_the_area_is_reported_and_others_run_on();
}

#[test]
fn running_out_of_budget_while_slicing_is_an_error_for_the_switcher() {
    scenarios::running_out_of_budget_while_slicing_is_an_error_for_the_switcher();
}

#[test]
fn a_sliced_tasklet_that_cannot_be_restored_after_a_finish_is_abandoned() {
    scenarios::a_sliced_tasklet_that_cannot_be_restored_after_a_finish_is_abandoned();
}

#[test]
fn the_area_size_is_set_before_the_first_sliced_spawn() {
    assert_eq!(
        tasklet::set_slice_area_bytes(16),
        Err(tasklet::TaskletError::StackTooSmall)
    );
    tasklet::set_slice_area_bytes(128 * 1024).expect("before the area exists");
    let handle = Builder::new().sliced().spawn(|| 1).expect("spawn");
    tasklet::run().expect("run");
    assert_eq!(handle.result(), Some(Ok(1)));
    assert_eq!(tasklet::slice_stats().area_bytes, 128 * 1024);
    assert_eq!(
        tasklet::set_slice_area_bytes(64 * 1024),
        Err(tasklet::TaskletError::SliceAreaInUse)
    );
}

/// Values handed from sliced senders on another CPU (thread) to sliced receivers that are saved
/// out of their own CPU's area between receives; each sender's trap, dropped on the sending CPU
/// after the sender died, spills, sends across to a sliced side receiver and kills a saved
/// victim there. Every value arrives exactly once, every receiver's frame survives, every trap
/// runs, kills its victim and delivers its side value.
#[test]
fn values_from_another_cpu_reach_saved_sliced_receivers() {
    use spindle::scenarios::slicing::SlicedTrap;
    use spindle::tasklet::TaskletError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static GROUP: CpuGroup = CpuGroup::new();
    const ROUNDS: u64 = 200;
    const TRAP_DEPTH: u64 = 4;
    tasklet::join_group(&GROUP);
    let data = Arc::new(Channel::<String>::new());
    let side = Arc::new(Channel::<u64>::new());
    let ran = Arc::new(AtomicUsize::new(0));
    let side_receiver = {
        let side = side.clone();
        Builder::new()
            .sliced()
            .spawn(move || {
                (0..ROUNDS)
                    .map(|_| side.receive().expect("side"))
                    .sum::<u64>()
            })
            .expect("spawn")
    };
    let receivers: Vec<_> = (0..4u64)
        .map(|index| {
            let data = data.clone();
            Builder::new()
                .sliced()
                .spawn(move || {
                    let mine = [index; 8];
                    let mut got = Vec::new();
                    for _ in 0..ROUNDS / 4 {
                        got.push(data.receive().expect("receive"));
                        tasklet::schedule().expect("yield between receives");
                    }
                    (got, mine.iter().sum::<u64>())
                })
                .expect("spawn")
        })
        .collect();
    tasklet::schedule().expect("let them block");
    let sender = {
        let (data, side, ran) = (data.clone(), side.clone(), ran.clone());
        let ran_here = ran.clone();
        tasklet::spawn_cpu_thread(&GROUP, move || {
            let ran = ran_here;
            let idle = Arc::new(Channel::<u64>::new());
            let victims: Vec<_> = (0..ROUNDS)
                .map(|round| {
                    let victim = {
                        let idle = idle.clone();
                        Builder::new()
                            .sliced()
                            .spawn(move || idle.receive())
                            .expect("victim")
                    };
                    let (data, side, ran) = (data.clone(), side.clone(), ran.clone());
                    let doomed = tasklet::Tasklet::clone(&victim);
                    drop(
                        Builder::new()
                            .sliced()
                            .spawn(move || {
                                data.send(format!("value {round}")).expect("send");
                                SlicedTrap::new(side, Some(doomed), ran, TRAP_DEPTH)
                            })
                            .expect("spawn a sliced sender"),
                    );
                    victim
                })
                .collect();
            // A victim that was running a trap when its kill came, or that ran its own trap,
            // took the kill there (a destructor cannot unwind) and waits on: those are killed
            // again once every trap has run.
            while ran.load(Ordering::Acquire) < ROUNDS as usize || tasklet::run_count() > 1 {
                tasklet::sleep(std::time::Duration::from_millis(1)).expect("sleep");
            }
            victims
                .iter()
                .filter(|victim| {
                    if victim.is_alive() {
                        victim
                            .kill()
                            .expect("kill a victim that took its kill in a trap");
                    }
                    victim.join() == Ok(Err(TaskletError::Killed))
                })
                .count()
        })
    };
    let mut all = Vec::new();
    for (index, receiver) in receivers.iter().enumerate() {
        let (got, sum) = receiver.join().expect("receiver");
        assert_eq!(sum, 8 * index as u64, "the receiver's frame survived");
        all.extend(got);
    }
    // The side values first: joining the sender's thread blocks this CPU, and the traps there
    // need this CPU's side receiver to take what they send.
    assert_eq!(
        side_receiver.join(),
        Ok(ROUNDS * TRAP_DEPTH * (TRAP_DEPTH + 1) / 2)
    );
    assert_eq!(
        sender.join().expect("sender thread") as u64,
        ROUNDS,
        "every victim killed"
    );
    all.sort();
    let mut expected: Vec<String> = (0..ROUNDS).map(|round| format!("value {round}")).collect();
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(ran.load(Ordering::Acquire) as u64, ROUNDS);
}

/// Sliced tasklets call onto worker CPUs (threads) with `call_async`: each waits saved out of
/// the area while its job runs elsewhere, and gets its own result back.
#[test]
fn sliced_tasklets_call_async_onto_workers() {
    use spindle::sync::{ThreadCpus, WorkerPool};
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 2, 8> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().expect("start workers");
    let callers: Vec<_> = (0..6u64)
        .map(|index| {
            Builder::new()
                .sliced()
                .spawn(move || {
                    let mine = [index; 8];
                    let result = POOL.call_async(move || {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        index * 100
                    });
                    (result, mine.iter().sum::<u64>())
                })
                .expect("spawn a sliced caller")
        })
        .collect();
    for (index, caller) in callers.iter().enumerate() {
        let index = index as u64;
        assert_eq!(caller.join(), Ok((Ok(index * 100), 8 * index)));
    }
    assert!(
        tasklet::slice_stats().saved > 0,
        "callers were saved while waiting"
    );
    POOL.shutdown();
    for thread in threads {
        assert_eq!(thread.join().expect("worker thread"), Ok(()));
    }
}

/// Deadlock detection works for sliced tasklets: with main waiting for a sliced tasklet that
/// blocks where nothing can wake it (another sliced one waits saved meanwhile), the blocking one
/// gets `Deadlock`, and the saved one is untouched until it is killed.
#[test]
fn deadlock_is_reported_to_a_sliced_tasklet() {
    let never = Arc::new(Channel::<u64>::new());
    let saved = {
        let never = never.clone();
        Builder::new()
            .sliced()
            .spawn(move || never.receive())
            .expect("spawn")
    };
    tasklet::schedule().expect("it blocks");
    let last = {
        let never = never.clone();
        Builder::new()
            .sliced()
            .spawn(move || {
                let mine = core::hint::black_box([9u64; 8]);
                never.receive().map(|value| value + mine[1])
            })
            .expect("spawn")
    };
    assert_eq!(last.join(), Ok(Err(tasklet::TaskletError::Deadlock)));
    assert!(saved.is_blocked());
    assert!(saved.saved_slice_bytes() > 0, "the other one waits saved");
    saved.kill().expect("kill the saved one");
    tasklet::run().expect("run the kill");
    assert_eq!(saved.result(), Some(Ok(Err(tasklet::TaskletError::Killed))));
}
