//! The demo image (`cargo run`): boots, shows the platform, and powers off.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
spindle_pseries::entry!(main);

#[cfg(target_os = "none")]
fn main() -> ! {
    use spindle::platform::platform;
    let platform = platform();
    spindle::kprintln!("");
    spindle::kprintln!("=== Spindle demo: the kernel is up ===");
    spindle::kprintln!(
        "running on CPU {} of {}; uptime {} us",
        platform.cpu_index(),
        platform.cpu_count(),
        platform.now_ns() / 1000
    );
    spindle::kprintln!("(tasklets will be spawned here once the scheduler lands)");
    spindle_pseries::exit(true)
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the demo image runs under QEMU: run `cargo run` at the repository root");
    std::process::exit(2);
}
