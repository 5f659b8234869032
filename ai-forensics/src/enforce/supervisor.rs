//! Deciding the launched tree's notified calls (see [`super::seccomp`]):
//! each open or exec waits in the kernel until this thread has looked at
//! the object it names, and it runs only if that object is not denied.
//!
//! For each notification the supervisor reads the path from the caller's
//! memory, resolves it the way the caller would (from `/proc/<tid>/cwd`,
//! or the directory descriptor through `/proc/<tid>/fd/N`, `/proc/self`
//! read as the caller's), opens the result with `O_PATH` (which follows
//! the same symlinks and mounts) and compares its (device, inode) with the
//! protected sets of [`super::identity`]; an exec of a file with a denied
//! executable's size is also compared by content. A denied call fails with
//! `EPERM` before it runs; everything else continues unchanged.
//!
//! What it cannot guarantee, and what covers it: the kernel reads the path
//! again when the call continues, so a second thread that rewrites the
//! path after the check (or a symlink swapped in between) makes the call
//! reach a different file. The in-kernel identity check at the open's exit
//! and at exec still sees the object actually opened or executed, and
//! kills. A caller whose root directory differs from ai-forensics' (a
//! chroot) and a path the supervisor cannot read or resolve are let
//! through unchecked (counted as `unresolved`) to the same kernel check.
use std::{
    collections::{BTreeMap, HashSet},
    ffi::CString,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::fs::MetadataExt as _,
    },
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use ai_forensics_common::{ObjKey, deny, target};
use libseccomp::{ScmpArch, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, notify_id_valid};

use super::{
    identity::{Deny, SharedProtected, kernel_dev, sha256_file},
    seccomp,
};
use crate::{decode::Denied, loader::Targets, output::clock::Clock, policy::rules::Action};

/// What the supervisor did, for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls notified.
    pub notified: u64,
    /// Calls let run after the check.
    pub allowed: u64,
    /// Calls refused with `EPERM`.
    pub denied: u64,
    /// Calls let run unchecked (path unreadable or unresolvable, chroot):
    /// left to the kernel's exit and exec checks.
    pub unresolved: u64,
    /// Notifications whose caller died before the answer.
    pub gone: u64,
    /// Refused calls by (native) syscall number: they never reached the
    /// syscall tracepoint's entry, so the counts add them.
    pub denied_calls: BTreeMap<u32, u64>,
    /// Time from notification to answer: total and worst, in ns.
    pub total_ns: u64,
    /// Worst time from notification to answer.
    pub max_ns: u64,
}

/// What the supervisor needs.
pub struct Config {
    /// The filter's listening descriptor.
    pub listener: OwnedFd,
    /// The protected objects.
    pub protected: SharedProtected,
    /// The kernel's target table (AI flags and tree of a caller).
    pub targets: Targets,
    /// The launched command's pid: its first exec is the command itself.
    pub launched: u32,
    /// Where refused calls are reported.
    pub report: Box<dyn FnMut(Denied) + Send>,
}

/// The running supervisor thread.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Supervisor {
    /// Starts deciding notifications.
    pub fn start(cfg: Config) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (s, st) = (Arc::clone(&stop), Arc::clone(&stats));
        let thread = thread::Builder::new()
            .name("seccomp".into())
            .spawn(move || run(cfg, &s, &st))?;
        Ok(Self {
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// Stops the thread and returns what it did. Calls notified later
    /// fail with `ENOSYS` (the listener is closed).
    pub fn finish(mut self) -> Stats {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The calls to notify for rules with denied files (`files`) and denied
/// executables (`exes`).
#[must_use]
pub fn calls(files: bool, exes: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if files {
        out.extend_from_slice(seccomp::OPEN_CALLS);
    }
    if exes {
        out.extend_from_slice(seccomp::EXEC_CALLS);
    }
    out
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6): the answer switches
/// straight to the waiting caller on this CPU instead of waking it
/// elsewhere, which takes most of the round trip out.
const SYNC_WAKE_UP: u64 = 1;

fn run(mut cfg: Config, stop: &AtomicBool, stats: &Mutex<Stats>) {
    let fd = cfg.listener.as_raw_fd();
    // SAFETY: an ioctl on our listener with an integer argument; older
    // kernels refuse it (EINVAL) and the answer wakes the caller as usual.
    let sync =
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _, SYNC_WAKE_UP) } == 0;
    tracing::debug!(
        "seccomp: synchronous wake-up {}",
        if sync { "on" } else { "not available" }
    );
    let mut state = State {
        exempt: Some(cfg.launched),
        cleared: HashSet::new(),
        root: std::fs::metadata("/").ok().map(|m| (m.dev(), m.ino())),
    };
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid descriptor.
        let n = unsafe { libc::poll(&raw mut p, 1, 100) };
        if n <= 0 || p.revents & libc::POLLIN == 0 {
            // POLLHUP: every process under the filter is gone.
            if stop.load(Ordering::Acquire) || p.revents & libc::POLLHUP != 0 {
                break;
            }
            continue;
        }
        let Ok(req) = ScmpNotifReq::receive(fd) else {
            // The caller died between the wake-up and the read.
            if let Ok(mut s) = stats.lock() {
                s.gone += 1;
            }
            continue;
        };
        let t0 = Clock::monotonic_now();
        let verdict = state.decide(&cfg, fd, &req);
        if let Verdict::Deny(d, Action::Kill) = &verdict {
            // A kill rule: the caller dies while it waits for the answer,
            // so it never runs another instruction (as with the kernel's
            // signal) and the call never happens.
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe { libc::kill(d.tgid as i32, libc::SIGKILL) };
        }
        let resp = match &verdict {
            Verdict::Deny(..) => {
                ScmpNotifResp::new_error(req.id, -libc::EPERM, ScmpNotifRespFlags::empty())
            }
            _ => ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE),
        };
        let answered = resp.respond(fd).is_ok();
        if let Verdict::Deny(d, Action::Stop) = &verdict {
            // A stop rule: after the answer (a stop while it waits would
            // restart the call, and deny it again, at every resume); the
            // tree's freeze follows.
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe { libc::kill(d.tgid as i32, libc::SIGSTOP) };
        }
        let t1 = Clock::monotonic_now();
        let Ok(mut s) = stats.lock() else { break };
        s.notified += 1;
        s.total_ns += t1 - t0;
        s.max_ns = s.max_ns.max(t1 - t0);
        if !answered && !matches!(verdict, Verdict::Deny(..)) {
            s.gone += 1;
            continue;
        }
        match verdict {
            Verdict::Allow => s.allowed += 1,
            Verdict::Unresolved => s.unresolved += 1,
            Verdict::Deny(d, _) => {
                s.denied += 1;
                let native = req.data.arch == ScmpArch::native();
                if native {
                    *s.denied_calls.entry(d.nr).or_default() += 1;
                }
                drop(s);
                let mut rec = *d;
                rec.ts_ns = t0;
                rec.decided_ns = t1;
                (cfg.report)(rec);
            }
        }
    }
}

enum Verdict {
    Allow,
    Unresolved,
    Deny(Box<Denied>, Action),
}

struct State {
    /// The launched pid until its first exec.
    exempt: Option<u32>,
    /// Executables of a denied size already compared and found different:
    /// (identity, size, mtime, ctime), so a rewrite is compared again.
    cleared: HashSet<(ObjKey, u64, i64, i64)>,
    /// ai-forensics' root directory.
    root: Option<(u64, u64)>,
}

/// What a notified call names.
struct Call {
    nr: u32,
    exec: bool,
    dirfd: i32,
    path: Vec<u8>,
    nofollow: bool,
    empty_path: bool,
    /// `open_by_handle_at`: the mount descriptor and the handle.
    handle: Option<Vec<u8>>,
}

impl State {
    fn decide(&mut self, cfg: &Config, fd: i32, req: &ScmpNotifReq) -> Verdict {
        let tid = req.pid;
        let Some(call) = read_call(req) else {
            return Verdict::Unresolved;
        };
        // The memory read belonged to this caller only if it is still
        // waiting (its pid was not reused meanwhile).
        if notify_id_valid(fd, req.id).is_err() {
            return Verdict::Allow;
        }
        if call.exec && self.exempt == Some(tid) {
            self.exempt = None;
            return Verdict::Allow;
        }
        let root = std::fs::metadata(format!("/proc/{tid}/root"))
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if root.is_none() || root != self.root {
            return Verdict::Unresolved;
        }
        let obj = match open_object(tid, &call) {
            Ok(o) => o,
            // Nothing there: nothing protected is reached.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Verdict::Allow;
            }
            Err(_) => return Verdict::Unresolved,
        };
        let obj = std::fs::File::from(obj);
        let Ok(meta) = obj.metadata() else {
            return Verdict::Unresolved;
        };
        let key = ObjKey {
            dev: kernel_dev(meta.dev()),
            ino: meta.ino(),
        };
        let Ok(p) = cfg.protected.read() else {
            return Verdict::Unresolved;
        };
        let (deny, how, copy_of) = if call.exec {
            if let Some(e) = p.exes.get(&key) {
                (e.deny, deny::HOW_SECCOMP_EXEC, None)
            } else if meta.is_file() && p.sizes.contains(&meta.len()) {
                let stamp = (key, meta.len(), meta.mtime_nsec(), meta.ctime_nsec());
                if self.cleared.contains(&stamp) {
                    return Verdict::Allow;
                }
                let h = sha256_file(&PathBuf::from(format!("/proc/self/fd/{}", obj.as_raw_fd())));
                match h.and_then(|h| p.hashes.get(&(meta.len(), h))) {
                    Some(e) => (
                        e.deny,
                        deny::HOW_SECCOMP_CONTENT,
                        Some(e.path.as_os_str().as_encoded_bytes().to_vec()),
                    ),
                    None => {
                        if self.cleared.len() > 4096 {
                            self.cleared.clear();
                        }
                        self.cleared.insert(stamp);
                        return Verdict::Allow;
                    }
                }
            } else {
                return Verdict::Allow;
            }
        } else {
            match p.files.get(&key) {
                Some((_, d)) => (*d, deny::HOW_SECCOMP_FILE, None),
                None => return Verdict::Allow,
            }
        };
        drop(p);
        let tgid = tgid_of(tid).unwrap_or(tid);
        let entry = cfg.targets.entry(tgid).unwrap_or(0);
        if !applies(deny, entry) {
            return Verdict::Allow;
        }
        let comm = std::fs::read(format!("/proc/{tid}/comm"))
            .map(|mut c| {
                while c.last() == Some(&b'\n') {
                    c.pop();
                }
                c
            })
            .unwrap_or_default();
        Verdict::Deny(
            Box::new(Denied {
                ts_ns: 0,
                tgid,
                tid,
                nr: call.nr,
                rule: deny.rule as u32,
                signal: 0,
                tree: (entry & target::TREE_MASK) as u32,
                comm,
                path: call.path,
                how,
                obj: key,
                copy_of,
                decided_ns: 0,
            }),
            deny.action,
        )
    }
}

/// Whether a rule with `deny::ONLY_*` flags applies to a process whose
/// target entry is `entry` (as the kernel programs decide it).
#[must_use]
pub fn applies(d: Deny, entry: u64) -> bool {
    deny::applies(d.flags, entry)
}

fn tgid_of(tid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads what the call names from the caller's registers and memory.
fn read_call(req: &ScmpNotifReq) -> Option<Call> {
    let arch = req.data.arch;
    let a = req.data.args;
    let name = seccomp::call_name(arch, req.data.syscall.as_raw_syscall())?;
    // The native number, for the counts (32-bit ABIs number differently).
    let nr = crate::syscall::table::number(&name).unwrap_or(0);
    let tid = req.pid;
    let at_fdcwd = libc::AT_FDCWD;
    let mut c = Call {
        nr,
        exec: false,
        dirfd: at_fdcwd,
        path: Vec::new(),
        nofollow: false,
        empty_path: false,
        handle: None,
    };
    let oflags = |f: u64| f as i32 & libc::O_NOFOLLOW != 0;
    match name.as_str() {
        "open" | "creat" => {
            c.path = read_cstr(tid, a[0])?;
            c.nofollow = name == "open" && oflags(a[1]);
        }
        "openat" => {
            c.dirfd = a[0] as i32;
            c.path = read_cstr(tid, a[1])?;
            c.nofollow = oflags(a[2]);
        }
        "openat2" => {
            c.dirfd = a[0] as i32;
            c.path = read_cstr(tid, a[1])?;
            let how = read_mem(tid, a[2], 8)?;
            c.nofollow = oflags(u64::from_ne_bytes(how[..8].try_into().ok()?));
        }
        "open_by_handle_at" => {
            c.dirfd = a[0] as i32;
            let head = read_mem(tid, a[1], 8)?;
            let n = u32::from_ne_bytes(head[..4].try_into().ok()?) as usize;
            if n > 128 {
                return None;
            }
            c.handle = Some(read_mem(tid, a[1], 8 + n)?);
        }
        "execve" => {
            c.exec = true;
            c.path = read_cstr(tid, a[0])?;
        }
        "execveat" => {
            c.exec = true;
            c.dirfd = a[0] as i32;
            c.path = read_cstr(tid, a[1])?;
            c.nofollow = a[4] as i32 & libc::AT_SYMLINK_NOFOLLOW != 0;
            c.empty_path = a[4] as i32 & libc::AT_EMPTY_PATH != 0;
        }
        _ => return None,
    }
    Some(c)
}

/// `len` bytes of the caller's memory at `addr`.
fn read_mem(pid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: reads into our own buffer of `len` bytes.
    let n =
        unsafe { libc::process_vm_readv(pid as i32, &raw const local, 1, &raw const remote, 1, 0) };
    (n == len as isize).then_some(buf)
}

/// A NUL-terminated string of the caller's (at most `PATH_MAX` bytes),
/// read page by page so that one ending before an unmapped page is read.
fn read_cstr(pid: u32, addr: u64) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let chunk = (PAGE - at % PAGE) as usize;
        let bytes = read_mem(pid, at, chunk)?;
        if let Some(z) = bytes.iter().position(|b| *b == 0) {
            out.extend_from_slice(&bytes[..z]);
            return Some(out);
        }
        out.extend_from_slice(&bytes);
        at += chunk as u64;
    }
    None
}

fn open_path(dir: i32, path: &[u8], flags: i32) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: openat with a NUL-terminated path.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The caller's directory `dirfd` (or its working directory), as ours.
fn base_dir(tid: u32, dirfd: i32) -> std::io::Result<OwnedFd> {
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tid}/cwd")
    } else {
        format!("/proc/{tid}/fd/{dirfd}")
    };
    open_path(libc::AT_FDCWD, base.as_bytes(), 0)
}

/// Opens (`O_PATH`) the object the call names, as the caller would reach it.
fn open_object(tid: u32, c: &Call) -> std::io::Result<OwnedFd> {
    if let Some(h) = &c.handle {
        let mount = base_dir(tid, c.dirfd)?;
        // SAFETY: open_by_handle_at with a handle of the size it declares.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                mount.as_raw_fd(),
                h.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        } as i32;
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned here.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let nofollow = if c.nofollow { libc::O_NOFOLLOW } else { 0 };
    if c.empty_path && c.path.is_empty() {
        return base_dir(tid, c.dirfd);
    }
    if c.path.first() == Some(&b'/') {
        let path = own_proc(tid, &c.path);
        return open_path(libc::AT_FDCWD, &path, nofollow);
    }
    let base = base_dir(tid, c.dirfd)?;
    open_path(base.as_raw_fd(), &c.path, nofollow)
}

/// `/proc/self` and `/proc/thread-self` as the caller's, not ours.
fn own_proc(tid: u32, path: &[u8]) -> Vec<u8> {
    let swap = |prefix: &[u8], with: String| -> Option<Vec<u8>> {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest[0] == b'/').then(|| {
            let mut v = with.into_bytes();
            v.extend_from_slice(rest);
            v
        })
    };
    let tgid = || tgid_of(tid).unwrap_or(tid);
    if path.starts_with(b"/proc/self") {
        if let Some(v) = swap(b"/proc/self", format!("/proc/{}", tgid())) {
            return v;
        }
    } else if path.starts_with(b"/proc/thread-self")
        && let Some(v) = swap(b"/proc/thread-self", format!("/proc/{}/task/{tid}", tgid()))
    {
        return v;
    }
    path.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_self_is_the_callers() {
        let me = std::process::id();
        assert_eq!(
            own_proc(me, b"/proc/self/root/etc/shadow"),
            format!("/proc/{me}/root/etc/shadow").into_bytes()
        );
        assert_eq!(
            own_proc(me, b"/proc/thread-self/cwd"),
            format!("/proc/{me}/task/{me}/cwd").into_bytes()
        );
        assert_eq!(own_proc(me, b"/proc/selfish"), b"/proc/selfish".to_vec());
        assert_eq!(own_proc(me, b"/etc/passwd"), b"/etc/passwd".to_vec());
    }

    #[test]
    fn reads_strings_across_pages() {
        let mut buf = vec![b'a'; 4 * 4096];
        let base = buf.as_ptr() as u64;
        // A string that starts 100 bytes before a page boundary.
        let start = (base + 4096).next_multiple_of(4096) - 100;
        let off = (start - base) as usize;
        buf[off + 2000] = 0;
        let me = std::process::id();
        let s = read_cstr(me, start).unwrap();
        assert_eq!(s.len(), 2000);
        // Longer than PATH_MAX: not a path.
        buf[off + 2000] = b'a';
        buf[off + 5000] = 0;
        assert!(read_cstr(me, start).is_none());
        assert!(read_cstr(me, 8).is_none(), "unmapped memory reads as None");
    }

    #[test]
    fn flags_of_ai_rules() {
        let d = |flags| Deny {
            rule: 0,
            signal: 9,
            flags,
            action: crate::policy::rules::Action::Kill,
        };
        assert!(applies(d(0), 0));
        assert!(!applies(d(deny::ONLY_AI_ML), 0));
        assert!(applies(d(deny::ONLY_AI_ML), target::AI_ML));
        assert!(!applies(d(deny::ONLY_AI_ML), target::AI_LLM));
    }
}
