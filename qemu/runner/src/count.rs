//! `spindle-qemu count FILTER`: exact instructions per benchmark iteration, from QEMU's log.
//!
//! PMC5 under QEMU's TCG misses every translated block that ends in an indirect branch (`blr`,
//! `bctr`) or a branch to another page: QEMU adds a block's instructions to PMC5 only on the
//! exits it chains directly (QEMU 7.2 to 10.0 test `tb->flags` for `CF_NO_GOTO_PTR`, a
//! `cflags` bit, before counting the others). A context switch ends in `bctr`, so PMC5 reads
//! low for it. This command builds the bench image with `SPINDLE_BENCH_ONLY=FILTER`, which
//! brackets every sample with calls to `spindle_bench_mark`, boots it with QEMU's execution log
//! (`-d exec,nochain,in_asm`), and adds up the instructions CPU 0 executed between the marks.
//! The log (`bench-exec.log` beside the image) is deleted once read unless
//! `SPINDLE_KEEP_EXEC_LOG` is set, for profiling which functions the instructions went to.

use crate::cli::{Image, Options};
use crate::quiet::outln;
use crate::{image, machine};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

/// Logging every block makes QEMU slow: allow much longer than a plain run.
const COUNT_TIMEOUT: Duration = Duration::from_secs(900);

/// A benchmark the image counted, as announced on its console.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    name: String,
    iters: u64,
}

/// What the console says about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    mark: u64,
    samples: usize,
    benches: Vec<Counted>,
}

/// Runs the command: prints one line per benchmark matching `filter`.
pub fn run(qemu: &Path, options: &Options, filter: &str) -> Result<bool, String> {
    let built = image::build_with(
        Image::Bench,
        options.heap_bytes.or(Some(crate::TEST_IMAGE_HEAP_BYTES)),
        Some(filter),
    )?;
    let log = built.flat.with_file_name("bench-exec.log");
    let mut extra = options.qemu_args.clone();
    extra.extend(["-d", "exec,nochain,in_asm", "-D"].map(String::from));
    extra.push(log.display().to_string());
    let boot = machine::Boot {
        image: &built.flat,
        memory_bytes: options.memory_bytes,
        cpus: options.cpus.unwrap_or(1),
        gdb: false,
        forwards: &[],
        extra: &extra,
        hang_symbols: None,
    };
    let timeout = options.timeout.unwrap_or(COUNT_TIMEOUT);
    let outcome = machine::run(qemu, &boot, None, Some(timeout), false)?;
    if !outcome.succeeded() {
        return Err(format!(
            "the bench image did not finish ({}): console:\n{}{}",
            if outcome.timed_out {
                "timed out"
            } else {
                "failed"
            },
            outcome.console,
            outcome.stderr
        ));
    }
    let plan = parse_console(&outcome.console)?;
    if plan.benches.is_empty() {
        outln!("no benchmark matches {filter:?} (or each needs more CPUs: --cpus N)");
        return Ok(false);
    }
    let file =
        std::fs::File::open(&log).map_err(|err| format!("cannot read {}: {err}", log.display()))?;
    let marks = mark_positions(BufReader::new(file), plan.mark)
        .map_err(|err| format!("reading {}: {err}", log.display()));
    // The log grows by gigabytes for long benchmarks: it is read once and removed.
    // The log is huge; keep it only when asked (SPINDLE_KEEP_EXEC_LOG=1), to profile from.
    if std::env::var_os("SPINDLE_KEEP_EXEC_LOG").is_none() {
        let _ = std::fs::remove_file(&log);
    }
    for line in report(&plan, &marks?)? {
        outln!("{line}");
    }
    Ok(true)
}

fn parse_console(console: &str) -> Result<Plan, String> {
    let mut mark = None;
    let mut samples = 0;
    let mut benches: Vec<Counted> = Vec::new();
    for line in console.lines() {
        if let Some(rest) = line.strip_prefix("spindle-bench: mark ") {
            let (address, count) = rest
                .split_once(", samples ")
                .ok_or_else(|| format!("bad mark line {line:?}"))?;
            mark = u64::from_str_radix(address.trim_start_matches("0x"), 16).ok();
            samples = count
                .parse()
                .map_err(|_| format!("bad mark line {line:?}"))?;
        } else if let Some(rest) = line.strip_prefix("spindle-bench: counting ") {
            let (name, iters) = rest
                .split_once(" iters ")
                .ok_or_else(|| format!("bad counting line {line:?}"))?;
            let iters = iters
                .parse()
                .map_err(|_| format!("bad counting line {line:?}"))?;
            benches.push(Counted {
                name: name.to_owned(),
                iters,
            });
        }
    }
    let mark = mark.ok_or("the bench image printed no mark address")?;
    Ok(Plan {
        mark,
        samples,
        benches,
    })
}

/// Instructions CPU 0 had executed (since logging began) each time it entered the block at
/// `mark`, from a `-d exec,nochain,in_asm` log.
fn mark_positions(log: impl BufRead, mark: u64) -> std::io::Result<Vec<u64>> {
    let mut block_sizes: HashMap<u64, u64> = HashMap::new();
    let mut translating: Option<(u64, u64)> = None;
    let mut executed = 0u64;
    let mut positions = Vec::new();
    for line in log.lines() {
        let line = line?;
        if line.starts_with("IN:") {
            translating = None;
        } else if let Some(pc) = instruction_address(&line) {
            let (start, size) = translating.get_or_insert((pc, 0));
            *size += 1;
            block_sizes.insert(*start, *size);
        } else if let Some(pc) = executed_block(&line) {
            translating = None;
            if pc == mark {
                positions.push(executed);
            }
            executed += block_sizes.get(&pc).copied().unwrap_or(0);
        }
    }
    Ok(positions)
}

/// The address of a disassembled instruction line (`0x00000100:  48001800  b 0x1900`).
fn instruction_address(line: &str) -> Option<u64> {
    let (address, _) = line.strip_prefix("0x")?.split_once(':')?;
    u64::from_str_radix(address, 16).ok()
}

/// The guest address of a block CPU 0 executed (`Trace 0: 0x7f.. [0000/0000000000000100/..]`).
fn executed_block(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("Trace 0: ")?;
    let fields = rest.split_once('[')?.1;
    let pc = fields.split('/').nth(1)?;
    u64::from_str_radix(pc, 16).ok()
}

/// One line per benchmark: the median instructions per iteration over its samples (the
/// warm-up excluded), the marks' own cost subtracted.
fn report(plan: &Plan, marks: &[u64]) -> Result<Vec<String>, String> {
    let inside = |pair: usize| -> Option<u64> {
        Some(
            marks
                .get(2 * pair + 1)?
                .saturating_sub(*marks.get(2 * pair)?),
        )
    };
    let expected = 2 * (1 + plan.benches.len() * plan.samples);
    if marks.len() != expected || plan.samples < 2 {
        return Err(format!(
            "the log holds {} marks where {expected} were expected",
            marks.len()
        ));
    }
    let overhead = inside(0).unwrap_or(0);
    let mut lines = Vec::new();
    for (index, bench) in plan.benches.iter().enumerate() {
        let first = 1 + index * plan.samples;
        let mut per_iter: Vec<f64> = (first + 1..first + plan.samples)
            .filter_map(inside)
            .map(|count| count.saturating_sub(overhead) as f64 / bench.iters.max(1) as f64)
            .collect();
        per_iter.sort_by(f64::total_cmp);
        let median = per_iter[per_iter.len() / 2];
        lines.push(format!(
            "{}: {median:.1} instructions (exact, from the execution log)",
            bench.name
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
IN: spindle_bench_mark
0x00002000:  4e800020  blr

IN: work
0x00003000:  38600001  li       r3, 1
0x00003004:  4e800020  blr

Trace 0: 0x7f00 [0000000000000000/0000000000002000/00000000/00000000] spindle_bench_mark
Trace 0: 0x7f40 [0000000000000000/0000000000003000/00000000/00000000] work
Trace 1: 0x7f40 [0000000000000000/0000000000003000/00000000/00000000] work
Trace 0: 0x7f00 [0000000000000000/0000000000002000/00000000/00000000] spindle_bench_mark
Trace 0: 0x7f40 [0000000000000000/0000000000003000/00000000/00000000] work
";

    #[test]
    fn marks_count_cpu_zero_blocks_by_their_translated_size() {
        let marks = mark_positions(LOG.as_bytes(), 0x2000).expect("reads");
        // Mark (1) + work (2) before the second mark; CPU 1's block is not counted.
        assert_eq!(marks, vec![0, 3]);
    }

    #[test]
    fn console_plan_and_report_take_medians_without_the_warm_up() {
        let console = "spindle-bench: mark 0x2000, samples 3\n\
                       spindle-bench: counting s::b iters 10\n\
                       s::b: 7 instructions\n";
        let plan = parse_console(console).expect("parses");
        assert_eq!(plan.mark, 0x2000);
        assert_eq!(plan.benches[0].iters, 10);
        // Calibration pair (overhead 2), then warm-up, and two samples of 102 and 122.
        let marks = [0, 2, 10, 500, 600, 702, 800, 922];
        let lines = report(&plan, &marks).expect("reports");
        assert_eq!(
            lines,
            vec!["s::b: 12.0 instructions (exact, from the execution log)"]
        );
    }

    #[test]
    fn a_missing_mark_is_an_error() {
        let console =
            "spindle-bench: mark 0x2000, samples 3\nspindle-bench: counting s::b iters 1\n";
        let plan = parse_console(console).expect("parses");
        assert!(report(&plan, &[0, 1, 2]).is_err());
    }
}
