//! Which files get the TLS uprobes: OpenSSL and GnuTLS as the dynamic
//! linker knows them, the runtimes that carry a static copy (node, bun,
//! deno on PATH), files named with `--tls-binary`, and per process as it
//! runs: its executable and the TLS libraries it maps or opens. A uprobe
//! is set on a file (its inode), so each file is attached once.
use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// Smallest executable checked for a static TLS library: OpenSSL alone
/// is several MB, so smaller files (shells, coreutils) are not read.
const MIN_STATIC_EXE: u64 = 2 << 20;

/// Whether a file name is a TLS library's (`libssl.so.3`,
/// `libssl-8c1ab2.so.3` in Python wheels, `libgnutls.so.30`, `libboringssl.so`).
#[must_use]
pub fn is_tls_library(path: &[u8]) -> bool {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    let has = |p: &[u8]| base.starts_with(p) && base.windows(3).any(|w| w == b".so");
    has(b"libssl.so") || has(b"libssl-") || has(b"libgnutls.so") || has(b"libboringssl")
}

/// TLS libraries in the dynamic linker's cache.
#[must_use]
pub fn system_libraries() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(o) = std::process::Command::new("ldconfig").arg("-p").output() {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((_, path)) = line.split_once("=> ") {
                let path = path.trim();
                if is_tls_library(path.as_bytes()) {
                    out.push(PathBuf::from(path));
                }
            }
        }
    }
    out
}

/// Runtimes on PATH that usually link a TLS library statically.
#[must_use]
pub fn known_binaries() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut out = Vec::new();
    for dir in std::env::split_paths(&path) {
        for name in ["node", "bun", "deno"] {
            let p = dir.join(name);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// A running process's candidates: its executable (when big enough to
/// hold a TLS library) and the TLS libraries it has mapped.
#[must_use]
pub fn of_process(pid: u32) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && std::fs::metadata(&exe).is_ok_and(|m| m.len() >= MIN_STATIC_EXE)
    {
        out.push(exe);
    }
    if let Ok(maps) = std::fs::read(format!("/proc/{pid}/maps")) {
        for line in maps.split(|b| *b == b'\n') {
            // address perms offset dev inode path
            let path = line
                .splitn(6, |b| *b == b' ')
                .nth(5)
                .map(|p| p.trim_ascii_start());
            if let Some(p) = path
                && p.starts_with(b"/")
                && is_tls_library(p)
            {
                let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Files already looked at, by identity (a path can be a symlink, the same
/// file can have several names).
#[derive(Debug, Default)]
pub struct Seen(HashSet<(u64, u64)>);

impl Seen {
    /// Whether `path` is a regular file not looked at before (and marks it).
    pub fn first(&mut self, path: &Path) -> bool {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => self.0.insert((m.dev(), m.ino())),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        for yes in [
            &b"/lib/x86_64-linux-gnu/libssl.so.3"[..],
            b"/venv/lib/python3.11/site-packages/cryptography.libs/libssl-8c1ab2.so.3",
            b"/usr/lib/libgnutls.so.30",
            b"libboringssl.so",
        ] {
            assert!(is_tls_library(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b"/usr/lib/libssl3.so"[..],
            b"/tmp/libssl.txt",
            b"/usr/bin/ssh",
        ] {
            assert!(!is_tls_library(no), "{}", String::from_utf8_lossy(no));
        }
        let mut s = Seen::default();
        assert!(s.first(Path::new("/proc/self/exe")));
        assert!(!s.first(Path::new("/proc/self/exe")));
        assert!(!s.first(Path::new("/nonexistent")));
    }
}
