//! The end-of-session summary (text and JSON) and the live table.
use std::{collections::BTreeMap, fmt::Write as _, io::Write as _};

use ai_forensics_common::{ProcKey, ProcStat, SyscallStat, drop};
use serde::{Serialize, Serializer, ser::SerializeSeq as _};
use serde_json::{Value, json};

use super::{
    consumer::{Consumer, Shared},
    options::{Mode, Options},
};
use crate::{
    aggregate::syscalls, loader::Probes, output::table, state::procs::Processes,
    syscall::table as systable,
};

/// Per-thread, per-syscall totals from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadRow {
    /// Process.
    pub pid: u32,
    /// Thread.
    pub tid: u32,
    /// The process's generation (see `Process::generation`).
    pub generation: u32,
    /// Syscall number.
    pub nr: u32,
    /// Calls.
    pub count: u64,
    /// Errors.
    pub errors: u64,
    /// Time.
    pub total_ns: u64,
}

/// Reads the per-thread statistics table.
#[must_use]
pub fn read_per_thread(probes: &Probes) -> Vec<ThreadRow> {
    let mut out = Vec::new();
    for item in probes.proc_stats.iter() {
        let Ok((k, v)): Result<(ProcKey, aya::maps::PerCpuValues<ProcStat>), _> = item else {
            continue;
        };
        let (mut count, mut errors, mut total_ns) = (0, 0, 0);
        for s in v.iter() {
            count += s.count;
            errors += s.errors;
            total_ns += s.total_ns;
        }
        out.push(ThreadRow {
            pid: k.tgid,
            tid: k.tid,
            generation: k.generation,
            nr: k.nr,
            count,
            errors,
            total_ns,
        });
    }
    out.sort_by_key(|r| (r.pid, r.generation, r.tid, r.nr));
    out
}

/// Calls and errors per process, keyed by pid and generation.
#[must_use]
pub fn per_process(rows: &[ThreadRow]) -> BTreeMap<(u32, u32), (u64, u64)> {
    let mut m: BTreeMap<(u32, u32), (u64, u64)> = BTreeMap::new();
    for r in rows {
        let t = m.entry((r.pid, r.generation)).or_default();
        t.0 += r.count;
        t.1 += r.errors;
    }
    m
}

/// Stands in [`per_process`]'s map for the counts of a (pid, 0) key that
/// more than one listed process could own: they are the sum of theirs,
/// so none of them gets them.
pub const SHARED: (u64, u64) = (u64::MAX, u64::MAX);

/// Marks the (pid, 0) counts that two or more of `procs` share (processes
/// whose generation is unknown or 0: a `--cgroup` member the kernel took in
/// at its first syscall) as [`SHARED`].
pub fn mark_shared<'p>(
    totals: &mut BTreeMap<(u32, u32), (u64, u64)>,
    procs: impl Iterator<Item = &'p crate::state::procs::Process>,
) {
    let mut seen = std::collections::BTreeSet::new();
    for p in procs.filter(|p| p.generation == 0) {
        if !seen.insert(p.pid)
            && let Some(t) = totals.get_mut(&(p.pid, 0))
        {
            *t = SHARED;
        }
    }
}

/// The calls and errors of process `pid` of generation `generation`.
/// When its fork record was lost (the ring buffer was full), user space
/// never learnt its generation (0): if the kernel has counts for only one
/// process with that pid, they are its.
#[must_use]
pub fn calls_of(
    totals: &BTreeMap<(u32, u32), (u64, u64)>,
    pid: u32,
    generation: u32,
) -> Option<(u64, u64)> {
    if let Some(t) = totals.get(&(pid, generation)) {
        return (*t != SHARED).then_some(*t);
    }
    if generation != 0 {
        return None;
    }
    let mut same_pid = totals.range((pid, 0)..=(pid, u32::MAX));
    match (same_pid.next(), same_pid.next()) {
        (Some((_, t)), None) => Some(*t),
        _ => None,
    }
}

/// Names of the kernel drop counters, in `drop` order.
pub const DROP_NAMES: [&str; drop::COUNT as usize] = [
    "ringbuf_full",
    "inflight_full",
    "proc_stats_full",
    "targets_range",
    "watch_ringbuf_full",
    "reserved5",
    "reserved6",
    "reserved7",
];

/// Everything the summary is made of.
pub struct Report<'a> {
    /// Options of the session.
    pub opts: &'a Options,
    /// Kernel per-syscall statistics.
    pub stats: &'a [SyscallStat],
    /// Kernel drop counters.
    pub drops: [u64; drop::COUNT as usize],
    /// Consumer counters.
    pub shared: &'a Shared,
    /// Records the reader took from the ring buffer.
    pub reader_records: u64,
    /// Per-thread statistics.
    pub per_thread: &'a [ThreadRow],
    /// Calls and errors per process (pid, generation), from `per_thread`.
    pub per_process: &'a BTreeMap<(u32, u32), (u64, u64)>,
    /// Session length.
    pub elapsed_ns: u64,
    /// Wait status of the launched command.
    pub child_status: Option<i32>,
    /// Records lost per target tree (trees with losses only).
    pub lost_by_tree: BTreeMap<u32, u64>,
    /// What was stored, when the store is on.
    pub store: Option<StoreReport>,
    /// Records the store failed to write (full disk, I/O errors) by the
    /// time the summary was made.
    pub store_failed: u64,
    /// Rules and analyser results.
    pub policy: Option<serde_json::Value>,
    /// AI-aware findings (events mode).
    pub ai: Option<serde_json::Value>,
    /// io_uring operations by opcode (`None`: this kernel has no io_uring
    /// tracepoints, so io_uring was not seen).
    pub uring: Option<Vec<ai_forensics_common::UringStat>>,
    /// Whether calls were counted at their exit by one syscall program, or
    /// why at entry.
    pub counting: std::result::Result<(), String>,
}

/// The io_uring rows (opcodes used) as JSON.
fn uring_json(u: Option<&[ai_forensics_common::UringStat]>) -> serde_json::Value {
    match u {
        None => json!({"traced": false, "why": "this kernel has no io_uring tracepoints"}),
        Some(rows) => json!({
            "traced": true,
            "ops": rows
                .iter()
                .enumerate()
                .filter(|(_, s)| s.count > 0)
                .map(|(op, s)| json!({"op": crate::decode::uring::op_name(op as u32), "count": s.count, "errors": s.errors}))
                .collect::<Vec<_>>(),
        }),
    }
}

/// What the store received.
#[derive(Clone, Debug)]
pub struct StoreReport {
    /// Database file.
    pub path: String,
    /// Session id.
    pub session: i64,
    /// Sealed batches.
    pub batches: u64,
    /// Records stored.
    pub events: u64,
    /// Digest of the last batch.
    pub final_digest: String,
    /// Records the store's queue could not take.
    pub dropped: u64,
    /// Records that failed to be written.
    pub failed: u64,
    /// Write error.
    pub error: Option<String>,
    /// Flight recorder on and never triggered.
    pub flight_untriggered: bool,
}

/// The summary record's detail: small parts as JSON, the per-process and
/// per-thread lists serialised one element at a time.
#[derive(Serialize)]
pub struct Detail<'a> {
    #[serde(flatten)]
    head: Value,
    processes: ProcessList<'a>,
    per_thread: ThreadList<'a>,
    ai: Option<&'a Value>,
}

/// Every retained process, one at a time.
struct ProcessList<'a>(&'a Processes);

impl Serialize for ProcessList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(crate::state::procs::Process::json))
    }
}

/// Per-thread syscall totals (rows sorted by pid, tid, syscall), one thread
/// at a time.
struct ThreadList<'a>(&'a [ThreadRow]);

impl Serialize for ThreadList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for t in self
            .0
            .chunk_by(|a, b| (a.pid, a.generation, a.tid) == (b.pid, b.generation, b.tid))
        {
            let by_name: BTreeMap<String, Value> = t
                .iter()
                .map(|r| {
                    (
                        systable::display_name(r.nr),
                        json!({"count": r.count, "errors": r.errors, "total_ns": r.total_ns}),
                    )
                })
                .collect();
            seq.serialize_element(&json!({
                "pid": t[0].pid,
                "generation": t[0].generation,
                "tid": t[0].tid,
                "syscalls": by_name
            }))?;
        }
        seq.end()
    }
}

/// The launched command's wait status as JSON (`exited` or `signaled`).
#[must_use]
pub fn status_json(st: Option<i32>) -> Value {
    match st {
        Some(s) if libc::WIFEXITED(s) => json!({"exited": libc::WEXITSTATUS(s)}),
        Some(s) if libc::WIFSIGNALED(s) => json!({"signaled": libc::WTERMSIG(s)}),
        _ => Value::Null,
    }
}

impl Report<'_> {
    fn lost_total(&self) -> u64 {
        self.drops[drop::RINGBUF_FULL as usize] + self.drops[drop::WATCH_RINGBUF_FULL as usize]
    }

    /// The `summary` JSON record's detail. The lists that grow with the
    /// number of processes and threads are written straight from the
    /// session's tables when it is serialised, not built as JSON first.
    #[must_use]
    pub fn json<'a>(&'a self, c: &'a Consumer) -> Detail<'a> {
        let rows = syscalls::rows(self.stats);
        let drops: BTreeMap<&str, u64> = DROP_NAMES
            .iter()
            .zip(self.drops.iter())
            .filter(|(n, _)| !n.starts_with("reserved"))
            .map(|(n, v)| (*n, *v))
            .collect();
        let head = json!({
            "elapsed_ns": self.elapsed_ns,
            "syscalls": rows,
            "total_calls": rows.iter().map(|r| r.count).sum::<u64>(),
            "total_errors": rows.iter().map(|r| r.errors).sum::<u64>(),
            "activity": (self.opts.mode == Mode::Events).then(|| c.activity.json(self.opts.top)),
            "records": self.reader_records,
            "processes_only_in_store": c.procs.spilled,
            "loss": {
                "kernel_drops": drops,
                "lost_events": self.lost_total(),
                "lost_by_tree": self.lost_by_tree.iter().map(|(t, n)| json!({"tree": t, "lost": n})).collect::<Vec<_>>(),

                "lost_reported_in_stream": self.shared.lost_reported,
                "decode_errors": self.shared.decode_errors,
                "store_dropped": self.shared.store_dropped,
                "store_failed": self.store_failed,

                "fd_table_evictions": c.fds.evicted,
                "process_table_evictions": c.procs.evicted,
                "aggregate_overflow": c.activity.overflowed,
            },
            "exit_status": status_json(self.child_status),
            "policy": self.policy,
            "io_uring": uring_json(self.uring.as_deref()),
            "tls": c.tls.as_ref().map(|t| t.tracker.json()),
            "counting": match &self.counting {
                Ok(()) => json!({"at": "exit", "hooks": ["sys_exit", "sched_process_exit"]}),
                Err(why) => json!({"at": "entry", "hooks": ["sys_enter", "sys_exit"], "why": why}),
            },
        });
        Detail {
            head,
            processes: ProcessList(&c.procs),
            per_thread: ThreadList(self.per_thread),
            ai: self.ai.as_ref(),
        }
    }

    /// The text summary.
    #[must_use]
    pub fn text(&self, c: &Consumer) -> String {
        let mut out = String::new();
        let rows = syscalls::rows(self.stats);
        let nprocs = c.procs.iter().count();
        let nthreads: usize = c.procs.iter().map(|p| p.threads.len()).sum();
        let _ = writeln!(
            out,
            "\nai-forensics: {} process{}, {} thread{}, {:.3} s, {} syscalls",
            nprocs,
            if nprocs == 1 { "" } else { "es" },
            nthreads,
            if nthreads == 1 { "" } else { "s" },
            self.elapsed_ns as f64 / 1e9,
            rows.iter().map(|r| r.count).sum::<u64>()
        );
        out.push_str(&table::syscalls(&rows, 0));
        if self.opts.mode == Mode::Events {
            out.push_str(&table::activity(&c.activity, self.opts.top));
        }
        if self.opts.per_process || nprocs > 1 {
            let _ = writeln!(out, "\nprocesses");
            out.push_str(&table::process_tree(&c.procs, &|p| {
                calls_of(self.per_process, p.pid, p.generation)
            }));
            if self.opts.per_process {
                let _ = writeln!(out, "\nper thread");
                let _ = writeln!(
                    out,
                    "{:>8} {:>8} {:>10} {:>8}  top syscalls",
                    "pid", "tid", "calls", "errors"
                );
                // A reused pid's processes stay apart (by generation).
                let mut by: BTreeMap<(u32, u32, u32), Vec<&ThreadRow>> = BTreeMap::new();
                for r in self.per_thread {
                    by.entry((r.pid, r.generation, r.tid)).or_default().push(r);
                }
                for ((pid, _, tid), mut v) in by {
                    v.sort_by_key(|r| std::cmp::Reverse(r.count));
                    let calls: u64 = v.iter().map(|r| r.count).sum();
                    let errors: u64 = v.iter().map(|r| r.errors).sum();
                    let top: Vec<String> = v
                        .iter()
                        .take(4)
                        .map(|r| format!("{}={}", systable::display_name(r.nr), r.count))
                        .collect();
                    let _ = writeln!(
                        out,
                        "{pid:>8} {tid:>8} {calls:>10} {errors:>8}  {}",
                        top.join(" ")
                    );
                }
            }
        }
        let lost = self.lost_total();
        let other: u64 = self.drops.iter().sum::<u64>() - lost;
        if self.opts.mode == Mode::Events || lost > 0 || other > 0 {
            let _ = writeln!(
                out,
                "\nevents: {} records read, {} lost in the kernel (ring buffer full){}{}",
                self.reader_records,
                lost,
                if other > 0 {
                    format!(
                        ", other drops: {}",
                        DROP_NAMES
                            .iter()
                            .zip(self.drops.iter())
                            .skip(1)
                            .filter(|(_, v)| **v > 0)
                            .map(|(n, v)| format!("{n}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                } else {
                    String::new()
                },
                if lost > 0 {
                    "; the syscall counts above are exact regardless"
                } else {
                    ""
                }
            );
        }
        if let Some(ai) = &self.ai {
            out.push_str(&ai_text(ai));
        }
        if let Some(rows) = &self.uring {
            let used: Vec<String> = rows
                .iter()
                .enumerate()
                .filter(|(_, s)| s.count > 0)
                .map(|(op, s)| {
                    let e = if s.errors > 0 {
                        format!(" ({} errors)", s.errors)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} {}{e}",
                        crate::decode::uring::op_name(op as u32),
                        s.count
                    )
                })
                .collect();
            if !used.is_empty() {
                let _ = writeln!(out, "\nio_uring: {}", used.join(", "));
            }
        }
        if let Some(t) = &c.tls {
            let s = &t.tracker.stats;
            let _ = writeln!(
                out,
                "\ntls: {} calls on {} connections, {} B sent, {} B received ({} B captured; {} calls truncated, {} incomplete); {} HTTP exchanges, {} LLM calls; uprobes in {} files",
                s.calls,
                s.connections,
                s.bytes_sent,
                s.bytes_received,
                s.bytes_captured,
                s.truncated_calls,
                s.incomplete_calls,
                s.http_exchanges,
                s.llm_calls,
                t.tracker.files.len()
            );
            if let Some(ai) = &self.ai {
                for (pid, u) in ai["llm"].as_object().into_iter().flatten() {
                    let tools: Vec<String> = u["tool_calls"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| format!("{k} x{v}"))
                        .collect();
                    let models: Vec<&str> = u["models"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let _ = writeln!(
                        out,
                        "llm: process {pid}: {} calls to {}; tool calls: {}; {} tokens in, {} out",
                        u["calls"],
                        if models.is_empty() {
                            "?".to_owned()
                        } else {
                            models.join(", ")
                        },
                        if tools.is_empty() {
                            "none".to_owned()
                        } else {
                            tools.join(", ")
                        },
                        u["input_tokens"],
                        u["output_tokens"]
                    );
                }
            }
            for (f, why) in &t.tracker.failed {
                let _ = writeln!(
                    out,
                    "tls: not watched: {}: {why}",
                    crate::decode::escape::escape(f.as_bytes())
                );
            }
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(
                out,
                "\nrules: {} alerts, {} actions{}",
                p["alerts"],
                p["actions"],
                p["latency"]
                    .as_str()
                    .map_or_else(String::new, |l| format!("; {l}"))
            );
            if let Some(a) = p.get("analyser").filter(|a| !a.is_null()) {
                let _ = writeln!(out, "analyser: {a}");
            }
        }
        if let Some(s) = &self.store {
            if s.flight_untriggered {
                let _ = writeln!(
                    out,
                    "store: session {} in {} (flight recorder: no trigger, window discarded)",
                    s.session, s.path
                );
            } else {
                let _ = writeln!(
                    out,
                    "store: session {} in {}: {} records in {} sealed batches, final digest {}",
                    s.session, s.path, s.events, s.batches, s.final_digest
                );
            }
            if s.dropped > 0 || s.failed > 0 {
                let _ = writeln!(
                    out,
                    "store: {} records could not be stored ({} queue full, {} write errors){}",
                    s.dropped + s.failed,
                    s.dropped,
                    s.failed,
                    s.error
                        .as_deref()
                        .map_or_else(String::new, |e| format!(": {e}"))
                );
            }
        }
        if let Some(st) = self.child_status {
            if libc::WIFEXITED(st) {
                let _ = writeln!(out, "workload exited with status {}", libc::WEXITSTATUS(st));
            } else if libc::WIFSIGNALED(st) {
                let _ = writeln!(out, "workload killed by signal {}", libc::WTERMSIG(st));
            }
        }
        out
    }
}

/// The AI section of the text summary.
/// ` to A (n B), B (m B)` for a map of endpoint to bytes; empty when none.
fn destinations(sent_to: &Value) -> String {
    let list: Vec<String> = sent_to
        .as_object()
        .into_iter()
        .flatten()
        .map(|(to, n)| format!("{to} ({})", table::bytes(n.as_u64().unwrap_or(0))))
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" to {}", list.join(", "))
    }
}

/// The AI sections of a summary, as text (live and `show`).
pub fn ai_text(ai: &Value) -> String {
    let mut out = String::new();
    let arts = ai["artefacts"].as_array().cloned().unwrap_or_default();
    if !arts.is_empty() {
        let _ = writeln!(out, "\nmodel artefacts");
        let _ = writeln!(
            out,
            "{:<11} {:<12} {:>12} {:>12} {:>12}  path",
            "kind", "format", "read", "written", "mapped"
        );
        for a in arts.iter().take(30) {
            let _ = writeln!(
                out,
                "{:<11} {:<12} {:>12} {:>12} {:>12}  {}{}",
                a["kind"].as_str().unwrap_or(""),
                a["format"].as_str().unwrap_or(""),
                table::bytes(a["bytes_read"].as_u64().unwrap_or(0)),
                table::bytes(a["bytes_written"].as_u64().unwrap_or(0)),
                table::bytes(a["bytes_mapped"].as_u64().unwrap_or(0)),
                a["path"].as_str().unwrap_or(""),
                a["sha256"].as_str().map_or_else(
                    || a["hash_skipped"]
                        .as_str()
                        .map_or_else(String::new, |w| format!("  (not hashed: {w})")),
                    |h| format!("  sha256:{}", &h[..h.len().min(16)])
                )
            );
        }
        if arts.len() > 30 {
            let _ = writeln!(out, "... {} more in the JSON summary", arts.len() - 30);
        }
    }
    // Phase times are shown from the earliest phase of the run.
    let t0 = ai["phases"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|v| v.as_array().into_iter().flatten())
        .filter_map(|p| p["start_ns"].as_u64())
        .min()
        .unwrap_or(0);
    if let Some(classes) = ai["classification"].as_object() {
        for (pid, c) in classes {
            let role = ai["roles"][pid.as_str()].as_str().unwrap_or("");
            let kind = c["kind"].as_str().unwrap_or("");
            let why = c["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ");
            let certainty = if kind == "unknown" {
                "evidence too thin".to_owned()
            } else {
                format!("confidence {:.2}", c["confidence"].as_f64().unwrap_or(0.0))
            };
            let _ = writeln!(
                out,
                "\nprocess {pid}: {kind}, {certainty}{}{}",
                if role.is_empty() {
                    String::new()
                } else {
                    format!(", role {role}")
                },
                if why.is_empty() {
                    String::new()
                } else {
                    format!("\n  because: {why}")
                }
            );
            for p in ai["phases"][pid.as_str()].as_array().into_iter().flatten() {
                let rate = p["rate_per_s"]
                    .as_f64()
                    .map_or_else(String::new, |r| format!(", {r:.1}/s"));
                let _ = writeln!(
                    out,
                    "  {:>8.3}s {:>8.3}s  {:<12} {}{rate}",
                    p["start_ns"].as_u64().unwrap_or(0).saturating_sub(t0) as f64 / 1e9,
                    p["end_ns"].as_u64().unwrap_or(0).saturating_sub(t0) as f64 / 1e9,
                    p["name"].as_str().unwrap_or(""),
                    p["evidence"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(ex) = ai["exfiltration"].as_object() {
        for (tree, t) in ex {
            if t["sent_bytes"].as_u64().unwrap_or(0)
                + t["written_outside_bytes"].as_u64().unwrap_or(0)
                > 0
            {
                let _ = writeln!(
                    out,
                    "\nexfiltration, tree {tree}: {} read from model artefacts; {} sent{}; {} written outside the workload's directories; {} after the model was read",
                    table::bytes(t["model_bytes_in"].as_u64().unwrap_or(0)),
                    table::bytes(t["sent_bytes"].as_u64().unwrap_or(0)),
                    destinations(&t["sent_to"]),
                    table::bytes(t["written_outside_bytes"].as_u64().unwrap_or(0)),
                    table::bytes(t["after_model_read"].as_u64().unwrap_or(0))
                );
            }
        }
    }
    let gpu = &ai["gpu"];
    if gpu["ioctls"].as_array().is_some_and(|a| !a.is_empty())
        || gpu["cuda"].as_object().is_some_and(|c| !c.is_empty())
    {
        let _ = writeln!(out, "\ngpu: {}", gpu);
    } else if let Some(n) = gpu["note"].as_str() {
        let _ = writeln!(out, "\ngpu: {n}");
    }
    if let Some(d) = ai["baseline"]["deviations"].as_array() {
        let _ = writeln!(
            out,
            "\nbaseline: {} deviations{}",
            d.len(),
            d.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("\n  {s}"))
                .collect::<String>()
        );
    }
    out
}

/// Redraws the live table on stderr.
pub fn live(
    opts: &Options,
    delta: &[SyscallStat],
    total: &[SyscallStat],
    sh: &Shared,
    elapsed_ns: u64,
) {
    let rows = syscalls::rows(delta);
    let totals = syscalls::rows(total);
    let calls: u64 = totals.iter().map(|r| r.count).sum();
    let mut s = String::new();
    s.push_str("\x1b[H\x1b[2J");
    let _ = writeln!(
        s,
        "ai-forensics  {:.0}s  processes alive: {}  syscalls: {}  events: {}  lost: {}   (last {:.1}s; Ctrl-C to stop)",
        elapsed_ns as f64 / 1e9,
        sh.live,
        calls,
        sh.records,
        sh.lost_reported,
        opts.interval.as_secs_f64()
    );
    s.push_str(&table::syscalls(&rows, opts.top));
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn calls_of_a_process_by_pid_and_generation() {
        let mut t = BTreeMap::new();
        t.insert((10, 0), (5, 1));
        t.insert((10, 7), (2, 0));
        t.insert((11, 9), (4, 0));
        assert_eq!(super::calls_of(&t, 10, 7), Some((2, 0)));
        assert_eq!(super::calls_of(&t, 10, 0), Some((5, 1)));
        assert_eq!(super::calls_of(&t, 10, 3), None);
        // Only one process had pid 11: a process whose generation was
        // never learnt (0) gets its counts; a different known one does not.
        assert_eq!(super::calls_of(&t, 11, 0), Some((4, 0)));
        assert_eq!(super::calls_of(&t, 11, 5), None);
        assert_eq!(super::calls_of(&t, 12, 0), None);
    }

    /// Two listed processes with pid 10 and generation 0 (say two cgroup
    /// members on one pid): the kernel's (10, 0) counts are their sum, so
    /// neither gets them; a lone one still does.
    #[test]
    fn counts_two_processes_share_go_to_neither() {
        use crate::state::procs::{Origin, Processes};
        let mut t = BTreeMap::new();
        t.insert((4_000_010, 0), (5, 1));
        t.insert((4_000_010, 7), (2, 0));
        t.insert((4_000_011, 0), (4, 0));
        let mut ps = Processes::default();
        let exit = crate::state::procs::group_exit;
        ps.observe(4_000_010, 1, Origin::Attached, Some(1), 0);
        ps.exit(&exit(4_000_010, 2));
        ps.observe(4_000_010, 1, Origin::Attached, Some(3), 0);
        ps.observe(4_000_011, 1, Origin::Attached, Some(3), 0);
        super::mark_shared(&mut t, ps.iter());
        assert_eq!(super::calls_of(&t, 4_000_010, 0), None);
        assert_eq!(super::calls_of(&t, 4_000_010, 7), Some((2, 0)));
        assert_eq!(super::calls_of(&t, 4_000_011, 0), Some((4, 0)));
    }
}
