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

/// A launched workload's cgroup, `<cgroup2>/ai-forensics/run-<recorder pid>-<tree>`.
/// Dropping it removes the directory if the workload has left it (a tree
/// left frozen by a verdict keeps its cgroup, and stays frozen).
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// The cgroup's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        remove(&self.dir);
    }
}

/// Creates a fresh cgroup for tree `tree` of recorder `pid`.
///
/// A directory of the same name can only be a leftover of an earlier
/// recorder that had the same PID and was killed before it cleaned up; it
/// may still say `cgroup.freeze 1`, and a workload moved into it would
/// never run. So an existing directory is never reused: it is removed and
/// made again, or, when a stray process still lives in it, another name is
/// taken. Leftovers of recorders that are gone are swept first.
pub fn create(pid: u32, tree: u32) -> Result<RunCgroup> {
    let root = mount_point().ok_or_else(|| Error::env("cgroup v2 is not mounted"))?;
    let parent = &root.join("ai-forensics");
    fs::create_dir_all(parent)
        .map_err(|e| Error::env(format!("creating cgroup {}: {e}", parent.display())))?;
    sweep(parent);
    for attempt in 0..16 {
        let dir = parent.join(if attempt == 0 {
            format!("run-{pid}-{tree}")
        } else {
            format!("run-{pid}-{tree}-{attempt}")
        });
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if fs::remove_dir(&dir).is_err() || fs::create_dir(&dir).is_err() {
                    continue;
                }
                tracing::debug!("replaced a stale cgroup {}", dir.display());
            }
            Err(e) => {
                return Err(Error::env(format!(
                    "creating cgroup {}: {e}",
                    dir.display()
                )));
            }
        }
        let cg = RunCgroup { dir };
        if !cg.dir.join("cgroup.freeze").exists() {
            return Err(Error::env(format!(
                "cgroup {} has no freezer (kernel 5.2+ needed)",
                cg.dir.display()
            )));
        }
        if is_frozen(&cg.dir) {
            return Err(Error::env(format!(
                "cgroup {} is frozen from above (an ancestor's cgroup.freeze is 1)",
                cg.dir.display()
            )));
        }
        return Ok(cg);
    }
    Err(Error::env(format!(
        "no free cgroup name for run-{pid}-{tree} in {}",
        parent.display()
    )))
}

/// The recorder PID in a `run-<pid>-...` name.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix("run-")?.split('-').next()?.parse().ok()
}

/// Whether `pid` may be a running recorder: its command name is ours, or
/// it runs our executable (an installed copy under another name). When in
/// doubt the cgroup stays; a stray one costs nothing but a directory.
fn recorder_alive(pid: u32) -> bool {
    if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "ai-forensics")
    {
        return true;
    }
    match (
        fs::read_link(format!("/proc/{pid}/exe")),
        fs::read_link("/proc/self/exe"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        // A process whose executable cannot be read (a kernel thread, one
        // exiting): not a recorder unless it is still there to be asked.
        (Err(_), _) => false,
        (Ok(_), Err(_)) => true,
    }
}

/// Removes the empty cgroups of recorders that are no longer running.
/// Those that still hold processes are left alone (rmdir refuses them).
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        if !recorder_alive(pid) && fs::remove_dir(e.path()).is_ok() {
            tracing::debug!("removed a stale cgroup {}", e.path().display());
        }
    }
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

/// Removes the cgroup when it is empty (leaves it when not).
fn remove(dir: &Path) {
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

    #[test]
    fn owners_of_run_cgroups() {
        assert_eq!(super::owner("run-123-1"), Some(123));
        assert_eq!(super::owner("run-123-1-2"), Some(123));
        assert_eq!(super::owner("run-x-1"), None);
        assert_eq!(super::owner("other-123-1"), None);
        assert_eq!(super::owner("cgroup.procs"), None);
    }

    #[test]
    fn this_process_counts_as_a_recorder() {
        // Same executable as ours, whatever its name.
        assert!(super::recorder_alive(std::process::id()));
        assert!(!super::recorder_alive(u32::MAX));
    }
}
