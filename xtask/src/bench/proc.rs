//! Processes under measurement: the pinned benchmark loop, tracers whose
//! output is collected while they run, and exact resource usage of a child.
use std::{
    io::{BufRead as _, BufReader, Read, Write as _},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// CPU the measured loop runs on; tracers' user space runs on [`TRACER_CPU`].
pub const LOOP_CPU: u32 = 1;
/// CPU for tracers' user space.
pub const TRACER_CPU: u32 = 0;
/// Output kept per tracer (the tail).
const KEEP: usize = 1 << 20;

/// A tracer (or any helper) whose stdout and stderr are collected.
pub struct Tracer {
    child: Child,
    out: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
    what: String,
}

/// How a tracer says it is attached.
#[derive(Clone, Copy, Debug)]
pub enum Ready {
    /// A string on its stdout or stderr.
    Marker(&'static str),
    /// It says nothing: wait this long.
    After(Duration),
}

fn collect<R: Read + Send + 'static>(r: R, out: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let mut o = out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            o.push_str(&String::from_utf8_lossy(&line));
            if o.len() > KEEP {
                let cut = o.len() - KEEP / 2;
                let cut = (cut..o.len()).find(|i| o.is_char_boundary(*i)).unwrap_or(0);
                o.drain(..cut);
            }
            line.clear();
        }
    })
}

impl Tracer {
    /// Starts `argv`; with `pin`, its user space runs on [`TRACER_CPU`] only.
    pub fn spawn(argv: &[String], pin: bool) -> anyhow::Result<Self> {
        let mut c = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(TRACER_CPU.to_string()).args(argv);
            c
        } else {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        };
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .with_context(|| format!("cannot start {}", argv.join(" ")))?;
        let out = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(collect(o, Arc::clone(&out)));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(collect(e, Arc::clone(&out)));
        }
        Ok(Self {
            child,
            out,
            readers,
            what: argv.first().cloned().unwrap_or_default(),
        })
    }

    fn output(&self) -> String {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until the tracer is attached.
    pub fn ready(&mut self, how: Ready, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        if let Ready::After(d) = how {
            thread::sleep(d);
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "{} exited early ({st}): {}",
                    self.what,
                    tail(&self.output(), 400)
                );
            }
            return Ok(());
        }
        loop {
            if let Ready::Marker(m) = how
                && self.output().contains(m)
            {
                // Markers are printed just before or after the last attach.
                thread::sleep(Duration::from_millis(300));
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "{} exited early ({st}): {}",
                    self.what,
                    tail(&self.output(), 400)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}: {}",
                    self.what,
                    tail(&self.output(), 400)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the tracer finish on its own for up to `grace`, then interrupts
    /// it (tracers print their summaries on SIGINT), then kills it.
    /// Returns everything it printed.
    pub fn stop(mut self, grace: Duration) -> String {
        let pid = self.child.id() as i32;
        let waited = |c: &mut Child, d: Duration| {
            let end = Instant::now() + d;
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return true;
                }
                thread::sleep(Duration::from_millis(20));
            }
            false
        };
        if !waited(&mut self.child, grace) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
            if !waited(&mut self.child, Duration::from_secs(60)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.output()
    }

    /// Waits for the tracer to exit (up to `timeout`, then kills it) and
    /// returns its own resource usage: it must have no children of its own
    /// left to reap, or their usage would be added.
    pub fn wait_usage(mut self, timeout: Duration) -> (Usage, String) {
        let pid = self.child.id() as i32;
        let end = Instant::now() + timeout;
        let mut usage = Usage::default();
        loop {
            let mut status = 0;
            // SAFETY: zeroed rusage is valid; wait4 fills it for our own child.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above; WNOHANG does not block.
            let r = unsafe { libc::wait4(pid, &raw mut status, libc::WNOHANG, &raw mut ru) };
            if r == pid {
                usage = Usage::from(&ru);
                break;
            }
            if r < 0 {
                break;
            }
            if Instant::now() > end {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            thread::sleep(Duration::from_millis(10));
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (usage, self.output())
    }
}

/// CPU time and peak RSS of a reaped child.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident set, KiB.
    pub max_rss_kib: u64,
}

impl From<&libc::rusage> for Usage {
    fn from(ru: &libc::rusage) -> Self {
        let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Self {
            cpu_s: s(ru.ru_utime) + s(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss as u64,
        }
    }
}

/// The last `n` bytes of `s`, on one line.
pub fn tail(s: &str, n: usize) -> String {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    s[start..].replace('\n', " | ")
}

/// A process held at a gate: it is started (so it has a PID to trace) and
/// blocks reading a line from stdin until [`Gated::go`].
pub struct Gated {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Gated {
    /// `argv` behind a gate. With `pin`, the process runs on [`LOOP_CPU`].
    pub fn shell(argv: &[String], pin: bool) -> anyhow::Result<Self> {
        let quoted: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        let script = format!("read _go; exec {}", quoted.join(" "));
        let mut c = Command::new("/bin/sh");
        if pin {
            c = Command::new("taskset");
            c.arg("-c").arg(LOOP_CPU.to_string()).arg("/bin/sh");
        }
        c.arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Self::start(c)
    }

    /// The benchmark loop (`workload timed KIND N CPU`), which gates itself.
    pub fn timed_loop(workload: &Path, kind: &str, n: u64) -> anyhow::Result<Self> {
        let mut c = Command::new(workload);
        c.args(["timed", kind, &n.to_string(), &LOOP_CPU.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Self::start(c)
    }

    fn start(mut c: Command) -> anyhow::Result<Self> {
        let mut child = c.spawn().context("cannot start the workload")?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens the gate and waits for the process; returns its stdout.
    pub fn go(mut self) -> anyhow::Result<String> {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"\n");
        }
        let o = self.child.wait_with_output()?;
        if !o.status.success() {
            bail!("workload failed: {}", o.status);
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Kills it (when the tracer could not start).
    pub fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
