//! The recorder's side of the analyser loop: a thread that batches records,
//! posts them, checks the signature of what comes back, and hands verdicts
//! to the consumer. It never blocks recording: records it cannot take are
//! counted as lost for the analyser.
use std::{
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        mpsc::{Receiver, RecvTimeoutError, SyncSender},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use super::protocol::{self, SIGNATURE_HEADER};
use crate::{
    error::{Error, Result},
    output::clock::Clock,
    session::respond::Verdict,
};

/// What happens to the workload when the analyser is down, slow or answers garbage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Keep running; the failure is logged and counted.
    Open,
    /// Stop (freeze) the workload until the analyser answers again.
    Closed,
}

/// Where the analyser listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `http://host:port/path`.
    Http(String),
    /// `unix:/path/to.sock` (HTTP over the socket, request path `/events`).
    Unix(PathBuf),
}

/// Analyser settings.
#[derive(Clone)]
pub struct Config {
    /// Where.
    pub endpoint: Endpoint,
    /// Shared secret.
    pub token: Vec<u8>,
    /// Failure policy.
    pub failure: Failure,
    /// Per-request timeout.
    pub timeout: Duration,
}

// The token never appears in logs or debug output.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("token", &"(redacted)")
            .field("failure", &self.failure)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Checks at start that the analyser can be reached (a connection, no
/// request): an unreachable address is a configuration error. Failures
/// later in the run follow the failure mode.
pub fn probe(cfg: &Config) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::usage(format!(
            "--analyser {}: cannot connect at start: {e}",
            cfg.endpoint
        ))
    };
    match &cfg.endpoint {
        Endpoint::Unix(p) => {
            std::os::unix::net::UnixStream::connect(p).map_err(|e| fail(&e))?;
        }
        Endpoint::Http(u) => {
            let host = authority(u.strip_prefix("http://").unwrap_or(u));
            let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(host)
                .map_err(|e| fail(&e))?
                .collect();
            let mut last: Option<std::io::Error> = None;
            for a in &addrs {
                match std::net::TcpStream::connect_timeout(a, cfg.timeout) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = Some(e),
                }
            }
            return Err(match last {
                Some(e) => fail(&e),
                None => fail(&"the host name resolves to no address"),
            });
        }
    }
    Ok(())
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(u) => f.write_str(u),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// `host:port` of an HTTP URL without its scheme.
fn authority(rest: &str) -> &str {
    rest.split('/').next().unwrap_or("")
}

/// Parses `--analyser`.
pub fn parse_endpoint(s: &str) -> Result<Endpoint> {
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(Error::usage(format!(
                "--analyser {s}: a unix socket needs an absolute path (unix:/run/analyser.sock)"
            )));
        }
        return Ok(Endpoint::Unix(PathBuf::from(p)));
    }
    let rest = s.strip_prefix("http://").ok_or_else(|| {
        Error::usage(format!(
            "--analyser {s}: use http://HOST:PORT/PATH or unix:/PATH"
        ))
    })?;
    let host = authority(rest);
    let (h, port) = host
        .rsplit_once(':')
        .ok_or_else(|| Error::usage(format!("--analyser {s}: missing port")))?;
    if h.is_empty() || port.parse::<u16>().is_err() {
        return Err(Error::usage(format!("--analyser {s}: bad host or port")));
    }
    Ok(Endpoint::Http(s.to_owned()))
}

/// What the analyser link did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Batches accepted.
    pub batches: u64,
    /// Records sent.
    pub records: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Failed exchanges (down, slow, bad answer).
    pub failures: u64,
    /// Verdicts accepted (signature good).
    pub verdicts: u64,
    /// Answers refused for a missing or wrong signature.
    pub refused: u64,
    /// Last error.
    pub last_error: Option<String>,
}

/// Messages from the link to the consumer.
pub enum Event {
    /// A verdict.
    Verdict(Verdict),
    /// The analyser stopped answering (or answered garbage).
    Down(String),
    /// It answers again.
    Up,
}

fn post_unix(
    path: &std::path::Path,
    body: &[u8],
    sig: &str,
    timeout: Duration,
) -> std::result::Result<(u16, Option<String>, Vec<u8>), String> {
    let mut s =
        UnixStream::connect(path).map_err(|e| format!("connect {}: {e}", path.display()))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n{SIGNATURE_HEADER}: {sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take((protocol::MAX_VERDICT_BODY + 65536) as u64)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("malformed HTTP response".into()),
    };
    let sig = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned);
    Ok((resp.code.unwrap_or(0), sig, buf[n..].to_vec()))
}

fn post_http(
    agent: &ureq::Agent,
    url: &str,
    body: &[u8],
    sig: &str,
) -> std::result::Result<(u16, Option<String>, Vec<u8>), String> {
    let resp = agent
        .post(url)
        .header("Content-Type", "application/x-ndjson")
        .header(SIGNATURE_HEADER, sig)
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let sig = resp
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp
        .into_body()
        .with_config()
        .limit(protocol::MAX_VERDICT_BODY as u64)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, sig, body))
}

/// Records per request at most.
const BATCH: usize = 2000;
/// Longest a record waits before it is sent.
const EVERY: Duration = Duration::from_millis(100);
/// Longest time without an exchange: idle, an empty batch is sent.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Starts the link. `rx` brings serialised records; verdicts and state
/// changes go to `tx`.
pub fn spawn(
    cfg: Config,
    rx: Receiver<Vec<String>>,
    tx: SyncSender<Event>,
    stats: Arc<Mutex<Stats>>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("analyser".into())
        .spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(cfg.timeout))
                .http_status_as_error(false)
                .build()
                .into();
            let mut pending: Vec<String> = Vec::new();
            let mut last = Instant::now();
            let mut down = false;
            let mut open = true;
            while open || !pending.is_empty() {
                match rx.recv_timeout(EVERY) {
                    Ok(mut v) => pending.append(&mut v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
                // An idle workload still gets verdicts: an empty batch goes out
                // at least every second, and its answer can carry them.
                let heartbeat = open && pending.is_empty() && last.elapsed() >= HEARTBEAT;
                let due = heartbeat
                    || pending.len() >= BATCH
                    || (!pending.is_empty() && last.elapsed() >= EVERY)
                    || (!open && !pending.is_empty());
                if !due {
                    continue;
                }
                last = Instant::now();
                let n = pending.len().min(BATCH);
                let batch: Vec<String> = pending.drain(..n).collect();
                let newest_ts = batch
                    .iter()
                    .rev()
                    .find_map(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .ok()
                            .and_then(|v| v["ts_ns"].as_u64())
                    })
                    .unwrap_or(0);
                let mut body = batch.join("\n");
                if !body.is_empty() {
                    body.push('\n');
                }
                let sig = protocol::sign(&cfg.token, body.as_bytes());
                let result = match &cfg.endpoint {
                    Endpoint::Http(u) => post_http(&agent, u, body.as_bytes(), &sig),
                    Endpoint::Unix(p) => post_unix(p, body.as_bytes(), &sig, cfg.timeout),
                };
                let outcome: std::result::Result<Vec<_>, String> = match result {
                    Err(e) => Err(e),
                    Ok((status, _, _)) if status != 200 => Err(format!("HTTP status {status}")),
                    Ok((_, rsig, rbody)) => {
                        if protocol::verify(&cfg.token, &rbody, rsig.as_deref()) {
                            protocol::parse_verdicts(&rbody).map_err(|e| e.to_string())
                        } else {
                            let mut s = stats
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            s.refused += 1;
                            tracing::warn!("analyser answer refused: missing or wrong signature");
                            Err("answer with a missing or wrong signature".into())
                        }
                    }
                };
                let mut s = stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match outcome {
                    Ok(verdicts) => {
                        s.batches += 1;
                        s.records += n as u64;
                        s.verdicts += verdicts.len() as u64;
                        drop(s);
                        if down {
                            down = false;
                            let _ = tx.send(Event::Up);
                        }
                        let now = Clock::monotonic_now();
                        for (target, action, reason, rule) in verdicts {
                            let rule = if rule.is_empty() {
                                "analyser".into()
                            } else {
                                rule
                            };
                            let _ = tx.send(Event::Verdict(Verdict {
                                target,
                                action,
                                reason,
                                rule,
                                received_ns: now,
                                event_ts_ns: newest_ts,
                            }));
                        }
                    }
                    Err(e) => {
                        s.failures += 1;
                        s.last_error = Some(e.clone());
                        // The batch is not retried: the store and the stream have
                        // it; the analyser's view has a counted gap.
                        s.dropped += n as u64;
                        drop(s);
                        if !down {
                            down = true;
                            tracing::error!("analyser {}: {e}", cfg.endpoint);
                            let _ = tx.send(Event::Down(e));
                        }
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:9000/v1/events").unwrap(),
            Endpoint::Http("http://127.0.0.1:9000/v1/events".into())
        );
        assert_eq!(
            parse_endpoint("unix:/run/a.sock").unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        for bad in [
            "ftp://x",
            "http://nohost",
            "http://:80/",
            "http://h:99999/",
            "unix:rel.sock",
            "unix:",
            "garbage",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
