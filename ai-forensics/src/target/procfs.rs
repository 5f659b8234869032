//! Reading process identity and structure from `/proc`.
use std::{fs, os::unix::ffi::OsStrExt as _, path::Path};

/// Identity of a live process as `/proc` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: Option<u32>,
    /// Name (comm).
    pub comm: Vec<u8>,
    /// Executable path.
    pub exe: Option<Vec<u8>>,
    /// Command line.
    pub cmdline: Vec<Vec<u8>>,
    /// Real uid.
    pub uid: Option<u32>,
    /// cgroup v2 path.
    pub cgroup: Option<String>,
    /// Start time, in clock ticks after boot.
    pub start_ticks: Option<u64>,
}

/// Whether `/proc/<pid>` exists (the process or thread group is alive or a zombie).
#[must_use]
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` is alive and not a zombie.
#[must_use]
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => stat_state(&s).is_some_and(|st| st != 'Z' && st != 'X'),
        Err(_) => false,
    }
}

fn stat_state(stat: &str) -> Option<char> {
    // The comm field can contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

fn stat_field(stat: &str, n: usize) -> Option<u64> {
    // Field numbers as in proc(5): 3 is state, 4 ppid, 22 starttime.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// Reads what `/proc` says about `pid`; `None` when it is gone.
#[must_use]
pub fn info(pid: u32) -> Option<ProcInfo> {
    let base = format!("/proc/{pid}");
    let stat = fs::read_to_string(format!("{base}/stat")).ok()?;
    let comm = fs::read(format!("{base}/comm"))
        .map(|mut c| {
            if c.last() == Some(&b'\n') {
                c.pop();
            }
            c
        })
        .unwrap_or_default();
    let exe = fs::read_link(format!("{base}/exe"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec());
    let cmdline = fs::read(format!("{base}/cmdline"))
        .map(|c| split_nul(&c))
        .unwrap_or_default();
    let uid = fs::read_to_string(format!("{base}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next()?.parse().ok())
        });
    let cgroup = fs::read_to_string(format!("{base}/cgroup"))
        .ok()
        .and_then(|s| cgroup_v2_path(&s));
    Some(ProcInfo {
        pid,
        ppid: stat_field(&stat, 4).map(|p| p as u32),
        comm,
        exe,
        cmdline,
        uid,
        cgroup,
        start_ticks: stat_field(&stat, 22),
    })
}

/// Splits NUL-separated strings (`/proc/PID/cmdline`).
#[must_use]
pub fn split_nul(b: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = b.split(|c| *c == 0).map(<[u8]>::to_vec).collect();
    if v.last().is_some_and(Vec::is_empty) {
        v.pop();
    }
    v
}

/// The cgroup v2 path from `/proc/PID/cgroup` (the `0::` line).
#[must_use]
pub fn cgroup_v2_path(s: &str) -> Option<String> {
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// A container id carried by a cgroup path (docker, containerd, CRI-O,
/// podman): 64 hex digits after a known prefix or as a path component.
#[must_use]
pub fn container_id(cgroup: &str) -> Option<String> {
    for comp in cgroup.split('/').rev() {
        let c = comp.trim_end_matches(".scope");
        let id = ["docker-", "cri-containerd-", "crio-", "libpod-", ""]
            .iter()
            .find_map(|p| c.strip_prefix(p))?;
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(id.to_owned());
        }
    }
    None
}

/// Thread ids of process `pid`.
#[must_use]
pub fn threads(pid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Every process id on the machine.
#[must_use]
pub fn all_pids() -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Process ids of the living descendants of `root` (not including it),
/// from the parent links of every process.
#[must_use]
pub fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            Some((p, stat_field(&stat, 4)? as u32))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (child, parent) in &parents {
            if *parent == p && !out.contains(child) && *child != root {
                out.push(*child);
                frontier.push(*child);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The kernel's clock ticks per second (for `start_ticks`).
#[must_use]
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_comm() {
        let stat = "1234 (a) b (c)) S 77 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5555 0";
        assert_eq!(stat_state(stat), Some('S'));
        assert_eq!(stat_field(stat, 4), Some(77));
        assert_eq!(stat_field(stat, 22), Some(5555));
    }

    #[test]
    fn reads_self() {
        let me = info(std::process::id()).unwrap();
        assert!(me.exe.is_some());
        assert!(me.ppid.is_some());
        assert!(alive(std::process::id()));
        assert!(threads(std::process::id()).contains(&std::process::id()));
        assert!(info(u32::MAX).is_none());
    }

    #[test]
    fn container_ids() {
        let id = "a".repeat(64);
        assert_eq!(
            container_id(&format!("/system.slice/docker-{id}.scope")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("/kubepods/besteffort/pod1/{id}")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("/x/cri-containerd-{id}.scope")),
            Some(id)
        );
        assert_eq!(
            container_id("/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert_eq!(
            cgroup_v2_path("12:cpu:/\n0::/my/group\n"),
            Some("/my/group".into())
        );
    }

    #[test]
    fn nul_split() {
        assert_eq!(
            split_nul(b"python3\0-c\0x\0"),
            vec![b"python3".to_vec(), b"-c".to_vec(), b"x".to_vec()]
        );
        assert_eq!(split_nul(b""), Vec::<Vec<u8>>::new());
    }
}
