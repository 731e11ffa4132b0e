//! Spindle's on-target test suites: test functions compiled into kernel images.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
