//! A session's row: opened when recording starts, completed when it ends.
use std::collections::BTreeMap;

use rusqlite::params;
use serde_json::Value;

use super::Store;
use crate::{
    aggregate::{activity::Activity, syscalls::Row},
    decode::escape,
    error::Result,
    state::procs::{Process, Processes},
};

/// What is known when a session starts.
pub struct Begin<'a> {
    /// The session header record's detail (tool, host, kernel, options...).
    pub header: &'a Value,
    /// Monotonic start.
    pub started_ns: u64,
    /// Wall-clock start (RFC 3339).
    pub started_at: String,
    /// Flight-recorder window, if any.
    pub flight_recorder: Option<String>,
}

/// What is known when it ends.
pub struct Finish<'a> {
    /// `completed`, `interrupted`...
    pub status: &'a str,
    /// Monotonic end.
    pub ended_ns: u64,
    /// Wall-clock end.
    pub ended_at: String,
    /// The workload's exit status (JSON).
    pub exit_status: Value,
    /// The summary record's detail.
    pub summary: &'a str,
    /// Exact per-syscall rows.
    pub rows: &'a [Row],
    /// Processes.
    pub procs: &'a Processes,
    /// Processes already written during the run.
    pub spilled: u64,
    /// Per-process (calls, errors), with `--per-process`.
    /// Per-process (calls, errors) by pid and generation, with `--per-process`.
    pub per_process: &'a BTreeMap<(u32, u32), (u64, u64)>,
    /// Activity (events mode).
    pub activity: Option<&'a Activity>,
    /// Final digest of the chain (hex).
    pub final_digest: String,
    /// Sealed batches.
    pub batches: u64,
    /// Records stored.
    pub events: u64,
    /// Flight-recorder trigger, if one fired.
    pub trigger: Option<String>,
}

impl Store {
    /// Inserts the session row (status `running`) and returns its id.
    pub fn begin(&self, b: &Begin<'_>) -> Result<i64> {
        let h = b.header;
        self.conn
            .execute(
                "INSERT INTO sessions (status, started_ns, started_at, command, host, kernel, tool_version, options, recorder_pid, boot_id, clock_offset_ns, flight_recorder)
                 VALUES ('running', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    b.started_ns as i64,
                    b.started_at,
                    h["command"].to_string(),
                    h["host"].as_str(),
                    h["kernel"].as_str(),
                    h["version"].as_str(),
                    h.to_string(),
                    std::process::id(),
                    super::boot_id(),
                    h["clock_offset_ns"].as_str(),
                    b.flight_recorder,
                ],
            )
            .map_err(|e| self.err(&e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Marks a session that could not start (programs refused, ...).
    pub fn fail(&self, id: i64, why: &str) {
        let r = self.conn.execute(
            "UPDATE sessions SET status = 'failed', summary = ?2 WHERE id = ?1",
            params![id, serde_json::json!({"error": why}).to_string()],
        );
        if let Err(e) = r {
            tracing::warn!("store: marking session {id} failed: {e}");
        }
    }

    /// Writes the end-of-session tables and completes the row.
    pub fn finish(&mut self, id: i64, f: &Finish<'_>) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| super::sql_err(&self.path, &e))?;
        {
            let mut st = tx
                .prepare("INSERT OR REPLACE INTO syscall_stats (session_id, nr, syscall, count, errors, timed, total_ns, min_ns, avg_ns, max_ns, p99_ns, lost) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
                .map_err(|e| super::sql_err(&self.path, &e))?;
            for r in f.rows {
                st.execute(params![
                    id,
                    r.nr,
                    r.syscall,
                    r.count as i64,
                    r.errors as i64,
                    r.timed as i64,
                    r.total_ns as i64,
                    r.min_ns as i64,
                    r.avg_ns as i64,
                    r.max_ns as i64,
                    r.p99_ns as i64,
                    r.lost as i64
                ])
                .map_err(|e| super::sql_err(&self.path, &e))?;
            }
            {
                let mut pr = tx
                    .prepare(INSERT_PROCESS)
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                for p in f.procs.iter() {
                    insert_process(
                        &mut pr,
                        id,
                        p,
                        crate::session::summary::calls_of(f.per_process, p.pid, p.generation),
                    )
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                }
            }
            // Processes written during the run (forgotten from memory): their
            // call counts are known only now; one joined update, not a scan
            // per process.
            if f.spilled > 0 && !f.per_process.is_empty() {
                tx.execute_batch(
                    "CREATE TEMP TABLE IF NOT EXISTS totals (pid INTEGER, generation INTEGER, calls INTEGER, errors INTEGER, PRIMARY KEY (pid, generation)); DELETE FROM temp.totals;",
                )
                .map_err(|e| super::sql_err(&self.path, &e))?;
                {
                    let mut t = tx
                        .prepare("INSERT INTO temp.totals (pid, generation, calls, errors) VALUES (?1, ?2, ?3, ?4)")
                        .map_err(|e| super::sql_err(&self.path, &e))?;
                    // Every process: a pid reused during the run has one
                    // entry per generation.
                    for ((pid, g), ce) in f.per_process {
                        let (c, e) = if *ce == crate::session::summary::SHARED {
                            (None, None)
                        } else {
                            (Some(ce.0 as i64), Some(ce.1 as i64))
                        };
                        t.execute(params![pid, g, c, e])
                            .map_err(|e| super::sql_err(&self.path, &e))?;
                    }
                }
                tx.execute(
                    "UPDATE processes SET calls = t.calls, errors = t.errors FROM temp.totals AS t WHERE processes.session_id = ?1 AND processes.pid = t.pid AND processes.generation = t.generation AND processes.calls IS NULL",
                    params![id],
                )
                .map_err(|e| super::sql_err(&self.path, &e))?;
                // A process whose fork record was lost has no known
                // generation: the counts are its when only one process
                // with its pid has any (as `summary::calls_of`).
                tx.execute(
                    "UPDATE processes SET calls = t.calls, errors = t.errors FROM (SELECT pid, sum(calls) AS calls, sum(errors) AS errors FROM temp.totals GROUP BY pid HAVING count(*) = 1) AS t WHERE processes.session_id = ?1 AND processes.pid = t.pid AND processes.generation = 0 AND processes.calls IS NULL",
                    params![id],
                )
                .map_err(|e| super::sql_err(&self.path, &e))?;
                tx.execute_batch("DROP TABLE temp.totals;")
                    .map_err(|e| super::sql_err(&self.path, &e))?;
            }
            // Rows with one pid and generation 0, written now or during the
            // run: the kernel's counts for them are their sum; none gets
            // them (as `summary::mark_shared` for those still in memory).
            if !f.per_process.is_empty() {
                tx.execute(
                    "UPDATE processes SET calls = NULL, errors = NULL WHERE session_id = ?1 AND generation = 0 AND pid IN (SELECT pid FROM processes WHERE session_id = ?1 AND generation = 0 GROUP BY pid HAVING count(*) > 1)",
                    params![id],
                )
                .map_err(|e| super::sql_err(&self.path, &e))?;
            }
            if let Some(a) = f.activity {
                let mut fi = tx
                    .prepare("INSERT INTO files (session_id, path, opens, open_errors, reads, bytes_read, writes, bytes_written, bytes_mapped, first_ns, last_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                for (p, s) in &a.files {
                    fi.execute(params![
                        id,
                        escape::escape(p),
                        s.opens as i64,
                        s.open_errors as i64,
                        s.reads as i64,
                        s.bytes_read as i64,
                        s.writes as i64,
                        s.bytes_written as i64,
                        s.bytes_mapped as i64,
                        s.first_ns as i64,
                        s.last_ns as i64
                    ])
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                }
                let mut ep = tx
                    .prepare("INSERT INTO endpoints (session_id, endpoint, connects, binds, accepts, bytes_sent, bytes_received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                for (k, e) in &a.endpoints {
                    ep.execute(params![
                        id,
                        k,
                        e.connects as i64,
                        e.binds as i64,
                        e.accepts as i64,
                        e.bytes_sent as i64,
                        e.bytes_received as i64
                    ])
                    .map_err(|e| super::sql_err(&self.path, &e))?;
                }
            }
            tx.execute(
                "UPDATE sessions SET status = ?2, ended_ns = ?3, ended_at = ?4, exit_status = ?5, summary = ?6, final_digest = ?7, batches = ?8, events = ?9, trigger = ?10 WHERE id = ?1",
                params![
                    id,
                    f.status,
                    f.ended_ns as i64,
                    f.ended_at,
                    f.exit_status.to_string(),
                    f.summary,
                    f.final_digest,
                    f.batches as i64,
                    f.events as i64,
                    f.trigger
                ],
            )
            .map_err(|e| super::sql_err(&self.path, &e))?;
        }
        tx.commit().map_err(|e| super::sql_err(&self.path, &e))
    }
}

/// The processes table's row insert.
pub const INSERT_PROCESS: &str = "INSERT INTO processes (session_id, pid, ppid, tree, comm, exe, cmdline, uid, cgroup, container, start_ns, exit_ns, origin, reason, threads, calls, errors, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

/// Writes one process's row (`calls` = its calls and errors, when known).
pub fn insert_process(
    st: &mut rusqlite::Statement<'_>,
    session: i64,
    p: &Process,
    calls: Option<(u64, u64)>,
) -> rusqlite::Result<()> {
    let j = p.json();
    let (calls, errors) = calls.map_or((None, None), |(c, e)| (Some(c as i64), Some(e as i64)));
    st.execute(params![
        session,
        p.pid,
        p.ppid,
        p.tree,
        escape::escape(&p.comm),
        p.exe.as_deref().map(escape::escape),
        j["cmdline"].to_string(),
        p.uid,
        j["cgroup"].as_str(),
        p.container,
        p.start_ns.map(|t| t as i64),
        p.exit_ns.map(|t| t as i64),
        j["origin"].as_str(),
        p.reason,
        p.threads.len() as i64,
        calls,
        errors,
        p.generation
    ])
    .map(|_| ())
}
