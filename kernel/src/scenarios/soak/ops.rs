//! The scripted tasklets: one operation after another, each checked as it ends.

use super::ledger::Tracked;
use super::program::{Op, Program};
use super::report::Counters;
use super::{Soak, MAX_OPS, MAX_TASKLETS, PERMITS};
use crate::channel::SendError;
use crate::net::NetDriver;
use crate::tasklet::{self, Builder, Tasklet, TaskletError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering::*;
use core::time::Duration;

/// A timeout of `count` quarters of a millisecond.
#[inline]
fn quarters(count: u8) -> Duration {
    Duration::from_micros(u64::from(count) * 250)
}

/// Counts an outcome of a blocking call; true if the tasklet was killed (it unwinds).
#[inline]
fn killed_by(soak_counters: &Counters, error: TaskletError) -> bool {
    if error == TaskletError::TimedOut {
        soak_counters.timeouts.fetch_add(1, Relaxed);
    }
    error == TaskletError::Killed
}

impl<D: NetDriver + Send + 'static> Soak<D> {
    /// One scripted tasklet.
    pub(super) fn script(
        &'static self,
        program: &Program,
        cpu: usize,
        index: usize,
        siblings: &spin::Mutex<Vec<Tasklet>>,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) {
        for (op_index, &op) in program.cpus[cpu][index].iter().enumerate() {
            let id = (cpu * MAX_TASKLETS + index) * MAX_OPS + op_index;
            let value = || Tracked::new(&self.ledger, program.round, id, cpu);
            let killed = self.perform(op, cpu, value, siblings, extras);
            self.counters.ops.fetch_add(1, Relaxed);
            self.check_invariants();
            if killed {
                return;
            }
        }
    }

    /// Performs one operation; true if the tasklet was killed meanwhile.
    fn perform(
        &'static self,
        op: Op,
        cpu: usize,
        value: impl FnOnce() -> Tracked,
        siblings: &spin::Mutex<Vec<Tasklet>>,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) -> bool {
        let c = &self.counters;
        match op {
            Op::Send { ch, timeout, spill } => {
                let value = value();
                let channel = &self.channels[ch];
                let result = self.spilled(spill, move || match timeout {
                    Some(ms) => channel.send_timeout(value, quarters(ms)),
                    None => channel.send(value),
                });
                self.sent(result)
            }
            Op::Receive { ch, timeout, spill } => {
                let channel = &self.channels[ch];
                let result = self.spilled(spill, || match timeout {
                    Some(ms) => channel.receive_timeout(quarters(ms)),
                    None => channel.receive(),
                });
                self.got(result, cpu)
            }
            Op::Close(ch) => {
                self.channels[ch].close();
                c.closes.fetch_add(1, Relaxed);
                false
            }
            Op::Open(ch) => {
                self.channels[ch].open();
                false
            }
            Op::QueueSend(timeout) => {
                let value = value();
                let result = match timeout {
                    Some(ms) => self.queue.send_timeout(value, quarters(ms)),
                    None => self.queue.send(value),
                };
                self.sent(result)
            }
            Op::QueueReceive(timeout) => {
                let result = match timeout {
                    Some(ms) => self.queue.receive_timeout(quarters(ms)),
                    None => self.queue.receive(),
                };
                self.got(result, cpu)
            }
            Op::QueueClose => {
                self.queue.close();
                c.closes.fetch_add(1, Relaxed);
                false
            }
            Op::QueueOpen => {
                self.queue.open();
                false
            }
            Op::Lock(yields) => match self.lock.acquire_timeout(quarters(2)) {
                Ok(guard) => {
                    if self.lock_holders.fetch_add(1, AcqRel) != 0 {
                        self.fail(String::from("two tasklets hold the lock"));
                    }
                    let killed = self.yields(yields);
                    self.lock_holders.fetch_sub(1, AcqRel);
                    drop(guard);
                    killed
                }
                Err(error) => killed_by(c, error),
            },
            Op::Semaphore(yields) => match self.semaphore.acquire_timeout(quarters(2)) {
                Ok(()) => {
                    if self.semaphore_holders.fetch_add(1, AcqRel) >= PERMITS {
                        self.fail(format!("more than {PERMITS} tasklets hold a permit"));
                    }
                    let killed = self.yields(yields);
                    self.semaphore_holders.fetch_sub(1, AcqRel);
                    self.semaphore.release();
                    killed
                }
                Err(error) => killed_by(c, error),
            },
            Op::EventWait(ms) => match self.event.wait_timeout(quarters(ms)) {
                Ok(()) => false,
                Err(error) => killed_by(c, error),
            },
            Op::EventSet => {
                self.event.set();
                false
            }
            Op::EventClear => {
                self.event.clear();
                false
            }
            Op::Schedule => tasklet::schedule()
                .err()
                .is_some_and(|error| killed_by(c, error)),
            Op::Sleep(micros) => tasklet::sleep(Duration::from_micros(u64::from(micros)))
                .err()
                .is_some_and(|error| killed_by(c, error)),
            Op::Kill(target) => {
                let target = {
                    let siblings = siblings.lock();
                    siblings[target % siblings.len()].clone()
                };
                c.kills.fetch_add(1, Relaxed);
                // The kill switches to its target: an error pending for the killer comes out.
                match target.kill() {
                    Ok(()) => false,
                    Err(error) => killed_by(c, error),
                }
            }
            Op::Courier { ch, send, yields } => self.courier(ch, send, yields, cpu, value, extras),
            Op::Echo(bytes) => self.echo(usize::from(bytes), cpu),
            Op::Fault(fault) => {
                if let Some(net) = &self.net {
                    (net.inject)(fault);
                    c.faults.fetch_add(1, Relaxed);
                }
                false
            }
        }
    }

    /// Runs `body` `depth` spilled segments deep.
    fn spilled<R>(&self, depth: u8, body: impl FnOnce() -> R) -> R {
        if depth == 0 {
            return body();
        }
        self.counters.spills.fetch_add(1, Relaxed);
        let pad = core::hint::black_box([u64::from(depth); 8]);
        let result = tasklet::spill_with(usize::MAX, self.config.segment, || {
            self.spilled(depth - 1, body)
        })
        .unwrap_or_else(|error| self.fail(format!("spill: {error:?}")));
        core::hint::black_box(pad);
        result
    }

    /// Yields `count` times; true if killed meanwhile.
    fn yields(&self, count: u8) -> bool {
        (0..count).any(|_| {
            tasklet::schedule()
                .err()
                .is_some_and(|error| killed_by(&self.counters, error))
        })
    }

    /// The end of a send: a value that comes back is checked and dropped.
    fn sent(&self, result: Result<(), SendError<Tracked>>) -> bool {
        match result {
            Ok(()) => false,
            Err(SendError { value, error }) => {
                value.returned();
                drop(value);
                killed_by(&self.counters, error)
            }
        }
    }

    /// The end of a receive: a value that arrives is checked and dropped.
    fn got(&self, result: Result<Tracked, TaskletError>, cpu: usize) -> bool {
        match result {
            Ok(value) => {
                value.received();
                if usize::from(value.origin) != cpu {
                    self.counters.cross_cpu.fetch_add(1, Relaxed);
                }
                false
            }
            Err(error) => killed_by(&self.counters, error),
        }
    }

    /// Spawns a courier that sends (or receives) one value on channel `ch`, yields `yields`
    /// times, and abandons it with `kill_forced` unless it finished: a value it holds in flight
    /// must be dropped by the kernel, once.
    fn courier(
        &'static self,
        ch: usize,
        send: bool,
        yields: u8,
        cpu: usize,
        value: impl FnOnce() -> Tracked,
        extras: &spin::Mutex<Vec<Tasklet>>,
    ) -> bool {
        let channel = &self.channels[ch];
        let builder = Builder::new()
            .name("soak courier")
            .stack_size(self.config.stack);
        // Half the couriers run sliced (saved out of the area while they wait).
        let builder = if yields % 2 == 1 {
            builder.sliced()
        } else {
            builder
        };
        let spawned = if send {
            let value = value();
            builder.spawn(move || {
                if let Err(SendError { value, .. }) = channel.send(value) {
                    value.returned();
                }
            })
        } else {
            builder.spawn(move || {
                if let Ok(value) = channel.receive() {
                    value.received();
                    if usize::from(value.origin) != cpu {
                        self.counters.cross_cpu.fetch_add(1, Relaxed);
                    }
                }
            })
        };
        let courier = match spawned {
            Ok(courier) => courier.tasklet().clone(),
            Err(error) => self.fail(format!("spawn a courier: {error:?}")),
        };
        extras.lock().push(courier.clone());
        if self.yields(yields) {
            return true;
        }
        // A courier on its way back from another CPU (waking) cannot be abandoned now; the
        // round's end kills it the ordinary way.
        match courier.kill_forced() {
            Ok(()) => {
                self.counters.forced_kills.fetch_add(1, Relaxed);
                false
            }
            Err(TaskletError::InvalidTarget) => false,
            Err(error) => self.fail(format!("kill_forced of a courier: {error:?}")),
        }
    }
}
