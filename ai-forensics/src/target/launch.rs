//! Starting the workload for `ai-forensics run`: fork, register, then exec.
//!
//! The child is created stopped at a gate (a pipe it reads from). The parent
//! puts its PID in the kernel's target table, then opens the gate; only then
//! does the child call execve. So the programs see every syscall of the new
//! program, from its very first one.
use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use std::os::fd::AsRawFd as _;

use crate::{
    enforce::seccomp::{self, Filter},
    error::{Error, Result},
};

/// Who the workload runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User name (for messages).
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: Vec<u8>,
}

/// Looks up `name` (or a numeric uid) in the user database.
pub fn credentials(name: &str) -> Result<Credentials> {
    let cname =
        CString::new(name).map_err(|_| Error::usage(format!("--user: bad user name {name:?}")))?;
    // SAFETY: getpwnam/getpwuid return NULL or a pointer to static storage
    // that stays valid until the next call; it is copied out at once.
    let pw = unsafe {
        let p = libc::getpwnam(cname.as_ptr());
        if p.is_null() {
            match name.parse::<u32>() {
                Ok(uid) => libc::getpwuid(uid),
                Err(_) => p,
            }
        } else {
            p
        }
    };
    if pw.is_null() {
        return Err(Error::usage(format!("--user: no such user '{name}'")));
    }
    // SAFETY: pw is non-null and points to a valid passwd entry.
    let (uid, gid, pname, home) = unsafe {
        (
            (*pw).pw_uid,
            (*pw).pw_gid,
            std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            std::ffi::CStr::from_ptr((*pw).pw_dir).to_bytes().to_vec(),
        )
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: groups has room for n entries; n is updated by the call.
    let rc = unsafe { libc::getgrouplist(pname.as_ptr(), gid, groups.as_mut_ptr(), &raw mut n) };
    groups.truncate(if rc < 0 { 0 } else { n.max(0) as usize });
    Ok(Credentials {
        name: name.to_owned(),
        uid,
        gid,
        groups,
        home,
    })
}

/// The user who invoked `sudo`, for a bare `--user`.
pub fn invoking_user() -> Result<String> {
    std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .ok_or_else(|| {
            Error::usage(
                "--user without a name needs SUDO_USER (run through sudo) or give --user NAME",
            )
        })
}

/// Finds `prog` like a shell would: as a path if it has a slash, else on PATH.
pub fn resolve_program(prog: &OsString) -> Result<PathBuf> {
    let p = Path::new(prog);
    let shown = p.display();
    if prog.is_empty() {
        return Err(Error::usage("run: empty command"));
    }
    let found = if prog.as_bytes().contains(&b'/') {
        p.is_file().then(|| p.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(p))
                .find(|c| c.is_file())
        })
    };
    found.ok_or_else(|| Error::usage(format!("run: command not found: {shown}")))
}

/// A forked child waiting at the gate.
#[derive(Debug)]
pub struct Gated {
    /// Its PID.
    pub pid: u32,
    gate: libc::c_int,
    err: libc::c_int,
    /// The listening descriptor of its seccomp filter, when it has one.
    pub listener: Option<std::os::fd::OwnedFd>,
}

fn pipe_cloexec() -> Result<[libc::c_int; 2]> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("pipe2", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

/// Forks the child for `argv`; it waits at the gate until [`Gated::open`].
/// With `filter`, the child installs it first (still privileged) and hands
/// its listening descriptor back.
pub fn fork_gated(
    argv: &[OsString],
    creds: Option<&Credentials>,
    filter: Option<&Filter>,
) -> Result<Gated> {
    let program = resolve_program(&argv[0])?;
    let path = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| Error::usage("run: NUL in command"))?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| Error::usage("run: NUL in an argument")))
        .collect::<Result<_>>()?;
    let mut argp: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    // The environment is built here: the child may not allocate.
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !(creds.is_some() && k == "HOME"))
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    if let Some(c) = creds {
        let mut kv = b"HOME=".to_vec();
        kv.extend_from_slice(&c.home);
        env.extend(CString::new(kv).ok());
    }
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let gate = pipe_cloexec()?;
    let err = pipe_cloexec()?;
    let socks = filter.map(|_| seccomp::socket_pair()).transpose()?;
    let child_sock = socks.as_ref().map_or(-1, |(_, c)| c.as_raw_fd());

    // SAFETY: fork in a process that may have other threads: the child only
    // calls async-signal-safe functions (read, write, close, signal,
    // seccomp, sendmsg, setgroups, setgid, setuid, execve, _exit) on memory
    // prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::io("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: child side, see above.
        unsafe {
            libc::close(gate[1]);
            libc::close(err[0]);
            // Everything the tool itself does in the child happens before
            // the gate, so none of it is attributed to the workload.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            if let Some(f) = filter {
                // A kernel that refuses the filter leaves the workload to
                // the kernel's checks; the parent learns why over the socket.
                f.install_and_send(child_sock);
                libc::close(child_sock);
            }
            if let Some(c) = creds
                && (libc::setgroups(c.groups.len(), c.groups.as_ptr()) != 0
                    || libc::setgid(c.gid) != 0
                    || libc::setuid(c.uid) != 0)
            {
                let e = *libc::__errno_location();
                libc::write(err[1], (&raw const e).cast(), 4);
                libc::_exit(126);
            }
            let mut b = 0u8;
            if libc::read(gate[0], (&raw mut b).cast(), 1) != 1 {
                libc::_exit(127);
            }
            libc::execve(path.as_ptr(), argp.as_ptr(), envp.as_ptr());
            let e = *libc::__errno_location();
            libc::write(err[1], (&raw const e).cast(), 4);
            libc::_exit(127);
        }
    }
    // SAFETY: closing the child's ends in the parent.
    unsafe {
        libc::close(gate[0]);
        libc::close(err[1]);
    }
    let mut gated = Gated {
        pid: pid as u32,
        gate: gate[1],
        err: err[0],
        listener: None,
    };
    if let Some((ours, theirs)) = socks {
        drop(theirs);
        match seccomp::receive_fd(&ours) {
            Ok(seccomp::Received::Listener(l)) => gated.listener = Some(l),
            Ok(seccomp::Received::Refused(e)) => tracing::warn!(
                "the kernel refused the seccomp filter ({}); denied opens and execs fall back to the kernel's signal",
                std::io::Error::from_raw_os_error(e)
            ),
            Ok(seccomp::Received::Nothing) => tracing::warn!(
                "no seccomp filter from the workload; denied opens and execs fall back to the kernel's signal"
            ),
            Err(e) => {
                gated.abort();
                return Err(e);
            }
        }
    }
    Ok(gated)
}

impl Gated {
    /// Lets the child exec. Fails if exec failed (the child then exits 127).
    pub fn open(self) -> Result<()> {
        let b = 1u8;
        // SAFETY: writes one byte from a local to our end of the gate pipe.
        let w = unsafe { libc::write(self.gate, (&raw const b).cast(), 1) };
        // SAFETY: closing our descriptors once.
        unsafe { libc::close(self.gate) };
        if w != 1 {
            // SAFETY: as above.
            unsafe { libc::close(self.err) };
            return Err(Error::io(
                "starting the workload",
                std::io::Error::last_os_error(),
            ));
        }
        let mut e: i32 = 0;
        // SAFETY: reads at most 4 bytes into a local; EOF means exec succeeded
        // (the pipe is close-on-exec).
        let n = unsafe { libc::read(self.err, (&raw mut e).cast(), 4) };
        // SAFETY: closing our descriptor once.
        unsafe { libc::close(self.err) };
        if n == 4 {
            return Err(Error::usage(format!(
                "run: cannot execute the command: {}",
                std::io::Error::from_raw_os_error(e)
            )));
        }
        Ok(())
    }

    /// Kills the waiting child (when setting up tracing failed).
    pub fn abort(self) {
        // SAFETY: plain syscalls on our own child and descriptors.
        unsafe {
            libc::close(self.gate);
            libc::close(self.err);
            libc::kill(self.pid as i32, libc::SIGKILL);
            libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        assert!(
            resolve_program(&OsString::from("sh"))
                .unwrap()
                .ends_with("sh")
        );
        assert!(resolve_program(&OsString::from("/bin/sh")).is_ok());
        let e = resolve_program(&OsString::from("no-such-program-xyz")).unwrap_err();
        assert_eq!(e.to_string(), "run: command not found: no-such-program-xyz");
        assert_eq!(e.exit_code(), 2);
        assert!(resolve_program(&OsString::new()).is_err());
    }

    #[test]
    fn users() {
        assert_eq!(credentials("root").unwrap().uid, 0);
        assert_eq!(credentials("0").unwrap().uid, 0);
        assert!(credentials("no-such-user-xyz").is_err());
    }

    #[test]
    fn gated_child_runs_after_open() {
        let g = fork_gated(&[OsString::from("true")], None, None).unwrap();
        let pid = g.pid as i32;
        g.open().unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
