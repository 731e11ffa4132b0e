//! call_async: results and errors come back, other tasklets run while a job blocks a worker, a
//! full pool is a typed error, N workers run N jobs at once, interrupted callers leave the pool
//! consistent, and the caller's CPU idles instead of declaring deadlock while a job is in flight.

use spindle::sync::{CallError, ThreadCpus, WorkerPool};
use spindle::tasklet::{self, Builder, CpuGroup, JoinHandle, TaskletError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Roomy stacks: unoptimised PowerPC64 builds have big frames around formatting.
fn spawn<F, R>(body: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().stack_size(64 * 1024).spawn(body).unwrap()
}

/// Blocks the calling OS thread (a worker) until `flag` is set; false if 10 s pass first.
fn wait_for(flag: &AtomicBool) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        if start.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

/// Shuts `pool` down and checks every worker thread left its loop cleanly.
fn stop<const W: usize, const J: usize>(
    pool: &'static WorkerPool<ThreadCpus, W, J>,
    threads: Vec<std::thread::JoinHandle<Result<(), CallError>>>,
) {
    pool.shutdown();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
    assert_eq!(pool.workers(), 0);
}

#[test]
fn results_errors_and_panics_come_back_to_the_caller() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 2, 4> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();
    assert_eq!(POOL.workers(), 2);

    // The main tasklet is alone on this CPU: it idles while the job runs, no deadlock.
    let caller = std::thread::current().id();
    assert_eq!(
        POOL.call_async(move || {
            std::thread::sleep(Duration::from_millis(20));
            (std::thread::current().id() != caller, 6 * 7)
        }),
        Ok((true, 42)),
        "runs on a worker thread"
    );
    assert_eq!(
        POOL.call_async(|| Err::<u32, &str>("disk on fire")),
        Ok(Err("disk on fire"))
    );
    assert_eq!(
        POOL.call_async(|| -> u32 { panic!("driver exploded") }),
        Err(CallError::Panicked)
    );
    // The worker survived the panic and the slot was freed.
    let big = vec![7u8; 100_000];
    assert_eq!(
        POOL.call_async(move || big.iter().map(|&b| b as usize).sum::<usize>()),
        Ok(700_000)
    );
    assert_eq!(POOL.queued(), 0);

    stop(&POOL, threads);
    assert_eq!(POOL.call_async(|| 1), Err(CallError::ShutDown));
    tasklet::leave_group();
}

#[test]
fn other_tasklets_keep_running_while_a_job_blocks_a_worker() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 1, 2> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();

    // run() would stop while callers wait on other threads: these tests join instead.
    let caller = spawn(|| POOL.call_async(|| wait_for(&RELEASE)));
    let bystander = {
        let caller = caller.tasklet().clone();
        spawn(move || {
            // Runs while the caller waits on its job; the job waits for us.
            let mut rounds = 0;
            while !caller.is_blocked() {
                tasklet::schedule().unwrap();
                rounds += 1;
            }
            for _ in 0..10 {
                tasklet::schedule().unwrap();
            }
            let caller_was_blocked = caller.is_blocked();
            RELEASE.store(true, Ordering::SeqCst);
            (rounds < 1000, caller_was_blocked)
        })
    };
    assert_eq!(bystander.join(), Ok((true, true)));
    assert_eq!(
        caller.join(),
        Ok(Ok(true)),
        "the job saw the bystander's release"
    );
    stop(&POOL, threads);
    tasklet::leave_group();
}

#[test]
fn a_full_pool_is_a_typed_error_and_the_job_is_not_run() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 1, 2> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static RAN: AtomicUsize = AtomicUsize::new(0);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();

    // Two callers fill both slots: one job runs, one is queued behind it.
    let callers: Vec<_> = (0..2)
        .map(|id| {
            spawn(move || {
                POOL.call_async(move || {
                    RAN.fetch_add(1, Ordering::SeqCst);
                    wait_for(&RELEASE).then_some(id)
                })
            })
        })
        .collect();
    tasklet::schedule().unwrap();
    assert!(callers.iter().all(|caller| caller.is_blocked()));
    let refused = POOL.call_async(|| RAN.fetch_add(100, Ordering::SeqCst));
    assert_eq!(refused, Err(CallError::Full));
    RELEASE.store(true, Ordering::SeqCst);
    assert_eq!(callers[0].join(), Ok(Ok(Some(0))));
    assert_eq!(callers[1].join(), Ok(Ok(Some(1))));
    assert_eq!(RAN.load(Ordering::SeqCst), 2, "the refused job never ran");
    stop(&POOL, threads);
    tasklet::leave_group();
}

#[test]
fn a_pool_of_n_workers_runs_n_jobs_at_once() {
    const N: usize = 3;
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, N, 8> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();
    let callers: Vec<_> = (0..N + 2)
        .map(|_| {
            spawn(|| {
                POOL.call_async(|| {
                    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(now, Ordering::SeqCst);
                    // Hold the worker until N jobs overlap (or give up after 10 s).
                    let start = Instant::now();
                    while MOST.load(Ordering::SeqCst) < N
                        && start.elapsed() < Duration::from_secs(10)
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                    now
                })
            })
        })
        .collect();
    assert!(callers
        .iter()
        .all(|caller| matches!(caller.join(), Ok(Ok(_)))));
    assert_eq!(
        MOST.load(Ordering::SeqCst),
        N,
        "exactly N jobs overlapped, never more"
    );
    stop(&POOL, threads);
    tasklet::leave_group();
}

#[test]
fn an_interrupted_caller_gets_an_error_and_its_slot_comes_back() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 1, 2> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static FINISHED: AtomicUsize = AtomicUsize::new(0);
    static QUEUED_RAN: AtomicBool = AtomicBool::new(false);
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();

    // A running job's caller is killed; a queued job's caller times out.
    let running = spawn(|| {
        POOL.call_async(|| {
            wait_for(&RELEASE);
            FINISHED.fetch_add(1, Ordering::SeqCst);
        })
    });
    tasklet::schedule().unwrap();
    while POOL.queued() != 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued = spawn(|| {
        POOL.call_async_timeout(
            || QUEUED_RAN.store(true, Ordering::SeqCst),
            Duration::from_millis(5),
        )
    });
    tasklet::schedule().unwrap();
    running.kill().unwrap();
    assert_eq!(
        running.join(),
        Ok(Err(CallError::Interrupted(TaskletError::Killed)))
    );
    assert_eq!(
        queued.join(),
        Ok(Err(CallError::Interrupted(TaskletError::TimedOut)))
    );
    // Both slots are still taken: one job runs, the cancelled one waits for a worker to drop it.
    assert_eq!(POOL.call_async(|| ()), Err(CallError::Full));

    RELEASE.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let outcome = loop {
        match POOL.call_async(|| 5) {
            Err(CallError::Full) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            outcome => break outcome,
        }
    };
    assert_eq!(outcome, Ok(5));
    assert_eq!(
        FINISHED.load(Ordering::SeqCst),
        1,
        "the abandoned job still ran to its end"
    );
    assert!(
        !QUEUED_RAN.load(Ordering::SeqCst),
        "the cancelled job never ran"
    );
    // Both slots are free again.
    let pair: Vec<_> = (0..2)
        .map(|value| spawn(move || POOL.call_async(move || value)))
        .collect();
    assert_eq!(pair[0].join(), Ok(Ok(0)));
    assert_eq!(pair[1].join(), Ok(Ok(1)));
    stop(&POOL, threads);
    tasklet::leave_group();
}

#[test]
fn a_pool_without_workers_refuses_and_worker_places_are_fixed() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 1, 1> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    tasklet::join_group(&GROUP);
    assert_eq!(POOL.call_async(|| 1), Err(CallError::NoWorkers));
    let threads = POOL.start_threads().unwrap();
    assert_eq!(POOL.start_threads().unwrap_err(), CallError::TooManyWorkers);
    assert_eq!(POOL.worker_loop(), Err(CallError::TooManyWorkers));
    assert_eq!(POOL.call_async(|| 1), Ok(1));
    stop(&POOL, threads);
    tasklet::leave_group();
}

#[test]
fn callers_on_several_threads_share_one_pool() {
    static GROUP: CpuGroup = CpuGroup::new();
    static POOL: WorkerPool<ThreadCpus, 2, 4> = WorkerPool::new(ThreadCpus::new(), &GROUP);
    const CALLS: u64 = 25;
    tasklet::join_group(&GROUP);
    let threads = POOL.start_threads().unwrap();
    let callers: Vec<_> = (0..2u64)
        .map(|thread| {
            tasklet::spawn_cpu_thread(&GROUP, move || {
                let tasklets: Vec<_> = (0..2u64)
                    .map(|tasklet| {
                        spawn(move || {
                            let mut total = 0;
                            for call in 0..CALLS {
                                let input = thread * 1000 + tasklet * 100 + call;
                                // Full is back-pressure: yield and retry.
                                loop {
                                    match POOL.call_async(move || input * 2) {
                                        Ok(doubled) => {
                                            assert_eq!(doubled, input * 2);
                                            total += doubled;
                                            break;
                                        }
                                        Err(CallError::Full) => {
                                            tasklet::sleep(Duration::from_micros(100)).unwrap()
                                        }
                                        Err(error) => return Err(error),
                                    }
                                }
                            }
                            Ok(total)
                        })
                    })
                    .collect();
                tasklets
                    .iter()
                    .map(|tasklet| tasklet.join().unwrap())
                    .collect::<Result<Vec<u64>, _>>()
            })
        })
        .collect();
    tasklet::leave_group();
    let mut total = 0;
    for caller in callers {
        total += caller.join().unwrap().unwrap().iter().sum::<u64>();
    }
    let expected: u64 = (0..2u64)
        .flat_map(|thread| {
            (0..2u64).flat_map(move |tasklet| {
                (0..CALLS).map(move |call| (thread * 1000 + tasklet * 100 + call) * 2)
            })
        })
        .sum();
    assert_eq!(total, expected);
    stop(&POOL, threads);
}

#[test]
fn call_errors_convert_and_display() {
    assert_eq!(
        CallError::from(TaskletError::Killed),
        CallError::Interrupted(TaskletError::Killed)
    );
    assert_eq!(
        CallError::Full.to_string(),
        "every job slot of the worker pool is taken"
    );
    assert!(CallError::Interrupted(TaskletError::TimedOut)
        .to_string()
        .contains("timed out"));
    let _shared: Arc<dyn std::error::Error + Send + Sync> = Arc::new(CallError::Panicked);
}
