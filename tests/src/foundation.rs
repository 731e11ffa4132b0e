//! Foundation tests: console, heap, time, decrementer, device tree, SMP, idle and crash reports.

use crate::protocol::{read_line, INPUT};
use crate::{env, Suite, TargetTest};
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use spindle::platform::{platform, StartCpuError};
use spindle_arch::powerpc64::{irq, timebase, timer};
use spindle_drivers::hcall;
use spindle_drivers::hvterm::HvTerm;
use spindle_drivers::rtas::Rtas;

/// The foundation suite.
pub const SUITE: Suite = Suite::new(
    "foundation",
    &[
        TargetTest::new("console_round_trip", console_round_trip),
        TargetTest::new("heap_alloc_and_reuse", heap_alloc_and_reuse),
        TargetTest::new(
            "heap_exhaustion_is_an_error_value",
            heap_exhaustion_is_an_error_value,
        ),
        TargetTest::new(
            "heap_infallible_exhaustion_panics_clearly",
            heap_infallible_exhaustion_panics_clearly,
        )
        .expect_panic("memory allocation of"),
        TargetTest::new("timebase_is_monotonic", timebase_is_monotonic),
        TargetTest::new(
            "timebase_matches_the_wall_clock",
            timebase_matches_the_wall_clock,
        ),
        TargetTest::new("decrementer_ticks_at_100_hz", decrementer_ticks_at_100_hz),
        TargetTest::new(
            "decrementer_preserves_interrupted_registers",
            decrementer_preserves_interrupted_registers,
        ),
        TargetTest::new("preempt_deadline_fires_once", preempt_deadline_fires_once),
        TargetTest::new(
            "masked_interrupts_hold_off_the_tick",
            masked_interrupts_hold_off_the_tick,
        ),
        TargetTest::new(
            "idle_sleeps_until_deadline_or_wake",
            idle_sleeps_until_deadline_or_wake,
        ),
        TargetTest::new(
            "device_tree_matches_the_qemu_command_line",
            device_tree_matches_the_qemu_command_line,
        )
        .cpus(2),
        TargetTest::new(
            "secondary_cpu_starts_and_reports_in",
            secondary_cpu_starts_and_reports_in,
        )
        .cpus(2),
        TargetTest::new(
            "wake_cpu_ends_an_idle_on_another_cpu",
            wake_cpu_ends_an_idle_on_another_cpu,
        )
        .cpus(2),
        TargetTest::new(
            "unexpected_exception_prints_a_crash_report",
            unexpected_exception_prints_a_crash_report,
        )
        .expect_panic("unexpected exception 0x700 (program: illegal instruction)"),
        TargetTest::new(
            "system_reset_after_boot_is_a_crash",
            system_reset_after_boot_is_a_crash,
        )
        .expect_panic("unexpected exception 0x100 (system reset)"),
    ],
);

const MS: u64 = 1_000_000;

/// Spins until `done()` holds or `timeout_ns` passes on the platform clock; returns `done()`.
fn wait_until(timeout_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = platform().now_ns() + timeout_ns;
    while platform().now_ns() < deadline {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    done()
}

fn spin_for(ns: u64) {
    let _ = wait_until(ns, || false);
}

fn console_round_trip() {
    let token = env::get().config.token;
    let mut term = HvTerm::console();
    let mut line = [0u8; 64];
    let len = read_line(&mut term, &mut line).expect("reading the input line from the console");
    let expected = format!("{INPUT}{token:x}");
    assert_eq!(
        core::str::from_utf8(&line[..len]),
        Ok(expected.as_str()),
        "console input"
    );
    let written =
        embedded_io::Write::write_all(&mut term, b"console: embedded_io::Write reached the host\n");
    assert!(written.is_ok(), "console output failed: {written:?}");
}

fn heap_alloc_and_reuse() {
    let numbers: Vec<u64> = (0..10_000).collect();
    assert_eq!(numbers.iter().sum::<u64>(), 49_995_000);
    let page = Box::new([7u8; 4096]);
    assert!(page.iter().all(|&byte| byte == 7));
    assert_eq!(format!("{}-{}", "spindle", 42), "spindle-42");
    drop((numbers, page));
    // Fixed memory is reused: three quarters of the heap, ten times over.
    let big = env::get().heap_bytes / 4 * 3;
    for round in 0..10 {
        let mut block: Vec<u8> = Vec::new();
        assert!(
            block.try_reserve_exact(big).is_ok(),
            "round {round}: {big} bytes not available again"
        );
        block.push(1);
    }
}

fn heap_exhaustion_is_an_error_value() {
    let heap_bytes = env::get().heap_bytes;
    let mut too_big: Vec<u8> = Vec::new();
    let err = too_big
        .try_reserve_exact(heap_bytes + 1)
        .expect_err("more than the whole heap cannot be allocated");
    let text = format!("{err}");
    assert!(
        text.contains("memory allocator returned an error"),
        "unexpected error: {text}"
    );
    let mut half: Vec<u8> = Vec::new();
    assert!(
        half.try_reserve_exact(heap_bytes / 2).is_ok(),
        "the heap is unusable after a failure"
    );
}

fn heap_infallible_exhaustion_panics_clearly() {
    let too_big: Vec<u8> = Vec::with_capacity(env::get().heap_bytes * 2);
    core::hint::black_box(&too_big);
}

fn timebase_is_monotonic() {
    let (mut last_tb, mut last_ns) = (timebase::read(), platform().now_ns());
    for _ in 0..10_000 {
        let (tb, ns) = (timebase::read(), platform().now_ns());
        assert!(
            tb >= last_tb && ns >= last_ns,
            "clock went back: tb {last_tb} -> {tb}, ns {last_ns} -> {ns}"
        );
        (last_tb, last_ns) = (tb, ns);
    }
}

fn timebase_matches_the_wall_clock() {
    let rtas = Rtas::new(env::get().machine.rtas);
    let (wall0, mono0) = (
        rtas.time_of_day().expect("get-time-of-day"),
        platform().now_ns(),
    );
    spin_for(300 * MS);
    let (wall1, mono1) = (
        rtas.time_of_day().expect("get-time-of-day"),
        platform().now_ns(),
    );
    let wall = wall1.unix_ns() - wall0.unix_ns();
    let mono = i128::from(mono1 - mono0);
    assert!(
        wall * 4 >= mono * 3 && wall * 3 <= mono * 4,
        "timebase says {mono} ns passed, the wall clock {wall} ns: wrong timebase frequency?"
    );
}

fn decrementer_ticks_at_100_hz() {
    assert!(irq::enabled(), "tests run with interrupts enabled");
    let timer = timer::current();
    let (before, start) = (timer.ticks(), platform().now_ns());
    assert!(
        wait_until(2000 * MS, || timer.ticks() >= before + 10),
        "fewer than 10 ticks in 2 s"
    );
    let elapsed = platform().now_ns() - start;
    assert!(
        elapsed >= 85 * MS,
        "10 ticks took only {elapsed} ns: faster than 100 Hz"
    );
}

/// Sentinel for GPR `n` in [`decrementer_preserves_interrupted_registers`] (matches the asm).
const fn gpr_sentinel(n: u64) -> u64 {
    ((((0x5e00 + n) << 16) | (0x100 * n)) << 32) | ((0xa500 + n) << 16) | (0xf0 + n)
}

fn decrementer_preserves_interrupted_registers() {
    // vs0-vs13 then vs32-vs51 (v0-v19): the vector registers the handler must restore.
    let mut vectors_in = [[0u64; 2]; 34];
    for (i, v) in vectors_in.iter_mut().enumerate() {
        *v = [
            0x5eed_0000_0000_0000 | (i as u64) << 8 | 1,
            0xa5a5_0000_0000_0000 | i as u64,
        ];
    }
    // r5, r7-r12, CTR, CR, XER, then the 34 vector registers.
    let mut out = [0u64; 10 + 68];
    let counter = timer::current().tick_counter();
    let before = counter.load(Relaxed);
    // SAFETY: loads sentinels into volatile registers (all declared clobbered by clobber_abi, the
    // CR fields written are the volatile cr1/cr5-cr7), spins until the decrementer handler has
    // bumped the tick counter, i.e. has interrupted this loop, then stores the registers to
    // `out`, which is large enough (10 words + 34 * 16 bytes).
    unsafe {
        core::arch::asm!(
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51",
            "    lxvd2x \\n, 0, 5",
            "    addi 5, 5, 16",
            ".endr",
            ".irp n, 5,7,8,9,10,11,12",
            "    lis \\n, 0x5e00 + \\n",
            "    ori \\n, \\n, 0x100 * \\n",
            "    sldi \\n, \\n, 32",
            "    oris \\n, \\n, 0xa500 + \\n",
            "    ori \\n, \\n, 0xf0 + \\n",
            ".endr",
            "    lis 0, 0x5ecc",
            "    ori 0, 0, 0x1234",
            "    mtctr 0",
            "    lis 0, 0x0a00",
            "    ori 0, 0, 0x0bcd",
            "    mtcrf 0x47, 0",
            "    lis 0, 0x2000",
            "    ori 0, 0, 0x0045",
            "    mtxer 0",
            "1:  ld 0, 0(3)",
            "    cmpld 0, 4",
            "    beq 1b",
            "    std 5, 0(6)",
            "    std 7, 8(6)",
            "    std 8, 16(6)",
            "    std 9, 24(6)",
            "    std 10, 32(6)",
            "    std 11, 40(6)",
            "    std 12, 48(6)",
            "    mfctr 0",
            "    std 0, 56(6)",
            "    mfcr 0",
            "    std 0, 64(6)",
            "    mfxer 0",
            "    std 0, 72(6)",
            "    addi 6, 6, 80",
            ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51",
            "    stxvd2x \\n, 0, 6",
            "    addi 6, 6, 16",
            ".endr",
            in("r3") counter.as_ptr(),
            in("r4") before,
            in("r5") vectors_in.as_ptr(),
            in("r6") out.as_mut_ptr(),
            clobber_abi("C"),
        );
    }
    assert_ne!(
        counter.load(Relaxed),
        before,
        "the decrementer never interrupted the loop"
    );
    for (slot, reg) in [5u64, 7, 8, 9, 10, 11, 12].iter().enumerate() {
        assert_eq!(
            out[slot],
            gpr_sentinel(*reg),
            "r{reg} changed across the interrupt"
        );
    }
    assert_eq!(out[7], 0x5ecc_1234, "CTR changed across the interrupt");
    assert_eq!(
        out[8] & 0x0f00_0fff,
        0x0a00_0bcd,
        "CR1/CR5-CR7 changed across the interrupt"
    );
    assert_eq!(
        out[9] & 0xe000_007f,
        0x2000_0045,
        "XER changed across the interrupt"
    );
    for (i, expected) in vectors_in.iter().enumerate() {
        let got = [out[10 + 2 * i], out[11 + 2 * i]];
        let reg = if i < 14 { i } else { i + 18 };
        assert_eq!(got, *expected, "vs{reg} changed across the interrupt");
    }
}

fn preempt_deadline_fires_once() {
    let timer = timer::current();
    let before = timer.deadlines();
    let deadline = platform().now_ns() + 5 * MS;
    platform().set_preempt_deadline(Some(deadline));
    assert!(
        wait_until(1000 * MS, || timer.deadlines() > before),
        "the deadline never fired"
    );
    assert!(
        timer.last_deadline_tb() >= timer::ns_to_timebase(deadline),
        "the deadline fired early"
    );
    spin_for(50 * MS);
    assert_eq!(
        timer.deadlines(),
        before + 1,
        "a one-shot deadline fired more than once"
    );
    platform().set_preempt_deadline(Some(platform().now_ns() + 5 * MS));
    platform().set_preempt_deadline(None);
    spin_for(30 * MS);
    assert_eq!(timer.deadlines(), before + 1, "a disarmed deadline fired");
    assert!(platform().preempts());
}

fn masked_interrupts_hold_off_the_tick() {
    let timer = timer::current();
    assert!(irq::disable(), "interrupts were not enabled");
    let before = timer.ticks();
    spin_for(50 * MS);
    assert_eq!(timer.ticks(), before, "a tick arrived with MSR[EE] clear");
    assert!(
        !irq::disable(),
        "a nested disable must report interrupts were off"
    );
    irq::restore(false);
    assert!(!irq::enabled());
    irq::restore(true);
    assert!(irq::enabled());
    assert!(
        wait_until(20 * MS, || timer.ticks() > before),
        "the pending tick was lost"
    );
}

fn idle_sleeps_until_deadline_or_wake() {
    let start = platform().now_ns();
    let deadline = start + 50 * MS;
    let mut rounds = 0;
    while platform().now_ns() < deadline {
        platform().idle(Some(deadline));
        rounds += 1;
        // Spurious returns are allowed, but only about one per 10 ms tick, not a busy loop.
        assert!(
            rounds <= 10,
            "idle returned {rounds} times in 50 ms: it does not wait"
        );
    }
    // Without a tick, only the deadline or a wake-up ends an idle.
    timer::set_tick_hz(0);
    let start = platform().now_ns();
    platform().idle(Some(start + 100 * MS));
    let slept = platform().now_ns() - start;
    assert!(
        slept >= 100 * MS,
        "idle returned after {slept} ns, before its deadline"
    );
    platform().wake_cpu(platform().cpu_index());
    let start = platform().now_ns();
    platform().idle(Some(start + 2000 * MS));
    let slept = platform().now_ns() - start;
    assert!(
        slept < 1000 * MS,
        "a pending wake-up did not end the idle ({slept} ns)"
    );
    assert!(irq::enabled(), "idle must restore the interrupt state");
}

fn device_tree_matches_the_qemu_command_line() {
    let env = env::get();
    let machine = env.machine;
    assert_eq!(
        machine.memory_bytes, env.config.memory_bytes,
        "memory size (-m)"
    );
    assert_eq!(
        machine.cpu_servers.len(),
        env.config.cpus,
        "CPU count (-smp)"
    );
    assert_eq!(platform().cpu_count(), env.config.cpus);
    assert!(machine.rma_bytes > 0 && machine.rma_bytes <= machine.memory_bytes);
    assert_eq!(
        timer::frequency().map(|f| f.hz()),
        Some(machine.timebase_hz)
    );
    let tokens = machine.rtas;
    assert!(
        tokens.power_off.is_some() && tokens.os_term.is_some() && tokens.start_cpu.is_some(),
        "{tokens:?}"
    );
}

static REPORTED_INDEX: AtomicUsize = AtomicUsize::new(usize::MAX);
static SECONDARY_TICKS: AtomicU64 = AtomicU64::new(0);

fn report_in(index: usize) -> ! {
    let reported = if platform().cpu_index() == index {
        index
    } else {
        usize::MAX - 1
    };
    REPORTED_INDEX.store(reported, Release);
    irq::enable();
    loop {
        SECONDARY_TICKS.store(timer::current().ticks(), Relaxed);
        platform().idle(None);
    }
}

fn secondary_cpu_starts_and_reports_in() {
    assert_eq!(
        platform().start_cpu(0, report_in),
        Err(StartCpuError::NoSuchCpu)
    );
    assert_eq!(
        platform().start_cpu(2, report_in),
        Err(StartCpuError::NoSuchCpu)
    );
    assert_eq!(platform().start_cpu(1, report_in), Ok(()));
    assert!(
        wait_until(2000 * MS, || REPORTED_INDEX.load(Acquire) != usize::MAX),
        "CPU 1 never ran its entry"
    );
    assert_eq!(
        REPORTED_INDEX.load(Acquire),
        1,
        "CPU 1's cpu_index() disagrees with its entry argument"
    );
    assert_eq!(
        platform().start_cpu(1, report_in),
        Err(StartCpuError::AlreadyStarted)
    );
    assert!(
        wait_until(2000 * MS, || SECONDARY_TICKS.load(Relaxed) >= 3),
        "CPU 1's decrementer does not tick"
    );
    assert_eq!(platform().cpu_index(), 0);
}

static IDLING: AtomicBool = AtomicBool::new(false);
static WAKE_UPS: AtomicU64 = AtomicU64::new(0);

fn idle_without_tick(_: usize) -> ! {
    timer::set_tick_hz(0);
    irq::enable();
    loop {
        IDLING.store(true, Release);
        platform().idle(None);
        WAKE_UPS.fetch_add(1, AcqRel);
    }
}

fn wake_cpu_ends_an_idle_on_another_cpu() {
    assert_eq!(platform().start_cpu(1, idle_without_tick), Ok(()));
    assert!(
        wait_until(2000 * MS, || IDLING.load(Acquire)),
        "CPU 1 never started idling"
    );
    spin_for(20 * MS);
    let before = WAKE_UPS.load(Acquire);
    spin_for(100 * MS);
    assert_eq!(
        WAKE_UPS.load(Acquire),
        before,
        "CPU 1 left idle with nobody waking it"
    );
    // Back to back, so wake-ups also land while CPU 1 is between checking its flag and ceding.
    for round in 1..=200 {
        platform().wake_cpu(1);
        let woken = wait_until(1000 * MS, || WAKE_UPS.load(Acquire) >= before + round);
        assert!(woken, "wake-up {round} did not end CPU 1's idle");
    }
}

fn unexpected_exception_prints_a_crash_report() {
    // SAFETY: executes an illegal instruction on purpose: the program-interrupt vector reports
    // it and ends the run; nothing after it runs.
    unsafe { core::arch::asm!(".long 0", options(nomem, nostack)) };
}

fn system_reset_after_boot_is_a_crash() {
    let server = u64::from(env::get().machine.cpu_servers[platform().cpu_index()]);
    // SAFETY: H_SIGNAL_SYS_RESET takes a CPU number, no addresses. The reset interrupt arrives at
    // 0x100 on this CPU, which must report it as a crash and end the run.
    let (status, _) =
        unsafe { hcall::hcall(hcall::H_SIGNAL_SYS_RESET, [server, 0, 0, 0, 0, 0, 0, 0]) };
    panic!("the system reset hcall returned (status {status}) instead of interrupting");
}
