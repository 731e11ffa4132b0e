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

/// Simulates `max_n` inserts of random keys into two-choice groups of `group` slots grown by
/// partial expansions whenever the load passes `max_load`; prints what `linear_hashing` prints.
pub fn simulate(group: usize, max_load: f64, max_n: usize) {
    struct Table {
        groups: Vec<Vec<(u64, u64)>>,
        levels: u32,
        sets: usize,
        phase: u32,
        split: usize,
    }
    impl Table {
        fn at(&self, v: u64) -> usize {
            address(v, self.levels, self.phase, self.split)
        }
    }
    let mut t = Table {
        groups: vec![Vec::new(), Vec::new()],
        levels: 0,
        sets: 1,
        phase: 3,
        split: 0,
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
            for m in 0..members {
                let g = set + t.sets * m;
                for e in core::mem::take(&mut t.groups[g]) {
                    let stays = t.at(e.0) == g || t.at(e.1) == g;
                    if stays {
                        t.groups[g].push(e);
                    } else if t.groups[new].len() < group {
                        t.groups[new].push(e);
                        moves += 1;
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
    println!(
        "  {group}-slot groups, max load {max_load}: emptiest from n = 1000 {emptiest:.3} \
         ({:.1} bytes an entry), most overflowed at once {most_overflow}",
        17.0 / emptiest
    );
}
