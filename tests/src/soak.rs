//! The soak on the target: `spindle::scenarios::soak` (the generator the host's
//! `cargo bench -p spindle --bench soak` runs) on four CPUs for a few seconds, over the mock
//! network, every value counted to its drop and the scheduler's invariants checked after every
//! operation. It prints its figures (see them with `cargo run -- test soak:: --cpus 4
//! --nocapture`); `SPINDLE_SOAK_SECONDS=N` at build time runs it for N seconds instead (give
//! `--timeout` room for it).

use crate::{Suite, TargetTest};
use alloc::boxed::Box;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use spindle::kprintln;
use spindle::net::{Net, NetConfig};
use spindle::platform::platform;
use spindle::scenarios::soak::{NetFault, Soak, SoakConfig, SoakNet};
use spindle::tasklet;
use spindle_arch::powerpc64::irq;
use spindle_drivers::mock_net::{Fault, MockConfig, MockDriver, MockNet};

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

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 7);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The soak, for the secondary CPUs to find (set before they start).
static SOAK: spin::Once<&'static Soak<MockDriver>> = spin::Once::new();

fn network() -> SoakNet<MockDriver> {
    let network = MockNet::new(MockConfig {
        max_sockets: 256,
        ..MockConfig::default()
    })
    .expect("mock network");
    let server = Net::new(network.host(*SERVER.ip()), NetConfig::default()).expect("server net");
    let client = Net::new(network.host(CLIENT), NetConfig::default()).expect("client net");
    let listener = server.socket().expect("listener");
    listener.bind(SERVER).expect("bind");
    listener.listen(16).expect("listen");
    SoakNet {
        listener,
        address: SERVER,
        client,
        inject: Box::new(move |fault| {
            network.inject(match fault {
                NetFault::ResetLatest => Fault::Reset {
                    conn: network.stats().connections.saturating_sub(1),
                },
                NetFault::ResetAll => Fault::ResetAll,
                NetFault::PartialWrites(limit) => Fault::PartialWrites { limit },
                NetFault::RefuseConnect => Fault::RefuseConnects { count: 1 },
            })
        }),
    }
}

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
    let soak = Soak::new(config, Some(network()));
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
