//! Exfiltration accounting, per target tree: bytes read from model
//! artefacts against bytes sent over network sockets and written to files
//! outside the workload's directories, with their destinations.
use std::collections::BTreeMap;

use serde::Serialize;

/// One tree's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TreeExfil {
    /// Bytes read or mapped from model artefacts.
    pub model_bytes_in: u64,
    /// Bytes sent over network sockets (inet, inet6).
    pub sent_bytes: u64,
    /// Sent bytes by destination.
    pub sent_to: BTreeMap<String, u64>,
    /// Bytes written to files outside the workload's directories.
    pub written_outside_bytes: u64,
    /// Written bytes by file.
    pub written_outside: BTreeMap<String, u64>,
    /// Sent or written-outside bytes after model artefacts were read.
    pub after_model_read: u64,
}

/// All trees.
#[derive(Debug, Default)]
pub struct Exfil {
    /// By tree id.
    pub trees: BTreeMap<u32, TreeExfil>,
    /// Directories the workload owns (where its artefacts and outputs live).
    pub own_dirs: Vec<String>,
}

const MAX_KEYS: usize = 10_000;

fn bump(m: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    if m.len() < MAX_KEYS || m.contains_key(k) {
        *m.entry(k.to_owned()).or_default() += n;
    } else {
        *m.entry("(others)".to_owned()).or_default() += n;
    }
}

impl Exfil {
    /// Adds a directory the workload owns.
    pub fn own_dir(&mut self, dir: &str) {
        if !self.own_dirs.iter().any(|d| d == dir) && self.own_dirs.len() < 1000 {
            self.own_dirs.push(dir.to_owned());
        }
    }

    /// Whether `path` is outside the workload's directories.
    #[must_use]
    pub fn outside(&self, path: &str) -> bool {
        const SYSTEM_OK: [&str; 4] = ["/dev/", "/proc/", "/sys/", "pipe:"];
        if SYSTEM_OK.iter().any(|p| path.starts_with(p)) || !path.starts_with('/') {
            return false;
        }
        !self
            .own_dirs
            .iter()
            .any(|d| path.starts_with(d.as_str()) && path[d.len()..].starts_with('/'))
    }

    /// Bytes read from model artefacts by `tree`.
    pub fn model_read(&mut self, tree: u32, n: u64) {
        self.trees.entry(tree).or_default().model_bytes_in += n;
    }

    /// Bytes sent by `tree` to `dest` over a network socket.
    pub fn sent(&mut self, tree: u32, dest: &str, n: u64) {
        let t = self.trees.entry(tree).or_default();
        t.sent_bytes += n;
        bump(&mut t.sent_to, dest, n);
        if t.model_bytes_in > 0 {
            t.after_model_read += n;
        }
    }

    /// Bytes written by `tree` to `path` (counted only outside own dirs).
    pub fn wrote(&mut self, tree: u32, path: &str, n: u64) {
        if !self.outside(path) {
            return;
        }
        let t = self.trees.entry(tree).or_default();
        t.written_outside_bytes += n;
        bump(&mut t.written_outside, path, n);
        if t.model_bytes_in > 0 {
            t.after_model_read += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting() {
        let mut e = Exfil::default();
        e.own_dir("/work/run1");
        assert!(!e.outside("/work/run1/out/x"));
        assert!(e.outside("/work/run10/x"));
        assert!(!e.outside("/dev/null"));
        e.sent(1, "10.0.0.1:443", 5);
        e.model_read(1, 1000);
        e.sent(1, "10.0.0.1:443", 700);
        e.wrote(1, "/home/u/stolen.bin", 300);
        e.wrote(1, "/work/run1/ckpt.pt", 300);
        let t = &e.trees[&1];
        assert_eq!(
            (t.sent_bytes, t.written_outside_bytes, t.after_model_read),
            (705, 300, 1000)
        );
        assert_eq!(t.sent_to["10.0.0.1:443"], 705);
    }
}
