//! Per-CPU access: finding the calling CPU's scheduler.
//!
//! Hosted, each thread gets a scheduler of its own on first use (a thread stands for a CPU).
//! On bare metal the schedulers are statics indexed by the platform's CPU index, cached in the
//! CPU's r13 block on PowerPC64 with the `percpu-r13` feature.

use super::sched::Scheduler;

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
