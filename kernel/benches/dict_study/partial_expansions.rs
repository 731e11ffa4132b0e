//! Issue 17 study: `lean`'s two-choice groups grown by Larson's partial expansions (simulated).
//!
//! The groups form sets of `sets` groups apart. A level starts with 2 groups a set; its first
//! expansion gives each set, one at a time, a third group and its second a fourth, each new
//! group taking a fair share of its set's keys (a third, then a quarter), so that a group's
//! share of the hash range is never more than 1.5 times another's (linear hashing: 2). Then the
//! 4 groups of each set are 2 groups of each of twice as many sets, and the next level begins.
//! A key's group is found level by level from its hash: at each expansion of each level, an
//! independent draw says whether it is among the share that moves (`address`).

/// Where a choice hashing to `v` lives: `levels` levels done, then in the current level, sets
/// below `split` have had expansion `phase` (3: to three groups; 4: to four), the rest only the
/// one before it.
fn address(v: u64, levels: u32, phase: u32, split: usize) -> usize {
    let mut draws = v;
    let mut draw = || {
        draws = draws.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = draws;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut x = (draw() & 1) as usize;
    let mut n = 1;
    for level in 0..=levels {
        let (set, mut member) = (x % n, x / n);
        let done = level < levels;
        let (third, fourth) = (draw() % 3 == 0, draw() % 4 == 0);
        if third && (done || phase == 4 || set < split) {
            member = 2;
        }
        if fourth && (done || (phase == 4 && set < split)) {
            member = 3;
        }
        x = set + n * member;
        if done {
            n *= 2;
        }
    }
    x
}

/// Where a choice hashing to `v` lives when each set's groups cut its hash range into equal
/// contiguous parts: `sets` sets, sets below `split` cut into `phase` parts, the rest into one
/// fewer. O(1), as a lookup needs: the set and the fraction within it come from one Lemire
/// product, the part from another, and the part's group number in closed form. A set's third
/// and fourth groups are appended in set order (`2 sets + s`, `3 sets + s`); its first two are
/// the groups that held its half of its parent set's range one level up, which, followed down
/// the levels while the set number is even, is `(sets >> (t + 1)) (2 + m) + (s >> (t + 1))`
/// for part `m` of set `s` with `t` trailing zero bits (set 0: group `m`).
fn address_contiguous(v: u64, sets: usize, phase: u32, split: usize) -> usize {
    let wide = u128::from(v) * sets as u128;
    let (set, within) = ((wide >> 64) as usize, wide as u64);
    let parts = phase as u128 - u128::from(set >= split);
    let part = ((u128::from(within) * parts) >> 64) as usize;
    part_group(set, part, sets)
}

/// The group number of part `part` of set `set` of `sets` (see [`address_contiguous`]).
fn part_group(set: usize, part: usize, sets: usize) -> usize {
    if part >= 2 {
        part * sets + set
    } else if set == 0 {
        part
    } else {
        let t = set.trailing_zeros() + 1;
        (sets >> t) * (2 + part) + (set >> t)
    }
}

/// Simulates `max_n` inserts of random keys into two-choice groups of `group` slots grown by
/// partial expansions whenever the load passes `max_load`; prints what `linear_hashing` prints.
///
/// `contiguous`: addresses by [`address_contiguous`] (an expansion then moves keys between the
/// set's old groups as well as into the new one) instead of [`address`].
/// Ns a key for its two groups' numbers: by `lean`'s two Lemire reductions, and by
/// [`address_contiguous`] half-way through expansion `phase` (to 3 or 4 parts), over
/// `hashes` in a loop the CPU can overlap, as lookups in a row overlap. The median of `rounds`.
pub fn time_addresses(hashes: &[u64], groups: usize, phase: u32, rounds: usize) -> (f64, f64) {
    use std::hint::black_box;
    use std::time::Instant;
    let sets = (groups / phase as usize).next_power_of_two();
    let split = sets / 2;
    fn time(hashes: &[u64], rounds: usize, f: impl Fn(u64) -> usize) -> f64 {
        let mut per = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            let mut sum = 0usize;
            for &h in black_box(hashes) {
                sum = sum.wrapping_add(f(h));
            }
            black_box(sum);
            per.push(start.elapsed().as_nanos() as f64 / hashes.len() as f64);
        }
        per.sort_by(f64::total_cmp);
        per[rounds / 2]
    }
    let lemire = |bits: u64| ((u128::from(bits) * groups as u128) >> 64) as usize;
    let two_lemire = time(hashes, rounds, |h| lemire(h) ^ lemire(h.rotate_left(32)));
    let two_partial = time(hashes, rounds, |h| {
        address_contiguous(h, sets, 3, split)
            ^ address_contiguous(h.rotate_left(32), sets, 3, split)
    });
    (two_lemire, two_partial)
}

pub fn simulate(group: usize, max_load: f64, max_n: usize, contiguous: bool) {
    struct Table {
        groups: Vec<Vec<(u64, u64)>>,
        levels: u32,
        sets: usize,
        phase: u32,
        split: usize,
        contiguous: bool,
    }
    impl Table {
        fn at(&self, v: u64) -> usize {
            if self.contiguous {
                address_contiguous(v, self.sets, self.phase, self.split)
            } else {
                address(v, self.levels, self.phase, self.split)
            }
        }
    }
    let mut t = Table {
        groups: vec![Vec::new(), Vec::new()],
        levels: 0,
        sets: 1,
        phase: 3,
        split: 0,
        contiguous,
    };
    let (mut moves, mut both_full, mut failed) = (0usize, 0usize, 0usize);
    let mut overflow: Vec<(u64, u64)> = Vec::new();
    let (mut most_overflow, mut emptiest, mut fullest_group) = (0usize, 1.0f64, 0.0f64);
    let mut state = 0x5eed_u64;
    let mut next = || crate::xorshift(&mut state);
    let place = |t: &mut Table, e: (u64, u64), moves: &mut usize| -> Option<bool> {
        let (a, b) = (t.at(e.0), t.at(e.1));
        if t.groups[a].len() < group || t.groups[b].len() < group {
            let to = if t.groups[a].len() <= t.groups[b].len() {
                a
            } else {
                b
            };
            t.groups[to].push(e);
            return Some(false);
        }
        let step = [a, b].into_iter().find_map(|g| {
            t.groups[g].iter().enumerate().find_map(|(i, f)| {
                let (fa, fb) = (t.at(f.0), t.at(f.1));
                let other = if fa == g { fb } else { fa };
                (other != g && t.groups[other].len() < group).then_some((g, i, other))
            })
        });
        let (g, i, other) = step?;
        let f = t.groups[g].swap_remove(i);
        t.groups[other].push(f);
        t.groups[g].push(e);
        *moves += 1;
        Some(true)
    };
    for n in 1..=max_n {
        let e = (next(), next());
        match place(&mut t, e, &mut moves) {
            Some(full) => both_full += usize::from(full),
            None => {
                both_full += 1;
                failed += 1;
                overflow.push(e);
            }
        }
        while n as f64 > max_load * (group * t.groups.len()) as f64 {
            // Expand set `split`: its new group is the next group number.
            let set = t.split;
            let members = t.phase as usize - 1;
            t.split += 1;
            t.groups.push(Vec::new());
            let new = t.groups.len() - 1;
            debug_assert_eq!(new, set + t.sets * members);
            // Highest part first: with contiguous parts, part m gives keys to part m + 1.
            for m in (0..members).rev() {
                let g = if contiguous {
                    part_group(set, m, t.sets)
                } else {
                    set + t.sets * m
                };
                for e in core::mem::take(&mut t.groups[g]) {
                    let (a, b) = (t.at(e.0), t.at(e.1));
                    if a == g || b == g {
                        t.groups[g].push(e);
                        continue;
                    }
                    // The choice that named `g` before this expansion now names the new
                    // group (drawn addresses) or the next part (contiguous parts).
                    let named_g = address_contiguous(e.0, t.sets, t.phase, set) == g;
                    let to = match contiguous {
                        false => new,
                        true if named_g => a,
                        true => b,
                    };
                    moves += 1;
                    if t.groups[to].len() < group {
                        t.groups[to].push(e);
                    } else {
                        overflow.push(e);
                    }
                }
            }
            if t.split == t.sets {
                t.split = 0;
                if t.phase == 3 {
                    t.phase = 4;
                } else {
                    t.phase = 3;
                    t.levels += 1;
                    t.sets *= 2;
                }
            }
            for e in core::mem::take(&mut overflow) {
                match place(&mut t, e, &mut moves) {
                    Some(_) => moves += 1,
                    None => overflow.push(e),
                }
            }
        }
        most_overflow = most_overflow.max(overflow.len());
        let load = n as f64 / (group * t.groups.len()) as f64;
        if n >= 1000 {
            emptiest = emptiest.min(load);
        }
        if [1000, 10_000, max_n].contains(&n) {
            let full = t.groups.iter().filter(|g| g.len() == group).count();
            fullest_group = fullest_group.max(full as f64 / t.groups.len() as f64);
            println!(
                "  n = {n:>6}: load {load:.3}, inserts finding both groups full {:.3}, one cuckoo \
                 step failing {failed}, overflowed now {}, moves an insert {:.2}, full groups {:.2}",
                both_full as f64 / n as f64,
                overflow.len(),
                moves as f64 / n as f64,
                full as f64 / t.groups.len() as f64
            );
        }
    }
    // Every entry where a lookup would look: in one of its two groups, or overflowed.
    let misplaced = (0..t.groups.len())
        .flat_map(|g| t.groups[g].iter().map(move |e| (g, *e)))
        .filter(|&(g, e)| t.at(e.0) != g && t.at(e.1) != g)
        .count();
    assert_eq!(misplaced, 0, "entries outside both their groups");
    println!(
        "  {group}-slot groups, max load {max_load}: emptiest from n = 1000 {emptiest:.3} \
         ({:.1} bytes an entry), most overflowed at once {most_overflow}",
        17.0 / emptiest
    );
}
