//! Wake slots: where a parked call waits, and how a wake-up reaches it.
//!
//! A [`super::Net`] and its clones share one [`Shared`]: the lock-protected tables ([`Inner`]:
//! the descriptor table, the reactor, the wake slots) and one wait list per slot. A parked call
//! owns a slot, named in the reactor by a [`WakeRef`]. A poll pass or a close takes the ended
//! waits' references out of the reactor into `woken`; [`Inner::record`] records each wake-up in
//! its slot under the lock, and [`Shared::deliver`] grants them once the lock is free (waking
//! may switch). Parking and unparking are the blocking layer's.

use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;

use spin::Mutex;

use super::reactor::{Interest, Reactor, Wakeup};
use super::sets::Fd;
use super::socket::Sockets;
use crate::tasklet::waiter::WaitList;

/// A parked call's wake slot, named in the reactor by index and generation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct WakeRef {
    pub(super) index: u16,
    /// 64 bits, as the reactor's: a stale reference never names a later call of its slot.
    pub(super) generation: u64,
}

#[derive(Default)]
pub(super) struct WakeSlot {
    pub(super) generation: u64,
    /// Whether a parked call owns the slot (and is registered in the slot's wait list).
    pub(super) in_use: bool,
    /// Why the poller (or a close) woke the slot's call; the call reads it when it settles.
    pub(super) wakeup: Option<Wakeup>,
    /// The wake-up is recorded but not granted yet: [`Shared::deliver`] grants it once the lock
    /// is released.
    pub(super) ungranted: bool,
}

pub(super) struct Inner<D> {
    pub(super) sockets: Sockets<D>,
    pub(super) reactor: Reactor<WakeRef>,
    pub(super) slots: Vec<WakeSlot>,
    /// Wakers taken out by a pass or a close, before their wake-ups are recorded.
    pub(super) woken: Vec<(WakeRef, Wakeup)>,
    /// Interests of one parking call (a select or poll has many), sized once.
    pub(super) interests: Vec<(Fd, Interest)>,
    /// Slots whose wake-up is recorded and not yet granted.
    pub(super) ungranted: usize,
}

impl<D> Inner<D> {
    /// Records the wake-ups in `woken` in their slots, for [`Shared::deliver`] to grant.
    pub(super) fn record(&mut self) {
        for (wake, wakeup) in self.woken.drain(..) {
            let slot = &mut self.slots[usize::from(wake.index)];
            if slot.in_use && slot.generation == wake.generation && !slot.ungranted {
                slot.wakeup = Some(wakeup);
                slot.ungranted = true;
                self.ungranted += 1;
            }
        }
    }
}

pub(super) struct Shared<D> {
    pub(super) inner: Mutex<Inner<D>>,
    /// One wait list per wake slot: a parked call waits in its slot's list. They live as long
    /// as the `Net`, so no wait outlives its list.
    pub(super) waiters: Vec<WaitList>,
    pub(super) poller_running: AtomicBool,
}

impl<D> Shared<D> {
    /// Grants every recorded wake-up, in slot order, and wakes the calls blocked for them
    /// (switching to each at once when it lives on this CPU); returns how many it woke. A call
    /// not blocked at that instant (still on its way to block, or leaving after a timeout or a
    /// kill) finds its grant when it gets there. Called without the lock: waking may switch.
    pub(super) fn deliver(&self) -> usize {
        let mut delivered = 0;
        for (index, waiters) in self.waiters.iter().enumerate() {
            let woken = {
                let mut inner = self.inner.lock();
                if inner.ungranted == 0 {
                    break;
                }
                let slot = &mut inner.slots[index];
                if !slot.ungranted {
                    continue;
                }
                slot.ungranted = false;
                inner.ungranted -= 1;
                // Under the lock: the call cannot settle (and free the slot) meanwhile.
                waiters.grant_detached()
            };
            if let Some(woken) = woken {
                woken.wake_now();
                delivered += 1;
            }
        }
        delivered
    }
}
