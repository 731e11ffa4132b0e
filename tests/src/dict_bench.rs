//! Dict costs on the target, in PMC5 instructions per operation: the `lean` profile beside
//! `tight` at n = 1000 random `u64` keys (the host's `cargo bench -p spindle --bench dict` gives
//! times against `hashbrown`).

use crate::{BenchSuite, TargetBench};
use alloc::vec::Vec;
use core::hint::black_box;
use spin::Once;
use spindle::dict::{Dict, DictConfig};

/// The dict benchmarks: an iteration is one operation; a sample goes through the 1000 keys.
pub const SUITE: BenchSuite = BenchSuite::new(
    "dict",
    &[
        TargetBench::new("tight_insert_1000", insert::<TIGHT>, N as u64),
        TargetBench::new("lean_insert_1000", insert::<LEAN>, N as u64),
        TargetBench::new("tight_reserved_insert_1000", reserved_insert::<TIGHT>, N as u64),
        TargetBench::new("lean_reserved_insert_1000", reserved_insert::<LEAN>, N as u64),
        TargetBench::new("tight_hit_1000", hit::<TIGHT>, N as u64),
        TargetBench::new("lean_hit_1000", hit::<LEAN>, N as u64),
        TargetBench::new("tight_miss_1000", miss::<TIGHT>, N as u64),
        TargetBench::new("lean_miss_1000", miss::<LEAN>, N as u64),
    ],
);

/// Keys a dict holds.
const N: usize = 1000;
const TIGHT: usize = 0;
const LEAN: usize = 1;

fn config(profile: usize) -> DictConfig {
    [DictConfig::tight(), DictConfig::lean()][profile]
}

/// xorshift64*: the keys, and as many absent ones (drawn from one sequence, so distinct).
fn keys() -> &'static (Vec<u64>, Vec<u64>) {
    static KEYS: Once<(Vec<u64>, Vec<u64>)> = Once::new();
    KEYS.call_once(|| {
        let mut state = 0x5eed_u64;
        let mut all: Vec<u64> = (0..2 * N)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                state.wrapping_mul(0x2545_f491_4f6c_dd1d)
            })
            .collect();
        let absent = all.split_off(N);
        (all, absent)
    })
}

/// A dict of the profile holding every key, built once (in the warm-up sample).
fn built(profile: usize) -> &'static Dict<u64, u64> {
    static BUILT: [Once<Dict<u64, u64>>; 2] = [Once::new(), Once::new()];
    BUILT[profile].call_once(|| {
        let mut dict = Dict::with_config(config(profile));
        dict.extend(keys().0.iter().map(|&k| (k, k)));
        dict
    })
}

/// `iters` inserts into fresh dicts of the profile, growth included, as on the host.
fn insert<const PROFILE: usize>(iters: u64) {
    let present = &keys().0;
    let mut dict = Dict::with_config(config(PROFILE));
    for i in 0..iters as usize {
        if i % N == 0 {
            dict = Dict::with_config(config(PROFILE));
        }
        let key = present[i % N];
        dict.insert(key, key);
    }
    black_box(dict);
}

/// [`insert`] into dicts reserved for the 1000 keys first: the cost of an insert without
/// growth (the reserve, one allocation a dict, counts too).
fn reserved_insert<const PROFILE: usize>(iters: u64) {
    let present = &keys().0;
    let mut dict = Dict::with_config(config(PROFILE));
    for i in 0..iters as usize {
        if i % N == 0 {
            dict = Dict::with_config(config(PROFILE));
            dict.reserve(N);
        }
        let key = present[i % N];
        dict.insert(key, key);
    }
    black_box(dict);
}

fn hit<const PROFILE: usize>(iters: u64) {
    let (dict, present) = (built(PROFILE), &keys().0);
    for i in 0..iters as usize {
        black_box(dict.get(&present[i % N]));
    }
}

fn miss<const PROFILE: usize>(iters: u64) {
    let (dict, absent) = (built(PROFILE), &keys().1);
    for i in 0..iters as usize {
        black_box(dict.get(&absent[i % N]));
    }
}
