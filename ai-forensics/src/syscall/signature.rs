//! What each decoded syscall's arguments mean.
//!
//! The table is the decoding knowledge of the tool: argument names and kinds
//! follow the kernel's prototypes (`include/linux/syscalls.h`). From it come
//! both the capture spec sent to the kernel (which argument is a path, a
//! socket address, an argv) and the rendering in user space. A syscall absent
//! from the table is still counted and streamed with raw hex arguments.
use ai_forensics_common::{BLOB_MAX, NO_ARG, SyscallSpec, spec};

/// How to read and show one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A file descriptor (shown with its path).
    Fd,
    /// A directory fd for `*at` calls (`AT_FDCWD` or an fd).
    DirFd,
    /// A path, read from user memory (str0).
    Path,
    /// A second path (str1).
    Path2,
    /// A name string other than a path (str0), e.g. `memfd_create`.
    Str,
    /// Signed integer.
    Int,
    /// Unsigned integer, decimal.
    UInt,
    /// A byte count.
    Size,
    /// A file offset.
    Off,
    /// An address or opaque pointer, hex.
    Ptr,
    /// `open` flags.
    OpenFlags,
    /// A file mode, octal.
    Mode,
    /// `access` mode.
    AccessMode,
    /// `AT_*` flags.
    AtFlags,
    /// `mmap`/`mprotect` protection.
    Prot,
    /// `mmap` flags.
    MapFlags,
    /// `madvise` advice.
    Advice,
    /// `futex` operation.
    FutexOp,
    /// `clone` flags.
    CloneFlags,
    /// `clone3` argument structure (blob).
    CloneArgs,
    /// A socket address given to the kernel (blob; length in the next argument).
    SockAddr,
    /// A socket address filled by the kernel (blob; length pointer next).
    SockAddrOut,
    /// A `struct msghdr *` (sendmsg): rendered as a pointer, its `msg_name`
    /// address as an extra `dest_addr` argument.
    MsgHdr,
    /// A `socklen_t *`.
    SockLenPtr,
    /// Socket address family.
    Domain,
    /// Socket type.
    SockType,
    /// A signal number.
    Signal,
    /// `lseek` whence.
    Whence,
    /// An ioctl request code.
    IoctlReq,
    /// A `fcntl` command.
    FcntlCmd,
    /// An argv array (str1, NUL-separated).
    Argv,
    /// An `int[2]` the kernel fills with fds (blob).
    FdPair,
    /// A `prctl` option.
    PrctlOp,
    /// A `ptrace` request.
    PtraceReq,
    /// Namespace/`unshare` flags.
    NsFlags,
}

/// How to show the return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Signed integer.
    Int,
    /// A new file descriptor.
    Fd,
    /// A byte count.
    Size,
    /// An address (mmap, brk).
    Addr,
    /// A process or thread id.
    Pid,
}

/// Decoding signature of one syscall.
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    /// Syscall name, as in the architecture's table.
    pub name: &'static str,
    /// Arguments, in order.
    pub args: &'static [(&'static str, Arg)],
    /// Return value kind.
    pub ret: Ret,
}

macro_rules! sig {
    ($name:literal, $ret:ident, [$($an:literal : $ak:ident),* $(,)?]) => {
        Signature { name: $name, ret: Ret::$ret, args: &[$(($an, Arg::$ak)),*] }
    };
}

/// Every syscall with a decoding signature.
pub static SIGNATURES: &[Signature] = &[
    // Files.
    sig!("open", Fd, ["pathname": Path, "flags": OpenFlags, "mode": Mode]),
    sig!("openat", Fd, ["dirfd": DirFd, "pathname": Path, "flags": OpenFlags, "mode": Mode]),
    sig!("openat2", Fd, ["dirfd": DirFd, "pathname": Path, "how": Ptr, "size": Size]),
    sig!("creat", Fd, ["pathname": Path, "mode": Mode]),
    sig!("close", Int, ["fd": Fd]),
    sig!("close_range", Int, ["first": UInt, "last": UInt, "flags": UInt]),
    sig!("read", Size, ["fd": Fd, "buf": Ptr, "count": Size]),
    sig!("write", Size, ["fd": Fd, "buf": Ptr, "count": Size]),
    sig!("pread64", Size, ["fd": Fd, "buf": Ptr, "count": Size, "offset": Off]),
    sig!("pwrite64", Size, ["fd": Fd, "buf": Ptr, "count": Size, "offset": Off]),
    sig!("readv", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int]),
    sig!("writev", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int]),
    sig!("preadv", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int, "offset": Off]),
    sig!("pwritev", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int, "offset": Off]),
    sig!("preadv2", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int, "offset": Off, "offset_hi": Off, "flags": UInt]),
    sig!("pwritev2", Size, ["fd": Fd, "iov": Ptr, "iovcnt": Int, "offset": Off, "offset_hi": Off, "flags": UInt]),
    sig!("lseek", Int, ["fd": Fd, "offset": Off, "whence": Whence]),
    sig!("fstat", Int, ["fd": Fd, "statbuf": Ptr]),
    sig!("stat", Int, ["pathname": Path, "statbuf": Ptr]),
    sig!("lstat", Int, ["pathname": Path, "statbuf": Ptr]),
    sig!("newfstatat", Int, ["dirfd": DirFd, "pathname": Path, "statbuf": Ptr, "flags": AtFlags]),
    sig!("statx", Int, ["dirfd": DirFd, "pathname": Path, "flags": AtFlags, "mask": UInt, "statxbuf": Ptr]),
    sig!("statfs", Int, ["pathname": Path, "buf": Ptr]),
    sig!("fstatfs", Int, ["fd": Fd, "buf": Ptr]),
    sig!("access", Int, ["pathname": Path, "mode": AccessMode]),
    sig!("faccessat", Int, ["dirfd": DirFd, "pathname": Path, "mode": AccessMode]),
    sig!("faccessat2", Int, ["dirfd": DirFd, "pathname": Path, "mode": AccessMode, "flags": AtFlags]),
    sig!("unlink", Int, ["pathname": Path]),
    sig!("unlinkat", Int, ["dirfd": DirFd, "pathname": Path, "flags": AtFlags]),
    sig!("rename", Int, ["oldpath": Path, "newpath": Path2]),
    sig!("renameat", Int, ["olddirfd": DirFd, "oldpath": Path, "newdirfd": DirFd, "newpath": Path2]),
    sig!("renameat2", Int, ["olddirfd": DirFd, "oldpath": Path, "newdirfd": DirFd, "newpath": Path2, "flags": UInt]),
    sig!("link", Int, ["oldpath": Path, "newpath": Path2]),
    sig!("linkat", Int, ["olddirfd": DirFd, "oldpath": Path, "newdirfd": DirFd, "newpath": Path2, "flags": AtFlags]),
    sig!("symlink", Int, ["target": Path, "linkpath": Path2]),
    sig!("symlinkat", Int, ["target": Path, "newdirfd": DirFd, "linkpath": Path2]),
    sig!("mkdir", Int, ["pathname": Path, "mode": Mode]),
    sig!("mkdirat", Int, ["dirfd": DirFd, "pathname": Path, "mode": Mode]),
    sig!("rmdir", Int, ["pathname": Path]),
    sig!("readlink", Size, ["pathname": Path, "buf": Ptr, "bufsiz": Size]),
    sig!("readlinkat", Size, ["dirfd": DirFd, "pathname": Path, "buf": Ptr, "bufsiz": Size]),
    sig!("chdir", Int, ["path": Path]),
    sig!("fchdir", Int, ["fd": Fd]),
    sig!("chroot", Int, ["path": Path]),
    sig!("chmod", Int, ["pathname": Path, "mode": Mode]),
    sig!("fchmod", Int, ["fd": Fd, "mode": Mode]),
    sig!("fchmodat", Int, ["dirfd": DirFd, "pathname": Path, "mode": Mode]),
    sig!("chown", Int, ["pathname": Path, "owner": Int, "group": Int]),
    sig!("fchownat", Int, ["dirfd": DirFd, "pathname": Path, "owner": Int, "group": Int, "flags": AtFlags]),
    sig!("truncate", Int, ["path": Path, "length": Off]),
    sig!("ftruncate", Int, ["fd": Fd, "length": Off]),
    sig!("fsync", Int, ["fd": Fd]),
    sig!("fdatasync", Int, ["fd": Fd]),
    sig!("fallocate", Int, ["fd": Fd, "mode": UInt, "offset": Off, "len": Size]),
    sig!("getdents64", Size, ["fd": Fd, "dirp": Ptr, "count": Size]),
    sig!("sendfile", Size, ["out_fd": Fd, "in_fd": Fd, "offset": Ptr, "count": Size]),
    sig!("copy_file_range", Size, ["fd_in": Fd, "off_in": Ptr, "fd_out": Fd, "off_out": Ptr, "len": Size, "flags": UInt]),
    sig!("dup", Fd, ["oldfd": Fd]),
    sig!("dup2", Fd, ["oldfd": Fd, "newfd": Int]),
    sig!("dup3", Fd, ["oldfd": Fd, "newfd": Int, "flags": OpenFlags]),
    sig!("fcntl", Int, ["fd": Fd, "cmd": FcntlCmd, "arg": Ptr]),
    sig!("ioctl", Int, ["fd": Fd, "request": IoctlReq, "arg": Ptr]),
    sig!("flock", Int, ["fd": Fd, "operation": Int]),
    sig!("memfd_create", Fd, ["name": Str, "flags": UInt]),
    sig!("utimensat", Int, ["dirfd": DirFd, "pathname": Path, "times": Ptr, "flags": AtFlags]),
    sig!("getcwd", Size, ["buf": Ptr, "size": Size]),
    sig!("mknodat", Int, ["dirfd": DirFd, "pathname": Path, "mode": Mode, "dev": UInt]),
    sig!("inotify_add_watch", Int, ["fd": Fd, "pathname": Path, "mask": UInt]),
    // Memory.
    sig!("mmap", Addr, ["addr": Ptr, "length": Size, "prot": Prot, "flags": MapFlags, "fd": Fd, "offset": Off]),
    sig!("munmap", Int, ["addr": Ptr, "length": Size]),
    sig!("mprotect", Int, ["addr": Ptr, "length": Size, "prot": Prot]),
    sig!("mremap", Addr, ["old_address": Ptr, "old_size": Size, "new_size": Size, "flags": UInt, "new_address": Ptr]),
    sig!("madvise", Int, ["addr": Ptr, "length": Size, "advice": Advice]),
    sig!("brk", Addr, ["addr": Ptr]),
    sig!("msync", Int, ["addr": Ptr, "length": Size, "flags": UInt]),
    sig!("mlock", Int, ["addr": Ptr, "len": Size]),
    sig!("munlock", Int, ["addr": Ptr, "len": Size]),
    // Synchronisation.
    sig!("futex", Int, ["uaddr": Ptr, "futex_op": FutexOp, "val": UInt, "timeout": Ptr, "uaddr2": Ptr, "val3": UInt]),
    sig!("futex_waitv", Int, ["waiters": Ptr, "nr_futexes": UInt, "flags": UInt, "timeout": Ptr, "clockid": Int]),
    sig!("set_robust_list", Int, ["head": Ptr, "len": Size]),
    sig!("sched_yield", Int, []),
    sig!("nanosleep", Int, ["req": Ptr, "rem": Ptr]),
    sig!("clock_nanosleep", Int, ["clockid": Int, "flags": Int, "request": Ptr, "remain": Ptr]),
    sig!("epoll_wait", Int, ["epfd": Fd, "events": Ptr, "maxevents": Int, "timeout": Int]),
    sig!("epoll_pwait", Int, ["epfd": Fd, "events": Ptr, "maxevents": Int, "timeout": Int, "sigmask": Ptr]),
    sig!("epoll_pwait2", Int, ["epfd": Fd, "events": Ptr, "maxevents": Int, "timeout": Ptr, "sigmask": Ptr]),
    sig!("epoll_create1", Fd, ["flags": UInt]),
    sig!("epoll_ctl", Int, ["epfd": Fd, "op": Int, "fd": Fd, "event": Ptr]),
    sig!("poll", Int, ["fds": Ptr, "nfds": UInt, "timeout": Int]),
    sig!("ppoll", Int, ["fds": Ptr, "nfds": UInt, "tmo_p": Ptr, "sigmask": Ptr]),
    sig!("select", Int, ["nfds": Int, "readfds": Ptr, "writefds": Ptr, "exceptfds": Ptr, "timeout": Ptr]),
    sig!("pselect6", Int, ["nfds": Int, "readfds": Ptr, "writefds": Ptr, "exceptfds": Ptr, "timeout": Ptr, "sigmask": Ptr]),
    sig!("eventfd2", Fd, ["initval": UInt, "flags": UInt]),
    // Processes.
    sig!("clone", Pid, ["flags": CloneFlags, "stack": Ptr, "parent_tid": Ptr, "child_tid": Ptr, "tls": Ptr]),
    sig!("clone3", Pid, ["cl_args": CloneArgs, "size": Size]),
    sig!("fork", Pid, []),
    sig!("vfork", Pid, []),
    sig!("execve", Int, ["pathname": Path, "argv": Argv, "envp": Ptr]),
    sig!("execveat", Int, ["dirfd": DirFd, "pathname": Path, "argv": Argv, "envp": Ptr, "flags": AtFlags]),
    sig!("exit", Int, ["status": Int]),
    sig!("exit_group", Int, ["status": Int]),
    sig!("wait4", Pid, ["pid": Int, "wstatus": Ptr, "options": UInt, "rusage": Ptr]),
    sig!("waitid", Int, ["idtype": Int, "id": Int, "infop": Ptr, "options": UInt, "rusage": Ptr]),
    sig!("kill", Int, ["pid": Int, "sig": Signal]),
    sig!("tkill", Int, ["tid": Int, "sig": Signal]),
    sig!("tgkill", Int, ["tgid": Int, "tid": Int, "sig": Signal]),
    sig!("pidfd_open", Fd, ["pid": Int, "flags": UInt]),
    sig!("pidfd_send_signal", Int, ["pidfd": Fd, "sig": Signal, "info": Ptr, "flags": UInt]),
    sig!("prctl", Int, ["option": PrctlOp, "arg2": Ptr, "arg3": Ptr, "arg4": Ptr, "arg5": Ptr]),
    sig!("ptrace", Int, ["request": PtraceReq, "pid": Int, "addr": Ptr, "data": Ptr]),
    sig!("process_vm_readv", Size, ["pid": Int, "local_iov": Ptr, "liovcnt": UInt, "remote_iov": Ptr, "riovcnt": UInt, "flags": UInt]),
    sig!("process_vm_writev", Size, ["pid": Int, "local_iov": Ptr, "liovcnt": UInt, "remote_iov": Ptr, "riovcnt": UInt, "flags": UInt]),
    sig!("setuid", Int, ["uid": UInt]),
    sig!("setgid", Int, ["gid": UInt]),
    sig!("setresuid", Int, ["ruid": Int, "euid": Int, "suid": Int]),
    sig!("setsid", Pid, []),
    sig!("setpgid", Int, ["pid": Int, "pgid": Int]),
    sig!("unshare", Int, ["flags": NsFlags]),
    sig!("setns", Int, ["fd": Fd, "nstype": NsFlags]),
    sig!("init_module", Int, ["module_image": Ptr, "len": Size, "param_values": Str]),
    sig!("finit_module", Int, ["fd": Fd, "param_values": Str, "flags": UInt]),
    sig!("delete_module", Int, ["name": Str, "flags": UInt]),
    sig!("mount", Int, ["source": Path, "target": Path2, "filesystemtype": Ptr, "mountflags": UInt, "data": Ptr]),
    sig!("umount2", Int, ["target": Path, "flags": UInt]),
    sig!("bpf", Int, ["cmd": Int, "attr": Ptr, "size": Size]),
    sig!("seccomp", Int, ["operation": UInt, "flags": UInt, "args": Ptr]),
    sig!("getpid", Pid, []),
    sig!("getppid", Pid, []),
    sig!("gettid", Pid, []),
    // Network.
    sig!("socket", Fd, ["domain": Domain, "type": SockType, "protocol": Int]),
    sig!("socketpair", Int, ["domain": Domain, "type": SockType, "protocol": Int, "sv": FdPair]),
    sig!("connect", Int, ["sockfd": Fd, "addr": SockAddr, "addrlen": UInt]),
    sig!("bind", Int, ["sockfd": Fd, "addr": SockAddr, "addrlen": UInt]),
    sig!("listen", Int, ["sockfd": Fd, "backlog": Int]),
    sig!("accept", Fd, ["sockfd": Fd, "addr": SockAddrOut, "addrlen": SockLenPtr]),
    sig!("accept4", Fd, ["sockfd": Fd, "addr": SockAddrOut, "addrlen": SockLenPtr, "flags": UInt]),
    sig!("sendto", Size, ["sockfd": Fd, "buf": Ptr, "len": Size, "flags": UInt, "dest_addr": SockAddr, "addrlen": UInt]),
    sig!("recvfrom", Size, ["sockfd": Fd, "buf": Ptr, "len": Size, "flags": UInt, "src_addr": SockAddrOut, "addrlen": SockLenPtr]),
    sig!("sendmsg", Size, ["sockfd": Fd, "msg": MsgHdr, "flags": UInt]),
    sig!("recvmsg", Size, ["sockfd": Fd, "msg": Ptr, "flags": UInt]),
    sig!("sendmmsg", Int, ["sockfd": Fd, "msgvec": Ptr, "vlen": UInt, "flags": UInt]),
    sig!("recvmmsg", Int, ["sockfd": Fd, "msgvec": Ptr, "vlen": UInt, "flags": UInt, "timeout": Ptr]),
    sig!("shutdown", Int, ["sockfd": Fd, "how": Int]),
    sig!("getsockname", Int, ["sockfd": Fd, "addr": SockAddrOut, "addrlen": SockLenPtr]),
    sig!("getpeername", Int, ["sockfd": Fd, "addr": SockAddrOut, "addrlen": SockLenPtr]),
    sig!("setsockopt", Int, ["sockfd": Fd, "level": Int, "optname": Int, "optval": Ptr, "optlen": UInt]),
    sig!("getsockopt", Int, ["sockfd": Fd, "level": Int, "optname": Int, "optval": Ptr, "optlen": Ptr]),
    // IPC.
    sig!("pipe", Int, ["pipefd": FdPair]),
    sig!("pipe2", Int, ["pipefd": FdPair, "flags": OpenFlags]),
    sig!("shmget", Int, ["key": Int, "size": Size, "shmflg": UInt]),
    sig!("shmat", Addr, ["shmid": Int, "shmaddr": Ptr, "shmflg": UInt]),
    sig!("shmdt", Int, ["shmaddr": Ptr]),
    sig!("shmctl", Int, ["shmid": Int, "cmd": Int, "buf": Ptr]),
    sig!("msgget", Int, ["key": Int, "msgflg": UInt]),
    sig!("msgsnd", Int, ["msqid": Int, "msgp": Ptr, "msgsz": Size, "msgflg": UInt]),
    sig!("msgrcv", Size, ["msqid": Int, "msgp": Ptr, "msgsz": Size, "msgtyp": Int, "msgflg": UInt]),
    sig!("semget", Int, ["key": Int, "nsems": Int, "semflg": UInt]),
    sig!("semop", Int, ["semid": Int, "sops": Ptr, "nsops": Size]),
    sig!("mq_open", Fd, ["name": Str, "oflag": OpenFlags, "mode": Mode, "attr": Ptr]),
];

/// Signature of syscall `name`.
#[must_use]
pub fn lookup(name: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == name)
}

fn index_of(sig: &Signature, kinds: &[Arg]) -> u8 {
    sig.args
        .iter()
        .position(|(_, k)| kinds.contains(k))
        .map_or(NO_ARG, |i| i as u8)
}

/// What the kernel must capture for `sig` so that it can be decoded.
#[must_use]
pub fn capture_spec(sig: &Signature) -> SyscallSpec {
    let mut sp = SyscallSpec {
        flags: spec::EVENT,
        ..SyscallSpec::NONE
    };
    sp.str0_arg = index_of(sig, &[Arg::Path, Arg::Str]);
    sp.str1_arg = index_of(sig, &[Arg::Path2]);
    sp.argv_arg = index_of(sig, &[Arg::Argv]);
    let blob = index_of(
        sig,
        &[
            Arg::SockAddr,
            Arg::SockAddrOut,
            Arg::MsgHdr,
            Arg::CloneArgs,
            Arg::FdPair,
        ],
    );
    if blob != NO_ARG {
        sp.blob_arg = blob;
        match sig.args[blob as usize].1 {
            Arg::SockAddr => {
                sp.blob_len_arg = blob + 1;
                sp.blob_len_max = BLOB_MAX as u16;
            }
            Arg::SockAddrOut => {
                sp.blob_len_arg = blob + 1;
                sp.blob_len_max = BLOB_MAX as u16;
                sp.flags |= spec::BLOB_LEN_PTR | spec::BLOB_ON_SUCCESS;
            }
            Arg::MsgHdr => {
                sp.blob_len_max = BLOB_MAX as u16;
                sp.flags |= spec::BLOB_MSGHDR;
            }
            Arg::CloneArgs => sp.blob_len_max = 64,
            _ => {
                sp.blob_len_max = 8;
                sp.flags |= spec::BLOB_ON_SUCCESS;
            }
        }
    }
    match sig.name {
        // Their arguments must be read before the old image is replaced.
        "execve" | "execveat" => sp.flags = spec::ENTER_EVENT | spec::EVENT,
        // They never return: record them at entry.
        "exit" | "exit_group" => sp.flags = spec::ENTER_EVENT | spec::NO_RETURN,
        _ => {}
    }
    sp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::table;

    #[test]
    fn names_exist_on_some_architecture() {
        let mut seen = std::collections::HashSet::new();
        for s in SIGNATURES {
            assert!(seen.insert(s.name), "duplicate {}", s.name);
            assert!(s.args.len() <= 6, "{}", s.name);
        }
        // The calls every architecture has are in the native table.
        for n in [
            "openat", "read", "write", "close", "mmap", "munmap", "brk", "futex", "execve",
        ] {
            assert!(table::number(n).is_some(), "{n}");
            assert!(lookup(n).is_some(), "{n}");
        }
    }

    #[test]
    fn specs() {
        let o = capture_spec(lookup("openat").unwrap());
        assert_eq!((o.str0_arg, o.str1_arg, o.blob_arg), (1, NO_ARG, NO_ARG));
        let r = capture_spec(lookup("renameat2").unwrap());
        assert_eq!((r.str0_arg, r.str1_arg), (1, 3));
        let c = capture_spec(lookup("connect").unwrap());
        assert_eq!((c.blob_arg, c.blob_len_arg), (1, 2));
        assert_eq!(c.flags & spec::BLOB_LEN_PTR, 0);
        let a = capture_spec(lookup("accept4").unwrap());
        assert_ne!(a.flags & spec::BLOB_LEN_PTR, 0);
        let e = capture_spec(lookup("execve").unwrap());
        assert_eq!((e.str0_arg, e.argv_arg), (0, 1));
        assert_ne!(e.flags & spec::ENTER_EVENT, 0);
        let x = capture_spec(lookup("exit_group").unwrap());
        assert_ne!(x.flags & spec::NO_RETURN, 0);
        let p = capture_spec(lookup("pipe2").unwrap());
        assert_eq!((p.blob_arg, p.blob_len_max), (0, 8));
    }
}
