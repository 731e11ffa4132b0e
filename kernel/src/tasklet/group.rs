//! CPU groups: which CPUs may wake each other, and the count that tells when none can.
//!
//! A CPU with nothing runnable idles; it declares deadlock (and wakes a victim with
//! [`TaskletError::Deadlock`](super::TaskletError::Deadlock)) only when every member of its
//! group is stuck the same way, with no timer, no wake-up in flight and no outside work. The
//! group keeps that count; the scheduler's idle loop (`idle.rs`) asks it.

use crate::platform::platform;
use core::sync::atomic::{AtomicUsize, Ordering};

/// CPUs whose tasklets may wake each other. Deadlock is declared only when every member is
/// idle with nothing that could wake it: no timers, no wake-ups in flight, no outside work
/// (such as `call_async` jobs) pending.
///
/// Hosted, every thread starts in a group of its own; threads that share channels join one
/// group with [`join_group`](super::join_group). On bare metal all CPUs share one group.
pub struct CpuGroup {
    state: spin::Mutex<GroupState>,
    in_flight: AtomicUsize,
    external: AtomicUsize,
}

struct GroupState {
    members: usize,
    stuck: usize,
    /// CPUs idling with nothing that could wake them but another member: woken to re-check
    /// when a member leaves or outside work ends. (Beyond its capacity a CPU relies on the
    /// platform's periodic idle returns instead.)
    stuck_cpus: heapless::Vec<usize, 32>,
}

impl GroupState {
    fn wake_stuck(cpus: &heapless::Vec<usize, 32>) {
        for &cpu in cpus {
            platform().wake_cpu(cpu);
        }
    }
}

impl CpuGroup {
    /// An empty group.
    pub const fn new() -> Self {
        Self {
            state: spin::Mutex::new(GroupState {
                members: 0,
                stuck: 0,
                stuck_cpus: heapless::Vec::new(),
            }),
            in_flight: AtomicUsize::new(0),
            external: AtomicUsize::new(0),
        }
    }

    /// Notes work outside any scheduler (a job on a worker) that will wake a member later:
    /// while any is pending, members idle instead of declaring deadlock.
    pub fn begin_external(&self) {
        self.external.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends what [`CpuGroup::begin_external`] began (waking idle members to re-check).
    pub fn end_external(&self) {
        self.external.fetch_sub(1, Ordering::AcqRel);
        let stuck = self.state.lock().stuck_cpus.clone();
        GroupState::wake_stuck(&stuck);
    }

    pub(super) fn leave(&self) {
        let stuck = {
            let mut state = self.state.lock();
            state.members -= 1;
            state.stuck_cpus.clone()
        };
        // The remaining members may now be all stuck: let them re-check.
        GroupState::wake_stuck(&stuck);
    }

    /// Counts `count` wake-ups queued for a member's inbox: until they land, no member is
    /// deadlocked.
    pub(super) fn wake_ups_sent(&self, count: usize) {
        self.in_flight.fetch_add(count, Ordering::AcqRel);
    }

    /// The member that `count` wake-ups were queued for took them from its inbox.
    pub(super) fn wake_ups_landed(&self, count: usize) {
        self.in_flight.fetch_sub(count, Ordering::AcqRel);
    }

    /// Undoes [`CpuGroup::reserve_member`] for a CPU that failed to start.
    #[cfg_attr(
        any(test, feature = "std"),
        allow(dead_code, reason = "bare-metal CPU start only")
    )]
    pub(super) fn unreserve_member(&self) {
        self.state.lock().members -= 1;
    }

    /// Counts a CPU joining (or, with `count_member` false, one reserved before it started).
    pub(super) fn add_member(&self, count_member: bool) {
        if count_member {
            self.state.lock().members += 1;
        }
    }

    /// For a member with nothing runnable and no timer: true if the group is deadlocked (every
    /// other member stuck, no wake-up in flight, no outside work, `inbox_empty` for the member
    /// itself) and `can_be_victim`; otherwise counts `cpu` stuck until [`CpuGroup::unstick`].
    /// The check and the count happen under one lock, so of several CPUs blocking at once the
    /// last one always sees the others stuck.
    pub(super) fn deadlocked_or_stuck(
        &self,
        cpu: usize,
        inbox_empty: impl FnOnce() -> bool,
        can_be_victim: bool,
    ) -> bool {
        let mut state = self.state.lock();
        let quiet = inbox_empty()
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.external.load(Ordering::Acquire) == 0;
        if quiet && can_be_victim && state.stuck + 1 >= state.members {
            return true;
        }
        state.stuck += 1;
        let _ = state.stuck_cpus.push(cpu);
        false
    }

    /// Undoes the count of [`CpuGroup::deadlocked_or_stuck`] once `cpu` returns from idling.
    pub(super) fn unstick(&self, cpu: usize) {
        let mut state = self.state.lock();
        state.stuck -= 1;
        if let Some(position) = state.stuck_cpus.iter().position(|&stuck| stuck == cpu) {
            state.stuck_cpus.swap_remove(position);
        }
    }

    /// Counts a CPU that will join with `join_reserved` before it exists.
    pub(crate) fn reserve_member(&self) {
        self.state.lock().members += 1;
    }

    /// Number of schedulers in the group.
    pub fn members(&self) -> usize {
        self.state.lock().members
    }
}

impl Default for CpuGroup {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(any(test, feature = "std")))]
pub(super) static GLOBAL_GROUP: CpuGroup = CpuGroup::new();
