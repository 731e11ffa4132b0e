//! The bookkeeping of a wait list ([`Ledger`]): who is registered, queued, granted, and who
//! waits for a hand-off. Pure counts, apart from the queues and the scheduler, so that its rules
//! are checked over every interleaving of a few waiters and wakers (the tests below).

/// The counts of a wait list: who is registered, queued, granted, and who waits for a hand-off.
///
/// Kept apart from the queues so that its rules can be checked on their own (see the tests).
/// `waiting` and `grants` change only under the owner's lock (register, grant, settle); the
/// rest also under the list's own lock alone (a waiter arriving or being cancelled), without
/// changing what the owner counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ledger {
    /// Registered waiters not yet settled: queued, unqueued or woken by a grant.
    waiting: usize,
    /// Grants made and not yet taken (by a woken waiter's settle): to a woken waiter, or
    /// floating.
    grants: usize,
    /// Waiters blocked in the queue (without a grant).
    queued: usize,
    /// Registered waiters outside the queue without a grant of their own: arriving (registered,
    /// not blocked yet) or leaving (taken out by a kill, timeout or deadlock, not yet settled).
    unqueued: usize,
    /// Grants for unqueued waiters, not yet taken. Never more than `unqueued`, and only while
    /// nobody is queued.
    floating: usize,
    /// Floating grants whose wakers wait to see them taken.
    awaited: usize,
    /// Wakers blocked until a floating grant is taken.
    handing: usize,
    /// Floating grants taken before their wakers came to wait.
    released: usize,
}

/// Where [`Ledger::grant`] sends a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantTo {
    /// Every registered waiter already has one.
    Nobody,
    /// The first queued waiter: pop it and wake it.
    Queued,
    /// An unqueued waiter will take it.
    Floating,
}

/// How a waiter that failed settles ([`Ledger::settle_failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// No grant is owed to it: it leaves.
    Leave,
    /// A floating grant has nobody else to go to: it takes it; `release` says whether a waker
    /// waits for that (see [`Ledger::release`]).
    Take { release: bool },
}

impl Ledger {
    pub(crate) const fn new() -> Self {
        Self {
            waiting: 0,
            grants: 0,
            queued: 0,
            unqueued: 0,
            floating: 0,
            awaited: 0,
            handing: 0,
            released: 0,
        }
    }

    /// Registered waiters without a grant.
    pub(crate) fn ungranted(&self) -> usize {
        self.waiting - self.grants
    }

    /// Grants made and not yet taken.
    pub(crate) fn granted(&self) -> usize {
        self.grants
    }

    /// A waiter registers (under the owner's lock).
    pub(crate) fn register(&mut self) {
        self.waiting += 1;
        self.unqueued += 1;
    }

    /// Whether a floating grant waits to be taken: a registered waiter arriving at its wait
    /// then takes it ([`Ledger::take_floating`]) instead of blocking ([`Ledger::enqueue`]).
    pub(crate) fn has_floating(&self) -> bool {
        self.floating > 0
    }

    /// An unqueued waiter takes a floating grant (it settles granted later). Returns whether a
    /// waker waits for that.
    pub(crate) fn take_floating(&mut self) -> bool {
        debug_assert!(self.floating > 0 && self.unqueued > 0);
        self.floating -= 1;
        self.unqueued -= 1;
        self.release()
    }

    /// An arriving waiter blocks in the queue.
    pub(crate) fn enqueue(&mut self) {
        debug_assert!(self.unqueued > 0 && self.floating == 0);
        self.unqueued -= 1;
        self.queued += 1;
    }

    /// A queued waiter was taken out by a kill, timeout or deadlock.
    pub(crate) fn cancelled(&mut self) {
        self.queued -= 1;
        self.unqueued += 1;
    }

    /// A waker makes a grant (under the owner's lock). `awaited`: the waker will wait for a
    /// floating grant to be taken ([`Ledger::await_handoff`]).
    pub(crate) fn grant(&mut self, awaited: bool) -> GrantTo {
        if self.queued > 0 {
            self.queued -= 1;
            self.grants += 1;
            GrantTo::Queued
        } else if self.unqueued > self.floating {
            self.floating += 1;
            self.grants += 1;
            if awaited {
                self.awaited += 1;
            }
            GrantTo::Floating
        } else {
            GrantTo::Nobody
        }
    }

    /// A waiter that holds a grant (woken, or took a floating one) settles (under the owner's
    /// lock).
    pub(crate) fn settle_granted(&mut self) {
        self.waiting -= 1;
        self.grants -= 1;
    }

    /// An unqueued waiter whose wait failed settles (under the owner's lock).
    pub(crate) fn settle_failed(&mut self) -> Settle {
        debug_assert!(self.unqueued > 0 && self.floating <= self.unqueued);
        if self.floating == self.unqueued {
            let release = self.take_floating();
            self.settle_granted();
            Settle::Take { release }
        } else {
            self.unqueued -= 1;
            self.waiting -= 1;
            Settle::Leave
        }
    }

    /// A floating grant was taken: true if a waker blocked for it must be woken (one of
    /// `handing`); otherwise a waker still on its way finds it released.
    fn release(&mut self) -> bool {
        if self.awaited == 0 {
            return false;
        }
        self.awaited -= 1;
        if self.handing > 0 {
            self.handing -= 1;
            true
        } else {
            self.released += 1;
            false
        }
    }

    /// A waker comes to wait for its floating grant to be taken: true if it was already (it
    /// goes on), false if it blocks (counted in `handing`).
    pub(crate) fn await_handoff(&mut self) -> bool {
        if self.released > 0 {
            self.released -= 1;
            true
        } else {
            self.handing += 1;
            false
        }
    }

    /// A waker blocked for a hand-off was taken out by a kill or deadlock (it comes back).
    pub(crate) fn handoff_cancelled(&mut self) {
        self.handing -= 1;
    }
}

#[cfg(test)]
mod tests {
    //! Every interleaving of a few waiters and wakers, each step one ledger call as the wait
    //! list makes it, with the queues modelled beside it.

    extern crate std;

    use super::{GrantTo, Ledger, Settle};
    use std::collections::{HashSet, VecDeque};
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    /// Where one waiter of the model is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Waiter {
        Idle,
        /// Registered, on its way to block.
        Arriving,
        Queued,
        /// Taken out of the queue by a grant, not settled yet.
        Woken,
        /// Took a floating grant on arrival, not settled yet.
        HoldsFloating,
        /// Taken out of the queue by a kill or timeout, not settled yet.
        Leaving,
        Done(Outcome),
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Outcome {
        Granted,
        Failed,
        FailedHolding,
    }

    /// Where one waker of the model is. Each makes one grant, awaited (it waits for a floating
    /// grant to be taken) or detached.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Waker {
        Idle,
        /// Its grant floated: it comes to wait for the hand-off.
        Awaiting,
        /// Blocked until a taker releases it.
        Blocked,
        Done,
    }

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct World {
        ledger: Ledger,
        waiters: Vec<Waiter>,
        wakers: Vec<Waker>,
        queue: VecDeque<usize>,
        handoffs: VecDeque<usize>,
        /// Grants made (not `Nobody`).
        grants_made: usize,
    }

    /// A model configuration: which waiters may fail (killed or timed out), and which wakers wait
    /// for their floating grants.
    struct Model {
        may_fail: Vec<bool>,
        awaited: Vec<bool>,
        /// A deliberately broken settle, to show that the checker catches it.
        broken_settle: bool,
    }

    impl Model {
        fn initial(&self) -> World {
            World {
                ledger: Ledger::new(),
                waiters: std::vec![Waiter::Idle; self.may_fail.len()],
                wakers: std::vec![Waker::Idle; self.awaited.len()],
                queue: VecDeque::new(),
                handoffs: VecDeque::new(),
                grants_made: 0,
            }
        }

        /// A floating grant was taken: wakes the released waker as the list does.
        fn release(world: &mut World, release: bool) -> Result<(), String> {
            if release {
                let waker = world
                    .handoffs
                    .pop_front()
                    .ok_or("a release with no waker in the hand-off queue")?;
                world.wakers[waker] = Waker::Done;
            }
            Ok(())
        }

        fn settle_failed(&self, world: &mut World, waiter: usize) -> Result<(), String> {
            if self.broken_settle {
                // Leaves even when a floating grant has nobody else to go to.
                world.ledger.unqueued -= 1;
                world.ledger.waiting -= 1;
                world.waiters[waiter] = Waiter::Done(Outcome::Failed);
                return Ok(());
            }
            match world.ledger.settle_failed() {
                Settle::Leave => world.waiters[waiter] = Waiter::Done(Outcome::Failed),
                Settle::Take { release } => {
                    world.waiters[waiter] = Waiter::Done(Outcome::FailedHolding);
                    Self::release(world, release)?;
                }
            }
            Ok(())
        }

        /// Every state one step from `world`.
        fn successors(&self, world: &World) -> Result<Vec<World>, String> {
            let mut next = Vec::new();
            for (index, &waiter) in world.waiters.iter().enumerate() {
                let may_fail = self.may_fail[index];
                match waiter {
                    Waiter::Idle => {
                        let mut w = world.clone();
                        w.ledger.register();
                        w.waiters[index] = Waiter::Arriving;
                        next.push(w);
                    }
                    Waiter::Arriving => {
                        let mut w = world.clone();
                        if w.ledger.has_floating() {
                            let release = w.ledger.take_floating();
                            w.waiters[index] = Waiter::HoldsFloating;
                            Self::release(&mut w, release)?;
                        } else {
                            w.ledger.enqueue();
                            w.queue.push_back(index);
                            w.waiters[index] = Waiter::Queued;
                        }
                        next.push(w);
                        if may_fail {
                            // A kill raised before it blocked: the wait fails at once.
                            let mut w = world.clone();
                            self.settle_failed(&mut w, index)?;
                            next.push(w);
                        }
                    }
                    Waiter::Queued if may_fail => {
                        let mut w = world.clone();
                        w.queue.retain(|&queued| queued != index);
                        w.ledger.cancelled();
                        w.waiters[index] = Waiter::Leaving;
                        next.push(w);
                    }
                    Waiter::Woken | Waiter::HoldsFloating => {
                        let mut w = world.clone();
                        w.ledger.settle_granted();
                        w.waiters[index] = Waiter::Done(Outcome::Granted);
                        next.push(w);
                    }
                    Waiter::Leaving => {
                        let mut w = world.clone();
                        self.settle_failed(&mut w, index)?;
                        next.push(w);
                    }
                    Waiter::Queued | Waiter::Done(_) => {}
                }
            }
            for (index, &waker) in world.wakers.iter().enumerate() {
                let awaited = self.awaited[index];
                match waker {
                    Waker::Idle => {
                        let mut w = world.clone();
                        match w.ledger.grant(awaited) {
                            GrantTo::Nobody => w.wakers[index] = Waker::Done,
                            GrantTo::Queued => {
                                let waiter = w.queue.pop_front().ok_or("granted an empty queue")?;
                                w.waiters[waiter] = Waiter::Woken;
                                w.wakers[index] = Waker::Done;
                                w.grants_made += 1;
                            }
                            GrantTo::Floating => {
                                w.wakers[index] = if awaited {
                                    Waker::Awaiting
                                } else {
                                    Waker::Done
                                };
                                w.grants_made += 1;
                            }
                        }
                        next.push(w);
                    }
                    Waker::Awaiting => {
                        let mut w = world.clone();
                        if w.ledger.await_handoff() {
                            w.wakers[index] = Waker::Done;
                        } else {
                            w.handoffs.push_back(index);
                            w.wakers[index] = Waker::Blocked;
                        }
                        next.push(w);
                    }
                    Waker::Blocked => {
                        // Killed while it waits: it comes back to wait again.
                        let mut w = world.clone();
                        w.handoffs.retain(|&blocked| blocked != index);
                        w.ledger.handoff_cancelled();
                        w.wakers[index] = Waker::Awaiting;
                        next.push(w);
                    }
                    Waker::Done => {}
                }
            }
            Ok(next)
        }
    }

    fn count(world: &World, wanted: &[Waiter]) -> usize {
        world
            .waiters
            .iter()
            .filter(|waiter| wanted.contains(waiter))
            .count()
    }

    /// What must hold in every reachable state.
    fn check_state(world: &World) -> Result<(), String> {
        let ledger = &world.ledger;
        let checks = [
            (
                ledger.queued == world.queue.len(),
                "queued counts the queue",
            ),
            (
                ledger.handing == world.handoffs.len(),
                "handing counts the hand-off queue",
            ),
            (
                ledger.waiting
                    == count(
                        world,
                        &[
                            Waiter::Arriving,
                            Waiter::Queued,
                            Waiter::Woken,
                            Waiter::HoldsFloating,
                            Waiter::Leaving,
                        ],
                    ),
                "waiting counts the registered, unsettled waiters",
            ),
            (
                ledger.unqueued == count(world, &[Waiter::Arriving, Waiter::Leaving]),
                "unqueued counts the arriving and leaving waiters",
            ),
            (
                ledger.grants
                    == count(world, &[Waiter::Woken, Waiter::HoldsFloating]) + ledger.floating,
                "grants count the woken waiters and the floating grants",
            ),
            (
                ledger.floating <= ledger.unqueued,
                "every floating grant has an unqueued waiter to take it",
            ),
            (
                ledger.floating == 0 || ledger.queued == 0,
                "no waiter stays blocked while a grant floats (a lost wake-up)",
            ),
            (
                ledger.awaited + ledger.released
                    == world
                        .wakers
                        .iter()
                        .filter(|waker| matches!(waker, Waker::Awaiting | Waker::Blocked))
                        .count(),
                "every waiting waker has its grant awaited or released",
            ),
            (
                ledger.released == 0 || ledger.handing == 0,
                "no waker stays blocked while a release waits to be picked up",
            ),
        ];
        match checks.iter().find(|(holds, _)| !holds) {
            Some((_, what)) => Err(format!("{what}: {world:?}")),
            None => Ok(()),
        }
    }

    /// What must hold where nothing can move any more.
    fn check_final(world: &World) -> Result<(), String> {
        if world.wakers.iter().any(|waker| *waker != Waker::Done) {
            return Err(format!("a waker never got its hand-off: {world:?}"));
        }
        if world
            .waiters
            .iter()
            .any(|waiter| !matches!(waiter, Waiter::Done(_) | Waiter::Queued))
        {
            return Err(format!("a waiter is stuck unsettled: {world:?}"));
        }
        let taken = count(
            world,
            &[
                Waiter::Done(Outcome::Granted),
                Waiter::Done(Outcome::FailedHolding),
            ],
        );
        if taken != world.grants_made {
            return Err(format!(
                "{} grants made, {taken} taken: {world:?}",
                world.grants_made
            ));
        }
        let expected = Ledger {
            waiting: world.queue.len(),
            queued: world.queue.len(),
            ..Ledger::new()
        };
        if world.ledger != expected {
            return Err(format!("the counts do not return to rest: {world:?}"));
        }
        Ok(())
    }

    /// Explores every state reachable in `model`; returns how many there are.
    fn explore(model: &Model) -> Result<usize, String> {
        let start = model.initial();
        let mut seen = HashSet::new();
        let mut frontier = std::vec![start.clone()];
        seen.insert(start);
        while let Some(world) = frontier.pop() {
            check_state(&world)?;
            let next = model.successors(&world)?;
            if next.is_empty() {
                check_final(&world)?;
            }
            for successor in next {
                if seen.insert(successor.clone()) {
                    frontier.push(successor);
                }
            }
        }
        Ok(seen.len())
    }

    #[test]
    fn the_ledger_keeps_every_grant_in_every_interleaving() {
        // "May fail" and "awaited" only add moves, so besides all and none one mixed choice each
        // (the first waiter or waker differs) covers the orders that matter.
        fn masks(count: usize) -> [Vec<bool>; 3] {
            [
                std::vec![false; count],
                std::vec![true; count],
                (0..count).map(|index| index == 0).collect(),
            ]
        }
        for waiters in 1..=3 {
            for wakers in 1..=3 {
                for may_fail in masks(waiters) {
                    for awaited in masks(wakers) {
                        let model = Model {
                            may_fail: may_fail.clone(),
                            awaited: awaited.clone(),
                            broken_settle: false,
                        };
                        let states = explore(&model).unwrap_or_else(|violation| {
                            panic!("{waiters} waiters, {wakers} wakers: {violation}")
                        });
                        assert!(states > 1);
                    }
                }
            }
        }
    }

    #[test]
    fn the_checker_catches_a_leaving_waiter_that_drops_its_grant() {
        let model = Model {
            may_fail: std::vec![true, false],
            awaited: std::vec![true],
            broken_settle: true,
        };
        let violation = explore(&model).expect_err("a dropped grant goes unnoticed");
        assert!(
            violation.contains("floating grant") || violation.contains("grants made"),
            "{violation}"
        );
    }
}
