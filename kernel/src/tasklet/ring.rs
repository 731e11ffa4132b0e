//! The run ring: the runnable tasklets of one CPU in a circle, the running one at its head.
//!
//! Round robin is a walk around the ring; a woken tasklet goes in just before the head (last
//! in turn) or right after it (next, for a rendezvous partner). Only the home CPU touches its
//! ring.

use super::list::Ring;
use super::tcb::{RingLinks, State, Tcb};
use core::cell::Cell;

/// Where a woken tasklet goes in its ring.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Placement {
    /// At the end of the run queue.
    Tail,
    /// Right after the current tasklet (to be switched to at once by the caller).
    Next,
}

/// One CPU's run ring and its position.
pub(super) struct RunRing {
    /// The running tasklet while it is in the ring, else whoever runs next. (Stale for a moment
    /// while a tasklet blocks: between [`RunRing::remove_head`] and the switch that follows,
    /// which sets it.)
    head: Cell<*const Tcb>,
    len: Cell<usize>,
}

impl RunRing {
    pub(super) const fn new() -> Self {
        Self {
            head: Cell::new(core::ptr::null()),
            len: Cell::new(0),
        }
    }

    /// Starts the ring with `main`, the CPU's own context, running.
    pub(super) fn start(&self, main: &'static Tcb) {
        // SAFETY: the main control block lives as long as its scheduler ('static), in no ring.
        unsafe { Ring::<RingLinks>::link_alone(main) };
        main.set_state(State::Runnable);
        self.head.set(main);
        self.len.set(1);
    }

    /// Runnable tasklets, the running one included.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len.get()
    }

    /// The ring position (see the field), if the ring is not empty.
    #[inline]
    pub(super) fn head(&self) -> Option<&'static Tcb> {
        // SAFETY: ring members are live control blocks of this CPU.
        unsafe { self.head.get().as_ref() }
    }

    #[inline]
    pub(super) fn set_head(&self, tcb: &Tcb) {
        self.head.set(tcb);
    }

    /// Links `tcb` into the ring (it must not be in it) and makes it runnable.
    #[inline]
    pub(super) fn insert(&self, tcb: &Tcb, placement: Placement) {
        tcb.set_state(State::Runnable);
        // SAFETY: `tcb` is a tasklet of this CPU in no ring (its callers make it runnable from
        // paused, blocked or waking), kept alive by its scheduler while it lives.
        unsafe {
            match self.head() {
                None => {
                    Ring::<RingLinks>::link_alone(tcb);
                    self.head.set(tcb);
                }
                // The tail is just before the head.
                Some(head) => match placement {
                    Placement::Tail => Ring::<RingLinks>::insert_before(head, tcb),
                    Placement::Next => Ring::<RingLinks>::insert_after(head, tcb),
                },
            }
        }
        self.len.set(self.len.get() + 1);
    }

    /// Unlinks the running tasklet `me`, the head, and returns its successor, if any, which the
    /// caller must switch to at once: the switch makes it the head (the head is left stale
    /// until then, saving a store). (Not through [`RunRing::remove`]: blocking knows where `me`
    /// is, which saves a test.)
    #[inline]
    pub(super) fn remove_head(&self, me: &Tcb) -> Option<&'static Tcb> {
        debug_assert!(
            core::ptr::eq(self.head.get(), me),
            "blocking off the ring head"
        );
        let next = Ring::<RingLinks>::unlink(me);
        if next.is_none() {
            self.head.set(core::ptr::null());
        }
        self.len.set(self.len.get() - 1);
        next
    }

    /// Unlinks `tcb` (it must be in the ring); the head moves to its successor.
    pub(super) fn remove(&self, tcb: &Tcb) {
        let next = Ring::<RingLinks>::unlink(tcb);
        if core::ptr::eq(self.head.get(), tcb) {
            self.head
                .set(next.map_or(core::ptr::null(), |next| next as *const Tcb));
        }
        self.len.set(self.len.get() - 1);
    }

    /// The tasklet after `me`, the running ring member (`me` itself when alone); `None` if `me`
    /// is not in the ring.
    #[inline(always)]
    pub(super) fn next_after(me: &Tcb) -> Option<&'static Tcb> {
        Ring::<RingLinks>::is_linked(me).then(|| Ring::<RingLinks>::next(me))
    }

    /// The members, from the position forward (for `check_invariants`; read-only). It ends on
    /// coming back to the position or at an unlinked member, so a ring whose links close
    /// elsewhere keeps going: bound it.
    pub(super) fn walk(&self) -> impl Iterator<Item = &'static Tcb> {
        let start = self.head();
        let mut cursor = start;
        core::iter::from_fn(move || {
            let node = cursor?;
            // An unlinked member (null links) ends the walk instead of being followed.
            cursor = Self::next_after(node)
                .filter(|&next| !start.is_some_and(|start| core::ptr::eq(next, start)));
            Some(node)
        })
    }

    /// The tasklet before `tcb` in the ring (`tcb` itself when alone); `None` if `tcb` is not
    /// in the ring.
    pub(super) fn prev_before(tcb: &Tcb) -> Option<&'static Tcb> {
        Ring::<RingLinks>::is_linked(tcb).then(|| Ring::<RingLinks>::prev(tcb))
    }

    /// [`RunRing::next_after`] for a tasklet known to be in the ring (the fast yield's).
    #[inline(always)]
    pub(super) fn next_of_member(me: &Tcb) -> &'static Tcb {
        Ring::<RingLinks>::next(me)
    }
}
