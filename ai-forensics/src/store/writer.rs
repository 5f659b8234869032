//! The store's writer thread: records arrive in batches from the consumer
//! and are committed in sealed transactions, at least every half second, so
//! a `kill -9` of the recorder loses at most the batch in flight.
use std::{
    sync::{
        Arc, Mutex,
        mpsc::{Receiver, RecvTimeoutError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use rusqlite::params;

use super::{
    Store,
    chain::{BatchHeader, GENESIS, Sealer},
};

/// One record on its way to the store: its sequence number and the line
/// exactly as written live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// Sequence number in the session's stream.
    pub seq: u64,
    /// The serialised record.
    pub line: crate::output::json::Line,
}

/// Messages to the writer.
pub enum StoreMsg {
    /// Records to append.
    Records(Vec<Emitted>),
    /// Records the store could not take (queue full): recorded as a gap.
    Gap {
        /// How many.
        count: u64,
        /// First lost record's time.
        first_ts_ns: u64,
        /// Last lost record's time.
        last_ts_ns: u64,
    },
    /// Exited processes the process table forgot: written to the
    /// processes table now, so the store keeps every process.
    Processes(Vec<crate::state::procs::Process>),
    /// Per-interval syscall counts for the timeline.
    Timeline {
        /// End of the interval.
        ts_ns: u64,
        /// (syscall, calls, errors) in the interval.
        rows: Vec<(String, u64, u64)>,
    },
}

/// What the writer did.
#[derive(Clone, Debug, Default)]
pub struct WriterStats {
    /// Sealed batches.
    pub batches: u64,
    /// Records committed.
    pub events: u64,
    /// Records that could not be committed (write errors, full disk).
    pub failed: u64,
    /// Last write error.
    pub error: Option<String>,
    /// Digest of the last sealed batch.
    pub last_digest: [u8; 32],
    /// Anchor records of sealed batches not yet handed to the exporters.
    pub anchors: Vec<String>,
    /// Anchors written to the anchor file.
    pub anchored: u64,
    /// Last error writing the anchor file.
    pub anchor_error: Option<String>,
}

/// Where each sealed batch's digest goes as it is sealed, besides the store.
#[derive(Debug, Default)]
pub struct AnchorOut {
    /// An append-only file (`--anchor`), one JSON line per batch.
    pub file: Option<std::fs::File>,
    /// Whether exporters take anchor records.
    pub export: bool,
    /// Fields every anchor carries: store path, host, session start.
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// Batches kept for the exporters at most, if the consumer stops draining.
const ANCHORS_HELD: usize = 65_536;

/// Records per sealed batch at most.
const BATCH_MAX: usize = 4_096;
/// Longest time records wait before they are committed.
const SEAL_EVERY: Duration = Duration::from_millis(500);

struct Writer {
    store: Store,
    session: i64,
    pending: Vec<Emitted>,
    gap: u64,
    gap_span: Option<(u64, u64)>,
    timeline: Vec<(u64, String, u64, u64)>,
    procs: Vec<crate::state::procs::Process>,
    stats: Arc<Mutex<WriterStats>>,
    prev: [u8; 32],
    batch: u64,
    anchor: AnchorOut,
}

impl Writer {
    /// The anchor record of a sealed batch (the `anchor` record type).
    fn anchor_line(&self, h: &BatchHeader, prev: &[u8; 32], digest: &[u8; 32]) -> String {
        let mut d = self.anchor.context.clone();
        d.insert("session".into(), self.session.into());
        for (k, v) in [
            ("batch", h.batch),
            ("first_seq", h.first_seq),
            ("last_seq", h.last_seq),
            ("count", h.count),
            ("gap_before", h.gap_before),
        ] {
            d.insert(k.into(), v.into());
        }
        d.insert("prev_digest".into(), hex::encode(prev).into());
        d.insert("digest".into(), hex::encode(digest).into());
        serde_json::json!({
            "v": 1,
            "type": "anchor",
            "unix_ns": crate::export::unix_now_ns(),
            "detail": d,
        })
        .to_string()
    }

    /// Sends a sealed batch's digest out: the anchor file (synced before
    /// the next batch is taken) and the exporters' queue.
    fn anchor(
        &mut self,
        h: &BatchHeader,
        prev: &[u8; 32],
        digest: &[u8; 32],
        st: &mut WriterStats,
    ) {
        if self.anchor.file.is_none() && !self.anchor.export {
            return;
        }
        let line = self.anchor_line(h, prev, digest);
        if let Some(f) = &mut self.anchor.file {
            use std::io::Write as _;
            let r = f
                .write_all(line.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_data());
            match r {
                Ok(()) => st.anchored += 1,
                Err(e) => {
                    if st.anchor_error.is_none() {
                        tracing::error!("anchor file: {e}; batches are no longer anchored there");
                    }
                    st.anchor_error = Some(e.to_string());
                }
            }
        }
        if self.anchor.export && st.anchors.len() < ANCHORS_HELD {
            st.anchors.push(line);
        }
    }

    fn seal(&mut self) {
        if self.pending.is_empty() && self.timeline.is_empty() && self.procs.is_empty() {
            return;
        }
        let r = self.commit();
        let stats = Arc::clone(&self.stats);
        let mut st = stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match r {
            Ok(Some((h, d))) => {
                st.batches += 1;
                st.events += self.pending.len() as u64;
                st.last_digest = d;
                let prev = self.prev;
                self.anchor(&h, &prev, &d, &mut st);
                self.prev = d;
            }
            Ok(None) => {}
            Err(e) => {
                // The records are lost for the store (the live stream and
                // the in-kernel counts still have them); say so.
                if st.error.is_none() {
                    tracing::error!("store: {e}; records are no longer being stored");
                }
                st.failed += self.pending.len() as u64;
                st.error = Some(e.to_string());
                self.batch -= 1;
            }
        }
        self.pending.clear();
        self.timeline.clear();
        self.procs.clear();
    }

    fn commit(&mut self) -> rusqlite::Result<Option<(BatchHeader, [u8; 32])>> {
        let tx = self.store.conn.transaction()?;
        {
            let mut tl = tx.prepare_cached("INSERT INTO timeline (session_id, ts_ns, syscall, count, errors) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (ts, name, c, e) in &self.timeline {
                tl.execute(params![
                    self.session,
                    *ts as i64,
                    name,
                    *c as i64,
                    *e as i64
                ])?;
            }
            let mut pr = tx.prepare_cached(super::session::INSERT_PROCESS)?;
            for p in &self.procs {
                super::session::insert_process(&mut pr, self.session, p, None)?;
            }
        }
        let digest = if self.pending.is_empty() {
            None
        } else {
            self.batch += 1;
            let h = BatchHeader {
                batch: self.batch,
                first_seq: self.pending[0].seq,
                last_seq: self.pending[self.pending.len() - 1].seq,
                count: self.pending.len() as u64,
                gap_before: self.gap,
            };
            let mut sealer = Sealer::new(&self.prev, &h);
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO events (id, session_id, seq, batch, ts_ns, type, pid, tid, syscall, path, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for e in &self.pending {
                    let l = &e.line;
                    ins.execute(params![
                        super::event_rowid(self.session, e.seq),
                        self.session,
                        e.seq as i64,
                        h.batch as i64,
                        l.ts_ns.map(|t| t as i64),
                        l.kind,
                        l.pid,
                        l.tid,
                        l.syscall,
                        l.path,
                        l.json
                    ])?;
                    sealer.record(e.seq, &l.json);
                }
                // Alerts and actions are also indexed in their own tables.
                let mut al = tx.prepare_cached("INSERT INTO alerts (session_id, seq, ts_ns, rule, severity, action, pid, reason, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?;
                let mut ac = tx.prepare_cached("INSERT INTO actions (session_id, seq, ts_ns, action, target, reason, ok, latency_ns, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?;
                for e in self
                    .pending
                    .iter()
                    .filter(|e| e.line.kind == "alert" || e.line.kind == "action")
                {
                    let v: serde_json::Value =
                        serde_json::from_str(&e.line.json).unwrap_or_default();
                    let d = &v["detail"];
                    if e.line.kind == "alert" {
                        al.execute(params![
                            self.session,
                            e.seq as i64,
                            e.line.ts_ns.map(|t| t as i64),
                            d["rule"].as_str(),
                            d["severity"].as_str(),
                            d["action"].as_str(),
                            e.line.pid,
                            d["reason"].as_str(),
                            e.line.json
                        ])?;
                    } else {
                        let target = d["tree"]
                            .as_u64()
                            .map(|t| format!("tree {t}"))
                            .or_else(|| d["pid"].as_u64().map(|p| format!("pid {p}")));
                        ac.execute(params![
                            self.session,
                            e.seq as i64,
                            e.line.ts_ns.map(|t| t as i64),
                            d["action"].as_str(),
                            target,
                            d["reason"].as_str().or(d["rule"].as_str()),
                            d["ok"].as_bool(),
                            d["latency_ns"].as_i64(),
                            e.line.json
                        ])?;
                    }
                }
            }
            let d = sealer.finish();
            tx.execute(
                "INSERT INTO batches (session_id, batch, first_seq, last_seq, count, gap_before, prev_digest, digest, sealed_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    self.session,
                    h.batch as i64,
                    h.first_seq as i64,
                    h.last_seq as i64,
                    h.count as i64,
                    h.gap_before as i64,
                    hex::encode(self.prev),
                    hex::encode(d),
                    crate::output::clock::Clock::monotonic_now() as i64
                ],
            )?;
            if self.gap > 0 {
                let (f, l) = self.gap_span.unwrap_or_default();
                tx.execute(
                    "INSERT INTO gaps (session_id, batch, count, first_ts_ns, last_ts_ns, cause) VALUES (?1, ?2, ?3, ?4, ?5, 'store queue full')",
                    params![self.session, h.batch as i64, self.gap as i64, f as i64, l as i64],
                )?;
            }
            Some((h, d))
        };
        tx.commit()?;
        if digest.is_some() {
            self.gap = 0;
            self.gap_span = None;
        }
        Ok(digest)
    }
}

/// Starts the writer for session `session`; it returns the store when the
/// channel closes, after committing everything it received.
pub fn spawn(
    store: Store,
    session: i64,
    rx: Receiver<StoreMsg>,
    stats: Arc<Mutex<WriterStats>>,
    anchor: AnchorOut,
) -> std::io::Result<JoinHandle<Store>> {
    thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            let mut w = Writer {
                store,
                session,
                pending: Vec::new(),
                gap: 0,
                gap_span: None,
                timeline: Vec::new(),
                procs: Vec::new(),
                stats,
                prev: GENESIS,
                batch: 0,
                anchor,
            };
            let mut last = Instant::now();
            let mut last_trim = Instant::now();
            loop {
                let wait = SEAL_EVERY.saturating_sub(last.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(StoreMsg::Records(mut v)) => {
                        w.pending.append(&mut v);
                        if w.pending.len() >= BATCH_MAX {
                            w.seal();
                            last = Instant::now();
                        }
                    }
                    Ok(StoreMsg::Gap {
                        count,
                        first_ts_ns,
                        last_ts_ns,
                    }) => {
                        w.gap += count;
                        w.gap_span = Some(match w.gap_span {
                            Some((f, _)) => (f, last_ts_ns),
                            None => (first_ts_ns, last_ts_ns),
                        });
                    }
                    Ok(StoreMsg::Processes(mut v)) => w.procs.append(&mut v),
                    Ok(StoreMsg::Timeline { ts_ns, rows }) => {
                        w.timeline
                            .extend(rows.into_iter().map(|(n, c, e)| (ts_ns, n, c, e)));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        w.seal();
                        return w.store;
                    }
                }
                if last.elapsed() >= SEAL_EVERY {
                    w.seal();
                    last = Instant::now();
                }
                if last_trim.elapsed() >= TRIM_EVERY {
                    trim_heap();
                    last_trim = Instant::now();
                }
            }
        })
}

/// How often the writer hands freed heap back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Records are allocated on the consumer thread and freed here; glibc keeps
/// what another thread freed in this thread's arena, which then creeps up
/// over hours of recording. Giving the free pages back keeps RSS flat.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    {
        // Where a long recording's memory sits: data in use, free memory
        // the allocator holds, and SQLite's own share of what is in use
        // (mallinfo2 walks every arena: only when it will be logged).
        if tracing::enabled!(tracing::Level::DEBUG) {
            // SAFETY: mallinfo2 only reads the allocator's counters,
            // sqlite3_memory_used SQLite's.
            let (mi, sqlite) = unsafe { (libc::mallinfo2(), rusqlite::ffi::sqlite3_memory_used()) };
            tracing::debug!(
                "store heap: malloc in use {} KiB, free held {} KiB (top {} KiB), mmapped {} KiB; sqlite {} KiB",
                mi.uordblks / 1024,
                mi.fordblks / 1024,
                mi.keepcost / 1024,
                mi.hblkhd / 1024,
                sqlite / 1024
            );
        }
        // SAFETY: malloc_trim only releases free heap memory; no pointers
        // are invalidated.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
