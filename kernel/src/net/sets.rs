//! Descriptors, descriptor sets for select and event flags for poll: the ground floor of `net`.
//!
//! The driver contract, the descriptor table and select/poll all name these types, so they live
//! here, below all of them. This module imports only the errors ([`NetError`]), so every import
//! in `net` goes downward.

use core::ops::{BitAnd, BitOr, BitOrAssign};

use super::error::NetError;

/// Largest descriptor number plus one that a select set can name (BSD's FD_SETSIZE).
pub const FD_SETSIZE: usize = 1024;

/// A driver's own socket number (the platform's file descriptor).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RawSocket(pub u32);

impl RawSocket {
    /// The number as an index (for select sets).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Bits of a descriptor that hold its number: enough for every number below [`FD_SETSIZE`].
const INDEX_BITS: u32 = FD_SETSIZE.trailing_zeros();

const _: () = assert!(
    FD_SETSIZE.is_power_of_two() && INDEX_BITS < 16,
    "descriptor numbers fill the low bits of an Fd"
);

/// A socket descriptor: a table index plus the generation of the socket that held it.
///
/// A descriptor outlives its socket harmlessly: once closed, every call with it fails with
/// [`NetError::BadDescriptor`], even after its index holds a new socket. Each index counts the
/// sockets it has held in a 54-bit generation (the 64 bits of an `Fd` less the 10 of its
/// number), which no table wraps: at ten million open/close cycles a second on one index that
/// takes 57 years, and an index whose generation reaches [`Fd::MAX_GENERATION`] is retired
/// instead of wrapping, so two descriptors of different sockets are never equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fd {
    /// The generation above the number's [`INDEX_BITS`].
    bits: u64,
}

impl Fd {
    /// The largest generation a descriptor carries (2^54 - 1).
    pub const MAX_GENERATION: u64 = u64::MAX >> INDEX_BITS;

    /// The descriptor at a table index (below [`FD_SETSIZE`], which the table's capacity is)
    /// with a generation up to [`Fd::MAX_GENERATION`].
    pub(super) fn new(index: usize, generation: u64) -> Fd {
        debug_assert!(index < FD_SETSIZE && generation <= Fd::MAX_GENERATION);
        Fd {
            bits: (generation << INDEX_BITS) | index as u64,
        }
    }

    /// The descriptor number: its index in the table and in [`FdSet`]s.
    pub fn index(self) -> usize {
        (self.bits & ((1 << INDEX_BITS) - 1)) as usize
    }

    /// Which socket, of all that have held this index, the descriptor names.
    pub fn generation(self) -> u64 {
        self.bits >> INDEX_BITS
    }

    /// Rebuilds a descriptor from its parts (from a number passed through a C-like interface);
    /// numbers from [`FD_SETSIZE`] up, and generations above [`Fd::MAX_GENERATION`], are
    /// refused.
    pub fn from_parts(index: usize, generation: u64) -> Result<Fd, NetError> {
        if index >= FD_SETSIZE || generation > Fd::MAX_GENERATION {
            return Err(NetError::InvalidInput);
        }
        Ok(Fd::new(index, generation))
    }
}

impl core::fmt::Debug for Fd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fd")
            .field("index", &self.index())
            .field("generation", &self.generation())
            .finish()
    }
}

const WORDS: usize = FD_SETSIZE / 64;

/// A fixed bitmap of descriptor numbers below [`FD_SETSIZE`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bits([u64; WORDS]);

impl Bits {
    const EMPTY: Bits = Bits([0; WORDS]);

    fn insert(&mut self, number: usize) {
        self.0[number / 64] |= 1 << (number % 64);
    }

    fn remove(&mut self, number: usize) {
        self.0[number / 64] &= !(1 << (number % 64));
    }

    fn contains(&self, number: usize) -> bool {
        number < FD_SETSIZE && self.0[number / 64] & (1 << (number % 64)) != 0
    }

    fn count(&self) -> usize {
        self.0.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// Set numbers in ascending order; cost grows with the set bits, plus one step per word.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(index * 64 + bit)
            })
        })
    }
}

impl core::fmt::Debug for Bits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A select set of socket-layer descriptors (BSD `fd_set`).
///
/// It names descriptor *numbers* ([`Fd::index`]), as BSD sets do: select checks that each named
/// number is open, but a stale descriptor whose number was reused names the new socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FdSet(Bits);

impl FdSet {
    /// An empty set.
    pub const fn new() -> FdSet {
        FdSet(Bits::EMPTY)
    }

    /// Adds a descriptor.
    pub fn insert(&mut self, fd: Fd) {
        self.0.insert(fd.index());
    }

    /// Removes a descriptor.
    pub fn remove(&mut self, fd: Fd) {
        self.0.remove(fd.index());
    }

    /// Whether the set holds the descriptor's number.
    pub fn contains(&self, fd: Fd) -> bool {
        self.0.contains(fd.index())
    }

    /// Number of descriptors in the set.
    pub fn len(&self) -> usize {
        self.0.count()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.0 = Bits::EMPTY;
    }

    /// The descriptor numbers in the set, ascending.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter()
    }

    pub(crate) fn contains_index(&self, index: usize) -> bool {
        self.0.contains(index)
    }

    pub(crate) fn insert_index(&mut self, index: usize) {
        self.0.insert(index);
    }
}

impl Default for FdSet {
    fn default() -> Self {
        FdSet::new()
    }
}

/// A select set of a driver's raw sockets, numbered by [`RawSocket::index`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawFdSet(Bits);

impl RawFdSet {
    /// An empty set.
    pub const fn new() -> RawFdSet {
        RawFdSet(Bits::EMPTY)
    }

    /// Adds a raw socket; numbers at or above [`FD_SETSIZE`] cannot be selected on.
    pub fn insert(&mut self, socket: RawSocket) -> Result<(), NetError> {
        if socket.index() >= FD_SETSIZE {
            return Err(NetError::InvalidInput);
        }
        self.0.insert(socket.index());
        Ok(())
    }

    /// Removes a raw socket.
    pub fn remove(&mut self, socket: RawSocket) {
        if socket.index() < FD_SETSIZE {
            self.0.remove(socket.index());
        }
    }

    /// Whether the set holds the raw socket.
    pub fn contains(&self, socket: RawSocket) -> bool {
        self.0.contains(socket.index())
    }

    /// Number of raw sockets in the set.
    pub fn len(&self) -> usize {
        self.0.count()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.0 = Bits::EMPTY;
    }

    /// The raw sockets in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = RawSocket> + '_ {
        self.0.iter().map(|index| RawSocket(index as u32))
    }
}

impl Default for RawFdSet {
    fn default() -> Self {
        RawFdSet::new()
    }
}

/// Poll event flags (BSD `short events`/`revents`).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PollFlags(u16);

impl PollFlags {
    /// No events.
    pub const NONE: PollFlags = PollFlags(0);
    /// POLLIN: a read would not block (data, end of stream, a pending error or a connection).
    pub const IN: PollFlags = PollFlags(0x001);
    /// POLLPRI: urgent data.
    pub const PRI: PollFlags = PollFlags(0x002);
    /// POLLOUT: a write would not block.
    pub const OUT: PollFlags = PollFlags(0x004);
    /// POLLERR: the socket has a pending error (output only).
    pub const ERR: PollFlags = PollFlags(0x008);
    /// POLLHUP: the connection is gone (output only).
    pub const HUP: PollFlags = PollFlags(0x010);
    /// POLLNVAL: the descriptor is not open (output only).
    pub const NVAL: PollFlags = PollFlags(0x020);

    /// Flags that poll reports whether or not they were asked for.
    pub const ALWAYS_REPORTED: PollFlags = PollFlags(0x008 | 0x010 | 0x020);

    /// The raw bits (BSD values).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Flags from raw bits; unknown bits are kept.
    pub const fn from_bits(bits: u16) -> PollFlags {
        PollFlags(bits)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: PollFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: PollFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for PollFlags {
    type Output = PollFlags;
    fn bitor(self, other: PollFlags) -> PollFlags {
        PollFlags(self.0 | other.0)
    }
}

impl BitOrAssign for PollFlags {
    fn bitor_assign(&mut self, other: PollFlags) {
        self.0 |= other.0;
    }
}

impl BitAnd for PollFlags {
    type Output = PollFlags;
    fn bitand(self, other: PollFlags) -> PollFlags {
        PollFlags(self.0 & other.0)
    }
}

impl core::fmt::Debug for PollFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(PollFlags, &str); 6] = [
            (PollFlags::IN, "IN"),
            (PollFlags::PRI, "PRI"),
            (PollFlags::OUT, "OUT"),
            (PollFlags::ERR, "ERR"),
            (PollFlags::HUP, "HUP"),
            (PollFlags::NVAL, "NVAL"),
        ];
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("NONE")?;
        }
        Ok(())
    }
}
