//! Spindle's board for qemu-system-ppc64 -M pseries.
#![no_std]
