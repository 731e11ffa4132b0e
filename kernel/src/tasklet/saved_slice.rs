//! Saved slices: a suspended sliced tasklet's stack, kept without its long runs of zero words.
//!
//! A slice is mostly frames, and a good part of a frame can be zero: above all the save slots of
//! the register classes a tasklet never used. The function that holds a switch saves every
//! callee-saved register for its callers, including on PowerPC64 the 18 floating-point and 12
//! vector ones (336 bytes), and a fresh context starts with all of them cleared (the arch
//! trampoline's contract), so in a tasklet that does no floating-point or vector work those slots
//! hold zeros. Storing a slice without its zero runs makes a blocked tasklet cost what it
//! actually holds, the way a kernel that saves FP state lazily keeps none for a task that never
//! touched it.
//!
//! The block is words: a header (slice length in words, number of zero runs), the runs (start
//! and length in words, ascending), then every word of the slice outside the runs, in order.
//! A run is left out when it holds a whole block of [`MIN_ZERO_RUN_WORDS`] words counted from
//! the slice's start (a shorter run costs about as much to describe as to keep, and testing a
//! block at a time keeps the scan cheap), then taken whole, word by word at its ends, so that
//! what is left out does not depend on where frames fall against the blocks. The
//! [`MAX_ZERO_RUNS`] longest runs are left out (the plan lives on the restorer's stack); the
//! words of other runs are kept as they are.
//!
//! The price is paid in the sliced switch: a save scans the slice before copying it, and both
//! directions copy it in pieces. `cargo run -- count scheduling::sliced_rendezvous` measures it
//! (and `..._uncompacted`, the same with compaction turned off by
//! [`set_slice_compaction`](super::set_slice_compaction)); the module docs of
//! [`slicing`](super::slicing) give the figures.

// Two counts share a header word.
const _: () = assert!(
    usize::BITS == 64,
    "saved slices are laid out for 64-bit words"
);

/// Zero runs are found and left out in blocks of this many words (a run costs one word to
/// describe).
pub(crate) const MIN_ZERO_RUN_WORDS: usize = 4;

/// Most runs one block describes (the longest are kept); further runs are stored as ordinary
/// words. Each run costs a copy and a fill when the slice comes back.
pub(crate) const MAX_ZERO_RUNS: usize = 8;

/// Where a slice's zero runs are, found by [`SlicePlan::scan`].
pub(crate) struct SlicePlan {
    slice_words: usize,
    runs: [(u32, u32); MAX_ZERO_RUNS],
    run_count: usize,
    zero_words: usize,
}

impl SlicePlan {
    /// A plan that keeps every word of a `slice_words`-word slice (no scan).
    pub(crate) fn whole(slice_words: usize) -> Self {
        Self {
            slice_words,
            runs: [(0, 0); MAX_ZERO_RUNS],
            run_count: 0,
            zero_words: 0,
        }
    }

    /// Finds the zero runs of `slice` (the [`MAX_ZERO_RUNS`] longest): maximal runs of zero
    /// words that hold at least one all-zero block of [`MIN_ZERO_RUN_WORDS`] words, blocks
    /// counted from the slice's start. The scan tests a block at a time (a few instructions a
    /// word) and looks at single words only at a run's two ends, so a run is found whole
    /// wherever it lies against the blocks.
    pub(crate) fn scan(slice: &[usize]) -> Self {
        let mut plan = Self::whole(slice.len());
        let zero = |block: &[usize]| block.iter().fold(0, |any, &word| any | word) == 0;
        let whole_blocks = slice.len() / MIN_ZERO_RUN_WORDS;
        let mut blocks = slice.chunks_exact(MIN_ZERO_RUN_WORDS);
        // Blocks before `next` have been looked at. Two plain searches (the next zero block,
        // then the next one that is not) keep the loop to a block's loads and a branch.
        let mut next = 0;
        while let Some(skipped) = blocks.position(zero) {
            let start = next + skipped;
            let end = match blocks.position(|block| !zero(block)) {
                Some(zeros) => start + 1 + zeros,
                None => whole_blocks,
            };
            plan.add_run(slice, start, end);
            next = end + 1;
        }
        plan
    }

    /// Records the run of zero words around the all-zero blocks `[start, end)` of `slice`, in
    /// place of the shortest one kept if the plan is full and this one is longer.
    fn add_run(&mut self, slice: &[usize], start: usize, end: usize) {
        // The blocks on either side are not all zero (or are the slice's ends), so each end
        // moves by fewer than a block, and never into another run.
        let mut start = start * MIN_ZERO_RUN_WORDS;
        while start > 0 && slice[start - 1] == 0 {
            start -= 1;
        }
        let mut end = end * MIN_ZERO_RUN_WORDS;
        while end < slice.len() && slice[end] == 0 {
            end += 1;
        }
        let length = end - start;
        // Slices are far below 2^32 words: the area is one stack region.
        let run = (start as u32, length as u32);
        if self.run_count < MAX_ZERO_RUNS {
            self.runs[self.run_count] = run;
            self.run_count += 1;
            self.zero_words += length;
            return;
        }
        let shortest = (0..MAX_ZERO_RUNS)
            .min_by_key(|&index| self.runs[index].1)
            .unwrap_or(0);
        let replaced = self.runs[shortest].1 as usize;
        if replaced < length {
            // Runs stay in address order: the new one is the last.
            self.runs.copy_within(shortest + 1.., shortest);
            self.runs[MAX_ZERO_RUNS - 1] = run;
            self.zero_words = self.zero_words - replaced + length;
        }
    }

    /// Words of the slice left out (the runs' total).
    pub(crate) fn zero_words(&self) -> usize {
        self.zero_words
    }

    /// Words of the encoded block.
    pub(crate) fn encoded_words(&self) -> usize {
        1 + self.run_count + self.slice_words - self.zero_words
    }

    /// Writes `slice` (the one scanned) into `block`, exactly [`Self::encoded_words`] long.
    pub(crate) fn encode(&self, slice: &[usize], block: &mut [usize]) {
        assert_eq!(slice.len(), self.slice_words, "the slice that was scanned");
        assert_eq!(
            block.len(),
            self.encoded_words(),
            "a block of the planned size"
        );
        let (header, rest) = block.split_at_mut(1 + self.run_count);
        header[0] = pack(self.slice_words, self.run_count);
        let mut kept = 0;
        let mut next = 0;
        for (descriptor, &(start, length)) in header[1..].iter_mut().zip(&self.runs) {
            let (start, length) = (start as usize, length as usize);
            *descriptor = pack(start, length);
            let span = start - next;
            rest[kept..kept + span].copy_from_slice(&slice[next..start]);
            kept += span;
            next = start + length;
        }
        rest[kept..].copy_from_slice(&slice[next..]);
    }
}

/// Words of the slice that `block` holds (from its header).
pub(crate) fn decoded_words(block_header: usize) -> usize {
    unpack(block_header).0
}

/// Writes the slice that `block` holds into `slice` ([`decoded_words`] long).
pub(crate) fn decode(block: &[usize], slice: &mut [usize]) {
    let (slice_words, run_count) = unpack(block[0]);
    assert_eq!(slice.len(), slice_words, "a slice of the saved length");
    let (header, kept) = block.split_at(1 + run_count);
    let mut taken = 0;
    let mut next = 0;
    for &descriptor in &header[1..] {
        let (start, length) = unpack(descriptor);
        let span = start - next;
        slice[next..start].copy_from_slice(&kept[taken..taken + span]);
        taken += span;
        slice[start..start + length].fill(0);
        next = start + length;
    }
    slice[next..].copy_from_slice(&kept[taken..]);
}

/// Two counts below 2^32 in one word.
fn pack(high: usize, low: usize) -> usize {
    (high << 32) | low
}

fn unpack(word: usize) -> (usize, usize) {
    (word >> 32, word & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn round_trip(slice: &[usize]) -> (Vec<usize>, usize) {
        let plan = SlicePlan::scan(slice);
        let mut block = vec![0xdead_beef; plan.encoded_words()];
        plan.encode(slice, &mut block);
        assert_eq!(decoded_words(block[0]), slice.len());
        let mut back = vec![0x5a5a_5a5a; slice.len()];
        decode(&block, &mut back);
        (back, block.len())
    }

    #[test]
    fn register_save_areas_of_zeros_are_left_out() {
        // A frame: 3 header words, 18 zero FP slots, 3 live words, 24 zero vector words, one.
        let mut slice = vec![7, 8, 9];
        slice.extend([0; 18]);
        slice.extend([1, 3, 4]);
        slice.extend([0; 24]);
        slice.push(2);
        let (back, words) = round_trip(&slice);
        assert_eq!(back, slice);
        assert_eq!(words, 1 + 2 + 7, "header, two runs, seven live words");
    }

    #[test]
    fn runs_are_taken_whole_and_runs_without_a_whole_block_are_kept() {
        // Runs of 7 and 9 zeros, each holding a whole block, are left out whole; the run of 6
        // zeros at words 21-26 holds none (blocks 20-23 and 24-27 both hold a non-zero word).
        let slice = [
            5, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0, 0, 9,
        ];
        let (back, words) = round_trip(&slice);
        assert_eq!(back, slice);
        assert_eq!(
            words,
            1 + 2 + slice.len() - 16,
            "two runs, 7 + 9 words left out"
        );
    }

    #[test]
    fn beyond_the_limit_the_longest_runs_are_left_out() {
        // Runs of 1, 2, 1, 3, 1, ... blocks: the longest MAX_ZERO_RUNS of them are left out.
        let lengths: Vec<usize> = (0..MAX_ZERO_RUNS * 2).map(|run| 1 + run % 3).collect();
        let slice: Vec<usize> = lengths
            .iter()
            .flat_map(|&blocks| {
                [9, 9, 9, 9]
                    .into_iter()
                    .chain(core::iter::repeat_n(0, blocks * MIN_ZERO_RUN_WORDS))
            })
            .collect();
        let (back, words) = round_trip(&slice);
        assert_eq!(back, slice);
        let mut longest = lengths.clone();
        longest.sort_unstable_by(|a, b| b.cmp(a));
        let dropped: usize = longest[..MAX_ZERO_RUNS].iter().sum::<usize>() * MIN_ZERO_RUN_WORDS;
        assert_eq!(words, 1 + MAX_ZERO_RUNS + slice.len() - dropped);
    }

    #[test]
    fn a_whole_plan_keeps_every_word() {
        let slice = [0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0];
        let plan = SlicePlan::whole(slice.len());
        let mut block = vec![1; plan.encoded_words()];
        plan.encode(&slice, &mut block);
        assert_eq!(block.len(), 1 + slice.len());
        let mut back = vec![9; slice.len()];
        decode(&block, &mut back);
        assert_eq!(back, slice);
    }

    #[test]
    fn empty_and_all_zero_slices() {
        assert_eq!(round_trip(&[]), (vec![], 1));
        let zeros = [0; 42];
        assert_eq!(
            round_trip(&zeros),
            (zeros.to_vec(), 1 + 1),
            "one run, the ragged end too"
        );
    }

    proptest! {
        /// Any slice comes back word for word, and the block is what a block-by-block model
        /// says: never longer than the slice plus its header.
        #[test]
        fn decode_gives_back_what_encode_took(
            slice in proptest::collection::vec(
                prop_oneof![6 => Just(0usize), 1 => any::<usize>()], 0..400)
        ) {
            let (back, words) = round_trip(&slice);
            prop_assert_eq!(&back, &slice);
            // Model: maximal runs of zero words holding a whole all-zero block, the
            // MAX_ZERO_RUNS longest left out.
            let mut runs = Vec::new();
            let mut start = 0;
            while start < slice.len() {
                if slice[start] != 0 {
                    start += 1;
                    continue;
                }
                let mut end = start;
                while end < slice.len() && slice[end] == 0 {
                    end += 1;
                }
                let first_block = start.div_ceil(MIN_ZERO_RUN_WORDS) * MIN_ZERO_RUN_WORDS;
                if first_block + MIN_ZERO_RUN_WORDS <= end {
                    runs.push(end - start);
                }
                start = end;
            }
            runs.sort_unstable_by(|a, b| b.cmp(a));
            runs.truncate(MAX_ZERO_RUNS);
            let expected = 1 + runs.len() + slice.len() - runs.iter().sum::<usize>();
            prop_assert_eq!(words, expected);
            prop_assert!(words <= slice.len() + 1);
        }
    }
}
