//! `cargo xtask setup | build-ebpf | check-ebpf | man | deb`.
//!
//! - `setup` installs the eBPF toolchain idempotently: Debian's `rustc-web` (a rustc with a
//!   precompiled `core` for bpfel-unknown-none), `libstd-rust-web-dev-bpf`, the `llvm-N-dev` that
//!   matches `/usr/bin/rustc -vV`, and `bpf-linker` built against that same LLVM major.
//! - `build-ebpf` builds `ebpf-probe/` and writes the object plus the hash of its inputs.
//! - `check-ebpf` fails when the committed object's recorded input hash is stale, then rebuilds
//!   to prove the sources still compile.
//! - `man` (re)writes the man pages in `dist/man/` from the current command line (clap_mangen).
//!   The generator is the `man` module of the `bpftop-ordered` binary, whose test
//!   `man::tests::checked_in_man_pages_are_current` fails when the committed pages are stale;
//!   this task runs that test with `BPFTOP_BLESS_MAN=1`, which makes it write them instead.
//! - `deb` builds the release binary and a Debian package of it (see [`deb`]).

mod deb;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// (binary of the kernel crate, where its object is committed relative to the workspace root):
/// the product probes, and the transport benchmark's probe in an object of its own.
const OBJECTS: &[(&str, &str)] = &[
    ("bpftop-probe", "ebpf-probe/bpftop-probe.bpf.o"),
    ("bpftop-bench-probe", "ebpf-probe/bpftop-bench-probe.bpf.o"),
];
/// Hash of the objects' inputs, relative to the workspace root.
const HASH_PATH: &str = "ebpf-probe/bpftop-probe.bpf.o.sha256";
/// The bpf-linker release that works with rustc 1.96 / LLVM 22 (see docs/design.md "Toolchain").
const BPF_LINKER_VERSION: &str = "0.13.0";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

fn main() -> Result<()> {
    let task = env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    match task.as_str() {
        "setup" => setup(),
        "build-ebpf" => build_ebpf(&root),
        "check-ebpf" => check_ebpf(&root),
        "man" => man(&root),
        "deb" => {
            let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            deb::build(&root, &cargo).map(|_| ())
        }
        _ => {
            eprintln!("usage: cargo xtask <setup|build-ebpf|check-ebpf|man|deb>");
            std::process::exit(2);
        }
    }
}

/// Writes `dist/man/*.1` by running the binary's man page test in bless mode.
fn man(root: &Path) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root)
        .env("BPFTOP_BLESS_MAN", "1")
        .args([
            "test",
            "--quiet",
            "--package",
            "bpftop-ordered",
            "--bin",
            "bpftop-ordered",
            "--",
            "--exact",
            "man::tests::checked_in_man_pages_are_current",
            "--nocapture",
        ]))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: apt packages present: {}", packages.join(" "));
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    // With recommends (rust-web-llvm, lld, clang): the configuration bpf-linker was built and
    // tested with on this kind of machine.
    run(Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// LLVM major version of Debian's rustc, from `rustc -vV` ("LLVM version: 22.1.8").
fn rustc_llvm_major(rustc: &str) -> Result<u32> {
    let text = output(Command::new(rustc).arg("-vV"))?;
    parse_llvm_major(&text).with_context(|| format!("no `LLVM version:` line in `{rustc} -vV`"))
}

fn parse_llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.trim().parse().ok())
}

fn cargo_bin_dir() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

fn bpf_linker_matches(llvm_major: u32) -> bool {
    let linker = cargo_bin_dir().join("bpf-linker");
    let Ok(out) = Command::new(&linker).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "bpf-linker 0.13.0\nLLVM version 22.1.8" (older releases print only the first line).
    text.contains(BPF_LINKER_VERSION)
        && (!text.contains("LLVM") || text.contains(&format!("LLVM version {llvm_major}.")))
}

fn setup() -> Result<()> {
    apt_install(&["rustc-web", "libstd-rust-web-dev-bpf"])?;
    let llvm_major = rustc_llvm_major(DEBIAN_RUSTC)?;
    let llvm_dev = format!("llvm-{llvm_major}-dev");
    apt_install(&[llvm_dev.as_str()])?;
    if bpf_linker_matches(llvm_major) {
        eprintln!("xtask: bpf-linker {BPF_LINKER_VERSION} (LLVM {llvm_major}) present");
        return Ok(());
    }
    let path = format!(
        "/usr/lib/llvm-{llvm_major}/bin:{}",
        env::var("PATH").unwrap_or_default()
    );
    run(Command::new("cargo")
        .args(["install", "--locked", "--force"])
        .arg(format!("bpf-linker@{BPF_LINKER_VERSION}"))
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{llvm_major}"))
        .env("PATH", path))
}

/// Files whose content determines the object: the kernel crate, the shared crate, and the
/// build configuration. Sorted, so the hash does not depend on directory order.
fn ebpf_inputs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![
        root.join("ebpf-probe/Cargo.toml"),
        root.join("ebpf-probe/Cargo.lock"),
        root.join("ebpf-probe/.cargo/config.toml"),
        root.join("ebpf-probe/common/Cargo.toml"),
    ];
    for dir in ["ebpf-probe/src", "ebpf-probe/common/src"] {
        collect_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// SHA-256 over (relative path, content) of every input, hex encoded.
fn inputs_hash(root: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in ebpf_inputs(root)? {
        let rel = file.strip_prefix(root).unwrap_or(&file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let content = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn compile_ebpf(root: &Path) -> Result<PathBuf> {
    let dir = root.join("ebpf-probe");
    let path = format!(
        "{}:{}",
        cargo_bin_dir().display(),
        env::var("PATH").unwrap_or_default()
    );
    let started = std::time::Instant::now();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&dir)
        .args(["build", "--release", "--locked"])
        .env("PATH", path)
        // The outer `cargo xtask` sets these for the host toolchain; the eBPF build must use the
        // settings in ebpf-probe/.cargo/config.toml instead.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    run(&mut cmd)?;
    eprintln!(
        "xtask: eBPF build took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(dir.join("target/bpfel-unknown-none/release"))
}

fn build_ebpf(root: &Path) -> Result<()> {
    let built = compile_ebpf(root)?;
    for (binary, object) in OBJECTS {
        let from = built.join(binary);
        fs::copy(&from, root.join(object))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    let hash = inputs_hash(root)?;
    fs::write(root.join(HASH_PATH), format!("{hash}\n"))?;
    let written: Vec<&str> = OBJECTS.iter().map(|(_, object)| *object).collect();
    eprintln!("xtask: wrote {} (inputs sha256 {hash})", written.join(", "));
    Ok(())
}

fn check_ebpf(root: &Path) -> Result<()> {
    let recorded = fs::read_to_string(root.join(HASH_PATH))
        .with_context(|| format!("{HASH_PATH} missing: run `cargo xtask build-ebpf`"))?;
    let current = inputs_hash(root)?;
    if recorded.trim() != current {
        bail!(
            "the eBPF objects are stale: their sources changed (recorded {}, now {current}); \
             run `cargo xtask build-ebpf` and commit the objects",
            recorded.trim()
        );
    }
    compile_ebpf(root)?;
    for (_, object) in OBJECTS {
        if !root.join(object).exists() {
            bail!("{object} is missing: run `cargo xtask build-ebpf` and commit it");
        }
    }
    eprintln!("xtask: the committed eBPF objects match their sources ({current})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_is_read_from_rustc_vv() {
        let text = "rustc 1.96.0\nbinary: rustc\nLLVM version: 22.1.8\n";
        assert_eq!(parse_llvm_major(text), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
    }

    #[test]
    fn inputs_hash_is_stable_and_covers_sources() {
        let root = workspace_root();
        let a = inputs_hash(&root).unwrap();
        let b = inputs_hash(&root).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let inputs = ebpf_inputs(&root).unwrap();
        assert!(inputs.iter().any(|p| p.ends_with("ebpf-probe/src/main.rs")));
        assert!(inputs
            .iter()
            .any(|p| p.ends_with("ebpf-probe/common/src/lib.rs")));
    }
}
