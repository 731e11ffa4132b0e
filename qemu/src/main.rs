//! Builds Spindle's PowerPC64 images and boots them in QEMU.
fn main() {}
