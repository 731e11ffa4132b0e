//! How the CPUs run a round together: CPU 0 leads, the others follow, each runs its part.

use super::program::Program;
use super::Soak;
use crate::net::NetDriver;
use crate::tasklet::{self, Builder, JoinHandle, Tasklet, TaskletError};
use crate::time::Deadline;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering::*;
use core::time::Duration;

/// How long a CPU may wait for the others at a round's start or end before the soak counts as
/// hung.
const HANG_LIMIT: Duration = Duration::from_secs(120);

impl<D: NetDriver + Send + 'static> Soak<D> {
    /// CPU 0: draws, publishes, runs and settles the rounds.
    pub(super) fn lead(&'static self) {
        let start = Deadline::now();
        let end = Deadline::after(self.config.duration);
        let mut round = 0u32;
        while !end.has_passed() && !self.failed() {
            self.elapsed_ns
                .store(Deadline::now().as_ns() - start.as_ns(), Release);
            round += 1;
            let program = Arc::new(Program::draw(
                self.config.seed,
                round,
                self.config.cpus,
                self.net.is_some(),
            ));
            self.prepare(&program);
            *self.program.lock() = Some(program.clone());
            self.arrived.store(0, Release);
            self.scripts_done.store(0, Release);
            self.published.store(u64::from(round), Release);
            self.run_round(0, &program);
            self.arrived.fetch_add(1, AcqRel);
            self.wait(
                || self.arrived.load(Acquire) == self.config.cpus,
                "the round's end",
            );
            *self.program.lock() = None;
            if self.failed() {
                break;
            }
            self.settle(&program);
        }
        self.elapsed_ns
            .store(Deadline::now().as_ns() - start.as_ns(), Release);
        self.stop.store(true, Release);
    }

    /// Every other CPU: runs each published round.
    pub(super) fn follow(&'static self, cpu: usize) {
        let mut expected = 1u64;
        loop {
            self.wait(
                || self.published.load(Acquire) >= expected || self.stop.load(Acquire),
                "the next round",
            );
            if self.published.load(Acquire) < expected {
                return;
            }
            let program = self.program.lock().clone();
            let Some(program) = program else {
                self.fail(format!(
                    "CPU {cpu}: round {expected} published without a program"
                ));
            };
            self.run_round(cpu, &program);
            drop(program);
            self.arrived.fetch_add(1, AcqRel);
            expected += 1;
        }
    }

    /// Waits (sleeping, so this CPU's tasklets and the others' run) until `done`.
    fn wait(&self, done: impl Fn() -> bool, what: &str) {
        let limit = Deadline::after(HANG_LIMIT);
        while !done() {
            if limit.has_passed() {
                self.fail(format!(
                    "hung: waited {} s for {what}",
                    HANG_LIMIT.as_secs()
                ));
            }
            if self.failed() {
                return;
            }
            let _ = tasklet::sleep(Duration::from_micros(50));
        }
    }

    /// One CPU's part of a round: spawns its scripts (and on CPU 0 the echo server), polls them
    /// until they end, kills them if they stall or overrun, and waits for every tasklet it made.
    fn run_round(&'static self, cpu: usize, program: &Arc<Program>) {
        let scripts = &program.cpus[cpu];
        let siblings: Arc<spin::Mutex<Vec<Tasklet>>> = Arc::new(spin::Mutex::new(Vec::new()));
        let extras: Arc<spin::Mutex<Vec<Tasklet>>> = Arc::new(spin::Mutex::new(Vec::new()));
        let handles: Vec<JoinHandle<()>> = (0..scripts.len())
            .map(|index| {
                let (program, siblings, extras) =
                    (program.clone(), siblings.clone(), extras.clone());
                // Every other script runs sliced, on the CPU's shared slice area.
                let builder = Builder::new().name("soak").stack_size(self.config.stack);
                let builder = if index % 2 == 1 {
                    builder.sliced()
                } else {
                    builder
                };
                builder
                    .spawn(move || self.script(&program, cpu, index, &siblings, &extras))
                    .unwrap_or_else(|error| self.fail(format!("spawn a script: {error:?}")))
            })
            .collect();
        *siblings.lock() = handles
            .iter()
            .map(|handle| handle.tasklet().clone())
            .collect();
        let server = (cpu == 0 && program.net).then(|| {
            self.counters.net_rounds.fetch_add(1, Relaxed);
            let extras = extras.clone();
            Builder::new()
                .name("soak echo server")
                .stack_size(self.config.stack)
                .spawn(move || self.echo_server(&extras))
                .unwrap_or_else(|error| self.fail(format!("spawn the echo server: {error:?}")))
        });
        let budget = Deadline::after(self.config.round_budget);
        let mut scripts_counted = false;
        let mut last_ops = u64::MAX;
        let mut quiet_since = Deadline::now();
        loop {
            self.check_invariants();
            let scripts_alive = handles.iter().any(|handle| handle.is_alive());
            if !scripts_alive && !scripts_counted {
                scripts_counted = true;
                self.scripts_done.fetch_add(1, AcqRel);
            }
            let server_alive = server.as_ref().is_some_and(|server| server.is_alive());
            let extras_alive = extras.lock().iter().any(Tasklet::is_alive);
            if !scripts_alive && !server_alive && !extras_alive {
                break;
            }
            let ops = self.counters.ops.load(Acquire);
            if ops != last_ops {
                last_ops = ops;
                quiet_since = Deadline::now();
            }
            let stalled = Deadline::now().as_ns() - quiet_since.as_ns()
                >= self.config.stall.as_nanos() as u64;
            if stalled || budget.has_passed() || self.failed() {
                // Whatever is left waits for something that will not come: end it.
                let mut left: Vec<Tasklet> = handles
                    .iter()
                    .map(|handle| handle.tasklet().clone())
                    .collect();
                left.extend(extras.lock().iter().cloned());
                if !scripts_alive {
                    left.extend(server.iter().map(|server| server.tasklet().clone()));
                }
                for tasklet in left.iter().filter(|tasklet| tasklet.is_alive()) {
                    match tasklet.kill() {
                        Ok(()) => {
                            self.counters.kills.fetch_add(1, Relaxed);
                        }
                        Err(error) => {
                            self.fail(format!("CPU {cpu}: kill at the round's end: {error:?}"))
                        }
                    }
                }
                quiet_since = Deadline::now();
            }
            if tasklet::run_count() > 1 {
                let _ = tasklet::schedule();
            } else {
                let _ = tasklet::sleep(Duration::from_micros(100));
            }
        }
        for handle in &handles {
            match handle.result() {
                Some(Ok(())) | Some(Err(TaskletError::Killed)) => {}
                other => self.fail(format!("CPU {cpu}: a script ended with {other:?}")),
            }
        }
        if let Some(server) = server {
            match server.result() {
                Some(Ok(())) | Some(Err(TaskletError::Killed)) => {}
                other => self.fail(format!("the echo server ended with {other:?}")),
            }
        }
        self.check_invariants();
    }
}
