//! The demo image (`cargo run`): boots, runs tasklets over channels (on two CPUs when there are
//! two), the mock-network echo demo with one client reset mid-transfer, and powers off.
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
    let tasklets_ok = demo::tasklets();
    spindle::kprintln!("");
    spindle::kprintln!("--- sockets: echo server and clients over the mock network ---");
    let sockets_ok =
        match spindle_drivers::mock_net::demo::run_echo_demo(&mut spindle::platform::Console) {
            Ok(report) => report.sockets_left == 0,
            Err(error) => {
                spindle::kprintln!("echo demo failed: {error}");
                false
            }
        };
    spindle_pseries::exit(tasklets_ok && sockets_ok)
}

#[cfg(target_arch = "powerpc64")]
mod demo {
    use core::sync::atomic::{AtomicU64, Ordering};
    use spindle::channel::Channel;
    use spindle::kprintln;
    use spindle::platform::platform;
    use spindle::tasklet::{self, Builder};

    static WORK: Channel<u64> = Channel::new();
    static RESULTS: Channel<(usize, u64)> = Channel::new();
    static SQUARES_ON_CPU1: AtomicU64 = AtomicU64::new(0);

    fn square_worker(_cpu: usize) -> ! {
        spindle_arch::powerpc64::irq::enable();
        while let Ok(value) = WORK.receive() {
            SQUARES_ON_CPU1.fetch_add(1, Ordering::Relaxed);
            if RESULTS
                .send((platform().cpu_index(), value * value))
                .is_err()
            {
                break;
            }
        }
        loop {
            platform().idle(None);
        }
    }

    /// Producer and consumer tasklets on CPU 0; squares computed by a tasklet on CPU 1.
    pub fn tasklets() -> bool {
        kprintln!("");
        kprintln!("--- tasklets: a producer, a consumer, and a worker on CPU 1 ---");
        let two_cpus = platform().cpu_count() >= 2 && tasklet::start_cpu(1, square_worker).is_ok();
        let producer = Builder::new()
            .name("producer")
            .spawn(move || {
                for value in 1..=5u64 {
                    WORK.send(value).map_err(|failure| failure.error)?;
                }
                Ok::<_, tasklet::TaskletError>(5)
            })
            .expect("spawn producer");
        let consumer = Builder::new()
            .name("consumer")
            .spawn(move || {
                let mut total = 0;
                for _ in 0..5 {
                    let (cpu, square) = RESULTS.receive()?;
                    kprintln!("  consumer: got {square} (squared on CPU {cpu})");
                    total += square;
                }
                Ok::<_, tasklet::TaskletError>(total)
            })
            .expect("spawn consumer");
        if !two_cpus {
            // One CPU: square here.
            Builder::new()
                .name("squarer")
                .spawn(|| {
                    for _ in 0..5 {
                        let value = WORK.receive()?;
                        RESULTS
                            .send((platform().cpu_index(), value * value))
                            .map_err(|failure| failure.error)?;
                    }
                    Ok::<_, tasklet::TaskletError>(())
                })
                .expect("spawn squarer");
        }
        let sent = producer.join();
        let total = consumer.join();
        kprintln!(
            "  producer sent {:?}; consumer total {:?} (expected 55); {} squared on CPU 1",
            sent,
            total,
            SQUARES_ON_CPU1.load(Ordering::Relaxed)
        );
        matches!(total, Ok(Ok(55)))
    }
}

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the demo image runs under QEMU: run `cargo run` at the repository root");
    std::process::exit(2);
}
