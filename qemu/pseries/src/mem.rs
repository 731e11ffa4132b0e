//! The C runtime symbols compiled code calls: `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`.
//!
//! The musl target's `compiler_builtins` leaves them to libc, and a bare-metal image has none.
//! The crate is `#![no_builtins]` so that these loops are not turned back into calls to
//! themselves. Aligned runs move eight bytes at a time.

const WORD: usize = core::mem::size_of::<u64>();

/// Copies `n` bytes forwards.
///
/// # Safety
/// `src` valid for `n` reads, `dest` for `n` writes; if they overlap, `dest <= src`.
unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    // SAFETY: every access is below `n`, within both regions (caller's contract); word accesses
    // happen only when both pointers are 8-aligned at offset `i`.
    unsafe {
        if (dest as usize) % WORD == (src as usize) % WORD {
            while i < n && (dest as usize + i) % WORD != 0 {
                *dest.add(i) = *src.add(i);
                i += 1;
            }
            while i + WORD <= n {
                *dest.add(i).cast::<u64>() = *src.add(i).cast::<u64>();
                i += WORD;
            }
        }
        while i < n {
            *dest.add(i) = *src.add(i);
            i += 1;
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
    let word = u64::from_ne_bytes([byte; WORD]);
    let mut i = 0;
    // SAFETY: every access is below `n` (caller's contract); word stores only at 8-aligned
    // addresses.
    unsafe {
        while i < n && (dest as usize + i) % WORD != 0 {
            *dest.add(i) = byte;
            i += 1;
        }
        while i + WORD <= n {
            *dest.add(i).cast::<u64>() = word;
            i += WORD;
        }
        while i < n {
            *dest.add(i) = byte;
            i += 1;
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
