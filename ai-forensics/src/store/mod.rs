//! The embedded forensic store: one SQLite database (bundled SQLite, WAL)
//! holding every session's record.
//!
//! * `writer`: the recording thread; batched, sealed transactions.
//! * `chain`: the SHA-256 hash chain over sealed batches, and `verify`.
//! * `audit`: indexed columns against their records, and the store against
//!   anchors kept elsewhere.
//! * `query`: sessions, summaries, queries and replay.
//!
//! Records are never rewritten: a session's events are appended in sealed
//! batches; at the end the session row gets its summary and final digest.
pub mod audit;
pub mod chain;
pub mod query;
pub mod session;
pub mod writer;

use std::{
    fs,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::{Error, Result};

/// Version of the database layout this build reads and writes.
pub const SCHEMA_VERSION: i64 = 3;
/// Where recordings go unless `--store` says otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/ai-forensics/ai-forensics.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    started_ns INTEGER, ended_ns INTEGER, started_at TEXT, ended_at TEXT,
    command TEXT, host TEXT, kernel TEXT, tool_version TEXT, options TEXT,
    recorder_pid INTEGER, boot_id TEXT, clock_offset_ns TEXT,
    exit_status TEXT, summary TEXT, final_digest TEXT, batches INTEGER, events INTEGER,
    flight_recorder TEXT, trigger TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL, seq INTEGER NOT NULL, batch INTEGER NOT NULL,
    ts_ns INTEGER, type TEXT NOT NULL, pid INTEGER, tid INTEGER, syscall TEXT, path TEXT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    session_id INTEGER NOT NULL, batch INTEGER NOT NULL,
    first_seq INTEGER, last_seq INTEGER, count INTEGER NOT NULL, gap_before INTEGER NOT NULL,
    prev_digest TEXT NOT NULL, digest TEXT NOT NULL, sealed_ns INTEGER,
    PRIMARY KEY (session_id, batch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (
    session_id INTEGER NOT NULL, batch INTEGER NOT NULL, count INTEGER NOT NULL,
    first_ts_ns INTEGER, last_ts_ns INTEGER, cause TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processes (
    session_id INTEGER NOT NULL, pid INTEGER NOT NULL, ppid INTEGER, tree INTEGER,
    comm TEXT, exe TEXT, cmdline TEXT, uid INTEGER, cgroup TEXT, container TEXT,
    start_ns INTEGER, exit_ns INTEGER, origin TEXT, reason TEXT, threads INTEGER,
    calls INTEGER, errors INTEGER, generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS syscall_stats (
    session_id INTEGER NOT NULL, nr INTEGER NOT NULL, syscall TEXT NOT NULL,
    count INTEGER, errors INTEGER, timed INTEGER, total_ns INTEGER, min_ns INTEGER,
    avg_ns INTEGER, max_ns INTEGER, p99_ns INTEGER, lost INTEGER,
    PRIMARY KEY (session_id, nr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline (
    session_id INTEGER NOT NULL, ts_ns INTEGER NOT NULL, syscall TEXT NOT NULL,
    count INTEGER NOT NULL, errors INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    session_id INTEGER NOT NULL, path TEXT NOT NULL, opens INTEGER, open_errors INTEGER,
    reads INTEGER, bytes_read INTEGER, writes INTEGER, bytes_written INTEGER,
    bytes_mapped INTEGER, first_ns INTEGER, last_ns INTEGER
);
CREATE TABLE IF NOT EXISTS endpoints (
    session_id INTEGER NOT NULL, endpoint TEXT NOT NULL, connects INTEGER, binds INTEGER,
    accepts INTEGER, bytes_sent INTEGER, bytes_received INTEGER
);
CREATE TABLE IF NOT EXISTS alerts (
    session_id INTEGER NOT NULL, seq INTEGER, ts_ns INTEGER, rule TEXT, severity TEXT,
    action TEXT, pid INTEGER, reason TEXT, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    session_id INTEGER NOT NULL, seq INTEGER, ts_ns INTEGER, action TEXT, target TEXT,
    reason TEXT, ok INTEGER, latency_ns INTEGER, record TEXT NOT NULL
);
";

/// Bits of an event's row id taken by its sequence number.
const SEQ_BITS: u32 = 40;

/// Row id of record `seq` of session `session`. Sessions own disjoint key
/// ranges, so a session's records are one contiguous, ordered range of the
/// table's primary key: appends are cheap and no secondary index is needed
/// to read a session back in order.
#[must_use]
pub fn event_rowid(session: i64, seq: u64) -> i64 {
    (session << SEQ_BITS) | (seq as i64 & ((1 << SEQ_BITS) - 1))
}

/// First and last row id of session `session`'s records.
#[must_use]
pub fn session_range(session: i64) -> (i64, i64) {
    (
        session << SEQ_BITS,
        (session << SEQ_BITS) | ((1 << SEQ_BITS) - 1),
    )
}

/// An open store.
pub struct Store {
    /// The connection.
    pub conn: Connection,
    /// Its file.
    pub path: PathBuf,
}

fn sql_err(path: &Path, e: &rusqlite::Error) -> Error {
    let msg = e.to_string();
    if msg.contains("not a database") {
        Error::usage(format!(
            "store {}: not an ai-forensics store (file is not a database)",
            path.display()
        ))
    } else if msg.contains("readonly") || msg.contains("read-only") {
        Error::usage(format!("store {}: read-only: {msg}", path.display()))
    } else if msg.contains("disk is full") || msg.contains("database or disk is full") {
        Error::Runtime(format!("store {}: disk full", path.display()))
    } else {
        Error::Runtime(format!("store {}: {msg}", path.display()))
    }
}

/// The boot id, to tell a recorder of this boot from one of an earlier boot.
#[must_use]
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating when missing) the store at `path` for recording.
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|e| {
                Error::usage(format!(
                    "store {}: cannot create {}: {e}",
                    path.display(),
                    dir.display()
                ))
            })?;
        }
        Self::open_at(path, true)
    }

    /// Opens an existing store (for queries, replay, verify).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::usage(format!(
                "store {}: no such file",
                path.display()
            )));
        }
        Self::open_at(path, false)
    }

    fn open_at(path: &Path, create: bool) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| sql_err(path, &e))?;
        let s = Self {
            conn,
            path: path.to_path_buf(),
        };
        s.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| sql_err(path, &e))?;
        // The first statement reads the header: a non-SQLite file fails here.
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| sql_err(path, &e))?;
        if mode != "wal" {
            tracing::warn!("store {}: journal mode {mode}, not WAL", path.display());
        }
        s.conn
            .execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(|e| sql_err(path, &e))?;
        let has_meta: bool = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| sql_err(path, &e))?
            > 0;
        if has_meta {
            let v: Option<String> = s
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key='schema_version'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| sql_err(path, &e))?;
            let v: i64 = v.and_then(|v| v.parse().ok()).unwrap_or(0);
            if v > SCHEMA_VERSION {
                return Err(Error::usage(format!(
                    "store {}: written by a newer ai-forensics (schema {v}, this build reads up to {SCHEMA_VERSION})",
                    path.display()
                )));
            }
            if v < 1 {
                return Err(Error::usage(format!(
                    "store {}: not an ai-forensics store (no schema version)",
                    path.display()
                )));
            }
            if v == 2 && create {
                s.migrate_from_2()?;
            } else if v < 2 {
                return Err(Error::usage(format!(
                    "store {}: written by an older ai-forensics (schema {v}, this build reads schema {SCHEMA_VERSION}); record into a new --store",
                    path.display()
                )));
            }
        } else {
            let tables: i64 = s
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type='table'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| sql_err(path, &e))?;
            if tables > 0 || !create {
                return Err(Error::usage(format!(
                    "store {}: not an ai-forensics store (a SQLite database of something else)",
                    path.display()
                )));
            }
            s.conn
                .execute_batch(SCHEMA)
                .map_err(|e| sql_err(path, &e))?;
            s.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| sql_err(path, &e))?;
        }
        if create {
            s.mark_abandoned()?;
        }
        Ok(s)
    }

    /// Schema 2 lacked `processes.generation` (which tells apart processes
    /// that had the same pid): added in place, old rows get 0. A reader
    /// leaves a schema-2 store as it is (it never reads the column).
    fn migrate_from_2(&self) -> Result<()> {
        self.conn
            .execute_batch(
                "BEGIN;
                 ALTER TABLE processes ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
                 UPDATE meta SET value = '3' WHERE key = 'schema_version';
                 COMMIT;",
            )
            .map_err(|e| sql_err(&self.path, &e))
    }

    /// Sessions left `running` by a recorder that is gone (killed, crashed,
    /// machine rebooted) are marked `aborted`.
    pub fn mark_abandoned(&self) -> Result<usize> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, recorder_pid, boot_id FROM sessions WHERE status = 'running'")
            .map_err(|e| sql_err(&self.path, &e))?;
        let rows: Vec<(i64, i64, String)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })
            .map_err(|e| sql_err(&self.path, &e))?
            .filter_map(std::result::Result::ok)
            .collect();
        let boot = boot_id();
        let mut n = 0;
        for (id, pid, b) in rows {
            let alive = b == boot && recorder_alive(pid as u32);
            if !alive {
                let (lo, hi) = session_range(id);
                let last: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT ts_ns FROM events WHERE id BETWEEN ?1 AND ?2 ORDER BY id DESC LIMIT 1",
                        params![lo, hi],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| sql_err(&self.path, &e))?
                    .flatten();
                self.conn
                    .execute(
                        "UPDATE sessions SET status = 'aborted', ended_ns = ?2 WHERE id = ?1",
                        params![id, last],
                    )
                    .map_err(|e| sql_err(&self.path, &e))?;
                tracing::warn!(
                    "store: session {id} was left running by a recorder that is gone; marked aborted"
                );
                n += 1;
            }
        }
        Ok(n)
    }

    /// Maps a SQLite error on this store.
    #[must_use]
    pub fn err(&self, e: &rusqlite::Error) -> Error {
        sql_err(&self.path, e)
    }
}

/// Whether `pid` is a running ai-forensics recorder.
fn recorder_alive(pid: u32) -> bool {
    let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    exe.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("ai-forensics"))
        && crate::target::procfs::alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aif-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d.join("s.db")
    }

    #[test]
    fn creates_and_reopens() {
        let p = tmp("create");
        drop(Store::create(&p).unwrap());
        let s = Store::open(&p).unwrap();
        let v: String = s
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION.to_string());
    }

    #[test]
    fn migrates_schema_2() {
        let p = tmp("schema2");
        drop(Store::create(&p).unwrap());
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "ALTER TABLE processes DROP COLUMN generation;
                 UPDATE meta SET value = '2' WHERE key = 'schema_version';",
            )
            .unwrap();
        }
        // A reader takes it as it is; a writer adds the column.
        drop(Store::open(&p).unwrap());
        let s = Store::create(&p).unwrap();
        let (v, g): (String, i64) = s
            .conn
            .query_row(
                "SELECT (SELECT value FROM meta WHERE key='schema_version'), count(*) FROM pragma_table_info('processes') WHERE name = 'generation'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((v.as_str(), g), ("3", 1));
    }

    #[test]
    fn refuses_other_files() {
        let p = tmp("garbage");
        fs::write(
            &p,
            b"this is not a database, just text, long enough to have a header....",
        )
        .unwrap();
        let e = Store::create(&p).err().unwrap();
        assert!(e.to_string().contains("not an ai-forensics store"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let other = tmp("other");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(
            Store::create(&other)
                .err()
                .unwrap()
                .to_string()
                .contains("something else")
        );
        assert!(Store::open(&tmp("missing")).is_err());
    }

    fn with_schema(name: &str, version: &str) -> PathBuf {
        let p = tmp(name);
        drop(Store::create(&p).unwrap());
        Connection::open(&p)
            .unwrap()
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [version],
            )
            .unwrap();
        p
    }

    #[test]
    fn refuses_a_future_schema() {
        let e = Store::open(&with_schema("future", "99")).err().unwrap();
        assert!(
            e.to_string().contains("newer ai-forensics (schema 99"),
            "{e}"
        );
    }

    #[test]
    fn refuses_an_older_schema_for_reading_and_recording() {
        let p = with_schema("older", "1");
        for e in [
            Store::open(&p).err().unwrap(),
            Store::create(&p).err().unwrap(),
        ] {
            assert!(
                e.to_string().contains("older ai-forensics (schema 1"),
                "{e}"
            );
        }
    }

    #[test]
    fn abandoned_sessions_are_marked_aborted() {
        let p = tmp("abandon");
        let s = Store::create(&p).unwrap();
        s.conn.execute("INSERT INTO sessions (id, status, recorder_pid, boot_id) VALUES (1, 'running', 999999999, ?1)", params![boot_id()]).unwrap();
        assert_eq!(s.mark_abandoned().unwrap(), 1);
        let st: String = s
            .conn
            .query_row("SELECT status FROM sessions WHERE id=1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(st, "aborted");
    }
}
