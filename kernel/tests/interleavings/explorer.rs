//! The exhaustive explorer: it enumerates every interleaving of the CPUs' steps (and of timer
//! expiries) by a breadth-first search over the reachable states, checks the invariants of
//! [`crate::invariants`] in every state, and over whole runs:
//! - in every final state every value sent was received exactly once or returned to its sender
//!   (or is still held by a sender blocked forever), and each scenario's own expectations hold;
//! - with a platform whose `idle(None)` returns only on `wake_cpu`, every run ends with every
//!   CPU finished: no CPU idles for good with work in its inbox, and no deadlock goes undeclared
//!   (no reliance on spurious idle returns);
//! - with spurious idle returns (the host's 50 ms bounded idle, the board's tick), every run can
//!   still finish from every reachable state (no livelock).
//!
//! A failure is a [`Violation`]: its message and the interleaving that led to it. [`check`]
//! explores a scenario as the cases need it: both kinds of platform, no mutation.

use std::collections::{HashMap, VecDeque};

use crate::invariants::{check_invariants, check_values};
use crate::model::{Actor, Config, Model};
use crate::scenario::{initial, Scenario};
use crate::state::{Pc, Timer, World, MAX_CPUS, MAX_TASKS};

#[derive(Debug, Default)]
pub(crate) struct Report {
    states: usize,
    transitions: usize,
    finished: usize,
}

pub(crate) struct Violation {
    pub(crate) message: String,
    pub(crate) trace: Vec<String>,
}

impl core::fmt::Debug for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(f, "interleaving ({} steps):", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

struct Explorer<'a> {
    model: Model<'a>,
    states: Vec<World>,
    index: HashMap<World, u32>,
    parent: Vec<(u32, Actor)>,
    successors: Vec<Vec<u32>>,
}

fn actors(w: &World) -> impl Iterator<Item = Actor> + '_ {
    (0..MAX_CPUS as u8).map(Actor::Cpu).chain(
        (0..MAX_TASKS as u8)
            .filter(|&t| w.tasks[t as usize].timer == Timer::Armed)
            .map(Actor::Expire),
    )
}

fn describe(w: &World, actor: Actor) -> String {
    match actor {
        Actor::Expire(t) => format!("timer of tasklet {t} expires"),
        Actor::Cpu(c) => {
            let cpu = &w.cpus[c as usize];
            format!("cpu {c} (running tasklet {}): {:?}", cpu.current, cpu.pc)
        }
    }
}

impl<'a> Explorer<'a> {
    fn new(scenario: &'a Scenario, config: Config) -> Self {
        Self {
            model: Model { scenario, config },
            states: Vec::new(),
            index: HashMap::new(),
            parent: Vec::new(),
            successors: Vec::new(),
        }
    }

    fn trace(&self, mut id: u32, last: Option<Actor>) -> Vec<String> {
        let mut path = Vec::new();
        if let Some(actor) = last {
            path.push(describe(&self.states[id as usize], actor));
        }
        while id != 0 {
            let (parent, actor) = self.parent[id as usize];
            path.push(describe(&self.states[parent as usize], actor));
            id = parent;
        }
        path.reverse();
        path
    }

    fn violation(&self, id: u32, last: Option<Actor>, message: String) -> Violation {
        let mut trace = self.trace(id, last);
        trace.push(format!("state: {:?}", self.states[id as usize]));
        Violation {
            message: format!("{}: {message}", self.model.scenario.name),
            trace,
        }
    }

    fn run(mut self) -> Result<Report, Violation> {
        let start = initial(self.model.scenario);
        if let Err(message) = check_invariants(&start, self.model.old_in_flight()) {
            return Err(Violation {
                message,
                trace: Vec::new(),
            });
        }
        self.index.insert(start.clone(), 0);
        self.states.push(start);
        self.parent.push((0, Actor::Cpu(0)));
        self.successors.push(Vec::new());
        let mut report = Report::default();
        let mut queue = VecDeque::from([0u32]);
        while let Some(id) = queue.pop_front() {
            let world = self.states[id as usize].clone();
            let mut any = false;
            for actor in actors(&world) {
                let mut next = world.clone();
                match self.model.step(&mut next, actor) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(message) => return Err(self.violation(id, Some(actor), message)),
                }
                any = true;
                report.transitions += 1;
                let next_id = match self.index.get(&next) {
                    Some(&existing) => existing,
                    None => {
                        let next_id = self.states.len() as u32;
                        self.index.insert(next.clone(), next_id);
                        self.states.push(next);
                        self.parent.push((id, actor));
                        self.successors.push(Vec::new());
                        if let Err(message) = check_invariants(
                            &self.states[next_id as usize],
                            self.model.old_in_flight(),
                        ) {
                            return Err(self.violation(next_id, None, message));
                        }
                        queue.push_back(next_id);
                        next_id
                    }
                };
                self.successors[id as usize].push(next_id);
            }
            if !any {
                self.final_state(id, &mut report)?;
            }
        }
        report.states = self.states.len();
        if self.model.config.ticks {
            self.check_can_finish()?;
        }
        Ok(report)
    }

    fn final_state(&self, id: u32, report: &mut Report) -> Result<(), Violation> {
        let world = &self.states[id as usize];
        if world.cpus.iter().all(|cpu| cpu.pc == Pc::Done) {
            report.finished += 1;
            check_values(&self.model, world)
                .map_err(|message| self.violation(id, None, message))?;
            (self.model.scenario.expect)(world)
                .map_err(|message| self.violation(id, None, message))?;
            return Ok(());
        }
        for (index, cpu) in world.cpus.iter().enumerate() {
            if cpu.pc != Pc::Done && (cpu.inbox_count != 0 || !cpu.ring.is_empty()) {
                return Err(self.violation(
                    id,
                    None,
                    format!("cpu {index} idles for good with work to do"),
                ));
            }
        }
        let what = world
            .cpus
            .iter()
            .enumerate()
            .filter(|(_, cpu)| cpu.pc != Pc::Done)
            .map(|(index, cpu)| {
                format!(
                    "cpu {index} idles in {:?} with tasklet {} blocked",
                    cpu.pc, cpu.current
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(self.violation(id, None, format!("deadlock never declared: {what}")))
    }

    /// With spurious idle returns, every reachable state must still be able to reach a state
    /// where every CPU finished.
    fn check_can_finish(&self) -> Result<(), Violation> {
        let count = self.states.len();
        let mut predecessors = vec![Vec::new(); count];
        for (from, successors) in self.successors.iter().enumerate() {
            for &to in successors {
                predecessors[to as usize].push(from as u32);
            }
        }
        let mut can_finish = vec![false; count];
        let mut queue: VecDeque<u32> = (0..count as u32)
            .filter(|&id| {
                self.states[id as usize]
                    .cpus
                    .iter()
                    .all(|cpu| cpu.pc == Pc::Done)
            })
            .collect();
        for &id in &queue {
            can_finish[id as usize] = true;
        }
        while let Some(id) = queue.pop_front() {
            for &from in &predecessors[id as usize] {
                if !can_finish[from as usize] {
                    can_finish[from as usize] = true;
                    queue.push_back(from);
                }
            }
        }
        match can_finish.iter().position(|&ok| !ok) {
            None => Ok(()),
            Some(stuck) => Err(self.violation(
                stuck as u32,
                None,
                "from this state the run can never finish".into(),
            )),
        }
    }
}

pub(crate) fn explore(scenario: &Scenario, config: Config) -> Result<Report, Violation> {
    Explorer::new(scenario, config).run()
}

/// Explores `scenario` without spurious idle returns (a platform whose `idle(None)` sleeps
/// until `wake_cpu`: every run must end with every CPU finished) and with them (from every
/// reachable state, every run can still finish).
pub(crate) fn check(scenario: &Scenario) {
    let without = explore(
        scenario,
        Config {
            ticks: false,
            mutation: None,
        },
    )
    .unwrap_or_else(|violation| panic!("{violation:?}"));
    let with_ticks = explore(
        scenario,
        Config {
            ticks: true,
            mutation: None,
        },
    )
    .unwrap_or_else(|violation| panic!("{violation:?}"));
    assert!(
        without.finished > 0 && with_ticks.finished > 0,
        "{}: no run finished",
        scenario.name
    );
    println!(
        "{}: {} states, {} transitions, {} final states; with spurious idle returns {} states, {} transitions",
        scenario.name, without.states, without.transitions, without.finished, with_ticks.states, with_ticks.transitions
    );
}
