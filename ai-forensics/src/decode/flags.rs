//! Symbolic names of flag and enum arguments (open flags, mmap prot, futex
//! ops, ...), in the style strace prints them.
use libc as c;

/// Joins the names of the bits set in `v`; unknown bits are shown in hex.
#[must_use]
pub fn bits(v: u64, table: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.to_owned();
    }
    let mut rest = v;
    let mut parts = Vec::new();
    for (bit, name) in table {
        if *bit != 0 && rest & bit == *bit {
            parts.push((*name).to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// The name of `v` in `table`, or the number.
#[must_use]
pub fn value(v: i64, table: &[(i64, &str)]) -> String {
    table
        .iter()
        .find(|(k, _)| *k == v)
        .map_or_else(|| v.to_string(), |(_, n)| (*n).to_owned())
}

const OPEN_FLAGS: &[(u64, &str)] = &[
    (c::O_WRONLY as u64, "O_WRONLY"),
    (c::O_RDWR as u64, "O_RDWR"),
    (c::O_CREAT as u64, "O_CREAT"),
    (c::O_EXCL as u64, "O_EXCL"),
    (c::O_NOCTTY as u64, "O_NOCTTY"),
    (c::O_TRUNC as u64, "O_TRUNC"),
    (c::O_APPEND as u64, "O_APPEND"),
    (c::O_NONBLOCK as u64, "O_NONBLOCK"),
    (c::O_DSYNC as u64, "O_DSYNC"),
    (c::O_DIRECT as u64, "O_DIRECT"),
    (c::O_LARGEFILE as u64, "O_LARGEFILE"),
    (c::O_DIRECTORY as u64, "O_DIRECTORY"),
    (c::O_NOFOLLOW as u64, "O_NOFOLLOW"),
    (c::O_NOATIME as u64, "O_NOATIME"),
    (c::O_CLOEXEC as u64, "O_CLOEXEC"),
    (c::O_PATH as u64, "O_PATH"),
    (c::O_TMPFILE as u64 & !(c::O_DIRECTORY as u64), "O_TMPFILE"),
    (c::O_SYNC as u64 & !(c::O_DSYNC as u64), "__O_SYNC"),
];

/// `open` flags: access mode first, then the other bits.
#[must_use]
pub fn open_flags(v: u64) -> String {
    let mode = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = bits(v & !3, &OPEN_FLAGS[2..], "");
    if rest.is_empty() {
        mode.to_owned()
    } else {
        format!("{mode}|{rest}")
    }
}

/// Whether open flags ask for writing.
#[must_use]
pub fn open_writes(v: u64) -> bool {
    v & 3 != 0 || v & (c::O_CREAT | c::O_TRUNC | c::O_APPEND) as u64 != 0
}

const PROT: &[(u64, &str)] = &[
    (c::PROT_READ as u64, "PROT_READ"),
    (c::PROT_WRITE as u64, "PROT_WRITE"),
    (c::PROT_EXEC as u64, "PROT_EXEC"),
    (c::PROT_GROWSDOWN as u64, "PROT_GROWSDOWN"),
    (c::PROT_GROWSUP as u64, "PROT_GROWSUP"),
];

/// mmap/mprotect protection.
#[must_use]
pub fn prot(v: u64) -> String {
    bits(v, PROT, "PROT_NONE")
}

const MAP: &[(u64, &str)] = &[
    (c::MAP_SHARED_VALIDATE as u64, "MAP_SHARED_VALIDATE"),
    (c::MAP_SHARED as u64, "MAP_SHARED"),
    (c::MAP_PRIVATE as u64, "MAP_PRIVATE"),
    (c::MAP_FIXED as u64, "MAP_FIXED"),
    (c::MAP_ANONYMOUS as u64, "MAP_ANONYMOUS"),
    (c::MAP_GROWSDOWN as u64, "MAP_GROWSDOWN"),
    (c::MAP_DENYWRITE as u64, "MAP_DENYWRITE"),
    (c::MAP_EXECUTABLE as u64, "MAP_EXECUTABLE"),
    (c::MAP_LOCKED as u64, "MAP_LOCKED"),
    (c::MAP_NORESERVE as u64, "MAP_NORESERVE"),
    (c::MAP_POPULATE as u64, "MAP_POPULATE"),
    (c::MAP_NONBLOCK as u64, "MAP_NONBLOCK"),
    (c::MAP_STACK as u64, "MAP_STACK"),
    (c::MAP_HUGETLB as u64, "MAP_HUGETLB"),
    (c::MAP_SYNC as u64, "MAP_SYNC"),
    (c::MAP_FIXED_NOREPLACE as u64, "MAP_FIXED_NOREPLACE"),
];

/// mmap flags.
#[must_use]
pub fn map_flags(v: u64) -> String {
    bits(v, MAP, "0")
}

/// Whether mmap flags describe an anonymous mapping.
#[must_use]
pub fn map_anonymous(v: u64) -> bool {
    v & c::MAP_ANONYMOUS as u64 != 0
}

const FUTEX_OPS: &[(i64, &str)] = &[
    (0, "FUTEX_WAIT"),
    (1, "FUTEX_WAKE"),
    (2, "FUTEX_FD"),
    (3, "FUTEX_REQUEUE"),
    (4, "FUTEX_CMP_REQUEUE"),
    (5, "FUTEX_WAKE_OP"),
    (6, "FUTEX_LOCK_PI"),
    (7, "FUTEX_UNLOCK_PI"),
    (8, "FUTEX_TRYLOCK_PI"),
    (9, "FUTEX_WAIT_BITSET"),
    (10, "FUTEX_WAKE_BITSET"),
    (11, "FUTEX_WAIT_REQUEUE_PI"),
    (12, "FUTEX_CMP_REQUEUE_PI"),
    (13, "FUTEX_LOCK_PI2"),
];
const FUTEX_PRIVATE: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// futex operation with its modifiers.
#[must_use]
pub fn futex_op(v: u64) -> String {
    let cmd = v & 0x7f;
    let mut s = value(cmd as i64, FUTEX_OPS);
    if v & FUTEX_PRIVATE != 0 {
        s.push_str("_PRIVATE");
    }
    if v & FUTEX_CLOCK_REALTIME != 0 {
        s.push_str("|FUTEX_CLOCK_REALTIME");
    }
    s
}

/// Whether a futex op waits (its duration is time spent waiting).
#[must_use]
pub fn futex_waits(v: u64) -> bool {
    matches!(v & 0x7f, 0 | 6 | 9 | 11 | 13)
}

const CLONE: &[(u64, &str)] = &[
    (c::CLONE_VM as u64, "CLONE_VM"),
    (c::CLONE_FS as u64, "CLONE_FS"),
    (c::CLONE_FILES as u64, "CLONE_FILES"),
    (c::CLONE_SIGHAND as u64, "CLONE_SIGHAND"),
    (c::CLONE_PIDFD as u64, "CLONE_PIDFD"),
    (c::CLONE_PTRACE as u64, "CLONE_PTRACE"),
    (c::CLONE_VFORK as u64, "CLONE_VFORK"),
    (c::CLONE_PARENT as u64, "CLONE_PARENT"),
    (c::CLONE_THREAD as u64, "CLONE_THREAD"),
    (c::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (c::CLONE_SYSVSEM as u64, "CLONE_SYSVSEM"),
    (c::CLONE_SETTLS as u64, "CLONE_SETTLS"),
    (c::CLONE_PARENT_SETTID as u64, "CLONE_PARENT_SETTID"),
    (c::CLONE_CHILD_CLEARTID as u64, "CLONE_CHILD_CLEARTID"),
    (c::CLONE_DETACHED as u64, "CLONE_DETACHED"),
    (c::CLONE_UNTRACED as u64, "CLONE_UNTRACED"),
    (c::CLONE_CHILD_SETTID as u64, "CLONE_CHILD_SETTID"),
    (c::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
    (c::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (c::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (c::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (c::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (c::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (c::CLONE_IO as u64, "CLONE_IO"),
];

/// clone flags; the low byte is the exit signal.
#[must_use]
pub fn clone_flags(v: u64) -> String {
    let sig = v & 0xff;
    let mut s = bits(v & !0xff, CLONE, "0");
    if sig != 0 {
        s = if s == "0" {
            signal(sig as i64)
        } else {
            format!("{s}|{}", signal(sig as i64))
        };
    }
    s
}

/// Namespace flags (unshare, setns).
#[must_use]
pub fn ns_flags(v: u64) -> String {
    bits(v, CLONE, "0")
}

const AT: &[(u64, &str)] = &[
    (c::AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
    (c::AT_REMOVEDIR as u64, "AT_REMOVEDIR"),
    (c::AT_SYMLINK_FOLLOW as u64, "AT_SYMLINK_FOLLOW"),
    (c::AT_NO_AUTOMOUNT as u64, "AT_NO_AUTOMOUNT"),
    (c::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
    (c::AT_STATX_FORCE_SYNC as u64, "AT_STATX_FORCE_SYNC"),
    (c::AT_STATX_DONT_SYNC as u64, "AT_STATX_DONT_SYNC"),
];

/// `AT_*` flags.
#[must_use]
pub fn at_flags(v: u64) -> String {
    bits(v, AT, "0")
}

/// access mode.
#[must_use]
pub fn access_mode(v: u64) -> String {
    bits(
        v,
        &[
            (c::R_OK as u64, "R_OK"),
            (c::W_OK as u64, "W_OK"),
            (c::X_OK as u64, "X_OK"),
        ],
        "F_OK",
    )
}

const SIGNALS: &[(i64, &str)] = &[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (16, "SIGSTKFLT"),
    (17, "SIGCHLD"),
    (18, "SIGCONT"),
    (19, "SIGSTOP"),
    (20, "SIGTSTP"),
    (21, "SIGTTIN"),
    (22, "SIGTTOU"),
    (23, "SIGURG"),
    (24, "SIGXCPU"),
    (25, "SIGXFSZ"),
    (26, "SIGVTALRM"),
    (27, "SIGPROF"),
    (28, "SIGWINCH"),
    (29, "SIGIO"),
    (30, "SIGPWR"),
    (31, "SIGSYS"),
];

/// Signal name.
#[must_use]
pub fn signal(v: i64) -> String {
    value(v, SIGNALS)
}

/// lseek whence.
#[must_use]
pub fn whence(v: i64) -> String {
    value(
        v,
        &[
            (0, "SEEK_SET"),
            (1, "SEEK_CUR"),
            (2, "SEEK_END"),
            (3, "SEEK_DATA"),
            (4, "SEEK_HOLE"),
        ],
    )
}

/// `F_DUPFD` and `F_DUPFD_CLOEXEC`: fcntl commands that create an fd.
#[must_use]
pub fn fcntl_dups(cmd: i64) -> bool {
    cmd == i64::from(c::F_DUPFD) || cmd == i64::from(c::F_DUPFD_CLOEXEC)
}

/// fcntl command.
#[must_use]
pub fn fcntl_cmd(v: i64) -> String {
    value(
        v,
        &[
            (c::F_DUPFD.into(), "F_DUPFD"),
            (c::F_GETFD.into(), "F_GETFD"),
            (c::F_SETFD.into(), "F_SETFD"),
            (c::F_GETFL.into(), "F_GETFL"),
            (c::F_SETFL.into(), "F_SETFL"),
            (c::F_GETLK.into(), "F_GETLK"),
            (c::F_SETLK.into(), "F_SETLK"),
            (c::F_SETLKW.into(), "F_SETLKW"),
            (c::F_DUPFD_CLOEXEC.into(), "F_DUPFD_CLOEXEC"),
            (c::F_ADD_SEALS.into(), "F_ADD_SEALS"),
            (c::F_GET_SEALS.into(), "F_GET_SEALS"),
        ],
    )
}

/// madvise advice.
#[must_use]
pub fn advice(v: i64) -> String {
    value(
        v,
        &[
            (0, "MADV_NORMAL"),
            (1, "MADV_RANDOM"),
            (2, "MADV_SEQUENTIAL"),
            (3, "MADV_WILLNEED"),
            (4, "MADV_DONTNEED"),
            (8, "MADV_FREE"),
            (9, "MADV_REMOVE"),
            (10, "MADV_DONTFORK"),
            (11, "MADV_DOFORK"),
            (12, "MADV_MERGEABLE"),
            (13, "MADV_UNMERGEABLE"),
            (14, "MADV_HUGEPAGE"),
            (15, "MADV_NOHUGEPAGE"),
            (16, "MADV_DONTDUMP"),
            (17, "MADV_DODUMP"),
            (18, "MADV_WIPEONFORK"),
            (19, "MADV_KEEPONFORK"),
            (20, "MADV_COLD"),
            (21, "MADV_PAGEOUT"),
            (22, "MADV_POPULATE_READ"),
            (23, "MADV_POPULATE_WRITE"),
            (24, "MADV_DONTNEED_LOCKED"),
            (25, "MADV_COLLAPSE"),
        ],
    )
}

/// Socket address family.
#[must_use]
pub fn domain(v: i64) -> String {
    value(
        v,
        &[
            (c::AF_UNIX.into(), "AF_UNIX"),
            (c::AF_INET.into(), "AF_INET"),
            (c::AF_INET6.into(), "AF_INET6"),
            (c::AF_NETLINK.into(), "AF_NETLINK"),
            (c::AF_PACKET.into(), "AF_PACKET"),
            (c::AF_VSOCK.into(), "AF_VSOCK"),
            (c::AF_ALG.into(), "AF_ALG"),
            (c::AF_UNSPEC.into(), "AF_UNSPEC"),
        ],
    )
}

/// Socket type with `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
#[must_use]
pub fn sock_type(v: u64) -> String {
    let base = value(
        (v & 0xf) as i64,
        &[
            (c::SOCK_STREAM.into(), "SOCK_STREAM"),
            (c::SOCK_DGRAM.into(), "SOCK_DGRAM"),
            (c::SOCK_RAW.into(), "SOCK_RAW"),
            (c::SOCK_SEQPACKET.into(), "SOCK_SEQPACKET"),
            (c::SOCK_RDM.into(), "SOCK_RDM"),
            (10, "SOCK_PACKET"),
        ],
    );
    let extra = bits(
        v & !0xf,
        &[
            (c::SOCK_NONBLOCK as u64, "SOCK_NONBLOCK"),
            (c::SOCK_CLOEXEC as u64, "SOCK_CLOEXEC"),
        ],
        "",
    );
    if extra.is_empty() {
        base
    } else {
        format!("{base}|{extra}")
    }
}

/// prctl option.
#[must_use]
pub fn prctl_op(v: i64) -> String {
    value(
        v,
        &[
            (c::PR_SET_PDEATHSIG.into(), "PR_SET_PDEATHSIG"),
            (c::PR_SET_DUMPABLE.into(), "PR_SET_DUMPABLE"),
            (c::PR_SET_NAME.into(), "PR_SET_NAME"),
            (c::PR_GET_NAME.into(), "PR_GET_NAME"),
            (c::PR_SET_SECCOMP.into(), "PR_SET_SECCOMP"),
            (c::PR_SET_NO_NEW_PRIVS.into(), "PR_SET_NO_NEW_PRIVS"),
            (c::PR_SET_CHILD_SUBREAPER.into(), "PR_SET_CHILD_SUBREAPER"),
            (c::PR_SET_PTRACER.into(), "PR_SET_PTRACER"),
            (c::PR_CAPBSET_DROP.into(), "PR_CAPBSET_DROP"),
            (c::PR_SET_VMA.into(), "PR_SET_VMA"),
        ],
    )
}

/// ptrace request.
#[must_use]
pub fn ptrace_req(v: i64) -> String {
    value(
        v,
        &[
            (0, "PTRACE_TRACEME"),
            (1, "PTRACE_PEEKTEXT"),
            (2, "PTRACE_PEEKDATA"),
            (4, "PTRACE_POKETEXT"),
            (5, "PTRACE_POKEDATA"),
            (7, "PTRACE_CONT"),
            (8, "PTRACE_KILL"),
            (12, "PTRACE_GETREGS"),
            (13, "PTRACE_SETREGS"),
            (16, "PTRACE_ATTACH"),
            (17, "PTRACE_DETACH"),
            (24, "PTRACE_SYSCALL"),
            (0x4200, "PTRACE_SETOPTIONS"),
            (0x4206, "PTRACE_SEIZE"),
            (0x4207, "PTRACE_INTERRUPT"),
        ],
    )
}

/// An ioctl request, split into its `_IOC` fields (direction, type, number, size).
#[must_use]
pub fn ioctl_req(v: u64) -> String {
    let nr = v & 0xff;
    let ty = (v >> 8) & 0xff;
    let size = (v >> 16) & 0x3fff;
    let dir = (v >> 30) & 3;
    let d = ["_IO", "_IOW", "_IOR", "_IOWR"][dir as usize];
    let tyc = if (0x20..0x7f).contains(&ty) {
        format!("'{}'", ty as u8 as char)
    } else {
        format!("{ty:#x}")
    };
    if dir == 0 && size == 0 {
        format!("{v:#x} /* {d}({tyc}, {nr:#x}) */")
    } else {
        format!("{v:#x} /* {d}({tyc}, {nr:#x}, {size}) */")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_like_strace() {
        assert_eq!(
            open_flags(c::O_RDONLY as u64 | c::O_CLOEXEC as u64),
            "O_RDONLY|O_CLOEXEC"
        );
        assert_eq!(
            open_flags((c::O_WRONLY | c::O_CREAT | c::O_TRUNC) as u64),
            "O_WRONLY|O_CREAT|O_TRUNC"
        );
        assert!(open_writes((c::O_WRONLY) as u64));
        assert!(!open_writes(c::O_CLOEXEC as u64));
    }

    #[test]
    fn mmap_and_futex() {
        assert_eq!(prot(3), "PROT_READ|PROT_WRITE");
        assert_eq!(prot(0), "PROT_NONE");
        assert_eq!(
            map_flags((c::MAP_PRIVATE | c::MAP_ANONYMOUS) as u64),
            "MAP_PRIVATE|MAP_ANONYMOUS"
        );
        assert_eq!(futex_op(128), "FUTEX_WAIT_PRIVATE");
        assert_eq!(futex_op(129), "FUTEX_WAKE_PRIVATE");
        assert_eq!(
            futex_op(9 | 128 | 256),
            "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME"
        );
        assert!(futex_waits(128) && !futex_waits(129));
    }

    #[test]
    fn misc() {
        assert_eq!(
            clone_flags((c::CLONE_VM | c::CLONE_THREAD) as u64),
            "CLONE_VM|CLONE_THREAD"
        );
        assert_eq!(clone_flags(17), "SIGCHLD");
        assert_eq!(bits(0x1_0000_0000, &[(1, "A")], "0"), "0x100000000");
        assert_eq!(signal(9), "SIGKILL");
        assert_eq!(signal(99), "99");
        assert_eq!(
            sock_type((c::SOCK_STREAM | c::SOCK_CLOEXEC) as u64),
            "SOCK_STREAM|SOCK_CLOEXEC"
        );
        assert_eq!(access_mode(0), "F_OK");
        assert_eq!(ioctl_req(0x5401), "0x5401 /* _IO('T', 0x1) */");
        assert_eq!(
            ioctl_req(0xc0106402),
            "0xc0106402 /* _IOWR('d', 0x2, 16) */"
        );
    }
}
