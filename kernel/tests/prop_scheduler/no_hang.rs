//! No hang, ever (a module of `prop_scheduler`, sharing its platform and case count): random programs of spawn, schedule, schedule_remove, switch, run (of a
//! tasklet and of the ring), kill, throw, insert, remove, channel sends and receives (blocking),
//! close and reopen — run by the main tasklet and by the tasklets themselves — all end.
//!
//! Every operation may fail (an error is a fine outcome: `Deadlock`, `Closed`, `Killed`, ...),
//! but the program must finish within a bound: each case runs on a thread of its own that must
//! report back within [`BOUND`], after a final `run()`, a kill of whatever is left (paused or
//! blocked) and another `run()`. Then every tasklet is dead, the scheduler's invariants hold,
//! and the main tasklet is the only live one. Before the scheduler revived a paused main
//! tasklet, a main tasklet that paused itself (`schedule_remove`, or `switch` into a tasklet
//! that then ended) idled forever once the others ended or blocked.

use super::{install_virtual_time, proptest_cases};
use proptest::prelude::*;
use spindle::channel::{Channel, Preference};
use spindle::tasklet::{self, Builder, Tasklet, TaskletError, Thrown};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long one program may take (it takes milliseconds; a hang never ends).
const BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Op {
    Schedule,
    ScheduleRemove,
    /// Only the main tasklet spawns (bodies stay finite).
    Spawn,
    Switch(usize),
    RunTasklet(usize),
    RunAll,
    Kill(usize),
    KillPending(usize),
    Throw(usize, bool),
    Insert(usize),
    Remove(usize),
    Send(usize),
    Receive(usize),
    Close(usize),
    Open(usize),
    Prefer(usize, i8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let target = 0usize..16;
    let channel = 0usize..2;
    prop_oneof![
        4 => Just(Op::Schedule),
        2 => Just(Op::ScheduleRemove),
        3 => Just(Op::Spawn),
        2 => target.clone().prop_map(Op::Switch),
        2 => target.clone().prop_map(Op::RunTasklet),
        1 => Just(Op::RunAll),
        1 => target.clone().prop_map(Op::Kill),
        1 => target.clone().prop_map(Op::KillPending),
        1 => (target.clone(), any::<bool>()).prop_map(|(t, pending)| Op::Throw(t, pending)),
        1 => target.clone().prop_map(Op::Insert),
        1 => target.prop_map(Op::Remove),
        3 => channel.clone().prop_map(Op::Send),
        3 => channel.clone().prop_map(Op::Receive),
        1 => channel.clone().prop_map(Op::Close),
        1 => channel.clone().prop_map(Op::Open),
        1 => (channel, -1i8..=1).prop_map(|(c, p)| Op::Prefer(c, p)),
    ]
}

/// A spawned tasklet's program: its operations, and whether it stops at its first error.
#[derive(Debug, Clone)]
struct Body {
    ops: Vec<Op>,
    stop_on_error: bool,
}

fn body_strategy() -> impl Strategy<Value = Body> {
    (
        proptest::collection::vec(op_strategy(), 0..8),
        any::<bool>(),
    )
        .prop_map(|(ops, stop_on_error)| Body { ops, stop_on_error })
}

/// What the tasklets of one program share. No lock is held across a scheduling point.
struct World {
    channels: [Channel<u32>; 2],
    tasklets: Mutex<Vec<Tasklet>>,
    bodies: Vec<Body>,
    spawned: Mutex<usize>,
}

impl World {
    fn target(&self, index: usize) -> Option<Tasklet> {
        let tasklets = self.tasklets.lock().unwrap();
        (!tasklets.is_empty()).then(|| tasklets[index % tasklets.len()].clone())
    }

    fn apply(self: &Arc<Self>, op: Op) -> Result<(), TaskletError> {
        let thrown = Thrown::new(7, "thrown by the no-hang test");
        let on = |index: usize, act: &dyn Fn(&Tasklet) -> Result<(), TaskletError>| {
            self.target(index).map_or(Ok(()), |tasklet| act(&tasklet))
        };
        match op {
            Op::Schedule => tasklet::schedule(),
            Op::ScheduleRemove => tasklet::schedule_remove(),
            Op::Spawn => {
                if !tasklet::current().is_main() {
                    return Ok(());
                }
                let index = {
                    let mut spawned = self.spawned.lock().unwrap();
                    *spawned += 1;
                    *spawned - 1
                };
                let Some(body) = self.bodies.get(index).cloned() else {
                    return Ok(());
                };
                let world = self.clone();
                let handle = Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || world.run(&body))?;
                self.tasklets.lock().unwrap().push(handle.tasklet().clone());
                Ok(())
            }
            Op::Switch(t) => on(t, &|t| t.switch()),
            Op::RunTasklet(t) => on(t, &|t| t.run()),
            Op::RunAll => tasklet::run(),
            Op::Kill(t) => on(t, &|t| t.kill()),
            Op::KillPending(t) => on(t, &|t| t.kill_pending()),
            Op::Throw(t, pending) => on(t, &|t| t.throw(thrown, pending)),
            Op::Insert(t) => on(t, &|t| t.insert()),
            Op::Remove(t) => on(t, &|t| t.remove()),
            Op::Send(c) => self.channels[c].send(1).map_err(|failure| failure.error),
            Op::Receive(c) => self.channels[c].receive().map(drop),
            Op::Close(c) => {
                self.channels[c].close();
                Ok(())
            }
            Op::Open(c) => {
                self.channels[c].open();
                Ok(())
            }
            Op::Prefer(c, preference) => {
                self.channels[c].set_preference(Preference::from_int(preference.into()));
                Ok(())
            }
        }
    }

    fn run(self: &Arc<Self>, body: &Body) {
        for &op in &body.ops {
            if self.apply(op).is_err() && body.stop_on_error {
                return;
            }
        }
    }
}

/// Runs `main` then `bodies` to the end; panics (failing the case) on anything but an end.
fn run_program(main: Vec<Op>, bodies: Vec<Body>) {
    let world = Arc::new(World {
        channels: [Channel::new(), Channel::new()],
        tasklets: Mutex::new(Vec::new()),
        bodies,
        spawned: Mutex::new(0),
    });
    for &op in &main {
        let _ = world.apply(op);
        assert!(tasklet::current().is_main());
    }
    let _ = tasklet::run();
    let left: Vec<Tasklet> = world.tasklets.lock().unwrap().clone();
    for tasklet in &left {
        // A kill of a blocked or paused tasklet runs it to its end (or its next failing
        // operation, which a body that goes on after errors may follow with more).
        while tasklet.is_alive() {
            assert_eq!(tasklet.kill(), Ok(()), "killing {tasklet:?}");
            let _ = tasklet::run();
        }
    }
    assert_eq!(tasklet::live_count(), 1, "every tasklet ended");
    assert_eq!(tasklet::run_count(), 1);
    tasklet::check_invariants();
}

fn run_bounded(main: Vec<Op>, bodies: Vec<Body>) {
    install_virtual_time();
    let (done, finished) = mpsc::channel();
    let description = format!("main {main:?}\nbodies {bodies:?}");
    std::thread::Builder::new()
        .name("no-hang case".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(move || run_program(main, bodies));
            let _ = done.send(outcome.is_ok());
        })
        .unwrap();
    match finished.recv_timeout(BOUND) {
        Ok(true) => {}
        Ok(false) => panic!("the program failed (see the panic above):\n{description}"),
        Err(_) => panic!("the program did not end within {BOUND:?}: a hang\n{description}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(128), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_random_program_ends(
        main in proptest::collection::vec(op_strategy(), 1..24),
        bodies in proptest::collection::vec(body_strategy(), 0..10),
    ) {
        run_bounded(main, bodies);
    }
}

/// The hangs this test was written for, each a fixed program.
#[test]
fn a_main_tasklet_that_pauses_itself_is_revived() {
    let yielder = Body {
        ops: vec![Op::Schedule],
        stop_on_error: false,
    };
    let receiver = Body {
        ops: vec![Op::Receive(0)],
        stop_on_error: false,
    };
    // schedule_remove() while the other one ends.
    run_bounded(vec![Op::Spawn, Op::ScheduleRemove], vec![yielder.clone()]);
    // schedule_remove() while the other one blocks.
    run_bounded(vec![Op::Spawn, Op::ScheduleRemove], vec![receiver.clone()]);
    // switch() into a tasklet that ends.
    run_bounded(vec![Op::Spawn, Op::Switch(0)], vec![yielder]);
    // switch() into a tasklet that blocks.
    run_bounded(vec![Op::Spawn, Op::Switch(0)], vec![receiver]);
}
