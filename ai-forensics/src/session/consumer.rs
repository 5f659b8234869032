//! The consumer thread: decodes batches, keeps the process and fd tables,
//! accounts activity, applies selectors, and emits records: every record is
//! built once as JSON, then written to the event stream (JSON Lines or text
//! printed from it) and handed to the store (directly, or through the
//! flight recorder's rolling window).
use std::{
    collections::{HashMap, VecDeque},
    io::{self, BufWriter, Write},
    sync::{
        Arc, Mutex,
        mpsc::{Receiver, SyncSender, TrySendError},
    },
    time::Instant,
};

use serde_json::{Value, json};

use super::options::{Format, Mode};
use crate::{
    aggregate::activity::Activity,
    decode::{self, Record, Syscall, args},
    loader::Targets,
    output::{
        clock::Clock,
        json::{self, Ctx},
        text,
    },
    state::{
        fds::FdTables,
        procs::{Origin, Processes},
    },
    store::writer::{Emitted, StoreMsg},
    syscall::{Selection, signature::Ret, table as systable},
    target::{discover, select::Selectors},
};

/// Messages to the consumer.
pub enum Msg {
    /// Records from the ring buffer.
    Batch(crate::reader::Batch),
    /// A process that became a target outside the stream (attach, launch).
    Observe {
        /// Process id.
        pid: u32,
        /// Tree.
        tree: u32,
        /// How it came under tracing.
        origin: Origin,
        /// Why.
        reason: Option<String>,
        /// Generation of its per-process counts.
        generation: u32,
    },
    /// Write the flight recorder's window out now (signal, `dump`, alert).
    Trigger(String),
    /// A verdict from the external analyser.
    Verdict(super::respond::Verdict),
    /// A call the seccomp supervisor refused before it ran.
    Denied(Box<crate::decode::Denied>),
    /// CUDA libraries with uprobes attached, or why GPU accounting is idle.
    Gpu(Vec<String>, Option<String>),
    /// Files the TLS uprobes were attached to (functions), or why not.
    TlsFiles(Vec<(String, std::result::Result<Vec<String>, String>)>),
    /// A configuration reload (SIGHUP): new rules and/or new exporters.
    Reload {
        /// Rules to evaluate from now on (`Some(None)`: no rules).
        rules: Option<Option<crate::policy::rules::Rules>>,
        /// Exporters that replace the running ones.
        exporters: Option<crate::export::Exporters>,
    },
}

impl From<crate::reader::Batch> for Msg {
    fn from(b: crate::reader::Batch) -> Self {
        Self::Batch(b)
    }
}

/// Counters the main thread reads while the session runs.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    /// Records decoded.
    pub records: u64,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// Records the kernel reported lost (sum of `lost` markers).
    pub lost_reported: u64,
    /// Processes believed alive.
    pub live: usize,
    /// At least one process was ever traced.
    pub seen_any: bool,
    /// The output was closed by its reader.
    pub output_closed: bool,
    /// Output write error other than a closed pipe.
    pub output_error: Option<String>,
    /// Records the store could not take (its queue was full).
    pub store_dropped: u64,
}

/// The event stream's destination.
pub struct Sink {
    /// Format.
    pub format: Format,
    /// Writer.
    pub out: BufWriter<Box<dyn Write + Send>>,
}

/// The flight recorder: a rolling window of records kept in memory, written
/// to the store only when a trigger fires (and everything after it).
pub struct Flight {
    /// Window length.
    pub window_ns: u64,
    /// Records in the window.
    pub buf: VecDeque<Emitted>,
    /// Bound on records kept, whatever the window.
    pub max_records: usize,
    /// Set once triggered: records then go straight to the store.
    pub triggered: Option<String>,
    /// Records that left the window untriggered.
    pub expired: u64,
}

/// Where stored records go.
pub struct StoreLink {
    /// The writer's queue.
    pub tx: SyncSender<StoreMsg>,
    /// Records waiting for the next send.
    pub pending: Vec<Emitted>,
    /// Records lost since the last successful send: (count, first ts, last ts).
    pub gap: Option<(u64, u64, u64)>,
    /// Rolling window, when `--flight-recorder` is on.
    pub flight: Option<Flight>,
    /// When records were last handed over.
    pub last_flush: Instant,
    /// The writer's counters, where sealed batches' anchors wait for the
    /// exporters.
    pub writer: Arc<Mutex<crate::store::writer::WriterStats>>,
}

/// State owned by the consumer thread, handed back when it ends.
pub struct Consumer {
    /// Clock conversion.
    pub clock: Clock,
    /// Processes seen.
    pub procs: Processes,
    /// fd tables.
    pub fds: FdTables,
    /// Activity from events.
    pub activity: Activity,
    /// Selected syscalls (what is written).
    pub selection: Selection,
    /// Mode.
    pub mode: Mode,
    /// Output.
    pub sink: Option<Sink>,
    /// Store.
    pub store: Option<StoreLink>,
    /// Selectors that add targets.
    pub selectors: Selectors,
    /// Kernel target table.
    pub targets: Targets,
    /// Next tree id for selector matches.
    pub next_tree: u32,
    /// Trees of the watched cgroups, with what each is.
    pub cgroup_trees: std::collections::BTreeMap<u32, String>,
    /// Shared counters.
    pub shared: Arc<Mutex<Shared>>,
    /// Sequence number of the next record.
    pub seq: u64,
    /// Processes matched by selectors.
    pub matched: u64,
    /// Whether to follow a process table in `/proc` (not for `--all`).
    pub track_live: bool,
    /// execve entry records waiting for their exit record, by thread.
    pub pending_exec: HashMap<u32, Syscall>,
    /// Rules and enforcement, when `--rules` is given.
    pub policy: Option<super::respond::Policy>,
    /// The external analyser, when `--analyser` is given.
    pub analyser: Option<super::respond::AnalyserLink>,
    /// AI-aware analysis (events mode).
    pub ai: Option<crate::ai::AiState>,
    /// Exporters (agent mode).
    pub exporters: crate::export::Exporters,
    /// Exporters replaced by a reload, finishing in the background.
    pub retired: Arc<Mutex<Vec<crate::export::Counts>>>,
    /// Per-target counts for the metrics endpoint.
    pub flow: Option<crate::metrics::FlowCounter>,
    /// TLS plaintext capture (`--tls-capture`).
    pub tls: Option<super::tls::TlsLink>,
    /// Ring-buffer overflow alerts: time of the last one and records lost
    /// since (one alert per [`OVERFLOW_ALERT_EVERY_NS`]).
    pub overflow: (Option<u64>, u64),
}

/// Records other than syscalls kept back for the next send when the
/// store's queue is full.
const KEEP_UNDER_PRESSURE: usize = 65_536;

/// At most one overflow alert in this many nanoseconds.
pub const OVERFLOW_ALERT_EVERY_NS: u64 = 10_000_000_000;

impl Consumer {
    pub(super) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            clock: &self.clock,
            procs: &self.procs,
            fds: &self.fds,
        }
    }

    fn shared_update(&self, f: impl FnOnce(&mut Shared)) {
        let mut sh = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut sh);
    }

    fn note_write(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            let closed = e.kind() == io::ErrorKind::BrokenPipe;
            self.shared_update(|s| {
                if closed {
                    s.output_closed = true;
                } else {
                    s.output_error = Some(e.to_string());
                }
            });
            self.sink = None;
        }
    }

    /// Whether records are needed at all (an event stream or a store).
    pub(super) fn emitting(&self) -> bool {
        self.sink.is_some()
            || self.store.is_some()
            || !self.exporters.list.is_empty()
            || self.flow.is_some()
    }

    /// Emits one record: stream and store. `l` carries `self.seq`.
    pub(super) fn emit(&mut self, l: json::Line) {
        let seq = self.seq;
        self.seq += 1;
        if let Some(sink) = &mut self.sink {
            let r = match sink.format {
                Format::Json => sink
                    .out
                    .write_all(l.json.as_bytes())
                    .and_then(|()| sink.out.write_all(b"\n")),
                Format::Text => {
                    let v: Value = serde_json::from_str(&l.json).unwrap_or(Value::Null);
                    match text::line(&v) {
                        Some(t) => sink
                            .out
                            .write_all(t.as_bytes())
                            .and_then(|()| sink.out.write_all(b"\n")),
                        None => Ok(()),
                    }
                }
            };
            self.note_write(r);
        }
        if !self.exporters.list.is_empty() && self.exporters.wants(l.kind) {
            let r = std::sync::Arc::new(crate::export::Exported {
                json: l.json.clone(),
                kind: l.kind,
                ts_ns: l.ts_ns,
                unix_ns: l
                    .ts_ns
                    .map_or_else(crate::export::unix_now_ns, |t| self.clock.unix_ns(t)),
                pid: l.pid,
                tid: l.tid,
            });
            self.exporters.offer(&r);
        }
        if let Some(f) = &mut self.flow {
            f.record(l.kind, &l.json);
        }
        if let Some(a) = &mut self.analyser
            && matches!(
                l.kind,
                "syscall" | "process" | "exec" | "fork" | "exit" | "alert" | "llm"
            )
        {
            a.pending.push(l.json.clone());
        }
        let Some(store) = &mut self.store else { return };
        let e = Emitted { seq, line: l };
        match &mut store.flight {
            Some(f) if f.triggered.is_none() => {
                let now = e.line.ts_ns.unwrap_or(0);
                f.buf.push_back(e);
                while f.buf.len() > f.max_records
                    || f.buf
                        .front()
                        .is_some_and(|x| x.line.ts_ns.is_some_and(|t| t + f.window_ns < now))
                {
                    f.buf.pop_front();
                    f.expired += 1;
                }
            }
            _ => store.pending.push(e),
        }
    }

    /// Hands records to the store in chunks (fewer, larger messages): when
    /// enough have accumulated or some time has passed.
    fn maybe_flush_store(&mut self) {
        self.flush_analyser();
        if let Some(s) = &self.store {
            let anchors = s
                .writer
                .lock()
                .map(|mut w| std::mem::take(&mut w.anchors))
                .unwrap_or_default();
            self.export_anchors(anchors);
        }
        let due = self
            .store
            .as_ref()
            .is_some_and(|s| s.pending.len() >= 4096 || s.last_flush.elapsed().as_millis() >= 100);
        if due {
            self.flush_store();
        }
    }

    /// Sends pending records to the store without ever blocking: when its
    /// queue is full they are counted as a gap, recorded with the next batch.
    fn flush_store(&mut self) {
        let Some(store) = &mut self.store else { return };
        store.last_flush = Instant::now();
        // Processes the table forgot go to the store's processes table.
        let spilled = self.procs.take_spilled();
        if !spilled.is_empty()
            && let Err(TrySendError::Full(StoreMsg::Processes(back))) =
                store.tx.try_send(StoreMsg::Processes(spilled))
        {
            self.procs.unspill(back);
        }
        if store.pending.is_empty() {
            return;
        }
        if let Some((count, first, last)) = store.gap {
            match store.tx.try_send(StoreMsg::Gap {
                count,
                first_ts_ns: first,
                last_ts_ns: last,
            }) {
                Ok(()) => store.gap = None,
                Err(_) => {
                    let shed = shed(&mut store.pending);
                    let n = shed.len() as u64;
                    let (f, l) = span(&shed);
                    store.gap = Some((count + n, first, l.max(last).max(f)));
                    self.shared_update(|s| s.store_dropped += n);
                    return;
                }
            }
        }
        // The next batch starts at this one's size: no regrowing (and no
        // trail of freed smaller buffers) on every batch.
        let cap = store.pending.len();
        let batch = std::mem::replace(&mut store.pending, Vec::with_capacity(cap));
        match store.tx.try_send(StoreMsg::Records(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(StoreMsg::Records(mut b))) => {
                let shed = shed(&mut b);
                store.pending = b;
                if shed.is_empty() {
                    return;
                }
                let n = shed.len() as u64;
                let (f, l) = span(&shed);
                store.gap = Some(match store.gap {
                    Some((c, f0, _)) => (c + n, f0, l),
                    None => (n, f, l),
                });
                self.shared_update(|s| s.store_dropped += n);
            }
            Err(TrySendError::Disconnected(StoreMsg::Records(b))) => {
                let n = b.len() as u64;
                let (f, l) = span(&b);
                store.gap = Some(match store.gap {
                    Some((c, f0, _)) => (c + n, f0, l),
                    None => (n, f, l),
                });
                self.shared_update(|s| s.store_dropped += n);
            }
            Err(_) => {}
        }
    }

    /// Offers sealed batches' anchor records to the exporters (not to the
    /// stream or the store: they describe the store).
    pub fn export_anchors(&mut self, lines: Vec<String>) {
        if lines.is_empty() || !self.exporters.wants("anchor") {
            return;
        }
        for json in lines {
            let r = std::sync::Arc::new(crate::export::Exported {
                json,
                kind: "anchor",
                ts_ns: None,
                unix_ns: crate::export::unix_now_ns(),
                pid: None,
                tid: None,
            });
            self.exporters.offer(&r);
        }
    }

    /// Writes the session header record.
    pub fn header(&mut self, detail: Value) {
        let l = json::line(
            &self.ctx(),
            self.seq,
            "session",
            Some(Clock::monotonic_now()),
            None,
            None,
            detail,
            None,
        );
        self.emit(l);
    }

    /// Writes a record that is not about one process (summary, marker).
    pub fn write_record<D: serde::Serialize>(&mut self, kind: &'static str, detail: D) {
        let l = json::line(
            &self.ctx(),
            self.seq,
            kind,
            Some(Clock::monotonic_now()),
            None,
            None,
            detail,
            None,
        );
        self.emit(l);
    }

    fn process_record(&mut self, pid: u32, ts: Option<u64>) {
        let l = json::process(&self.ctx(), self.seq, pid, ts);
        self.emit(l);
    }

    /// Processes the table let go (on a fork, an observation or an exit)
    /// take their timelines and memory counters with them, at once, before
    /// their pids can be reused.
    fn release_forgotten(&mut self) {
        for pid in self.procs.take_forgotten() {
            self.activity.forget(pid);
            if let Some(ai) = &mut self.ai {
                ai.phases.forget(pid);
            }
        }
    }

    /// Handles a message.
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Observe {
                pid,
                tree,
                origin,
                reason,
                generation,
            } => {
                let now = Clock::monotonic_now();
                self.observed(pid, tree, origin, reason, generation, now);
            }
            Msg::Batch(b) => {
                let mut n = 0u64;
                let mut errors = 0u64;
                for bytes in b.records() {
                    match decode::record(bytes) {
                        Ok(r) => {
                            n += 1;
                            self.record(r);
                        }
                        Err(e) => {
                            errors += 1;
                            tracing::debug!("undecodable record: {e}");
                        }
                    }
                }
                if let Some(s) = &mut self.sink {
                    let r = s.out.flush();
                    self.note_write(r);
                }
                self.maybe_flush_store();
                let live = self.procs.live().len();
                self.shared_update(|s| {
                    s.records += n;
                    s.decode_errors += errors;
                    s.live = live;
                });
            }
            Msg::Trigger(reason) => self.trigger(&reason),
            Msg::Gpu(libs, note) => {
                if let Some(ai) = &mut self.ai {
                    ai.gpu.libraries = libs;
                    ai.gpu.note = note;
                }
            }
            Msg::TlsFiles(files) => {
                if let Some(t) = &mut self.tls {
                    for (f, r) in files {
                        match r {
                            Ok(fns) => t.tracker.files.push((f, fns)),
                            Err(why) => t.tracker.failed.push((f, why)),
                        }
                    }
                }
            }
            Msg::Verdict(v) => {
                self.verdict(&v);
                self.maybe_flush_store();
            }
            Msg::Reload { rules, exporters } => self.reload(rules, exporters),
            Msg::Denied(d) => {
                self.denied(&d);
                self.maybe_flush_store();
            }
        }
    }

    /// Counters of the running and the retired exporters.
    #[must_use]
    pub fn export_counts(&self) -> Vec<crate::export::Counts> {
        let mut all = self.retired.lock().map(|r| r.clone()).unwrap_or_default();
        all.extend(self.exporters.counts());
        all
    }

    /// Applies a reload between two batches: no record is lost or seen
    /// twice. Replaced exporters deliver what they hold in the background.
    fn reload(
        &mut self,
        rules: Option<Option<crate::policy::rules::Rules>>,
        exporters: Option<crate::export::Exporters>,
    ) {
        if let Some(rules) = rules {
            match (rules, &mut self.policy) {
                (Some(r), Some(p)) => p.engine = crate::policy::engine::Engine::new(r),
                (Some(r), None) => {
                    self.policy = Some(super::respond::Policy::new(
                        crate::policy::engine::Engine::new(r),
                        crate::enforce::Enforcer::new(self.targets.clone()),
                    ));
                }
                (None, p) => {
                    if let Some(p) = p {
                        p.engine = crate::policy::engine::Engine::new(Default::default());
                    }
                }
            }
        }
        if let Some(new) = exporters {
            let old = std::mem::replace(&mut self.exporters, new);
            let retired = Arc::clone(&self.retired);
            let _ = std::thread::Builder::new()
                .name("export-retire".into())
                .spawn(move || {
                    let counts = old.finish(std::time::Duration::from_secs(10));
                    if let Ok(mut r) = retired.lock() {
                        r.extend(counts);
                    }
                });
        }
    }

    /// Fires the flight recorder: its window goes to the store, and from now
    /// on every record does.
    pub fn trigger(&mut self, reason: &str) {
        let Some(store) = &mut self.store else { return };
        let Some(f) = &mut store.flight else { return };
        if f.triggered.is_some() {
            return;
        }
        f.triggered = Some(reason.to_owned());
        let window: Vec<Emitted> = f.buf.drain(..).collect();
        let expired = f.expired;
        store.pending.extend(window);
        tracing::warn!("flight recorder triggered ({reason}): writing the window out");
        self.write_record(
            "trigger",
            json!({"reason": reason, "expired_before_window": expired}),
        );
        self.flush_store();
    }

    fn record(&mut self, r: Record) {
        match r {
            Record::Syscall(s) => self.syscall(s),
            Record::Lost(l) => {
                self.shared_update(|s| s.lost_reported += l.count);
                if self.emitting() {
                    let line = json::lost(&self.ctx(), self.seq, &l);
                    self.emit(line);
                }
                self.overflowed(&l);
            }
            Record::Fork(f) => {
                if self.procs.fork(&f) {
                    self.activity.born(f.child_tgid);
                    self.release_forgotten();
                    self.fds.fork(f.tgid, f.child_tgid);
                    self.engine_fork(f.tgid, f.child_tgid, f.tree);
                    self.shared_update(|s| s.seen_any = true);
                }
                if self.emitting() {
                    let line = json::fork(&self.ctx(), self.seq, &f);
                    self.emit(line);
                }
            }
            Record::Exec(e) => {
                let joined = (self.track_live && !self.procs.live().contains(&e.tgid))
                    .then(|| self.cgroup_trees.get(&e.tree).cloned())
                    .flatten();
                let origin = if joined.is_some() {
                    Origin::Matched
                } else {
                    Origin::Forked
                };
                self.procs.exec(&e, origin);
                if let Some(why) = joined {
                    self.procs.set_reason(e.tgid, why);
                }
                self.engine_observe(e.tgid);
                self.ai_process(e.tgid, false);
                self.tls_exec(e.tgid);
                if let Some(ai) = &mut self.ai {
                    let dev = ai.on_exec(&e.filename);
                    self.deviations(e.tgid, e.tid, e.tree, e.ts_ns, dev);
                }
                if e.old_tid != e.tid
                    && let Some(p) = self.pending_exec.remove(&e.old_tid)
                {
                    self.pending_exec.insert(e.tid, p);
                }
                if self.emitting() {
                    let line = json::exec(&self.ctx(), self.seq, &e);
                    self.emit(line);
                }
                self.process_record(e.tgid, Some(e.ts_ns));
            }
            Record::Exit(e) => {
                if let Some(p) = self.pending_exec.remove(&e.tid) {
                    self.write_syscall(&p);
                }
                if self.procs.exit(&e) {
                    self.tls_exit(e.tgid);
                    self.fds.exit(e.tgid);
                    self.denial_effective(e.tgid, e.ts_ns);
                    if let Some(ai) = &mut self.ai {
                        ai.on_exit(e.tgid);
                    }
                    if let Some(p) = &mut self.policy {
                        p.engine.exited(e.tgid);
                    }
                    self.activity.exited(e.tgid);
                    self.release_forgotten();
                }
                if self.emitting() {
                    let line = json::exit(&self.ctx(), self.seq, &e);
                    self.emit(line);
                }
            }
            Record::Denied(d) => self.denied(&d),
            Record::Mark(m) => self.marked(&m),
            Record::Held(h) => self.held(&h),
            Record::Uring(u) => self.uring(&u),
            Record::Gpu(g) => {
                if let Some(ai) = &mut self.ai {
                    ai.gpu.call(g.func, g.size, g.ptr, g.ret);
                }
            }
            Record::Tls(t) => self.tls_chunk(t),
            Record::WatchExec(e) => {
                let exe = crate::target::procfs::info(e.tgid).and_then(|i| i.exe);
                if let Some(reason) =
                    self.selectors
                        .match_exec(&e.comm, &e.filename, exe.as_deref())
                {
                    self.adopt(e.tgid, reason, e.ts_ns);
                }
            }
            Record::WatchOpen(s) => {
                if self.selectors.discover
                    && let Some(f) = s.str0.as_deref().and_then(discover::classify)
                {
                    self.adopt(s.tgid, f.reason(), s.ts_ns);
                }
            }
        }
    }

    /// A target whose first record is a syscall: a member of a watched
    /// cgroup the kernel took in at its first syscall (it never forked or
    /// exec'd in view), or a process whose fork record was lost. Its
    /// identity comes from `/proc`; its counts have generation 0.
    fn found(&mut self, pid: u32, tree: u32, ts: u64) {
        let why = self.cgroup_trees.get(&tree).cloned();
        let origin = if why.is_some() {
            Origin::Matched
        } else {
            Origin::Forked
        };
        self.observed(pid, tree, origin, why, 0, ts);
    }

    /// A process became known outside fork and exec records (at start, at
    /// launch, at its first syscall): identity from `/proc`, its open files,
    /// its process record, the rules' and the AI model's view of it.
    fn observed(
        &mut self,
        pid: u32,
        tree: u32,
        origin: Origin,
        reason: Option<String>,
        generation: u32,
        ts: u64,
    ) {
        self.procs.observe(pid, tree, origin, Some(ts), generation);
        self.release_forgotten();
        if let Some(r) = reason {
            self.procs.set_reason(pid, r);
        }
        self.fds.seed_from_proc(pid);
        // An attached process may carry a TLS library no exec will show.
        self.tls_exec(pid);
        // A launched command is still ai-forensics until it execs; its
        // identity record follows the exec.
        if origin != Origin::Launched {
            self.process_record(pid, Some(ts));
        }
        self.engine_observe(pid);
        self.ai_process(pid, true);
        let live = self.procs.live().len();
        self.shared_update(|s| {
            s.seen_any = true;
            s.live = live;
        });
    }

    /// A process matched a selector: make it (and its future children) a target.
    fn adopt(&mut self, pid: u32, reason: String, ts: u64) {
        if self.targets.contains(pid) {
            return;
        }
        let tree = self.next_tree;
        if self.next_tree < ai_forensics_common::MAX_TREES - 1 {
            self.next_tree += 1;
        }
        let generation = match self.targets.add(pid, tree) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("cannot trace matched process {pid}: {e}");
                return;
            }
        };
        self.matched += 1;
        tracing::info!("tracing process {pid}: {reason}");
        self.procs
            .observe(pid, tree, Origin::Matched, Some(ts), generation);
        self.release_forgotten();
        self.procs.set_reason(pid, reason.clone());
        self.fds.seed_from_proc(pid);
        let comm = self
            .procs
            .get(pid)
            .map(|p| p.comm.clone())
            .unwrap_or_default();
        let l = json::line(
            &self.ctx(),
            self.seq,
            "target",
            Some(ts),
            Some((pid, pid, &comm)),
            Some(tree),
            json!({"action": "added", "reason": reason}),
            None,
        );
        self.emit(l);
        self.process_record(pid, Some(ts));
        self.shared_update(|s| s.seen_any = true);
    }

    /// Renders and emits a syscall (arguments before its effect on the fd
    /// table, the returned fd's path after).
    fn write_syscall(&mut self, s: &Syscall) {
        let wanted = self.emitting() && self.selection.contains(s.nr);
        let rendered = (wanted || self.policy.is_some()).then(|| args::render(s, &self.fds));
        self.activity.apply(s, &self.fds);
        if let Some(ai) = &mut self.ai {
            let dev = ai.apply(s, &self.fds);
            self.deviations(s.tgid, s.tid, s.tree, s.ts_ns, dev);
        }
        if self.tls.is_some() {
            self.tls_syscall(s);
        }
        self.fds.apply(s);
        let Some(rendered) = rendered else { return };
        let ret_path = if rendered.ret == Ret::Fd && s.ret >= 0 && !s.at_entry {
            args::FdNames::fd_name(&self.fds, s.tgid, s.ret)
        } else {
            None
        };
        if !wanted {
            // Evaluated by the rules without being written.
            let path = json::main_path(&rendered, None);
            self.evaluate(s, &rendered, u64::MAX, path.as_deref(), ret_path.as_deref());
            return;
        }
        let resolved = ret_path.clone();
        let l = json::syscall(&self.ctx(), self.seq, s, &rendered, ret_path);
        if let Some(f) = &mut self.flow {
            f.syscall(
                s.tree,
                &s.comm,
                &systable::display_name(s.nr),
                s.ret,
                s.args[1],
            );
        }
        let (seq, path) = (self.seq, l.path.clone());
        self.emit(l);
        self.evaluate(s, &rendered, seq, path.as_deref(), resolved.as_deref());
    }

    fn syscall(&mut self, mut s: Syscall) {
        if !self.procs.saw_thread(s.tgid, s.tid, &s.comm)
            && self.track_live
            && s.tree != 0
            && !self.procs.dropped_alive(s.tgid)
        {
            self.found(s.tgid, s.tree, s.ts_ns);
            self.procs.saw_thread(s.tgid, s.tid, &s.comm);
        }
        let is_exec = matches!(systable::name(s.nr), Some("execve" | "execveat"));
        if is_exec && s.at_entry {
            if let Some(argv) = s.argv() {
                self.procs
                    .set_cmdline(s.tgid, argv.into_iter().map(<[u8]>::to_vec).collect());
            }
            // Written with its exit record, which cannot read the old image.
            if let Some(old) = self.pending_exec.insert(s.tid, s) {
                self.write_syscall(&old);
            }
            return;
        }
        if is_exec && let Some(entry) = self.pending_exec.remove(&s.tid) {
            s.str0 = entry.str0;
            s.str1 = entry.str1;
            s.blob = entry.blob;
            s.flags = entry.flags;
        }
        self.write_syscall(&s);
    }

    /// Runs until the channel closes; returns the state for the summary.
    pub fn run(mut self, rx: &Receiver<Msg>) -> Self {
        let mut last_reap = Instant::now();
        let mut last_cpu = Instant::now();
        loop {
            let wait = if self.analyser.is_some() { 20 } else { 200 };
            match rx.recv_timeout(std::time::Duration::from_millis(wait)) {
                Ok(msg) => self.handle(msg),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.flush_store();
                    self.flush_analyser();
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.poll_analyser();
            if let Some(id) = self.policy.as_mut().and_then(|p| p.identity.as_mut()) {
                id.maybe_rescan();
            }
            if self.ai.is_some() && last_cpu.elapsed().as_millis() >= 100 {
                last_cpu = Instant::now();
                let now = Clock::monotonic_now();
                let pids: Vec<u32> = self.procs.live().iter().take(64).copied().collect();
                if let Some(ai) = &mut self.ai {
                    for p in pids {
                        ai.sample_cpu(p, now);
                    }
                }
            }
            if self
                .flow
                .as_ref()
                .is_some_and(crate::metrics::FlowCounter::due)
            {
                let counts = self.export_counts();
                let live = self.procs.live().len() as u64;
                if let Some(f) = &mut self.flow {
                    f.publish(live, counts);
                }
            }
            if self.track_live && last_reap.elapsed().as_millis() >= 250 {
                last_reap = Instant::now();
                self.procs.reap_vanished(Clock::monotonic_now());
                let live = self.procs.live().len();
                self.shared_update(|s| s.live = live);
            }
        }
        let pending: Vec<Syscall> = self.pending_exec.drain().map(|(_, s)| s).collect();
        for p in &pending {
            self.write_syscall(p);
        }
        self.tls_finish();
        if let Some(s) = &mut self.sink {
            let r = s.out.flush();
            self.note_write(r);
        }
        self
    }

    /// Final flush to the store (after the summary record), then closes the
    /// link so the writer seals its last batch.
    pub fn close_store(&mut self) {
        self.flush_store();
        if let Some(store) = &mut self.store
            && !store.pending.is_empty()
        {
            // The writer is alive and draining: wait for room rather than lose
            // the end of the record.
            let batch = std::mem::take(&mut store.pending);
            let _ = store.tx.send(StoreMsg::Records(batch));
        }
        if let Some(store) = &self.store {
            let spilled = self.procs.take_spilled();
            if !spilled.is_empty() {
                let _ = store.tx.send(StoreMsg::Processes(spilled));
            }
        }
        self.store = None;
    }
}

/// What is given up when the store's queue is full: syscall and loss
/// records, and whatever exceeds [`KEEP_UNDER_PRESSURE`]. Alerts, actions
/// and process records stay in `pending` for the next send, so a flood
/// cannot hide the alert it raises.
fn shed(pending: &mut Vec<Emitted>) -> Vec<Emitted> {
    let (mut keep, mut out): (Vec<Emitted>, Vec<Emitted>) = std::mem::take(pending)
        .into_iter()
        .partition(|e| e.line.kind != "syscall" && e.line.kind != "lost");
    if keep.len() > KEEP_UNDER_PRESSURE {
        out.extend(keep.split_off(KEEP_UNDER_PRESSURE));
    }
    *pending = keep;
    out
}

fn span(v: &[Emitted]) -> (u64, u64) {
    let f = v.first().and_then(|e| e.line.ts_ns).unwrap_or(0);
    let l = v.last().and_then(|e| e.line.ts_ns).unwrap_or(f);
    (f, l)
}
