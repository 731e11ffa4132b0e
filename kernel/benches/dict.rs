//! Dict benchmark: footprint table and chart per profile beside hashbrown, CPython and 16n, then
//! insert/lookup/remove throughput against hashbrown, and inserts into a reserved map (`lean`,
//! the profile meant to be both tight and fast, with its goals).
//!
//! `cargo bench -p spindle --bench dict` (`-- footprint` or `-- speed` for one half;
//! `-- linear-hashing`, `-- partial-expansions` or `-- compact-index` for a design study
//! instead, see `kernel/docs/dict-notes.md`). Footprints
//! are exact (the dict's own `footprint()`, cross-checked against a counting allocator);
//! hashbrown's is measured with that allocator and CPython's by running `python3` when present.

mod common;
#[cfg(target_arch = "x86_64")]
#[path = "dict_study/compact_index.rs"]
mod compact_index;
#[path = "dict_study/partial_expansions.rs"]
mod partial_expansions;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use common::{keep, median};
use spindle::dict::hash::FastState;
use spindle::dict::{Dict, DictConfig};

/// Counts live heap bytes; the bench is single-threaded.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; the counter is a plain atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract for `realloc` is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

type HashBrown = hashbrown::HashMap<u64, u64>;

const MAX_N: usize = 100_000;

/// The table's sizes: 0..=20, 100, 1000, 10^4, 10^5.
fn table_ns() -> Vec<usize> {
    (0..=20).chain([100, 1000, 10_000, MAX_N]).collect()
}

/// Log-spaced sizes for the chart (plus every table size).
fn chart_ns() -> Vec<usize> {
    let mut ns: Vec<usize> = (1..=20).collect();
    let mut x = 20.0f64;
    while (x as usize) < MAX_N {
        x *= 1.04;
        ns.push((x as usize).min(MAX_N));
    }
    ns.extend(table_ns());
    ns.retain(|&n| n > 0);
    ns.sort_unstable();
    ns.dedup();
    ns
}

/// One design's footprint at every n in 0..=MAX_N.
struct Series {
    name: String,
    bytes: Vec<usize>,
}

/// Builds `(j, j)` for j in 0..MAX_N one insert at a time, recording the footprint after each.
fn sweep_dict(name: &str, config: DictConfig) -> Series {
    let mut bytes = Vec::with_capacity(MAX_N + 1);
    let base = live();
    let mut d: Dict<u64, u64> = Dict::with_config(config);
    for j in 0..=MAX_N as u64 {
        let counted = std::mem::size_of::<Dict<u64, u64>>() + (live() - base) as usize;
        assert_eq!(
            d.footprint(),
            counted,
            "{name}: footprint() disagrees with the allocator"
        );
        bytes.push(d.footprint());
        d.insert(j, j);
    }
    Series {
        name: name.into(),
        bytes,
    }
}

fn sweep_hashbrown() -> Series {
    let mut bytes = Vec::with_capacity(MAX_N + 1);
    let base = live();
    let mut m = HashBrown::default();
    for j in 0..=MAX_N as u64 {
        bytes.push(std::mem::size_of::<HashBrown>() + (live() - base) as usize);
        m.insert(j, j);
    }
    Series {
        name: "hashbrown".into(),
        bytes,
    }
}

/// CPython's `sys.getsizeof(dict((j, j) for j in range(n)))`, if `python3` runs.
fn cpython(ns: &[usize]) -> Option<(String, Vec<(usize, usize)>)> {
    let list: Vec<String> = ns.iter().map(usize::to_string).collect();
    let script = format!(
        "import sys\nprint(sys.version.split()[0])\n\
         print(' '.join(str(sys.getsizeof(dict((j, j) for j in range(n)))) for n in [{}]))",
        list.join(",")
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?.to_string();
    let sizes: Vec<usize> = lines
        .next()?
        .split_whitespace()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (sizes.len() == ns.len()).then(|| (version, ns.iter().copied().zip(sizes).collect()))
}

fn footprints() {
    println!("== footprint, bytes, (u64, u64) entries: struct + heap ==");
    let mut series: Vec<Series> = DictConfig::PROFILES
        .iter()
        .map(|(name, config)| sweep_dict(name, *config))
        .collect();
    series.push(sweep_hashbrown());
    let hashbrown = series.len() - 1;
    let chart = chart_ns();
    let python = cpython(&chart);
    let table = table_ns();
    let python_at = |n: usize| {
        python
            .as_ref()
            .and_then(|(_, sizes)| sizes.iter().find(|(m, _)| *m == n).map(|(_, s)| *s))
    };
    let python_name = match &python {
        Some((version, _)) => format!("CPython {version}"),
        None => "CPython (python3 absent)".to_string(),
    };

    let mut header = format!("{:>7}", "n");
    for s in &series {
        write!(header, " {:>14}", s.name).unwrap();
    }
    write!(header, " {:>14} {:>9}", python_name, "16n").unwrap();
    println!("{header}");
    for &n in &table {
        let mut row = format!("{n:>7}");
        for s in &series {
            write!(row, " {:>14}", s.bytes[n]).unwrap();
        }
        let py = python_at(n).map_or("-".to_string(), |b| b.to_string());
        write!(row, " {py:>14} {:>9}", 16 * n).unwrap();
        println!("{row}");
    }

    println!("\nbytes per entry (goal: <= 20 at n = 1000 and 100000):");
    for &n in &[1000, MAX_N] {
        let mut row = format!("{n:>7}");
        for s in &series {
            write!(row, " {:>14.1}", s.bytes[n] as f64 / n as f64).unwrap();
        }
        let py = python_at(n).map_or("-".to_string(), |b| format!("{:.1}", b as f64 / n as f64));
        write!(row, " {py:>14} {:>9.1}", 16.0).unwrap();
        println!("{row}");
    }

    println!("\nabove hashbrown for n in 1..=100000 (goal: never):");
    for s in &series[..hashbrown] {
        let above: Vec<usize> = (1..=MAX_N)
            .filter(|&n| s.bytes[n] > series[hashbrown].bytes[n])
            .collect();
        let (worst_at, worst) = (1..=MAX_N)
            .map(|n| (n, s.bytes[n] as f64 / series[hashbrown].bytes[n] as f64))
            .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
        let (closest, margin) = (1..=MAX_N)
            .map(|n| (n, series[hashbrown].bytes[n] as isize - s.bytes[n] as isize))
            .min_by_key(|&(_, margin)| margin)
            .unwrap_or((0, 0));
        println!(
            "  {:>14}: {} of 100000 sizes ({}); worst {:.3}x hashbrown (n = {worst_at}); \
             closest in bytes at n = {closest}, {margin} below",
            s.name,
            above.len(),
            ranges(&above),
            worst
        );
    }
    let max_per_entry = |s: &Series, from: usize| {
        (from..=MAX_N)
            .map(|n| s.bytes[n] as f64 / n as f64)
            .fold(0.0, f64::max)
    };
    println!("\nworst bytes per entry over n in 1000..=100000:");
    for s in &series {
        println!("  {:>14}: {:.1}", s.name, max_per_entry(s, 1000));
    }

    let path = write_chart(
        &series,
        &chart,
        python.as_ref().map(|(_, p)| p),
        &python_name,
    );
    println!("\nchart: {}", path.display());
}

/// `1-3, 7, 9-12` for a sorted list.
fn ranges(ns: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ns.len() {
        let mut j = i;
        while j + 1 < ns.len() && ns[j + 1] == ns[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            ns[i].to_string()
        } else {
            format!("{}-{}", ns[i], ns[j])
        });
        i = j + 1;
        if out.len() == 8 && i < ns.len() {
            out.push("...".into());
            break;
        }
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

/// Draws footprint against n, both on log scales, as a hand-written SVG.
fn write_chart(
    series: &[Series],
    ns: &[usize],
    python: Option<&Vec<(usize, usize)>>,
    python_name: &str,
) -> PathBuf {
    const W: f64 = 960.0;
    const H: f64 = 640.0;
    const LEFT: f64 = 90.0;
    const RIGHT: f64 = 230.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 60.0;
    let (x_lo, x_hi) = (0.0, 5.0); // log10 n
    let (y_lo, y_hi) = (1.0, 7.0); // log10 bytes
    let x = |n: f64| LEFT + (n.log10() - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT);
    let y = |b: f64| TOP + (y_hi - b.max(10.0).log10()) / (y_hi - y_lo) * (H - TOP - BOTTOM);
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">"#
    )
    .unwrap();
    writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#).unwrap();
    writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="17" text-anchor="middle">Dict footprint, (u64, u64) entries: bytes against n (log-log)</text>"#,
        (LEFT + W - RIGHT) / 2.0
    )
    .unwrap();
    for d in 0..=5 {
        let px = x(10f64.powi(d));
        writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{}" stroke="#ddd"/>"##,
            H - BOTTOM
        )
        .unwrap();
        writeln!(
            svg,
            r#"<text x="{px:.1}" y="{}" text-anchor="middle">10^{d}</text>"#,
            H - BOTTOM + 20.0
        )
        .unwrap();
    }
    for d in 1..=7 {
        let py = y(10f64.powi(d));
        writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/>"##,
            W - RIGHT
        )
        .unwrap();
        writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">10^{d} B</text>"#,
            LEFT - 8.0,
            py + 4.0
        )
        .unwrap();
    }
    writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">entries n</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 15.0
    )
    .unwrap();
    writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    )
    .unwrap();

    let colors = [
        "#8c564b", "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#17becf", "#9467bd", "#e377c2",
        "#000000",
    ];
    /// A named curve of `(n, bytes)` points.
    type Curve = (String, Vec<(usize, usize)>);
    let mut lines: Vec<Curve> = series
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                ns.iter().map(|&n| (n, s.bytes[n])).collect(),
            )
        })
        .collect();
    if let Some(p) = python {
        let points = p.iter().filter(|(n, _)| *n > 0).copied().collect();
        lines.push((python_name.to_string(), points));
    }
    let bound = ns.iter().map(|&n| (n, 16 * n)).collect();
    lines.push(("lower bound 16n".into(), bound));
    for (i, (name, points)) in lines.iter().enumerate() {
        let dashed = i == lines.len() - 1;
        let color = colors[i % colors.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(n, b)| format!("{:.1},{:.1}", x(n as f64), y(b as f64)))
            .collect();
        let dash = if dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{}"/>"#,
            path.join(" ")
        )
        .unwrap();
        let ly = TOP + 10.0 + 22.0 * i as f64;
        let lx = W - RIGHT + 15.0;
        writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/><text x="{}" y="{}">{name}</text>"#,
            lx + 25.0,
            lx + 32.0,
            ly + 4.0
        )
        .unwrap();
    }
    svg.push_str("</svg>\n");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    std::fs::create_dir_all(&dir).expect("create target dir");
    let path = dir.join("dict-footprint.svg");
    std::fs::write(&path, svg).expect("write chart");
    path.canonicalize().unwrap_or(path)
}

/// xorshift64*: the next of a reproducible pseudo-random sequence.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Reproducible pseudo-random keys.
fn keys(count: usize, mut state: u64) -> Vec<u64> {
    (0..count).map(|_| xorshift(&mut state)).collect()
}

/// What the throughput runs need of a map. Every design's methods are inlined into the timed
/// loops alike, so that no design's figures depend on the compiler's inlining choice there.
trait Map {
    fn make() -> Self;
    fn room(&mut self, additional: usize);
    fn put(&mut self, k: u64, v: u64);
    fn look(&self, k: &u64) -> Option<&u64>;
    fn take(&mut self, k: &u64) -> Option<u64>;
}

/// `Map` for a one-field wrapper (generic over a design number `P`) whose field has the map
/// methods `reserve`, `insert`, `get` and `remove`; `$make` builds design `P`.
macro_rules! wrapped_map {
    ($wrapper:ident, $make:expr) => {
        impl<const P: usize> Map for $wrapper<P> {
            #[inline(always)]
            fn make() -> Self {
                $make
            }
            #[inline(always)]
            fn room(&mut self, additional: usize) {
                self.0.reserve(additional);
            }
            #[inline(always)]
            fn put(&mut self, k: u64, v: u64) {
                self.0.insert(k, v);
            }
            #[inline(always)]
            fn look(&self, k: &u64) -> Option<&u64> {
                self.0.get(k)
            }
            #[inline(always)]
            fn take(&mut self, k: &u64) -> Option<u64> {
                self.0.remove(k)
            }
        }
    };
}

#[derive(Clone)]
struct Ours<const P: usize>(Dict<u64, u64>);

wrapped_map!(Ours, Ours(Dict::with_config(DictConfig::PROFILES[P].1)));

impl<S: std::hash::BuildHasher + Default + Clone> Map for hashbrown::HashMap<u64, u64, S> {
    #[inline(always)]
    fn make() -> Self {
        Self::default()
    }
    #[inline(always)]
    fn room(&mut self, additional: usize) {
        self.reserve(additional);
    }
    #[inline(always)]
    fn put(&mut self, k: u64, v: u64) {
        self.insert(k, v);
    }
    #[inline(always)]
    fn look(&self, k: &u64) -> Option<&u64> {
        self.get(k)
    }
    #[inline(always)]
    fn take(&mut self, k: &u64) -> Option<u64> {
        self.remove(k)
    }
}

/// Ns per insert, hit, miss and remove in one run over `present` keys, and per insert into a
/// map reserved for them all.
///
/// The run builds a map (timed as inserts), looks every key up once untimed (so lookups are
/// measured in steady state, not on the tail of the build), then times hits in `order` (another
/// permutation), misses in `absent`'s order, removals from a map built the same way, and the
/// inserts into a map that `reserve` (untimed) has grown for every key: the cost of an insert
/// without the cost of growing, which for the tightest profiles is most of it. Out of line, so
/// that each design's loops are compiled alone and not shaped by the others'.
#[inline(never)]
fn throughput<M: Map>(present: &[u64], order: &[u64], absent: &[u64]) -> [f64; 5] {
    let per = present.len() as f64;
    let ns_per_key = |start: Instant| start.elapsed().as_nanos() as f64 / per;
    let start = Instant::now();
    let mut m = M::make();
    for &k in present {
        m.put(k, k);
    }
    let insert = ns_per_key(start);
    let m = keep(m);
    let mut sum = 0u64;
    for k in present {
        sum = sum.wrapping_add(*m.look(k).unwrap_or(&0));
    }

    let start = Instant::now();
    for k in order {
        sum = sum.wrapping_add(*m.look(k).unwrap_or(&0));
    }
    let hit = ns_per_key(start);
    black_box(sum);

    let start = Instant::now();
    let mut found = 0usize;
    for k in absent {
        found += usize::from(m.look(k).is_some());
    }
    let miss = ns_per_key(start);
    assert_eq!(found, 0);

    drop(m);
    let mut victim = M::make();
    for &k in present {
        victim.put(k, k);
    }
    let start = Instant::now();
    for k in order {
        black_box(victim.take(k));
    }
    let remove = ns_per_key(start);
    drop(victim);

    let mut reserved = M::make();
    reserved.room(present.len());
    let start = Instant::now();
    for &k in present {
        reserved.put(k, k);
    }
    let reserved_insert = ns_per_key(start);
    drop(keep(reserved));
    [insert, hit, miss, remove, reserved_insert]
}

/// One design's timed run: [`throughput`] for one map type.
type Timed = fn(&[u64], &[u64], &[u64]) -> [f64; 5];

/// Times `designs` over `samples` rounds and prints each one's median ns an operation and its
/// speed against the first's; returns the medians by name.
fn speed_rows<'a>(
    names: &[&'a str],
    designs: &[Timed],
    present: &[u64],
    absent: &[u64],
    samples: usize,
) -> Vec<(&'a str, [f64; 5])> {
    println!(
        "{:>26} {:>15} {:>15} {:>15} {:>15} {:>15}",
        "design", "insert", "hit lookup", "miss lookup", "remove", "reserved ins."
    );
    let mut runs: Vec<[Vec<f64>; 5]> = designs.iter().map(|_| Default::default()).collect();
    for round in 0..samples as u64 {
        // Fresh orders each round: a branch predictor can learn a sequence of a thousand
        // lookups that repeats run after run, which made the small table look about twice as
        // fast as it is for lookups in an order it has not seen. One run of every design per
        // round, so that whatever slows the machine for a while (it is a shared VM) falls on
        // all of them alike; the medians are over the rounds.
        let order = &shuffled(present, 0xc0ffee ^ round);
        let absent = &shuffled(absent, 0xabad_cafe ^ round);
        for (design, all) in designs.iter().zip(&mut runs) {
            for (time, of_op) in design(present, order, absent)
                .into_iter()
                .zip(all.iter_mut())
            {
                of_op.push(time);
            }
        }
    }
    let rows: Vec<(&str, [f64; 5])> = names
        .iter()
        .zip(runs)
        .map(|(name, times)| (*name, times.map(|mut t| median(&mut t))))
        .collect();
    let base = rows[0].1;
    for (name, t) in &rows {
        let mut row = format!("{name:>26}");
        for (ours, theirs) in t.iter().zip(base) {
            write!(row, " {ours:>7.1} ({:>4.2}x)", theirs / ours).unwrap();
        }
        println!("{row}");
    }
    rows
}

/// `keys` in a pseudo-random order (Fisher-Yates with xorshift).
fn shuffled(keys: &[u64], mut state: u64) -> Vec<u64> {
    let mut out = keys.to_vec();
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

fn speeds() {
    let samples = 15;
    for n in [1000usize, MAX_N] {
        let all = keys(2 * n, 0x5eed ^ n as u64);
        let (present, absent) = all.split_at(n);
        println!(
            "\n== throughput, n = {n} random u64 keys, median ns/op of {samples} rounds (speed vs hashbrown) =="
        );
        let names = [
            "hashbrown (foldhash)",
            "hashbrown (FastState)",
            "cpython27",
            "tight",
            "exact",
            "compact",
            "exact_compact",
            "lean",
        ];
        let designs: [Timed; 8] = [
            throughput::<HashBrown>,
            throughput::<hashbrown::HashMap<u64, u64, FastState>>,
            throughput::<Ours<0>>,
            throughput::<Ours<1>>,
            throughput::<Ours<2>>,
            throughput::<Ours<3>>,
            throughput::<Ours<4>>,
            throughput::<Ours<5>>,
        ];
        let rows = speed_rows(&names, &designs, present, absent, samples);
        let base = rows[0].1;
        let tight = rows[3].1;
        println!(
            "tight lookups vs hashbrown (goal >= 0.7x): hit {:.2}x, miss {:.2}x",
            base[1] / tight[1],
            base[2] / tight[2]
        );
        let lean = rows[7].1;
        println!(
            "lean vs hashbrown (goals: lookups >= 0.7x, insert and remove >= 0.4x): \
             hit {:.2}x, miss {:.2}x, insert {:.2}x, remove {:.2}x; \
             insert into a reserved map {:.2}x",
            base[1] / lean[1],
            base[2] / lean[2],
            base[0] / lean[0],
            base[3] / lean[3],
            base[4] / lean[4]
        );
    }
}

/// Index parameters the compact-index study tries: max load `a/b`, growth `c/d`.
#[cfg(target_arch = "x86_64")]
const STUDY: [compact_index::Params; 4] = {
    const fn params(a: usize, b: usize, c: usize, d: usize) -> compact_index::Params {
        compact_index::Params {
            max_load: (a, b),
            growth: (c, d),
        }
    }
    [
        params(15, 16, 8, 7),
        params(31, 32, 6, 5),
        params(7, 8, 8, 7),
        params(7, 8, 4, 3),
    ]
};

#[cfg(target_arch = "x86_64")]
#[derive(Clone)]
struct Study<const P: usize>(compact_index::CompactIndex);

#[cfg(target_arch = "x86_64")]
wrapped_map!(Study, Study(compact_index::CompactIndex::new(STUDY[P])));

/// The compact-index study (issue 17): checks the prototype against a model, then prints its
/// footprint beside hashbrown's, its rehashes and copies an insert, and its speed beside
/// hashbrown's and `lean`'s in the same rounds.
#[cfg(target_arch = "x86_64")]
fn compact_index_study() {
    use compact_index::CompactIndex;
    // Model check: random inserts, overwrites and removals against std's map.
    for params in STUDY {
        let mut ours = CompactIndex::new(params);
        let mut model = std::collections::HashMap::new();
        let ops = keys(400_000, 0xfeed);
        for (i, &r) in ops.iter().enumerate() {
            let k = r % 150_000 % (1 + (i as u64 / 2));
            if r >> 62 == 0 {
                assert_eq!(ours.remove(&k), model.remove(&k), "remove {k}");
            } else {
                assert_eq!(ours.insert(k, r), model.insert(k, r), "insert {k}");
            }
            assert_eq!(ours.len(), model.len());
            if i % 97 == 0 {
                let probe = r.rotate_left(17) % 150_000;
                assert_eq!(ours.get(&probe), model.get(&probe), "get {probe}");
            }
        }
        for (k, v) in &model {
            assert_eq!(ours.get(k), Some(v));
        }
    }
    println!("model check: 400000 random inserts and removals agree with std's HashMap");

    let brown = sweep_hashbrown();
    let lean = sweep_dict("lean", DictConfig::lean());
    let worst = |bytes: &dyn Fn(usize) -> usize| {
        (1000..=MAX_N)
            .map(|n| (bytes(n) as f64 / n as f64, n))
            .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
    };
    let above = |bytes: &dyn Fn(usize) -> usize| {
        (1..=MAX_N)
            .filter(|&n| bytes(n) > brown.bytes[n])
            .collect::<Vec<_>>()
    };
    println!(
        "\n{:>34} {:>22} {:>24} {:>15} {:>15}",
        "design",
        "worst B/entry 1e3..1e5",
        "above hashbrown, n <= 1e5",
        "rehash/insert",
        "copied/insert"
    );
    for (name, s) in [("hashbrown", &brown), ("lean", &lean)] {
        let (w, at) = worst(&|n| s.bytes[n]);
        let above = above(&|n| s.bytes[n]);
        println!(
            "{name:>34} {:>15.2} (n={at:>6}) {:>6} ({:>16}) {:>15} {:>15}",
            w,
            above.len(),
            ranges(&above),
            "-",
            "-"
        );
    }
    for params in STUDY {
        let mut bytes = Vec::with_capacity(MAX_N + 1);
        let mut ours = CompactIndex::new(params);
        let base = live();
        let mut at_1000 = (0.0, 0.0);
        for j in 0..=MAX_N as u64 {
            let counted = std::mem::size_of::<CompactIndex>() + (live() - base) as usize;
            assert_eq!(
                ours.footprint(),
                counted,
                "footprint() disagrees with the allocator"
            );
            bytes.push(counted);
            if j == 1000 {
                at_1000 = (ours.rehashes as f64 / 1000.0, ours.copied as f64 / 1000.0);
            }
            ours.insert(j, j);
        }
        let (w, at) = worst(&|n| bytes[n]);
        let above = above(&|n| bytes[n]);
        println!(
            "{:>34} {:>15.2} (n={at:>6}) {:>6} ({:>16}) {:>6.2}, {:>6.2} {:>6.2}, {:>6.2}",
            format!(
                "index, max load {}/{}, growth {}/{}",
                params.max_load.0, params.max_load.1, params.growth.0, params.growth.1
            ),
            w,
            above.len(),
            ranges(&above),
            at_1000.0,
            ours.rehashes as f64 / ours.len() as f64,
            at_1000.1,
            ours.copied as f64 / ours.len() as f64,
        );
    }
    println!("(rehash/insert and copied/insert: at n = 1000, then at n = 100001)");

    let samples = 15;
    let names = [
        "hashbrown (foldhash)",
        "lean",
        "index 15/16, 8/7",
        "index 31/32, 6/5",
        "index 7/8, 8/7",
        "index 7/8, 4/3",
    ];
    for n in [1000usize, MAX_N] {
        let all = keys(2 * n, 0x5eed ^ n as u64);
        let (present, absent) = all.split_at(n);
        println!(
            "\n== compact index, n = {n}, median ns/op of {samples} rounds (speed vs hashbrown) =="
        );
        let designs: [Timed; 6] = [
            throughput::<HashBrown>,
            throughput::<Ours<5>>,
            throughput::<Study<0>>,
            throughput::<Study<1>>,
            throughput::<Study<2>>,
            throughput::<Study<3>>,
        ];
        speed_rows(&names, &designs, present, absent, samples);
    }
}

/// A design study, not a measurement of the dict: bucketized two-choice hashing (groups of
/// `group` slots) grown by linear hashing, one group split at a time, as `lean` would grow if it
/// did not rebuild. Each choice addresses a group by `h mod 2^(k+1)`, less `2^k` when that is
/// past the last group; an insert takes the emptier of its two groups, else moves one of their
/// entries to its other group (one cuckoo step), else goes to an overflow list; a group splits
/// when the load passes `max_load`, its entries staying unless neither choice still names it.
/// Prints, at n = 1000, 10000 and 100000, how often both groups of an insert are full, the
/// overflow list, moves an insert, and the emptiest table from n = 1000 (its bytes an entry:
/// 17 / load).
fn linear_hashing(group: usize, max_load: f64) {
    struct Table {
        groups: Vec<Vec<(u64, u64)>>,
        bits: u32,
    }
    impl Table {
        fn at(&self, h: u64) -> usize {
            let a = (h & ((2u64 << self.bits) - 1)) as usize;
            if a >= self.groups.len() {
                a - (1 << self.bits)
            } else {
                a
            }
        }
    }
    let mut t = Table {
        groups: vec![Vec::new()],
        bits: 0,
    };
    let (mut moves, mut both_full, mut failed) = (0usize, 0usize, 0usize);
    let mut overflow: Vec<(u64, u64)> = Vec::new();
    let (mut most_overflow, mut emptiest) = (0usize, 1.0f64);
    let mut state = 0x5eed_u64;
    let mut next = || xorshift(&mut state);
    for n in 1..=MAX_N {
        let e = (next(), next());
        let (a, b) = (t.at(e.0), t.at(e.1));
        if t.groups[a].len() < group || t.groups[b].len() < group {
            let to = if t.groups[a].len() <= t.groups[b].len() {
                a
            } else {
                b
            };
            t.groups[to].push(e);
        } else {
            both_full += 1;
            let step = [a, b].into_iter().find_map(|g| {
                t.groups[g].iter().enumerate().find_map(|(i, f)| {
                    let (fa, fb) = (t.at(f.0), t.at(f.1));
                    let other = if fa == g { fb } else { fa };
                    (other != g && t.groups[other].len() < group).then_some((g, i, other))
                })
            });
            match step {
                Some((g, i, other)) => {
                    let f = t.groups[g].swap_remove(i);
                    t.groups[other].push(f);
                    t.groups[g].push(e);
                    moves += 1;
                }
                None => {
                    failed += 1;
                    overflow.push(e);
                }
            }
        }
        while n as f64 > max_load * (group * t.groups.len()) as f64 {
            let split = t.groups.len() - (1 << t.bits);
            t.groups.push(Vec::new());
            if t.groups.len() == 2 << t.bits {
                t.bits += 1;
            }
            let last = t.groups.len() - 1;
            for e in core::mem::take(&mut t.groups[split]) {
                let stays = t.at(e.0) == split || t.at(e.1) == split;
                t.groups[if stays { split } else { last }].push(e);
                moves += usize::from(!stays);
            }
            let waiting = core::mem::take(&mut overflow);
            for e in waiting {
                let (a, b) = (t.at(e.0), t.at(e.1));
                let to = if t.groups[a].len() <= t.groups[b].len() {
                    a
                } else {
                    b
                };
                if t.groups[to].len() < group {
                    t.groups[to].push(e);
                    moves += 1;
                } else {
                    overflow.push(e);
                }
            }
        }
        most_overflow = most_overflow.max(overflow.len());
        let load = n as f64 / (group * t.groups.len()) as f64;
        if n >= 1000 {
            emptiest = emptiest.min(load);
        }
        if [1000, 10_000, MAX_N].contains(&n) {
            println!(
                "  n = {n:>6}: load {load:.3}, inserts finding both groups full {:.3}, one cuckoo \
                 step failing {failed}, overflowed now {}, moves an insert {:.2}",
                both_full as f64 / n as f64,
                overflow.len(),
                moves as f64 / n as f64
            );
        }
    }
    println!(
        "  {group}-slot groups, max load {max_load}: emptiest from n = 1000 {emptiest:.3} \
         ({:.1} bytes an entry), most overflowed at once {most_overflow}",
        17.0 / emptiest
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it (in
    // debug, maybe under qemu-user), where a benchmark would only cost time.
    if !std::env::args().any(|a| a == "--bench") {
        println!("dict benchmark: run it with `cargo bench -p spindle --bench dict`");
        return;
    }
    assert_eq!(
        DictConfig::PROFILES.map(|(n, _)| n),
        [
            "cpython27",
            "tight",
            "exact",
            "compact",
            "exact_compact",
            "lean"
        ]
    );
    // `-- footprint` or `-- speed` runs one half (for profiling); no argument runs both.
    let only = |part: &str| {
        std::env::args()
            .skip(1)
            .all(|a| a.starts_with('-') || a == part)
    };
    if only("footprint") {
        footprints();
    }
    if only("speed") {
        speeds();
    }
    // `-- linear-hashing`: the design study behind the notes on growing `lean` in place.
    if std::env::args().any(|a| a == "linear-hashing") {
        println!("\n== two-choice groups grown by linear hashing (simulated) ==");
        for (group, max_load) in [(16, 0.9), (16, 0.875), (16, 0.8), (8, 0.875)] {
            linear_hashing(group, max_load);
        }
    }
    // `-- partial-expansions`: the same groups grown by Larson's partial expansions.
    if std::env::args().any(|a| a == "partial-expansions") {
        println!("\n== two-choice groups grown by partial expansions (simulated) ==");
        for contiguous in [false, true] {
            let how = match contiguous {
                false => "keys moved by independent draws (address level by level)",
                true => "sets cut into contiguous parts (address in O(1))",
            };
            println!("{how}:");
            for (group, max_load) in [(16, 0.9), (16, 0.875), (16, 0.8), (8, 0.875)] {
                partial_expansions::simulate(group, max_load, MAX_N, contiguous);
            }
        }
        let hashes = keys(1000, 0xadd2e55);
        for (groups, phase) in [(70, 3), (7000, 3), (7000, 4)] {
            let (lemire, partial) =
                partial_expansions::time_addresses(&hashes, groups, phase, 2001);
            println!(
                "a key's two group numbers, {groups} groups, expanding to {phase} parts: two \
                 Lemire reductions {lemire:.2} ns, two contiguous-part addresses {partial:.2} ns \
                 (median of 2001 passes)"
            );
        }
    }
    // `-- compact-index`: the compact-index study (issue 17, third pass).
    #[cfg(target_arch = "x86_64")]
    if std::env::args().any(|a| a == "compact-index") {
        println!("\n== a compact index over entries that never move (a prototype) ==");
        compact_index_study();
    }
}
