//! Commands that read the store: `sessions`, `show`, `query`, `replay`,
//! `verify`, and `dump` (which signals running recorders).
use std::{
    fmt::Write as _,
    io::{self, BufWriter, Write as _},
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    cli::{FormatArg, QueryArgs},
    error::{Error, Result},
    output::table,
    store::{
        self, Store,
        chain::{self, Verdict},
        query::{Filter, parse_time},
    },
};

/// The store path: the flag, else `$AI_FORENSICS_STORE`, else the default.
#[must_use]
pub fn store_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("AI_FORENSICS_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(store::DEFAULT_PATH))
}

fn out_err(e: io::Error) -> Error {
    Error::io("writing output", e)
}

/// `sessions`.
pub fn sessions(path: &Path) -> Result<u8> {
    let s = Store::open(path)?;
    let rows = s.sessions()?;
    let mut o = BufWriter::new(io::stdout().lock());
    writeln!(
        o,
        "{:>5} {:<12} {:<30} {:>9} {:>10}  {:<16}  command",
        "id", "status", "started", "seconds", "records", "final digest"
    )
    .map_err(out_err)?;
    for r in rows {
        writeln!(
            o,
            "{:>5} {:<12} {:<30} {:>9} {:>10}  {:<16}  {}",
            r.id,
            r.status,
            r.started_at.unwrap_or_default(),
            r.seconds.map_or_else(|| "-".into(), |s| format!("{s:.2}")),
            r.events,
            r.final_digest
                .as_deref()
                .map_or("-", |d| &d[..16.min(d.len())]),
            r.command
        )
        .map_err(out_err)?;
    }
    o.flush().map_err(out_err)?;
    Ok(0)
}

/// `show SESSION`.
pub fn show(path: &Path, session: &str, json: bool) -> Result<u8> {
    let s = Store::open(path)?;
    let id = s.session_id(session)?;
    let mut out = String::new();
    let status = s.session_field(id, "status")?.unwrap_or_default();
    let started = s.session_field(id, "started_at")?.unwrap_or_default();
    let ended = s
        .session_field(id, "ended_at")?
        .unwrap_or_else(|| "-".into());
    let summary: Value = s
        .session_field(id, "summary")?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or(Value::Null);
    if json {
        let row = s.sessions()?.into_iter().find(|r| r.id == id);
        let v = serde_json::json!({
            "session": id,
            "status": status,
            "started_at": started,
            "ended_at": s.session_field(id, "ended_at")?,
            "records_stored": row.as_ref().map(|r| r.events),
            "final_digest": s.session_field(id, "final_digest")?,
            "summary": summary,
        });
        out = v.to_string();
        out.push('\n');
        io::stdout().write_all(out.as_bytes()).map_err(out_err)?;
        return Ok(0);
    }
    let on = table::colour_on();
    let head = |t: &str| table::paint(on, table::Paint::Heading, t);
    let _ = writeln!(
        out,
        "{}",
        head(&format!("session {id}: {status}, {started} .. {ended}"))
    );
    if let Some(c) = s.session_field(id, "command")?.filter(|c| c != "null") {
        let words = serde_json::from_str::<Vec<String>>(&c).map_or(c, |v| v.join(" "));
        let _ = writeln!(out, "command: {words}");
    }
    if let Some(e) = summary.get("exit_status").filter(|e| !e.is_null()) {
        let _ = writeln!(out, "workload: {}", table::exit_words(e));
    }
    if let Some(t) = s.session_field(id, "trigger")? {
        let _ = writeln!(out, "flight recorder triggered: {t}");
    }
    let alerts = s.alert_rows(id)?;
    if !alerts.is_empty() {
        let _ = writeln!(out, "\n{}", head("verdict"));
        for a in &alerts {
            let _ = writeln!(
                out,
                "  {} {} ({}): {}",
                table::paint(on, table::severity_paint(&a.severity), &a.severity),
                a.rule,
                a.action,
                a.reason
            );
        }
    }
    let _ = writeln!(out);
    let rows = s.syscall_rows(id)?;
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "(no per-syscall statistics: the session did not end normally)"
        );
    } else {
        out.push_str(&table::syscalls(&rows, 0));
    }
    if let Some(a) = summary.get("activity").filter(|a| !a.is_null()) {
        let _ = writeln!(
            out,
            "\n{}",
            head(&format!(
                "files: {} distinct; top by bytes",
                a["files_total"]
            ))
        );
        for f in a["files"].as_array().into_iter().flatten().take(10) {
            let _ = writeln!(
                out,
                "  {:>12} read {:>12} written {:>12} mapped  {}",
                table::bytes(f["bytes_read"].as_u64().unwrap_or(0)),
                table::bytes(f["bytes_written"].as_u64().unwrap_or(0)),
                table::bytes(f["bytes_mapped"].as_u64().unwrap_or(0)),
                f["path"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(ai) = summary.get("ai").filter(|a| !a.is_null()) {
        out.push_str(&crate::session::summary::ai_text(ai));
    }
    if let Some(l) = summary.get("loss") {
        let words = table::loss_words(l);
        let p = if words == "none" {
            table::Paint::Good
        } else {
            table::Paint::Bad
        };
        let _ = writeln!(out, "\nloss: {}", table::paint(on, p, &words));
    }
    let _ = writeln!(
        out,
        "final digest: {}",
        s.session_field(id, "final_digest")?
            .unwrap_or_else(|| "-".into())
    );
    io::stdout().write_all(out.as_bytes()).map_err(out_err)?;
    Ok(0)
}

/// `query SESSION [filters]`.
pub fn query(q: &QueryArgs) -> Result<u8> {
    let path = store_path(q.store.store.as_deref());
    let s = Store::open(&path)?;
    let id = s.session_id(&q.session)?;
    let (start, offset) = s.clock_of(id)?;
    let f = Filter {
        pid: q.pid,
        syscall: q.syscall.clone(),
        path_glob: q.path.clone(),
        kind: q.kind.clone(),
        since_ns: q
            .since
            .as_deref()
            .map(|t| parse_time("--since", t, start, offset))
            .transpose()?,
        until_ns: q
            .until
            .as_deref()
            .map(|t| parse_time("--until", t, start, offset))
            .transpose()?,
        limit: q.limit,
    };
    let mut o = BufWriter::new(io::stdout().lock());
    s.stream(id, &f, q.format == FormatArg::Text, &mut o)?;
    o.flush().map_err(out_err)?;
    Ok(0)
}

/// `replay SESSION`.
pub fn replay(path: &Path, session: &str, format: FormatArg) -> Result<u8> {
    let s = Store::open(path)?;
    let id = s.session_id(session)?;
    let mut o = BufWriter::new(io::stdout().lock());
    s.stream(id, &Filter::default(), format == FormatArg::Text, &mut o)?;
    o.flush().map_err(out_err)?;
    Ok(0)
}

/// `verify [DB] [--session S]`: 0 when every chain is intact, 1 otherwise.
pub fn verify(path: &Path, session: Option<&str>, anchor: Option<&Path>) -> Result<u8> {
    let s = Store::open(path)?;
    let ids: Vec<i64> = match session {
        Some(r) => vec![s.session_id(r)?],
        None => s.sessions()?.into_iter().map(|r| r.id).collect(),
    };
    let anchors = match anchor {
        None => None,
        Some(p) if p.as_os_str() == "-" => {
            let mut t = String::new();
            io::Read::read_to_string(&mut io::stdin(), &mut t)
                .map_err(|e| Error::usage(format!("--anchor -: {e}")))?;
            Some(t)
        }
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::usage(format!("--anchor {}: {e}", p.display())))?,
        ),
    };
    let mut bad = 0;
    let mut o = String::new();
    for id in ids {
        if let Some(text) = &anchors {
            let started = s
                .session_field(id, "started_ns")?
                .and_then(|v| v.parse::<i64>().ok());
            let a = store::audit::anchors_of(text, id, started);
            match store::audit::against_anchors(&s, id, &a)? {
                Some(f) => {
                    bad += 1;
                    let at = if f.batch > 0 {
                        format!("batch {} ", f.batch)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "session {id}: DIFFERS FROM ITS ANCHORS: {at}{}",
                        f.detail
                    );
                    continue;
                }
                None => {
                    let _ = writeln!(o, "session {id}: matches its {} anchored batches", a.len());
                }
            }
        }
        match chain::verify(&s, id)? {
            Verdict::Intact {
                batches,
                events,
                final_digest,
            } => {
                if let Some(f) = store::audit::columns(&s, id)? {
                    bad += 1;
                    let _ = writeln!(
                        o,
                        "session {id}: TAMPERED: batch {} index: {}",
                        f.batch, f.detail
                    );
                    continue;
                }
                let recorded = s.session_field(id, "final_digest")?;
                let status = s.session_field(id, "status")?.unwrap_or_default();
                let note = match recorded {
                    Some(r) if r != final_digest && batches > 0 => {
                        bad += 1;
                        format!(
                            " but the session's recorded final digest is {r}: the last batches were removed"
                        )
                    }
                    None => format!(" ({status}: intact up to its last sealed batch)"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    o,
                    "session {id}: intact: {events} records in {batches} sealed batches, final digest {final_digest}{note}"
                );
            }
            Verdict::Broken {
                batch,
                kind,
                detail,
            } => {
                bad += 1;
                let _ = writeln!(o, "session {id}: TAMPERED: batch {batch} {kind}: {detail}");
            }
        }
    }
    io::stdout().write_all(o.as_bytes()).map_err(out_err)?;
    Ok(u8::from(bad > 0))
}

/// `dump [--pid P]`: sends SIGUSR1 to running recorders.
pub fn dump(pid: Option<u32>) -> Result<u8> {
    let me = std::process::id();
    let targets: Vec<u32> = match pid {
        Some(p) => vec![p],
        None => crate::target::procfs::all_pids()
            .into_iter()
            .filter(|p| *p != me)
            .filter(|p| {
                crate::target::procfs::info(*p).is_some_and(|i| {
                    i.exe
                        .as_deref()
                        .is_some_and(|e| e.ends_with(b"/ai-forensics"))
                        && i.cmdline
                            .get(1)
                            .is_some_and(|c| c == b"trace" || c == b"run")
                })
            })
            .collect(),
    };
    if targets.is_empty() {
        return Err(Error::usage("dump: no running ai-forensics recorder found"));
    }
    for p in &targets {
        // SAFETY: sending a signal to a process id.
        if unsafe { libc::kill(*p as i32, libc::SIGUSR1) } != 0 {
            return Err(Error::usage(format!(
                "dump: cannot signal {p}: {}",
                io::Error::last_os_error()
            )));
        }
        println!("asked recorder {p} to write out its flight-recorder window");
    }
    Ok(0)
}
