//! Per-CPU access: finding the calling CPU's scheduler, and its CPU group membership.
//!
//! Hosted, each thread gets a scheduler of its own on first use (a thread stands for a CPU).
//! On bare metal the schedulers are statics indexed by the platform's CPU index, cached in the
//! CPU's r13 block on PowerPC64 with the `percpu-r13` feature.

use super::group::CpuGroup;
use super::ring::Placement;
use super::sched::Scheduler;
use super::tcb::Tcb;

/// Hosted: one scheduler per thread.
#[cfg(any(test, feature = "std"))]
mod hosted {
    extern crate std;
    use super::super::group::CpuGroup;
    use super::Scheduler;
    use core::cell::Cell;

    /// Leaves the thread's group when the thread ends.
    struct Registration(Cell<*const Scheduler>);

    impl Drop for Registration {
        fn drop(&mut self) {
            // SAFETY: the scheduler is leaked ('static); leaving its group lets the remaining
            // members of a shared group detect deadlock without this thread.
            if let Some(scheduler) = unsafe { self.0.get().as_ref() } {
                scheduler.leave_group();
            }
        }
    }

    std::thread_local! {
        // Without a destructor, so reading it is a plain thread-pointer-relative load.
        static THIS: Cell<*const Scheduler> = const { Cell::new(core::ptr::null()) };
        static REGISTRATION: Registration = const { Registration(Cell::new(core::ptr::null())) };
    }

    #[inline]
    pub(super) fn this_cpu() -> &'static Scheduler {
        let existing = THIS.with(Cell::get);
        if existing.is_null() {
            return initialize();
        }
        // SAFETY: set by `initialize` to a leaked, never-freed scheduler.
        unsafe { &*existing }
    }

    #[cold]
    fn initialize() -> &'static Scheduler {
        let scheduler: &'static Scheduler =
            std::boxed::Box::leak(std::boxed::Box::new(Scheduler::new()));
        let group: &'static CpuGroup = std::boxed::Box::leak(std::boxed::Box::new(CpuGroup::new()));
        scheduler.initialize(group, false);
        THIS.with(|this| this.set(scheduler));
        REGISTRATION.with(|registration| registration.0.set(scheduler));
        scheduler
    }
}

/// Bare metal: static schedulers, one per CPU index.
#[cfg(not(any(test, feature = "std")))]
mod bare_metal {
    use super::super::group::GLOBAL_GROUP;
    use super::Scheduler;
    use core::sync::atomic::{AtomicBool, Ordering};

    /// CPUs counted in the global group before they started (see `reserve_cpu`).
    static RESERVED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

    /// Counts `cpu` as a member of the global group before it starts, so that no other CPU
    /// declares deadlock while it boots. False if it was reserved or started already.
    pub(crate) fn reserve_cpu(cpu: usize) -> bool {
        let Some(flag) = RESERVED.get(cpu) else {
            return false;
        };
        if SCHEDULERS.0[cpu].initialized.get() || flag.swap(true, Ordering::AcqRel) {
            return false;
        }
        GLOBAL_GROUP.reserve_member();
        true
    }

    /// Undoes a reservation whose CPU failed to start.
    pub(crate) fn unreserve_cpu(cpu: usize) {
        if let Some(flag) = RESERVED.get(cpu) {
            if flag.swap(false, Ordering::AcqRel) {
                GLOBAL_GROUP.unreserve_member();
            }
        }
    }

    /// Most CPUs a bare-metal kernel schedules on (each costs a scheduler in `.data`).
    pub(crate) const MAX_CPUS: usize = 16;

    struct Slots([Scheduler; MAX_CPUS]);

    static SCHEDULERS: Slots = Slots([const { Scheduler::new() }; MAX_CPUS]);

    // SAFETY: each CPU touches only its own slot's non-atomic state (see Scheduler's Sync).
    unsafe impl Sync for Slots {}

    /// On PowerPC64 the scheduler's address is cached in the CPU's r13 block (see
    /// `spindle_arch::powerpc64::percpu`), which the boot code of every CPU sets up: the common
    /// case is one load, with no call through the platform. Boards whose r13 is not a
    /// `spindle_arch` block build without the `percpu-r13` feature.
    #[cfg(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    ))]
    #[inline(always)]
    pub(super) fn this_cpu() -> &'static Scheduler {
        let slot = &spindle_arch::powerpc64::percpu::current().kernel_slot;
        let cached = slot.load(Ordering::Relaxed) as *const Scheduler;
        // SAFETY: only `lookup` below stores here: the address of this CPU's static scheduler.
        match unsafe { cached.as_ref() } {
            Some(scheduler) => scheduler,
            None => cache_lookup(slot),
        }
    }

    #[cfg(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    ))]
    #[cold]
    #[inline(never)]
    fn cache_lookup(slot: &core::sync::atomic::AtomicUsize) -> &'static Scheduler {
        let scheduler = lookup();
        slot.store(scheduler as *const Scheduler as usize, Ordering::Relaxed);
        scheduler
    }

    #[cfg(not(all(
        target_arch = "powerpc64",
        feature = "bare-metal",
        feature = "percpu-r13"
    )))]
    #[inline]
    pub(super) fn this_cpu() -> &'static Scheduler {
        lookup()
    }

    #[inline]
    fn lookup() -> &'static Scheduler {
        let index = crate::platform::platform().cpu_index();
        let Some(scheduler) = SCHEDULERS.0.get(index) else {
            too_many_cpus(index)
        };
        if !scheduler.initialized.get() {
            initialize(scheduler, index);
        }
        scheduler
    }

    /// A board that starts more CPUs than the kernel has schedulers for is misconfigured.
    #[cold]
    #[inline(never)]
    fn too_many_cpus(index: usize) -> ! {
        panic!("spindle: CPU index {index} is beyond the kernel's {MAX_CPUS} per-CPU schedulers")
    }

    #[cold]
    #[inline(never)]
    fn initialize(scheduler: &'static Scheduler, index: usize) {
        let reserved = RESERVED
            .get(index)
            .is_some_and(|flag| flag.load(Ordering::Acquire));
        scheduler.initialize(&GLOBAL_GROUP, reserved);
    }
}

#[cfg(not(any(test, feature = "std")))]
pub(crate) use bare_metal::{reserve_cpu, unreserve_cpu};

/// The calling CPU's scheduler (initialised on first use).
#[inline(always)]
pub(crate) fn this_cpu() -> &'static Scheduler {
    #[cfg(any(test, feature = "std"))]
    return hosted::this_cpu();
    #[cfg(not(any(test, feature = "std")))]
    return bare_metal::this_cpu();
}

/// Makes a tasklet that a waker just took out of a wait queue runnable: directly in this CPU's
/// ring if it lives here, else through its CPU's inbox. With [`Placement::Next`] the caller then
/// switches to it (only meaningful on the same CPU).
pub(crate) fn wake(tcb: &Tcb, placement: Placement) {
    let _ = this_cpu().wake(tcb, placement);
}

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
        let old = self.inbox.locked(|pending| {
            let old = self.group();
            if let Some(old) = old {
                old.wake_ups_landed(pending);
            }
            if let Some(new) = group {
                new.wake_ups_sent(pending);
                new.add_member(count_member);
            }
            self.group
                .set(group.map_or(core::ptr::null(), |new| new as *const CpuGroup));
            old
        });
        if let Some(old) = old {
            old.leave();
        }
    }
}
