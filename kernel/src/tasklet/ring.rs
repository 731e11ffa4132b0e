//! The run ring: the runnable tasklets of one CPU in a circle, the running one at its head.
//!
//! Round robin is a walk around the ring; a woken tasklet goes in just before the head (last
//! in turn) or right after it (next, for a rendezvous partner). Only the home CPU touches its
//! ring.

use super::list::Ring;
use super::sched::Scheduler;
use super::tcb::{RingLinks, State, Tcb};

/// Where a woken tasklet goes in its ring.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Placement {
    /// At the end of the run queue.
    Tail,
    /// Right after the current tasklet (to be switched to at once by the caller).
    Next,
}

impl Scheduler {
    /// Links `tcb` into the ring (it must not be in it).
    #[inline]
    pub(crate) fn ring_insert(&self, tcb: &Tcb, placement: Placement) {
        tcb.set_state(State::Runnable);
        // SAFETY: `tcb` is a tasklet of this CPU in no ring (its callers make it runnable from
        // paused, blocked or waking), kept alive by this scheduler while it lives.
        unsafe {
            match self.ring_head_tcb() {
                None => {
                    Ring::<RingLinks>::link_alone(tcb);
                    self.ring_head.set(tcb);
                }
                // The tail is just before the head.
                Some(head) => match placement {
                    Placement::Tail => Ring::<RingLinks>::insert_before(head, tcb),
                    Placement::Next => Ring::<RingLinks>::insert_after(head, tcb),
                },
            }
        }
        self.ring_len.set(self.ring_len.get() + 1);
    }

    /// Unlinks the running tasklet `me` from the ring, whose head it is (see `ring_head`), and
    /// returns its successor, if any, which the caller must switch to at once: the switch makes
    /// it the head (the ring head is left stale until then, saving a store). (Not through
    /// [`Scheduler::ring_remove`]: blocking knows where `me` is, which saves a test.)
    #[inline]
    pub(super) fn ring_remove_head(&self, me: &Tcb) -> Option<&'static Tcb> {
        debug_assert!(
            core::ptr::eq(self.ring_head.get(), me),
            "blocking off the ring head"
        );
        let next = Ring::<RingLinks>::unlink(me);
        if next.is_none() {
            self.ring_head.set(core::ptr::null());
        }
        self.ring_len.set(self.ring_len.get() - 1);
        next
    }

    /// Unlinks `tcb` from the ring (it must be in it); the head moves to its successor.
    pub(crate) fn ring_remove(&self, tcb: &Tcb) {
        let next = Ring::<RingLinks>::unlink(tcb);
        if core::ptr::eq(self.ring_head.get(), tcb) {
            self.ring_head
                .set(next.map_or(core::ptr::null(), |next| next as *const Tcb));
        }
        self.ring_len.set(self.ring_len.get() - 1);
    }

    #[inline]
    pub(crate) fn set_ring_head(&self, tcb: &Tcb) {
        self.ring_head.set(tcb);
    }

    pub(super) fn ring_head_tcb(&self) -> Option<&'static Tcb> {
        // SAFETY: ring members are live control blocks of this CPU.
        unsafe { self.ring_head.get().as_ref() }
    }
}
