//! Reading the store back: sessions, summaries, queries and replay.
use std::io::Write;

use rusqlite::{OptionalExtension as _, params, types::Value as SqlValue};
use serde_json::Value;

use super::Store;
use crate::{
    aggregate::syscalls::Row,
    error::{Error, Result},
    output::text,
};

/// One line of `sessions`.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    /// Id.
    pub id: i64,
    /// running, completed, interrupted, aborted.
    pub status: String,
    /// Wall-clock start.
    pub started_at: Option<String>,
    /// Seconds recorded.
    pub seconds: Option<f64>,
    /// Command (JSON array) or target description.
    pub command: String,
    /// Records stored.
    pub events: i64,
    /// Final digest.
    pub final_digest: Option<String>,
}

/// An alert as the `alerts` table indexes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    /// Sequence number of its record.
    pub seq: u64,
    /// Monotonic time.
    pub ts_ns: u64,
    /// Rule.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// Action the rule asked for.
    pub action: String,
    /// Process, when one.
    pub pid: Option<i64>,
    /// Reason (escaped text).
    pub reason: String,
}

/// An action as the `actions` table indexes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRow {
    /// Sequence number of its record.
    pub seq: u64,
    /// Monotonic time.
    pub ts_ns: u64,
    /// kill, stop, resume...
    pub action: String,
    /// `tree N` or `pid N`.
    pub target: String,
    /// Why (reason or rule).
    pub reason: String,
    /// Whether it took effect.
    pub ok: Option<bool>,
    /// Event to done.
    pub latency_ns: Option<i64>,
    /// The record (JSON).
    pub record: String,
}

impl Store {
    /// A session's alerts, in time order.
    pub fn alert_rows(&self, id: i64) -> Result<Vec<AlertRow>> {
        let mut st = self
            .conn
            .prepare("SELECT seq, ts_ns, rule, severity, action, pid, reason FROM alerts WHERE session_id = ?1 ORDER BY ts_ns, seq")
            .map_err(|e| self.err(&e))?;
        st.query_map(params![id], |r| {
            Ok(AlertRow {
                seq: r.get::<_, Option<i64>>(0)?.unwrap_or(0) as u64,
                ts_ns: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                rule: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                severity: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                action: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                pid: r.get(5)?,
                reason: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            })
        })
        .map_err(|e| self.err(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| self.err(&e))
    }

    /// A session's actions, in time order.
    pub fn action_rows(&self, id: i64) -> Result<Vec<ActionRow>> {
        let mut st = self
            .conn
            .prepare("SELECT seq, ts_ns, action, target, reason, ok, latency_ns, record FROM actions WHERE session_id = ?1 ORDER BY ts_ns, seq")
            .map_err(|e| self.err(&e))?;
        st.query_map(params![id], |r| {
            Ok(ActionRow {
                seq: r.get::<_, Option<i64>>(0)?.unwrap_or(0) as u64,
                ts_ns: r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64,
                action: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                target: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                reason: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                ok: r.get(5)?,
                latency_ns: r.get(6)?,
                record: r.get(7)?,
            })
        })
        .map_err(|e| self.err(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| self.err(&e))
    }

    /// Resolves a session reference: a number, `last` or `latest`.
    pub fn session_id(&self, reference: &str) -> Result<i64> {
        let id: Option<i64> = if reference == "last" || reference == "latest" {
            self.conn
                .query_row("SELECT max(id) FROM sessions", [], |r| r.get(0))
                .map_err(|e| self.err(&e))?
        } else {
            let n: i64 = reference.parse().map_err(|_| {
                Error::usage(format!(
                    "session '{reference}': give a session number or 'last'"
                ))
            })?;
            self.conn
                .query_row("SELECT id FROM sessions WHERE id = ?1", params![n], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.err(&e))?
        };
        id.ok_or_else(|| {
            Error::usage(format!(
                "session '{reference}': no such session in {}",
                self.path.display()
            ))
        })
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, status, started_at, started_ns, ended_ns, command, options,
                        (SELECT count(*) FROM events e WHERE e.id BETWEEN (s.id << 40) AND ((s.id << 40) | 1099511627775)), final_digest
                 FROM sessions s ORDER BY id",
            )
            .map_err(|e| self.err(&e))?;
        let rows = st
            .query_map([], |r| {
                let start: Option<i64> = r.get(3)?;
                let end: Option<i64> = r.get(4)?;
                let command: Option<String> = r.get(5)?;
                let options: Option<String> = r.get(6)?;
                Ok(SessionRow {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    started_at: r.get(2)?,
                    seconds: start.zip(end).map(|(a, b)| (b - a) as f64 / 1e9),
                    command: describe(command.as_deref(), options.as_deref()),
                    events: r.get(7)?,
                    final_digest: r.get(8)?,
                })
            })
            .map_err(|e| self.err(&e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(&e))?;
        Ok(rows)
    }

    /// The stored per-syscall rows of a session.
    pub fn syscall_rows(&self, id: i64) -> Result<Vec<Row>> {
        let mut st = self
            .conn
            .prepare("SELECT syscall, nr, count, errors, timed, total_ns, min_ns, avg_ns, max_ns, p99_ns, lost FROM syscall_stats WHERE session_id = ?1 ORDER BY count DESC, nr")
            .map_err(|e| self.err(&e))?;
        let rows = st
            .query_map(params![id], |r| {
                Ok(Row {
                    syscall: r.get(0)?,
                    nr: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    errors: r.get::<_, i64>(3)? as u64,
                    timed: r.get::<_, i64>(4)? as u64,
                    total_ns: r.get::<_, i64>(5)? as u64,
                    min_ns: r.get::<_, i64>(6)? as u64,
                    avg_ns: r.get::<_, i64>(7)? as u64,
                    max_ns: r.get::<_, i64>(8)? as u64,
                    p99_ns: r.get::<_, i64>(9)? as u64,
                    lost: r.get::<_, i64>(10)? as u64,
                })
            })
            .map_err(|e| self.err(&e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(&e))?;
        Ok(rows)
    }

    /// A column of the session row.
    pub fn session_field(&self, id: i64, column: &str) -> Result<Option<String>> {
        let allowed = [
            "status",
            "summary",
            "options",
            "final_digest",
            "started_at",
            "ended_at",
            "clock_offset_ns",
            "trigger",
            "exit_status",
            "command",
            "started_ns",
            "ended_ns",
        ];
        if !allowed.contains(&column) {
            return Err(Error::Runtime(format!("no session column {column}")));
        }
        self.conn
            .query_row(
                &format!("SELECT {column} FROM sessions WHERE id = ?1"),
                params![id],
                |r| {
                    let v: SqlValue = r.get(0)?;
                    Ok(match v {
                        SqlValue::Text(t) => Some(t),
                        SqlValue::Integer(i) => Some(i.to_string()),
                        _ => None,
                    })
                },
            )
            .map_err(|e| self.err(&e))
    }

    /// Streams the records of session `id` matching `f`, in sequence order,
    /// as JSON Lines or text, to `out`. Returns how many were written.
    pub fn stream(
        &self,
        id: i64,
        f: &Filter,
        text_format: bool,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut sql = String::from("SELECT record FROM events WHERE id BETWEEN ? AND ?");
        let (lo, hi) = super::session_range(id);
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(lo), SqlValue::Integer(hi)];
        if let Some(p) = f.pid {
            sql.push_str(" AND pid = ?");
            args.push(SqlValue::Integer(i64::from(p)));
        }
        if let Some(s) = &f.syscall {
            sql.push_str(" AND syscall = ?");
            args.push(SqlValue::Text(s.clone()));
        }
        if let Some(g) = &f.path_glob {
            sql.push_str(" AND path GLOB ?");
            args.push(SqlValue::Text(g.clone()));
        }
        if let Some(t) = &f.kind {
            sql.push_str(" AND type = ?");
            args.push(SqlValue::Text(t.clone()));
        }
        if let Some(s) = f.since_ns {
            sql.push_str(" AND ts_ns >= ?");
            args.push(SqlValue::Integer(s as i64));
        }
        if let Some(u) = f.until_ns {
            sql.push_str(" AND ts_ns <= ?");
            args.push(SqlValue::Integer(u as i64));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let mut rows = st
            .query(rusqlite::params_from_iter(args))
            .map_err(|e| self.err(&e))?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(&e))? {
            let rec: String = r.get(0).map_err(|e| self.err(&e))?;
            let line = if text_format {
                let v: Value = serde_json::from_str(&rec)
                    .map_err(|e| Error::Runtime(format!("stored record is not JSON: {e}")))?;
                match text::line(&v) {
                    Some(l) => l,
                    None => continue,
                }
            } else {
                rec
            };
            out.write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| Error::io("writing records", e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Monotonic start of a session and its clock offset (for `--since`).
    pub fn clock_of(&self, id: i64) -> Result<(u64, i128)> {
        self.conn
            .query_row(
                "SELECT started_ns, clock_offset_ns FROM sessions WHERE id = ?1",
                params![id],
                |r| {
                    let s: Option<i64> = r.get(0)?;
                    let o: Option<String> = r.get(1)?;
                    Ok((
                        s.unwrap_or(0) as u64,
                        o.and_then(|o| o.parse().ok()).unwrap_or(0),
                    ))
                },
            )
            .map_err(|e| self.err(&e))
    }
}

fn describe(command: Option<&str>, options: Option<&str>) -> String {
    if let Some(c) = command
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|v| v.as_array().cloned())
    {
        return c
            .iter()
            .filter_map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ");
    }
    let o: Value = options
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or(Value::Null);
    if o["all"] == true {
        return "trace --all".into();
    }
    match o["pids"].as_array() {
        Some(p) if !p.is_empty() => format!(
            "trace --pid {}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => "trace".into(),
    }
}

/// Filters of `query`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this process.
    pub pid: Option<u32>,
    /// Only this syscall.
    pub syscall: Option<String>,
    /// Only records whose main path matches (SQLite GLOB: `*`, `?`, `[...]`).
    pub path_glob: Option<String>,
    /// Only this record type.
    pub kind: Option<String>,
    /// From this monotonic time.
    pub since_ns: Option<u64>,
    /// Until this monotonic time.
    pub until_ns: Option<u64>,
    /// At most this many.
    pub limit: Option<u64>,
}

/// Parses `--since`/`--until`: RFC 3339 wall-clock time, `+DURATION` from
/// the session's start, or raw monotonic nanoseconds.
pub fn parse_time(flag: &str, s: &str, start_ns: u64, offset_ns: i128) -> Result<u64> {
    if let Some(rel) = s.strip_prefix('+') {
        let d = humantime::parse_duration(rel)
            .map_err(|e| Error::usage(format!("{flag}: bad duration '{rel}': {e}")))?;
        return Ok(start_ns + d.as_nanos() as u64);
    }
    if let Ok(ns) = s.parse::<u64>() {
        return Ok(ns);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        Error::usage(format!(
            "{flag}: '{s}' is not RFC 3339 time, +DURATION or nanoseconds ({e})"
        ))
    })?;
    let wall = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::usage(format!("{flag}: time before 1970")))?;
    Ok((wall.as_nanos() as i128 - offset_ns).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("--since", "+2s", 1_000, 0).unwrap(),
            2_000_001_000
        );
        assert_eq!(parse_time("--since", "12345", 0, 0).unwrap(), 12345);
        let off: i128 = 1_700_000_000_000_000_000;
        assert_eq!(
            parse_time("--since", "2023-11-14T22:13:21Z", 0, off).unwrap(),
            1_000_000_000
        );
        assert!(parse_time("--since", "yesterday", 0, 0).is_err());
        assert!(parse_time("--since", "+soon", 0, 0).is_err());
    }

    #[test]
    fn describes_sessions() {
        assert_eq!(
            describe(Some("[\"python3\",\"train.py\"]"), None),
            "python3 train.py"
        );
        assert_eq!(
            describe(Some("null"), Some("{\"all\":true}")),
            "trace --all"
        );
        assert_eq!(describe(None, Some("{\"pids\":[5,6]}")), "trace --pid 5,6");
    }
}
