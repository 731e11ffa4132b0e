//! What the flattened device tree says about the machine: memory, CPUs, timebase, RTAS tokens, NIC.
//!
//! QEMU's pseries firmware-less boot (`-bios`) passes the tree's address in r3. It is parsed once
//! at boot into a [`Machine`]; a malformed or incomplete tree is a [`DevTreeError`], never a panic.

use crate::rtas::Tokens;
use core::fmt;
use fdt::nodes::Node;
use fdt::parsing::{unaligned::UnalignedParser, NoPanic};
use fdt::{Fdt, FdtError};

/// Most CPUs recorded from the tree.
pub const MAX_TREE_CPUS: usize = 64;

type Parser<'a> = (UnalignedParser<'a>, NoPanic);

/// The machine as described by the device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine<'a> {
    /// The root `model` string (e.g. "IBM pSeries (emulated by qemu)").
    pub model: &'a str,
    /// Total RAM over all `/memory` nodes, in bytes.
    pub memory_bytes: u64,
    /// Size of the memory region at address 0: what real-mode code can reach.
    pub rma_bytes: u64,
    /// Interrupt server number of every CPU thread, in tree order: index = CPU index.
    pub cpu_servers: heapless::Vec<u32, MAX_TREE_CPUS>,
    /// Timebase frequency of the first CPU, in Hz.
    pub timebase_hz: u64,
    /// RTAS tokens.
    pub rtas: Tokens,
    /// `reg` of the first `/vdevice/vty` node (the console terminal number), if any.
    pub vty: Option<u32>,
    /// The first virtual NIC (`/vdevice/l-lan@…`, QEMU's `spapr-vlan`), if the machine has one.
    pub llan: Option<LlanNode>,
}

/// A PAPR logical LAN adapter (`compatible = "IBM,l-lan"`) as the tree describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlanNode {
    /// The unit address (`reg`) every logical-LAN hcall names.
    pub unit: u32,
    /// The adapter's MAC address (`local-mac-address`; 8-byte forms carry it in the last 6).
    pub mac: [u8; 6],
    /// The DMA window's logical I/O bus number (the TCE table `H_PUT_TCE` writes).
    pub liobn: u32,
    /// The window's first bus address.
    pub dma_base: u64,
    /// The window's size in bytes.
    pub dma_size: u64,
    /// The XICS interrupt source, if given.
    pub irq: Option<u32>,
}

/// A device tree that cannot describe the machine.
#[derive(Debug, Clone, Copy)]
pub enum DevTreeError {
    /// Not a valid flattened device tree.
    Fdt(FdtError),
    /// A required node is missing.
    MissingNode(&'static str),
    /// A required property is missing or has the wrong size.
    BadProperty {
        /// Node path.
        node: &'static str,
        /// Property name.
        property: &'static str,
    },
    /// More CPU threads than [`MAX_TREE_CPUS`].
    TooManyCpus,
}

impl From<FdtError> for DevTreeError {
    fn from(err: FdtError) -> Self {
        Self::Fdt(err)
    }
}

impl fmt::Display for DevTreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fdt(err) => write!(f, "device tree: {err}"),
            Self::MissingNode(node) => write!(f, "device tree: no `{node}` node"),
            Self::BadProperty { node, property } => {
                write!(
                    f,
                    "device tree: `{node}` has no valid `{property}` property"
                )
            }
            Self::TooManyCpus => write!(f, "device tree: more than {MAX_TREE_CPUS} CPU threads"),
        }
    }
}

/// Big-endian cells of a property value; `None` unless the length is a whole number of cells.
fn cells(value: &[u8]) -> Option<impl Iterator<Item = u32> + '_> {
    value.len().is_multiple_of(4).then(|| {
        value
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// A number made of `count` big-endian cells (1 or 2).
fn read_number(cells: &mut impl Iterator<Item = u32>, count: u32) -> Option<u64> {
    let mut value = 0u64;
    for _ in 0..count {
        value = value.checked_shl(32)? | u64::from(cells.next()?);
    }
    Some(value)
}

fn u32_property<'a>(node: &Node<'a, Parser<'a>>, name: &str) -> Result<Option<u32>, FdtError> {
    Ok(node.raw_property(name)?.and_then(|p| {
        (p.value.len() == 4)
            .then(|| cells(p.value)?.next())
            .flatten()
    }))
}

/// A `u32` or `u64` property (timebase-frequency may be either).
fn number_property<'a>(node: &Node<'a, Parser<'a>>, name: &str) -> Result<Option<u64>, FdtError> {
    Ok(node.raw_property(name)?.and_then(|p| match p.value.len() {
        4 | 8 => read_number(&mut cells(p.value)?, p.value.len() as u32 / 4),
        _ => None,
    }))
}

fn string_property<'a>(
    node: &Node<'a, Parser<'a>>,
    name: &str,
) -> Result<Option<&'a str>, FdtError> {
    Ok(node.raw_property(name)?.and_then(|p| {
        core::ffi::CStr::from_bytes_until_nul(p.value)
            .ok()?
            .to_str()
            .ok()
    }))
}

impl LlanNode {
    fn parse<'a>(dev: &Node<'a, Parser<'a>>) -> Result<Self, DevTreeError> {
        const NODE: &str = "/vdevice/l-lan";
        let bad = |property| DevTreeError::BadProperty {
            node: NODE,
            property,
        };
        let unit = u32_property(dev, "reg")?.ok_or(bad("reg"))?;
        let mac_value = dev
            .raw_property("local-mac-address")?
            .ok_or(bad("local-mac-address"))?
            .value;
        let mac: [u8; 6] = match mac_value.len() {
            6 | 8 => mac_value[mac_value.len() - 6..]
                .try_into()
                .map_err(|_| bad("local-mac-address"))?,
            _ => return Err(bad("local-mac-address")),
        };
        let address_cells = u32_property(dev, "ibm,#dma-address-cells")?.unwrap_or(2);
        let size_cells = u32_property(dev, "ibm,#dma-size-cells")?.unwrap_or(2);
        let window = dev
            .raw_property("ibm,my-dma-window")?
            .ok_or(bad("ibm,my-dma-window"))?;
        let mut words = cells(window.value).ok_or(bad("ibm,my-dma-window"))?;
        let liobn = words.next().ok_or(bad("ibm,my-dma-window"))?;
        let dma_base = read_number(&mut words, address_cells).ok_or(bad("ibm,my-dma-window"))?;
        let dma_size = read_number(&mut words, size_cells).ok_or(bad("ibm,my-dma-window"))?;
        let irq = dev
            .raw_property("interrupts")?
            .and_then(|p| cells(p.value)?.next());
        Ok(Self {
            unit,
            mac,
            liobn,
            dma_base,
            dma_size,
            irq,
        })
    }
}

impl<'a> Machine<'a> {
    /// Parses the tree in `blob`.
    pub fn parse(blob: &'a [u8]) -> Result<Self, DevTreeError> {
        let fdt: Fdt<'a, Parser<'a>> = Fdt::new_unaligned_fallible(blob)?;
        let root = fdt.find_node("/")?.ok_or(DevTreeError::MissingNode("/"))?;
        let bad = |node, property| DevTreeError::BadProperty { node, property };
        let address_cells = u32_property(&root, "#address-cells")?.unwrap_or(2);
        let size_cells = u32_property(&root, "#size-cells")?.unwrap_or(1);
        let model = string_property(&root, "model")?.unwrap_or("unknown");

        let mut memory_bytes = 0u64;
        let mut rma_bytes = 0u64;
        let mut memory_nodes = 0;
        for node in fdt.find_all_nodes_with_name("memory")? {
            let node = node?;
            let reg = node.raw_property("reg")?.ok_or(bad("/memory", "reg"))?;
            let mut words = cells(reg.value).ok_or(bad("/memory", "reg"))?;
            while let Some(base) = read_number(&mut words, address_cells) {
                let size = read_number(&mut words, size_cells).ok_or(bad("/memory", "reg"))?;
                memory_bytes = memory_bytes.saturating_add(size);
                if base == 0 {
                    rma_bytes = size;
                }
            }
            memory_nodes += 1;
        }
        if memory_nodes == 0 {
            return Err(DevTreeError::MissingNode("/memory"));
        }

        let cpus = fdt
            .find_node("/cpus")?
            .ok_or(DevTreeError::MissingNode("/cpus"))?;
        let mut cpu_servers = heapless::Vec::new();
        let mut timebase_hz = None;
        for cpu in cpus.children()?.iter() {
            let cpu = cpu?;
            if string_property(&cpu, "device_type")? != Some("cpu") {
                continue;
            }
            let servers = match cpu.raw_property("ibm,ppc-interrupt-server#s")? {
                Some(prop) => prop,
                None => cpu.raw_property("reg")?.ok_or(bad("/cpus/cpu", "reg"))?,
            };
            for server in
                cells(servers.value).ok_or(bad("/cpus/cpu", "ibm,ppc-interrupt-server#s"))?
            {
                cpu_servers
                    .push(server)
                    .map_err(|_| DevTreeError::TooManyCpus)?;
            }
            if timebase_hz.is_none() {
                timebase_hz = number_property(&cpu, "timebase-frequency")?;
            }
        }
        if cpu_servers.is_empty() {
            return Err(DevTreeError::MissingNode("/cpus/cpu"));
        }
        let timebase_hz = timebase_hz
            .filter(|hz| *hz != 0)
            .ok_or(bad("/cpus/cpu", "timebase-frequency"))?;

        let rtas_node = fdt
            .find_node("/rtas")?
            .ok_or(DevTreeError::MissingNode("/rtas"))?;
        let rtas = Tokens {
            power_off: u32_property(&rtas_node, "power-off")?,
            os_term: u32_property(&rtas_node, "ibm,os-term")?,
            start_cpu: u32_property(&rtas_node, "start-cpu")?,
            get_time_of_day: u32_property(&rtas_node, "get-time-of-day")?,
            set_xive: u32_property(&rtas_node, "ibm,set-xive")?,
        };

        let mut vty = None;
        let mut llan = None;
        if let Some(vdevice) = fdt.find_node("/vdevice")? {
            for dev in vdevice.children()?.iter() {
                let dev = dev?;
                if dev.name()?.name == "vty" && vty.is_none() {
                    vty = u32_property(&dev, "reg")?;
                } else if string_property(&dev, "compatible")? == Some("IBM,l-lan")
                    && llan.is_none()
                {
                    llan = Some(LlanNode::parse(&dev)?);
                }
            }
        }

        Ok(Self {
            model,
            memory_bytes,
            rma_bytes,
            cpu_servers,
            timebase_hz,
            rtas,
            vty,
            llan,
        })
    }

    /// Reads the tree at physical address `addr` (the r3 value QEMU boots with).
    ///
    /// # Safety
    /// `addr` must point to a flattened device tree that stays in memory, unmodified, for the
    /// rest of the program (QEMU's stays where it was put, below the top of the real-mode area).
    pub unsafe fn from_address(addr: usize) -> Result<Machine<'static>, DevTreeError> {
        let header = addr as *const u8;
        if header.is_null() {
            return Err(DevTreeError::Fdt(FdtError::BadPtr));
        }
        // SAFETY: the caller guarantees a tree at `addr`; its header is at least 8 bytes.
        let (magic, total) = unsafe {
            let word = |offset: usize| u32::from_be_bytes(*header.add(offset).cast::<[u8; 4]>());
            (word(0), word(4))
        };
        if magic != 0xd00d_feed {
            return Err(DevTreeError::Fdt(FdtError::BadMagic));
        }
        // SAFETY: the header says the tree is `total` bytes long; the caller guarantees it stays.
        let blob = unsafe { core::slice::from_raw_parts(header, total as usize) };
        Machine::parse(blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2's tree for `-M pseries -m 256M -smp 2 -serial stdio` (from `-M pseries,dumpdtb=`).
    static PSERIES_SMP2: &[u8] = include_bytes!("testdata/pseries-qemu7.2-m256-smp2.fdt");

    #[test]
    fn qemu_pseries_tree_gives_memory_cpus_timebase_and_tokens() {
        let machine = Machine::parse(PSERIES_SMP2).unwrap();
        assert_eq!(machine.model, "IBM pSeries (emulated by qemu)");
        assert_eq!(machine.memory_bytes, 256 << 20);
        assert_eq!(machine.rma_bytes, 256 << 20);
        assert_eq!(machine.cpu_servers.as_slice(), &[0, 1]);
        assert_eq!(machine.timebase_hz, 512_000_000);
        assert_eq!(machine.rtas.power_off, Some(0x2003));
        assert_eq!(machine.rtas.os_term, Some(0x201f));
        assert_eq!(machine.rtas.start_cpu, Some(0x2006));
        assert_eq!(machine.rtas.get_time_of_day, Some(0x2001));
        assert_eq!(machine.rtas.set_xive, Some(0x200a));
        assert_eq!(machine.vty, Some(0x7100_0000));
        assert_eq!(machine.llan, None, "no NIC unless QEMU is given one");
    }

    /// The same machine with `-netdev user,id=n0 -device spapr-vlan,netdev=n0`, one CPU.
    static PSERIES_SPAPR_VLAN: &[u8] =
        include_bytes!("testdata/pseries-qemu7.2-m256-spapr-vlan.fdt");

    #[test]
    fn the_spapr_vlan_node_gives_unit_mac_and_dma_window() {
        let machine = Machine::parse(PSERIES_SPAPR_VLAN).unwrap();
        assert_eq!(
            machine.llan,
            Some(LlanNode {
                unit: 0x7100_0001,
                mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
                liobn: 0x7100_0001,
                dma_base: 0,
                dma_size: 0x1000_0000,
                irq: Some(0x1101),
            })
        );
        assert_eq!(machine.cpu_servers.as_slice(), &[0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(Machine::parse(&[]), Err(DevTreeError::Fdt(_))));
        assert!(matches!(
            Machine::parse(&[0u8; 64]),
            Err(DevTreeError::Fdt(_))
        ));
        let mut truncated = PSERIES_SMP2.to_vec();
        truncated.truncate(PSERIES_SMP2.len() / 2);
        assert!(Machine::parse(&truncated).is_err());
        // Every single-byte corruption of the header and structure block is survived.
        for i in (0..PSERIES_SMP2.len()).step_by(7) {
            let mut corrupt = PSERIES_SMP2.to_vec();
            corrupt[i] ^= 0xa5;
            let _ = Machine::parse(&corrupt);
        }
    }

    #[test]
    fn cells_read_one_and_two_cell_numbers() {
        let bytes = [0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0, 0, 0];
        let mut words = cells(&bytes).unwrap();
        assert_eq!(read_number(&mut words, 2), Some(0x1_0000_0002));
        assert_eq!(read_number(&mut words, 1), Some(0xff00_0000));
        assert_eq!(read_number(&mut words, 1), None);
        assert!(cells(&[0, 1, 2]).is_none());
    }
}
