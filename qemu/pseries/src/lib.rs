//! Spindle's board for `qemu-system-ppc64 -M pseries`: the runtime crate a PowerPC64 image links.
//!
//! This crate plays the role `cortex-m-rt` plays for Cortex-M. An image is a `#![no_std]`,
//! `#![no_main]` crate that names its main function with [`entry!`]; the board brings everything
//! else: the reset vector and boot code (from `spindle-arch`), the link script (its build script
//! hands it to the linker), the device-tree parse, the global allocator (a `linked_list_allocator`
//! heap over a fixed region), the panic handler and the crash report of unexpected interrupts,
//! the [`spindle::platform::Platform`] for pseries, secondary CPUs, and leaving QEMU with an exit
//! status through RTAS (`exit`). [`test_main!`] turns a crate's test target into an on-target
//! test harness that `spindle-qemu` runs one fresh machine per test.
//!
//! The examples here are not host doc-tests (they are bare-metal images); `qemu/template/` is
//! the same code, built and booted by Spindle's `cargo test` in the dev and release profiles.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! spindle_pseries::entry!(main);
//!
//! fn main() -> ! {
//!     spindle::kprintln!("hello from pseries");
//!     spindle_pseries::exit(true)
//! }
//! ```
//!
//! Build with the `.cargo/config.toml` block of `qemu/template/` (target
//! `powerpc64-unknown-linux-musl`, `rust-lld`, static relocation, `panic=abort`) and
//! `runner = "spindle-qemu run"`: then `cargo run` boots the image and `cargo test` runs its
//! on-target tests. On other targets the crate holds only the macros, so its docs build anywhere.
#![no_std]
// This crate provides memcpy and friends: keep LLVM from compiling their loops into calls to them.
#![no_builtins]
#![forbid(unsafe_op_in_unsafe_fn)]

/// Declares items that exist only on PowerPC64, the board's CPU.
macro_rules! on_pseries {
    ($($item:item)*) => { $( #[cfg(target_arch = "powerpc64")] $item )* };
}

on_pseries! {
    mod board;
    mod console;
    mod failure;
    mod heap;
    mod mem;
    mod platform;
    pub mod smp;
    pub mod testing;

    pub use board::{board, exit, Board};
    pub use heap::{stats as heap_stats, HeapStats};
}

/// The registry of on-target tests, for [`test_main!`] (re-exported from `spindle_test`).
pub use spindle_test::{Expect, Suite, TargetTest};

/// Heap size used when the image is built without `SPINDLE_HEAP_SIZE` (a byte count; the
/// runner's `--heap` sets it).
pub const DEFAULT_HEAP_BYTES: usize = 4 << 20;

/// Names the image's main function: the board calls it on CPU 0 once the machine is up, with
/// the heap, the platform, the console and the timer tick in place.
///
/// The function never returns: it ends the run with `spindle_pseries::exit` (`exit(true)` powers
/// QEMU off with status 0; a panic ends it with status 1).
///
/// ```ignore
/// #![no_std]
/// #![no_main]
///
/// spindle_pseries::entry!(main);
///
/// fn main() -> ! {
///     spindle::kprintln!("hello");
///     spindle_pseries::exit(true)
/// }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The image's main function, called by the board after boot.
        #[unsafe(no_mangle)]
        pub extern "C" fn spindle_image_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }
    };
}

/// Makes this image an on-target test harness over `suites` (a `&'static [Suite]`).
///
/// The image answers the host runner (`spindle-qemu run`, the cargo runner): it lists its tests,
/// or runs the one the runner names and powers off. A test passes by returning and fails by
/// panicking (or crashing); [`TargetTest::expect_panic`] and [`TargetTest::expect_hang`] say
/// otherwise, [`TargetTest::cpus`] boots it with more CPUs. Put it in a test target with
/// `harness = false`, so `cargo test` builds it and runs it through the runner.
///
/// ```ignore
/// #![no_std]
/// #![no_main]
///
/// use spindle_pseries::{Suite, TargetTest};
///
/// spindle_pseries::test_main!(&[Suite::new(
///     "arith",
///     &[
///         TargetTest::new("adds", adds),
///         TargetTest::new("overflow_panics", overflow_panics).expect_panic("overflow"),
///     ],
/// )]);
///
/// fn adds() {
///     assert_eq!(core::hint::black_box(2) + 2, 4);
/// }
///
/// fn overflow_panics() {
///     core::hint::black_box(250u8).checked_add(10).expect("overflow");
/// }
/// ```
#[macro_export]
macro_rules! test_main {
    ($suites:expr) => {
        $crate::entry!(spindle_test_harness_main);

        fn spindle_test_harness_main() -> ! {
            // A constant, so the suites written in place are promoted to statics.
            const SUITES: &[$crate::Suite] = $suites;
            $crate::testing::run(SUITES)
        }
    };
}
