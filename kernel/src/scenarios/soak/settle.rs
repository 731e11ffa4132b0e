//! A round's start and its settlement: nothing is left anywhere, every value met its end.

use super::program::Program;
use super::{Soak, MAX_OPS, MAX_TASKLETS, PERMITS};
use crate::net::NetDriver;
use alloc::format;
use core::sync::atomic::Ordering::*;

impl<D: NetDriver + Send + 'static> Soak<D> {
    /// CPU 0, before publishing: the shared objects take the round's settings.
    pub(super) fn prepare(&self, program: &Program) {
        self.ledger.round.store(u64::from(program.round), Release);
        for (channel, &(preference, schedule_all)) in self.channels.iter().zip(&program.preferences)
        {
            channel.open();
            channel.set_preference(preference);
            channel.set_schedule_all(schedule_all);
        }
        self.queue.open();
        self.event.clear();
    }

    /// CPU 0, once every CPU is done: nothing is left anywhere, and every value met its end.
    pub(super) fn settle(&self, program: &Program) {
        let round = program.round;
        // What the queue still holds is dropped here (counted as dropped in flight).
        while let Ok(value) = self.queue.try_receive() {
            drop(value);
        }
        for (index, channel) in self.channels.iter().enumerate() {
            if channel.balance() != 0 || !channel.waiting().is_empty() {
                self.fail(format!(
                    "round {round}: channel {index} has balance {} after every tasklet ended",
                    channel.balance()
                ));
            }
        }
        if self.lock.is_locked() || self.lock.waiting() != 0 {
            self.fail(format!(
                "round {round}: the lock is still held or waited for"
            ));
        }
        if self.semaphore.available() != PERMITS || self.semaphore.waiting() != 0 {
            self.fail(format!(
                "round {round}: {} of {PERMITS} permits free after every tasklet ended",
                self.semaphore.available()
            ));
        }
        if self.event.waiting() != 0 {
            self.fail(format!("round {round}: tasklets still wait on the event"));
        }
        if self.queue.waiting_senders() != 0 || self.queue.waiting_receivers() != 0 {
            self.fail(format!("round {round}: tasklets still wait on the queue"));
        }
        let c = &self.counters;
        for (id, fate) in self.ledger.fates.iter().enumerate() {
            let created = fate.created.swap(0, AcqRel);
            let dropped = fate.dropped.swap(0, AcqRel);
            let received = fate.received.swap(0, AcqRel);
            let returned = fate.returned.swap(0, AcqRel);
            if created == 0 && dropped + received + returned == 0 {
                continue;
            }
            if created != 1 || dropped != 1 || received + returned > 1 {
                let (cpu, index, op) = (
                    id / (MAX_TASKLETS * MAX_OPS),
                    id / MAX_OPS % MAX_TASKLETS,
                    id % MAX_OPS,
                );
                self.fail(format!(
                    "round {round}: value {id} created {created}, received {received}, given \
                     back {returned}, dropped {dropped} times (a leak if dropped 0); made by \
                     {:?}, operation {op} of tasklet {index} of CPU {cpu}, in {:?}",
                    program.cpus[cpu][index][op], program.cpus[cpu][index]
                ));
            }
            c.values.fetch_add(1, Relaxed);
            c.received.fetch_add(u64::from(received), Relaxed);
            c.returned.fetch_add(u64::from(returned), Relaxed);
            if received + returned == 0 {
                c.dropped_in_flight.fetch_add(1, Relaxed);
            }
        }
        c.rounds.fetch_add(1, Relaxed);
    }
}
