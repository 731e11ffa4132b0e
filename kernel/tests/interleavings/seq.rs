//! Small fixed-size sequences (hashable, canonical): the rings, inboxes, wait queues and lists of
//! the model's state, small enough to copy and hash a whole state.

const CAP: usize = 4;
pub(crate) const NIL: u8 = u8::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Seq {
    items: [u8; CAP],
    len: u8,
}

impl core::fmt::Debug for Seq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Seq {
    pub(crate) const EMPTY: Self = Self {
        items: [NIL; CAP],
        len: 0,
    };

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.items[..self.len as usize]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn contains(&self, item: u8) -> bool {
        self.as_slice().contains(&item)
    }

    pub(crate) fn first(&self) -> Option<u8> {
        self.as_slice().first().copied()
    }

    pub(crate) fn push(&mut self, item: u8) {
        self.insert(self.len(), item);
    }

    pub(crate) fn insert(&mut self, index: usize, item: u8) {
        assert!(self.len() < CAP, "model sequence overflow");
        let len = self.len();
        self.items.copy_within(index..len, index + 1);
        self.items[index] = item;
        self.len += 1;
    }

    pub(crate) fn remove(&mut self, item: u8) -> bool {
        let Some(index) = self.as_slice().iter().position(|&x| x == item) else {
            return false;
        };
        let len = self.len();
        self.items.copy_within(index + 1..len, index);
        self.items[len - 1] = NIL;
        self.len -= 1;
        true
    }

    /// `heapless::Vec::swap_remove` of `item`'s position.
    pub(crate) fn remove_swap(&mut self, item: u8) {
        let Some(index) = self.as_slice().iter().position(|&x| x == item) else {
            return;
        };
        let last = self.len() - 1;
        self.items[index] = self.items[last];
        self.items[last] = NIL;
        self.len -= 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<u8> {
        let first = self.first()?;
        self.remove(first);
        Some(first)
    }

    /// Rotates the (circular) ring so that `item` is at its head.
    pub(crate) fn rotate_to(&mut self, item: u8) {
        let index = self
            .as_slice()
            .iter()
            .position(|&x| x == item)
            .expect("rotate to a ring member");
        let len = self.len();
        self.items[..len].rotate_left(index);
    }
}
