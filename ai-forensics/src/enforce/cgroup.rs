//! A cgroup v2 per launched workload: freeze, thaw and kill it as one.
use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// Where the cgroup v2 hierarchy is mounted (from `/proc/self/mountinfo`).
#[must_use]
pub fn mount_point() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| PathBuf::from(pre.split_whitespace().nth(4).unwrap_or("")))
    })
}

/// Creates `<cgroup2>/ai-forensics/<name>` for a launched workload.
pub fn create(name: &str) -> Result<PathBuf> {
    let root = mount_point().ok_or_else(|| Error::env("cgroup v2 is not mounted"))?;
    let dir = root.join("ai-forensics").join(name);
    fs::create_dir_all(&dir)
        .map_err(|e| Error::env(format!("creating cgroup {}: {e}", dir.display())))?;
    if !dir.join("cgroup.freeze").exists() {
        return Err(Error::env(format!(
            "cgroup {} has no freezer (kernel 5.2+ needed)",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Moves `pid` into the cgroup.
pub fn enter(dir: &Path, pid: u32) -> Result<()> {
    fs::write(dir.join("cgroup.procs"), pid.to_string())
        .map_err(|e| Error::env(format!("moving {pid} into {}: {e}", dir.display())))
}

/// Freezes (or thaws) every process of the cgroup.
pub fn freeze(dir: &Path, on: bool) -> std::result::Result<(), String> {
    fs::write(dir.join("cgroup.freeze"), if on { "1" } else { "0" })
        .map_err(|e| format!("cgroup.freeze in {}: {e}", dir.display()))
}

/// Kills every process of the cgroup (kernel 5.14+).
pub fn kill(dir: &Path) -> std::result::Result<(), String> {
    fs::write(dir.join("cgroup.kill"), "1")
        .map_err(|e| format!("cgroup.kill in {}: {e}", dir.display()))
}

/// Whether the cgroup's processes are all frozen.
#[must_use]
pub fn is_frozen(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|s| s.lines().any(|l| l == "frozen 1"))
}

/// Removes the cgroup when it is empty (leaves it, with a warning, when not).
pub fn remove(dir: &Path) {
    if let Err(e) = fs::remove_dir(dir) {
        tracing::debug!("cgroup {} left in place: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_cgroup2() {
        // On machines without cgroup v2 this is None, which is fine.
        if let Some(p) = super::mount_point() {
            assert!(p.join("cgroup.controllers").exists() || p.join("cgroup.procs").exists());
        }
    }
}
