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

// SAFETY: allocation and deallocation go through the mutex with interrupts masked, so the heap is
// never touched concurrently (other CPUs spin; an interrupt on this CPU cannot re-enter).
unsafe impl GlobalAlloc for BoardHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        irq::without(|| {
            self.0
                .lock()
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), NonNull::as_ptr)
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the GlobalAlloc contract: `ptr` came from `alloc` with this `layout`.
            irq::without(|| unsafe { self.0.lock().deallocate(ptr, layout) });
        }
    }
}
