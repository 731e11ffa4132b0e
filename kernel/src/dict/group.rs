//! Groups of control bytes: which slots of a group hold a tag, are empty or are vacant, at once.
//!
//! A power-of-two sparse table is cut into aligned groups of [`GROUP`] slots, and CPython's
//! perturbed sequence runs over the groups (see the dict module's "Probing"). A group is one
//! SSE2 register on x86_64 (16 slots) and one 64-bit word elsewhere (8 slots); both answer the
//! same questions, so the tables built on them behave the same (iteration order aside, which
//! follows the slots).

pub(crate) use imp::{Group, GROUP};
use imp::{PairBits, BITS_PER_SLOT};

/// The control bytes' encoding that the groups rely on (the sparse module owns their meaning).
pub(crate) mod byte {
    /// An empty slot. Of the bytes that are not full, only this one has bit 6 set.
    pub(crate) const EMPTY: u8 = 0xff;
    /// A dummy: a deleted entry.
    pub(crate) const DUMMY: u8 = 0x80;
    /// Padding after the slots of a table smaller than a group: not full, empty or a dummy.
    pub(crate) const PAD: u8 = 0xbf;
}

/// A set of a group's slots: slot `i` is in it when any of its bits `BITS_PER_SLOT * i` to
/// `BITS_PER_SLOT * (i + 1) - 1` is set (the word variant sets the highest of them).
///
/// The lowest slot is always exact. With a word's bit trick higher ones may be false positives
/// (a borrow from a byte that is zero): each method of [`Group`] says which slots those can be.
#[derive(Clone, Copy)]
pub(crate) struct Slots(u64);

impl Slots {
    #[inline(always)]
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }

    /// The first slot's place in its group; for an empty set, `GROUP` or more.
    #[inline(always)]
    pub(crate) fn lowest(self) -> usize {
        (self.0.trailing_zeros() / BITS_PER_SLOT) as usize
    }

    #[inline(always)]
    fn without_lowest(self) -> Self {
        Slots(self.0 & self.0.wrapping_sub(1))
    }

    /// Every slot of the set in turn, first to last.
    #[inline(always)]
    pub(crate) fn next_lowest(&mut self) -> Option<usize> {
        if self.any() {
            let lowest = self.lowest();
            *self = self.without_lowest();
            Some(lowest)
        } else {
            None
        }
    }
}

/// The slots of two groups as one set (the second's after the first's), so that a two-choice
/// lookup walks the candidates of both groups in one loop, with no branch on which group holds
/// the key (a coin toss for a hit).
#[derive(Clone, Copy)]
pub(crate) struct PairSlots(PairBits);

impl PairSlots {
    #[inline(always)]
    pub(crate) fn new(first: Slots, second: Slots) -> Self {
        Self(PairBits::from(first.0) | PairBits::from(second.0) << (GROUP as u32 * BITS_PER_SLOT))
    }

    /// Every slot of the set in turn, the first group's first: whether it is in the second
    /// group, and its place in its group.
    #[inline(always)]
    pub(crate) fn next_lowest(&mut self) -> Option<(bool, usize)> {
        if self.0 == 0 {
            return None;
        }
        let at = (self.0.trailing_zeros() / BITS_PER_SLOT) as usize;
        self.0 &= self.0 - 1;
        Some((at >= GROUP, at % GROUP))
    }
}

/// SSE2, which every x86_64 CPU has: the `unsafe` blocks call its intrinsics, which Rust counts
/// as unsafe unless the calling function enables the feature itself.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod imp {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    use super::byte::{DUMMY, EMPTY};
    use super::Slots;

    /// Slots a group holds: one SSE2 register of control bytes.
    pub(crate) const GROUP: usize = 16;
    /// A slot's bits in a [`Slots`]: `pmovmskb` gives one a byte. Its sets are exact.
    pub(crate) const BITS_PER_SLOT: u32 = 1;
    /// Two groups' sets side by side.
    pub(crate) type PairBits = u64;

    /// A group's control bytes.
    #[derive(Clone, Copy)]
    pub(crate) struct Group(__m128i);

    impl Group {
        #[inline(always)]
        pub(crate) fn load(bytes: &[u8; GROUP]) -> Self {
            // SAFETY: the pointer is a reference's to 16 bytes, read unaligned; SSE2 is enabled
            // (the module's `cfg`).
            Group(unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) })
        }

        #[inline(always)]
        fn equal(self, byte: u8) -> Slots {
            // SAFETY: SSE2 is enabled (the module's `cfg`); the intrinsics only compute.
            let mask =
                unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(self.0, _mm_set1_epi8(byte as i8))) };
            Slots(u64::from(mask as u16))
        }

        /// The slots whose byte is `tag`. Exact, as are the sets below.
        #[inline(always)]
        pub(crate) fn matching(self, tag: u8) -> Slots {
            self.equal(tag)
        }

        /// The empty slots.
        #[inline(always)]
        pub(crate) fn empty(self) -> Slots {
            self.equal(EMPTY)
        }

        /// The empty and dummy slots.
        #[inline(always)]
        pub(crate) fn vacant(self) -> Slots {
            Slots(self.empty().0 | self.equal(DUMMY).0)
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
mod imp {
    use super::byte::DUMMY;
    use super::Slots;

    /// Slots a group holds: one 64-bit word of control bytes.
    pub(crate) const GROUP: usize = 8;
    /// A slot's bits in a [`Slots`]: its byte's, of which the high bit is set.
    pub(crate) const BITS_PER_SLOT: u32 = 8;
    /// Two groups' sets side by side.
    pub(crate) type PairBits = u128;

    /// The low bit of every byte of a word.
    const LOW_BITS: u64 = u64::from_le_bytes([0x01; GROUP]);
    /// The high bit of every byte of a word.
    const HIGH_BITS: u64 = u64::from_le_bytes([0x80; GROUP]);

    /// A group's control bytes as a word: byte `i` (slot `i`) in bits `8i..8i+8`.
    #[derive(Clone, Copy)]
    pub(crate) struct Group(u64);

    impl Group {
        #[inline(always)]
        pub(crate) fn load(bytes: &[u8; GROUP]) -> Self {
            Group(u64::from_le_bytes(*bytes))
        }

        /// The bytes of `word` that are zero. A false positive is a byte of 1 above a zero byte.
        #[inline(always)]
        fn zero_bytes(word: u64) -> Slots {
            Slots(word.wrapping_sub(LOW_BITS) & !word & HIGH_BITS)
        }

        /// The slots whose byte is `tag`. A false positive has the byte `tag ^ 1`: a full slot
        /// too when `tag` is, which its key tells apart.
        #[inline(always)]
        pub(crate) fn matching(self, tag: u8) -> Slots {
            Self::zero_bytes(self.0 ^ (LOW_BITS * u64::from(tag)))
        }

        /// The empty slots: bits 7 and 6 set (see [`EMPTY`](super::byte::EMPTY)). Exact.
        #[inline(always)]
        pub(crate) fn empty(self) -> Slots {
            Slots(self.0 & (self.0 << 1) & HIGH_BITS)
        }

        /// The empty and dummy slots. The lowest is exact, as it is in each of the two sets.
        #[inline(always)]
        pub(crate) fn vacant(self) -> Slots {
            Slots(self.empty().0 | Self::zero_bytes(self.0 ^ (LOW_BITS * u64::from(DUMMY))).0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::byte::{DUMMY, EMPTY, PAD};
    use super::*;
    use proptest::prelude::*;

    /// Every slot of `set`, by [`Slots::next_lowest`].
    fn members(mut set: Slots) -> alloc::vec::Vec<usize> {
        core::iter::from_fn(|| set.next_lowest()).collect()
    }

    /// A control byte: full with a tag (often the one searched for), empty, dummy or padding.
    fn control_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            0u8..0x80,
            Just(5u8),
            Just(4u8),
            Just(EMPTY),
            Just(DUMMY),
            Just(PAD)
        ]
    }

    proptest! {
        /// Against a byte-by-byte model: the first member of each set is exact, every true
        /// member is in it, and a member that is not true is a full slot (so opening it is safe).
        #[test]
        fn groups_find_what_a_byte_by_byte_scan_finds(
            bytes in proptest::collection::vec(control_byte(), GROUP),
            tag in prop_oneof![Just(5u8), 0u8..0x80],
        ) {
            let bytes: [u8; GROUP] = bytes.try_into().unwrap();
            let group = Group::load(&bytes);
            let cases = [
                (group.matching(tag), (|b: u8, tag: u8| b == tag) as fn(u8, u8) -> bool),
                (group.empty(), |b, _| b == EMPTY),
                (group.vacant(), |b, _| b == EMPTY || b == DUMMY),
            ];
            // Two groups as a pair: the first's members, then the second's (here the same group).
            let mut pair = PairSlots::new(group.matching(tag), group.empty());
            let paired: alloc::vec::Vec<(bool, usize)> =
                core::iter::from_fn(|| pair.next_lowest()).collect();
            let expected: alloc::vec::Vec<(bool, usize)> = members(group.matching(tag))
                .into_iter()
                .map(|i| (false, i))
                .chain(members(group.empty()).into_iter().map(|i| (true, i)))
                .collect();
            prop_assert_eq!(paired, expected);
            for (set, wanted) in cases {
                let found = members(set);
                let truth: alloc::vec::Vec<usize> =
                    (0..GROUP).filter(|&i| wanted(bytes[i], tag)).collect();
                prop_assert_eq!(set.any(), !truth.is_empty());
                prop_assert_eq!(found.first(), truth.first());
                for i in &truth {
                    prop_assert!(found.contains(i));
                }
                for i in &found {
                    prop_assert!(truth.contains(i) || bytes[*i] < 0x80);
                }
            }
        }
    }
}
