//! The seccomp filter `run` puts on the workload it launches, so that a
//! denied open or exec is refused before it happens.
//!
//! The filter (built here with libseccomp, before the fork) sends every
//! open-family and exec call of the launched tree to ai-forensics through
//! seccomp user notification; [`super::supervisor`] decides each one and
//! either lets it run or makes it fail with `EPERM`. The filter is
//! installed in the forked child before it drops privileges and before the
//! gate opens, so the first instruction of the workload already runs under
//! it; every child and thread inherits it, and no process can remove it.
//! The child hands the listening descriptor to the parent over a socket
//! pair and closes its own copy: the workload never holds it, so it cannot
//! answer its own notifications.
//!
//! Calls through the 32-bit ABIs (`int 0x80`, x32) are notified too: the
//! filter covers every ABI the kernel accepts on this machine.
use std::{
    io::{Read as _, Seek as _},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext, ScmpSyscall};

use crate::error::{Error, Result};

/// The open family: the calls that make a descriptor for a path.
pub const OPEN_CALLS: &[&str] = &["open", "openat", "openat2", "creat", "open_by_handle_at"];
/// The calls that run a program.
pub const EXEC_CALLS: &[&str] = &["execve", "execveat"];

/// A compiled filter, ready to be installed in a child.
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    /// The syscalls it notifies.
    pub calls: Vec<&'static str>,
}

fn scmp(what: &str, e: &libseccomp::error::SeccompError) -> Error {
    Error::Runtime(format!("seccomp filter: {what}: {e}"))
}

/// The other ABIs of the native architecture.
fn extra_arches() -> &'static [ScmpArch] {
    match ScmpArch::native() {
        ScmpArch::X8664 => &[ScmpArch::X86, ScmpArch::X32],
        ScmpArch::Aarch64 => &[ScmpArch::Arm],
        _ => &[],
    }
}

impl Filter {
    /// A filter that notifies `calls` and allows everything else.
    pub fn build(calls: &[&'static str]) -> Result<Self> {
        let mut ctx =
            ScmpFilterContext::new(ScmpAction::Allow).map_err(|e| scmp("creating it", &e))?;
        for a in extra_arches() {
            // An ABI this libseccomp or kernel lacks is left out: the kernel
            // then kills a thread that uses it (the filter's bad-arch action).
            if let Err(e) = ctx.add_arch(*a) {
                tracing::debug!("seccomp: {a:?} not added: {e}");
            }
        }
        for name in calls {
            let sys = ScmpSyscall::from_name(name).map_err(|e| scmp(name, &e))?;
            // A call this ABI lacks (x32 has no `open`) is skipped per ABI
            // by libseccomp itself.
            ctx.add_rule(ScmpAction::Notify, sys)
                .map_err(|e| scmp(name, &e))?;
        }
        // The program comes back through a memory file: libseccomp 2.5 has
        // no in-memory export.
        // SAFETY: memfd_create with a NUL-terminated name and flags.
        let fd = unsafe { libc::memfd_create(c"af-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
        }
        // SAFETY: fd was just created and is owned here.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        ctx.export_bpf(&file)
            .map_err(|e| scmp("exporting it", &e))?;
        let mut bytes = Vec::new();
        file.rewind()
            .and_then(|()| file.read_to_end(&mut bytes))
            .map_err(|e| Error::io("reading the seccomp program", e))?;
        let insns = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect::<Vec<_>>();
        if insns.is_empty() || bytes.len() % 8 != 0 {
            return Err(Error::Runtime("seccomp filter: empty program".into()));
        }
        Ok(Self {
            insns,
            calls: calls.to_vec(),
        })
    }

    /// Installs the filter in the calling process and sends the listening
    /// descriptor over `sock`; on failure, sends the errno instead (4
    /// bytes, no descriptor). Returns 0 or the errno.
    ///
    /// # Safety
    /// Called between fork and exec: it makes only async-signal-safe
    /// syscalls and touches no memory it allocates.
    pub unsafe fn install_and_send(&self, sock: RawFd) -> i32 {
        let prog = libc::sock_fprog {
            len: self.insns.len() as u16,
            filter: self.insns.as_ptr().cast_mut(),
        };
        // SAFETY: seccomp(2) with a valid program; the caller holds
        // CAP_SYS_ADMIN (ai-forensics runs as root), so no-new-privs is not
        // needed and setuid programs in the workload keep working.
        let listener = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &raw const prog,
            )
        } as RawFd;
        if listener < 0 {
            // SAFETY: reading this thread's errno.
            let e = unsafe { *libc::__errno_location() };
            // SAFETY: send(2) of 4 bytes from a local.
            unsafe { libc::send(sock, (&raw const e).cast(), 4, 0) };
            return e;
        }
        // SAFETY: a one-descriptor SCM_RIGHTS message built on the stack.
        let rc = unsafe { send_fd(sock, listener) };
        // SAFETY: the workload must never hold the listener.
        unsafe { libc::close(listener) };
        rc
    }
}

/// Room for one descriptor's control message, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 24]);

/// Sends `fd` over the unix socket `sock`. Returns 0 or an errno.
///
/// # Safety
/// Async-signal-safe: stack memory and sendmsg only.
unsafe fn send_fd(sock: RawFd, fd: RawFd) -> i32 {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut buf = CmsgBuf([0; 24]);
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: the control buffer holds one header and one int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
    }
    // SAFETY: msg points to live stack memory.
    if unsafe { libc::sendmsg(sock, &raw const msg, 0) } == 1 {
        0
    } else {
        // SAFETY: reading this thread's errno.
        unsafe { *libc::__errno_location() }
    }
}

/// What the child sent back.
#[derive(Debug)]
pub enum Received {
    /// The filter's listening descriptor.
    Listener(OwnedFd),
    /// The filter could not be installed: the errno.
    Refused(i32),
    /// The child closed its end without sending anything.
    Nothing,
}

/// Receives what the child sent: the listening descriptor, or why not.
pub fn receive_fd(sock: &OwnedFd) -> Result<Received> {
    let mut bytes = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: 4,
    };
    let mut buf = CmsgBuf([0; 24]);
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = buf.0.len();
    let n = loop {
        // SAFETY: msg points to live memory of the sizes given.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break n;
        }
    };
    if n < 0 {
        return Err(Error::io(
            "receiving the seccomp listener",
            std::io::Error::last_os_error(),
        ));
    }
    if n == 0 {
        return Ok(Received::Nothing);
    }
    // SAFETY: the kernel filled the control buffer it was given.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Ok(if n == 4 {
                Received::Refused(i32::from_ne_bytes(bytes))
            } else {
                Received::Nothing
            });
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
        Ok(Received::Listener(OwnedFd::from_raw_fd(fd)))
    }
}

/// A connected pair of unix sockets, close-on-exec.
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(Error::io("socketpair", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The syscall name of a notification's number in its ABI.
#[must_use]
pub fn call_name(arch: ScmpArch, nr: i32) -> Option<String> {
    ScmpSyscall::from(nr).get_name_by_arch(arch).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_program_for_the_calls() {
        let f = Filter::build(&["openat", "execve"]).unwrap();
        assert!(f.insns.len() > 4, "{} instructions", f.insns.len());
        assert_eq!(f.calls, vec!["openat", "execve"]);
        assert_eq!(
            call_name(ScmpArch::native(), libc::SYS_openat as i32).as_deref(),
            Some("openat")
        );
        assert!(Filter::build(&["no_such_call"]).is_err());
    }
}
