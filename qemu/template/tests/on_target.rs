//! On-target tests of this image: each runs in a fresh `qemu-system-ppc64 -M pseries`.
#![no_std]
#![no_main]

use spindle::channel::Channel;
use spindle::dict::{Dict, DictConfig};
use spindle::tasklet::{self, Builder, TaskletError};
use spindle_pseries::{Suite, TargetTest};

spindle_pseries::test_main!(&[Suite::new(
    "app",
    &[
        // Booted with two CPUs, and given 20 s instead of the runner's default.
        TargetTest::new(
            "channel_hands_values_between_tasklets",
            channel_hands_values_between_tasklets,
        )
        .cpus(2)
        .timeout_secs(20),
        TargetTest::new("tight_dict_keeps_every_entry", tight_dict_keeps_every_entry),
        TargetTest::new("failed_receive_is_reported", failed_receive_is_reported)
            .expect_panic("no sender"),
    ],
)]);

fn channel_hands_values_between_tasklets() {
    static VALUES: Channel<u32> = Channel::new();
    assert_eq!(spindle::platform::platform().cpu_count(), 2);
    let receiver = Builder::new()
        .spawn(|| {
            let mut sum = 0;
            for _ in 0..3 {
                sum += VALUES.receive()?;
            }
            Ok::<_, TaskletError>(sum)
        })
        .expect("spawn");
    for value in [1, 2, 3] {
        VALUES
            .send(value)
            .map_err(|failure| failure.error)
            .expect("send");
    }
    assert_eq!(receiver.join(), Ok(Ok(6)));
}

fn tight_dict_keeps_every_entry() {
    let mut dict = Dict::with_config(DictConfig::tight());
    for key in 0..1000u32 {
        assert_eq!(dict.insert(key, key * 3), None);
    }
    assert_eq!(dict.len(), 1000);
    assert!((0..1000u32).all(|key| dict.get(&key) == Some(&(key * 3))));
}

/// A receive with nobody to send is a deadlock error, not a hang: this test shows a test that is
/// expected to fail.
fn failed_receive_is_reported() {
    static NOBODY: Channel<u32> = Channel::new();
    let result = tasklet::run().and_then(|()| NOBODY.receive());
    result.expect("no sender");
}
