//! Dict against a `BTreeMap` model, for every profile and for random valid configurations.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use proptest::prelude::*;
use spindle::dict::hash::Keyed;
use spindle::dict::{Dict, DictConfig, IndexWidth, Layout, ShrinkPolicy, Sizing};

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    /// `*entry(k).or_insert(0) += by`.
    Bump(u16, u32),
    /// Remove through an occupied entry, if present.
    Take(u16),
    Reserve(u8),
    ShrinkToFit,
    Clear,
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..keys).prop_map(Op::Remove),
        2 => (0..keys).prop_map(Op::Get),
        2 => (0..keys, 1..100u32).prop_map(|(k, v)| Op::Bump(k, v)),
        1 => (0..keys).prop_map(Op::Take),
        1 => any::<u8>().prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
        1 => Just(Op::Clear),
    ]
}

/// Ops over a small key space (many reinserts and dummies) or a wide one (growth).
fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        prop::collection::vec(op(24), 0..300),
        prop::collection::vec(op(2000), 0..400),
    ]
}

/// Iteration order a compact dict must show: insertion order, a removal moving the newest
/// entry into the hole.
#[derive(Default)]
struct Order(Vec<u16>);

impl Order {
    fn insert(&mut self, key: u16) {
        if !self.0.contains(&key) {
            self.0.push(key);
        }
    }

    fn remove(&mut self, key: u16) {
        if let Some(i) = self.0.iter().position(|k| *k == key) {
            self.0.swap_remove(i);
        }
    }
}

/// Runs `ops` on a dict and the model, checking every result and, after each op, the contents.
fn check<S: BuildHasher + Default + Clone>(
    config: DictConfig,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut dict: Dict<u16, u32, S> = Dict::with_config_and_hasher(config, S::default());
    let mut model = BTreeMap::new();
    let mut order = Order::default();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                prop_assert_eq!(dict.insert(k, v), model.insert(k, v));
                order.insert(k);
            }
            Op::Remove(k) => {
                prop_assert_eq!(dict.remove(&k), model.remove(&k));
                order.remove(k);
            }
            Op::Get(k) => {
                prop_assert_eq!(dict.get(&k), model.get(&k));
                prop_assert_eq!(dict.contains_key(&k), model.contains_key(&k));
            }
            Op::Bump(k, by) => {
                let value = dict.entry(k).or_insert(0);
                *value = value.wrapping_add(by);
                let expected = model.entry(k).or_insert(0);
                *expected = expected.wrapping_add(by);
                prop_assert_eq!(*value, *expected);
                order.insert(k);
            }
            Op::Take(k) => {
                let taken = match dict.entry(k) {
                    spindle::dict::Entry::Occupied(e) => Some(e.remove_entry()),
                    spindle::dict::Entry::Vacant(e) => {
                        prop_assert_eq!(*e.key(), k);
                        None
                    }
                };
                prop_assert_eq!(taken, model.remove(&k).map(|v| (k, v)));
                order.remove(k);
            }
            Op::Reserve(n) => {
                dict.reserve(n as usize);
                let slots = dict.slots();
                // The reservation holds: n new keys go in without a resize.
                let mut probe = dict.clone();
                for fresh in 0..n as u16 {
                    probe.insert(u16::MAX - fresh, 0);
                }
                prop_assert_eq!(probe.slots(), slots);
            }
            Op::ShrinkToFit => dict.shrink_to_fit(),
            Op::Clear => {
                dict.clear();
                model.clear();
                order.0.clear();
                prop_assert_eq!(dict.slots(), 0);
            }
        }
        prop_assert_eq!(dict.len(), model.len());
    }
    let seen: BTreeMap<u16, u32> = dict.iter().map(|(k, v)| (*k, *v)).collect();
    prop_assert_eq!(dict.iter().count(), model.len(), "an entry is duplicated");
    prop_assert_eq!(&seen, &model);
    if config.layout() == Layout::Compact {
        let keys: Vec<u16> = dict.keys().copied().collect();
        prop_assert_eq!(keys, order.0);
    }
    // Owned iteration and mutation see the same entries.
    for (_, v) in dict.iter_mut() {
        *v = v.wrapping_mul(3);
    }
    let tripled: BTreeMap<u16, u32> = dict.into_iter().collect();
    let expected: BTreeMap<u16, u32> = model.iter().map(|(k, v)| (*k, v.wrapping_mul(3))).collect();
    prop_assert_eq!(tripled, expected);
    Ok(())
}

/// Hashes every key to one of four values: every probe is a long collision chain.
#[derive(Default, Clone)]
struct Clashing(u64);

impl Hasher for Clashing {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_add(*b as u64);
        }
    }

    fn finish(&self) -> u64 {
        self.0 & 3
    }
}

/// SipHash-1-3 with a fixed test key.
#[derive(Clone)]
struct TestKeyed(Keyed);

impl Default for TestKeyed {
    fn default() -> Self {
        Self(Keyed::new([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]))
    }
}

impl BuildHasher for TestKeyed {
    type Hasher = <Keyed as BuildHasher>::Hasher;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

fn config() -> impl Strategy<Value = DictConfig> {
    (
        (0u32..6, 1u8..20, 2u8..21, 1u8..40),
        (
            prop::sample::select(vec![Layout::Sparse, Layout::Compact, Layout::TwoChoice]),
            prop::bool::ANY,
            prop::bool::ANY,
            prop::option::of(1u8..8),
        ),
    )
        .prop_filter_map(
            "invalid configuration",
            |((small, load_num, load_den, growth), (layout, exact, bits, shrink))| {
                let growth_den = 8;
                DictConfig::builder()
                    .small_table(1 << small)
                    .max_load(load_num, load_den)
                    .growth(growth_den + growth, growth_den)
                    .layout(layout)
                    .sizing(if exact {
                        Sizing::Exact
                    } else {
                        Sizing::PowerOfTwo
                    })
                    .index_width(if bits {
                        IndexWidth::Bits
                    } else {
                        IndexWidth::Bytes
                    })
                    .shrink(match shrink {
                        Some(s) => ShrinkPolicy::BelowLoad(spindle::dict::Fraction::new(s, 32)),
                        None => ShrinkPolicy::Never,
                    })
                    .build()
                    .ok()
            },
        )
}

fn profile() -> impl Strategy<Value = DictConfig> {
    prop::sample::select(DictConfig::PROFILES.map(|(_, c)| c).to_vec())
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
        cases: proptest_cases(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_profile_matches_the_model(config in profile(), ops in ops()) {
        check::<spindle::dict::DefaultHashBuilder>(config, &ops)?;
    }

    #[test]
    fn keyed_hashing_matches_the_model(config in profile(), ops in ops()) {
        check::<TestKeyed>(config, &ops)?;
    }

    #[test]
    fn colliding_hashes_match_the_model(config in profile(), ops in prop::collection::vec(op(40), 0..200)) {
        check::<BuildHasherDefault<Clashing>>(config, &ops)?;
    }

    #[test]
    fn any_valid_configuration_matches_the_model(config in config(), ops in ops()) {
        check::<spindle::dict::DefaultHashBuilder>(config, &ops)?;
    }
}
