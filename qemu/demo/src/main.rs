//! The demo image (`cargo run` at the repository root): boots, runs tasklets over channels (on
//! two CPUs when there are two), the mock-network echo demo with one client reset mid-transfer,
//! and powers off. An image crate as a user writes one (`qemu/template/`): `entry!` names `main`,
//! the board `spindle-pseries` brings the rest.
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

#[cfg(target_arch = "powerpc64")]
spindle_pseries::entry!(main);

#[cfg(target_arch = "powerpc64")]
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
    let tasklets_ok = spindle_demo::tasklets::run_tasklet_demo();
    spindle::kprintln!("");
    spindle::kprintln!("--- sockets: echo server and clients over the mock network ---");
    let sockets_ok = match spindle_demo::echo::run_echo_demo(&mut spindle::platform::Console) {
        Ok(report) => report.sockets_left == 0,
        Err(error) => {
            spindle::kprintln!("echo demo failed: {error}");
            false
        }
    };
    spindle_pseries::exit(tasklets_ok && sockets_ok)
}

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the demo image runs under QEMU: run `cargo run` at the repository root");
    std::process::exit(2);
}
