//! Hashers: a fast unkeyed default for integer and short byte keys, and keyed SipHash.
//!
//! # Adversarial keys
//!
//! [`FastHasher`] (the default) has a fixed, public function and no key: whoever chooses the
//! keys can compute colliding ones offline, and every colliding insert or lookup then probes
//! past all the others, turning a dict of n such keys into O(n²) work. That is fine for keys the
//! kernel makes itself (descriptors, ids, interned names) and wrong for keys that arrive from a
//! network peer or another protection domain. Those dicts should use [`Keyed`], SipHash-1-3 (the
//! function std's `HashMap` uses) with a 128-bit key the caller draws from a secret random
//! source at boot; a `no_std` kernel has no entropy of its own to draw it from.
//!
//! SipHash is implemented here because `core` exposes only `core::hash::SipHasher`, the 2-4
//! variant, deprecated since Rust 1.13 and slower; the tests check this implementation against it
//! (2-4) and against std's `DefaultHasher` (1-3).

use core::hash::{BuildHasher, Hasher};

/// Multiplies and folds the 128-bit product's halves together: every output bit depends on every
/// input bit of both operands, the low bits included (which a mask keeps).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = a as u128 * b as u128;
    product as u64 ^ (product >> 64) as u64
}

/// Odd constants from the fractional digits of pi.
const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MULTIPLIER: u64 = 0x1319_8a2e_0370_7345;
const LENGTH_MIX: u64 = 0xa409_3822_299f_31d1;

/// The default hasher: one folded multiply per 8 bytes of key. Unkeyed: see the module docs.
///
/// Integers go in by value and byte strings as little-endian words, so a key hashes the same on
/// every target.
#[derive(Clone, Copy, Debug)]
pub struct FastHasher {
    state: u64,
}

impl Default for FastHasher {
    fn default() -> Self {
        Self { state: SEED }
    }
}

/// Integer writes that hash the value as one `u64` word.
macro_rules! widening_writes {
    ($($method:ident: $int:ty),*) => {
        $(
            #[inline]
            fn $method(&mut self, n: $int) {
                self.write_u64(n as u64);
            }
        )*
    };
}

impl Hasher for FastHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.state = fold(self.state ^ word, MULTIPLIER);
    }

    widening_writes!(write_u8: u8, write_u16: u16, write_u32: u32, write_usize: usize);

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        // The length goes in with the tail so "a" and "a\0" differ.
        let mut tail = [0; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.write_u64(u64::from_le_bytes(tail) ^ (bytes.len() as u64).wrapping_mul(LENGTH_MIX));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// Builds [`FastHasher`]s; zero-sized, so it adds nothing to a dict.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct FastState;

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher::default()
    }
}

/// The hasher a [`Dict`](super::Dict) uses unless told otherwise.
pub type DefaultHashBuilder = FastState;

/// SipHash-c-d with a 128-bit key: `C` compression and `D` finalization rounds.
#[derive(Clone, Copy, Debug)]
pub struct SipHasher<const C: usize, const D: usize> {
    v: [u64; 4],
    /// Bytes not yet compressed, little-endian, `tail_len` of them.
    tail: u64,
    tail_len: usize,
    len: u64,
}

/// SipHash-1-3, the function behind std's `HashMap`.
pub type SipHasher13 = SipHasher<1, 3>;
/// SipHash-2-4, the original recommendation.
pub type SipHasher24 = SipHasher<2, 4>;

impl<const C: usize, const D: usize> SipHasher<C, D> {
    /// A hasher keyed with `(k0, k1)`.
    pub const fn new_with_keys(k0: u64, k1: u64) -> Self {
        Self {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, block: u64) {
        self.v[3] ^= block;
        for _ in 0..C {
            self.round();
        }
        self.v[0] ^= block;
    }
}

/// Integers go in as little-endian bytes (`usize` as 8), so a key hashes the same on every
/// target; `Hasher`'s defaults would use native byte order and width.
macro_rules! little_endian_writes {
    ($($method:ident: $int:ty),*) => {
        $(
            #[inline]
            fn $method(&mut self, n: $int) {
                self.write(&n.to_le_bytes());
            }
        )*
    };
}

impl<const C: usize, const D: usize> Hasher for SipHasher<C, D> {
    little_endian_writes!(write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64, write_u128: u128);

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        // Top up a partial block first.
        while self.tail_len > 0 && self.tail_len < 8 {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            self.tail |= (byte as u64) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = rest;
        }
        if self.tail_len == 8 {
            let block = self.tail;
            self.compress(block);
            self.tail = 0;
            self.tail_len = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.compress(u64::from_le_bytes(word));
        }
        for (i, &byte) in chunks.remainder().iter().enumerate() {
            self.tail |= (byte as u64) << (8 * i);
        }
        self.tail_len = chunks.remainder().len();
    }

    fn finish(&self) -> u64 {
        let mut state = *self;
        let block = ((self.len & 0xff) << 56) | self.tail;
        state.compress(block);
        state.v[2] ^= 0xff;
        for _ in 0..D {
            state.round();
        }
        state.v.iter().fold(0, |acc, v| acc ^ v)
    }
}

/// Builds SipHash-1-3 hashers keyed with a caller-provided secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Keyed {
    k0: u64,
    k1: u64,
}

impl Keyed {
    /// Hashers keyed with `key` (draw it from a secret random source).
    pub const fn new(key: [u64; 2]) -> Self {
        Self {
            k0: key[0],
            k1: key[1],
        }
    }
}

impl core::fmt::Debug for Keyed {
    /// Keeps the key out of logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Keyed { .. }")
    }
}

impl BuildHasher for Keyed {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}
