//! CPU groups and deadlock detection: who may wake whom, and when nobody can.
//!
//! A CPU with nothing runnable idles; it declares deadlock (and wakes a victim with
//! [`TaskletError::Deadlock`](super::TaskletError::Deadlock)) only when every member of its
//! group is stuck the same way, with no timer, no wake-up in flight and no outside work.

use super::sched::Scheduler;
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
    pub(super) fn wake_stuck(cpus: &heapless::Vec<usize, 32>) {
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

impl Scheduler {
    pub(crate) fn join(&self, group: &'static CpuGroup) {
        self.move_to_group(Some(group), true);
    }

    /// Moves into `group`, whose member count already includes this CPU (a reservation made
    /// before the thread started, so no other member ever saw the group without it).
    pub(crate) fn join_reserved(&self, group: &'static CpuGroup) {
        self.move_to_group(Some(group), false);
    }

    #[cfg_attr(
        not(any(test, feature = "std")),
        allow(dead_code, reason = "hosted threads and embedders")
    )]
    pub(crate) fn leave_group(&self) {
        self.move_to_group(None, false);
    }

    pub(crate) fn group(&self) -> Option<&'static CpuGroup> {
        // SAFETY: groups are 'static (join takes &'static).
        unsafe { self.group.get().as_ref() }
    }

    /// Moves this CPU from its group to `group` (or none), under the inbox lock so that
    /// wake-ups already queued here move their in-flight count along.
    pub(super) fn move_to_group(&self, group: Option<&'static CpuGroup>, count_member: bool) {
        let old = {
            let _inbox = self.inbox.lock();
            let pending = self.inbox_count.load(Ordering::Acquire);
            let old = self.group();
            if let Some(old) = old {
                old.wake_ups_landed(pending);
            }
            if let Some(new) = group {
                new.wake_ups_sent(pending);
                if count_member {
                    new.state.lock().members += 1;
                }
            }
            self.group
                .set(group.map_or(core::ptr::null(), |new| new as *const CpuGroup));
            old
        };
        if let Some(old) = old {
            old.leave();
        }
    }

    /// With nothing runnable here: returns true if this CPU's group is deadlocked (no member
    /// can make progress, no timer, no wake-up in flight, no outside work) and a victim is
    /// available; otherwise idles until a wake-up, `deadline` or a spurious return. The check
    /// and this CPU's counting itself stuck happen under one lock, so of several CPUs blocking
    /// at once the last one always sees the others stuck.
    pub(super) fn idle_unless_deadlocked(
        &self,
        deadline: Option<u64>,
        can_be_victim: bool,
    ) -> bool {
        let group = self.group();
        let stuck = deadline.is_none();
        if stuck {
            match group {
                None => {
                    if can_be_victim {
                        return true;
                    }
                }
                Some(group) => {
                    let mut state = group.state.lock();
                    let quiet = self.inbox_count.load(Ordering::Acquire) == 0
                        && group.in_flight.load(Ordering::Acquire) == 0
                        && group.external.load(Ordering::Acquire) == 0;
                    if quiet && can_be_victim && state.stuck + 1 >= state.members {
                        return true;
                    }
                    state.stuck += 1;
                    let _ = state.stuck_cpus.push(self.cpu.get());
                }
            }
        }
        if self.inbox_count.load(Ordering::Acquire) == 0 {
            platform().idle(deadline);
        }
        if let (Some(group), true) = (group, stuck) {
            let mut state = group.state.lock();
            state.stuck -= 1;
            let me = self.cpu.get();
            if let Some(position) = state.stuck_cpus.iter().position(|&cpu| cpu == me) {
                state.stuck_cpus.swap_remove(position);
            }
        }
        false
    }
}
