//! The descriptor table: BSD socket calls by descriptor over one driver, in fixed storage.

use alloc::vec::Vec;
use core::net::SocketAddrV4;

use super::driver::{NetDriver, RawPollFd, Shutdown, SocketKind};
use super::error::{reserved, NetError};
use super::sets::{Fd, RawSocket, FD_SETSIZE};

#[derive(Clone, Copy, Debug)]
struct OpenSocket {
    raw: RawSocket,
    nonblocking: bool,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The generation of the slot's current (or next) socket, up to [`Fd::MAX_GENERATION`];
    /// [`RETIRED`] once the slot has used them all.
    generation: u64,
    open: Option<OpenSocket>,
}

/// The generation of a slot that has held [`Fd::MAX_GENERATION`] + 1 sockets: it never holds
/// another, since the next would need a generation some stale descriptor may still carry.
const RETIRED: u64 = u64::MAX;

/// Sockets by descriptor over one network driver.
///
/// The table's capacity is fixed at construction, and so is every buffer the layer uses, so no
/// call allocates. Calls are the BSD ones; [`Sockets::select`] and [`Sockets::poll`] give POSIX
/// results even over a driver whose select/poll fails when a socket has a pending error.
///
/// A closed descriptor stays closed: each slot numbers its sockets with a generation that a
/// descriptor carries (see [`Fd`]), and a slot that has used every generation is retired rather
/// than wrap (it would take 2^54 open/close cycles of that one slot; it then no longer counts
/// towards the free descriptors, though still towards [`Sockets::capacity`]).
pub struct Sockets<D> {
    pub(super) driver: D,
    slots: Vec<Slot>,
    open_count: usize,
    /// Raw poll entries for [`Sockets::poll`], sized once to the capacity.
    pub(super) poll_scratch: Vec<RawPollFd>,
}

impl<D: NetDriver> Sockets<D> {
    /// A table of `capacity` descriptors (1..=[`FD_SETSIZE`]) over `driver`.
    ///
    /// Fails with [`NetError::InvalidInput`] for a capacity out of range and
    /// [`NetError::NoBuffers`] when the table cannot be allocated.
    pub fn new(driver: D, capacity: usize) -> Result<Self, NetError> {
        if capacity == 0 || capacity > FD_SETSIZE {
            return Err(NetError::InvalidInput);
        }
        let mut slots = reserved(capacity)?;
        slots.resize(
            capacity,
            Slot {
                generation: 0,
                open: None,
            },
        );
        let poll_scratch = reserved(capacity)?;
        Ok(Sockets {
            driver,
            slots,
            open_count: 0,
            poll_scratch,
        })
    }

    /// How many descriptors the table holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// How many descriptors are open.
    pub fn open_count(&self) -> usize {
        self.open_count
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The driver, mutably (for driver-specific set-up; socket calls should go through the table).
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The driver's socket behind a descriptor.
    pub fn raw_socket(&self, fd: Fd) -> Result<RawSocket, NetError> {
        self.open_socket(fd).map(|open| open.raw)
    }

    /// The open descriptors, ascending.
    pub fn descriptors(&self) -> impl Iterator<Item = Fd> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.open.map(|_| Fd::new(index, slot.generation)))
    }

    fn open_socket(&self, fd: Fd) -> Result<OpenSocket, NetError> {
        match self.slots.get(fd.index()) {
            Some(Slot {
                generation,
                open: Some(open),
            }) if *generation == fd.generation() => Ok(*open),
            _ => Err(NetError::BadDescriptor),
        }
    }

    /// The raw socket at a descriptor number, as a select set names it: numbers beyond the table
    /// make the set oversized ([`NetError::InvalidInput`]), closed ones are
    /// [`NetError::BadDescriptor`].
    pub(super) fn raw_at_index(&self, index: usize) -> Result<RawSocket, NetError> {
        match self.slots.get(index) {
            None => Err(NetError::InvalidInput),
            Some(Slot {
                open: Some(open), ..
            }) => Ok(open.raw),
            Some(_) => Err(NetError::BadDescriptor),
        }
    }

    /// The open descriptor with number `index` (as a select set names it).
    pub fn descriptor_at(&self, index: usize) -> Result<Fd, NetError> {
        self.raw_at_index(index)?;
        Ok(Fd::new(index, self.slots[index].generation))
    }

    fn free_index(&self) -> Result<usize, NetError> {
        self.slots
            .iter()
            .position(|slot| slot.open.is_none() && slot.generation != RETIRED)
            .ok_or(NetError::TooManyDescriptors)
    }

    fn install(&mut self, index: usize, raw: RawSocket) -> Fd {
        let slot = &mut self.slots[index];
        slot.open = Some(OpenSocket {
            raw,
            nonblocking: false,
        });
        self.open_count += 1;
        Fd::new(index, slot.generation)
    }

    /// socket(): a new socket. [`NetError::TooManyDescriptors`] when the table is full.
    pub fn socket(&mut self, kind: SocketKind) -> Result<Fd, NetError> {
        let index = self.free_index()?;
        let raw = self.driver.socket(kind)?;
        Ok(self.install(index, raw))
    }

    /// bind().
    pub fn bind(&mut self, fd: Fd, addr: SocketAddrV4) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.bind(raw, addr)
    }

    /// listen().
    pub fn listen(&mut self, fd: Fd, backlog: usize) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.listen(raw, backlog)
    }

    /// accept(): the new connection's descriptor (blocking mode) and the peer's address.
    ///
    /// A free descriptor is found first, so a full table refuses with
    /// [`NetError::TooManyDescriptors`] and leaves the connection queued instead of losing it.
    pub fn accept(&mut self, fd: Fd) -> Result<(Fd, SocketAddrV4), NetError> {
        let raw = self.raw_socket(fd)?;
        let index = self.free_index()?;
        let (accepted, peer) = self.driver.accept(raw)?;
        Ok((self.install(index, accepted), peer))
    }

    /// connect().
    pub fn connect(&mut self, fd: Fd, addr: SocketAddrV4) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.connect(raw, addr)
    }

    /// send(): how many bytes the driver accepted. An empty buffer is
    /// [`NetError::InvalidInput`]: sending nothing is always a caller's mistake here.
    pub fn send(&mut self, fd: Fd, data: &[u8]) -> Result<usize, NetError> {
        let raw = self.raw_socket(fd)?;
        if data.is_empty() {
            return Err(NetError::InvalidInput);
        }
        self.driver.send(raw, data)
    }

    /// recv(): bytes received, `Ok(0)` only at end of stream. An empty buffer is
    /// [`NetError::InvalidInput`], so `Ok(0)` can never be mistaken for end of stream.
    pub fn recv(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize, NetError> {
        let raw = self.raw_socket(fd)?;
        if buf.is_empty() {
            return Err(NetError::InvalidInput);
        }
        self.driver.recv(raw, buf)
    }

    /// shutdown().
    pub fn shutdown(&mut self, fd: Fd, how: Shutdown) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.shutdown(raw, how)
    }

    /// close(): the descriptor is released even when the driver reports an error (as POSIX
    /// close does), so descriptors never leak; a second close is [`NetError::BadDescriptor`].
    pub fn close(&mut self, fd: Fd) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        let slot = &mut self.slots[fd.index()];
        slot.open = None;
        slot.generation = if slot.generation < Fd::MAX_GENERATION {
            slot.generation + 1
        } else {
            RETIRED
        };
        self.open_count -= 1;
        self.driver.close(raw)
    }

    /// Sets or clears non-blocking mode.
    pub fn set_nonblocking(&mut self, fd: Fd, nonblocking: bool) -> Result<(), NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.set_nonblocking(raw, nonblocking)?;
        if let Some(open) = self.slots[fd.index()].open.as_mut() {
            open.nonblocking = nonblocking;
        }
        Ok(())
    }

    /// Whether the descriptor is in non-blocking mode.
    pub fn is_nonblocking(&self, fd: Fd) -> Result<bool, NetError> {
        self.open_socket(fd).map(|open| open.nonblocking)
    }

    /// getsockopt(SO_ERROR): the pending error, which reading clears.
    pub fn take_error(&mut self, fd: Fd) -> Result<Option<NetError>, NetError> {
        let raw = self.raw_socket(fd)?;
        self.driver.take_error(raw)
    }
}

impl<D> core::fmt::Debug for Sockets<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sockets")
            .field("capacity", &self.slots.len())
            .field("open", &self.open_count)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The end of a slot's generations, reached by setting a slot's generation directly (the
    //! real width: 2^54 cycles would take years).

    use super::*;

    /// A driver whose sockets are numbers handed out in turn, and whose close always succeeds.
    #[derive(Default)]
    struct CountingDriver {
        opened: u32,
    }

    impl NetDriver for CountingDriver {
        fn socket(&mut self, _kind: SocketKind) -> Result<RawSocket, NetError> {
            self.opened += 1;
            Ok(RawSocket(self.opened - 1))
        }

        fn close(&mut self, _socket: RawSocket) -> Result<(), NetError> {
            Ok(())
        }
    }

    #[test]
    fn a_slot_that_used_every_generation_retires_instead_of_wrapping() {
        let mut table = Sockets::new(CountingDriver::default(), 2).unwrap();
        let first = table.socket(SocketKind::Stream).unwrap();
        table.close(first).unwrap();
        table.slots[0].generation = Fd::MAX_GENERATION - 1;
        let before_last = table.socket(SocketKind::Stream).unwrap();
        table.close(before_last).unwrap();
        let last = table.socket(SocketKind::Stream).unwrap();
        assert_eq!((last.index(), last.generation()), (0, Fd::MAX_GENERATION));
        assert_eq!(Fd::from_parts(0, Fd::MAX_GENERATION), Ok(last));
        assert!(table.raw_socket(last).is_ok());
        table.close(last).unwrap();

        // Slot 0 is retired: new sockets go elsewhere, and no descriptor reaches it again.
        let next = table.socket(SocketKind::Stream).unwrap();
        assert_eq!((next.index(), next.generation()), (1, 0));
        assert_eq!(
            table.socket(SocketKind::Stream),
            Err(NetError::TooManyDescriptors),
            "one slot open, the other retired"
        );
        for stale in [first, before_last, last] {
            assert_eq!(table.raw_socket(stale), Err(NetError::BadDescriptor));
            assert_eq!(table.close(stale), Err(NetError::BadDescriptor));
        }
        assert_eq!(table.descriptor_at(0), Err(NetError::BadDescriptor));
        assert_eq!(table.descriptors().collect::<Vec<_>>(), [next]);
        assert_eq!(table.open_count(), 1);
        table.close(next).unwrap();
        assert_eq!(table.socket(SocketKind::Stream).map(|fd| fd.index()), Ok(1));
    }

    #[test]
    fn descriptors_round_trip_their_parts_and_refuse_oversized_ones() {
        for (index, generation) in [(0, 0), (FD_SETSIZE - 1, Fd::MAX_GENERATION), (7, 1 << 40)] {
            let fd = Fd::from_parts(index, generation).unwrap();
            assert_eq!((fd.index(), fd.generation()), (index, generation));
        }
        assert_eq!(
            Fd::from_parts(0, Fd::MAX_GENERATION + 1),
            Err(NetError::InvalidInput)
        );
        assert_eq!(Fd::from_parts(FD_SETSIZE, 0), Err(NetError::InvalidInput));
        assert_eq!(core::mem::size_of::<Fd>(), 8);
    }
}
