//! The consumer thread: decodes batches, keeps the process and fd tables,
//! accounts activity, applies selectors, and writes the event stream.
use std::{
    collections::HashMap,
    io::{self, BufWriter, Write},
    sync::{Arc, Mutex, mpsc::Receiver},
    time::Instant,
};

use serde_json::{Value, json};

use super::options::{Format, Mode};
use crate::{
    aggregate::activity::Activity,
    decode::{self, Exec, Record, Syscall},
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
    syscall::Selection,
    syscall::table as systable,
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
}

/// The event stream's destination.
pub struct Sink {
    /// Format.
    pub format: Format,
    /// Writer.
    pub out: BufWriter<Box<dyn Write + Send>>,
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
    /// Selectors that add targets.
    pub selectors: Selectors,
    /// Kernel target table.
    pub targets: Targets,
    /// Next tree id for selector matches.
    pub next_tree: u32,
    /// Shared counters.
    pub shared: Arc<Mutex<Shared>>,
    /// Sequence number of the next written record.
    pub seq: u64,
    /// Records lost per CPU reported by markers.
    pub lost_by_cpu: HashMap<u32, u64>,
    /// Loss markers seen.
    pub lost_records: Vec<decode::Lost>,
    /// Processes matched by selectors.
    pub matched: u64,
    /// Whether to follow a process table in `/proc` (not for `--all`).
    pub track_live: bool,
    /// execve entry records waiting for their exit record, by thread.
    pub pending_exec: HashMap<u32, Syscall>,
}

impl Consumer {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            clock: &self.clock,
            procs: &self.procs,
            fds: &self.fds,
        }
    }

    fn write_json(&mut self, v: &Value) {
        self.seq += 1;
        let Some(sink) = &mut self.sink else { return };
        if sink.format != Format::Json {
            return;
        }
        let r = serde_json::to_writer(&mut sink.out, v)
            .map_err(io::Error::from)
            .and_then(|()| sink.out.write_all(b"\n"));
        self.note_write(r);
    }

    fn write_text(&mut self, line: &str) {
        let Some(sink) = &mut self.sink else { return };
        if sink.format != Format::Text {
            return;
        }
        let r = sink
            .out
            .write_all(line.as_bytes())
            .and_then(|()| sink.out.write_all(b"\n"));
        self.note_write(r);
    }

    fn note_write(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            let mut sh = self
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if e.kind() == io::ErrorKind::BrokenPipe {
                sh.output_closed = true;
            } else {
                sh.output_error = Some(e.to_string());
            }
            self.sink = None;
        }
    }

    fn wants(&self, kind: Format) -> bool {
        self.sink.as_ref().is_some_and(|s| s.format == kind)
    }

    /// Writes the session header record.
    pub fn header(&mut self, detail: Value) {
        if self.wants(Format::Json) {
            let v = json::envelope(
                &self.ctx(),
                self.seq,
                "session",
                Some(Clock::monotonic_now()),
                None,
                None,
                detail,
            );
            self.write_json(&v);
        }
    }

    /// Writes any record given as JSON (summary, alerts).
    pub fn write_record(&mut self, kind: &str, detail: Value) {
        if self.wants(Format::Json) {
            let v = json::envelope(
                &self.ctx(),
                self.seq,
                kind,
                Some(Clock::monotonic_now()),
                None,
                None,
                detail,
            );
            self.write_json(&v);
        }
    }

    fn process_record(&mut self, pid: u32, ts: Option<u64>) {
        if self.wants(Format::Json) {
            let v = json::process(&self.ctx(), self.seq, pid, ts);
            self.write_json(&v);
        } else if self.wants(Format::Text) {
            let line = self.procs.get(pid).map(|p| {
                format!(
                    "{} +++ process {} {} exe={} cmdline={}{} +++",
                    ts.map_or_else(|| "-".to_owned(), |t| self.clock.time_of_day(t)),
                    pid,
                    decode::escape::quoted(&p.comm),
                    p.exe
                        .as_deref()
                        .map_or_else(|| "?".to_owned(), decode::escape::quoted),
                    p.cmdline
                        .iter()
                        .map(|a| decode::escape::quoted(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                    p.reason
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" reason=\"{r}\""))
                )
            });
            if let Some(l) = line {
                self.write_text(&l);
            }
        }
    }

    /// Handles a message; false when the stream must stop.
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Observe {
                pid,
                tree,
                origin,
                reason,
            } => {
                self.procs
                    .observe(pid, tree, origin, Some(Clock::monotonic_now()));
                if let Some(r) = reason {
                    self.procs.set_reason(pid, r);
                }
                self.fds.seed_from_proc(pid);
                // A launched command is still ai-forensics until it execs;
                // its identity record follows the exec.
                if origin != Origin::Launched {
                    self.process_record(pid, Some(Clock::monotonic_now()));
                }
                let live = self.procs.live().len();
                self.shared_update(|s| {
                    s.seen_any = true;
                    s.live = live;
                });
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
                let live = self.procs.live().len();
                self.shared_update(|s| {
                    s.records += n;
                    s.decode_errors += errors;
                    s.live = live;
                });
            }
        }
    }

    fn shared_update(&self, f: impl FnOnce(&mut Shared)) {
        let mut sh = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut sh);
    }

    fn record(&mut self, r: Record) {
        match r {
            Record::Syscall(s) => self.syscall(s),
            Record::Lost(l) => {
                *self.lost_by_cpu.entry(l.cpu).or_default() += l.count;
                self.shared_update(|s| s.lost_reported += l.count);
                if self.wants(Format::Json) {
                    let v = json::lost(&self.ctx(), self.seq, &l);
                    self.write_json(&v);
                } else if self.wants(Format::Text) {
                    let line = text::lost(&self.clock, &l);
                    self.write_text(&line);
                }
                if self.lost_records.len() < 100_000 {
                    self.lost_records.push(l);
                }
            }
            Record::Fork(f) => {
                let new_process = self.procs.fork(&f);
                if new_process {
                    self.fds.fork(f.tgid, f.child_tgid);
                    self.shared_update(|s| s.seen_any = true);
                }
                if self.wants(Format::Json) {
                    let v = json::fork(&self.ctx(), self.seq, &f);
                    self.write_json(&v);
                } else if self.wants(Format::Text) {
                    let line = text::fork(&self.clock, &f);
                    self.write_text(&line);
                }
            }
            Record::Exec(e) => {
                self.procs.exec(&e, Origin::Forked);
                if e.old_tid != e.tid
                    && let Some(p) = self.pending_exec.remove(&e.old_tid)
                {
                    self.pending_exec.insert(e.tid, p);
                }
                self.exec_out(&e);
            }
            Record::Exit(e) => {
                if let Some(p) = self.pending_exec.remove(&e.tid) {
                    self.write_syscall(&p);
                }
                if self.procs.exit(&e) {
                    self.fds.exit(e.tgid);
                }
                if self.wants(Format::Json) {
                    let v = json::exit(&self.ctx(), self.seq, &e);
                    self.write_json(&v);
                } else if self.wants(Format::Text) {
                    let line = text::exit(&self.clock, &e);
                    self.write_text(&line);
                }
            }
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

    /// A process matched a selector: make it (and its future children) a target.
    fn adopt(&mut self, pid: u32, reason: String, ts: u64) {
        if self.targets.contains(pid) {
            return;
        }
        let tree = self.next_tree;
        if self.next_tree < ai_forensics_common::MAX_TREES - 1 {
            self.next_tree += 1;
        }
        if let Err(e) = self.targets.add(pid, tree) {
            tracing::warn!("cannot trace matched process {pid}: {e}");
            return;
        }
        self.matched += 1;
        tracing::info!("tracing process {pid}: {reason}");
        self.procs.observe(pid, tree, Origin::Matched, Some(ts));
        self.procs.set_reason(pid, reason.clone());
        self.fds.seed_from_proc(pid);
        if self.wants(Format::Json) {
            let v = json::envelope(
                &self.ctx(),
                self.seq,
                "target",
                Some(ts),
                Some((
                    pid,
                    pid,
                    &self
                        .procs
                        .get(pid)
                        .map(|p| p.comm.clone())
                        .unwrap_or_default(),
                )),
                Some(tree),
                json!({"action": "added", "reason": reason}),
            );
            self.write_json(&v);
        }
        self.process_record(pid, Some(ts));
        self.shared_update(|s| s.seen_any = true);
    }

    fn exec_out(&mut self, e: &Exec) {
        if self.wants(Format::Json) {
            let v = json::exec(&self.ctx(), self.seq, e);
            self.write_json(&v);
        } else if self.wants(Format::Text) {
            let line = text::exec(&self.clock, e);
            self.write_text(&line);
        }
        self.process_record(e.tgid, Some(e.ts_ns));
    }

    fn write_syscall(&mut self, s: &Syscall) {
        if !self.selection.contains(s.nr) {
            return;
        }
        if self.wants(Format::Json) {
            let v = json::syscall(&self.ctx(), self.seq, s);
            self.write_json(&v);
        } else if self.wants(Format::Text) {
            let line = text::syscall(&self.ctx(), s);
            self.write_text(&line);
        }
    }

    fn syscall(&mut self, mut s: Syscall) {
        self.procs.saw_thread(s.tgid, s.tid, &s.comm);
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
        self.activity.apply(&s, &self.fds);
        self.write_syscall(&s);
        self.fds.apply(&s);
    }

    /// Runs until the channel closes; returns the state for the summary.
    pub fn run(mut self, rx: &Receiver<Msg>) -> Self {
        let mut last_reap = Instant::now();
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(msg) => self.handle(msg),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
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
        if let Some(s) = &mut self.sink {
            let r = s.out.flush();
            self.note_write(r);
        }
        self
    }
}
