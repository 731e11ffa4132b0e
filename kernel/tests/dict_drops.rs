//! Dict ownership: every key and value it takes is dropped exactly once, panics included.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Once;

use proptest::prelude::*;
use spindle::dict::{Dict, DictConfig, Entry};

/// The live objects of one test, by serial; each object panics on request in `clone`, `hash`
/// or `drop`.
#[derive(Default)]
struct Ledger {
    live: RefCell<BTreeSet<u64>>,
    next_serial: Cell<u64>,
    /// Clones left before one panics (`None`: never).
    clones_left: Cell<Option<u32>>,
    /// Hashes left before one panics (`None`: never).
    hashes_left: Cell<Option<u32>>,
    /// Drops left before one panics (`None`: never).
    drops_left: Cell<Option<u32>>,
}

impl Ledger {
    fn live(&self) -> usize {
        self.live.borrow().len()
    }

    fn no_panics(&self) {
        self.clones_left.set(None);
        self.hashes_left.set(None);
        self.drops_left.set(None);
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
    serial: u64,
    ledger: Rc<Ledger>,
}

impl Tracked {
    fn new(id: u16, ledger: &Rc<Ledger>) -> Self {
        let serial = ledger.next_serial.get();
        ledger.next_serial.set(serial + 1);
        ledger.live.borrow_mut().insert(serial);
        Self {
            id,
            serial,
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
        let was_live = self.ledger.live.borrow_mut().remove(&self.serial);
        assert!(was_live, "object {} dropped twice", self.serial);
        spend(&self.ledger.drops_left, "drop");
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

/// What an injected panic interrupts.
#[derive(Clone, Copy, Debug)]
enum Site {
    Insert(u16),
    Remove(u16),
    Reserve(u8),
    ShrinkToFit,
    Clear,
    /// Owned iteration taking this many entries, then dropping the iterator.
    IntoIter(u8),
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Hash,
    Drop,
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
    /// `site` with a hash or a drop panicking after this many.
    Panic(Fault, u8, Site),
}

fn site() -> impl Strategy<Value = Site> {
    prop_oneof![
        (0..64u16).prop_map(Site::Insert),
        (0..64u16).prop_map(Site::Remove),
        any::<u8>().prop_map(Site::Reserve),
        Just(Site::ShrinkToFit),
        Just(Site::Clear),
        (0..8u8).prop_map(Site::IntoIter),
    ]
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
        2 => (prop_oneof![Just(Fault::Hash), Just(Fault::Drop)], 0..6u8, site())
            .prop_map(|(fault, after, site)| Op::Panic(fault, after, site)),
    ]
}

/// Whether `a` holds every key of `b` with the same value (looked up in `a`).
fn holds_all(a: &Dict<Tracked, Tracked>, b: &Dict<Tracked, Tracked>) -> bool {
    b.iter()
        .all(|(k, v)| a.get(k).is_some_and(|w| w.id == v.id))
}

/// Runs `ops`; after each one the ledger holds exactly the dict's keys and values, and the
/// dict finds every entry it iterates.
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
                ledger.no_panics();
                prop_assert_eq!(copy.is_err(), expected_panic);
                if let Ok(copy) = copy {
                    prop_assert_eq!(ledger.live(), 4 * dict.len());
                    prop_assert_eq!(copy.len(), dict.len());
                    prop_assert!(holds_all(&dict, &copy) && holds_all(&copy, &dict));
                }
            }
            Op::Panic(fault, after, site) => {
                let budget = match fault {
                    Fault::Hash => &ledger.hashes_left,
                    Fault::Drop => &ledger.drops_left,
                };
                // Arguments are made before the budget is set: only the dict's work can panic.
                let key = match site {
                    Site::Insert(k) | Site::Remove(k) => t(k),
                    _ => t(u16::MAX - 1),
                };
                let value = t(0);
                budget.set(Some(u32::from(after)));
                let outcome = catch_unwind(AssertUnwindSafe(|| match site {
                    Site::Insert(_) => drop(dict.insert(key, value)),
                    Site::Remove(_) => drop(dict.remove(&key)),
                    Site::Reserve(n) => dict.reserve(n as usize),
                    Site::ShrinkToFit => dict.shrink_to_fit(),
                    Site::Clear => dict.clear(),
                    Site::IntoIter(n) => {
                        let mut entries =
                            mem::replace(&mut dict, Dict::with_config(config)).into_iter();
                        entries.by_ref().take(n as usize).for_each(drop);
                    }
                }));
                ledger.no_panics();
                drop(outcome);
            }
        }
        // Whatever a panic cost, the dict is consistent: it finds what it holds, holds what
        // the ledger says is alive, and still works.
        prop_assert_eq!(dict.iter().count(), dict.len(), "after {:?}", op);
        prop_assert!(holds_all(&dict, &dict), "after {:?}", op);
        prop_assert_eq!(ledger.live(), 2 * dict.len(), "after {:?}", op);
    }
    let len = dict.len();
    let mut entries = dict.into_iter();
    let taken: Vec<_> = entries.by_ref().take(keep).collect();
    prop_assert_eq!(taken.len(), keep.min(len));
    drop(entries);
    prop_assert_eq!(ledger.live(), 2 * taken.len());
    drop(taken);
    prop_assert_eq!(ledger.live(), 0);
    Ok(())
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
    // Under Miri (the command is in the README) a few cases take minutes.
    #![proptest_config(ProptestConfig::with_cases(proptest_cases(if cfg!(miri) { 6 } else { 256 })))]

    #[test]
    fn every_key_and_value_is_dropped_once(
        config in profile(),
        ops in prop::collection::vec(op(), 0..200),
        keep in 0..80usize,
    ) {
        quiet_injected_panics();
        check(config, &ops, keep)?;
    }
}

/// Keeps the injected panics from printing a message each; any other panic reports as usual.
fn quiet_injected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let injected = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|message| message.starts_with("injected"));
            if !injected {
                report(info);
            }
        }));
    });
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

/// Hashes every key alike: every key shares one probe path.
#[derive(Default, Clone)]
struct OnePath;

impl std::hash::BuildHasher for OnePath {
    type Hasher = OnePathHasher;

    fn build_hasher(&self) -> OnePathHasher {
        OnePathHasher
    }
}

struct OnePathHasher;

impl Hasher for OnePathHasher {
    fn write(&mut self, _: &[u8]) {}

    fn finish(&self) -> u64 {
        42
    }
}

/// A copy keeps the original's dummies: a probe must pass a removed key's slot in the copy too.
#[test]
fn a_clone_finds_keys_past_removed_ones() {
    for (name, config) in DictConfig::PROFILES {
        let mut dict: Dict<u16, u16, OnePath> = Dict::with_config_and_hasher(config, OnePath);
        for key in 0..3 {
            dict.insert(key, key + 100);
        }
        dict.remove(&0);
        let copy = dict.clone();
        for key in 1..3 {
            assert_eq!(copy.get(&key), Some(&(key + 100)), "{name}: key {key}");
        }
        assert_eq!(copy.get(&0), None, "{name}");
    }
}
