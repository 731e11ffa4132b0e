//! Tasklet switching benchmark: a schedule() round trip against corosensei's resume+suspend.
//!
//! Run: `cargo bench -p spindle --bench tasklet`. Prints medians of repeated samples and the
//! ratio (goal: <= 1.0), plus the control-block size, the memory of 10,000 blocked tasklets (on
//! stacks of their own and sliced, by heap accounting) and the cost of a switch between sliced
//! tasklets.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes it has handed out (heap accounting).
struct Counting;

static HEAP_IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            HEAP_IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        HEAP_IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(pointer, layout) };
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap_in_use() -> usize {
    HEAP_IN_USE.load(Ordering::Relaxed)
}

/// Two sliced tasklets yield to each other (main is paused in `run`): each switch saves one
/// slice and restores the other. Nanoseconds per round trip (two switches).
fn sliced_round_trip_ns() -> f64 {
    let rounds = ITERATIONS / 10;
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let pair: Vec<_> = (0..2)
                .map(|_| {
                    Builder::new()
                        .sliced()
                        .spawn(move || {
                            let frame = std::hint::black_box([1u8; 256]);
                            for _ in 0..rounds {
                                tasklet::schedule().expect("yield");
                            }
                            frame[7]
                        })
                        .expect("spawn")
                })
                .collect();
            let start = std::time::Instant::now();
            tasklet::run().expect("run the pair");
            let elapsed = start.elapsed().as_nanos() as f64;
            assert!(pair.iter().all(|handle| handle.result() == Some(Ok(1))));
            elapsed / rounds as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

use spindle::tasklet::{self, Builder};

const ITERATIONS: u64 = 200_000;
const SAMPLES: usize = 15;

fn spindle_round_trip_ns() -> f64 {
    let partner = tasklet::spawn(|| loop {
        if tasklet::schedule().is_err() {
            return;
        }
    })
    .expect("spawn partner");
    // Main -> partner -> main is one round trip per schedule() from main.
    let nanos = common::median_ns_per_op(SAMPLES, ITERATIONS, || {
        tasklet::schedule().expect("schedule");
    });
    partner.kill().expect("kill partner");
    nanos
}

#[cfg(target_arch = "x86_64")]
fn corosensei_round_trip_ns() -> Option<f64> {
    use corosensei::Coroutine;
    let mut coroutine: Coroutine<(), (), ()> = Coroutine::new(|yielder, ()| loop {
        yielder.suspend(());
    });
    Some(common::median_ns_per_op(SAMPLES, ITERATIONS, || {
        std::hint::black_box(coroutine.resume(()));
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn corosensei_round_trip_ns() -> Option<f64> {
    None
}

/// The bare context switch, without the scheduler: main <-> a context that switches straight back.
fn raw_switch_round_trip_ns() -> f64 {
    use spindle_arch::context;
    struct Pair {
        main_sp: usize,
        other_sp: usize,
    }
    extern "C" fn bounce(_arg: usize, data: usize) -> ! {
        let pair = data as *mut Pair;
        loop {
            // SAFETY: the pair outlives the loop below; only one side runs at a time.
            unsafe { context::switch(&mut (*pair).other_sp, (*pair).main_sp, 0) };
        }
    }
    let mut stack = vec![0u8; 64 * 1024];
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let mut pair = Box::new(Pair {
        main_sp: 0,
        other_sp: 0,
    });
    let data = &mut *pair as *mut Pair as usize;
    // SAFETY: the stack is ours and outlives the context.
    pair.other_sp = unsafe { context::init_stack(top, bounce, data) };
    let pair_ptr = data as *mut Pair;
    common::median_ns_per_op(SAMPLES, ITERATIONS, || {
        // SAFETY: other_sp is the bounce context's suspended stack pointer.
        unsafe { context::switch(&mut (*pair_ptr).main_sp, (*pair_ptr).other_sp, 0) };
    })
}

fn blocked_tasklets_memory(count: usize, stack: usize) -> usize {
    let (_, before) = tasklet::stack_budget();
    let gate = std::sync::Arc::new(spindle::channel::Channel::<()>::new());
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let gate = gate.clone();
            Builder::new()
                .stack_size(stack)
                .spawn(move || gate.receive().is_ok())
                .expect("spawn")
        })
        .collect();
    tasklet::schedule().expect("let them block");
    let (_, during) = tasklet::stack_budget();
    let blocked = handles.iter().filter(|handle| handle.is_blocked()).count();
    assert_eq!(blocked, count, "all tasklets blocked");
    for _ in 0..count {
        gate.send(()).expect("release");
    }
    tasklet::run().expect("run");
    (during - before) + count * tasklet::CONTROL_BLOCK_BYTES
}

fn main() {
    println!("spindle tasklet benchmark (medians of {SAMPLES} samples x {ITERATIONS} round trips)");
    let raw_ns = raw_switch_round_trip_ns();
    println!("  spindle   bare context-switch round trip (arch only):       {raw_ns:8.2} ns");
    let spindle_ns = spindle_round_trip_ns();
    println!("  spindle   schedule() round trip (main -> tasklet -> main): {spindle_ns:8.2} ns");
    match corosensei_round_trip_ns() {
        Some(peer_ns) => {
            println!(
                "  corosensei resume + suspend round trip:                    {peer_ns:8.2} ns"
            );
            println!(
                "  ratio spindle / corosensei: {:.2} (goal <= 1.0)",
                spindle_ns / peer_ns
            );
        }
        None => println!("  corosensei: not available on this architecture"),
    }
    println!(
        "  control block: {} bytes (goal <= 192)",
        tasklet::CONTROL_BLOCK_BYTES
    );
    let stack = tasklet::MIN_STACK_BYTES.max(4096);
    let total = blocked_tasklets_memory(10_000, stack);
    println!(
        "  10,000 blocked tasklets with {stack}-byte stacks: {} bytes ({} per tasklet)",
        total,
        total / 10_000
    );
    // Compaction on (the default), then off: memory and switch cost of each.
    for compact in [true, false] {
        tasklet::set_slice_compaction(compact);
        let label = if compact { "compacted" } else { "uncompacted" };
        let sliced =
            spindle::scenarios::slicing::blocked_sliced_tasklets_cost(10_000, 3, heap_in_use);
        println!(
            "  10,000 sliced tasklets blocked in a receive under 4 frames, slices {label}: {} \
             heap bytes per tasklet ({} saved slice)",
            sliced.heap_per_tasklet, sliced.slice_per_tasklet
        );
        let sliced_ns = sliced_round_trip_ns();
        println!(
            "  sliced    yield round trip between two sliced tasklets, {label}: {sliced_ns:8.2} ns \
             ({:.1}x the schedule() round trip{})",
            sliced_ns / spindle_ns,
            match corosensei_round_trip_ns() {
                Some(peer_ns) => format!(", {:.1}x corosensei", sliced_ns / peer_ns),
                None => String::new(),
            }
        );
    }
    tasklet::set_slice_compaction(true);
}
