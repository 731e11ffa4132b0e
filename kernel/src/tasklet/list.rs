//! Intrusive lists: one link type, and the two list shapes the scheduler threads through it.
//!
//! A node (a tasklet control block) carries one [`Link`] per list it can be in, and an
//! [`Adapter`] names which link a list uses. [`List`] is a linear FIFO with a head and a tail
//! (wait queues, the cross-CPU inbox, the sorted timer queue, the reap list); [`Ring`] is a
//! circle with no ends (the run ring, whose position the scheduler keeps); [`RingFifo`] is a
//! FIFO on a ring, kept by one pointer (a tasklet's joiners, a queue in every control block
//! that is nearly always empty). [`Fifo`] is what the two FIFO shapes share. All the pointer
//! surgery of the kernel's lists is here, so the callers hold no `unsafe` for it.
//!
//! # The contract
//! Lists hold raw pointers to their nodes, and hand out `&'static` references to them. Linking
//! a node is therefore `unsafe`: its caller promises that the node stays alive, at its address,
//! until it is unlinked, and that a node is in at most one list per link at a time. The lock or
//! CPU that owns a list owns the links of its members. Everything else is safe to call.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr;

/// A node's place in one list: its neighbours (null at a list's ends, and when unlinked).
pub(crate) struct Link<T> {
    next: Cell<*const T>,
    prev: Cell<*const T>,
}

impl<T> Link<T> {
    /// An unlinked link.
    pub(crate) const fn new() -> Self {
        Self {
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
        }
    }

    #[inline(always)]
    fn set(&self, prev: *const T, next: *const T) {
        self.prev.set(prev);
        self.next.set(next);
    }
}

/// Which [`Link`] of a node a list threads through.
pub(crate) trait Adapter {
    /// The node type.
    type Node: 'static;
    /// The node's link for this list.
    fn link(node: &Self::Node) -> &Link<Self::Node>;
}

/// # Safety
/// A non-null `node` was linked under the module contract (alive while linked).
#[inline(always)]
unsafe fn node_ref<T: 'static>(node: *const T) -> Option<&'static T> {
    // SAFETY: forwarded contract.
    unsafe { node.as_ref() }
}

/// A linear doubly linked list: FIFO at its ends, removal and insertion anywhere.
///
/// Its ends are cells, like the rest of the scheduler's per-CPU state: the owner (a lock or a
/// CPU) serialises every use, and a shared reference is all it needs.
pub(crate) struct List<A: Adapter> {
    head: Cell<*const A::Node>,
    tail: Cell<*const A::Node>,
    adapter: PhantomData<A>,
}

// SAFETY: a list is a pair of pointers to nodes whose owner (a lock or a CPU) serialises every
// use; moving that pair to another thread moves no node.
unsafe impl<A: Adapter> Send for List<A> where A::Node: Sync {}

impl<A: Adapter> List<A> {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        Self {
            head: Cell::new(ptr::null()),
            tail: Cell::new(ptr::null()),
            adapter: PhantomData,
        }
    }

    /// Whether the list has no node.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get().is_null()
    }

    /// The first node.
    #[inline(always)]
    pub(crate) fn front(&self) -> Option<&'static A::Node> {
        // SAFETY: members are alive while linked (module contract).
        unsafe { node_ref(self.head.get()) }
    }

    /// The node after `node`, a member of this list.
    #[inline(always)]
    pub(crate) fn next_of(&self, node: &A::Node) -> Option<&'static A::Node> {
        // SAFETY: as in `front`.
        unsafe { node_ref(A::link(node).next.get()) }
    }

    /// Links `node` at the end.
    ///
    /// # Safety
    /// `node` is in no list through this link, and stays alive at its address until unlinked.
    #[inline(always)]
    pub(crate) unsafe fn push_back(&self, node: &A::Node) {
        let tail = self.tail.get();
        A::link(node).set(tail, ptr::null());
        // SAFETY: the tail, if any, is a live member.
        match unsafe { node_ref(tail) } {
            Some(tail) => A::link(tail).next.set(node),
            None => self.head.set(node),
        }
        self.tail.set(node);
    }

    /// Links `node` at the front.
    ///
    /// # Safety
    /// As for [`List::push_back`].
    #[inline]
    pub(crate) unsafe fn push_front(&self, node: &A::Node) {
        let head = self.head.get();
        A::link(node).set(ptr::null(), head);
        // SAFETY: the head, if any, is a live member.
        match unsafe { node_ref(head) } {
            Some(head) => A::link(head).prev.set(node),
            None => self.tail.set(node),
        }
        self.head.set(node);
    }

    /// Links `node` just before `position` (a member of this list), or at the end for `None`.
    ///
    /// # Safety
    /// As for [`List::push_back`].
    #[inline]
    pub(crate) unsafe fn insert_before(&self, position: Option<&A::Node>, node: &A::Node) {
        let Some(position) = position else {
            // SAFETY: forwarded contract.
            return unsafe { self.push_back(node) };
        };
        let prev = A::link(position).prev.get();
        A::link(node).set(prev, position);
        A::link(position).prev.set(node);
        // SAFETY: a linked neighbour is a live member.
        match unsafe { node_ref(prev) } {
            Some(prev) => A::link(prev).next.set(node),
            None => self.head.set(node),
        }
    }

    /// Unlinks and returns the first node. Its link keeps stale values until it is linked again
    /// (nothing reads the link of an unlinked node).
    #[inline(always)]
    pub(crate) fn pop_front(&self) -> Option<&'static A::Node> {
        let head = self.front()?;
        let next = A::link(head).next.get();
        self.head.set(next);
        // SAFETY: a linked neighbour is a live member.
        match unsafe { node_ref(next) } {
            Some(next) => A::link(next).prev.set(ptr::null()),
            None => self.tail.set(ptr::null()),
        }
        Some(head)
    }

    /// Unlinks `node` and clears its link.
    ///
    /// # Safety
    /// `node` is a member of this list.
    #[inline]
    pub(crate) unsafe fn remove(&self, node: &A::Node) {
        let link = A::link(node);
        let (prev, next) = (link.prev.get(), link.next.get());
        // SAFETY: linked neighbours are live members.
        match unsafe { node_ref(prev) } {
            Some(prev) => A::link(prev).next.set(next),
            None => self.head.set(next),
        }
        // SAFETY: as above.
        match unsafe { node_ref(next) } {
            Some(next) => A::link(next).prev.set(prev),
            None => self.tail.set(prev),
        }
        link.set(ptr::null(), ptr::null());
    }

    /// Detaches every node at once, leaving this list empty: the returned list owns them.
    #[inline]
    pub(crate) fn take_all(&self) -> Self {
        Self {
            head: Cell::new(self.head.replace(ptr::null())),
            tail: Cell::new(self.tail.replace(ptr::null())),
            adapter: PhantomData,
        }
    }

    /// The nodes, front to back. Do not unlink them meanwhile.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'static A::Node> + '_ {
        Fifo::walk(self)
    }
}

/// The queue operations both FIFO shapes ([`List`], [`RingFifo`]) provide, for the wait queues
/// that may take either.
pub(crate) trait Fifo {
    /// The node type.
    type Node: 'static;
    /// An empty queue.
    const EMPTY: Self;
    /// The first node.
    fn front(&self) -> Option<&'static Self::Node>;
    /// The node after `node`, a member of this queue.
    fn next_of(&self, node: &Self::Node) -> Option<&'static Self::Node>;
    /// Links `node` at the end.
    ///
    /// # Safety
    /// `node` is in no list through this link, and stays alive at its address until unlinked.
    unsafe fn push_back(&self, node: &Self::Node);
    /// Unlinks and returns the first node.
    fn pop_front(&self) -> Option<&'static Self::Node>;
    /// Unlinks `node`.
    ///
    /// # Safety
    /// `node` is a member of this queue.
    unsafe fn remove(&self, node: &Self::Node);

    /// The nodes, front to back. Do not unlink them meanwhile.
    fn walk(&self) -> impl Iterator<Item = &'static Self::Node> + '_ {
        let mut cursor = self.front();
        core::iter::from_fn(move || {
            let node = cursor?;
            cursor = self.next_of(node);
            Some(node)
        })
    }
}

impl<A: Adapter> Fifo for List<A> {
    type Node = A::Node;
    const EMPTY: Self = Self::new();

    #[inline(always)]
    fn front(&self) -> Option<&'static A::Node> {
        List::front(self)
    }

    #[inline(always)]
    fn next_of(&self, node: &A::Node) -> Option<&'static A::Node> {
        List::next_of(self, node)
    }

    #[inline(always)]
    unsafe fn push_back(&self, node: &A::Node) {
        // SAFETY: forwarded contract.
        unsafe { List::push_back(self, node) }
    }

    #[inline(always)]
    fn pop_front(&self) -> Option<&'static A::Node> {
        List::pop_front(self)
    }

    #[inline(always)]
    unsafe fn remove(&self, node: &A::Node) {
        // SAFETY: forwarded contract.
        unsafe { List::remove(self, node) }
    }
}

/// A FIFO on a [`Ring`], kept by one pointer: its first node (the last is the first's
/// predecessor). Half the size of a [`List`], for queues that are nearly always empty.
pub(crate) struct RingFifo<A: Adapter> {
    first: Cell<*const A::Node>,
    adapter: PhantomData<A>,
}

// SAFETY: as for `List`: a pointer to a node whose owner serialises every use.
unsafe impl<A: Adapter> Send for RingFifo<A> where A::Node: Sync {}

impl<A: Adapter> Fifo for RingFifo<A> {
    type Node = A::Node;
    const EMPTY: Self = Self {
        first: Cell::new(ptr::null()),
        adapter: PhantomData,
    };

    #[inline(always)]
    fn front(&self) -> Option<&'static A::Node> {
        // SAFETY: members are alive while linked (module contract).
        unsafe { node_ref(self.first.get()) }
    }

    #[inline]
    fn next_of(&self, node: &A::Node) -> Option<&'static A::Node> {
        let next = Ring::<A>::next(node);
        (!ptr::eq(next, self.first.get())).then_some(next)
    }

    #[inline]
    unsafe fn push_back(&self, node: &A::Node) {
        // SAFETY: forwarded contract; the first node, if any, is a member of the ring. The
        // last node is just before the first.
        unsafe {
            match self.front() {
                Some(first) => Ring::<A>::insert_before(first, node),
                None => {
                    Ring::<A>::link_alone(node);
                    self.first.set(node);
                }
            }
        }
    }

    #[inline]
    fn pop_front(&self) -> Option<&'static A::Node> {
        let first = self.front()?;
        self.first
            .set(Ring::<A>::unlink(first).map_or(ptr::null(), ptr::from_ref));
        Some(first)
    }

    #[inline]
    unsafe fn remove(&self, node: &A::Node) {
        let successor = Ring::<A>::unlink(node);
        if ptr::eq(node, self.first.get()) {
            self.first.set(successor.map_or(ptr::null(), ptr::from_ref));
        }
    }
}

/// A circular doubly linked list with no ends: every member has a successor and a predecessor
/// (itself when alone). It keeps no position: its owner holds a member to start from.
pub(crate) struct Ring<A: Adapter>(PhantomData<A>);

impl<A: Adapter> Ring<A> {
    /// Makes `node` a ring of its own.
    ///
    /// # Safety
    /// `node` is in no ring through this link, and stays alive at its address until unlinked.
    #[inline(always)]
    pub(crate) unsafe fn link_alone(node: &A::Node) {
        A::link(node).set(node, node);
    }

    /// Links `node` into the ring of `anchor` right after it.
    ///
    /// # Safety
    /// As for [`Ring::link_alone`]; `anchor` is in a ring.
    #[inline(always)]
    pub(crate) unsafe fn insert_after(anchor: &A::Node, node: &A::Node) {
        let after = A::link(anchor).next.get();
        A::link(node).set(anchor, after);
        A::link(anchor).next.set(node);
        // SAFETY: a ring member's neighbour is a live member.
        unsafe { A::link(&*after).prev.set(node) };
    }

    /// Links `node` into the ring of `anchor` right before it (last, counting from `anchor`).
    ///
    /// # Safety
    /// As for [`Ring::insert_after`].
    #[inline(always)]
    pub(crate) unsafe fn insert_before(anchor: &A::Node, node: &A::Node) {
        let before = A::link(anchor).prev.get();
        A::link(node).set(before, anchor);
        A::link(anchor).prev.set(node);
        // SAFETY: a ring member's neighbour is a live member.
        unsafe { A::link(&*before).next.set(node) };
    }

    /// The successor of `node`, a ring member (itself when alone).
    #[inline(always)]
    pub(crate) fn next(node: &A::Node) -> &'static A::Node {
        // SAFETY: a ring member's neighbour is a live member (module contract).
        unsafe { &*A::link(node).next.get() }
    }

    /// The predecessor of `node`, a ring member (itself when alone).
    #[inline(always)]
    pub(crate) fn prev(node: &A::Node) -> &'static A::Node {
        // SAFETY: as in `next`.
        unsafe { &*A::link(node).prev.get() }
    }

    /// Unlinks `node`, a ring member, and clears its link. Returns its successor, unless `node`
    /// was alone.
    #[inline(always)]
    pub(crate) fn unlink(node: &A::Node) -> Option<&'static A::Node> {
        let link = A::link(node);
        let (prev, next) = (link.prev.get(), link.next.get());
        link.set(ptr::null(), ptr::null());
        if ptr::eq(next, node) {
            return None;
        }
        // SAFETY: ring neighbours are live members.
        unsafe {
            A::link(&*prev).next.set(next);
            A::link(&*next).prev.set(prev);
            Some(&*next)
        }
    }

    /// Whether `node` is in a ring (its link is set).
    #[inline(always)]
    pub(crate) fn is_linked(node: &A::Node) -> bool {
        !A::link(node).next.get().is_null()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::boxed::Box;
    use std::collections::VecDeque;
    use std::vec::Vec;

    struct Node {
        id: usize,
        link: Link<Node>,
    }

    struct ByLink;
    impl Adapter for ByLink {
        type Node = Node;
        fn link(node: &Node) -> &Link<Node> {
            &node.link
        }
    }

    /// Leaked nodes: alive for the whole test, as the contract asks.
    fn nodes(count: usize) -> Vec<&'static Node> {
        (0..count)
            .map(|id| {
                &*Box::leak(Box::new(Node {
                    id,
                    link: Link::new(),
                }))
            })
            .collect()
    }

    fn ids(list: &List<ByLink>) -> Vec<usize> {
        list.iter().map(|node| node.id).collect()
    }

    /// Front-to-back and back-to-front walks agree, and the ends are the ends.
    fn check_links(list: &List<ByLink>) {
        let forward: Vec<*const Node> = list.iter().map(|n| n as *const Node).collect();
        let mut backward = Vec::new();
        let mut cursor = list.tail.get();
        while !cursor.is_null() {
            backward.push(cursor);
            // SAFETY: test nodes are leaked.
            cursor = unsafe { (*cursor).link.prev.get() };
        }
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(list.is_empty(), forward.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(usize),
        PushFront(usize),
        InsertBefore(usize, usize),
        PopFront,
        Remove(usize),
        TakeAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..8usize).prop_map(Op::PushBack),
            (0..8usize).prop_map(Op::PushFront),
            (0..8usize, 0..8usize).prop_map(|(a, b)| Op::InsertBefore(a, b)),
            Just(Op::PopFront),
            (0..8usize).prop_map(Op::Remove),
            Just(Op::TakeAll),
        ]
    }

    proptest! {
        /// Every operation keeps the list equal to a `VecDeque` model and its links consistent.
        #[test]
        fn list_matches_a_deque(ops in proptest::collection::vec(op(), 0..64)) {
            let pool = nodes(8);
            let list = List::<ByLink>::new();
            let mut model: VecDeque<usize> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(i) if !model.contains(&i) => {
                        // SAFETY: not linked (the model says), leaked.
                        unsafe { list.push_back(pool[i]) };
                        model.push_back(i);
                    }
                    Op::PushFront(i) if !model.contains(&i) => {
                        // SAFETY: as above.
                        unsafe { list.push_front(pool[i]) };
                        model.push_front(i);
                    }
                    Op::InsertBefore(at, i) if !model.contains(&i) => {
                        let position = model.iter().position(|&m| m == at);
                        // SAFETY: as above; the position is a member or None.
                        unsafe { list.insert_before(position.map(|_| pool[at]), pool[i]) };
                        match position {
                            Some(p) => model.insert(p, i),
                            None => model.push_back(i),
                        }
                    }
                    Op::PopFront => {
                        prop_assert_eq!(list.pop_front().map(|n| n.id), model.pop_front());
                    }
                    Op::Remove(i) => {
                        if let Some(p) = model.iter().position(|&m| m == i) {
                            // SAFETY: a member (the model says).
                            unsafe { list.remove(pool[i]) };
                            model.remove(p);
                        }
                    }
                    Op::TakeAll => {
                        let taken = list.take_all();
                        prop_assert!(list.is_empty());
                        let drained: Vec<usize> =
                            core::iter::from_fn(|| taken.pop_front().map(|n| n.id)).collect();
                        prop_assert_eq!(drained, model.drain(..).collect::<Vec<_>>());
                    }
                    _ => {}
                }
                check_links(&list);
                prop_assert_eq!(ids(&list), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(list.front().map(|n| n.id), model.front().copied());
            }
        }

        /// A one-pointer FIFO stays equal to a `VecDeque` model under pushes, pops and
        /// removals anywhere, and its walk ends at its last node.
        #[test]
        fn ring_fifo_matches_a_deque(ops in proptest::collection::vec(op(), 0..64)) {
            let pool = nodes(8);
            let fifo = RingFifo::<ByLink>::EMPTY;
            let mut model: VecDeque<usize> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(i) | Op::PushFront(i) | Op::InsertBefore(_, i)
                        if !model.contains(&i) =>
                    {
                        // SAFETY: not linked (the model says), leaked.
                        unsafe { fifo.push_back(pool[i]) };
                        model.push_back(i);
                    }
                    Op::PopFront | Op::TakeAll => {
                        prop_assert_eq!(fifo.pop_front().map(|n| n.id), model.pop_front());
                    }
                    Op::Remove(i) => {
                        if let Some(p) = model.iter().position(|&m| m == i) {
                            // SAFETY: a member (the model says).
                            unsafe { fifo.remove(pool[i]) };
                            model.remove(p);
                            prop_assert!(!Ring::<ByLink>::is_linked(pool[i]));
                        }
                    }
                    _ => {}
                }
                let walked: Vec<usize> = fifo.walk().map(|n| n.id).collect();
                prop_assert_eq!(walked, model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(fifo.front().map(|n| n.id), model.front().copied());
            }
        }

        /// A ring walked from any member visits every member once, in insertion order, and
        /// unlinking hands back the successor.
        #[test]
        fn ring_matches_a_circular_model(ops in proptest::collection::vec((any::<bool>(), 0..8usize), 1..48)) {
            let pool = nodes(8);
            // SAFETY: node 0 starts the ring; leaked.
            unsafe { Ring::<ByLink>::link_alone(pool[0]) };
            let mut model: Vec<usize> = vec![0];
            for (insert, i) in ops {
                let anchor = model[0];
                if insert && !model.contains(&i) {
                    // SAFETY: not linked, leaked; the anchor is a member.
                    unsafe { Ring::<ByLink>::insert_before(pool[anchor], pool[i]) };
                    model.push(i);
                } else if !insert && model.len() > 1 && model.contains(&i) {
                    let p = model.iter().position(|&m| m == i).unwrap();
                    let successor = Ring::<ByLink>::unlink(pool[i]).map(|n| n.id);
                    model.remove(p);
                    prop_assert_eq!(successor, Some(model[p % model.len()]));
                    prop_assert!(!Ring::<ByLink>::is_linked(pool[i]));
                }
                let mut walk = vec![model[0]];
                let mut cursor = Ring::<ByLink>::next(pool[model[0]]);
                while cursor.id != model[0] {
                    walk.push(cursor.id);
                    cursor = Ring::<ByLink>::next(cursor);
                }
                prop_assert_eq!(&walk, &model);
            }
        }
    }

    #[test]
    fn a_ring_member_alone_is_its_own_neighbour() {
        let pool = nodes(2);
        // SAFETY: leaked, unlinked.
        unsafe { Ring::<ByLink>::link_alone(pool[0]) };
        assert_eq!(Ring::<ByLink>::next(pool[0]).id, 0);
        // SAFETY: leaked, unlinked; the anchor is a member.
        unsafe { Ring::<ByLink>::insert_after(pool[0], pool[1]) };
        assert_eq!(Ring::<ByLink>::next(pool[0]).id, 1);
        assert_eq!(Ring::<ByLink>::next(pool[1]).id, 0);
        assert_eq!(Ring::<ByLink>::unlink(pool[1]).map(|n| n.id), Some(0));
        assert_eq!(Ring::<ByLink>::unlink(pool[0]).map(|n| n.id), None);
    }
}
