//! A Spindle image: two tasklets over a channel and a tight dict, on `qemu-system-ppc64 -M pseries`.
#![no_std]
#![no_main]

use spindle::channel::Channel;
use spindle::dict::{Dict, DictConfig};
use spindle::kprintln;
use spindle::tasklet::{Builder, TaskletError};

spindle_pseries::entry!(main);

static NUMBERS: Channel<u64> = Channel::new();

fn main() -> ! {
    kprintln!("hello from my Spindle image");
    let producer = Builder::new()
        .name("producer")
        .spawn(|| {
            for n in 1..=10 {
                NUMBERS.send(n).map_err(|failure| failure.error)?;
            }
            Ok::<_, TaskletError>(())
        })
        .expect("spawn the producer");
    let consumer = Builder::new()
        .name("consumer")
        .spawn(|| {
            let mut squares = Dict::with_config(DictConfig::tight());
            for _ in 0..10 {
                let n = NUMBERS.receive()?;
                squares.insert(n, n * n);
            }
            Ok::<_, TaskletError>(squares)
        })
        .expect("spawn the consumer");
    let sent = producer.join();
    let squares = match consumer.join() {
        Ok(Ok(squares)) => squares,
        other => {
            kprintln!("the consumer failed: {other:?}");
            spindle_pseries::exit(false)
        }
    };
    let total: u64 = squares.values().sum();
    kprintln!(
        "producer: {sent:?}; consumer: {} squares in a tight dict, sum {total}, 7 -> {:?}",
        squares.len(),
        squares.get(&7)
    );
    spindle_pseries::exit(matches!(sent, Ok(Ok(()))) && total == 385)
}
