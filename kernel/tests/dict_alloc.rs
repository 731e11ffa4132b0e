//! Dict under a counting allocator that can fail: footprints are exact, and a failed `try_`
//! leaves the dict as it was.
//!
//! Its own test binary because it installs a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use spindle::dict::{Dict, DictConfig, Fraction, ShrinkPolicy, TryReserveError};

thread_local! {
    /// Allocations this thread may still make before every further one fails (`usize::MAX`:
    /// unlimited). Per thread, so the test harness's own threads are never refused.
    static ALLOWANCE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Bytes this thread holds.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// Refusals made, across threads: proves the injection happens at all.
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Whether the allocation being asked for is refused.
fn refuse() -> bool {
    ALLOWANCE
        .try_with(|a| match a.get() {
            0 => true,
            usize::MAX => false,
            n => {
                a.set(n - 1);
                false
            }
        })
        .unwrap_or(false)
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

struct Failing;

// SAFETY: every call forwards to `System` with the caller's arguments unchanged, or returns null
// (a refusal, which `GlobalAlloc` permits); the bookkeeping touches only const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refuse() {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refuse() {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `realloc` is `System.realloc`'s.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Failing = Failing;

/// Runs `f` with the `k`-th allocation (1-based) and all later ones refused.
fn failing_from<T>(k: usize, f: impl FnOnce() -> T) -> T {
    ALLOWANCE.with(|a| a.set(k - 1));
    let out = f();
    ALLOWANCE.with(|a| a.set(usize::MAX));
    out
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

type D = Dict<u64, u64>;

/// Everything observable about a dict's state.
fn snapshot(d: &D) -> (Vec<(u64, u64)>, usize, usize) {
    (
        d.iter().map(|(k, v)| (*k, *v)).collect(),
        d.slots(),
        d.footprint(),
    )
}

#[test]
fn footprint_is_what_the_allocator_counts() {
    for (name, config) in DictConfig::PROFILES {
        let before = live();
        let mut d: D = Dict::with_config(config);
        for n in 0..3000u64 {
            let heap = (live() - before) as usize;
            assert_eq!(
                d.footprint(),
                std::mem::size_of::<D>() + heap,
                "{name} at n = {n}"
            );
            d.insert(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n);
        }
        for n in 0..2990u64 {
            d.remove(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        d.shrink_to_fit();
        assert_eq!(
            d.footprint(),
            std::mem::size_of::<D>() + (live() - before) as usize,
            "{name}"
        );
        drop(d);
        assert_eq!(live(), before, "{name} leaked");
    }
}

#[test]
fn a_refused_growth_changes_nothing_and_hands_back_the_entry() {
    for (name, config) in DictConfig::PROFILES {
        let mut d: D = Dict::with_config(config);
        let mut refusals = 0;
        for n in 0..500u64 {
            let before = snapshot(&d);
            match failing_from(1, || d.try_insert(n, !n)) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("{name}: {n} was not present"),
                Err(e) => {
                    refusals += 1;
                    assert!(matches!(e.error, TryReserveError::OutOfMemory { .. }));
                    assert_eq!((e.key, e.value), (n, !n));
                    assert_eq!(snapshot(&d), before, "{name}: state changed at {n}");
                    assert_eq!(d.try_insert(n, !n).map_err(|e| e.error), Ok(None));
                }
            }
            // Replacing never allocates.
            assert_eq!(
                failing_from(1, || d.try_insert(n, n)).map_err(|e| e.error),
                Ok(Some(!n))
            );
        }
        assert!(
            refusals >= 5,
            "{name}: only {refusals} inserts needed memory"
        );
        assert!((0..500).all(|n| d.get(&n) == Some(&n)));
        // A refused reservation or shrink changes nothing either.
        let before = snapshot(&d);
        assert!(failing_from(1, || d.try_reserve(10_000)).is_err());
        assert_eq!(snapshot(&d), before);
        for n in 0..400 {
            d.remove(&n);
        }
        let before = snapshot(&d);
        assert!(failing_from(1, || d.try_shrink_to_fit()).is_err());
        assert_eq!(snapshot(&d), before);
        d.try_shrink_to_fit().unwrap();
        assert!(d.slots() < before.1);
    }
    assert!(REFUSED.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_huge_reservation_is_an_error_not_a_crash() {
    for (_, config) in DictConfig::PROFILES {
        let mut d: D = Dict::with_config(config);
        d.insert(1, 1);
        let before = snapshot(&d);
        assert_eq!(
            d.try_reserve(usize::MAX),
            Err(TryReserveError::CapacityOverflow)
        );
        assert!(d.try_reserve(usize::MAX / 64).is_err());
        assert_eq!(snapshot(&d), before);
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Insert, the `fail`-th allocation on refused.
    TryInsert(u16, u64, Option<u8>),
    /// Insert through a vacant entry.
    TryEntry(u16, u64, Option<u8>),
    TryReserve(u16, Option<u8>),
    TryShrink(Option<u8>),
    /// Remove, with allocation refused (a shrinking policy must cope).
    Remove(u16, Option<u8>),
    Clear,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let key = 0..300u16;
    let fail = prop::option::weighted(0.5, 1..4u8);
    let op = prop_oneof![
        6 => (key.clone(), any::<u64>(), fail.clone()).prop_map(|(k, v, f)| Op::TryInsert(k, v, f)),
        2 => (key.clone(), any::<u64>(), fail.clone()).prop_map(|(k, v, f)| Op::TryEntry(k, v, f)),
        1 => (0..500u16, fail.clone()).prop_map(|(n, f)| Op::TryReserve(n, f)),
        1 => fail.clone().prop_map(Op::TryShrink),
        4 => (key, fail).prop_map(|(k, f)| Op::Remove(k, f)),
        1 => Just(Op::Clear),
    ];
    prop::collection::vec(op, 0..250)
}

fn configs() -> impl Strategy<Value = DictConfig> {
    let mut all: Vec<DictConfig> = DictConfig::PROFILES.iter().map(|(_, c)| *c).collect();
    // Each profile again with a shrinking policy, so removals allocate too.
    let shrinking: Vec<DictConfig> = all
        .iter()
        .map(|c| {
            c.to_builder()
                .shrink(ShrinkPolicy::BelowLoad(Fraction::new(1, 4)))
                .build()
                .unwrap()
        })
        .collect();
    all.extend(shrinking);
    prop::sample::select(all)
}

/// Runs `f`, with allocations refused from the `fail`-th on if given.
fn maybe_failing<T>(fail: Option<u8>, f: impl FnOnce() -> T) -> T {
    match fail {
        Some(k) => failing_from(k as usize, f),
        None => f(),
    }
}

/// `default` cases, or as many as `PROPTEST_CASES` says when it is set (proptest's default
/// config reads it, but a count written here would override it).
fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: proptest_cases(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn refused_allocations_lose_nothing(config in configs(), ops in ops()) {
        let mut d: D = Dict::with_config(config);
        let mut model = BTreeMap::new();
        for op in ops {
            let before = snapshot(&d);
            match op {
                Op::TryInsert(k, v, fail) => {
                    let k = k as u64;
                    match maybe_failing(fail, || d.try_insert(k, v)) {
                        Ok(old) => prop_assert_eq!(old, model.insert(k, v)),
                        Err(e) => {
                            prop_assert_eq!((e.key, e.value), (k, v));
                            prop_assert_eq!(&snapshot(&d), &before);
                        }
                    }
                }
                Op::TryEntry(k, v, fail) => {
                    let k = k as u64;
                    let result = maybe_failing(fail, || d.entry(k).try_or_insert(v).map(|v| *v));
                    match result {
                        Ok(stored) => prop_assert_eq!(stored, *model.entry(k).or_insert(v)),
                        Err(e) => {
                            prop_assert_eq!((e.key, e.value), (k, v));
                            prop_assert_eq!(&snapshot(&d), &before);
                        }
                    }
                }
                Op::TryReserve(n, fail) => {
                    if maybe_failing(fail, || d.try_reserve(n as usize)).is_err() {
                        prop_assert_eq!(&snapshot(&d), &before);
                    } else {
                        // The reserved inserts now need no allocation at all.
                        let mut copy = d.clone();
                        let fresh = (0..n as u64).map(|i| 1_000_000 + i);
                        let all_in = failing_from(1, || fresh.into_iter().all(|k| copy.try_insert(k, 0).is_ok()));
                        prop_assert!(all_in);
                    }
                }
                Op::TryShrink(fail) => {
                    if maybe_failing(fail, || d.try_shrink_to_fit()).is_err() {
                        prop_assert_eq!(&snapshot(&d), &before);
                    }
                }
                Op::Remove(k, fail) => {
                    let k = k as u64;
                    prop_assert_eq!(maybe_failing(fail, || d.remove(&k)), model.remove(&k));
                }
                Op::Clear => {
                    d.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(d.len(), model.len());
            let seen: BTreeMap<u64, u64> = d.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(seen.len(), d.len(), "an entry is duplicated");
            prop_assert_eq!(&seen, &model, "an entry is lost or changed");
        }
    }
}
