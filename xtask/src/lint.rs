//! Formatting and clippy, as CI checks them (the eBPF crate separately, for
//! its own target: unifying its features with user space would pull std in).
use crate::util::{self, cmd};

/// `cargo xtask lint`.
pub fn run() -> anyhow::Result<()> {
    util::run(cmd("cargo").args(["fmt", "--all", "--", "--check"]))?;
    util::run(cmd("cargo").args([
        "clippy",
        "--workspace",
        "--exclude",
        "ai-forensics-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut ebpf = cmd("cargo");
    ebpf.args([
        "+nightly",
        "clippy",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ])
    .current_dir(util::root().join("ai-forensics-ebpf"));
    util::run(&mut ebpf)
}
