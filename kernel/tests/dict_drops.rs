//! Dict ownership: every key and value it takes is dropped exactly once, panics included.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use proptest::prelude::*;
use spindle::dict::{Dict, DictConfig, Entry};

/// Counts the live objects of one test; each panics on request in `clone` or `hash`.
#[derive(Default)]
struct Ledger {
    live: Cell<i64>,
    /// Clones left before one panics (`None`: never).
    clones_left: Cell<Option<u32>>,
    /// Hashes left before one panics (`None`: never).
    hashes_left: Cell<Option<u32>>,
}

impl Ledger {
    fn live(&self) -> i64 {
        self.live.get()
    }
}

/// Counts down `budget` and panics when it is spent.
fn spend(budget: &Cell<Option<u32>>, what: &str) {
    match budget.get() {
        Some(0) => {
            budget.set(None);
            panic!("injected {what} panic");
        }
        Some(left) => budget.set(Some(left - 1)),
        None => {}
    }
}

/// A key or value registered in a ledger while it lives.
struct Tracked {
    id: u16,
    ledger: Rc<Ledger>,
}

impl Tracked {
    fn new(id: u16, ledger: &Rc<Ledger>) -> Self {
        ledger.live.set(ledger.live() + 1);
        Self {
            id,
            ledger: Rc::clone(ledger),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        spend(&self.ledger.clones_left, "clone");
        Self::new(self.id, &self.ledger)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.live.set(self.ledger.live() - 1);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tracked {}

impl Hash for Tracked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        spend(&self.ledger.hashes_left, "hash");
        self.id.hash(state);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u16),
    Remove(u16),
    Take(u16),
    Bump(u16),
    Reserve(u8),
    ShrinkToFit,
    Clear,
    /// Clone the dict, with a clone panicking after this many (if any), then drop the copy.
    CloneAndDrop(Option<u8>),
    /// Insert with a hash panicking after this many.
    InsertPanickingHash(u16, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..64u16, any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0..64u16).prop_map(Op::Remove),
        1 => (0..64u16).prop_map(Op::Take),
        1 => (0..64u16).prop_map(Op::Bump),
        1 => any::<u8>().prop_map(Op::Reserve),
        1 => Just(Op::ShrinkToFit),
        1 => Just(Op::Clear),
        1 => proptest::option::of(0..40u8).prop_map(Op::CloneAndDrop),
        1 => (0..64u16, 0..4u8).prop_map(|(k, n)| Op::InsertPanickingHash(k, n)),
    ]
}

/// Runs `ops`; after each one the ledger counts exactly the dict's keys and values.
fn check(config: DictConfig, ops: &[Op], keep: usize) -> Result<(), TestCaseError> {
    let ledger = Rc::new(Ledger::default());
    let t = |id| Tracked::new(id, &ledger);
    let mut dict: Dict<Tracked, Tracked> = Dict::with_config(config);
    for op in ops {
        match *op {
            Op::Insert(k, v) => drop(dict.insert(t(k), t(v))),
            Op::Remove(k) => drop(dict.remove(&t(k))),
            Op::Take(k) => {
                if let Entry::Occupied(e) = dict.entry(t(k)) {
                    drop(e.remove_entry());
                }
            }
            Op::Bump(k) => {
                let value = dict.entry(t(k)).or_insert_with(|| t(0));
                value.id = value.id.wrapping_add(1);
            }
            Op::Reserve(n) => dict.reserve(n as usize),
            Op::ShrinkToFit => dict.shrink_to_fit(),
            Op::Clear => dict.clear(),
            Op::CloneAndDrop(panic_after) => {
                ledger.clones_left.set(panic_after.map(u32::from));
                let copy = catch_unwind(AssertUnwindSafe(|| dict.clone()));
                let expected_panic = panic_after.is_some_and(|n| 2 * dict.len() > n as usize);
                ledger.clones_left.set(None);
                prop_assert_eq!(copy.is_err(), expected_panic);
                if let Ok(copy) = copy {
                    prop_assert_eq!(ledger.live(), 4 * dict.len() as i64);
                    prop_assert!(copy == dict);
                }
            }
            Op::InsertPanickingHash(k, after) => {
                let (key, value) = (t(k), t(k));
                ledger.hashes_left.set(Some(u32::from(after)));
                let inserted = catch_unwind(AssertUnwindSafe(|| dict.insert(key, value)));
                ledger.hashes_left.set(None);
                drop(inserted);
                // Whatever the panic cost, the dict is consistent and still works.
                prop_assert_eq!(dict.iter().count(), dict.len());
                let probe = t(u16::MAX);
                dict.insert(probe, t(1));
                prop_assert_eq!(dict.get(&t(u16::MAX)).map(|v| v.id), Some(1));
            }
        }
        prop_assert_eq!(ledger.live(), 2 * dict.len() as i64, "after {:?}", op);
    }
    let len = dict.len();
    let mut entries = dict.into_iter();
    let taken: Vec<_> = entries.by_ref().take(keep).collect();
    prop_assert_eq!(taken.len(), keep.min(len));
    drop(entries);
    prop_assert_eq!(ledger.live(), 2 * taken.len() as i64);
    drop(taken);
    prop_assert_eq!(ledger.live(), 0);
    Ok(())
}

fn profile() -> impl Strategy<Value = DictConfig> {
    prop::sample::select(DictConfig::PROFILES.map(|(_, c)| c).to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_key_and_value_is_dropped_once(
        config in profile(),
        ops in prop::collection::vec(op(), 0..200),
        keep in 0..80usize,
    ) {
        // The injected panics would print a message each.
        std::panic::set_hook(Box::new(|_| {}));
        check(config, &ops, keep)?;
    }
}

/// An entry found by a lookup survives iteration by reference and by mutable reference.
#[test]
fn borrowing_iterators_leave_every_entry_in_place() {
    for (name, config) in DictConfig::PROFILES {
        let ledger = Rc::new(Ledger::default());
        let mut dict: Dict<Tracked, Tracked> = Dict::with_config(config);
        for id in 0..100 {
            dict.insert(Tracked::new(id, &ledger), Tracked::new(id, &ledger));
        }
        for (_, v) in dict.iter_mut() {
            v.id += 1000;
        }
        let ids: u32 = dict.iter().map(|(k, v)| u32::from(v.id - k.id)).sum();
        assert_eq!(ids, 100 * 1000, "{name}");
        assert_eq!(ledger.live(), 200, "{name}");
        drop(dict);
        assert_eq!(ledger.live(), 0, "{name}");
    }
}
