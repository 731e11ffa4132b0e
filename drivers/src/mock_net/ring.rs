//! A bounded byte ring: one socket direction's buffer, allocated once per connection.

use super::alloc::vec::Vec;

use spindle::net::NetError;

/// Bytes in FIFO order, never more than the capacity given to [`Ring::allocate`].
#[derive(Debug, Default)]
pub(super) struct Ring {
    bytes: Vec<u8>,
    head: usize,
    len: usize,
}

impl Ring {
    /// Allocates `capacity` bytes (empty ring); [`NetError::NoBuffers`] when memory is short.
    pub(super) fn allocate(capacity: usize) -> Result<Ring, NetError> {
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(capacity)
            .map_err(|_| NetError::NoBuffers)?;
        bytes.resize(capacity, 0);
        Ok(Ring {
            bytes,
            head: 0,
            len: 0,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn free(&self) -> usize {
        self.bytes.len() - self.len
    }

    /// Appends as much of `data` as fits; returns how much.
    pub(super) fn push(&mut self, data: &[u8]) -> usize {
        let count = data.len().min(self.free());
        if count == 0 {
            return 0;
        }
        let capacity = self.bytes.len();
        let tail = (self.head + self.len) % capacity;
        let first = count.min(capacity - tail);
        self.bytes[tail..tail + first].copy_from_slice(&data[..first]);
        self.bytes[..count - first].copy_from_slice(&data[first..count]);
        self.len += count;
        count
    }

    /// Removes up to `out.len()` bytes into `out`; returns how many.
    pub(super) fn pop(&mut self, out: &mut [u8]) -> usize {
        let count = out.len().min(self.len);
        let capacity = self.bytes.len();
        let first = count.min(capacity - self.head);
        out[..first].copy_from_slice(&self.bytes[self.head..self.head + first]);
        out[first..count].copy_from_slice(&self.bytes[..count - first]);
        self.head = (self.head + count) % capacity.max(1);
        self.len -= count;
        count
    }

    /// Moves up to `limit` bytes from the front of `self` to the back of `into`; returns how many.
    pub(super) fn move_into(&mut self, into: &mut Ring, limit: usize) -> usize {
        let mut chunk = [0u8; 256];
        let mut moved = 0;
        while moved < limit {
            let want = (limit - moved).min(chunk.len()).min(into.free());
            let taken = self.pop(&mut chunk[..want]);
            if taken == 0 {
                break;
            }
            into.push(&chunk[..taken]);
            moved += taken;
        }
        moved
    }

    /// Drops the contents (the memory stays).
    pub(super) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}
