//! The global allocator: `linked_list_allocator` over one fixed region, safe across CPUs and
//! interrupts. Exhaustion returns null, so `try_reserve` and friends get an error value; only
//! infallible allocations end in the panic handler, which then prints the heap's state.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;
use spindle_arch::powerpc64::irq;

/// How much of the heap is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes handed out (including alignment padding).
    pub used: usize,
    /// Size of the heap region.
    pub size: usize,
}

struct BoardHeap(spin::Mutex<Heap>);

#[global_allocator]
static HEAP: BoardHeap = BoardHeap(spin::Mutex::new(Heap::empty()));

/// Hands the region to the allocator.
///
/// # Safety
/// `[start, start + size)` must be writable memory that nothing else uses, ever; call once.
pub unsafe fn init(start: usize, size: usize) {
    let mut heap = HEAP.0.lock();
    // SAFETY: the caller hands over the region for good.
    unsafe { heap.init(start as *mut u8, size) };
}

/// Current heap usage, or `None` if the heap is locked (e.g. by the code that panicked). Public
/// as `spindle_pseries::heap_stats`: what an image's memory accounting reads.
pub fn stats() -> Option<HeapStats> {
    irq::without(|| {
        HEAP.0.try_lock().map(|heap| HeapStats {
            used: heap.used(),
            size: heap.size(),
        })
    })
}

/// Every block the heap hands out starts and ends on a 16-byte boundary (the widest alignment
/// the kernel asks for: stacks, slices). `linked_list_allocator` is first fit over a list of
/// holes, and a 16-aligned request carved from a hole that starts 8 bytes off leaves a front
/// hole too small to use; with blocks of mixed 8- and 16-byte multiples (a control block, then a
/// stack) every spawn left one, and every allocation walked all of them: with 10,000 tasklets
/// alive, spawning, blocking and finishing one cost 122,000 instructions instead of 3,300.
/// Padding each block to 16 bytes (at most 15 bytes) keeps every hole usable, and the cost
/// flat: 2,007 each with 10,000 alive (`cargo run -- bench`,
/// `scheduling::spawn_block_finish_10000_at_once`).
fn padded(layout: Layout) -> Option<Layout> {
    layout.align_to(16).ok().map(|layout| layout.pad_to_align())
}

// SAFETY: allocation and deallocation go through the mutex with interrupts masked, so the heap is
// never touched concurrently (other CPUs spin; an interrupt on this CPU cannot re-enter). Both
// pad the layout the same way.
unsafe impl GlobalAlloc for BoardHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(layout) = padded(layout) else {
            return ptr::null_mut();
        };
        irq::without(|| {
            self.0
                .lock()
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), NonNull::as_ptr)
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(layout) = padded(layout) else {
            return;
        };
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the GlobalAlloc contract: `ptr` came from `alloc` with this `layout`.
            irq::without(|| unsafe { self.0.lock().deallocate(ptr, layout) });
        }
    }
}
