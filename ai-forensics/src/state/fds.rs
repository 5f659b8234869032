//! Per-process fd tables: which file, socket or pipe each fd refers to.
//!
//! Seeded from `/proc/PID/fd` when a process is attached, then kept from the
//! syscall stream (open family, dup family, fcntl F_DUPFD, socket, accept,
//! pipe, close, close_range, exec's close-on-exec sweep, fork's copy).
//! Threads share their process's table. Bounded: past the limits entries
//! are evicted and counted, so a hostile workload cannot grow it forever.
use std::{collections::HashMap, fs, os::unix::ffi::OsStrExt as _};

use crate::{
    decode::{Syscall, args::FdNames, escape, flags, sockaddr},
    syscall::table,
};

/// Most fds remembered per process.
pub const MAX_FDS_PER_PROCESS: usize = 65_536;
/// Most processes with a table.
pub const MAX_PROCESSES: usize = 32_768;

/// What an fd refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path or description (raw bytes: paths are untrusted).
    pub name: Vec<u8>,
    /// Whether it is a regular path (rather than a socket, pipe, anon inode).
    pub is_path: bool,
    /// Close-on-exec.
    pub cloexec: bool,
}

impl Entry {
    fn path(p: &[u8], cloexec: bool) -> Self {
        Self {
            name: p.to_vec(),
            is_path: true,
            cloexec,
        }
    }

    fn other(desc: String, cloexec: bool) -> Self {
        Self {
            name: desc.into_bytes(),
            is_path: false,
            cloexec,
        }
    }
}

/// All fd tables.
#[derive(Debug, Default)]
pub struct FdTables {
    tables: HashMap<u32, HashMap<i64, Entry>>,
    /// Entries or tables dropped because a limit was reached.
    pub evicted: u64,
}

const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;

impl FdTables {
    /// What `fd` of `tgid` refers to.
    #[must_use]
    pub fn get(&self, tgid: u32, fd: i64) -> Option<&Entry> {
        self.tables.get(&tgid)?.get(&fd)
    }

    fn set(&mut self, tgid: u32, fd: i64, e: Entry) {
        if fd < 0 {
            return;
        }
        if !self.tables.contains_key(&tgid) && self.tables.len() >= MAX_PROCESSES {
            self.evicted += 1;
            return;
        }
        let t = self.tables.entry(tgid).or_default();
        if t.len() >= MAX_FDS_PER_PROCESS && !t.contains_key(&fd) {
            self.evicted += 1;
            return;
        }
        t.insert(fd, e);
    }

    fn remove(&mut self, tgid: u32, fd: i64) {
        if let Some(t) = self.tables.get_mut(&tgid) {
            t.remove(&fd);
        }
    }

    fn dup(&mut self, tgid: u32, old: i64, new: i64, cloexec: bool) {
        if let Some(mut e) = self.get(tgid, old).cloned() {
            e.cloexec = cloexec;
            self.set(tgid, new, e);
        } else {
            self.remove(tgid, new);
        }
    }

    /// Seeds the table of `tgid` from `/proc/<tgid>/fd`.
    pub fn seed_from_proc(&mut self, tgid: u32) {
        let Ok(dir) = fs::read_dir(format!("/proc/{tgid}/fd")) else {
            return;
        };
        for ent in dir.flatten() {
            let Ok(fd) = ent.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            let Ok(target) = fs::read_link(ent.path()) else {
                continue;
            };
            let bytes = target.as_os_str().as_bytes();
            let cloexec = fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
                })
                .is_some_and(|f| f & O_CLOEXEC != 0);
            let e = if bytes.starts_with(b"/") {
                Entry::path(bytes, cloexec)
            } else {
                Entry::other(String::from_utf8_lossy(bytes).into_owned(), cloexec)
            };
            self.set(tgid, fd, e);
        }
    }

    /// A new process: it starts with a copy of its parent's table.
    pub fn fork(&mut self, parent: u32, child: u32) {
        if let Some(t) = self.tables.get(&parent).cloned() {
            if self.tables.len() >= MAX_PROCESSES {
                self.evicted += 1;
                return;
            }
            self.tables.insert(child, t);
        }
    }

    /// The process is gone.
    pub fn exit(&mut self, tgid: u32) {
        self.tables.remove(&tgid);
    }

    /// Applies a completed syscall's effect on the table.
    pub fn apply(&mut self, s: &Syscall) {
        if s.at_entry {
            return;
        }
        let Some(name) = table::name(s.nr) else {
            return;
        };
        let a = &s.args;
        let ok = s.ret >= 0;
        let int = |v: u64| i64::from(v as u32 as i32);
        match name {
            "open" | "creat" | "openat" | "openat2" | "open_by_handle_at" if ok => {
                let flags = match name {
                    "open" => a[1],
                    "openat" => a[2],
                    _ => 0,
                };
                // The path the kernel resolved (absolute, from the dentries)
                // names the fd when the record has it; else the path passed.
                let resolved = s
                    .str1
                    .as_ref()
                    .filter(|_| s.flags & ai_forensics_common::ev::STR1_RESOLVED != 0);
                if let Some(p) = resolved.or(s.str0.as_ref()) {
                    self.set(s.tgid, s.ret, Entry::path(p, flags & O_CLOEXEC != 0));
                }
            }
            // Linux frees the fd even when close reports EINTR or EIO.
            "close" if s.ret != -i64::from(libc::EBADF) => self.remove(s.tgid, int(a[0])),
            "close_range" if ok => {
                let (first, last) = (a[0] as i64, (a[1] as u32) as i64);
                let cloexec_only = a[2] & 4 != 0;
                if let Some(t) = self.tables.get_mut(&s.tgid) {
                    if cloexec_only {
                        for (fd, e) in t.iter_mut() {
                            if (first..=last).contains(fd) {
                                e.cloexec = true;
                            }
                        }
                    } else {
                        t.retain(|fd, _| !(first..=last).contains(fd));
                    }
                }
            }
            "dup" if ok => self.dup(s.tgid, int(a[0]), s.ret, false),
            "dup2" if ok => self.dup(s.tgid, int(a[0]), s.ret, false),
            "dup3" if ok => self.dup(s.tgid, int(a[0]), s.ret, a[2] & O_CLOEXEC != 0),
            "fcntl" if ok => {
                let cmd = int(a[1]);
                if flags::fcntl_dups(cmd) {
                    let cloexec = cmd == i64::from(libc::F_DUPFD_CLOEXEC);
                    self.dup(s.tgid, int(a[0]), s.ret, cloexec);
                } else if cmd == i64::from(libc::F_SETFD)
                    && let Some(e) = self
                        .tables
                        .get_mut(&s.tgid)
                        .and_then(|t| t.get_mut(&int(a[0])))
                {
                    e.cloexec = a[2] & libc::FD_CLOEXEC as u64 != 0;
                }
            }
            "socket" if ok => {
                let desc = format!(
                    "socket:[{} {}]",
                    flags::domain(int(a[0])),
                    flags::sock_type(a[1] & 0xf)
                );
                self.set(
                    s.tgid,
                    s.ret,
                    Entry::other(desc, a[1] & libc::SOCK_CLOEXEC as u64 != 0),
                );
            }
            "connect" | "bind" if ok || s.ret == -i64::from(libc::EINPROGRESS) => {
                if let Some(addr) = sockaddr::parse(&s.blob)
                    && let Some(e) = self
                        .tables
                        .get_mut(&s.tgid)
                        .and_then(|t| t.get_mut(&int(a[0])))
                {
                    let arrow = if name == "connect" { "->" } else { "bound" };
                    let base = String::from_utf8_lossy(&e.name)
                        .trim_end_matches(']')
                        .split(" ->")
                        .next()
                        .unwrap_or_default()
                        .split(" bound")
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    e.name = format!("{base} {arrow} {}]", addr.text()).into_bytes();
                }
            }
            "accept" | "accept4" if ok => {
                let peer = sockaddr::parse(&s.blob)
                    .map(|a| a.text())
                    .unwrap_or_default();
                let cloexec = name == "accept4" && a[3] & libc::SOCK_CLOEXEC as u64 != 0;
                self.set(
                    s.tgid,
                    s.ret,
                    Entry::other(format!("socket:[accepted <- {peer}]"), cloexec),
                );
            }
            "pipe" | "pipe2" | "socketpair" if ok && s.blob.len() >= 8 => {
                let r = i64::from(i32::from_ne_bytes(
                    s.blob[0..4].try_into().unwrap_or_default(),
                ));
                let w = i64::from(i32::from_ne_bytes(
                    s.blob[4..8].try_into().unwrap_or_default(),
                ));
                let (fl, pair) = match name {
                    "pipe2" => (a[1] & O_CLOEXEC != 0, ("pipe:[read]", "pipe:[write]")),
                    "socketpair" => (
                        a[1] & libc::SOCK_CLOEXEC as u64 != 0,
                        ("socketpair:[0]", "socketpair:[1]"),
                    ),
                    _ => (false, ("pipe:[read]", "pipe:[write]")),
                };
                self.set(s.tgid, r, Entry::other(pair.0.to_owned(), fl));
                self.set(s.tgid, w, Entry::other(pair.1.to_owned(), fl));
            }
            "eventfd2" if ok => self.set(
                s.tgid,
                s.ret,
                Entry::other("anon_inode:[eventfd]".into(), false),
            ),
            "epoll_create1" if ok => self.set(
                s.tgid,
                s.ret,
                Entry::other("anon_inode:[eventpoll]".into(), false),
            ),
            "pidfd_open" if ok => self.set(
                s.tgid,
                s.ret,
                Entry::other("anon_inode:[pidfd]".into(), true),
            ),
            "memfd_create" | "mq_open" if ok => {
                let n = s.str0.as_deref().unwrap_or_default();
                let prefix = if name == "memfd_create" {
                    "memfd:"
                } else {
                    "mqueue:"
                };
                self.set(
                    s.tgid,
                    s.ret,
                    Entry::other(format!("{prefix}{}", escape::escape(n)), false),
                );
            }
            "execve" | "execveat" if s.ret == 0 => {
                if let Some(t) = self.tables.get_mut(&s.tgid) {
                    t.retain(|_, e| !e.cloexec);
                }
            }
            _ => {}
        }
    }
}

impl FdNames for FdTables {
    fn fd_name(&self, tgid: u32, fd: i64) -> Option<String> {
        self.get(tgid, fd).map(|e| escape::escape(&e.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Record, record, tests::syscall_bytes};

    fn sys(name: &str, ret: i64, args: [u64; 6], blob: &[u8], s0: &[u8]) -> Syscall {
        let nr = table::number(name).unwrap();
        let Record::Syscall(s) = record(&syscall_bytes(nr, ret, args, blob, s0, b"", 0)).unwrap()
        else {
            panic!()
        };
        s
    }

    #[test]
    fn dup2_and_reuse_name_the_right_file() {
        let mut t = FdTables::default();
        t.apply(&sys(
            "openat",
            3,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            b"",
            b"/a.bin",
        ));
        t.apply(&sys(
            "openat",
            4,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            b"",
            b"/b.bin",
        ));
        t.apply(&sys("dup3", 10, [3, 10, 0, 0, 0, 0], b"", b""));
        assert_eq!(t.get(42, 10).unwrap().name, b"/a.bin");
        // dup2 over an open fd replaces it.
        t.apply(&sys("dup3", 4, [3, 4, 0, 0, 0, 0], b"", b""));
        assert_eq!(t.get(42, 4).unwrap().name, b"/a.bin");
        t.apply(&sys("close", 0, [3, 0, 0, 0, 0, 0], b"", b""));
        assert!(t.get(42, 3).is_none());
        // fd 3 reused for another file.
        t.apply(&sys(
            "openat",
            3,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            b"",
            b"/c.bin",
        ));
        assert_eq!(t.fd_name(42, 3).unwrap(), "/c.bin");
        // fcntl(F_DUPFD_CLOEXEC) then exec closes only that one.
        t.apply(&sys(
            "fcntl",
            20,
            [3, libc::F_DUPFD_CLOEXEC as u64, 20, 0, 0, 0],
            b"",
            b"",
        ));
        assert!(t.get(42, 20).unwrap().cloexec);
        t.apply(&sys("execve", 0, [0; 6], b"", b"/bin/true"));
        assert!(t.get(42, 20).is_none());
        assert!(t.get(42, 3).is_some());
    }

    #[test]
    fn sockets_pipes_and_fork() {
        let mut t = FdTables::default();
        t.apply(&sys(
            "socket",
            5,
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            b"",
            b"",
        ));
        let mut sa = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        sa.extend_from_slice(&8080u16.to_be_bytes());
        sa.extend_from_slice(&[127, 0, 0, 1]);
        t.apply(&sys("connect", 0, [5, 0, 16, 0, 0, 0], &sa, b""));
        assert_eq!(
            t.fd_name(42, 5).unwrap(),
            "socket:[AF_INET SOCK_STREAM -> 127.0.0.1:8080]"
        );
        let mut fds = 6i32.to_ne_bytes().to_vec();
        fds.extend_from_slice(&7i32.to_ne_bytes());
        t.apply(&sys("pipe2", 0, [0, 0, 0, 0, 0, 0], &fds, b""));
        assert_eq!(t.fd_name(42, 7).unwrap(), "pipe:[write]");
        t.fork(42, 99);
        assert_eq!(t.fd_name(99, 6).unwrap(), "pipe:[read]");
        t.exit(42);
        assert!(t.get(42, 5).is_none());
        assert!(t.get(99, 5).is_some());
    }

    #[test]
    fn bounded() {
        let mut t = FdTables::default();
        for fd in 0..(MAX_FDS_PER_PROCESS as i64 + 10) {
            t.apply(&sys(
                "openat",
                fd,
                [(-100i64) as u64, 0, 0, 0, 0, 0],
                b"",
                b"/x",
            ));
        }
        assert_eq!(t.evicted, 10);
    }
}
