//! Builds the kernel programs (ai-forensics-ebpf) for the BPF target with
//! aya-build and leaves the object in OUT_DIR, where `loader` embeds it.
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or_else(|| anyhow!("no workspace root"))?
        .join("ai-forensics-ebpf");
    let root = root.to_str().context("non-UTF-8 path")?;
    if which_bpf_linker().is_none() {
        return Err(anyhow!(
            "bpf-linker is not installed: run `cargo xtask setup` (installs LLVM 22, rust-src and bpf-linker)"
        ));
    }
    aya_build::build_ebpf(
        [Package {
            name: "ai-forensics-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::default(),
    )
}

fn which_bpf_linker() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}
