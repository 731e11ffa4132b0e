//! A model of the pseries hypervisor's logical LAN, for host tests of [`crate::llan`].
//!
//! It does what QEMU's `spapr-vlan` does with the driver's memory, through the TCEs the driver
//! set: registration checks and the buffer-list page, a pool of posted receive buffers (taken
//! last-posted first), a frame written 8 bytes into a buffer and a receive-queue entry written
//! control byte last with the pass's toggle, the no-buffer drop counter, and sends copied out
//! at once. Tests deliver frames, read what was sent, inject raw queue entries and make calls
//! fail. A test double: it is not a network.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use crate::devtree::LlanNode;
use crate::hcall::HcallError;
use crate::llan::{
    decode_descriptor, Llan, LlanCalls, LlanConfig, BD_TOGGLE, DROPPED_COUNTER_OFFSET, PAGE_BYTES,
    RXQ_TOGGLE, RXQ_VALID, RX_ENTRY_BYTES, RX_FRAME_OFFSET,
};

const H_PARAMETER: HcallError = HcallError(-4);
const H_RESOURCE: HcallError = HcallError(-16);
const H_DROPPED: HcallError = HcallError(-17);

#[derive(Default)]
struct State {
    /// Bus page → TCE (real address | permissions).
    tces: BTreeMap<u64, u64>,
    open: bool,
    unit: u32,
    buffer_list: u64,
    queue: Option<(u32, usize)>,
    queue_toggle: bool,
    queue_next: usize,
    posted: Vec<u64>,
    sent: VecDeque<Vec<u8>>,
    /// Where sent frames go instead of `sent` (a wire to another model).
    peer: Option<alloc::sync::Weak<Mutex<State>>>,
    signalling: bool,
    failing_adds: u32,
    failing_sends: u32,
    dropped: u64,
}

impl State {
    /// The host pointer for `len` bytes at bus address `ioba`, if every page is mapped.
    fn translate(&self, ioba: u64, len: usize) -> Option<*mut u8> {
        let first = ioba / PAGE_BYTES as u64;
        let last = (ioba + len.max(1) as u64 - 1) / PAGE_BYTES as u64;
        let base = self.tces.get(&first)? & !0xfff;
        for (i, page) in (first..=last).enumerate() {
            // The model needs the pages contiguous in real memory too (the driver's are).
            if self.tces.get(&page)? & !0xfff != base + (i * PAGE_BYTES) as u64 {
                return None;
            }
        }
        Some((base + ioba % PAGE_BYTES as u64) as *mut u8)
    }

    fn write(&self, ioba: u64, bytes: &[u8]) -> bool {
        let Some(target) = self.translate(ioba, bytes.len()) else {
            return false;
        };
        for (i, byte) in bytes.iter().enumerate() {
            // SAFETY: the driver keeps mapped pages valid until H_FREE_LOGICAL_LAN succeeds
            // (the `LlanCalls` contract), and `translate` checked every page is mapped.
            unsafe { target.add(i).write_volatile(*byte) };
        }
        true
    }

    fn read(&self, ioba: u64, out: &mut [u8]) -> bool {
        let Some(source) = self.translate(ioba, out.len()) else {
            return false;
        };
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`.
            *byte = unsafe { source.add(i).read_volatile() };
        }
        true
    }

    fn count_drop(&mut self) {
        self.dropped += 1;
        let counter = self.buffer_list + DROPPED_COUNTER_OFFSET as u64;
        let _ = self.write(counter, &self.dropped.to_be_bytes());
    }

    /// Writes a queue entry at the next position, control byte last, and advances.
    fn push_entry(&mut self, entry: [u8; RX_ENTRY_BYTES]) -> bool {
        let Some((queue, queue_len)) = self.queue else {
            return false;
        };
        let at = u64::from(queue) + self.queue_next as u64;
        if !self.write(at + 1, &entry[1..]) || !self.write(at, &entry[..1]) {
            return false;
        }
        self.queue_next += RX_ENTRY_BYTES;
        if self.queue_next >= queue_len {
            self.queue_next = 0;
            self.queue_toggle = !self.queue_toggle;
        }
        true
    }

    fn control(&self) -> u8 {
        // The first pass carries the toggle bit set; it flips at every wrap.
        if self.queue_toggle {
            RXQ_VALID
        } else {
            RXQ_VALID | RXQ_TOGGLE
        }
    }
}

/// QEMU 7.2's `spapr-vlan` node (as in its device tree) with MAC `52:54:00:12:34:<mac_last>`.
pub const fn qemu_node(mac_last: u8) -> LlanNode {
    LlanNode {
        unit: 0x7100_0001,
        mac: [0x52, 0x54, 0x00, 0x12, 0x34, mac_last],
        liobn: 0x7100_0001,
        dma_base: 0,
        dma_size: 0x1000_0000,
        irq: Some(0x1101),
    }
}

/// A stack for tests: the driver over a new model (its node from [`qemu_node`]) with
/// `rx_buffers`, and small TCP buffers (4 KiB) at `address`, no gateway.
pub fn test_stack(
    mac_last: u8,
    address: core::net::Ipv4Addr,
    tcp_sockets: usize,
    rx_buffers: usize,
) -> (crate::tcpip::TcpIp<Llan<LlanModel>>, LlanModel) {
    use crate::tcpip::{TcpIp, TcpIpConfig};
    let model = LlanModel::new();
    let node = qemu_node(mac_last);
    let llan = match Llan::new(node, model.clone(), LlanConfig { rx_buffers }) {
        Ok(llan) => llan,
        Err(err) => panic!("{err}"),
    };
    let config = TcpIpConfig {
        address,
        gateway: None,
        sockets: 16,
        tcp_sockets,
        rx_buffer: 4096,
        tx_buffer: 4096,
        max_backlog: 4,
        timeout: core::time::Duration::from_secs(5),
        ..TcpIpConfig::qemu_user(node.mac)
    };
    match TcpIp::new(llan, config) {
        Ok(stack) => (stack, model),
        Err(err) => panic!("{err}"),
    }
}

/// The model; clones share it.
#[derive(Clone, Default)]
pub struct LlanModel {
    state: Arc<Mutex<State>>,
}

impl core::fmt::Debug for LlanModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LlanModel")
            .field("posted", &self.posted())
            .finish_non_exhaustive()
    }
}

impl LlanModel {
    /// A closed adapter with an empty TCE table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the driver has the adapter open.
    pub fn is_open(&self) -> bool {
        self.state.lock().open
    }

    /// Receive buffers the driver has posted and the adapter not used yet.
    pub fn posted(&self) -> usize {
        self.state.lock().posted.len()
    }

    /// Mapped TCEs.
    pub fn mapped_pages(&self) -> usize {
        self.state
            .lock()
            .tces
            .values()
            .filter(|tce| **tce != 0)
            .count()
    }

    /// Whether the driver asked for an interrupt per frame (H_VIO_SIGNAL).
    pub fn signalling(&self) -> bool {
        self.state.lock().signalling
    }

    /// Frames dropped for want of a buffer.
    pub fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    /// Makes the next `count` H_ADD_LOGICAL_LAN_BUFFER calls fail with H_RESOURCE.
    pub fn fail_adds(&self, count: u32) {
        self.state.lock().failing_adds = count;
    }

    /// Makes the next `count` H_SEND_LOGICAL_LAN calls fail with H_DROPPED.
    pub fn fail_sends(&self, count: u32) {
        self.state.lock().failing_sends = count;
    }

    /// Delivers `frame` as the adapter does; `false` if it was dropped (closed adapter, no
    /// buffer big enough: counted like QEMU in the buffer-list page).
    pub fn deliver(&self, frame: &[u8]) -> bool {
        let mut state = self.state.lock();
        if !state.open {
            return false;
        }
        let fits = |bd: &u64| {
            decode_descriptor(*bd).is_some_and(|(_, len)| len >= frame.len() + RX_FRAME_OFFSET)
        };
        let Some(position) = state.posted.iter().rposition(fits) else {
            state.count_drop();
            return false;
        };
        let bd = state.posted.remove(position);
        let Some((buffer, _)) = decode_descriptor(bd) else {
            return false;
        };
        let buffer = u64::from(buffer);
        let mut correlator = [0u8; 8];
        if !state.write(buffer + RX_FRAME_OFFSET as u64, frame)
            || !state.read(buffer, &mut correlator)
        {
            return false;
        }
        let mut entry = [0u8; RX_ENTRY_BYTES];
        entry[0] = state.control();
        entry[2..4].copy_from_slice(&(RX_FRAME_OFFSET as u16).to_be_bytes());
        entry[4..8].copy_from_slice(&(frame.len() as u32).to_be_bytes());
        entry[8..].copy_from_slice(&correlator);
        state.push_entry(entry)
    }

    /// Writes `entry` as the next queue entry, as a faulty adapter would. With `valid`, its
    /// control byte is replaced by the one the driver expects now (so it is taken as new).
    pub fn inject_entry(&self, mut entry: [u8; RX_ENTRY_BYTES], valid: bool) -> bool {
        let mut state = self.state.lock();
        if valid {
            entry[0] = state.control() | (entry[0] & 0x3f);
        }
        state.push_entry(entry)
    }

    /// Joins two models by a wire: from now on each one's sends are delivered to the other at
    /// once (dropped, like on a wire, when the other has no buffer).
    pub fn wire(a: &LlanModel, b: &LlanModel) {
        a.state.lock().peer = Some(Arc::downgrade(&b.state));
        b.state.lock().peer = Some(Arc::downgrade(&a.state));
    }

    /// Takes the frames sent so far, oldest first.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        self.state.lock().sent.drain(..).collect()
    }
}

impl LlanCalls for LlanModel {
    fn put_tce(&self, _liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError> {
        if !ioba.is_multiple_of(PAGE_BYTES as u64) {
            return Err(H_PARAMETER);
        }
        self.state.lock().tces.insert(ioba / PAGE_BYTES as u64, tce);
        Ok(())
    }

    fn register(
        &self,
        unit: u32,
        buffer_list: u64,
        receive_queue: u64,
        filter_list: u64,
        _mac: u64,
    ) -> Result<(), HcallError> {
        let mut state = self.state.lock();
        if state.open {
            return Err(H_RESOURCE);
        }
        let page = PAGE_BYTES as u64;
        let Some((queue, queue_len)) = decode_descriptor(receive_queue) else {
            return Err(H_PARAMETER);
        };
        let aligned = buffer_list.is_multiple_of(page)
            && filter_list.is_multiple_of(page)
            && queue % 16 == 0
            && queue_len % 16 == 0
            && queue_len > 0;
        if !aligned
            || state.translate(buffer_list, PAGE_BYTES).is_none()
            || state.translate(filter_list, PAGE_BYTES).is_none()
            || state.translate(u64::from(queue), queue_len).is_none()
        {
            return Err(H_PARAMETER);
        }
        let zero_page = [0u8; PAGE_BYTES];
        state.write(buffer_list, &zero_page);
        state.write(u64::from(queue), &zero_page[..queue_len.min(PAGE_BYTES)]);
        state.write(buffer_list, &(receive_queue & !BD_TOGGLE).to_be_bytes());
        state.unit = unit;
        state.buffer_list = buffer_list;
        state.queue = Some((queue, queue_len));
        state.queue_toggle = false;
        state.queue_next = 0;
        state.posted.clear();
        state.dropped = 0;
        state.open = true;
        Ok(())
    }

    fn free(&self, unit: u32) -> Result<(), HcallError> {
        let mut state = self.state.lock();
        if !state.open || state.unit != unit {
            return Err(H_RESOURCE);
        }
        state.open = false;
        state.queue = None;
        state.posted.clear();
        Ok(())
    }

    fn add_buffer(&self, unit: u32, descriptor: u64) -> Result<(), HcallError> {
        let mut state = self.state.lock();
        if state.failing_adds > 0 {
            state.failing_adds -= 1;
            return Err(H_RESOURCE);
        }
        let Some((address, len)) = decode_descriptor(descriptor) else {
            return Err(H_PARAMETER);
        };
        if unit != state.unit || address % 4 != 0 || len < 16 {
            return Err(H_PARAMETER);
        }
        if state.translate(u64::from(address), len).is_none() {
            return Err(H_PARAMETER);
        }
        if !state.open {
            return Err(H_RESOURCE);
        }
        state.posted.push(descriptor);
        Ok(())
    }

    fn signal(&self, unit: u32, on: bool) -> Result<(), HcallError> {
        let mut state = self.state.lock();
        if unit != state.unit {
            return Err(H_PARAMETER);
        }
        state.signalling = on;
        Ok(())
    }

    fn send(&self, unit: u32, descriptors: [u64; 6]) -> Result<(), HcallError> {
        let mut state = self.state.lock();
        if !state.open || unit != state.unit {
            return Err(H_DROPPED);
        }
        if state.failing_sends > 0 {
            state.failing_sends -= 1;
            return Err(H_DROPPED);
        }
        let mut frame = Vec::new();
        for (address, len) in descriptors.iter().map_while(|bd| decode_descriptor(*bd)) {
            let start = frame.len();
            frame.resize(start + len, 0);
            if !state.read(u64::from(address), &mut frame[start..]) {
                return Err(H_PARAMETER);
            }
        }
        if frame.is_empty() {
            return Ok(());
        }
        match state.peer.as_ref().and_then(alloc::sync::Weak::upgrade) {
            Some(peer) => {
                // Never hold both locks: the peer may be sending to us.
                drop(state);
                LlanModel { state: peer }.deliver(&frame);
            }
            None => state.sent.push_back(frame),
        }
        Ok(())
    }
}
