//! The value slot of a tasklet control block (Stackless's `tempval`): where a value in flight waits.
//!
//! A channel hands a value to a blocked receiver by writing it into the receiver's slot, and a
//! blocked sender parks its value in its own slot. The slot lives in the control block, never on
//! a tasklet's stack. Values up to [`INLINE_BYTES`] bytes (alignment up to 8) are stored inline;
//! larger ones in a fallibly allocated box. A slot may also hold a "bomb": an error that the
//! receiving operation returns instead of a value.

use super::TaskletError;
use alloc::alloc::{alloc, dealloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::mem::{align_of, size_of, MaybeUninit};

/// Largest value stored without allocating.
pub const INLINE_BYTES: usize = 32;

#[repr(C, align(8))]
struct Payload([MaybeUninit<u8>; INLINE_BYTES]);

/// What a slot holds, in one word: [`EMPTY`], [`BOMB`], or the address of the function that
/// drops the value in the payload (inline, or through the box the payload points to: which one
/// is known from the value's type, see [`fits_inline`]). A function's address is never 0 or 1.
type Content = usize;
const EMPTY: Content = 0;
/// An error to deliver instead of a value, stored in the payload.
const BOMB: Content = 1;

fn content_of(drop_fn: unsafe fn(*mut u8)) -> Content {
    drop_fn as usize
}

/// One value in flight. Access is serialised by the scheduler protocol: the owning tasklet while
/// it runs, whoever holds the lock of the queue it is blocked in, or, once it is dead and out of
/// every queue, the CPU that retired it (`kill_forced` drops what is left there at once).
pub(crate) struct ValueSlot {
    payload: UnsafeCell<Payload>,
    content: Cell<Content>,
}

const _: () = assert!(
    fits_inline::<TaskletError>(),
    "a bomb must fit the inline payload"
);

const fn fits_inline<T>() -> bool {
    size_of::<T>() <= INLINE_BYTES && align_of::<T>() <= 8
}

unsafe fn drop_inline<T>(place: *mut u8) {
    // SAFETY: the caller passes the payload holding a live T written by `put_staged`.
    unsafe { core::ptr::drop_in_place(place.cast::<T>()) };
}

unsafe fn drop_boxed<T>(place: *mut u8) {
    // SAFETY: the payload holds a pointer from `Staged::new` (T's layout) to a live T.
    unsafe {
        let boxed = place.cast::<*mut T>().read();
        core::ptr::drop_in_place(boxed);
        if size_of::<T>() != 0 {
            dealloc(boxed.cast(), Layout::new::<T>());
        }
    }
}

/// A value made ready for a slot before any lock is taken: out-of-line values are boxed here,
/// where an allocation failure can still give the value back.
pub(crate) enum Staged<T> {
    Inline(T),
    Boxed(*mut T),
}

// SAFETY: a staged value owns its T (inline or through a unique pointer), like a Box<T>.
unsafe impl<T: Send> Send for Staged<T> {}

impl<T> Staged<T> {
    /// Prepares `value` for a slot; gives it back if boxing it fails.
    pub(crate) fn new(value: T) -> Result<Self, T> {
        if fits_inline::<T>() {
            return Ok(Self::Inline(value));
        }
        let boxed = if size_of::<T>() == 0 {
            core::ptr::NonNull::<T>::dangling().as_ptr()
        } else {
            // SAFETY: T has a non-zero size.
            unsafe { alloc(Layout::new::<T>()) }.cast::<T>()
        };
        if boxed.is_null() {
            return Err(value);
        }
        // SAFETY: fresh allocation for one T.
        unsafe { boxed.write(value) };
        Ok(Self::Boxed(boxed))
    }

    /// Gives the value back (undoing `new`).
    pub(crate) fn into_value(self) -> T {
        match self {
            Self::Inline(value) => value,
            Self::Boxed(boxed) => {
                // SAFETY: `boxed` came from `new` and is read once, then freed.
                unsafe {
                    let value = boxed.read();
                    if size_of::<T>() != 0 {
                        dealloc(boxed.cast(), Layout::new::<T>());
                    }
                    value
                }
            }
        }
    }
}

impl ValueSlot {
    pub(crate) const fn new() -> Self {
        Self {
            payload: UnsafeCell::new(Payload([MaybeUninit::uninit(); INLINE_BYTES])),
            content: Cell::new(EMPTY),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.content.get() == EMPTY
    }

    /// Stores a staged value; never fails.
    ///
    /// # Safety
    /// The caller has exclusive access to the slot (see the type docs) and the slot is empty.
    pub(crate) unsafe fn put_staged<T>(&self, staged: Staged<T>) {
        debug_assert!(
            self.is_empty(),
            "value slot overwritten while holding a value"
        );
        let place = self.payload.get().cast::<u8>();
        match staged {
            Staged::Inline(value) => {
                // SAFETY: Inline is only built when T fits the 8-aligned payload.
                unsafe { place.cast::<T>().write(value) };
                self.content.set(content_of(drop_inline::<T>));
            }
            Staged::Boxed(boxed) => {
                // SAFETY: the payload holds one pointer.
                unsafe { place.cast::<*mut T>().write(boxed) };
                self.content.set(content_of(drop_boxed::<T>));
            }
        }
    }

    /// Stores an error to be delivered instead of a value.
    ///
    /// # Safety
    /// The caller has exclusive access to the slot (see the type docs) and the slot is empty.
    pub(crate) unsafe fn put_bomb(&self, error: TaskletError) {
        debug_assert!(
            self.is_empty(),
            "value slot overwritten while holding a value"
        );
        // SAFETY: a TaskletError fits the 8-aligned payload (checked at compile time below).
        unsafe { self.payload.get().cast::<TaskletError>().write(error) };
        self.content.set(BOMB);
    }

    /// Takes what the slot holds: `None` if empty, `Some(Err(_))` for a bomb.
    ///
    /// # Safety
    /// Exclusive access (see the type docs), and a value in the slot was stored as a `T`.
    pub(crate) unsafe fn take<T>(&self) -> Option<Result<T, TaskletError>> {
        let place = self.payload.get().cast::<u8>();
        let taken = match self.content.get() {
            EMPTY => return None,
            // SAFETY: put_bomb wrote a TaskletError into the payload.
            BOMB => Err(unsafe { place.cast::<TaskletError>().read() }),
            // SAFETY: an inline T was written by `put_staged::<T>` (the caller's type contract;
            // `Staged::new` keeps exactly the types that fit inline).
            _ if fits_inline::<T>() => Ok(unsafe { place.cast::<T>().read() }),
            _ => {
                // SAFETY: a boxed T was written by `put_staged::<T>`; read it out and free the box.
                unsafe {
                    let boxed = place.cast::<*mut T>().read();
                    let value = boxed.read();
                    if size_of::<T>() != 0 {
                        dealloc(boxed.cast(), Layout::new::<T>());
                    }
                    Ok(value)
                }
            }
        };
        self.content.set(EMPTY);
        Some(taken)
    }

    /// Moves what `from` holds (a value of any type, or a bomb) into this slot, leaving `from`
    /// empty: the bytes move, the value is neither read nor dropped.
    ///
    /// # Safety
    /// Exclusive access to both slots (see the type docs), and this slot is empty.
    pub(crate) unsafe fn move_from(&self, from: &ValueSlot) {
        debug_assert!(
            self.is_empty(),
            "value slot overwritten while holding a value"
        );
        // SAFETY: two distinct slots (a tasklet never hands itself a value), both exclusively
        // ours; the payload is plain bytes whose meaning the content tag carries along.
        unsafe {
            self.payload
                .get()
                .copy_from_nonoverlapping(from.payload.get(), 1)
        };
        self.content.set(from.content.replace(EMPTY));
    }

    /// Drops whatever the slot holds.
    ///
    /// # Safety
    /// Exclusive access (see the type docs).
    pub(crate) unsafe fn clear(&self) {
        let place = self.payload.get().cast::<u8>();
        let content = self.content.replace(EMPTY);
        if content != EMPTY && content != BOMB {
            // SAFETY: any other content is the address of the drop function stored together
            // with the value (`put_staged`), a function of this type.
            let drop_fn: unsafe fn(*mut u8) = unsafe { core::mem::transmute(content) };
            // SAFETY: the drop function matches the stored value.
            unsafe { drop_fn(place) };
        }
    }
}
