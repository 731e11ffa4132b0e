//! Dict tests on the target: big-endian hashing, every profile on the kernel heap, and refused
//! allocations on the small fixed heap.

use crate::{env, Suite, TargetTest};
use alloc::vec::Vec;
use core::hash::{BuildHasher, Hasher};
use spindle::dict::hash::{FastState, Keyed, SipHasher13};
use spindle::dict::{Dict, DictConfig, TryReserveError};

/// The dict suite.
pub const SUITE: Suite = Suite::new(
    "dict",
    &[
        TargetTest::new("hashes_match_the_host", hashes_match_the_host),
        TargetTest::new("profiles_on_the_kernel_heap", profiles_on_the_kernel_heap),
        TargetTest::new("seed_table_on_target", seed_table_on_target),
        TargetTest::new(
            "refused_reservation_changes_nothing",
            refused_reservation_changes_nothing,
        ),
        TargetTest::new(
            "growth_into_a_full_heap_loses_nothing",
            growth_into_a_full_heap_loses_nothing,
        ),
    ],
);

/// The golden values of the host's `dict_seed` test, recomputed big-endian.
fn hashes_match_the_host() {
    const { assert!(cfg!(target_endian = "big"), "the target is big-endian") };
    assert_eq!(FastState.hash_one(42u64), 0xba05_10ab_2566_cb65);
    assert_eq!(FastState.hash_one("spindle"), 0x3975_077c_6f69_021d);
    assert_eq!(Keyed::new([1, 2]).hash_one(42u64), 0xe6f8_c611_bbf3_6c67);
    let mut sip = SipHasher13::new_with_keys(1, 2);
    sip.write(b"spindle");
    assert_eq!(sip.finish(), 0xced7_879f_4f64_a111);
}

fn profiles_on_the_kernel_heap() {
    for (name, config) in DictConfig::PROFILES {
        let mut d: Dict<u64, u64> = Dict::with_config(config);
        for k in 0..5000u64 {
            assert_eq!(d.insert(k * 7919, k), None, "{name}: {k}");
        }
        for k in (0..5000u64).step_by(2) {
            assert_eq!(d.remove(&(k * 7919)), Some(k), "{name}: {k}");
        }
        for k in 0..5000u64 {
            let expected = (k % 2 == 1).then_some(k);
            assert_eq!(d.get(&(k * 7919)).copied(), expected, "{name}: {k}");
        }
        assert_eq!(d.len(), 2500, "{name}");
        assert_eq!(d.iter().count(), 2500, "{name}");
        *d.entry(1).or_insert(10) += 1;
        assert_eq!(d.get(&1), Some(&11), "{name}");
    }
}

/// The seed's table: the sizes the seed (the Stackless-on-PS3 document Spindle was made from)
/// measured for its memory-tuned CPython 2.7 dicts, which the tight profile reproduces.
fn seed_table_on_target() {
    let tight: Vec<usize> = (0..20u32)
        .map(|n| {
            let mut d: Dict<u32, u32> = Dict::with_config(DictConfig::tight());
            d.extend((0..n).map(|j| (j, j)));
            d.cpython32_size().unwrap_or(0)
        })
        .collect();
    assert_eq!(
        tight,
        [
            64, 88, 112, 160, 160, 160, 256, 256, 256, 256, 256, 256, 448, 448, 448, 448, 448, 448,
            448, 448
        ]
    );
}

fn refused_reservation_changes_nothing() {
    let heap = env::get().heap_bytes;
    for (name, config) in DictConfig::PROFILES {
        let mut d: Dict<u64, u64> = Dict::with_config(config);
        d.extend((0..100).map(|k| (k, k)));
        let (slots, footprint) = (d.slots(), d.footprint());
        // More entries than the whole heap holds.
        let err = d.try_reserve(heap / 16 + 1).expect_err(name);
        assert!(
            matches!(err, TryReserveError::OutOfMemory { .. }),
            "{name}: {err:?}"
        );
        assert_eq!(
            (d.slots(), d.footprint(), d.len()),
            (slots, footprint, 100),
            "{name}"
        );
        assert!((0..100).all(|k| d.get(&k) == Some(&k)), "{name}");
        // And the heap is still usable.
        assert!(d.try_reserve(1000).is_ok(), "{name}");
    }
}

/// Fills most of the heap with ballast, then inserts until the dict cannot grow.
fn growth_into_a_full_heap_loses_nothing() {
    let heap = env::get().heap_bytes;
    for (name, config) in DictConfig::PROFILES {
        let mut ballast: Vec<Vec<u8>> = Vec::new();
        let mut block = heap / 2;
        while block >= 64 * 1024 {
            let mut chunk = Vec::new();
            if chunk.try_reserve_exact(block).is_ok() {
                ballast.push(chunk);
            } else {
                block /= 2;
            }
            if ballast.len() > 64 {
                break;
            }
        }
        let mut d: Dict<u64, u64> = Dict::with_config(config);
        let mut refused = None;
        for k in 0..1_000_000u64 {
            if let Err(e) = d.try_insert(k, !k) {
                assert_eq!((e.key, e.value), (k, !k), "{name}");
                refused = Some(k);
                break;
            }
        }
        let refused = refused.expect("the heap never ran out");
        assert!(refused > 0, "{name}: the ballast left no room to grow into");
        assert_eq!(d.len() as u64, refused, "{name}");
        assert!(
            (0..refused).all(|k| d.get(&k) == Some(&!k)),
            "{name}: an entry was lost"
        );
        drop(ballast);
        assert_eq!(
            d.try_insert(refused, !refused).map_err(|e| e.error),
            Ok(None),
            "{name}"
        );
        assert_eq!(d.len() as u64, refused + 1, "{name}");
    }
}
