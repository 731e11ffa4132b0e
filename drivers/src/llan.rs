//! The pseries virtual NIC: PAPR's logical LAN (QEMU `spapr-vlan`, Linux `ibmveth`) by hcall.
//!
//! The adapter moves Ethernet frames between guest memory and the host's network through a DMA
//! window: the driver maps its pages into the window's TCE table (`H_PUT_TCE`), registers a
//! buffer-list page, a filter page and a receive queue (`H_REGISTER_LOGICAL_LAN`), hands the
//! adapter receive buffers (`H_ADD_LOGICAL_LAN_BUFFER`) and sends a frame with one buffer
//! descriptor (`H_SEND_LOGICAL_LAN`; the hypervisor copies it before the call returns).
//!
//! Receiving is polled (the socket layer's poller calls the stack, which calls [`Llan::receive`]):
//! the adapter writes a frame 8 bytes into a posted buffer (the first 8 hold the buffer's
//! correlator, which it copies into the queue entry), then the queue entry, its control byte last.
//! An entry is new when its valid bit is set and its toggle bit matches the pass the driver is on
//! (it flips at every wrap). Every entry is checked before use: an unknown correlator, a buffer
//! not posted, or an offset/length outside the buffer is counted in [`LlanStats::rx_malformed`]
//! and skipped, never trusted, so a corrupt ring cannot make the driver read or write outside
//! its own memory.
//!
//! Memory is fixed at [`Llan::new`]: one page-aligned region (buffer list, filter list, receive
//! queue, the receive buffers, one transmit page), mapped at the start of the DMA window. A flood
//! finds no posted buffer and the adapter drops the frame, counting it in the buffer-list page
//! ([`LlanStats::rx_no_buffer`]); nothing grows.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};

use crate::devtree::LlanNode;
use crate::hcall::HcallError;

/// H_PUT_TCE: set one TCE of a DMA window (r4 = LIOBN, r5 = bus address, r6 = TCE).
pub const H_PUT_TCE: u64 = 0x20;
/// H_REGISTER_LOGICAL_LAN: open the adapter (unit, buffer list, receive queue, filter list, MAC).
pub const H_REGISTER_LOGICAL_LAN: u64 = 0x114;
/// H_FREE_LOGICAL_LAN: close the adapter; the hypervisor forgets every buffer.
pub const H_FREE_LOGICAL_LAN: u64 = 0x118;
/// H_ADD_LOGICAL_LAN_BUFFER: post one receive buffer (a buffer descriptor).
pub const H_ADD_LOGICAL_LAN_BUFFER: u64 = 0x11c;
/// H_SEND_LOGICAL_LAN: send one frame from up to six buffer descriptors.
pub const H_SEND_LOGICAL_LAN: u64 = 0x120;
/// H_VIO_SIGNAL: turn a virtual device's interrupt on (mode 1) or off (0).
pub const H_VIO_SIGNAL: u64 = 0x104;

/// The DMA page size (TCE granularity).
pub const PAGE_BYTES: usize = 4096;
/// Bytes of a receive buffer: the correlator, then room for a full Ethernet frame.
pub const RX_BUFFER_BYTES: usize = 2048;
/// Where the adapter puts a frame in a receive buffer (after the correlator).
pub const RX_FRAME_OFFSET: usize = 8;
/// The largest frame sent or received: a 1500-byte MTU plus the Ethernet header.
pub const MAX_FRAME_BYTES: usize = 1514;
/// Smallest frame accepted: an Ethernet header.
pub const MIN_FRAME_BYTES: usize = 14;
/// Entries of the receive queue (one page of 16-byte entries).
pub const RX_QUEUE_ENTRIES: usize = PAGE_BYTES / RX_ENTRY_BYTES;
/// Most receive buffers: fewer than the queue's entries, so the adapter can never lap the driver.
pub const MAX_RX_BUFFERS: usize = RX_QUEUE_ENTRIES - 1;

/// Buffer descriptor bits (a 64-bit word: flags, 24-bit length, 32-bit bus address).
pub const BD_VALID: u64 = 1 << 63;
/// The receive queue's toggle bit in its descriptor.
pub const BD_TOGGLE: u64 = 1 << 62;
/// Receive queue entry control bits.
pub const RXQ_TOGGLE: u8 = 0x80;
/// The entry holds a frame.
pub const RXQ_VALID: u8 = 0x40;
/// Bytes of one receive queue entry: control, reserved, offset (16), length (32), correlator (64).
pub const RX_ENTRY_BYTES: usize = 16;
/// Offset in the buffer-list page of the adapter's count of frames dropped for lack of a buffer.
pub const DROPPED_COUNTER_OFFSET: usize = PAGE_BYTES - 8;

/// Marks this driver's correlators (the low bits are the buffer index).
pub const CORRELATOR_TAG: u64 = 0x5350_494e_444c_0000;

/// Region layout, in pages.
const BUFFER_LIST_PAGE: usize = 0;
const FILTER_PAGE: usize = 1;
const RX_QUEUE_PAGE: usize = 2;
const RX_BUFFERS_PAGE: usize = 3;

/// A buffer descriptor for `len` bytes at bus address `ioba`.
pub fn buffer_descriptor(ioba: u32, len: usize) -> u64 {
    BD_VALID | ((len as u64 & 0x00ff_ffff) << 32) | u64::from(ioba)
}

/// The bus address and length of a buffer descriptor, if it is valid.
pub fn decode_descriptor(bd: u64) -> Option<(u32, usize)> {
    (bd & BD_VALID != 0).then_some((bd as u32, ((bd >> 32) & 0x00ff_ffff) as usize))
}

/// The hypervisor calls the driver makes: the real ones on pseries, a model in host tests.
///
/// Addresses passed are bus addresses in the adapter's DMA window, except the TCE, which holds
/// the real address of a page of the driver's region (whose pages stay valid and mapped until
/// [`LlanCalls::free`] succeeds).
pub trait LlanCalls {
    /// H_PUT_TCE: maps bus page `ioba` of window `liobn` to `tce` (real address | 1 read | 2 write;
    /// 0 unmaps).
    fn put_tce(&self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError>;
    /// H_REGISTER_LOGICAL_LAN.
    fn register(
        &self,
        unit: u32,
        buffer_list: u64,
        receive_queue: u64,
        filter_list: u64,
        mac: u64,
    ) -> Result<(), HcallError>;
    /// H_FREE_LOGICAL_LAN.
    fn free(&self, unit: u32) -> Result<(), HcallError>;
    /// H_ADD_LOGICAL_LAN_BUFFER.
    fn add_buffer(&self, unit: u32, descriptor: u64) -> Result<(), HcallError>;
    /// H_SEND_LOGICAL_LAN with up to six descriptors (unused ones 0).
    fn send(&self, unit: u32, descriptors: [u64; 6]) -> Result<(), HcallError>;
    /// H_VIO_SIGNAL: the adapter raises its interrupt for every received frame (`on`), or not.
    fn signal(&self, unit: u32, on: bool) -> Result<(), HcallError>;
}

/// The real hypervisor (QEMU's pseries machine).
#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Hypervisor;

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl Hypervisor {
    fn call(opcode: u64, args: [u64; 7]) -> Result<(), HcallError> {
        let [a, b, c, d, e, f, g] = args;
        // SAFETY: the logical-LAN hcalls read and write guest memory only through the TCEs the
        // driver set, which map pages of its own region; that region outlives the registration
        // (`Llan` frees the adapter before the memory, and leaks the memory if it cannot).
        let (status, _) = unsafe { crate::hcall::hcall(opcode, [a, b, c, d, e, f, g, 0]) };
        HcallError::check(status)
    }
}

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl LlanCalls for Hypervisor {
    fn put_tce(&self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError> {
        Self::call(H_PUT_TCE, [u64::from(liobn), ioba, tce, 0, 0, 0, 0])
    }

    fn register(
        &self,
        unit: u32,
        buffer_list: u64,
        receive_queue: u64,
        filter_list: u64,
        mac: u64,
    ) -> Result<(), HcallError> {
        Self::call(
            H_REGISTER_LOGICAL_LAN,
            [
                u64::from(unit),
                buffer_list,
                receive_queue,
                filter_list,
                mac,
                0,
                0,
            ],
        )
    }

    fn free(&self, unit: u32) -> Result<(), HcallError> {
        Self::call(H_FREE_LOGICAL_LAN, [u64::from(unit), 0, 0, 0, 0, 0, 0])
    }

    fn add_buffer(&self, unit: u32, descriptor: u64) -> Result<(), HcallError> {
        Self::call(
            H_ADD_LOGICAL_LAN_BUFFER,
            [u64::from(unit), descriptor, 0, 0, 0, 0, 0],
        )
    }

    fn send(&self, unit: u32, d: [u64; 6]) -> Result<(), HcallError> {
        Self::call(
            H_SEND_LOGICAL_LAN,
            [u64::from(unit), d[0], d[1], d[2], d[3], d[4], d[5]],
        )
    }

    fn signal(&self, unit: u32, on: bool) -> Result<(), HcallError> {
        Self::call(
            H_VIO_SIGNAL,
            [u64::from(unit), u64::from(on), 0, 0, 0, 0, 0],
        )
    }
}

/// Sizes of a [`Llan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlanConfig {
    /// Receive buffers posted to the adapter (1..=[`MAX_RX_BUFFERS`]), each
    /// [`RX_BUFFER_BYTES`]: frames arriving faster than they are taken beyond this many are
    /// dropped by the adapter (and counted).
    pub rx_buffers: usize,
}

impl Default for LlanConfig {
    fn default() -> Self {
        Self {
            rx_buffers: Self::DEFAULT_RX_BUFFERS,
        }
    }
}

impl LlanConfig {
    /// Receive buffers of the default configuration.
    pub const DEFAULT_RX_BUFFERS: usize = 64;

    /// Pages of the driver's region: lists, queue, receive buffers, one transmit page.
    pub fn region_pages(&self) -> usize {
        RX_BUFFERS_PAGE + (self.rx_buffers * RX_BUFFER_BYTES).div_ceil(PAGE_BYTES) + 1
    }

    /// Bytes of fixed memory the driver takes.
    pub fn region_bytes(&self) -> usize {
        self.region_pages() * PAGE_BYTES
    }
}

/// Why the adapter could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlanError {
    /// A size out of range ([`LlanConfig`]) or a DMA window too small for the region.
    BadConfig,
    /// The region could not be allocated.
    OutOfMemory,
    /// An hcall failed: which one, and its status.
    Hcall(&'static str, HcallError),
    /// Routing the adapter's interrupt failed (RTAS), or the tree names no interrupt.
    Interrupt(Option<crate::rtas::RtasError>),
}

impl fmt::Display for LlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadConfig => write!(f, "logical LAN: bad configuration or DMA window too small"),
            Self::OutOfMemory => write!(f, "logical LAN: cannot allocate its DMA region"),
            Self::Hcall(name, err) => write!(f, "logical LAN: {name}: {err}"),
            Self::Interrupt(None) => write!(f, "logical LAN: the device tree names no interrupt"),
            Self::Interrupt(Some(err)) => write!(f, "logical LAN: routing its interrupt: {err}"),
        }
    }
}

impl core::error::Error for LlanError {}

/// What the driver saw; counters saturate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlanStats {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Queue entries rejected (unknown correlator, buffer not posted, bad offset or length).
    pub rx_malformed: u64,
    /// Frames the adapter dropped for want of a posted buffer (its own counter).
    pub rx_no_buffer: u64,
    /// Receive buffers the adapter refused to take back (retried on the next receive).
    pub repost_failures: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Sends the hypervisor failed (the frame is lost, as on a wire).
    pub tx_failures: u64,
}

/// The driver's page-aligned memory, reached only through raw pointers: the adapter writes it
/// behind the compiler's back.
struct Region {
    base: NonNull<u8>,
    pages: usize,
}

// SAFETY: the region is plain memory owned by the driver; moving it to another CPU is fine.
unsafe impl Send for Region {}

impl Region {
    fn layout(pages: usize) -> Option<Layout> {
        Layout::from_size_align(pages.checked_mul(PAGE_BYTES)?, PAGE_BYTES).ok()
    }

    fn new(pages: usize) -> Option<Region> {
        let layout = Self::layout(pages)?;
        // SAFETY: the layout has a non-zero size (pages >= 1 is checked by the caller).
        let base = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(Region { base, pages })
    }

    fn len(&self) -> usize {
        self.pages * PAGE_BYTES
    }

    /// The real address of byte `offset` (real mode: the pointer's value).
    fn real_address(&self, offset: usize) -> u64 {
        self.base.as_ptr() as u64 + offset as u64
    }

    fn read_u8(&self, offset: usize) -> u8 {
        assert!(offset < self.len());
        // SAFETY: in bounds (checked); the adapter may write concurrently, hence volatile.
        unsafe { self.base.as_ptr().add(offset).read_volatile() }
    }

    fn read_be<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut bytes = [0u8; N];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = self.read_u8(offset + i);
        }
        bytes
    }

    fn write_u64(&self, offset: usize, value: u64) {
        assert!(offset + 8 <= self.len());
        for (i, byte) in value.to_be_bytes().into_iter().enumerate() {
            // SAFETY: in bounds (checked); volatile, since the adapter reads it.
            unsafe { self.base.as_ptr().add(offset + i).write_volatile(byte) };
        }
    }

    /// The start of `len` bytes at `offset`, checked to lie in the region.
    fn bytes_at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset + len <= self.len());
        self.base.as_ptr().wrapping_add(offset)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(layout) = Self::layout(self.pages) {
            // SAFETY: allocated in `Region::new` with this layout.
            unsafe { dealloc(self.base.as_ptr(), layout) };
        }
    }
}

/// Receive state: the next queue entry, its pass, which buffers the adapter holds, and the
/// receive counters.
struct RxRing {
    next: usize,
    toggle: bool,
    buffers: usize,
    posted: [u64; MAX_RX_BUFFERS.div_ceil(64)],
    unposted: usize,
    frames: u64,
    bytes: u64,
    malformed: u64,
    repost_failures: u64,
}

impl RxRing {
    fn is_posted(&self, index: usize) -> bool {
        self.posted[index / 64] & (1 << (index % 64)) != 0
    }

    fn set_posted(&mut self, index: usize, posted: bool) {
        let bit = 1u64 << (index % 64);
        if posted {
            self.posted[index / 64] |= bit;
        } else {
            self.posted[index / 64] &= !bit;
        }
    }
}

/// Transmit counters.
#[derive(Default)]
struct TxCounters {
    frames: u64,
    bytes: u64,
    failures: u64,
}

/// One frame taken from the queue: its buffer and where the frame lies in it.
struct Received {
    buffer: usize,
    offset: usize,
    len: usize,
}

/// What both directions share: the calls, the adapter's identity and the memory. The receive
/// and transmit halves borrow it together (smoltcp sends a reply while it still holds the frame
/// it answers), and each touches only its own part of the region.
struct Shared<C> {
    calls: C,
    node: LlanNode,
    region: Region,
}

/// The adapter, open and polled.
pub struct Llan<C: LlanCalls> {
    shared: Shared<C>,
    rx: RxRing,
    tx: TxCounters,
}

impl<C: LlanCalls> fmt::Debug for Llan<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Llan")
            .field("node", &self.shared.node)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn rx_buffer_offset(index: usize) -> usize {
    RX_BUFFERS_PAGE * PAGE_BYTES + index * RX_BUFFER_BYTES
}

fn count(counter: &mut u64, by: u64) {
    *counter = counter.saturating_add(by);
}

impl<C: LlanCalls> Shared<C> {
    fn ioba(&self, offset: usize) -> u64 {
        self.node.dma_base + offset as u64
    }

    /// The bus address as a descriptor holds it (the window lies below 4 GiB, checked in `new`).
    fn ioba32(&self, offset: usize) -> u32 {
        self.ioba(offset) as u32
    }

    /// Gives buffer `index` back to the adapter, its correlator written first.
    fn post(&self, rx: &mut RxRing, index: usize) -> Result<(), HcallError> {
        let offset = rx_buffer_offset(index);
        self.region.write_u64(offset, CORRELATOR_TAG | index as u64);
        fence(Ordering::Release);
        let descriptor = buffer_descriptor(self.ioba32(offset), RX_BUFFER_BYTES);
        match self.calls.add_buffer(self.node.unit, descriptor) {
            Ok(()) => {
                rx.set_posted(index, true);
                Ok(())
            }
            Err(err) => {
                count(&mut rx.repost_failures, 1);
                rx.unposted += 1;
                Err(err)
            }
        }
    }

    /// Posts the buffers an earlier post failed to give back.
    fn retry_posts(&self, rx: &mut RxRing) {
        if rx.unposted == 0 {
            return;
        }
        rx.unposted = 0;
        for index in 0..rx.buffers {
            if !rx.is_posted(index) && self.post(rx, index).is_err() {
                return;
            }
        }
    }

    /// The next well-formed frame in the queue; malformed entries are counted and skipped.
    fn next_frame(&self, rx: &mut RxRing) -> Option<Received> {
        self.retry_posts(rx);
        loop {
            let entry = RX_QUEUE_PAGE * PAGE_BYTES + rx.next * RX_ENTRY_BYTES;
            let control = self.region.read_u8(entry);
            if control & RXQ_VALID == 0 || (control & RXQ_TOGGLE != 0) != rx.toggle {
                return None;
            }
            // The adapter writes the control byte last: read the rest only after it.
            fence(Ordering::Acquire);
            let offset = usize::from(u16::from_be_bytes(self.region.read_be(entry + 2)));
            let len = u32::from_be_bytes(self.region.read_be(entry + 4)) as usize;
            let correlator = u64::from_be_bytes(self.region.read_be(entry + 8));
            rx.next += 1;
            if rx.next == RX_QUEUE_ENTRIES {
                rx.next = 0;
                rx.toggle = !rx.toggle;
            }
            let index = (correlator ^ CORRELATOR_TAG) as usize;
            if correlator & !0xffff != CORRELATOR_TAG || index >= rx.buffers || !rx.is_posted(index)
            {
                count(&mut rx.malformed, 1);
                continue;
            }
            rx.set_posted(index, false);
            let fits = offset >= RX_FRAME_OFFSET
                && (MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&len)
                && offset + len <= RX_BUFFER_BYTES;
            if !fits {
                count(&mut rx.malformed, 1);
                let _ = self.post(rx, index);
                continue;
            }
            return Some(Received {
                buffer: index,
                offset,
                len,
            });
        }
    }

    fn finish_receive<R>(
        &self,
        rx: &mut RxRing,
        frame: Received,
        consume: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let start = rx_buffer_offset(frame.buffer) + frame.offset;
        // SAFETY: in the region (checked by `bytes_at`); the buffer is not posted (the adapter
        // does not write it) and nothing writes it while the slice lives (the transmit page is
        // elsewhere); it is posted again only after `consume` returns.
        let bytes = unsafe {
            core::slice::from_raw_parts(self.region.bytes_at(start, frame.len), frame.len)
        };
        let result = consume(bytes);
        count(&mut rx.frames, 1);
        count(&mut rx.bytes, frame.len as u64);
        let _ = self.post(rx, frame.buffer);
        result
    }

    fn transmit<R>(
        &self,
        tx: &mut TxCounters,
        len: usize,
        build: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let offset = self.region.len() - PAGE_BYTES;
        // SAFETY: in the region (checked by `bytes_at`); the transmit page is the driver's
        // between sends (the hypervisor copies a frame during H_SEND_LOGICAL_LAN), and no other
        // slice of it exists: the `&mut TxCounters` this call holds is the only way to it.
        let page = unsafe {
            core::slice::from_raw_parts_mut(self.region.bytes_at(offset, PAGE_BYTES), PAGE_BYTES)
        };
        let result = build(&mut page[..len.min(PAGE_BYTES)]);
        if len > MAX_FRAME_BYTES {
            count(&mut tx.failures, 1);
            return result;
        }
        fence(Ordering::Release);
        let descriptor = buffer_descriptor(self.ioba32(offset), len);
        match self.calls.send(self.node.unit, [descriptor, 0, 0, 0, 0, 0]) {
            Ok(()) => {
                count(&mut tx.frames, 1);
                count(&mut tx.bytes, len as u64);
            }
            Err(_) => count(&mut tx.failures, 1),
        }
        result
    }
}

impl<C: LlanCalls> Llan<C> {
    /// Opens the adapter `node` through `calls`: allocates and maps the region, registers it,
    /// posts every receive buffer.
    pub fn new(node: LlanNode, calls: C, config: LlanConfig) -> Result<Self, LlanError> {
        if config.rx_buffers == 0 || config.rx_buffers > MAX_RX_BUFFERS {
            return Err(LlanError::BadConfig);
        }
        let pages = config.region_pages();
        if (pages * PAGE_BYTES) as u64 > node.dma_size
            || node
                .dma_base
                .checked_add(node.dma_size)
                .is_none_or(|end| end > 1 << 32)
        {
            return Err(LlanError::BadConfig);
        }
        let region = Region::new(pages).ok_or(LlanError::OutOfMemory)?;
        let mut llan = Llan {
            shared: Shared {
                calls,
                node,
                region,
            },
            rx: RxRing {
                next: 0,
                toggle: true,
                buffers: config.rx_buffers,
                posted: [0; MAX_RX_BUFFERS.div_ceil(64)],
                unposted: 0,
                frames: 0,
                bytes: 0,
                malformed: 0,
                repost_failures: 0,
            },
            tx: TxCounters::default(),
        };
        let shared = &llan.shared;
        for page in 0..pages {
            let tce = shared.region.real_address(page * PAGE_BYTES) | 3;
            shared
                .calls
                .put_tce(node.liobn, shared.ioba(page * PAGE_BYTES), tce)
                .map_err(|err| LlanError::Hcall("H_PUT_TCE", err))?;
        }
        let mac = node
            .mac
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
        shared
            .calls
            .register(
                node.unit,
                shared.ioba(BUFFER_LIST_PAGE * PAGE_BYTES),
                buffer_descriptor(shared.ioba32(RX_QUEUE_PAGE * PAGE_BYTES), PAGE_BYTES),
                shared.ioba(FILTER_PAGE * PAGE_BYTES),
                mac,
            )
            .map_err(|err| LlanError::Hcall("H_REGISTER_LOGICAL_LAN", err))?;
        for index in 0..config.rx_buffers {
            shared
                .post(&mut llan.rx, index)
                .map_err(|err| LlanError::Hcall("H_ADD_LOGICAL_LAN_BUFFER", err))?;
        }
        Ok(llan)
    }

    /// The adapter's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.shared.node.mac
    }

    /// Makes the adapter raise its interrupt (the device tree's source, [`LlanNode::irq`]) for
    /// every frame it delivers, or stop. The interrupt only wakes a ceded CPU: frames are still
    /// taken by polling; route the source to a CPU first (RTAS `ibm,set-xive`).
    pub fn set_interrupts(&self, on: bool) -> Result<(), HcallError> {
        self.shared.calls.signal(self.shared.node.unit, on)
    }

    /// The adapter as the device tree describes it.
    pub fn node(&self) -> &LlanNode {
        &self.shared.node
    }

    /// The hypervisor calls (for a model's inspection in tests).
    pub fn calls(&self) -> &C {
        &self.shared.calls
    }

    /// The counters, with the adapter's own count of frames dropped for want of a buffer.
    pub fn stats(&self) -> LlanStats {
        LlanStats {
            rx_frames: self.rx.frames,
            rx_bytes: self.rx.bytes,
            rx_malformed: self.rx.malformed,
            rx_no_buffer: u64::from_be_bytes(
                self.shared
                    .region
                    .read_be(BUFFER_LIST_PAGE * PAGE_BYTES + DROPPED_COUNTER_OFFSET),
            ),
            repost_failures: self.rx.repost_failures,
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            tx_failures: self.tx.failures,
        }
    }

    /// Hands the next received frame to `consume`, then gives its buffer back to the adapter.
    /// `None` when no frame is waiting.
    pub fn receive<R>(&mut self, consume: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let frame = self.shared.next_frame(&mut self.rx)?;
        Some(self.shared.finish_receive(&mut self.rx, frame, consume))
    }

    /// Builds a frame of `len` bytes (at most [`MAX_FRAME_BYTES`]) with `build` and sends it.
    /// An oversized request is built in the page but not sent, and counted as a failed send.
    pub fn transmit<R>(&mut self, len: usize, build: impl FnOnce(&mut [u8]) -> R) -> R {
        self.shared.transmit(&mut self.tx, len, build)
    }
}

/// The priority the adapter's interrupt is delivered at (below the wake-up IPI's).
pub const INTERRUPT_PRIORITY: u8 = 5;

#[cfg(all(target_arch = "powerpc64", feature = "bare-metal"))]
impl Llan<Hypervisor> {
    /// Opens the adapter `node` on pseries and routes its interrupt to CPU `server` (RTAS
    /// `ibm,set-xive`, then H_VIO_SIGNAL): a received frame ends that CPU's cede, so a stack
    /// waiting with [`crate::tcpip::Wait::Cede`] sleeps while the link is quiet.
    pub fn open_pseries(
        node: LlanNode,
        config: LlanConfig,
        rtas: &crate::rtas::Rtas,
        server: u32,
    ) -> Result<Self, LlanError> {
        let llan = Llan::new(node, Hypervisor, config)?;
        let irq = node.irq.ok_or(LlanError::Interrupt(None))?;
        rtas.set_xive(irq, server, INTERRUPT_PRIORITY)
            .map_err(|err| LlanError::Interrupt(Some(err)))?;
        llan.set_interrupts(true)
            .map_err(|err| LlanError::Hcall("H_VIO_SIGNAL", err))?;
        Ok(llan)
    }
}

impl<C: LlanCalls> Drop for Llan<C> {
    fn drop(&mut self) {
        let shared = &mut self.shared;
        if shared.calls.free(shared.node.unit).is_err() {
            // The adapter may still write into the region: never give that memory back.
            let region = core::mem::replace(
                &mut shared.region,
                Region {
                    base: NonNull::dangling(),
                    pages: 0,
                },
            );
            core::mem::forget(region);
            return;
        }
        for page in 0..shared.region.pages {
            let _ = shared
                .calls
                .put_tce(shared.node.liobn, shared.ioba(page * PAGE_BYTES), 0);
        }
    }
}

/// The smoltcp device over the adapter.
mod device {
    use super::{Llan, LlanCalls, Received, RxRing, Shared, TxCounters, MAX_FRAME_BYTES};
    use smoltcp::phy::{self, DeviceCapabilities, Medium};
    use smoltcp::time::Instant;

    /// A frame taken from the queue, handed to the stack.
    pub struct RxToken<'a, C> {
        shared: &'a Shared<C>,
        rx: &'a mut RxRing,
        frame: Received,
    }

    /// Room to send one frame.
    pub struct TxToken<'a, C> {
        shared: &'a Shared<C>,
        tx: &'a mut TxCounters,
    }

    impl<C: LlanCalls> phy::RxToken for RxToken<'_, C> {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            self.shared.finish_receive(self.rx, self.frame, f)
        }
    }

    impl<C: LlanCalls> phy::TxToken for TxToken<'_, C> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            self.shared.transmit(self.tx, len, f)
        }
    }

    impl<C: LlanCalls> phy::Device for Llan<C> {
        type RxToken<'a>
            = RxToken<'a, C>
        where
            Self: 'a;
        type TxToken<'a>
            = TxToken<'a, C>
        where
            Self: 'a;

        fn receive(&mut self, _: Instant) -> Option<(RxToken<'_, C>, TxToken<'_, C>)> {
            let frame = self.shared.next_frame(&mut self.rx)?;
            Some((
                RxToken {
                    shared: &self.shared,
                    rx: &mut self.rx,
                    frame,
                },
                TxToken {
                    shared: &self.shared,
                    tx: &mut self.tx,
                },
            ))
        }

        fn transmit(&mut self, _: Instant) -> Option<TxToken<'_, C>> {
            Some(TxToken {
                shared: &self.shared,
                tx: &mut self.tx,
            })
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ethernet;
            caps.max_transmission_unit = MAX_FRAME_BYTES;
            caps.max_burst_size = Some(1);
            caps
        }
    }
}

pub use device::{RxToken, TxToken};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llan_model::{qemu_node, LlanModel};
    use alloc::vec;
    use alloc::vec::Vec;

    const NODE: LlanNode = qemu_node(0x56);

    fn open(rx_buffers: usize) -> (Llan<LlanModel>, LlanModel) {
        let model = LlanModel::new();
        let llan = Llan::new(NODE, model.clone(), LlanConfig { rx_buffers }).unwrap();
        (llan, model)
    }

    fn frame(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    fn receive_all(llan: &mut Llan<LlanModel>) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(frame) = llan.receive(|bytes| bytes.to_vec()) {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn opening_maps_registers_and_posts_and_dropping_frees() {
        let config = LlanConfig { rx_buffers: 8 };
        let (llan, model) = open(8);
        assert!(model.is_open());
        assert_eq!(model.posted(), 8);
        assert!(!model.signalling());
        llan.set_interrupts(true).unwrap();
        assert!(model.signalling());
        assert_eq!(model.mapped_pages(), config.region_pages());
        assert_eq!(config.region_pages(), 3 + 4 + 1);
        drop(llan);
        assert!(!model.is_open());
        assert_eq!(
            model.mapped_pages(),
            0,
            "every TCE is cleared after the free"
        );
    }

    #[test]
    fn bad_sizes_and_small_windows_are_refused() {
        let model = LlanModel::new();
        for rx_buffers in [0, MAX_RX_BUFFERS + 1] {
            let config = LlanConfig { rx_buffers };
            assert_eq!(
                Llan::new(NODE, model.clone(), config).err(),
                Some(LlanError::BadConfig)
            );
        }
        let tiny = LlanNode {
            dma_size: 4 * PAGE_BYTES as u64,
            ..NODE
        };
        let refused = Llan::new(tiny, model.clone(), LlanConfig::default());
        assert_eq!(refused.err(), Some(LlanError::BadConfig));
        assert!(!model.is_open());
    }

    #[test]
    fn frames_arrive_in_order_across_many_queue_wraps() {
        let (mut llan, model) = open(16);
        let mut expected = Vec::new();
        let mut received = Vec::new();
        for round in 0..3 * RX_QUEUE_ENTRIES / 10 {
            for i in 0..10 {
                let sent = frame((round * 10 + i) as u8, 14 + (round * 37 + i) % 1500);
                assert!(model.deliver(&sent));
                expected.push(sent);
            }
            received.extend(receive_all(&mut llan));
        }
        assert_eq!(received, expected);
        let stats = llan.stats();
        assert_eq!(stats.rx_frames, expected.len() as u64);
        assert_eq!((stats.rx_malformed, stats.rx_no_buffer), (0, 0));
        assert_eq!(model.posted(), 16, "every buffer went back to the adapter");
    }

    #[test]
    fn a_flood_beyond_the_buffers_is_dropped_and_counted() {
        let (mut llan, model) = open(4);
        let delivered = (0..10).filter(|i| model.deliver(&frame(*i, 60))).count();
        assert_eq!(delivered, 4);
        assert_eq!(llan.stats().rx_no_buffer, 6);
        assert_eq!(receive_all(&mut llan).len(), 4);
        assert!(
            model.deliver(&frame(9, 60)),
            "room again once frames are taken"
        );
        assert_eq!(receive_all(&mut llan), vec![frame(9, 60)]);
    }

    #[test]
    fn malformed_entries_are_counted_and_skipped() {
        let (mut llan, model) = open(4);
        let mut entry = [0u8; RX_ENTRY_BYTES];
        // An unknown correlator.
        entry[8..].copy_from_slice(&0xdead_beef_u64.to_be_bytes());
        entry[4..8].copy_from_slice(&64u32.to_be_bytes());
        assert!(model.inject_entry(entry, true));
        // A real buffer's correlator with a length beyond the buffer.
        entry[8..].copy_from_slice(&(CORRELATOR_TAG | 1).to_be_bytes());
        entry[2..4].copy_from_slice(&8u16.to_be_bytes());
        entry[4..8].copy_from_slice(&5000u32.to_be_bytes());
        assert!(model.inject_entry(entry, true));
        // A correlator of ours naming a buffer beyond the ring.
        entry[8..].copy_from_slice(&(CORRELATOR_TAG | 9).to_be_bytes());
        entry[4..8].copy_from_slice(&64u32.to_be_bytes());
        assert!(model.inject_entry(entry, true));
        assert!(model.deliver(&frame(7, 100)));
        assert_eq!(receive_all(&mut llan), vec![frame(7, 100)]);
        assert_eq!(llan.stats().rx_malformed, 3);
        // An entry without the valid bit ends the scan: nothing is taken.
        assert!(model.inject_entry([0; RX_ENTRY_BYTES], false));
        assert!(model.deliver(&frame(8, 100)));
        assert!(receive_all(&mut llan).is_empty());
    }

    #[test]
    fn refused_reposts_are_retried() {
        let (mut llan, model) = open(2);
        assert!(model.deliver(&frame(1, 60)));
        model.fail_adds(1);
        assert_eq!(llan.receive(|bytes| bytes.to_vec()), Some(frame(1, 60)));
        assert_eq!(llan.stats().repost_failures, 1);
        assert_eq!(model.posted(), 1);
        assert!(llan.receive(|_| ()).is_none());
        assert_eq!(model.posted(), 2, "the next receive posts it again");
    }

    #[test]
    fn frames_are_sent_and_oversized_or_failed_sends_counted() {
        let (mut llan, model) = open(2);
        llan.transmit(60, |buf| buf.copy_from_slice(&frame(3, 60)));
        llan.transmit(MAX_FRAME_BYTES + 1, |buf| buf.fill(0));
        model.fail_sends(1);
        llan.transmit(60, |buf| buf.fill(1));
        assert_eq!(model.take_sent(), vec![frame(3, 60)]);
        let stats = llan.stats();
        assert_eq!(
            (stats.tx_frames, stats.tx_bytes, stats.tx_failures),
            (1, 60, 2)
        );
    }
}
