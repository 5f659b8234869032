//! Running commands with clear errors.
use std::{
    ffi::OsStr,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// Workspace root (the parent of xtask/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// PATH with cargo's bin directory and LLVM 22 first, as bpf-linker needs.
pub fn tool_path() -> std::ffi::OsString {
    let mut dirs = vec![PathBuf::from("/usr/lib/llvm-22/bin")];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    } else if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A command with the tool PATH, run from the workspace root.
pub fn cmd(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", tool_path()).current_dir(root());
    c
}

/// Runs a command, failing with its description when it fails.
pub fn run(c: &mut Command) -> anyhow::Result<()> {
    let desc = format!("{c:?}");
    let status = c.status().with_context(|| format!("cannot start {desc}"))?;
    if !status.success() {
        bail!("{desc} failed: {status}");
    }
    Ok(())
}

/// Whether a command runs and succeeds (output discarded).
pub fn succeeds(c: &mut Command) -> bool {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// stdout of a command, if it succeeds.
pub fn output(c: &mut Command) -> Option<String> {
    let o = c.stderr(Stdio::null()).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Whether this process is root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A command run as root: itself when already root, else through `sudo -E`.
pub fn as_root(program: impl AsRef<OsStr>) -> Command {
    if is_root() {
        cmd(program)
    } else {
        let mut c = cmd("sudo");
        c.arg("-E")
            .arg("env")
            .arg(format!("PATH={}", tool_path().to_string_lossy()))
            .arg(program);
        c
    }
}
