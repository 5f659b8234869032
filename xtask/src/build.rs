//! Building the kernel programs and user space, and running the binary.
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::util::{self, cmd, root, run};

/// The default BPF target (little endian; bpfeb-unknown-none for big endian).
pub const DEFAULT_TARGET: &str = "bpfel-unknown-none";

/// Options of `build-ebpf`.
#[derive(Debug, Args)]
pub struct EbpfOptions {
    /// Release build.
    #[arg(long)]
    pub release: bool,
    /// BPF target triple.
    #[arg(long, default_value = DEFAULT_TARGET, value_parser = ["bpfel-unknown-none", "bpfeb-unknown-none"])]
    pub target: String,
}

/// Builds the eBPF crate on its own (user space's build.rs does the same
/// through aya-build to embed the object).
pub fn ebpf(o: &EbpfOptions) -> anyhow::Result<()> {
    let mut c = cmd("cargo");
    c.args([
        "+nightly",
        "build",
        "--package",
        "ai-forensics-ebpf",
        "--bins",
        "--target",
        &o.target,
        "-Z",
        "build-std=core",
    ]);
    if o.release {
        c.arg("--release");
    }
    run(&mut c)?;
    let profile = if o.release { "release" } else { "debug" };
    println!(
        "eBPF object: {}",
        root()
            .join("target")
            .join(&o.target)
            .join(profile)
            .join("ai-forensics")
            .display()
    );
    Ok(())
}

/// Builds user space (which builds and embeds the eBPF object).
pub fn user(release: bool) -> anyhow::Result<()> {
    let mut c = cmd("cargo");
    c.args(["build", "--package", "ai-forensics"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)
}

/// Path of the built binary.
pub fn binary(release: bool) -> PathBuf {
    root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("ai-forensics")
}

/// Runs the binary as root with `args`.
pub fn run_binary(release: bool, args: &[String]) -> anyhow::Result<()> {
    let mut c = util::as_root(binary(release));
    c.args(args);
    run(&mut c)
}

/// The main job: trace the bundled PyTorch training, then prediction.
pub fn demo(release: bool) -> anyhow::Result<()> {
    let models = root().join("models");
    if !models.join("train.py").is_file() {
        bail!("models/train.py is missing");
    }
    let out = models.join("out");
    println!("== tracing the bundled PyTorch training run (models/train.py) ==");
    let mut train = util::as_root(binary(release));
    train
        .args([
            "run",
            "--mode",
            "events",
            "--per-process",
            "--",
            "/usr/bin/python3",
        ])
        .arg(models.join("train.py"))
        .arg("--out")
        .arg(&out);
    run(&mut train)?;
    println!("\n== tracing the bundled PyTorch prediction run (models/predictions.py) ==");
    let mut predict = util::as_root(binary(release));
    predict
        .args(["run", "--mode", "events", "--", "/usr/bin/python3"])
        .arg(models.join("predictions.py"))
        .arg("--model")
        .arg(out.join("model.pt"));
    run(&mut predict)
}
