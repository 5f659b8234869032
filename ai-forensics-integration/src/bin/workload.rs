//! Deterministic workloads for the integration tests and benchmarks: each
//! makes an exact, known number of syscalls with raw `libc::syscall`, so a
//! test can assert the tracer's counts to the call.
//!
//! `workload <name> [args...]`; see `usage()`.
use std::{
    ffi::CString, io::Write as _, os::unix::ffi::OsStrExt as _, process::exit, time::Duration,
};

fn usage() -> ! {
    eprintln!(
        "usage: workload <getppid N | read-zero N | mix N DIR | tree N | orphan N | open PATH... | spin-open MS PATH... | \
         dup DIR | flood SECONDS | threads T N | exec-sh | sleep MS | spin-getppid N MS | rate PER_SEC SECONDS [SPIN_MS] | \
         timed getppid|read-zero N CPU | mimic NAME N | open-many N DIR | dup-many N | churn N | signals N>"
    );
    exit(2)
}

fn num(s: Option<&String>) -> u64 {
    s.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())
}

fn getppid_n(n: u64) {
    for _ in 0..n {
        // SAFETY: getppid has no arguments and no side effects.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
}

fn cstr(p: &[u8]) -> CString {
    CString::new(p).unwrap_or_else(|_| usage())
}

fn openat(path: &[u8], flags: i32) -> i64 {
    let c = cstr(path);
    // SAFETY: valid NUL-terminated path.
    unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c.as_ptr(), flags, 0o644) }
}

fn read_zero(n: u64) {
    let fd = openat(b"/dev/zero", libc::O_RDONLY);
    assert!(fd >= 0, "open /dev/zero");
    let mut buf = vec![0u8; 4096];
    for _ in 0..n {
        // SAFETY: reads into a 4096-byte buffer.
        unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), 4096) };
    }
    // SAFETY: closing our fd.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// N rounds of: openat, write 100 B, read 100 B (pread at 0), close, mmap
/// 64 KiB anonymous, munmap, brk(0), futex wake on a private word.
fn mix(n: u64, dir: &str) {
    let path = format!("{dir}/mix.dat");
    let word: u32 = 0;
    let buf = [7u8; 100];
    let mut rbuf = [0u8; 100];
    for _ in 0..n {
        let fd = openat(
            path.as_bytes(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
        );
        assert!(fd >= 0);
        // SAFETY: plain syscalls on our own fd and buffers.
        unsafe {
            libc::syscall(libc::SYS_write, fd, buf.as_ptr(), 100);
            libc::syscall(libc::SYS_pread64, fd, rbuf.as_mut_ptr(), 100, 0);
            libc::syscall(libc::SYS_close, fd);
            let p = libc::syscall(
                libc::SYS_mmap,
                0,
                65536,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            libc::syscall(libc::SYS_munmap, p, 65536);
            libc::syscall(libc::SYS_brk, 0);
            libc::syscall(
                libc::SYS_futex,
                &raw const word,
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
                0,
                0,
                0,
            );
        }
    }
}

fn fork_child(f: impl FnOnce()) -> i32 {
    // SAFETY: the child runs only `f` then _exit; the workload is single-threaded here.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        f();
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    pid
}

/// N short-lived children, one after another: each is forked, exits at
/// once and is reaped.
fn churn(n: u64) {
    for _ in 0..n {
        let pid = fork_child(|| {});
        // SAFETY: reaping our own child; no status wanted.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

extern "C" fn on_signal(_: libc::c_int) {}

/// N signals to itself, each caught by an empty handler: N tgkill and N
/// rt_sigreturn calls (the one call that returns without its number in
/// the saved registers), after one rt_sigaction.
fn signals(n: u64) {
    // SAFETY: a zeroed sigaction with a handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR1, &raw const sa, std::ptr::null_mut());
        let (pid, tid) = (libc::getpid(), libc::syscall(libc::SYS_gettid));
        for _ in 0..n {
            libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1);
        }
    }
}

fn wait_all() {
    loop {
        // SAFETY: waiting for any child with no status.
        let r = unsafe { libc::wait(std::ptr::null_mut()) };
        if r < 0 {
            break;
        }
    }
}

/// Two child processes and two threads in the parent, each making a known
/// number of getppid calls: child k (k = 1, 2) makes k*N, thread k makes
/// (k+2)*N, the main thread N. Prints the pids and tids it used.
fn tree(n: u64) {
    let mut out = std::io::stdout().lock();
    for k in 1..=2u64 {
        let pid = fork_child(|| getppid_n(k * n));
        let _ = writeln!(out, "child {pid} {}", k * n);
    }
    let mut handles = Vec::new();
    for k in 1..=2u64 {
        let (tx, rx) = std::sync::mpsc::channel();
        handles.push(std::thread::spawn(move || {
            // SAFETY: gettid has no arguments.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            tx.send(tid).ok();
            getppid_n((k + 2) * n);
        }));
        let tid = rx.recv().unwrap_or(0);
        let _ = writeln!(out, "thread {tid} {}", (k + 2) * n);
    }
    for h in handles {
        let _ = h.join();
    }
    getppid_n(n);
    // SAFETY: getpid/gettid have no arguments.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    let _ = writeln!(out, "main {pid} {tid} {n}");
    drop(out);
    wait_all();
}

/// The child forks a grandchild and exits at once; the grandchild (now an
/// orphan) waits, then makes N getppid calls.
fn orphan(n: u64) {
    let (r, w) = {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        unsafe { libc::pipe(fds.as_mut_ptr()) };
        (fds[0], fds[1])
    };
    fork_child(|| {
        let g = fork_child(|| {
            std::thread::sleep(Duration::from_millis(300));
            getppid_n(n);
        });
        let msg = g.to_string();
        // SAFETY: writes the grandchild's pid to the pipe.
        unsafe { libc::write(w, msg.as_ptr().cast(), msg.len()) };
    });
    // SAFETY: closing our write end, then reading the pid.
    unsafe { libc::close(w) };
    let mut buf = [0u8; 32];
    // SAFETY: reads into a local buffer.
    let k = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
    println!(
        "grandchild {}",
        String::from_utf8_lossy(&buf[..k.max(0) as usize])
    );
    wait_all();
    // The grandchild was reparented away from us: wait until it is gone.
    let g: i32 = String::from_utf8_lossy(&buf[..k.max(0) as usize])
        .trim()
        .parse()
        .unwrap_or(0);
    // SAFETY: kill with signal 0 only checks existence.
    while g > 0 && unsafe { libc::kill(g, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_paths(paths: &[String]) {
    for p in paths {
        let bytes = unescape_arg(p.as_bytes());
        let fd = openat(&bytes, libc::O_RDONLY | libc::O_CREAT);
        if fd >= 0 {
            // SAFETY: closing our fd.
            unsafe { libc::syscall(libc::SYS_close, fd) };
        }
    }
}

/// `\xNN` in an argument stands for the byte NN (to pass invalid UTF-8).
fn unescape_arg(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 4 <= s.len()
            && s[i + 1] == b'x'
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&s[i + 2..i + 4]), 16)
        {
            out.push(b);
            i += 4;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// fd-to-path: opens a.txt (fd A) and b.txt (fd B), dup2(A, 100), reads from
/// 100 (a.txt), closes A, opens c.txt (reuses A's number), reads from it.
fn dup(dir: &str) {
    for n in ["a", "b", "c"] {
        std::fs::write(format!("{dir}/{n}.txt"), n.repeat(10)).ok();
    }
    let a = openat(format!("{dir}/a.txt").as_bytes(), libc::O_RDONLY);
    let b = openat(format!("{dir}/b.txt").as_bytes(), libc::O_RDONLY);
    let mut buf = [0u8; 64];
    // SAFETY: plain syscalls on our own fds and buffer.
    unsafe {
        libc::syscall(libc::SYS_dup3, a, 100, 0);
        libc::syscall(libc::SYS_read, 100, buf.as_mut_ptr(), 3);
        libc::syscall(libc::SYS_close, a);
    }
    let c = openat(format!("{dir}/c.txt").as_bytes(), libc::O_RDONLY);
    // SAFETY: as above.
    unsafe {
        libc::syscall(libc::SYS_read, c, buf.as_mut_ptr(), 5);
        libc::syscall(libc::SYS_read, b, buf.as_mut_ptr(), 7);
    }
    println!("a={a} b={b} c={c}");
}

/// Benchmark loop: pins itself to CPU `cpu`, waits for a line on stdin (the
/// tracer under test is attached by then), makes `n` calls of `kind`
/// (`getppid` or `read-zero`) and prints the nanoseconds per call, timed
/// around the loop only.
fn timed(kind: &str, n: u64, cpu: u64) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) != 0 {
            eprintln!("workload: cannot pin to CPU {cpu}");
            exit(1);
        }
    }
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let start = std::time::Instant::now();
    match kind {
        "getppid" => getppid_n(n),
        "read-zero" => read_zero(n),
        _ => usage(),
    }
    let ns = start.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("{ns:.2}");
}

/// Renames its thread (comm) to `name`, then makes `n` getppid calls.
fn mimic(name: &str, n: u64) {
    let c = cstr(name.as_bytes());
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr(), 0, 0, 0) };
    getppid_n(n);
}

/// Creates and closes `n` distinct files in `dir`.
fn open_many(n: u64, dir: &str) {
    for i in 0..n {
        let fd = openat(
            format!("{dir}/f{i}").as_bytes(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            eprintln!("open-many: openat failed at {i}");
            exit(1);
        }
        // SAFETY: closing the fd just opened.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
}

/// Raises its soft fd limit to the hard one and holds `n` duplicates of
/// stdin open at once.
fn dup_many(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) };
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: a valid rlimit for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) } != 0 || lim.rlim_cur < n + 16
    {
        eprintln!("dup-many: setrlimit failed");
        exit(1);
    }
    for _ in 0..n {
        // SAFETY: dup of fd 0 has no memory effects.
        if unsafe { libc::syscall(libc::SYS_dup, 0) } < 0 {
            eprintln!("dup-many: dup failed");
            exit(1);
        }
    }
}

fn threads(t: u64, n: u64) {
    let hs: Vec<_> = (0..t)
        .map(|_| std::thread::spawn(move || getppid_n(n)))
        .collect();
    for h in hs {
        let _ = h.join();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(cmd) = args.get(1) else { usage() };
    match cmd.as_str() {
        "getppid" => getppid_n(num(args.get(2))),
        "read-zero" => read_zero(num(args.get(2))),
        "mix" => mix(num(args.get(2)), args.get(3).map_or("/tmp", String::as_str)),
        "tree" => tree(num(args.get(2))),
        "orphan" => orphan(num(args.get(2))),
        "churn" => churn(num(args.get(2))),
        "signals" => signals(num(args.get(2))),
        "open" => open_paths(&args[2..]),
        "spin-open" => {
            // Spins MS milliseconds (no syscalls), then opens the paths.
            let end = std::time::Instant::now() + Duration::from_millis(num(args.get(2)));
            while std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
            open_paths(&args[3..]);
        }
        "dup" => dup(args.get(2).map_or("/tmp", String::as_str)),
        "threads" => threads(num(args.get(2)), num(args.get(3))),
        "mimic" => mimic(
            args.get(2).map_or_else(|| usage(), String::as_str),
            num(args.get(3)),
        ),
        "open-many" => open_many(
            num(args.get(2)),
            args.get(3).map_or_else(|| usage(), String::as_str),
        ),
        "dup-many" => dup_many(num(args.get(2))),
        "flood" => {
            let secs = num(args.get(2));
            let end = std::time::Instant::now() + Duration::from_secs(secs);
            let mut n = 0u64;
            while std::time::Instant::now() < end {
                getppid_n(10_000);
                n += 10_000;
            }
            println!("{n}");
        }
        "spin-getppid" => {
            // Waits MS milliseconds (no syscalls: busy loop), then N getppid.
            let n = num(args.get(2));
            let ms = num(args.get(3));
            let end = std::time::Instant::now() + Duration::from_millis(ms);
            while std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
            getppid_n(n);
        }
        "timed" => timed(
            args.get(2).map_or("", String::as_str),
            num(args.get(3)),
            num(args.get(4)),
        ),
        "sleep" => std::thread::sleep(Duration::from_millis(num(args.get(2)))),
        "rate" => {
            // RATE getppid calls per second for SECONDS, paced every 1000
            // calls; with SPIN_MS, after spinning that long (no syscalls).
            let rate = num(args.get(2)).max(1);
            let secs = num(args.get(3));
            if let Some(ms) = args.get(4) {
                let end = std::time::Instant::now() + Duration::from_millis(num(Some(ms)));
                while std::time::Instant::now() < end {
                    std::hint::spin_loop();
                }
            }
            let start = std::time::Instant::now();
            let total = rate * secs;
            let mut done = 0u64;
            while done < total {
                getppid_n(1000.min(total - done));
                done += 1000.min(total - done);
                let due = Duration::from_secs_f64(done as f64 / rate as f64);
                while start.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
            println!("{done}");
        }

        "exec-sh" => {
            let sh = CString::new(std::path::Path::new("/bin/sh").as_os_str().as_bytes())
                .unwrap_or_default();
            let c = CString::new("-c").unwrap_or_default();
            let e = CString::new("exit 0").unwrap_or_default();
            let argv = [sh.as_ptr(), c.as_ptr(), e.as_ptr(), std::ptr::null()];
            // SAFETY: valid argv for execv.
            unsafe { libc::execv(sh.as_ptr(), argv.as_ptr()) };
            exit(127);
        }
        _ => usage(),
    }
}
