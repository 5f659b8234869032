//! Prerequisites, installed idempotently on a fresh Debian machine.
use anyhow::{Context as _, bail};

use crate::util::{self, cmd, output, succeeds};

/// Debian packages: LLVM 22 for bpf-linker; strace, python3-torch, TLS
/// clients and the rest for the tests.
const APT: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "strace",
    "python3-torch",
    "chromium",
    "bpftool",
    // Test servers and the fleet test's network namespaces.
    "rsyslog",
    "python3-venv",
    "python3-pip",
    "iproute2",
    // The coexistence test runs these beside ai-forensics.
    "linux-perf",
    "bpftrace",
    // The evasion corpus runs busybox's shell applet.
    "busybox",
    // `run` prevents denied calls through seccomp user notification.
    "libseccomp-dev",
    // TLS capture tests: certificates, and clients through OpenSSL (node)
    // and GnuTLS (wget).
    "openssl",
    "wget",
    "nodejs",
];

fn missing_packages() -> Vec<&'static str> {
    APT.iter()
        .copied()
        .filter(|p| {
            output(cmd("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect()
}

fn has_rust_src() -> bool {
    output(cmd("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]))
        .is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src")))
}

fn bpf_linker_ok() -> bool {
    output(cmd("bpf-linker").arg("--version")).is_some_and(|v| v.contains(" 0.13."))
}

/// What is missing, in words.
fn missing() -> Vec<String> {
    let mut m: Vec<String> = missing_packages()
        .iter()
        .map(|p| format!("apt package {p}"))
        .collect();
    if !succeeds(cmd("rustup").args(["run", "nightly", "rustc", "--version"])) {
        m.push("nightly toolchain".into());
    }
    if !has_rust_src() {
        m.push("rust-src for nightly".into());
    }
    if !bpf_linker_ok() {
        m.push("bpf-linker 0.13 (LLVM 22)".into());
    }
    m
}

/// Installs what is missing; nothing when all is there.
pub fn ensure() -> anyhow::Result<()> {
    if missing().is_empty() {
        return Ok(());
    }
    run_install()
}

/// `cargo xtask setup [--check]`.
pub fn run(check: bool) -> anyhow::Result<()> {
    let m = missing();
    if check {
        if m.is_empty() {
            println!("setup: everything is installed");
            return Ok(());
        }
        bail!("setup: missing: {}", m.join(", "));
    }
    if m.is_empty() {
        println!("setup: everything is installed");
        return Ok(());
    }
    run_install()
}

fn run_install() -> anyhow::Result<()> {
    let pkgs = missing_packages();
    if !pkgs.is_empty() {
        println!("setup: installing {}", pkgs.join(" "));
        let mut update = util::as_root("apt-get");
        update.arg("update");
        util::run(&mut update).context("apt-get update")?;
        let mut install = util::as_root("apt-get");
        install
            .args(["install", "-y", "--no-install-recommends"])
            .args(&pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive");
        util::run(&mut install).context("apt-get install")?;
    }
    if !succeeds(cmd("rustup").args(["run", "nightly", "rustc", "--version"])) {
        println!("setup: installing the nightly toolchain");
        util::run(cmd("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    if !has_rust_src() {
        println!("setup: adding rust-src to nightly");
        util::run(cmd("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }
    if !bpf_linker_ok() {
        println!("setup: building bpf-linker 0.13 against LLVM 22 (about a minute)");
        util::run(
            cmd("cargo")
                .args([
                    "install",
                    "bpf-linker",
                    "--locked",
                    "--version",
                    "^0.13",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                    "--force",
                ])
                .env("LLVM_PREFIX", "/usr/lib/llvm-22")
                .env("LLVM_SYS_220_PREFIX", "/usr/lib/llvm-22"),
        )?;
    }
    let left = missing();
    if !left.is_empty() {
        bail!("setup: still missing after installing: {}", left.join(", "));
    }
    if !succeeds(cmd("/usr/bin/python3").args(["-c", "import torch"])) {
        bail!("setup: /usr/bin/python3 cannot import torch (python3-torch)");
    }
    println!("setup: done");
    Ok(())
}
