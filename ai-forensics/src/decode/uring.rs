//! io_uring operations: the kernel's opcode names and what a completion
//! record names.
use std::borrow::Cow;

use ai_forensics_common::uring;

/// `IORING_OP_*` names, by opcode (the kernel's uapi `enum io_uring_op`,
/// an ABI that only grows at its end).
const NAMES: &[&str] = &[
    "NOP",
    "READV",
    "WRITEV",
    "FSYNC",
    "READ_FIXED",
    "WRITE_FIXED",
    "POLL_ADD",
    "POLL_REMOVE",
    "SYNC_FILE_RANGE",
    "SENDMSG",
    "RECVMSG",
    "TIMEOUT",
    "TIMEOUT_REMOVE",
    "ACCEPT",
    "ASYNC_CANCEL",
    "LINK_TIMEOUT",
    "CONNECT",
    "FALLOCATE",
    "OPENAT",
    "CLOSE",
    "FILES_UPDATE",
    "STATX",
    "READ",
    "WRITE",
    "FADVISE",
    "MADVISE",
    "SEND",
    "RECV",
    "OPENAT2",
    "EPOLL_CTL",
    "SPLICE",
    "PROVIDE_BUFFERS",
    "REMOVE_BUFFERS",
    "TEE",
    "SHUTDOWN",
    "RENAMEAT",
    "UNLINKAT",
    "MKDIRAT",
    "SYMLINKAT",
    "LINKAT",
    "MSG_RING",
    "FSETXATTR",
    "SETXATTR",
    "FGETXATTR",
    "GETXATTR",
    "SOCKET",
    "URING_CMD",
    "SEND_ZC",
    "SENDMSG_ZC",
    "READ_MULTISHOT",
    "WAITID",
    "FUTEX_WAIT",
    "FUTEX_WAKE",
    "FUTEX_WAITV",
    "FIXED_FD_INSTALL",
    "FTRUNCATE",
    "BIND",
    "LISTEN",
    "RECV_ZC",
    "EPOLL_WAIT",
    "READV_FIXED",
    "WRITEV_FIXED",
    "PIPE",
];

/// The name of opcode `op` (`OP_<n>` for one newer than this table).
#[must_use]
pub fn op_name(op: u32) -> Cow<'static, str> {
    NAMES
        .get(op as usize)
        .map_or_else(|| Cow::Owned(format!("OP_{op}")), |n| Cow::Borrowed(*n))
}

/// The syscall an operation does the work of, for the rules: a rule on
/// `openat` or `connect` applies whichever way the process asked.
#[must_use]
pub fn syscall_of(op: u32) -> Option<&'static str> {
    Some(match op_name(op).as_ref() {
        "OPENAT" => "openat",
        "OPENAT2" => "openat2",
        "CONNECT" => "connect",
        "READ" | "READ_FIXED" | "READ_MULTISHOT" => "read",
        "READV" | "READV_FIXED" => "readv",
        "WRITE" | "WRITE_FIXED" => "write",
        "WRITEV" | "WRITEV_FIXED" => "writev",
        "SEND" | "SEND_ZC" => "sendto",
        "SENDMSG" | "SENDMSG_ZC" => "sendmsg",
        "RECV" | "RECV_ZC" => "recvfrom",
        "RECVMSG" => "recvmsg",
        "ACCEPT" => "accept4",
        "SOCKET" => "socket",
        "BIND" => "bind",
        "LISTEN" => "listen",
        "UNLINKAT" => "unlinkat",
        "RENAMEAT" => "renameat2",
        "MKDIRAT" => "mkdirat",
        "SYMLINKAT" => "symlinkat",
        "LINKAT" => "linkat",
        "CLOSE" => "close",
        "STATX" => "statx",
        "FTRUNCATE" => "ftruncate",
        _ => return None,
    })
}

/// A target's io_uring operation, at its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uring {
    /// Completion time.
    pub ts_ns: u64,
    /// Submitting process.
    pub tgid: u32,
    /// Submitting thread (the ring's polling thread with `SQPOLL`).
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// `IORING_OP_*`.
    pub opcode: u32,
    /// Result: a descriptor, a byte count, or -errno.
    pub res: i32,
    /// [`uring`] flags.
    pub flags: u32,
    /// The submitter's tag.
    pub user_data: u64,
    /// Submission to completion.
    pub duration_ns: u64,
    /// An open's path or a connect's socket address.
    pub str: Vec<u8>,
}

impl Uring {
    /// The path an open named.
    #[must_use]
    pub fn path(&self) -> Option<&[u8]> {
        (self.flags & uring::STR_PATH != 0).then_some(self.str.as_slice())
    }

    /// The address a connect named.
    #[must_use]
    pub fn addr(&self) -> Option<super::sockaddr::SockAddr> {
        (self.flags & uring::STR_ADDR != 0)
            .then(|| super::sockaddr::parse(&self.str))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_uapi_enum() {
        assert_eq!(op_name(uring::OP_CONNECT), "CONNECT");
        assert_eq!(op_name(uring::OP_OPENAT), "OPENAT");
        assert_eq!(op_name(uring::OP_OPENAT2), "OPENAT2");
        assert_eq!(op_name(22), "READ");
        assert_eq!(op_name(26), "SEND");
        assert_eq!(op_name(200), "OP_200");
        assert_eq!(syscall_of(uring::OP_OPENAT), Some("openat"));
        assert_eq!(syscall_of(0), None);
    }
}
