//! The tasklet demo: a producer and a consumer tasklet on CPU 0 over channels, the squaring done
//! by a worker on CPU 1 when the machine has two (by a third tasklet on CPU 0 otherwise).

use core::sync::atomic::{AtomicU64, Ordering};
use spindle::channel::Channel;
use spindle::kprintln;
use spindle::platform::platform;
use spindle::tasklet::{self, Builder};

static WORK: Channel<u64> = Channel::new();
static RESULTS: Channel<(usize, u64)> = Channel::new();
static SQUARES_ON_CPU1: AtomicU64 = AtomicU64::new(0);

/// CPU 1's entry: squares what arrives on `WORK` until the channel fails, then idles.
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

/// Runs the tasklet demo once and prints what it saw on the console; `true` if the consumer got
/// every square (their sum, 55).
pub fn run_tasklet_demo() -> bool {
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
