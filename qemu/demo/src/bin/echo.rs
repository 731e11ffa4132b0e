//! The echo image (`cargo run -- echo --net 5555:7`): a TCP echo server on the pseries NIC,
//! serving until the machine is stopped (Ctrl-C).
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

#[cfg(target_arch = "powerpc64")]
spindle_pseries::entry!(main);

#[cfg(target_arch = "powerpc64")]
fn main() -> ! {
    let error = spindle_demo::net_echo::serve().err();
    spindle::kprintln!("echo: {}", error.unwrap_or("stopped"));
    spindle_pseries::exit(false)
}

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the echo image runs under QEMU: run `cargo run -- echo --net 5555:7`");
    std::process::exit(2);
}
