//! Spindle's board for `qemu-system-ppc64 -M pseries`: boot, console, heap, panics, SMP, exit.
//!
//! The board wires the portable kernel to the machine: it parses the device tree QEMU passes at
//! boot, installs [`spindle::platform::Platform`] for pseries, owns the global allocator (a
//! `linked_list_allocator` heap over a fixed region), the panic handler and the crash report of
//! unexpected interrupts, and leaves QEMU with an exit status through RTAS.
//!
//! Images (`src/bin/`: `demo`, `test`, `bench`) name their main function with [`entry!`]; the
//! board runs it on CPU 0 after boot with interrupts enabled and the decrementer ticking.
//!
//! Everything here is bare-metal only: on other targets (a host `cargo build --workspace`) the
//! crate is empty and the image binaries print how to run them.
#![cfg(target_os = "none")]
#![no_std]
// This crate provides memcpy and friends: keep LLVM from compiling their loops into calls to them.
#![no_builtins]
#![forbid(unsafe_op_in_unsafe_fn)]

mod board;
mod console;
mod failure;
mod heap;
mod mem;
mod platform;
pub mod smp;

pub use board::{board, exit, Board};
pub use heap::HeapStats;

/// Heap size used when the image is built without `SPINDLE_HEAP_SIZE` (a byte count; the
/// runner's `--heap` sets it).
pub const DEFAULT_HEAP_BYTES: usize = 4 << 20;

/// Names the image's main function: the board calls it on CPU 0 once the machine is up.
///
/// ```text
/// spindle_pseries::entry!(main);
/// fn main() -> ! { spindle::kprintln!("hello"); spindle_pseries::exit(true) }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The image's main function, called by the board after boot.
        #[unsafe(no_mangle)]
        pub fn spindle_image_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }
    };
}
