//! Where a hung machine is: each CPU's registers and call chain, read through QEMU's monitor.
//!
//! A run that its timeout may cut off gets a monitor socket (`-monitor unix:PATH`). At the
//! timeout, before the machine is killed, the runner stops it, reads `info registers -a` and
//! walks each CPU's stack by its back chain (ELFv2: a frame's first word is its caller's stack
//! pointer, and the caller's frame keeps the return address 16 bytes in), reading guest memory
//! with `xp` (the kernel runs in real mode: its addresses are physical). Addresses are named
//! from the image's symbol table. Nothing here needs the guest's help, so a CPU spinning with
//! interrupts masked is found as well as one idling.

use crate::elf::{self, Symbol};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Frames listed per CPU at most.
const MAX_FRAMES: usize = 48;
/// What the monitor prints when it waits for a command.
const PROMPT: &str = "(qemu) ";
/// How long one monitor command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// MSR[EE]: external and decrementer interrupts enabled.
const MSR_EE: u64 = 0x8000;

/// An image's code symbols, to name addresses with.
#[derive(Debug, Default)]
pub struct Symbols(Vec<Symbol>);

impl Symbols {
    /// The functions and labels of the ELF file at `path` (none if it cannot be read).
    pub fn from_elf(path: &Path) -> Self {
        let symbols = std::fs::read(path)
            .ok()
            .and_then(|bytes| elf::code_symbols(&bytes).ok());
        Self(symbols.unwrap_or_default())
    }

    /// `function+0xoffset` for `addr` (demangled, without the hash), if a symbol holds it.
    pub fn name(&self, addr: u64) -> Option<String> {
        let index = self
            .0
            .partition_point(|symbol| symbol.addr <= addr)
            .checked_sub(1)?;
        let symbol = &self.0[index];
        let offset = addr - symbol.addr;
        if symbol.size != 0 && offset >= symbol.size {
            return None;
        }
        Some(format!(
            "{:#}+{offset:#x}",
            rustc_demangle::demangle(&symbol.name)
        ))
    }
}

/// A monitor socket for one machine, removed when dropped.
#[derive(Debug)]
pub struct MonitorSocket {
    path: PathBuf,
}

impl MonitorSocket {
    /// A fresh socket path in the temporary folder (QEMU creates the socket).
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "spindle-qemu-{}-{}.monitor",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        Self { path }
    }

    /// QEMU's arguments for it: a monitor that waits for no client.
    pub fn qemu_args(&self) -> Vec<OsString> {
        let mut spec = OsString::from("unix:");
        spec.push(&self.path);
        spec.push(",server=on,wait=off");
        vec!["-monitor".into(), spec]
    }

    /// Stops the machine and reports where each CPU is; if the monitor cannot be reached, why.
    pub fn report(&self, symbols: &Symbols) -> String {
        match Monitor::connect(&self.path).and_then(|mut monitor| monitor.where_cpus_are()) {
            Ok(cpus) => format_report(&cpus, symbols),
            Err(err) => format!("(no CPU report: the QEMU monitor failed: {err})"),
        }
    }
}

impl Drop for MonitorSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One CPU as the monitor found it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CpuPlace {
    nip: u64,
    lr: u64,
    msr: u64,
    /// Return addresses up its stack, innermost first.
    chain: Vec<u64>,
}

/// A conversation with QEMU's human monitor.
struct Monitor(UnixStream);

impl Monitor {
    fn connect(path: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut monitor = Self(stream);
        monitor.read_to_prompt()?;
        Ok(monitor)
    }

    /// Reads until the prompt; returns what came before it.
    fn read_to_prompt(&mut self) -> std::io::Result<String> {
        let start = Instant::now();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.0.read(&mut chunk) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(err) => return Err(err),
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Some(before) = text.strip_suffix(PROMPT) {
                return Ok(before.to_owned());
            }
            if start.elapsed() > COMMAND_TIMEOUT {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }

    /// Runs `command`; returns its output (the monitor's echo of the typed line left out).
    fn command(&mut self, command: &str) -> std::io::Result<String> {
        self.0.write_all(format!("{command}\n").as_bytes())?;
        let text = self.read_to_prompt()?;
        Ok(command_output(&text))
    }

    fn read_word(&mut self, addr: u64) -> Option<u64> {
        parse_word(&self.command(&format!("xp /1gx {addr:#x}")).ok()?)
    }

    fn where_cpus_are(&mut self) -> std::io::Result<Vec<CpuPlace>> {
        self.command("stop")?;
        let registers = self.command("info registers -a")?;
        Ok(parse_registers(&registers)
            .into_iter()
            .map(|(nip, lr, msr, sp)| CpuPlace {
                nip,
                lr,
                msr,
                chain: call_chain(sp, |addr| self.read_word(addr)),
            })
            .collect())
    }
}

/// A command's output from what the monitor sent back: everything after the echoed line.
fn command_output(text: &str) -> String {
    text.split_once('\n')
        .map_or("", |(_, rest)| rest)
        .replace('\r', "")
}

/// One 64-bit word from `xp /1gx` output (`0000000000000100: 0x4800180000000000`).
fn parse_word(output: &str) -> Option<u64> {
    let (_, value) = output.trim().split_once(": 0x")?;
    u64::from_str_radix(value.trim(), 16).ok()
}

/// Each CPU's NIP, LR, MSR and stack pointer (r1) from `info registers -a`, in CPU order.
fn parse_registers(output: &str) -> Vec<(u64, u64, u64, u64)> {
    let mut cpus = Vec::new();
    let mut words = output.split_whitespace();
    let hex = |word: Option<&str>| word.and_then(|word| u64::from_str_radix(word, 16).ok());
    let (mut lr, mut msr) = (None, None);
    let mut nip = None;
    while let Some(word) = words.next() {
        match word {
            // Every CPU's block opens with its NIP and lists its GPRs after LR and MSR.
            "NIP" => nip = hex(words.next()),
            "LR" => lr = hex(words.next()),
            "MSR" => msr = hex(words.next()),
            "GPR00" => {
                let sp = hex(words.nth(1));
                if let (Some(nip), Some(lr), Some(msr), Some(sp)) = (nip, lr, msr, sp) {
                    cpus.push((nip, lr, msr, sp));
                }
                (nip, lr, msr) = (None, None, None);
            }
            _ => {}
        }
    }
    cpus
}

/// Return addresses up the call chain from stack pointer `sp`, innermost first, read with
/// `read`. Stops at the terminal (null) back chain, at a link that does not climb the stack or
/// is misaligned, where memory cannot be read, or after [`MAX_FRAMES`].
fn call_chain(sp: u64, mut read: impl FnMut(u64) -> Option<u64>) -> Vec<u64> {
    let mut chain = Vec::new();
    let mut frame = sp;
    while chain.len() < MAX_FRAMES {
        let Some(caller) = read(frame) else { break };
        if caller <= frame || !caller.is_multiple_of(16) {
            break;
        }
        match read(caller + 16) {
            Some(0) | None => break,
            Some(ret) => chain.push(ret),
        }
        frame = caller;
    }
    chain
}

fn format_report(cpus: &[CpuPlace], symbols: &Symbols) -> String {
    let place = |addr: u64| match symbols.name(addr) {
        Some(name) => format!("{addr:#010x} {name}"),
        None => format!("{addr:#010x}"),
    };
    let mut report = String::from(
        "where each CPU was at the timeout (registers from the QEMU monitor, callers from the \
         stack's back chain):",
    );
    for (index, cpu) in cpus.iter().enumerate() {
        let interrupts = if cpu.msr & MSR_EE == 0 { "off" } else { "on" };
        report.push_str(&format!(
            "\nCPU {index} (interrupts {interrupts}):\n  at   {}\n  LR   {}",
            place(cpu.nip),
            place(cpu.lr)
        ));
        // A function that saved LR has its return address first in the chain: once is enough.
        let skip = usize::from(cpu.chain.first() == Some(&cpu.lr));
        for addr in &cpu.chain[skip..] {
            report.push_str(&format!("\n  from {}", place(*addr)));
        }
    }
    if cpus.is_empty() {
        report.push_str("\n(the monitor listed no CPU)");
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTERS: &str = "\nCPU#0\nNIP 00000000000c2528   LR 00000000000c24fc CTR 00000000000c2460 XER 0000000000000000 CPU#0\nMSR 800000000280a002 HID0 0000000000000000  HF 6e882004 iidx 3 didx 3\nGPR00 00000000000e2570 00000000002a3c50 0000000000122990 0000000000000000\nGPR04 0000000000000000 0000000000000000 0000000000000000 0000000000000000\nCPU#1\nNIP 00000000000e3e6c   LR 00000000000e3d78 CTR 0000000000058064 XER 0000000000000000 CPU#1\nMSR 8000000002802002 HID0 0000000000000000  HF 6e882004 iidx 3 didx 3\nGPR00 00000000000e3d78 00000000002b1e40 0000000000122990 0000000000000001\n";

    #[test]
    fn registers_of_every_cpu_are_parsed() {
        assert_eq!(
            parse_registers(REGISTERS),
            vec![
                (0xc2528, 0xc24fc, 0x8000_0000_0280_a002, 0x2a_3c50),
                (0xe3e6c, 0xe3d78, 0x8000_0000_0280_2002, 0x2b_1e40),
            ]
        );
        assert_eq!(parse_registers("no registers here"), vec![]);
    }

    #[test]
    fn monitor_output_loses_its_echo_and_words_parse() {
        let echoed =
            "x\u{1b}[K\u{1b}[Dxp /1gx 0x100\u{1b}[K\r\n0000000000000100: 0x4800180000000000\r\n";
        let output = command_output(echoed);
        assert_eq!(output, "0000000000000100: 0x4800180000000000\n");
        assert_eq!(parse_word(&output), Some(0x4800_1800_0000_0000));
        assert_eq!(parse_word("Cannot access memory\n"), None);
    }

    #[test]
    fn the_call_chain_follows_back_links_to_the_terminal_one() {
        // Frames at 0x1000 -> 0x1100 -> 0x1200 -> 0 (terminal), return addresses 16 bytes in.
        let memory = |addr: u64| match addr {
            0x1000 => Some(0x1100),
            0x1110 => Some(0xaaa),
            0x1100 => Some(0x1200),
            0x1210 => Some(0xbbb),
            0x1200 => Some(0),
            _ => None,
        };
        assert_eq!(call_chain(0x1000, memory), vec![0xaaa, 0xbbb]);
        // A link that points down the stack ends the walk instead of looping.
        let looping = |addr: u64| match addr {
            0x1000 => Some(0x1100),
            0x1110 => Some(0xaaa),
            0x1100 => Some(0x1000),
            _ => None,
        };
        assert_eq!(call_chain(0x1000, looping), vec![0xaaa]);
        assert_eq!(call_chain(0x1000, |_| None), vec![]);
    }

    #[test]
    fn reports_name_places_from_the_symbols() {
        let symbols = Symbols(vec![
            Symbol {
                name: "_ZN7spindle4idle17h0123456789abcdefE".into(),
                addr: 0x100,
                size: 0x40,
            },
            Symbol {
                name: "spindle_board_entry".into(),
                addr: 0x200,
                size: 0x10,
            },
        ]);
        assert_eq!(symbols.name(0x108).as_deref(), Some("spindle::idle+0x8"));
        assert_eq!(symbols.name(0x150), None, "past the function's end");
        assert_eq!(symbols.name(0x50), None, "before every symbol");
        let cpus = [CpuPlace {
            nip: 0x108,
            lr: 0x204,
            msr: MSR_EE,
            chain: vec![0x204, 0x999],
        }];
        let report = format_report(&cpus, &symbols);
        assert!(report.contains("CPU 0 (interrupts on):"), "{report}");
        assert!(
            report.contains("at   0x00000108 spindle::idle+0x8"),
            "{report}"
        );
        assert!(
            report.contains("LR   0x00000204 spindle_board_entry+0x4"),
            "{report}"
        );
        assert!(report.contains("from 0x00000999"), "{report}");
        assert_eq!(report.matches("spindle_board_entry").count(), 1, "{report}");
    }
}
