//! Tasklet stacks: fixed-budget allocation, guard words, high-water marks and spill segments.
//!
//! A stack region is `[guard zone | usable stack]`, growing down towards the guard zone. The
//! guard zone starts with a small header (used by spill segments to chain to the segment they
//! interrupted) and ends with canary words just below the usable stack; the canary is checked at
//! every switch away from the tasklet and by [`check_stack`](super::check_stack). The usable part
//! is filled with a pattern at allocation so the high-water mark can be measured.

use super::TaskletError;
use alloc::alloc::{alloc, dealloc, Layout};
use spindle_arch::context;

/// Bytes at the bottom of every stack region kept as a guard zone. Large enough that switching
/// away from a tasklet that just crossed into it (which pushes a switch frame) stays inside the
/// region.
///
/// Debug builds have much larger frames, so the zone an overrun can cross before the next
/// switch is larger too (the path from `schedule` down to the switch alone takes about 2 KiB
/// of an unoptimised PowerPC64 build's stack).
pub const GUARD_BYTES: usize = if cfg!(debug_assertions) { 4096 } else { 1024 };

/// Smallest stack a tasklet may be given: the guard, the initial frame, and room for a switch
/// frame plus an interrupt frame (interrupts run on the interrupted tasklet's stack) on top of
/// a shallow body that blocks (a `sleep` or a channel operation). Unoptimised builds get a
/// lot more body room (their frames are several times larger: a `sleep` plus a `receive` needs
/// over 4 KiB on PowerPC64 there); deeper bodies need a larger stack, or [`spill`](super::spill).
///
/// The minimum therefore depends on the build profile: about 4 KiB optimised and 10 KiB
/// unoptimised (4,128 and 10,272 bytes on x86_64, 4,192 and 10,336 on PowerPC64). A requested
/// size counts the guard zone, so a size that optimised builds accept (8 KiB, say) fails the
/// spawn with [`StackTooSmall`](super::TaskletError::StackTooSmall) in a debug build, and
/// rightly: in an unoptimised PowerPC64 build a body that receives one value from a channel
/// peaks at 4.2 to 4.4 KiB, more than the 4 KiB such a stack has above its guard. Code built in
/// both profiles names at least 16 KiB (every profile's minimum is below it, checked at compile
/// time), or `MIN_STACK_BYTES.max(size)`.
pub const MIN_STACK_BYTES: usize = (GUARD_BYTES
    + context::INITIAL_FRAME_BYTES
    + if cfg!(debug_assertions) {
        6 * 1024
    } else {
        3072
    })
.next_multiple_of(16);

/// Stack size used when a spawn names none: small on bare metal (fixed memory is the point),
/// roomy in hosted builds, where the standard library's panic machinery (message, backtrace)
/// runs on the panicking tasklet's stack and needs far more than 16 KiB.
pub const DEFAULT_STACK_BYTES: usize = if cfg!(any(test, feature = "std")) {
    256 * 1024
} else {
    16 * 1024
};

// 16 KiB must stay a valid size in every profile: it is the bare-metal default (a plain
// `spawn` must never fail with StackTooSmall) and the size the README and the module examples
// give a tasklet so that they run in debug and release builds alike.
const _: () = assert!(MIN_STACK_BYTES <= 16 * 1024 && MIN_STACK_BYTES <= DEFAULT_STACK_BYTES);

/// Watermark of [`spill`](super::spill): below this much remaining stack, continue on a fresh
/// segment (the PS3 build of Stackless used 16 KiB; our frames are native, so smaller).
/// Debug builds' frames are several times larger, hence a higher mark there.
pub const DEFAULT_SPILL_WATERMARK: usize = if cfg!(debug_assertions) {
    8 * 1024
} else {
    4 * 1024
};

/// Size of a segment [`spill`](super::spill) allocates.
pub const DEFAULT_SPILL_SEGMENT: usize = 16 * 1024;

/// Largest region (stack, spill segment, saved slice) allocated: a control block keeps its
/// stack's size in 32 bits. A larger request fails as the budget would.
pub(crate) const MAX_REGION_BYTES: usize = u32::MAX as usize & !(ALIGN - 1);

const CANARY: u64 = 0x5350_494e_444c_4521; // "SPINDLE!"
/// The canary word nearest the stack, which every switch checks: a value both CPUs compare
/// with an immediate (a sign-extended 16-bit one), so the check needs no constant kept in a
/// register or reloaded from the stack. As unlikely as the others to be what an overflowing
/// frame writes there.
const NEAR_CANARY: u64 = -0x3f22_i64 as u64; // 0xffff_ffff_ffff_c0de
const CANARY_WORDS: usize = 4;
const FILL: u8 = 0xa5;
const ALIGN: usize = 16;

/// A stack allocation. Freed explicitly (never by Drop) because its owner decides when nothing
/// runs on it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StackRegion {
    pub(crate) base: usize,
    pub(crate) size: usize,
}

impl StackRegion {
    /// No region (a tasklet without a stack of its own, or whose stack was released).
    pub(crate) const NONE: Self = Self { base: 0, size: 0 };
}

/// The per-CPU byte budget stacks and spill segments are allocated against.
pub(crate) struct StackBudget {
    pub(crate) limit: core::cell::Cell<usize>,
    pub(crate) in_use: core::cell::Cell<usize>,
}

impl StackBudget {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            limit: core::cell::Cell::new(limit),
            in_use: core::cell::Cell::new(0),
        }
    }
}

impl StackRegion {
    /// Allocates a region of `size` bytes (rounded up to 16) against `budget`, painted so that
    /// [`Self::high_water`] can tell how deep it was used.
    pub(crate) fn allocate(size: usize, budget: &StackBudget) -> Result<Self, TaskletError> {
        Self::allocate_filled(size, budget, FILL)
    }

    /// [`Self::allocate`] for a CPU's slice area, zeroed instead of painted: nobody measures the
    /// area's high water, and frame slots no tasklet ever writes (padding, unused locals) then
    /// stay zero, which saved slices do not store.
    pub(crate) fn allocate_zeroed(size: usize, budget: &StackBudget) -> Result<Self, TaskletError> {
        Self::allocate_filled(size, budget, 0)
    }

    fn allocate_filled(size: usize, budget: &StackBudget, fill: u8) -> Result<Self, TaskletError> {
        if size < MIN_STACK_BYTES {
            return Err(TaskletError::StackTooSmall);
        }
        let region = Self::allocate_block(size, budget)?;
        // SAFETY: the whole region was just allocated for us.
        unsafe {
            core::ptr::write_bytes(region.base as *mut u8, 0, GUARD_BYTES);
            core::ptr::write_bytes(
                region.usable_low() as *mut u8,
                fill,
                region.size - GUARD_BYTES,
            );
            arm_guard(region.base);
        }
        Ok(region)
    }

    /// Allocates `bytes` (rounded up to 16, at least 16) against `budget`, uninitialised: the
    /// part common to stacks, spill segments and saved slices.
    fn allocate_block(bytes: usize, budget: &StackBudget) -> Result<Self, TaskletError> {
        let size = bytes
            .max(ALIGN)
            .checked_next_multiple_of(ALIGN)
            .filter(|&size| size <= MAX_REGION_BYTES)
            .ok_or(TaskletError::StackBudgetExhausted)?;
        let in_use = budget.in_use.get();
        if in_use
            .checked_add(size)
            .is_none_or(|total| total > budget.limit.get())
        {
            return Err(TaskletError::StackBudgetExhausted);
        }
        let layout =
            Layout::from_size_align(size, ALIGN).map_err(|_| TaskletError::StackBudgetExhausted)?;
        // SAFETY: the layout has a non-zero size (at least ALIGN).
        let base = unsafe { alloc(layout) } as usize;
        if base == 0 {
            return Err(TaskletError::OutOfMemory);
        }
        budget.in_use.set(in_use + size);
        Ok(Self { base, size })
    }

    /// Returns the region's memory to the heap and the budget.
    ///
    /// # Safety
    /// Nothing runs on the region or will resume on it.
    pub(crate) unsafe fn free(self, budget: &StackBudget) {
        let layout =
            Layout::from_size_align(self.size, ALIGN).expect("layout was valid at allocation");
        // SAFETY: allocated by `allocate_block` with this layout; the caller guarantees it is
        // unused.
        unsafe { dealloc(self.base as *mut u8, layout) };
        budget
            .in_use
            .set(budget.in_use.get().saturating_sub(self.size));
    }

    /// The 16-byte aligned top of the region (the initial stack pointer).
    pub(crate) fn top(&self) -> usize {
        (self.base + self.size) & !(ALIGN - 1)
    }

    /// The lowest address the running code may use: the top of the guard zone.
    pub(crate) fn usable_low(&self) -> usize {
        self.base + GUARD_BYTES
    }

    /// Bytes of the usable stack ever touched (lowest address whose fill pattern changed).
    pub(crate) fn high_water(&self) -> usize {
        let low = self.usable_low();
        let top = self.base + self.size;
        let mut address = low;
        // SAFETY: reads stay inside the allocated region.
        while address < top && unsafe { *(address as *const u8) } == FILL {
            address += 1;
        }
        top - address
    }

    /// Writes the spill-segment header: the base of the segment it interrupted (0 for none)
    /// and its own size, so a chain of segments can be freed from its innermost base alone.
    ///
    /// # Safety
    /// The region is a live spill segment owned by the caller.
    pub(crate) unsafe fn write_segment_header(&self, previous_base: usize) {
        // SAFETY: the header words lie in this region's guard zone, below the canaries.
        unsafe {
            (self.base as *mut usize).write(previous_base);
            (self.base as *mut usize).add(1).write(self.size);
        }
    }

    /// Records, in a spill segment's header, the stack pointer of the stack it was entered
    /// from: that stack is live from there up while the segment is in use (stack slicing
    /// copies a sliced tasklet's shared area from there when it is suspended on a segment).
    ///
    /// # Safety
    /// As for [`StackRegion::write_segment_header`].
    pub(crate) unsafe fn set_segment_entered_from(&self, stack_pointer: usize) {
        // SAFETY: the third header word, in the guard zone below the canaries.
        unsafe { (self.base as *mut usize).add(2).write(stack_pointer) };
    }

    /// The stack pointer recorded by [`StackRegion::set_segment_entered_from`] in the segment
    /// at `base`.
    ///
    /// # Safety
    /// `base` is the base of a live spill segment whose entry was recorded.
    pub(crate) unsafe fn segment_entered_from(base: usize) -> usize {
        // SAFETY: forwarded contract.
        unsafe { (base as *const usize).add(2).read() }
    }

    /// The fourth header word of the segment at `base`: where a sliced tasklet suspended on
    /// this segment keeps its stack pointer while its saved context names the restorer.
    ///
    /// # Safety
    /// `base` is the base of a live spill segment.
    pub(crate) unsafe fn segment_parked_sp(base: usize) -> *mut usize {
        // SAFETY: forwarded contract; the word lies in the guard zone below the canaries.
        unsafe { (base as *mut usize).add(3) }
    }

    /// Allocates an exactly sized block (rounded up to 16 bytes) for a sliced tasklet's saved
    /// stack, against `budget`. No guard, no fill: it only ever holds a copy. Freed with
    /// [`StackRegion::free_slice`].
    pub(crate) fn allocate_slice(bytes: usize, budget: &StackBudget) -> Result<Self, TaskletError> {
        Self::allocate_block(bytes, budget)
    }

    /// Frees a block from [`StackRegion::allocate_slice`] whose `size` is the length asked for
    /// (the block itself was rounded up).
    ///
    /// # Safety
    /// As for [`StackRegion::free`].
    pub(crate) unsafe fn free_slice(self, budget: &StackBudget) {
        let block = Self {
            base: self.base,
            size: self.size.max(ALIGN).next_multiple_of(ALIGN),
        };
        // SAFETY: the caller's contract; the size is the one `allocate_block` allocated.
        unsafe { block.free(budget) }
    }

    /// Reads a spill segment (and the base of the one it interrupted) from its base.
    ///
    /// # Safety
    /// `base` is the base of a live spill segment with a header.
    pub(crate) unsafe fn read_segment(base: usize) -> (StackRegion, usize) {
        // SAFETY: header words written by `write_segment_header`.
        let (previous_base, size) = unsafe {
            (
                (base as *const usize).read(),
                (base as *const usize).add(1).read(),
            )
        };
        (StackRegion { base, size }, previous_base)
    }
}

/// Writes the canary words at the top of a guard zone starting at `low` (of a stack region, or
/// of a stack the kernel did not allocate, such as a CPU's boot stack) and returns the usable
/// low above it.
///
/// # Safety
/// `[low, low + GUARD_BYTES)` belongs to a stack that nothing uses down there.
pub(crate) unsafe fn arm_guard(low: usize) -> usize {
    let usable_low = low + GUARD_BYTES;
    let canaries = (usable_low - CANARY_WORDS * 8) as *mut u64;
    for index in 0..CANARY_WORDS {
        let canary = if index == CANARY_WORDS - 1 {
            NEAR_CANARY
        } else {
            CANARY
        };
        // SAFETY: inside the guard zone the caller handed over.
        unsafe { canaries.add(index).write(canary) };
    }
    usable_low
}

/// Whether the canary words below `usable_low` are intact and `stack_pointer` is above them.
///
/// # Safety
/// `usable_low` is the usable low of a live stack region.
#[inline(always)]
pub(crate) unsafe fn guard_intact(usable_low: usize, stack_pointer: usize) -> bool {
    // SAFETY: forwarded contract.
    let nearest_intact = unsafe { first_guard_intact(usable_low, stack_pointer) };
    let canaries = (usable_low - CANARY_WORDS * 8) as *const u64;
    // The word nearest the stack is the last one, checked above.
    // SAFETY: the canary words are inside the live region's guard zone.
    nearest_intact
        && (0..CANARY_WORDS - 1)
            .all(|index| unsafe { canaries.add(index).read_volatile() } == CANARY)
}

/// The cheap part of [`guard_intact`]: the stack pointer, and the guard word just below
/// `usable_low` (the one a frame reaching just past the stack's end overwrites; a frame that
/// reaches further may skip it, which the stack pointer check or the full check catches).
///
/// # Safety
/// As for [`guard_intact`].
#[inline(always)]
pub(crate) unsafe fn first_guard_intact(usable_low: usize, stack_pointer: usize) -> bool {
    // SAFETY: the word below usable_low is the top of the live region's guard zone.
    stack_pointer >= usable_low
        && unsafe { ((usable_low - 8) as *const u64).read_volatile() } == NEAR_CANARY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_larger_than_a_control_block_can_record_fails_cleanly() {
        let budget = StackBudget::new(usize::MAX);
        for bytes in [MAX_REGION_BYTES + 1, usize::MAX - 1] {
            assert_eq!(
                StackRegion::allocate(bytes, &budget),
                Err(TaskletError::StackBudgetExhausted)
            );
            assert_eq!(
                StackRegion::allocate_slice(bytes, &budget),
                Err(TaskletError::StackBudgetExhausted)
            );
        }
        assert_eq!(budget.in_use.get(), 0, "nothing was charged");
        let region = StackRegion::allocate_slice(100, &budget).expect("a small slice");
        assert_eq!(region.size, 112);
        // SAFETY: nothing runs on the fresh block.
        unsafe { region.free(&budget) };
        assert_eq!(budget.in_use.get(), 0);
    }
}
