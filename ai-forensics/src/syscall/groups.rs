//! Named groups of syscalls for `--syscalls`, and the selection they resolve to.
use std::collections::BTreeSet;

use super::{signature, table};
use crate::error::Error;

/// The seed's syscalls: what a PyTorch job mostly does.
pub const SEED: &[&str] = &[
    "open", "openat", "read", "write", "close", "mmap", "munmap", "brk", "futex",
];

/// Group names accepted by `--syscalls`, with their members.
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "file",
        &[
            "open",
            "openat",
            "openat2",
            "creat",
            "close",
            "close_range",
            "read",
            "write",
            "pread64",
            "pwrite64",
            "readv",
            "writev",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "lseek",
            "fstat",
            "stat",
            "lstat",
            "newfstatat",
            "statx",
            "statfs",
            "fstatfs",
            "access",
            "faccessat",
            "faccessat2",
            "unlink",
            "unlinkat",
            "rename",
            "renameat",
            "renameat2",
            "link",
            "linkat",
            "symlink",
            "symlinkat",
            "mkdir",
            "mkdirat",
            "rmdir",
            "readlink",
            "readlinkat",
            "chdir",
            "fchdir",
            "chmod",
            "fchmod",
            "fchmodat",
            "chown",
            "fchownat",
            "truncate",
            "ftruncate",
            "fsync",
            "fdatasync",
            "fallocate",
            "getdents64",
            "sendfile",
            "copy_file_range",
            "dup",
            "dup2",
            "dup3",
            "fcntl",
            "flock",
            "memfd_create",
            "utimensat",
            "mknodat",
            "getcwd",
            "inotify_add_watch",
        ],
    ),
    (
        "memory",
        &[
            "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mlock", "munlock",
        ],
    ),
    (
        "sync",
        &[
            "futex",
            "futex_waitv",
            "set_robust_list",
            "sched_yield",
            "nanosleep",
            "clock_nanosleep",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_create1",
            "epoll_ctl",
            "poll",
            "ppoll",
            "select",
            "pselect6",
            "eventfd2",
        ],
    ),
    (
        "process",
        &[
            "clone",
            "clone3",
            "fork",
            "vfork",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "wait4",
            "waitid",
            "kill",
            "tkill",
            "tgkill",
            "pidfd_open",
            "pidfd_send_signal",
            "prctl",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "setuid",
            "setgid",
            "setresuid",
            "setsid",
            "setpgid",
            "unshare",
            "setns",
            "init_module",
            "finit_module",
            "delete_module",
            "mount",
            "umount2",
            "chroot",
            "bpf",
            "seccomp",
        ],
    ),
    (
        "network",
        &[
            "socket",
            "socketpair",
            "connect",
            "bind",
            "listen",
            "accept",
            "accept4",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "getsockname",
            "getpeername",
            "setsockopt",
            "getsockopt",
        ],
    ),
    (
        "ipc",
        &[
            "pipe",
            "pipe2",
            "shmget",
            "shmat",
            "shmdt",
            "shmctl",
            "msgget",
            "msgsnd",
            "msgrcv",
            "semget",
            "semop",
            "mq_open",
            "eventfd2",
            "memfd_create",
        ],
    ),
    ("gpu", &["ioctl", "mmap", "munmap", "openat", "close"]),
];

/// Syscalls user space must see to keep its fd-to-path tables right: they
/// are captured whenever events are streamed, selected or not.
pub const FD_TRACKING: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "socket",
    "socketpair",
    "accept",
    "accept4",
    "pipe",
    "pipe2",
    "eventfd2",
    "memfd_create",
    "epoll_create1",
    "pidfd_open",
    "mq_open",
    "execve",
    "execveat",
];

/// Syscalls the per-file, memory, network and AI accounting reads.
pub const ACCOUNTING: &[&str] = &[
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2", "sendto", "sendmsg", "recvfrom", "recvmsg", "connect", "accept", "accept4", "mmap",
    "munmap", "brk", "ioctl",
];

/// Syscall numbers of a group, skipping those this architecture lacks.
fn group_numbers<'a>(members: &'a [&'a str]) -> impl Iterator<Item = u32> + 'a {
    members.iter().filter_map(|n| table::number(n))
}

/// A resolved `--syscalls` selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected syscall numbers.
    pub numbers: BTreeSet<u32>,
}

impl Selection {
    /// The default: the seed's set plus process and network calls.
    #[must_use]
    pub fn default_set() -> Self {
        let mut numbers: BTreeSet<u32> = group_numbers(SEED).collect();
        for (g, members) in GROUPS {
            if *g == "process" || *g == "network" {
                numbers.extend(group_numbers(members));
            }
        }
        Self { numbers }
    }

    /// Parses a comma-separated list of syscall names, group names and
    /// `all`; a leading `!` removes an item (`file,!lseek`).
    pub fn parse(list: &str) -> Result<Self, Error> {
        let mut numbers = BTreeSet::new();
        let mut seen_any = false;
        for raw in list.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            let (remove, name) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let set: BTreeSet<u32> = if name == "all" {
                table::all().map(|(nr, _)| nr).collect()
            } else if name == "default" {
                Self::default_set().numbers
            } else if let Some((_, members)) = GROUPS.iter().find(|(g, _)| *g == name) {
                group_numbers(members).collect()
            } else if let Some(nr) = table::number(name) {
                BTreeSet::from([nr])
            } else {
                return Err(Error::usage(format!(
                    "--syscalls: unknown syscall or group '{name}' (groups: all, default, {})",
                    GROUPS
                        .iter()
                        .map(|(g, _)| *g)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            seen_any = true;
            if remove {
                numbers.retain(|n| !set.contains(n));
            } else {
                numbers.extend(set);
            }
        }
        if !seen_any {
            return Err(Error::usage("--syscalls: empty list".to_owned()));
        }
        Ok(Self { numbers })
    }

    /// Whether `nr` is selected.
    #[must_use]
    pub fn contains(&self, nr: u32) -> bool {
        self.numbers.contains(&nr)
    }

    /// Selected numbers plus those needed for fd tracking and for the
    /// AI-aware accounting (every way of moving bytes and mapping memory):
    /// what the kernel must stream. Only the selected ones are written out.
    #[must_use]
    pub fn captured(&self) -> BTreeSet<u32> {
        let mut all = self.numbers.clone();
        all.extend(group_numbers(FD_TRACKING));
        all.extend(group_numbers(ACCOUNTING));
        all
    }
}

/// Whether every group member with a signature has one (consistency check).
#[must_use]
pub fn undecoded_members() -> Vec<&'static str> {
    GROUPS
        .iter()
        .flat_map(|(_, m)| m.iter())
        .chain(FD_TRACKING)
        .chain(ACCOUNTING)
        .copied()
        .filter(|n| signature::lookup(n).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_member_is_decoded() {
        assert_eq!(undecoded_members(), Vec::<&str>::new());
    }

    #[test]
    fn parse_names_groups_and_removal() {
        let s = Selection::parse("openat, read").unwrap();
        assert_eq!(s.numbers.len(), 2);
        let f = Selection::parse("file,!lseek").unwrap();
        assert!(!f.contains(table::number("lseek").unwrap()));
        assert!(f.contains(table::number("openat").unwrap()));
        let all = Selection::parse("all").unwrap();
        assert!(all.numbers.len() > 250);
        assert!(Selection::parse("bogus").is_err());
        assert!(Selection::parse(" , ").is_err());
        let d = Selection::default_set();
        assert!(d.contains(table::number("futex").unwrap()));
        assert!(d.contains(table::number("connect").unwrap()));
        assert!(d.contains(table::number("execve").unwrap()));
        assert!(!d.contains(table::number("lseek").unwrap()));
    }

    #[test]
    fn captured_includes_fd_tracking() {
        let s = Selection::parse("read").unwrap();
        let c = s.captured();
        assert!(c.contains(&table::number("openat").unwrap()));
        assert!(c.contains(&table::number("dup2").unwrap()));
    }
}
