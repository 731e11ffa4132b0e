//! Scenarios: per CPU, a small program of channel operations, kills and joins on its tasklets;
//! the world they start from; and the expectations a scenario checks in its final states.

use crate::seq::{Seq, NIL};
use crate::state::{
    Blocker, Chan, Cpu, Error, Group, Op, Outcome, Pc, Resume, St, Task, Timer, World, MAX_CHANS,
    MAX_CPUS, MAX_TASKS,
};

/// A tasklet of a scenario.
pub(crate) struct TaskSpec {
    pub(crate) main: bool,
    pub(crate) ops: &'static [Op],
}

/// Per CPU, its tasklets in run-ring order (the first one runs first).
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) cpus: &'static [&'static [TaskSpec]],
    /// Checked in every final state where every CPU finished.
    pub(crate) expect: fn(&World) -> Result<(), String>,
    /// A CPU may finish (its thread return) while one of its tasklets still waits: a value
    /// handed to that tasklet afterwards is lost with the thread, and not counted as lost here.
    pub(crate) orphans: bool,
}

pub(crate) fn spec(scenario: &Scenario, task: u8) -> &'static TaskSpec {
    let mut index = 0;
    for cpu in scenario.cpus {
        for spec in cpu.iter() {
            if index == task {
                return spec;
            }
            index += 1;
        }
    }
    unreachable!("no tasklet {task}")
}

pub(crate) fn initial(scenario: &Scenario) -> World {
    let idle_task = Task {
        cpu: NIL,
        main: false,
        op: 0,
        state: St::Dead,
        queued: false,
        direction: 0,
        slot: None,
        pending: None,
        blocker: Blocker::None,
        timer: Timer::Off,
        resume: Resume::Start,
        started: false,
        woken: false,
        cancelled: false,
        joiners: Seq::EMPTY,
        outcomes: [None; 3],
    };
    let idle_cpu = Cpu {
        current: NIL,
        main: NIL,
        ring: Seq::EMPTY,
        inbox: Seq::EMPTY,
        inbox_count: 0,
        wake: false,
        in_group: false,
        pc: Pc::Done,
    };
    let mut world = World {
        cpus: [idle_cpu; MAX_CPUS],
        tasks: [idle_task; MAX_TASKS],
        chans: [Chan {
            balance: 0,
            waiters: Seq::EMPTY,
        }; MAX_CHANS],
        group: Group {
            members: 0,
            stuck: 0,
            in_flight: 0,
            stuck_cpus: Seq::EMPTY,
            lock: NIL,
        },
    };
    let mut next = 0u8;
    for (cpu_index, tasks) in scenario.cpus.iter().enumerate() {
        let cpu = &mut world.cpus[cpu_index];
        for spec in tasks.iter() {
            assert!(spec.ops.len() <= 3);
            world.tasks[next as usize] = Task {
                cpu: cpu_index as u8,
                main: spec.main,
                state: St::Runnable,
                ..idle_task
            };
            cpu.ring.push(next);
            if spec.main {
                cpu.main = next;
            }
            next += 1;
        }
        assert_ne!(cpu.main, NIL, "every CPU has a main tasklet");
        cpu.current = cpu.ring.first().unwrap();
        // Every modelled CPU joined the group before any tasklet ran (`join_group` /
        // `spawn_cpu_thread`'s reservation).
        cpu.in_group = true;
        cpu.pc = Pc::Op;
        world.tasks[cpu.current as usize].started = true;
        world.group.members += 1;
    }
    world
}

// ---- scenario expectations -------------------------------------------------------------------------

fn outcome(w: &World, task: usize, op: usize) -> Option<Outcome> {
    w.tasks[task].outcomes[op]
}

pub(crate) fn expect_no_deadlock(w: &World) -> Result<(), String> {
    for (index, task) in w.tasks.iter().enumerate() {
        for outcome in task.outcomes.iter().flatten() {
            if matches!(
                outcome,
                Outcome::SendFailed(_, Error::Deadlock)
                    | Outcome::ReceiveFailed(Error::Deadlock)
                    | Outcome::JoinFailed(Error::Deadlock)
            ) {
                return Err(format!(
                    "tasklet {index} was told it deadlocked: {outcome:?}"
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn expect_all(w: &World, expected: &[(usize, usize, Outcome)]) -> Result<(), String> {
    for &(task, op, want) in expected {
        if outcome(w, task, op) != Some(want) {
            return Err(format!(
                "tasklet {task} op {op}: {:?}, expected {want:?}",
                outcome(w, task, op)
            ));
        }
    }
    Ok(())
}

/// The outcomes of two operations (tasklet, operation index) are `success` or `failure`.
pub(crate) fn expect_either(
    w: &World,
    ops: [(usize, usize); 2],
    success: [Outcome; 2],
    failure: [Outcome; 2],
) -> Result<(), String> {
    let got = ops.map(|(task, op)| outcome(w, task, op));
    if got == success.map(Some) || got == failure.map(Some) {
        Ok(())
    } else {
        Err(format!("unexpected outcomes {got:?}"))
    }
}

pub(crate) const fn main_task(ops: &'static [Op]) -> TaskSpec {
    TaskSpec { main: true, ops }
}

pub(crate) const fn tasklet(ops: &'static [Op]) -> TaskSpec {
    TaskSpec { main: false, ops }
}
