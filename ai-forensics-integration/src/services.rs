//! Real servers on loopback for the ecosystem tests, and the agent itself:
//! an OTLP receiver (Python, opentelemetry-proto), a Kafka-compatible broker
//! (Tansu) and rsyslog. Each is stopped when dropped.
use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{bin, root};

/// Where `cargo xtask test` installed the servers.
#[must_use]
pub fn dir() -> PathBuf {
    std::env::var_os("AI_FORENSICS_SERVICES")
        .map_or_else(|| root().join("target/test-services"), PathBuf::from)
}

/// A free TCP port on loopback.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A free UDP port on loopback.
#[must_use]
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Waits until something listens on `addr`.
pub fn wait_listening(addr: &str, timeout: Duration) {
    wait_for(&format!("a listener on {addr}"), timeout, || {
        TcpStream::connect(addr).is_ok()
    });
}

/// `GET http://addr/path`, the body.
#[must_use]
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// A child whose output is collected, killed on drop.
pub struct Proc {
    /// The process.
    pub child: Child,
    out: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `c` collecting stdout and stderr.
    pub fn spawn(mut c: Command) -> Self {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {c:?}: {e}"));
        let out = Arc::new(Mutex::new(String::new()));
        for r in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let o = Arc::clone(&out);
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    let mut o = o.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Self { child, out }
    }

    /// Everything printed so far.
    #[must_use]
    pub fn output(&self) -> String {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits for `marker` in the output.
    pub fn wait_output(&mut self, marker: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.output().contains(marker) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "exited ({st}) before printing {marker:?}: {}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("no {marker:?} after {timeout:?}: {}", self.output());
    }

    /// Sends `sig` and waits for the exit; returns the exit code and output.
    pub fn stop(mut self, sig: i32) -> (i32, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let end = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                use std::os::unix::process::ExitStatusExt as _;
                break st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < end,
                "no exit after signal {sig}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(30));
        };
        // Let the readers catch the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (code, self.output())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent, started with a configuration file and ready to trace.
pub fn agent(config: &Path, extra: &[&str]) -> Proc {
    let mut c = Command::new(bin());
    c.args(["agent", "--config"]).arg(config).args(extra);
    c.env("RUST_LOG", "info");
    agent_cmd(c)
}

/// Starts an agent command (possibly wrapped, e.g. `ip netns exec`) and
/// waits until it traces.
pub fn agent_cmd(mut c: Command) -> Proc {
    c.env("RUST_LOG", "info");
    let mut p = Proc::spawn(c);
    p.wait_output("tracing;", Duration::from_secs(60));
    p
}

/// The OTLP receiver; records land in `out` as JSON lines.
pub struct OtlpReceiver {
    /// The process.
    pub proc: Proc,
    /// gRPC port.
    pub grpc: u16,
    /// HTTP port.
    pub http: u16,
}

impl OtlpReceiver {
    /// Starts it on the given ports (0: any).
    pub fn start(out: &Path, grpc: u16, http: u16) -> Self {
        let py = dir().join("venv/bin/python");
        assert!(
            py.exists(),
            "{} missing: run `cargo xtask test` (it installs the test servers)",
            py.display()
        );
        let mut c = Command::new(py);
        c.arg(root().join("ai-forensics-integration/scripts/otlp_receiver.py"))
            .arg("--out")
            .arg(out)
            .args([
                "--grpc-port",
                &grpc.to_string(),
                "--http-port",
                &http.to_string(),
            ]);
        let mut proc = Proc::spawn(c);
        proc.wait_output("ready grpc=", Duration::from_secs(30));
        let o = proc.output();
        let line = o
            .lines()
            .find(|l| l.starts_with("ready "))
            .unwrap_or_default()
            .to_owned();
        let port = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|p| p.parse().ok())
                .unwrap_or(0)
        };
        Self {
            grpc: port("grpc="),
            http: port("http="),
            proc,
        }
    }
}

/// The Kafka-compatible broker (Tansu, in-memory storage).
pub struct Broker {
    /// The process.
    pub proc: Proc,
    /// `host:port` clients use.
    pub addr: String,
}

/// The Tansu binary.
#[must_use]
pub fn tansu() -> PathBuf {
    let t = dir().join("bin/tansu");
    assert!(
        t.exists(),
        "{} missing: run `cargo xtask test` (it installs the test servers)",
        t.display()
    );
    t
}

impl Broker {
    /// Starts a broker listening on `listen` (`ip:port`) and advertising `advertised`.
    pub fn start(listen: &str, advertised: &str) -> Self {
        let mut c = Command::new(tansu());
        c.args([
            "broker",
            "--listener-url",
            &format!("tcp://{listen}"),
            "--advertised-listener-url",
            &format!("tcp://{advertised}"),
            "--storage-engine",
            "memory://tansu/",
        ]);
        let proc = Proc::spawn(c);
        wait_listening(advertised, Duration::from_secs(30));
        Self {
            proc,
            addr: advertised.to_owned(),
        }
    }
}

/// rsyslogd listening on a loopback UDP port, writing raw messages to a file.
pub struct Rsyslog {
    /// The process.
    pub proc: Proc,
    /// UDP port.
    pub port: u16,
    /// Where messages go.
    pub out: PathBuf,
}

impl Rsyslog {
    /// Starts rsyslogd with its own configuration in `dir`.
    pub fn start(dir: &Path) -> Self {
        let port = free_udp_port();
        let out = dir.join("messages.log");
        let conf = dir.join("rsyslog.conf");
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{}\")\n\
                 module(load=\"imudp\")\n\
                 input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{}\" template=\"raw\")\n",
                work.display(),
                out.display()
            ),
        )
        .unwrap();
        let mut c = Command::new("rsyslogd");
        c.arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"));
        let proc = Proc::spawn(c);
        // UDP has no handshake: give it a moment to bind, then check it lives.
        std::thread::sleep(Duration::from_millis(500));
        Self { proc, port, out }
    }
}
