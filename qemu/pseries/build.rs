//! Hands the board's link script to the link of every image that depends on this crate.
//!
//! lld reads an input file that is neither an object nor an archive as a linker script, and
//! treats it exactly as one given with `-T` (this is how a C library's `libc.so` script works).
//! So the script is offered as a library that the linker finds in this crate's `OUT_DIR`: an
//! image needs no `-T` flag and no path into this crate.
use std::path::PathBuf;

/// The library name the script goes by (`-l` finds `lib<NAME>.a`).
const SCRIPT_LIBRARY: &str = "spindle_pseries_link";

fn main() {
    println!("cargo::rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("powerpc64") {
        return; // only the macros exist elsewhere: nothing to link
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out_dir.join(format!("lib{SCRIPT_LIBRARY}.a"));
    if let Err(err) = std::fs::copy("link.ld", &script) {
        panic!("cannot copy link.ld to {}: {err}", script.display());
    }
    println!("cargo::rustc-link-search=native={}", out_dir.display());
    // Not bundled into the rlib (it is no archive): the final link gets `-l` and reads the script.
    println!("cargo::rustc-link-lib=static:-bundle={SCRIPT_LIBRARY}");
}
