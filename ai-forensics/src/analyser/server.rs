//! The reference analyser (`ai-forensics analyser serve`): receives signed
//! batches of records, evaluates rules and a simple learned baseline, and
//! answers with signed verdicts. A starting point for real analysers; the
//! Python example in `examples/` shows a third party doing the same.
use std::{
    collections::BTreeSet,
    io::Read as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::protocol::{self, SIGNATURE_HEADER};
use crate::{
    error::{Error, Result},
    policy::{engine::Engine, replay, rules::Rules},
};

/// Where the analyser listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// TCP address (`127.0.0.1:9900`).
    Tcp(String),
    /// Unix socket path.
    Unix(PathBuf),
}

/// `analyser serve` settings.
pub struct Serve {
    /// Where to listen.
    pub listen: Listen,
    /// Shared secret.
    pub token: Vec<u8>,
    /// Rules to evaluate.
    pub rules: Option<Rules>,
    /// Learn the baseline for this long (from the first request), then flag
    /// what is new.
    pub learn: Option<Duration>,
    /// Action for baseline deviations.
    pub deviation_action: String,
}

/// What the learned baseline knows: executables run, endpoints contacted,
/// directories written.
#[derive(Default)]
struct Baseline {
    exes: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

fn deviations(b: &mut Baseline, learning: bool, v: &Value) -> Vec<String> {
    let d = &v["detail"];
    let mut items = Vec::new();
    match (v["type"].as_str(), d["syscall"].as_str()) {
        (Some("exec"), _) => {
            if let Some(f) = d["filename"].as_str() {
                items.push(("exe", f.to_owned()));
            }
        }
        (Some("syscall"), Some("connect")) => {
            if let (Some(ip), Some(port)) = (
                d["args"]["addr"]["ip"].as_str(),
                d["args"]["addr"]["port"].as_u64(),
            ) {
                items.push(("endpoint", format!("{ip}:{port}")));
            }
        }
        (Some("syscall"), Some("openat" | "open" | "creat")) => {
            let writes = d["args"]["flags"].as_str().is_some_and(|f| {
                f.contains("O_WRONLY") || f.contains("O_RDWR") || f.contains("O_CREAT")
            });
            if writes
                && d["ret"].as_i64().is_some_and(|r| r >= 0)
                && let Some(p) = d["args"]["pathname"].as_str()
            {
                let dir = p
                    .rsplit_once('/')
                    .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d });
                items.push(("directory written", dir.to_owned()));
            }
        }
        _ => {}
    }
    let mut out = Vec::new();
    for (kind, item) in items {
        let set = match kind {
            "exe" => &mut b.exes,
            "endpoint" => &mut b.endpoints,
            _ => &mut b.dirs,
        };
        if set.insert(item.clone()) && !learning {
            out.push(format!("baseline: new {kind} {item}"));
        }
    }
    out
}

fn respond(req: tiny_http::Request, status: u16, body: Vec<u8>, token: &[u8]) {
    let sig = protocol::sign(token, &body);
    let mut r = tiny_http::Response::from_data(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes(SIGNATURE_HEADER.as_bytes(), sig.as_bytes()) {
        r.add_header(h);
    }
    let _ = req.respond(r);
}

/// Runs the analyser until killed.
pub fn run(s: &Serve) -> Result<u8> {
    let server = match &s.listen {
        Listen::Tcp(a) => tiny_http::Server::http(a)
            .map_err(|e| Error::usage(format!("analyser serve: listen on {a}: {e}")))?,
        Listen::Unix(p) => {
            let _ = std::fs::remove_file(p);
            // Created 0600 from the start (no window where others could
            // connect), then chmod-ed again in case the umask was ignored.
            // SAFETY: umask only changes this process's file creation mask.
            let old = unsafe { libc::umask(0o177) };
            let srv = tiny_http::Server::http_unix(p);
            // SAFETY: as above; restores the previous mask.
            unsafe { libc::umask(old) };
            let srv = srv.map_err(|e| {
                Error::usage(format!("analyser serve: listen on {}: {e}", p.display()))
            })?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("chmod 600 the socket", e))?;
            srv
        }
    };
    eprintln!("ai-forensics analyser: listening on {:?}", s.listen);
    let mut engine = s.rules.clone().map(Engine::new);
    let mut baseline = Baseline::default();
    let mut learn_until: Option<Instant> = None;
    for mut req in server.incoming_requests() {
        if *req.method() != tiny_http::Method::Post {
            respond(req, 405, Vec::new(), &s.token);
            continue;
        }
        let mut body = Vec::new();
        if req
            .as_reader()
            .take(64 << 20)
            .read_to_end(&mut body)
            .is_err()
        {
            respond(req, 400, Vec::new(), &s.token);
            continue;
        }
        let sig = req
            .headers()
            .iter()
            .find(|h| h.field.equiv(SIGNATURE_HEADER))
            .map(|h| h.value.as_str().to_owned());
        if !protocol::verify(&s.token, &body, sig.as_deref()) {
            tracing::warn!("analyser: request refused: missing or wrong signature");
            respond(req, 401, b"bad signature\n".to_vec(), &s.token);
            continue;
        }
        let learning = s.learn.is_some_and(|d| {
            Instant::now() < *learn_until.get_or_insert_with(|| Instant::now() + d)
        });
        let mut verdicts = Vec::new();
        for line in String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(e) = &mut engine {
                for a in replay::feed(e, &v) {
                    verdicts.push(json!({"target": a.pid, "action": a.action.as_str(), "reason": a.reason, "rule": a.name}));
                }
            }
            if s.learn.is_some() {
                for why in deviations(&mut baseline, learning, &v) {
                    if let Some(pid) = v["pid"].as_u64() {
                        verdicts.push(json!({"target": pid, "action": s.deviation_action, "reason": why, "rule": "baseline"}));
                    }
                }
            }
        }
        let mut out = String::new();
        for v in verdicts {
            out.push_str(&v.to_string());
            out.push('\n');
        }
        respond(req, 200, out.into_bytes(), &s.token);
    }
    Ok(0)
}
