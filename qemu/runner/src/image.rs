//! Building images: the bare-metal flags, the nested `cargo build`, and the flat `-bios` file.

use crate::cli::Image;
use crate::elf;
use crate::quiet::outln;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target the images are built for (its prebuilt `core`/`alloc` serve bare metal on stable).
pub const TARGET: &str = "powerpc64-unknown-linux-musl";

/// The workspace root (this crate lives in `qemu/runner/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Target directory of image builds, apart from `target/` so a nested build never waits for the
/// lock held by an outer `cargo run` or `cargo test`.
pub fn target_dir(root: &Path) -> PathBuf {
    root.join("target").join("image")
}

/// The rustflags of an image build. They replace the tier-2 flags of `.cargo/config.toml`.
///
/// `--cfg target_os="none"` marks the build as bare metal for `#[cfg(target_os = "none")]` code
/// (the musl target says `linux`; no stable bare-metal PowerPC64 target exists), hence the allow
/// of the lint that guards built-in cfgs.
pub fn rustflags() -> Vec<String> {
    [
        "-C",
        "linker-flavor=ld.lld",
        "-C",
        "link-self-contained=no",
        "-C",
        "relocation-model=static",
        "-C",
        "panic=abort",
        "-C",
        "target-cpu=pwr8",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// A `cargo` command for the image crates with the image flags and environment.
pub fn cargo(root: &Path, subcommand: &str, heap_bytes: Option<u64>) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .arg(subcommand)
        .args(["--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir(root))
        // The encoded form wins over every other rustflags source, whatever the caller's
        // environment holds.
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags().join("\u{1f}"))
        // The template's linker, said here rather than borrowed from the tier-2 config section.
        .env(
            "CARGO_TARGET_POWERPC64_UNKNOWN_LINUX_MUSL_LINKER",
            "rust-lld",
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    match heap_bytes {
        Some(bytes) => command.env("SPINDLE_HEAP_SIZE", bytes.to_string()),
        None => command.env_remove("SPINDLE_HEAP_SIZE"),
    };
    command
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Built {
    /// The linked ELF file (for gdb and section sizes).
    pub elf: PathBuf,
    /// The flat binary given to `-bios`.
    pub flat: PathBuf,
}

/// Builds `image` and writes its flat binary next to the ELF file.
pub fn build(image: Image, heap_bytes: Option<u64>) -> Result<Built, String> {
    build_with(image, heap_bytes, None)
}

/// [`build`] with `SPINDLE_BENCH_ONLY` set to `bench_only` (see the bench image), or unset.
pub fn build_with(
    image: Image,
    heap_bytes: Option<u64>,
    bench_only: Option<&str>,
) -> Result<Built, String> {
    let root = workspace_root();
    let mut command = cargo(&root, "build", heap_bytes);
    match bench_only {
        Some(filter) => command.env("SPINDLE_BENCH_ONLY", filter),
        None => command.env_remove("SPINDLE_BENCH_ONLY"),
    };
    let status = command
        .args(["-p", image.package(), "--bin", image.name()])
        .stdin(Stdio::null())
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !status.success() {
        return Err(format!(
            "building the {} image failed ({status})",
            image.name()
        ));
    }
    let elf = target_dir(&root)
        .join(TARGET)
        .join("release")
        .join(image.name());
    let flat = Prepared::from_elf(&elf)?.flat;
    Ok(Built { elf, flat })
}

/// An image ready to boot: its flat `-bios` file, and whether it is a test harness.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The flat binary, written beside the ELF file as `<elf>.bin`.
    pub flat: PathBuf,
    /// Made with `spindle_pseries::test_main!`: it lists and runs tests.
    pub is_harness: bool,
}

/// The ELF section that marks a test harness image (`spindle_pseries::testing`).
pub const HARNESS_SECTION: &str = ".spindle.harness";

impl Prepared {
    /// Checks that `elf` is a pseries image and writes its flat binary beside it.
    pub fn from_elf(elf: &Path) -> Result<Self, String> {
        let bytes =
            std::fs::read(elf).map_err(|err| format!("cannot read {}: {err}", elf.display()))?;
        let explain = |err: elf::ElfError| {
            format!(
                "{}: {err}: build it for {TARGET} on the board crate spindle-pseries (see \
                 qemu/template/ in the Spindle repository)",
                elf.display()
            )
        };
        let flat_bytes = elf::flat_binary(&bytes).map_err(explain)?;
        let is_harness = elf::sections(&bytes)
            .map_err(explain)?
            .iter()
            .any(|section| section.name == HARNESS_SECTION);
        let mut flat = elf.as_os_str().to_owned();
        flat.push(".bin");
        let flat = PathBuf::from(flat);
        std::fs::write(&flat, flat_bytes)
            .map_err(|err| format!("cannot write {}: {err}", flat.display()))?;
        Ok(Self { flat, is_harness })
    }
}

/// Prints the section sizes of a built image.
pub fn print_sizes(image: Image, built: &Built) -> Result<(), String> {
    let bytes = std::fs::read(&built.elf)
        .map_err(|err| format!("cannot read {}: {err}", built.elf.display()))?;
    let sections =
        elf::sections(&bytes).map_err(|err| format!("{}: {err}", built.elf.display()))?;
    let flat = std::fs::metadata(&built.flat)
        .map_err(|err| format!("{}: {err}", built.flat.display()))?
        .len();
    outln!("{} image ({}):", image.name(), built.elf.display());
    let sum = |names: &[&str]| {
        sections
            .iter()
            .filter(|s| names.contains(&s.name.as_str()))
            .map(|s| s.size)
            .sum::<u64>()
    };
    outln!(
        "  .text   {:>8} bytes  (vectors {} + code {})",
        sum(&[".vectors", ".text"]),
        sum(&[".vectors"]),
        sum(&[".text"])
    );
    outln!("  .rodata {:>8} bytes", sum(&[".rodata"]));
    outln!(
        "  .data   {:>8} bytes  (data {} + TOC/GOT {})",
        sum(&[".data", ".got"]),
        sum(&[".data"]),
        sum(&[".got"])
    );
    outln!("  .bss    {:>8} bytes", sum(&[".bss"]));
    outln!(
        "  stacks  {:>8} bytes  (not in the file; reserved after .bss)",
        sum(&[".stacks"])
    );
    outln!("  flat -bios file {flat} bytes");
    let known = [
        ".vectors", ".text", ".rodata", ".data", ".got", ".bss", ".stacks",
    ];
    for other in sections
        .iter()
        .filter(|s| !known.contains(&s.name.as_str()) && s.size > 0)
    {
        outln!("  (other section {} {} bytes)", other.name, other.size);
    }
    Ok(())
}

/// Runs clippy with `-D warnings` on every crate of an image, built as the images are (so the
/// bare-metal-only code is checked too).
pub fn clippy() -> Result<(), String> {
    let root = workspace_root();
    let status = cargo(&root, "clippy", None)
        .args([
            "-p",
            "spindle",
            "-p",
            "spindle-arch",
            "-p",
            "spindle-drivers",
            "-p",
            "spindle-target-tests",
            "-p",
            "spindle-pseries",
            "-p",
            "spindle-demo",
            "-p",
            "spindle-test",
        ])
        .args(["--bins", "--lib", "--", "-D", "warnings"])
        .stdin(Stdio::null())
        .status()
        .map_err(|err| format!("cannot run cargo clippy: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "clippy found problems in the bare-metal build ({status})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_flags_link_statically_without_unwinding() {
        let flags = rustflags();
        assert!(flags
            .windows(2)
            .any(|w| w == ["-C", "relocation-model=static"]));
        assert!(flags.windows(2).any(|w| w == ["-C", "panic=abort"]));
    }

    /// Users build with the template's `.cargo/config.toml`; Spindle's own images must be built
    /// the same way.
    #[test]
    fn image_flags_are_the_templates() {
        let config =
            std::fs::read_to_string(workspace_root().join("qemu/template/.cargo/config.toml"))
                .expect("reading the template's .cargo/config.toml");
        let flags = rustflags();
        for pair in flags.chunks(2) {
            let quoted = format!("\"{}\", \"{}\"", pair[0], pair[1]);
            assert!(config.contains(&quoted), "the template lacks {quoted}");
        }
        assert_eq!(
            config.matches("\"-C\", ").count(),
            flags.len() / 2,
            "the template has flags the images lack"
        );
        assert!(config.contains(&format!("target = \"{TARGET}\"")));
        assert!(config.contains("linker = \"rust-lld\""));
    }

    #[test]
    fn the_workspace_root_holds_the_linker_script() {
        assert!(workspace_root().join("qemu/pseries/link.ld").is_file());
        assert_eq!(target_dir(Path::new("/r")), Path::new("/r/target/image"));
    }
}
