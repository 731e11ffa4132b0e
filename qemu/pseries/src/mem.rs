//! The C runtime symbols compiled code calls: `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`,
//! and the two unwinding symbols the prebuilt `core` and `alloc` reference.
//!
//! The musl target's `compiler_builtins` leaves them to libc, and a bare-metal image has none.
//! The crate is `#![no_builtins]` so that these loops are not turned back into calls to
//! themselves. Aligned runs move eight bytes at a time.

const WORD: usize = core::mem::size_of::<u64>();

/// Splits `n` bytes at `addr` into a head of single bytes up to 8-byte alignment and a run of
/// whole words; returns (head bytes, head + word bytes). The rest is a tail of single bytes.
fn aligned_span(addr: usize, n: usize) -> (usize, usize) {
    let head = (addr.wrapping_neg() % WORD).min(n);
    (head, head + (n - head) / WORD * WORD)
}

/// Copies `n` bytes forwards.
///
/// # Safety
/// `src` valid for `n` reads, `dest` for `n` writes; if they overlap, `dest <= src`.
unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    let same_alignment = (dest as usize) % WORD == (src as usize) % WORD;
    let (head, words_end) = if same_alignment {
        aligned_span(dest as usize, n)
    } else {
        (n, n)
    };
    // SAFETY: every offset is below `n`, inside both regions (caller's contract); the word loop
    // runs only over offsets where both pointers are 8-aligned.
    unsafe {
        for i in (0..head).chain(words_end..n) {
            *dest.add(i) = *src.add(i);
        }
        for i in (head..words_end).step_by(WORD) {
            *dest.add(i).cast::<u64>() = *src.add(i).cast::<u64>();
        }
    }
}

/// C `memcpy`.
///
/// # Safety
/// The C contract: non-overlapping regions valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract; non-overlapping regions satisfy copy_forward's.
    unsafe { copy_forward(dest, src, n) };
    dest
}

/// C `memmove`.
///
/// # Safety
/// The C contract: regions valid for `n` bytes, possibly overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: dest is below src or past the end of src: a forward copy never reads a byte it
        // already overwrote.
        unsafe { copy_forward(dest, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n; copying from the top down is safe when dest is above src.
            unsafe { *dest.add(i) = *src.add(i) };
        }
    }
    dest
}

/// C `memset`.
///
/// # Safety
/// The C contract: `dest` valid for `n` writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    let byte = value as u8;
    let (head, words_end) = aligned_span(dest as usize, n);
    // SAFETY: every offset is below `n` (caller's contract); word stores only at 8-aligned
    // addresses.
    unsafe {
        for i in (0..head).chain(words_end..n) {
            *dest.add(i) = byte;
        }
        for i in (head..words_end).step_by(WORD) {
            *dest.add(i).cast::<u64>() = u64::from_ne_bytes([byte; WORD]);
        }
    }
    dest
}

/// C `memcmp`.
///
/// # Safety
/// The C contract: both regions valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// C `bcmp` (zero when equal).
///
/// # Safety
/// The C contract: both regions valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}

/// Referenced by the prebuilt `core` (built for unwinding); never called, since images are built
/// with `-C panic=abort` and nothing unwinds.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by the landing pads of the prebuilt `alloc`; unreachable for the same reason, but
/// if something ever did unwind, it ends the run with a failure instead of jumping into nowhere.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    use core::fmt::Write;
    let _ = writeln!(
        crate::console::Raw,
        "spindle: _Unwind_Resume called: images do not unwind"
    );
    crate::exit(false)
}
