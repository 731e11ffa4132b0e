//! ELF64 big-endian images: the flat binary `-bios` loads, section sizes, and code symbols.
//!
//! `-bios` loads a file verbatim at address 0 and starts it at 0x100, so the image's PT_LOAD
//! segments are laid out by physical address into one buffer. Bytes past a segment's file size
//! (.bss, stacks) are not stored: the boot code clears .bss itself.

use std::fmt;

/// Entry point `-bios` jumps to (the system reset vector).
pub const ENTRY: u64 = 0x100;
/// Largest firmware file QEMU's pseries machine loads (`FW_MAX_SIZE`).
pub const MAX_FLAT_BYTES: u64 = 4 << 20;

const PT_LOAD: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
/// Symbol types kept by [`code_symbols`]: functions, and untyped labels (assembly entry points).
const STT_NOTYPE: u8 = 0;
const STT_FUNC: u8 = 2;
const SYMBOL_BYTES: usize = 24;
const ET_EXEC: u16 = 2;
const SHF_ALLOC: u64 = 2;

/// Why an ELF file cannot become a pseries `-bios` image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Too short for the structure being read at `offset`.
    Truncated {
        /// Where the read failed.
        offset: usize,
    },
    /// Not an ELF file.
    BadMagic,
    /// Not ELF64 big-endian PowerPC64.
    WrongKind {
        /// What was found.
        what: &'static str,
    },
    /// The entry point is not 0x100.
    WrongEntry(u64),
    /// A loaded segment reaches past what `-bios` can load.
    TooLarge(u64),
    /// No loadable bytes at all.
    Empty,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => {
                write!(f, "ELF file truncated (reading at byte {offset})")
            }
            Self::BadMagic => f.write_str("not an ELF file"),
            Self::WrongKind { what } => {
                write!(f, "not a big-endian PowerPC64 ELF64 executable ({what})")
            }
            Self::WrongEntry(entry) => {
                write!(f, "entry point is {entry:#x}, but -bios starts at {ENTRY:#x} (check the linker script)")
            }
            Self::TooLarge(end) => {
                write!(
                    f,
                    "image reaches {end:#x}, past the {MAX_FLAT_BYTES:#x} bytes -bios can load"
                )
            }
            Self::Empty => f.write_str("ELF file has no loadable bytes"),
        }
    }
}

impl std::error::Error for ElfError {}

/// Big-endian reads with bounds checks.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> Result<[u8; N], ElfError> {
        offset
            .checked_add(N)
            .and_then(|end| self.0.get(offset..end))
            .and_then(|slice| slice.try_into().ok())
            .ok_or(ElfError::Truncated { offset })
    }
    fn u16(&self, offset: usize) -> Result<u16, ElfError> {
        self.bytes(offset).map(u16::from_be_bytes)
    }
    fn u32(&self, offset: usize) -> Result<u32, ElfError> {
        self.bytes(offset).map(u32::from_be_bytes)
    }
    fn u64(&self, offset: usize) -> Result<u64, ElfError> {
        self.bytes(offset).map(u64::from_be_bytes)
    }
    fn usize(&self, offset: usize) -> Result<usize, ElfError> {
        usize::try_from(self.u64(offset)?).map_err(|_| ElfError::Truncated { offset })
    }
    fn slice(&self, offset: usize, len: usize) -> Result<&[u8], ElfError> {
        offset
            .checked_add(len)
            .and_then(|end| self.0.get(offset..end))
            .ok_or(ElfError::Truncated { offset })
    }
    /// The NUL-terminated string at `offset` (a name in a string table).
    fn c_string(&self, offset: usize) -> Result<String, ElfError> {
        let len = self
            .0
            .get(offset..)
            .and_then(|rest| rest.iter().position(|&b| b == 0))
            .ok_or(ElfError::Truncated { offset })?;
        Ok(String::from_utf8_lossy(self.slice(offset, len)?).into_owned())
    }
}

/// The parts of the ELF header used here, validated.
struct Header {
    entry: u64,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
    shoff: usize,
    shentsize: usize,
    shnum: usize,
    shstrndx: usize,
}

fn header(elf: &Reader<'_>) -> Result<Header, ElfError> {
    if elf.bytes::<4>(0)? != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    let ident: [u8; 2] = elf.bytes(4)?;
    if ident[0] != 2 {
        return Err(ElfError::WrongKind { what: "not ELF64" });
    }
    if ident[1] != 2 {
        return Err(ElfError::WrongKind {
            what: "not big-endian",
        });
    }
    if elf.u16(18)? != 21 {
        return Err(ElfError::WrongKind {
            what: "not PowerPC64",
        });
    }
    Ok(Header {
        entry: elf.u64(24)?,
        phoff: elf.usize(32)?,
        shoff: elf.usize(40)?,
        phentsize: usize::from(elf.u16(54)?),
        phnum: usize::from(elf.u16(56)?),
        shentsize: usize::from(elf.u16(58)?),
        shnum: usize::from(elf.u16(60)?),
        shstrndx: usize::from(elf.u16(62)?),
    })
}

/// Lays the PT_LOAD segments of `elf` out by physical address, from 0.
pub fn flat_binary(elf: &[u8]) -> Result<Vec<u8>, ElfError> {
    let reader = Reader(elf);
    let header = header(&reader)?;
    if reader.u16(16)? != ET_EXEC {
        return Err(ElfError::WrongKind {
            what: "not an executable: an object file or a shared library",
        });
    }
    if header.entry != ENTRY {
        return Err(ElfError::WrongEntry(header.entry));
    }
    let mut flat = Vec::new();
    for i in 0..header.phnum {
        let ph = header.phoff + i * header.phentsize;
        if reader.u32(ph)? != PT_LOAD {
            continue;
        }
        let offset = reader.usize(ph + 8)?;
        let paddr = reader.u64(ph + 24)?;
        let filesz = reader.usize(ph + 32)?;
        if filesz == 0 {
            continue;
        }
        let end = paddr
            .checked_add(filesz as u64)
            .filter(|end| *end <= MAX_FLAT_BYTES);
        let end = end.ok_or(ElfError::TooLarge(paddr.saturating_add(filesz as u64)))? as usize;
        if flat.len() < end {
            flat.resize(end, 0);
        }
        flat[paddr as usize..end].copy_from_slice(reader.slice(offset, filesz)?);
    }
    if flat.is_empty() {
        return Err(ElfError::Empty);
    }
    Ok(flat)
}

/// One allocated section of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Section name.
    pub name: String,
    /// Load address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file holds its bytes (false for .bss-like sections).
    pub in_file: bool,
}

/// The offsets of `elf`'s section headers in index order, where the one with a given index is,
/// and the index of the section names' string table.
fn section_headers(
    reader: &Reader<'_>,
) -> Result<(Vec<usize>, impl Fn(usize) -> usize, usize), ElfError> {
    let header = header(reader)?;
    let (shoff, shentsize) = (header.shoff, header.shentsize);
    let entry = move |index: usize| shoff + index * shentsize;
    Ok((
        (0..header.shnum).map(entry).collect(),
        entry,
        header.shstrndx,
    ))
}

/// The allocated (loaded or zeroed) sections of `elf`, in header order.
pub fn sections(elf: &[u8]) -> Result<Vec<Section>, ElfError> {
    let reader = Reader(elf);
    let (headers, entry, shstrndx) = section_headers(&reader)?;
    let strtab = reader.usize(entry(shstrndx) + 24)?;
    let mut out = Vec::new();
    for sh in headers {
        if reader.u64(sh + 8)? & SHF_ALLOC == 0 {
            continue;
        }
        out.push(Section {
            name: reader.c_string(strtab + reader.u32(sh)? as usize)?,
            addr: reader.u64(sh + 16)?,
            size: reader.u64(sh + 32)?,
            in_file: reader.u32(sh + 4)? != SHT_NOBITS,
        });
    }
    Ok(out)
}

/// A named code address of an image (its symbol table's functions and labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Its (mangled) name.
    pub name: String,
    /// Start address.
    pub addr: u64,
    /// Size in bytes (0 for a label).
    pub size: u64,
}

/// The functions and labels of `elf`'s symbol table, by address (empty if it was stripped).
pub fn code_symbols(elf: &[u8]) -> Result<Vec<Symbol>, ElfError> {
    let reader = Reader(elf);
    let (headers, entry, _) = section_headers(&reader)?;
    let mut out = Vec::new();
    for sh in headers {
        if reader.u32(sh + 4)? != SHT_SYMTAB {
            continue;
        }
        let strtab = reader.usize(entry(reader.u32(sh + 40)? as usize) + 24)?;
        let (offset, size) = (reader.usize(sh + 24)?, reader.usize(sh + 32)?);
        for at in (offset..offset + size).step_by(SYMBOL_BYTES) {
            let kind = reader.bytes::<1>(at + 4)?[0] & 0xf;
            let addr = reader.u64(at + 8)?;
            let name_at = reader.u32(at)? as usize;
            if !matches!(kind, STT_FUNC | STT_NOTYPE) || addr == 0 || name_at == 0 {
                continue;
            }
            out.push(Symbol {
                name: reader.c_string(strtab + name_at)?,
                addr,
                size: reader.u64(at + 16)?,
            });
        }
    }
    out.sort_by_key(|symbol| symbol.addr);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 BE PPC64 file: two PT_LOAD segments and two sections (.text, .bss).
    fn sample(entry: u64, second_paddr: u64) -> Vec<u8> {
        let mut elf = vec![0u8; 0x400];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 2;
        elf[16..18].copy_from_slice(&ET_EXEC.to_be_bytes());
        elf[18..20].copy_from_slice(&21u16.to_be_bytes());
        elf[24..32].copy_from_slice(&entry.to_be_bytes());
        elf[32..40].copy_from_slice(&0x40u64.to_be_bytes()); // phoff
        elf[40..48].copy_from_slice(&0x200u64.to_be_bytes()); // shoff
        elf[54..56].copy_from_slice(&56u16.to_be_bytes());
        elf[56..58].copy_from_slice(&3u16.to_be_bytes()); // 2 loads + 1 note
        elf[58..60].copy_from_slice(&64u16.to_be_bytes());
        elf[60..62].copy_from_slice(&3u16.to_be_bytes());
        elf[62..64].copy_from_slice(&2u16.to_be_bytes()); // shstrndx
        let mut ph = |i: usize, kind: u32, offset: u64, paddr: u64, filesz: u64| {
            let at = 0x40 + i * 56;
            elf[at..at + 4].copy_from_slice(&kind.to_be_bytes());
            elf[at + 8..at + 16].copy_from_slice(&offset.to_be_bytes());
            elf[at + 24..at + 32].copy_from_slice(&paddr.to_be_bytes());
            elf[at + 32..at + 40].copy_from_slice(&filesz.to_be_bytes());
        };
        ph(0, PT_LOAD, 0x300, 0x100, 4);
        ph(1, 4, 0x300, 0x0, 4); // PT_NOTE: ignored
        ph(2, PT_LOAD, 0x304, second_paddr, 2);
        elf[0x300..0x306].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x12, 0x34]);
        let mut sh =
            |i: usize, name: u32, kind: u32, flags: u64, addr: u64, offset: u64, size: u64| {
                let at = 0x200 + i * 64;
                elf[at..at + 4].copy_from_slice(&name.to_be_bytes());
                elf[at + 4..at + 8].copy_from_slice(&kind.to_be_bytes());
                elf[at + 8..at + 16].copy_from_slice(&flags.to_be_bytes());
                elf[at + 16..at + 24].copy_from_slice(&addr.to_be_bytes());
                elf[at + 24..at + 32].copy_from_slice(&offset.to_be_bytes());
                elf[at + 32..at + 40].copy_from_slice(&size.to_be_bytes());
            };
        sh(0, 1, 1, SHF_ALLOC | 4, 0x100, 0x300, 4);
        sh(1, 7, SHT_NOBITS, SHF_ALLOC | 1, 0x1000, 0, 0x800);
        sh(2, 12, 3, 0, 0, 0x380, 0x20);
        elf[0x380..0x380 + 22].copy_from_slice(b"\0.text\0.bss\0.shstrtab\0");
        elf
    }

    #[test]
    fn segments_land_at_their_physical_addresses() {
        let flat = flat_binary(&sample(0x100, 0x108)).unwrap();
        assert_eq!(flat.len(), 0x10a);
        assert_eq!(&flat[0x100..0x104], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&flat[0x104..0x108], &[0, 0, 0, 0], "gaps are zero");
        assert_eq!(&flat[0x108..0x10a], &[0x12, 0x34]);
        assert!(flat[..0x100].iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_images_are_typed_errors() {
        assert_eq!(
            flat_binary(b"\x7fEL"),
            Err(ElfError::Truncated { offset: 0 })
        );
        assert_eq!(flat_binary(&[0u8; 64]), Err(ElfError::BadMagic));
        let mut little = sample(0x100, 0x108);
        little[5] = 1;
        assert_eq!(
            flat_binary(&little),
            Err(ElfError::WrongKind {
                what: "not big-endian"
            })
        );
        assert_eq!(
            flat_binary(&sample(0x200, 0x108)),
            Err(ElfError::WrongEntry(0x200))
        );
        let mut object = sample(0x100, 0x108);
        object[17] = 1; // ET_REL
        assert!(matches!(
            flat_binary(&object),
            Err(ElfError::WrongKind { what }) if what.starts_with("not an executable")
        ));
        assert_eq!(
            flat_binary(&sample(0x100, MAX_FLAT_BYTES)),
            Err(ElfError::TooLarge(MAX_FLAT_BYTES + 2))
        );
        let mut truncated = sample(0x100, 0x108);
        truncated.truncate(0x302);
        assert_eq!(
            flat_binary(&truncated),
            Err(ElfError::Truncated { offset: 0x300 })
        );
        let mut huge_phnum = sample(0x100, 0x108);
        huge_phnum[56..58].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            flat_binary(&huge_phnum),
            Err(ElfError::Truncated { .. })
        ));
    }

    #[test]
    fn code_symbols_come_from_the_symbol_table_by_address() {
        let mut elf = sample(0x100, 0x108);
        elf.resize(0x700, 0);
        // Section headers move to 0x400, with a symbol table (4) and its strings (3) after them;
        // the symbols are at 0x580, their names at 0x600.
        elf.copy_within(0x200..0x2c0, 0x400);
        elf[40..48].copy_from_slice(&0x400u64.to_be_bytes());
        elf[60..62].copy_from_slice(&5u16.to_be_bytes());
        let strings = b"\0late\0early\0data\0";
        elf[0x600..0x600 + strings.len()].copy_from_slice(strings);
        let header = |elf: &mut Vec<u8>, i: usize, kind: u32, offset: u64, size: u64, link: u32| {
            let at = 0x400 + i * 64;
            elf[at + 4..at + 8].copy_from_slice(&kind.to_be_bytes());
            elf[at + 24..at + 32].copy_from_slice(&offset.to_be_bytes());
            elf[at + 32..at + 40].copy_from_slice(&size.to_be_bytes());
            elf[at + 40..at + 44].copy_from_slice(&link.to_be_bytes());
        };
        header(&mut elf, 3, 3, 0x600, strings.len() as u64, 0);
        header(&mut elf, 4, SHT_SYMTAB, 0x580, 4 * 24, 3);
        let symbol = |elf: &mut Vec<u8>, i: usize, name: u32, kind: u8, addr: u64, size: u64| {
            let at = 0x580 + i * 24;
            elf[at..at + 4].copy_from_slice(&name.to_be_bytes());
            elf[at + 4] = 0x10 | kind; // global
            elf[at + 8..at + 16].copy_from_slice(&addr.to_be_bytes());
            elf[at + 16..at + 24].copy_from_slice(&size.to_be_bytes());
        };
        symbol(&mut elf, 0, 0, 0, 0, 0); // the null symbol
        symbol(&mut elf, 1, 1, STT_FUNC, 0x200, 0x40);
        symbol(&mut elf, 2, 6, STT_NOTYPE, 0x100, 0);
        symbol(&mut elf, 3, 12, 1, 0x1000, 8); // an object: not code
        assert_eq!(
            code_symbols(&elf).unwrap(),
            vec![
                Symbol {
                    name: "early".into(),
                    addr: 0x100,
                    size: 0
                },
                Symbol {
                    name: "late".into(),
                    addr: 0x200,
                    size: 0x40
                },
            ]
        );
        assert_eq!(code_symbols(&sample(0x100, 0x108)).unwrap(), vec![]);
    }

    #[test]
    fn sections_report_allocated_names_and_sizes() {
        let sections = sections(&sample(0x100, 0x108)).unwrap();
        assert_eq!(
            sections,
            vec![
                Section {
                    name: ".text".into(),
                    addr: 0x100,
                    size: 4,
                    in_file: true
                },
                Section {
                    name: ".bss".into(),
                    addr: 0x1000,
                    size: 0x800,
                    in_file: false
                },
            ]
        );
    }
}
