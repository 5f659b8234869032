//! What the workload did, in the order it did it: the verdict (alerts,
//! actions, what was refused and how) and a timeline of notable actions
//! (execs, model and data files, secrets, connections, writes outside the
//! output directories, bursts, phase changes, LLM calls), each tied to the
//! records behind it. Strings stay in their escaped form.
use std::collections::{BTreeMap, BTreeSet};

use rusqlite::params;
use serde_json::Value;

use crate::{error::Result, store::Store};

/// Most timeline entries.
const MAX_ENTRIES: usize = 400;
/// Most evidence records carried in the page.
const MAX_EVIDENCE: usize = 600;
/// An interval whose rate is this many times the median is a burst.
const BURST_FACTOR: u64 = 5;
/// ... and at least this many calls a second.
const BURST_MIN_RATE: u64 = 20_000;

/// One notable action.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Seconds after the session start.
    pub at_s: f64,
    /// `exec`, `model`, `data`, `secret`, `network`, `write`, `alert`,
    /// `action`, `burst`, `phase`, `llm`.
    pub kind: &'static str,
    /// Process, when one.
    pub pid: Option<i64>,
    /// What happened.
    pub text: String,
    /// Records behind it (sequence numbers).
    pub seqs: Vec<u64>,
}

/// A verdict line: an alert and what was done about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Seconds after the session start.
    pub at_s: f64,
    /// Rule.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Action asked for.
    pub action: String,
    /// How it was enforced (`seccomp`, `lsm`, `signal`, `cgroup`...), when known.
    pub mechanism: String,
    /// Whether the call was refused before it ran.
    pub refused: bool,
    /// Reason.
    pub reason: String,
    /// The alert's record and the action records that followed it.
    pub seqs: Vec<u64>,
}

/// An action taken, as the verdict lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionLine {
    /// Seconds after the session start.
    pub at_s: f64,
    /// kill, stop...
    pub action: String,
    /// `tree N` or `pid N`.
    pub target: String,
    /// Whether it took effect.
    pub ok: Option<bool>,
    /// Event to done, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Its record.
    pub seq: u64,
}

/// The story of a session.
#[derive(Clone, Debug, Default)]
pub struct Story {
    /// Alerts with their enforcement.
    pub verdicts: Vec<Verdict>,
    /// Actions taken (kill, stop...).
    pub actions: Vec<ActionLine>,
    /// Prevention in words, when a prevention mechanism ran.
    pub prevention: Option<String>,
    /// Notable actions in time order.
    pub entries: Vec<Entry>,
    /// Entries left out past [`MAX_ENTRIES`].
    pub entries_left_out: usize,
    /// The records behind entries and verdicts, by sequence number.
    pub evidence: BTreeMap<u64, String>,
    /// Bytes read and written per 100 ms: (seconds, read, written).
    pub io: Vec<(f64, u64, u64)>,
    /// Pids the actions killed.
    pub killed: BTreeSet<i64>,
}

/// Paths whose reading is a secret or credential touch (the bundled pack's
/// lists, as substrings: any spelling the kernel resolved).
const SECRET_MARKS: &[&str] = &[
    "/.ssh/",
    "/.aws/credentials",
    "/.aws/config",
    "/.config/gcloud/",
    "/.netrc",
    "/.docker/config.json",
    "/.kube/config",
    "/etc/shadow",
    "/etc/gshadow",
];

/// Where programs, libraries and system state live: opens there are not
/// notable (the data a workload reads lives elsewhere).
const SYSTEM_PREFIXES: &[&str] = &[
    "/usr/",
    "/lib",
    "/bin/",
    "/sbin/",
    "/etc/",
    "/proc/",
    "/sys/",
    "/dev/",
    "/run/",
    "/var/lib/",
    "/var/cache/",
    "/opt/",
    "/snap/",
];

const CODE_MARKS: &[&str] = &[
    "/node_modules/",
    "site-packages",
    "dist-packages",
    "__pycache__",
    "/.cache/",
    ".so",
    ".pyc",
    "/pyenv/",
    "/.pyenv/",
];

fn is_secret(p: &str) -> bool {
    SECRET_MARKS.iter().any(|m| p.contains(m))
}

fn is_data(p: &str) -> bool {
    p.starts_with('/')
        && !SYSTEM_PREFIXES.iter().any(|s| p.starts_with(s))
        && !CODE_MARKS.iter().any(|m| p.contains(m))
        && !p.ends_with(".py")
        && !p.ends_with(".js")
        && !p.ends_with(".mjs")
        && !p.ends_with(".json")
}

fn endpoint(addr: &Value) -> Option<String> {
    match addr["family"].as_str()? {
        "inet" | "inet6" => Some(format!(
            "{}:{}",
            addr["ip"].as_str().unwrap_or("?"),
            addr["port"].as_u64().unwrap_or(0)
        )),
        "unix" => Some(format!("unix:{}", addr["path"].as_str().unwrap_or(""))),
        _ => None,
    }
}

fn argv(d: &Value) -> String {
    d["argv"].as_array().map_or_else(
        || d["filename"].as_str().unwrap_or("").to_owned(),
        |a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// Reads the story of session `id`; `summary` is its stored summary.
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the records, one arm per kind of entry"
)]
pub fn gather(store: &Store, id: i64, start: u64, summary: &Value) -> Result<Story> {
    let c = &store.conn;
    let e = |x: rusqlite::Error| store.err(&x);
    let at = |ts: i64| (ts as f64 - start as f64) / 1e9;
    let mut s = Story::default();
    let ai = &summary["ai"];
    let models: BTreeSet<&str> = ai["artefacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["path"].as_str())
        .collect();
    let (lo, hi) = crate::store::session_range(id);

    // Verdicts and actions from their tables (the records are in events).
    for a in store.alert_rows(id)? {
        s.verdicts.push(Verdict {
            at_s: at(a.ts_ns as i64),
            rule: a.rule,
            severity: a.severity,
            action: a.action,
            mechanism: String::new(),
            refused: false,
            reason: a.reason,
            seqs: vec![a.seq],
        });
    }
    for a in store.action_rows(id)? {
        let v: Value = serde_json::from_str(&a.record).unwrap_or_default();
        for m in v["detail"]["members"].as_array().into_iter().flatten() {
            if let Some(p) = m.as_i64() {
                s.killed.insert(p);
            }
        }
        if let Some(p) = v["detail"]["pid"].as_i64()
            && a.action == "kill"
        {
            s.killed.insert(p);
        }
        let ms = a.latency_ns.map(|n| n as f64 / 1e6);
        s.actions.push(ActionLine {
            at_s: at(a.ts_ns as i64),
            action: a.action.clone(),
            target: a.target.clone(),
            ok: a.ok,
            latency_ms: ms,
            seq: a.seq,
        });
        // The action belongs to the latest alert before it.
        if let Some(vd) = s
            .verdicts
            .iter_mut()
            .rev()
            .find(|vd| vd.at_s <= at(a.ts_ns as i64) + 1e-9)
        {
            vd.seqs.push(a.seq);
        }
        s.entries.push(Entry {
            at_s: at(a.ts_ns as i64),
            kind: "action",
            pid: None,
            text: format!(
                "{} {}{}",
                a.action,
                a.target,
                if a.ok == Some(false) { " (failed)" } else { "" }
            ),
            seqs: vec![a.seq],
        });
    }
    if let Some(p) = summary["policy"]["prevention"].as_object() {
        s.prevention = Some(format!(
            "{}: {} calls checked before they ran, {} refused",
            p.get("mechanism").and_then(Value::as_str).unwrap_or("?"),
            p.get("notified").and_then(Value::as_u64).unwrap_or(0),
            p.get("denied").and_then(Value::as_u64).unwrap_or(0)
        ));
    }

    // One pass over the records that make entries.
    let mut st = c
        .prepare(
            "SELECT seq, ts_ns, type, pid, syscall, record FROM events WHERE id BETWEEN ?1 AND ?2 \
             AND (type IN ('exec', 'alert', 'denied', 'http') \
                  OR (type = 'syscall' AND syscall IN ('open', 'openat', 'openat2', 'creat', 'connect'))) ORDER BY id",
        )
        .map_err(e)?;
    let mut rows = st.query(params![lo, hi]).map_err(e)?;
    let mut seen_paths: BTreeSet<(String, &'static str)> = BTreeSet::new();
    let mut seen_connects: BTreeSet<String> = BTreeSet::new();
    let written_outside: BTreeSet<String> = ai["exfiltration"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|t| {
            t["written_outside"]
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys().cloned())
        })
        .collect();
    let endpoint_bytes: BTreeMap<String, (i64, i64)> = {
        let mut q = c
            .prepare(
                "SELECT endpoint, bytes_sent, bytes_received FROM endpoints WHERE session_id = ?1",
            )
            .map_err(e)?;
        q.query_map(params![id], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .map_err(e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?
    };
    while let Some(r) = rows.next().map_err(e)? {
        let seq = r.get::<_, i64>(0).map_err(e)? as u64;
        let ts = r
            .get::<_, Option<i64>>(1)
            .map_err(e)?
            .unwrap_or(start as i64);
        let kind: String = r.get(2).map_err(e)?;
        let pid: Option<i64> = r.get(3).map_err(e)?;
        let rec: String = r.get(5).map_err(e)?;
        let Ok(v) = serde_json::from_str::<Value>(&rec) else {
            continue;
        };
        let d = &v["detail"];
        let mut push = |kind: &'static str, text: String| {
            s.entries.push(Entry {
                at_s: at(ts),
                kind,
                pid,
                text,
                seqs: vec![seq],
            });
        };
        match kind.as_str() {
            "exec" => push(
                "exec",
                format!("{} ran {}", v["comm"].as_str().unwrap_or("?"), argv(d)),
            ),
            "alert" => {
                if let Some(vd) = s.verdicts.iter_mut().find(|x| x.seqs.first() == Some(&seq)) {
                    vd.mechanism = d["enforced"]
                        .as_str()
                        .or(d["source"].as_str())
                        .unwrap_or("")
                        .to_owned();
                    vd.refused = d["call_ran"] == false;
                }
                push(
                    "alert",
                    format!(
                        "{} {}: {}",
                        d["severity"].as_str().unwrap_or(""),
                        d["rule"].as_str().unwrap_or(""),
                        d["reason"].as_str().unwrap_or("")
                    ),
                );
            }
            "denied" => push(
                "secret",
                format!("refused: {}", d["reason"].as_str().unwrap_or("")),
            ),
            "http" if d["llm"].is_object() => push(
                "llm",
                format!(
                    "LLM call: {} {} to {}",
                    d["llm"]["api"].as_str().unwrap_or(""),
                    d["llm"]["model"].as_str().unwrap_or(""),
                    d["host"].as_str().unwrap_or("")
                ),
            ),
            "syscall" if d["syscall"] == "connect" => {
                let Some(ep) = endpoint(&d["args"]["addr"]) else {
                    continue;
                };
                if ep.starts_with("unix:") || !seen_connects.insert(ep.clone()) {
                    continue;
                }
                let (sent, recv) = endpoint_bytes.get(&ep).copied().unwrap_or((0, 0));
                push(
                    "network",
                    format!(
                        "{} connected to {ep} ({}; {} sent, {} received in the session)",
                        v["comm"].as_str().unwrap_or("?"),
                        d["errno"].as_str().unwrap_or("ok"),
                        crate::output::table::bytes(sent.max(0) as u64),
                        crate::output::table::bytes(recv.max(0) as u64)
                    ),
                );
            }
            "syscall" => {
                let path = d["ret_path"]
                    .as_str()
                    .or_else(|| d["args"]["pathname"].as_str())
                    .or_else(|| d["args"]["filename"].as_str())
                    .unwrap_or("")
                    .to_owned();
                let flags = d["args"]["flags"].as_str().unwrap_or("");
                let writing = flags.contains("O_WRONLY") || flags.contains("O_RDWR");
                let failed = d["errno"].as_str();
                let what: &'static str = if is_secret(&path) {
                    "secret"
                } else if models.contains(path.as_str()) {
                    "model"
                } else if writing && written_outside.contains(&path) {
                    "write"
                } else if !writing
                    && failed.is_none()
                    && !flags.contains("O_DIRECTORY")
                    && is_data(&path)
                {
                    "data"
                } else {
                    continue;
                };
                if !seen_paths.insert((path.clone(), what)) {
                    continue;
                }
                let verb = match what {
                    "secret" => "opened a secret or credential",
                    "model" => "opened model artefact",
                    "write" => "wrote outside the output directories:",
                    _ => "read",
                };
                push(
                    what,
                    format!(
                        "{} {verb} {path}{}",
                        v["comm"].as_str().unwrap_or("?"),
                        failed.map_or_else(String::new, |e| format!(" ({e})"))
                    ),
                );
            }
            _ => {}
        }
    }

    // Phase changes of the processes that were classified.
    for (pid, phases) in ai["phases"].as_object().into_iter().flatten() {
        let kind = ai["classification"][pid.as_str()]["kind"]
            .as_str()
            .unwrap_or("unknown");
        if kind == "unknown" {
            continue;
        }
        let mut last = "";
        for p in phases.as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("");
            if name == last || name == "idle" {
                continue;
            }
            last = name;
            s.entries.push(Entry {
                at_s: at(p["start_ns"].as_i64().unwrap_or(0)),
                kind: "phase",
                pid: pid.parse().ok(),
                text: format!("enters {name} ({})", p["evidence"].as_str().unwrap_or("")),
                seqs: Vec::new(),
            });
        }
    }

    // Bursts: intervals far above the median rate.
    let mut st = c
        .prepare("SELECT ts_ns, SUM(count) FROM timeline WHERE session_id = ?1 GROUP BY ts_ns ORDER BY ts_ns")
        .map_err(e)?;
    let per: Vec<(i64, i64)> = st
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;
    let mut rates: Vec<(i64, u64)> = Vec::new();
    let mut prev = start as i64;
    for (ts, n) in &per {
        let dt = (ts - prev).max(1) as f64 / 1e9;
        rates.push((*ts, (*n as f64 / dt) as u64));
        prev = *ts;
    }
    let mut sorted: Vec<u64> = rates.iter().map(|r| r.1).collect();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    for (ts, rate) in rates {
        if rate >= BURST_MIN_RATE && rate >= median.max(1) * BURST_FACTOR {
            s.entries.push(Entry {
                at_s: at(ts),
                kind: "burst",
                pid: None,
                text: format!(
                    "burst: {rate} calls/s ({}x the median)",
                    rate / median.max(1)
                ),
                seqs: Vec::new(),
            });
        }
    }

    s.entries
        .sort_by(|a, b| a.at_s.total_cmp(&b.at_s).then(a.seqs.cmp(&b.seqs)));
    if s.entries.len() > MAX_ENTRIES {
        // Keep the verdict's entries whatever the count.
        let mut keep: Vec<Entry> = Vec::new();
        let mut left = 0;
        for en in std::mem::take(&mut s.entries) {
            if keep.len() < MAX_ENTRIES || matches!(en.kind, "alert" | "action" | "secret") {
                keep.push(en);
            } else {
                left += 1;
            }
        }
        s.entries = keep;
        s.entries_left_out = left;
    }

    // The records behind what is shown.
    let wanted: BTreeSet<u64> = s
        .entries
        .iter()
        .flat_map(|en| en.seqs.iter().copied())
        .chain(s.verdicts.iter().flat_map(|v| v.seqs.iter().copied()))
        .take(MAX_EVIDENCE)
        .collect();
    let mut st = c
        .prepare("SELECT record FROM events WHERE id = ?1")
        .map_err(e)?;
    for seq in wanted {
        if let Ok(r) = st.query_row(params![crate::store::event_rowid(id, seq)], |r| {
            r.get::<_, String>(0)
        }) {
            s.evidence.insert(seq, r);
        }
    }

    // I/O per 100 ms from the read and write records.
    let mut st = c
        .prepare(
            "SELECT ts_ns / 100000000, syscall, SUM(MAX(COALESCE(json_extract(record, '$.detail.ret'), 0), 0)) FROM events \
             WHERE id BETWEEN ?1 AND ?2 AND type = 'syscall' AND syscall IN \
             ('read', 'pread64', 'readv', 'preadv', 'recvfrom', 'recvmsg', 'write', 'pwrite64', 'writev', 'pwritev', 'sendto', 'sendmsg') \
             GROUP BY 1, 2 ORDER BY 1",
        )
        .map_err(e)?;
    let mut io: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let rows = st
        .query_map(params![lo, hi], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(e)?;
    for r in rows {
        let (bin, name, n) = r.map_err(e)?;
        let slot = io.entry(bin).or_default();
        if name.starts_with('r') || name.starts_with("pread") {
            slot.0 += n.max(0) as u64;
        } else {
            slot.1 += n.max(0) as u64;
        }
    }
    s.io = io
        .into_iter()
        .map(|(bin, (r, w))| (at(bin * 100_000_000), r, w))
        .collect();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_notable() {
        assert!(is_secret("/root/.ssh/id_ed25519"));
        assert!(is_secret("/home/a/.aws/credentials"));
        assert!(!is_secret("/etc/hostname"));
        assert!(is_data("/work/main/examples/llm-agent/notes.txt"));
        assert!(!is_data("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!is_data("/srv/app/node_modules/x/index.js"));
        assert!(!is_data("notes.txt"), "only resolved paths");
        let ep = serde_json::json!({"family": "inet", "ip": "10.0.0.7", "port": 80});
        assert_eq!(endpoint(&ep).as_deref(), Some("10.0.0.7:80"));
    }
}
