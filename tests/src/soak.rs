//! The soak on the target: `spindle::scenarios::soak` (the generator the host's
//! `cargo bench -p spindle --bench soak` runs) on four CPUs for a few seconds, over the mock
//! network, every value counted to its drop and the scheduler's invariants checked after every
//! operation. It prints its figures (see them with `cargo run -- test soak:: --cpus 4
//! --nocapture`); `SPINDLE_SOAK_SECONDS=N` at build time runs it for N seconds instead (give
//! `--timeout` room for it).

use crate::{Suite, TargetTest};
use core::time::Duration;
use spindle::kprintln;
use spindle::platform::platform;
use spindle::scenarios::soak::{Soak, SoakConfig};
use spindle::tasklet;
use spindle_arch::powerpc64::irq;
use spindle_drivers::mock_net::scenarios::soak_network;
use spindle_drivers::mock_net::MockDriver;

/// The soak suite.
pub const SUITE: Suite = Suite::new(
    "soak",
    &[
        TargetTest::new("random_programs_on_four_cpus", random_programs_on_four_cpus)
            .cpus(CPUS)
            .timeout_secs(60 + SECONDS as u32),
    ],
);

const CPUS: usize = 4;
const SEED: u64 = 19;
/// How long the soak starts rounds (4 s unless `SPINDLE_SOAK_SECONDS` says otherwise).
const SECONDS: u64 = match option_env!("SPINDLE_SOAK_SECONDS") {
    Some(text) => parse_seconds(text),
    None => 4,
};

const fn parse_seconds(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut value = 0u64;
    let mut index = 0;
    while index < bytes.len() {
        assert!(
            bytes[index].is_ascii_digit(),
            "SPINDLE_SOAK_SECONDS takes whole seconds"
        );
        value = value * 10 + (bytes[index] - b'0') as u64;
        index += 1;
    }
    value
}

/// The soak, for the secondary CPUs to find (set before they start).
static SOAK: spin::Once<&'static Soak<MockDriver>> = spin::Once::new();

fn soak_cpu(cpu: usize) -> ! {
    irq::enable();
    let soak = SOAK.get().expect("the soak is set before the CPUs start");
    soak.run_cpu(cpu);
    loop {
        platform().idle(None);
    }
}

fn random_programs_on_four_cpus() {
    let config = SoakConfig::new(CPUS, SEED, Duration::from_secs(SECONDS));
    let soak = Soak::new(config, Some(soak_network()));
    SOAK.call_once(|| soak);
    for cpu in 1..CPUS {
        tasklet::start_cpu(cpu, soak_cpu).expect("start a CPU");
    }
    soak.run_cpu(0);
    let report = soak.report();
    kprintln!("{report}");
    assert!(report.passed(), "{report}");
    assert!(
        report.values > 0 && report.cross_cpu > 0,
        "the soak moved values across CPUs"
    );
}
