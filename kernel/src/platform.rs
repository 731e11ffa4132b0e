//! The contract a board (or an embedder's firmware) fulfils for the portable kernel.
//!
//! ```
//! use core::time::Duration;
//! use spindle::platform::{self, host::HostPlatform, AlreadyInstalled, Platform};
//! use spindle::tasklet;
//! use std::sync::Mutex;
//!
//! /// A platform whose console keeps what the kernel prints; the rest comes from the hosted
//! /// platform (a board implements every method against its hardware).
//! struct Recording {
//!     console: Mutex<Vec<u8>>,
//! }
//!
//! impl Platform for Recording {
//!     fn console_write(&self, bytes: &[u8]) {
//!         self.console.lock().unwrap().extend_from_slice(bytes);
//!     }
//!     fn now_ns(&self) -> u64 {
//!         HostPlatform.now_ns()
//!     }
//!     fn cpu_index(&self) -> usize {
//!         HostPlatform.cpu_index()
//!     }
//!     fn cpu_count(&self) -> usize {
//!         HostPlatform.cpu_count()
//!     }
//!     fn idle(&self, deadline_ns: Option<u64>) {
//!         HostPlatform.idle(deadline_ns)
//!     }
//!     fn wake_cpu(&self, cpu: usize) {
//!         HostPlatform.wake_cpu(cpu)
//!     }
//!     fn exit(&self, success: bool) -> ! {
//!         HostPlatform.exit(success)
//!     }
//! }
//!
//! static BOARD: Recording = Recording {
//!     console: Mutex::new(Vec::new()),
//! };
//!
//! // At boot, before any other kernel call; there is one platform for the kernel's lifetime.
//! assert_eq!(platform::install(&BOARD), Ok(()));
//! assert_eq!(platform::install(&BOARD), Err(AlreadyInstalled));
//! spindle::kprintln!("booted on CPU {}", platform::platform().cpu_index());
//! // The scheduler's timers run on the installed clock.
//! let start = platform::platform().now_ns();
//! let sleeper = tasklet::spawn(|| tasklet::sleep(Duration::from_millis(2)))?;
//! tasklet::run()?;
//! assert_eq!(sleeper.result(), Some(Ok(Ok(()))));
//! assert!(platform::platform().now_ns() - start >= 2_000_000);
//! assert_eq!(*BOARD.console.lock().unwrap(), b"booted on CPU 0\n");
//! # Ok::<(), tasklet::TaskletError>(())
//! ```
//!
//! The kernel never touches hardware directly: console bytes, time, CPU identity, idling and exit
//! all come through one [`Platform`] installed at boot with [`install`]. Hosted builds (feature
//! `std`) fall back to `host::HostPlatform` when nothing was installed; the example above is
//! hosted too (doc tests build with `std`) and borrows all but the console from it.

use core::fmt;

/// What the portable kernel needs from the machine it runs on.
///
/// Every method must be callable from any CPU, with interrupts enabled or not, and must not
/// allocate.
pub trait Platform: Sync {
    /// Writes bytes to the console. Never fails: a board without a console drops them.
    fn console_write(&self, bytes: &[u8]);

    /// Monotonic time since boot, in nanoseconds: the clock of the kernel's deadlines
    /// ([`crate::time::Deadline`]), of [`Platform::idle`] and of the preemption timer.
    fn now_ns(&self) -> u64;

    /// Index of the calling CPU, in `0..cpu_count()`.
    ///
    /// Asked once per CPU on bare-metal PowerPC64 with the kernel's default `percpu-r13`
    /// feature: the kernel then caches the CPU's scheduler in the `spindle_arch` per-CPU block
    /// that r13 points to (`percpu::PerCpu::kernel_slot`). A board that sets r13 up otherwise
    /// than `spindle_arch`'s boot code builds the kernel with `default-features = false`, and
    /// the kernel asks on every scheduler lookup instead.
    fn cpu_index(&self) -> usize;

    /// Number of CPUs the kernel may schedule tasklets on.
    fn cpu_count(&self) -> usize;

    /// Parks the calling CPU until [`Platform::wake_cpu`] names it, an interrupt arrives, or
    /// `deadline_ns` (on the [`Platform::now_ns`] clock) passes. Spurious returns are allowed.
    fn idle(&self, deadline_ns: Option<u64>);

    /// Ends an [`Platform::idle`] of CPU `cpu` (or makes its next one return at once).
    fn wake_cpu(&self, cpu: usize);

    /// Arms (or with `None` disarms) the calling CPU's preemption timer: at or after `deadline_ns`
    /// the board calls the scheduler's preemption hook from its timer interrupt. Boards without
    /// preemption ignore it; budgets are then enforced at cooperative check points.
    fn set_preempt_deadline(&self, deadline_ns: Option<u64>) {
        let _ = deadline_ns;
    }

    /// Whether [`Platform::set_preempt_deadline`] really interrupts running code.
    fn preempts(&self) -> bool {
        false
    }

    /// The calling CPU's own stack as `(lowest, highest)` address, if the board knows it: the
    /// main tasklet then gets guard words and spills like any tasklet instead of running off
    /// the end of its stack. Boards that cannot tell return `None`.
    fn cpu_stack_bounds(&self) -> Option<(usize, usize)> {
        None
    }

    /// Leaves the machine: `success` becomes the exit status the outside world sees.
    fn exit(&self, success: bool) -> !;

    /// Starts CPU `cpu` (in `1..cpu_count()`) running `entry(cpu)` on a stack of its own, with
    /// interrupts masked; `entry` never returns. Each CPU can be started once. Boards without
    /// SMP (and hosted builds, whose "CPUs" are threads) keep this default.
    fn start_cpu(&self, cpu: usize, entry: fn(usize) -> !) -> Result<(), StartCpuError> {
        let _ = (cpu, entry);
        Err(StartCpuError::Unsupported)
    }
}

/// Why [`Platform::start_cpu`] did not start a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCpuError {
    /// The platform cannot start CPUs.
    Unsupported,
    /// No such CPU: the boot CPU (0), or an index not below [`Platform::cpu_count`].
    NoSuchCpu,
    /// The CPU was already started.
    AlreadyStarted,
    /// The firmware refused to start it (its status code).
    Firmware(i32),
}

impl fmt::Display for StartCpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("this platform cannot start CPUs"),
            Self::NoSuchCpu => f.write_str("no such CPU (or it is the boot CPU)"),
            Self::AlreadyStarted => f.write_str("the CPU was already started"),
            Self::Firmware(status) => {
                write!(f, "the firmware refused to start the CPU (status {status})")
            }
        }
    }
}

/// [`install`] was called a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyInstalled;

impl fmt::Display for AlreadyInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a platform is already installed")
    }
}

static PLATFORM: spin::Once<&'static dyn Platform> = spin::Once::new();

/// Installs the platform the kernel runs on. Call once, before any other kernel API.
pub fn install(platform: &'static dyn Platform) -> Result<(), AlreadyInstalled> {
    let mut installed_now = false;
    PLATFORM.call_once(|| {
        installed_now = true;
        platform
    });
    if installed_now {
        Ok(())
    } else {
        Err(AlreadyInstalled)
    }
}

/// The installed platform.
///
/// # Panics
/// Without the `std` feature, if no platform was installed: that is a board bug found at the
/// first boot, not a runtime condition.
pub fn platform() -> &'static dyn Platform {
    #[cfg(any(test, feature = "std"))]
    {
        *PLATFORM.call_once(|| &host::HostPlatform)
    }
    #[cfg(not(any(test, feature = "std")))]
    {
        match PLATFORM.get() {
            Some(platform) => *platform,
            None => {
                panic!("spindle: no platform installed (call spindle::platform::install at boot)")
            }
        }
    }
}

/// A `core::fmt::Write` sink for the platform console.
#[derive(Debug, Default, Clone, Copy)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        platform().console_write(text.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut Console, args);
}

/// Prints to the platform console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::platform::print_args(format_args!($($arg)*)) };
}

/// Prints a line to the platform console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::platform::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(any(test, feature = "std"))]
pub mod host {
    //! The hosted platform: std time, threads as CPUs, park/unpark for idling.
    extern crate std;

    use super::Platform;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Platform for hosted builds: each OS thread is a "CPU".
    #[derive(Debug, Default, Clone, Copy)]
    pub struct HostPlatform;

    /// One host "CPU": its thread and its sticky wake-up flag.
    struct HostCpu {
        thread: std::thread::Thread,
        woken: AtomicBool,
        /// Set while the thread is (about to be) parked: only then does a wake-up need the
        /// unpark system call.
        parked: AtomicBool,
    }

    /// How long an idle thread spins on its wake flag before parking. A partner on another
    /// thread usually answers within a few microseconds, and parking costs a futex wait plus
    /// the waker's futex wake: spinning first turns a cross-thread rendezvous from tens of
    /// microseconds into about one.
    const IDLE_SPIN: Duration = Duration::from_micros(20);

    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);
    /// Every thread that has been a CPU, by CPU index (threads that ended stay: unparking them
    /// is harmless).
    static CPUS: Mutex<std::vec::Vec<Option<Arc<HostCpu>>>> = Mutex::new(std::vec::Vec::new());

    std::thread_local! {
        static THIS_CPU: (usize, Arc<HostCpu>) = register();
    }

    fn register() -> (usize, Arc<HostCpu>) {
        let index = NEXT_CPU.fetch_add(1, Ordering::Relaxed);
        let cpu = Arc::new(HostCpu {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
            parked: AtomicBool::new(false),
        });
        let mut cpus = CPUS.lock().unwrap_or_else(|poison| poison.into_inner());
        if cpus.len() <= index {
            cpus.resize(index + 1, None);
        }
        cpus[index] = Some(cpu.clone());
        (index, cpu)
    }

    /// Upper bound on host "CPUs" reported by [`Platform::cpu_count`].
    pub const HOST_MAX_CPUS: usize = 4096;

    impl Platform for HostPlatform {
        fn console_write(&self, bytes: &[u8]) {
            let _ = std::io::stdout().write_all(bytes);
        }

        fn now_ns(&self) -> u64 {
            let epoch = *EPOCH.get_or_init(Instant::now);
            u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }

        fn cpu_index(&self) -> usize {
            THIS_CPU.with(|(index, _)| *index)
        }

        fn cpu_count(&self) -> usize {
            HOST_MAX_CPUS
        }

        /// Spins briefly on the wake flag (20 µs, `IDLE_SPIN`), then parks the thread; a
        /// `wake_cpu` that came first makes it return at once (the flag, and park's own token,
        /// are sticky). Bounded to 50 ms without a deadline, so a lost wake-up could only cost
        /// latency.
        fn idle(&self, deadline_ns: Option<u64>) {
            THIS_CPU.with(|(_, me)| {
                if me.woken.swap(false, Ordering::AcqRel) {
                    return;
                }
                let timeout = match deadline_ns {
                    Some(deadline) => {
                        let now = self.now_ns();
                        if now >= deadline {
                            return;
                        }
                        Duration::from_nanos(deadline - now)
                    }
                    None => Duration::from_millis(50),
                };
                let started = Instant::now();
                let spin = IDLE_SPIN.min(timeout);
                while started.elapsed() < spin {
                    for _ in 0..32 {
                        core::hint::spin_loop();
                    }
                    if me.woken.swap(false, Ordering::AcqRel) {
                        return;
                    }
                }
                // Announce the park before the last look at the flag; `wake_cpu` sets the flag
                // before it looks at `parked` (both sequentially consistent), so at least one
                // side sees the other: no wake-up falls between them.
                me.parked.store(true, Ordering::SeqCst);
                if !me.woken.swap(false, Ordering::SeqCst) {
                    std::thread::park_timeout(timeout.saturating_sub(started.elapsed()));
                    me.woken.store(false, Ordering::Release);
                }
                me.parked.store(false, Ordering::Release);
            });
        }

        fn wake_cpu(&self, cpu: usize) {
            let target = CPUS
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .get(cpu)
                .and_then(Clone::clone);
            if let Some(target) = target {
                target.woken.store(true, Ordering::SeqCst);
                if target.parked.load(Ordering::SeqCst) {
                    target.thread.unpark();
                }
            }
        }

        fn exit(&self, success: bool) -> ! {
            std::process::exit(if success { 0 } else { 1 })
        }
    }
}
