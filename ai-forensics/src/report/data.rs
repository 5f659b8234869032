//! What a report shows, read from the store.
use std::collections::BTreeMap;

use rusqlite::params;
use serde_json::Value;

use crate::{aggregate::syscalls::Row, error::Result, store::Store, syscall::groups};

/// A file in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    /// Escaped path (still to be HTML-escaped).
    pub path: String,
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub written: u64,
    /// Bytes mapped.
    pub mapped: u64,
    /// Opens.
    pub opens: u64,
}

/// A process in tree order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcRow {
    /// Pid.
    pub pid: i64,
    /// Depth in the tree.
    pub depth: usize,
    /// Name (escaped).
    pub comm: String,
    /// Executable (escaped).
    pub exe: String,
    /// Command line (JSON array text).
    pub cmdline: String,
    /// Calls, when per-process counts were kept.
    pub calls: Option<i64>,
    /// Why it was traced.
    pub reason: String,
    /// Role (launcher, worker, tool, inference...), when one was found.
    pub role: String,
    /// How it ended, in words.
    pub exit: String,
    /// Threads it had.
    pub threads: Option<i64>,
}

/// A network endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRow {
    /// Endpoint text.
    pub endpoint: String,
    /// connect calls.
    pub connects: u64,
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
}

/// An alert on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    /// Seconds after the session start.
    pub at_s: f64,
    /// Rule name.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Reason.
    pub reason: String,
}

/// Everything a report shows.
#[derive(Clone, Debug, Default)]
pub struct ReportData {
    /// Session id.
    pub id: i64,
    /// Command or target description.
    pub title: String,
    /// Status.
    pub status: String,
    /// Host, kernel, start, end, digest.
    pub facts: Vec<(String, String)>,
    /// Exact per-syscall rows.
    pub rows: Vec<Row>,
    /// Group -> (seconds since start, calls in that interval).
    pub timeline: BTreeMap<String, Vec<(f64, u64)>>,
    /// (seconds, heap above start, mapped bytes).
    pub memory: Vec<(f64, u64, u64)>,
    /// Top files by bytes.
    pub files: Vec<FileRow>,
    /// Processes in tree order.
    pub processes: Vec<ProcRow>,
    /// Endpoints.
    pub endpoints: Vec<EndpointRow>,
    /// Alerts.
    pub alerts: Vec<AlertRow>,
    /// LLM calls and what followed them.
    pub llm: Vec<super::llm::LlmRow>,
    /// Loss summary.
    pub loss: String,
    /// The verdict, the timeline and the records behind them.
    pub story: super::story::Story,
    /// The summary's AI section (null when not recorded in events mode).
    pub ai: Value,
    /// Seconds the session lasted: every chart's time axis.
    pub duration_s: f64,
}

fn group_of(name: &str) -> &'static str {
    groups::GROUPS
        .iter()
        .find(|(_, m)| m.contains(&name))
        .map_or("other", |(g, _)| g)
}

/// Reads the report of session `id`.
#[expect(
    clippy::too_many_lines,
    reason = "one query per section, in page order"
)]
pub fn gather(store: &Store, id: i64) -> Result<ReportData> {
    let c = &store.conn;
    let e = |x: rusqlite::Error| store.err(&x);
    let mut d = ReportData {
        id,
        ..Default::default()
    };
    let (start, _) = store.clock_of(id)?;
    let status = store.session_field(id, "status")?.unwrap_or_default();
    let command = store.session_field(id, "command")?.unwrap_or_default();
    d.title = serde_json::from_str::<Value>(&command)
        .ok()
        .and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_else(|| "trace".into());
    d.status = status;
    let options: Value = store
        .session_field(id, "options")?
        .and_then(|o| serde_json::from_str(&o).ok())
        .unwrap_or(Value::Null);
    for (k, v) in [
        ("host", options["host"].as_str().unwrap_or("").to_owned()),
        (
            "kernel",
            options["kernel"].as_str().unwrap_or("").to_owned(),
        ),
        ("mode", options["mode"].as_str().unwrap_or("").to_owned()),
        (
            "started",
            store.session_field(id, "started_at")?.unwrap_or_default(),
        ),
        (
            "ended",
            store.session_field(id, "ended_at")?.unwrap_or_default(),
        ),
        (
            "workload",
            crate::output::table::exit_words(
                &store
                    .session_field(id, "exit_status")?
                    .and_then(|x| serde_json::from_str(&x).ok())
                    .unwrap_or(Value::Null),
            ),
        ),
        (
            "final digest",
            store.session_field(id, "final_digest")?.unwrap_or_default(),
        ),
    ] {
        d.facts.push((k.to_owned(), v));
    }
    d.rows = store.syscall_rows(id)?;

    let mut st = c
        .prepare("SELECT ts_ns, syscall, count FROM timeline WHERE session_id = ?1 ORDER BY ts_ns")
        .map_err(e)?;
    let mut per: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    let mut times = std::collections::BTreeSet::new();
    let rows = st
        .query_map(params![id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(e)?;
    for r in rows {
        let (ts, name, n) = r.map_err(e)?;
        times.insert(ts);
        *per.entry(group_of(&name).to_owned())
            .or_default()
            .entry(ts)
            .or_default() += n as u64;
    }
    let mut prev_ts = start as i64;
    let mut dts = BTreeMap::new();
    for ts in &times {
        dts.insert(*ts, ((ts - prev_ts).max(1) as f64) / 1e9);
        prev_ts = *ts;
    }
    for (g, m) in per {
        let series = times
            .iter()
            .map(|ts| {
                (
                    (*ts as f64 - start as f64) / 1e9,
                    (m.get(ts).copied().unwrap_or(0) as f64 / dts[ts]) as u64,
                )
            })
            .collect();
        d.timeline.insert(g, series);
    }

    // Memory over time, from brk/mmap/munmap events.
    let mut st = c
        .prepare("SELECT ts_ns, syscall, record FROM events WHERE id BETWEEN ?1 AND ?2 AND type = 'syscall' AND syscall IN ('brk', 'mmap', 'munmap') ORDER BY id")
        .map_err(e)?;
    let (lo, hi) = crate::store::session_range(id);
    let rows = st
        .query_map(params![lo, hi], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(e)?;
    let (mut heap_start, mut heap_max, mut mapped): (BTreeMap<u64, u64>, BTreeMap<u64, u64>, i128) =
        (BTreeMap::new(), BTreeMap::new(), 0);
    for r in rows {
        let (ts, name, rec) = r.map_err(e)?;
        let Ok(v) = serde_json::from_str::<Value>(&rec) else {
            continue;
        };
        let det = &v["detail"];
        let ret = det["ret"].as_i64().unwrap_or(-1);
        let pid = v["pid"].as_u64().unwrap_or(0);
        match name.as_str() {
            "brk" if ret > 0 => {
                let s = heap_start.entry(pid).or_insert(ret as u64);
                *s = (*s).min(ret as u64);
                let m = heap_max.entry(pid).or_insert(ret as u64);
                *m = ret as u64;
            }
            "mmap" if ret >= 0 => mapped += i128::from(det["args"]["length"].as_u64().unwrap_or(0)),
            "munmap" if ret == 0 => {
                mapped -= i128::from(det["args"]["length"].as_u64().unwrap_or(0))
            }
            _ => continue,
        }
        let heap: u64 = heap_max
            .iter()
            .map(|(p, m)| m.saturating_sub(heap_start[p]))
            .sum();
        d.memory
            .push(((ts as f64 - start as f64) / 1e9, heap, mapped.max(0) as u64));
    }

    let mut st = c
        .prepare("SELECT path, bytes_read, bytes_written, bytes_mapped, opens FROM files WHERE session_id = ?1 ORDER BY bytes_read + bytes_written DESC, opens DESC LIMIT 15")
        .map_err(e)?;
    d.files = st
        .query_map(params![id], |r| {
            Ok(FileRow {
                path: r.get(0)?,
                read: r.get::<_, i64>(1)? as u64,
                written: r.get::<_, i64>(2)? as u64,
                mapped: r.get::<_, i64>(3)? as u64,
                opens: r.get::<_, i64>(4)? as u64,
            })
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;

    let summary: Value = store
        .session_field(id, "summary")?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    d.story = super::story::gather(store, id, start, &summary)?;
    let ended = store
        .session_field(id, "ended_ns")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    d.duration_s = summary["elapsed_ns"]
        .as_u64()
        .or_else(|| ended.map(|e| e.saturating_sub(start)))
        .map_or(1.0, |n| n as f64 / 1e9);
    let launched_exit = crate::output::table::exit_words(&summary["exit_status"]);
    let mut st = c.prepare("SELECT pid, ppid, comm, exe, cmdline, calls, reason, exit_ns, threads, origin FROM processes WHERE session_id = ?1 ORDER BY start_ns, pid").map_err(e)?;
    type P = (
        i64,
        Option<i64>,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let procs: Vec<P> = st
        .query_map(params![id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;
    let pids: Vec<i64> = procs.iter().map(|p| p.0).collect();
    let mut stack: Vec<(i64, usize)> = procs
        .iter()
        .filter(|p| p.1.is_none_or(|pp| !pids.contains(&pp)))
        .map(|p| (p.0, 0))
        .rev()
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some((pid, depth)) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(p) = procs.iter().find(|p| p.0 == pid) {
            d.processes.push(ProcRow {
                pid,
                depth,
                comm: p.2.clone(),
                exe: p.3.clone().unwrap_or_default(),
                cmdline: p.4.clone().unwrap_or_default(),
                calls: p.5,
                reason: p.6.clone().unwrap_or_default(),
                role: summary["ai"]["roles"][pid.to_string()]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                exit: if p.9.as_deref() == Some("launched") {
                    launched_exit.clone()
                } else if d.story.killed.contains(&pid) {
                    "killed by a rule's action".to_owned()
                } else {
                    p.7.map_or_else(
                        || "running when the session ended".to_owned(),
                        |x| format!("exited at +{:.3}s", (x as f64 - start as f64) / 1e9),
                    )
                },
                threads: p.8,
            });
            for k in procs
                .iter()
                .filter(|k| k.1 == Some(pid) && k.0 != pid)
                .rev()
            {
                stack.push((k.0, depth + 1));
            }
        }
    }

    let mut st = c.prepare("SELECT endpoint, connects, bytes_sent, bytes_received FROM endpoints WHERE session_id = ?1 ORDER BY bytes_sent + bytes_received DESC").map_err(e)?;
    d.endpoints = st
        .query_map(params![id], |r| {
            Ok(EndpointRow {
                endpoint: r.get(0)?,
                connects: r.get::<_, i64>(1)? as u64,
                sent: r.get::<_, i64>(2)? as u64,
                received: r.get::<_, i64>(3)? as u64,
            })
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;

    let mut st = c
        .prepare(
            "SELECT ts_ns, rule, severity, reason FROM alerts WHERE session_id = ?1 ORDER BY ts_ns",
        )
        .map_err(e)?;
    d.alerts = st
        .query_map(params![id], |r| {
            Ok(AlertRow {
                at_s: (r.get::<_, Option<i64>>(0)?.unwrap_or(0) as f64 - start as f64) / 1e9,
                rule: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                severity: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            })
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;
    d.llm = super::llm::gather(store, id, start)?;
    d.ai = summary["ai"].clone();
    d.loss = summary.get("loss").map_or_else(
        || "unknown (the session did not end normally)".into(),
        crate::output::table::loss_words,
    );
    Ok(d)
}
