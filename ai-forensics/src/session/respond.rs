//! The consumer's response to what it sees: rule evaluation, alerts,
//! enforcement, in-kernel denials, analyser verdicts, with an audit record
//! of each step (`alert` and `action` records, in the stream and the store).
use std::collections::HashMap;

use serde_json::json;

use super::consumer::Consumer;
use crate::{
    decode::{Denied, HeldExec, Mark, Syscall, args::Rendered, escape},
    enforce::{
        Done, Enforcer,
        identity::{Held, Identity},
    },
    output::{clock::Clock, json},
    policy::{
        engine::{Alert, Engine, Event, ProcInfo},
        rules::{Action, Severity},
    },
    syscall::table as systable,
};

/// Rules, their engine, and the enforcer.
pub struct Policy {
    /// The rule engine.
    pub engine: Engine,
    /// Acts on trees.
    pub enforcer: Enforcer,
    /// Alerts raised.
    pub alerts: u64,
    /// Actions taken.
    pub actions: u64,
    /// In-kernel denials waiting for their process to die: pid -> (time, rule).
    /// The method is `kernel` (signalled in the kernel) or `refused+kill`
    /// (the call was refused, then the rule's kill took the tree).
    pub denied: HashMap<u32, (u64, String, &'static str)>,
    /// (action, latency from event to completion) of each enforcement.
    pub latencies: Vec<(String, u64)>,
    /// The objects the kernel rules protect by identity.
    pub identity: Option<Identity>,
}

impl Policy {
    /// A policy with `engine` acting through `enforcer`.
    #[must_use]
    pub fn new(engine: Engine, enforcer: Enforcer) -> Self {
        Self {
            engine,
            enforcer,
            alerts: 0,
            actions: 0,
            denied: HashMap::new(),
            latencies: Vec::new(),
            identity: None,
        }
    }
}

/// A verdict from an external analyser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Process the verdict is about.
    pub target: u32,
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Rule or model that decided.
    pub rule: String,
    /// When the analyser's answer arrived.
    pub received_ns: u64,
    /// The newest event time the analyser had seen (for latency).
    pub event_ts_ns: u64,
}

impl Consumer {
    /// What the engine should know about `pid`, from the process table.
    pub(super) fn engine_observe(&mut self, pid: u32) {
        let Some(policy) = &mut self.policy else {
            return;
        };
        let Some(p) = self.procs.get(pid) else { return };
        let info = ProcInfo {
            ppid: p.ppid,
            comm: escape::escape(&p.comm),
            exe: p.exe.as_deref().map(escape::escape).unwrap_or_default(),
            cmdline: p
                .cmdline
                .iter()
                .map(|a| escape::escape(a))
                .collect::<Vec<_>>()
                .join(" "),
            uid: p.uid,
            ai: 0,
        };
        policy.engine.observe(pid, info);
    }

    /// A new process in `tree`: the engine learns its lineage; if its tree
    /// is frozen or killed it gets the same.
    pub(super) fn engine_fork(&mut self, parent: u32, child: u32, tree: u32) {
        if let Some(policy) = &mut self.policy {
            policy.engine.fork(parent, child);
            policy.enforcer.newcomer(tree, child);
        }
    }

    /// Evaluates the rules on a syscall (rendered, with its record's seq).
    pub(super) fn evaluate(
        &mut self,
        s: &Syscall,
        r: &Rendered,
        seq: u64,
        path: Option<&str>,
        resolved: Option<&str>,
    ) {
        if self.policy.is_none() {
            return;
        }
        let comm = escape::escape(&s.comm);
        let errno = s.errno().and_then(systable::errno_name);
        let exfil = self.ai.as_ref().map_or(0, |a| a.exfil_of(s.tree));
        let Some(policy) = &mut self.policy else {
            return;
        };
        let ev = Event {
            exfil_bytes: exfil,
            seq,
            ts_ns: s.ts_ns,
            pid: s.tgid,
            tid: s.tid,
            tree: s.tree,
            syscall: &r.name,
            comm: &comm,
            path,
            resolved: resolved.filter(|r| Some(*r) != path),
            args: &r.args,
            ret: (!s.at_entry).then_some(s.ret),
            errno,
        };
        let alerts = policy.engine.on_event(&ev);
        for a in alerts {
            self.raise(a, "rules");
        }
    }

    /// A loss marker: the ring buffer overflowed, which a traced process can
    /// cause on purpose by flooding syscalls. Raised as an alert (at most one
    /// per ten seconds, with the records lost since the previous one).
    pub(super) fn overflowed(&mut self, l: &crate::decode::Lost) {
        self.overflow.1 += l.count;
        if self
            .overflow
            .0
            .is_some_and(|t| l.ts_ns.saturating_sub(t) < super::consumer::OVERFLOW_ALERT_EVERY_NS)
        {
            return;
        }
        let lost = std::mem::take(&mut self.overflow.1);
        self.overflow.0 = Some(l.ts_ns);
        let tree = self.procs.tree_of(l.tgid).unwrap_or(0);
        let a = Alert {
            rule: usize::MAX,
            name: "ring-buffer-overflow".into(),
            severity: Severity::Medium,
            action: Action::Alert,
            pid: l.tgid,
            tid: l.tid,
            tree,
            ts_ns: l.ts_ns,
            evidence: vec![self.seq.saturating_sub(1)],
            reason: format!(
                "event flood: the ring buffer overflowed and {lost} records were lost \
                 (pid {} at the time); per-syscall counts stay exact",
                l.tgid
            ),
        };
        self.raise(a, "recorder");
    }

    /// Records an alert and carries out its action.
    pub(super) fn raise(&mut self, a: Alert, source: &str) {
        let decided = Clock::monotonic_now();
        let comm = self
            .procs
            .get(a.pid)
            .map(|p| p.comm.clone())
            .unwrap_or_default();
        let detail = json!({
            "rule": a.name,
            "severity": a.severity.as_str(),
            "action": a.action.as_str(),
            "reason": a.reason,
            "evidence": a.evidence,
            "source": source,
            "event_ts_ns": a.ts_ns,
            "decided_ns": decided,
            "decision_latency_ns": decided.saturating_sub(a.ts_ns),
        });
        if let Some(p) = &mut self.policy {
            p.alerts += 1;
        }
        tracing::warn!("alert: {} ({})", a.reason, a.action.as_str());
        let l = json::line(
            &self.ctx(),
            self.seq,
            "alert",
            Some(a.ts_ns),
            Some((a.pid, a.tid, &comm)),
            Some(a.tree),
            detail,
            None,
        );
        self.emit(l);
        if a.action != Action::Log {
            self.trigger(&format!("alert: {}", a.name));
        }
        if matches!(a.action, Action::Stop | Action::Kill | Action::Resume) {
            self.enforce(a.action, a.tree, a.ts_ns, &a.name, &a.reason);
        }
    }

    /// Applies an action to a tree and records it.
    pub(super) fn enforce(
        &mut self,
        action: Action,
        tree: u32,
        event_ts: u64,
        rule: &str,
        reason: &str,
    ) {
        let members = self.procs.members(tree);
        let Some(policy) = &mut self.policy else {
            return;
        };
        let done: Done = policy.enforcer.apply(action, tree, &members);
        policy.actions += 1;
        let latency = done.done_ns.saturating_sub(event_ts);
        policy.latencies.push((action.as_str().to_owned(), latency));
        if !done.ok {
            tracing::error!(
                "{} of tree {tree}: {}",
                action.as_str(),
                done.errors.join("; ")
            );
        }
        let detail = json!({
            "action": action.as_str(),
            "tree": tree,
            "method": done.method,
            "members": done.members,
            "ok": done.ok,
            "errors": done.errors,
            "rule": rule,
            "reason": reason,
            "event_ts_ns": event_ts,
            "done_ns": done.done_ns,
            "latency_ns": latency,
        });
        let l = json::line(
            &self.ctx(),
            self.seq,
            "action",
            Some(done.done_ns),
            None,
            Some(tree),
            detail,
            None,
        );
        self.emit(l);
    }

    /// The kernel flagged a process an AI workload: the rules learn it, and
    /// the record says which profile's workload rules apply from now on.
    pub(super) fn marked(&mut self, m: &Mark) {
        if let Some(p) = &mut self.policy {
            p.engine.mark(m.tgid, m.bits);
        }
        let kind = if m.bits & crate::policy::rules::ai_bits::LLM != 0 {
            "llm"
        } else {
            "ml"
        };
        let name = escape::escape(&m.name);
        tracing::info!(
            "process {} is an AI workload ({kind}: opened {name}); workload rules apply to it and its new children",
            m.tgid
        );
        if !self.emitting() {
            return;
        }
        let detail = json!({"kind": kind, "file": name});
        let comm = self
            .procs
            .get(m.tgid)
            .map(|p| p.comm.clone())
            .unwrap_or_default();
        let l = json::line(
            &self.ctx(),
            self.seq,
            "ai_mark",
            Some(m.ts_ns),
            Some((m.tgid, m.tid, &comm)),
            Some(m.tree),
            detail,
            None,
        );
        self.emit(l);
    }

    /// A new image is held at exec: compare it, then kill it or let it go.
    pub(super) fn held(&mut self, h: &HeldExec) {
        let verdict = self
            .policy
            .as_mut()
            .and_then(|p| p.identity.as_mut())
            .map_or(Held::Cleared, |i| i.held(h.tgid, h.obj));
        match verdict {
            Held::Cleared => {
                // The flag first: a syscall after SIGCONT must not kill it.
                let _ = self
                    .targets
                    .set_flags(h.tgid, 0, ai_forensics_common::target::HELD);
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(h.tgid as i32, libc::SIGCONT) };
                tracing::debug!("exec by {} held and let go", h.tgid);
            }
            Held::Denied { deny, copy_of } => {
                let exe = std::fs::read_link(format!("/proc/{}/exe", h.tgid))
                    .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                    .unwrap_or_default();
                // SAFETY: as above.
                unsafe { libc::kill(h.tgid as i32, deny.signal as i32) };
                let comm = crate::target::procfs::info(h.tgid)
                    .map(|i| i.comm)
                    .unwrap_or_default();
                let d = Denied {
                    ts_ns: h.ts_ns,
                    tgid: h.tgid,
                    tid: h.tid,
                    nr: systable::number("execve").unwrap_or(0),
                    rule: deny.rule as u32,
                    signal: deny.signal,
                    tree: h.tree,
                    comm,
                    path: exe,
                    how: ai_forensics_common::deny::HOW_EXEC_CONTENT,
                    obj: h.obj,
                    copy_of: Some(copy_of.as_os_str().as_encoded_bytes().to_vec()),
                    decided_ns: 0,
                };
                self.denied(&d);
            }
        }
    }

    /// A call was denied: by the kernel (at entry, at an open's exit, or at
    /// exec, with a signal), or refused before it ran by the seccomp
    /// supervisor. Records it, then applies the rule's action to the tree.
    pub(super) fn denied(&mut self, d: &Denied) {
        use ai_forensics_common::deny as how;
        let Some(policy) = &mut self.policy else {
            return;
        };
        let rule = policy.engine.rules().rules.get(d.rule as usize).cloned();
        let name = rule
            .as_ref()
            .map_or_else(|| format!("rule {}", d.rule), |r| r.name.clone());
        let action = rule.as_ref().map_or(
            if d.signal == 19 {
                Action::Stop
            } else {
                Action::Kill
            },
            |r| r.action,
        );
        let by_lsm = matches!(d.how, how::HOW_LSM_FILE | how::HOW_LSM_EXEC);
        let prevented = by_lsm
            || matches!(
                d.how,
                how::HOW_SECCOMP_FILE | how::HOW_SECCOMP_EXEC | how::HOW_SECCOMP_CONTENT
            );
        if !prevented {
            policy
                .denied
                .insert(d.tgid, (d.ts_ns, name.clone(), "kernel"));
        } else if action == Action::Kill {
            policy
                .denied
                .insert(d.tgid, (d.ts_ns, name.clone(), "refused+kill"));
        }
        policy.alerts += 1;
        let path = escape::escape(&d.path);
        let resolved = policy
            .identity
            .as_ref()
            .and_then(|i| i.resolved(&d.obj))
            .map(|p| escape::escape(p.as_os_str().as_encoded_bytes()));
        let copy_of = d.copy_of.as_deref().map(escape::escape);
        let (mechanism, when, ran) = match d.how {
            how::HOW_EXIT_FILE => (
                "identity",
                "at the open's exit, before it returned (the file was opened; the process never used the descriptor)",
                true,
            ),
            how::HOW_URING_FILE => (
                "identity",
                "at the io_uring open's completion (the file was opened; the process never used the descriptor)",
                true,
            ),
            how::HOW_EXEC_IMAGE => (
                "identity",
                "at exec, before the new image's first instruction",
                true,
            ),
            how::HOW_EXEC_CONTENT => (
                "content",
                "at exec, held before the new image's first instruction and compared",
                true,
            ),
            how::HOW_SECCOMP_FILE | how::HOW_SECCOMP_EXEC => (
                "identity",
                "before it ran (seccomp): it failed with EPERM",
                false,
            ),
            how::HOW_LSM_FILE | how::HOW_LSM_EXEC => (
                "identity",
                "in the kernel's security hook (BPF LSM): it failed with EPERM",
                false,
            ),
            how::HOW_SECCOMP_CONTENT => (
                "content",
                "before it ran (seccomp), compared by content: it failed with EPERM",
                false,
            ),
            _ => (
                "path",
                "at syscall entry (the signal lands before the call returns; the call itself still runs)",
                true,
            ),
        };
        let what = match (resolved.as_deref(), copy_of.as_deref()) {
            (_, Some(c)) => format!("{path}, a copy of {c}"),
            (Some(r), None) if r != path => format!("{path} = {r}"),
            _ => path.clone(),
        };
        let reason = format!(
            "{}[{}] {}({what}) {} {when} by rule '{name}'",
            escape::escape(&d.comm),
            d.tgid,
            systable::display_name(d.nr),
            if prevented {
                "refused"
            } else {
                "stopped in the kernel"
            },
        );
        let decided = if prevented && d.decided_ns != 0 {
            d.decided_ns
        } else {
            d.ts_ns
        };
        let detail = json!({
            "rule": name,
            "severity": rule.as_ref().map_or(Severity::Critical, |r| r.severity).as_str(),
            "action": action.as_str(),
            "reason": reason,
            "evidence": [],
            "source": "kernel",
            "path": path,
            "resolved": resolved,
            "copy_of": copy_of,
            "mechanism": mechanism,
            "enforced": if by_lsm { "lsm" } else if prevented { "seccomp" } else { "signal" },
            "call_ran": ran,
            "object": (d.obj.ino != 0).then(|| json!({"dev": format!("{}:{}", d.obj.dev >> 20, d.obj.dev & 0xfffff), "ino": d.obj.ino})),
            "signal": (!prevented).then_some(d.signal),
            "event_ts_ns": d.ts_ns,
            "decided_ns": decided,
            "decision_latency_ns": decided.saturating_sub(d.ts_ns),
        });
        tracing::warn!("alert: {reason}");
        let l = json::line(
            &self.ctx(),
            self.seq,
            "alert",
            Some(d.ts_ns),
            Some((d.tgid, d.tid, &d.comm)),
            Some(d.tree),
            detail,
            Some(path),
        );
        self.emit(l);
        self.trigger(&format!("alert: {name}"));
        // A signalled offender got its signal in the kernel; the rest of its
        // tree follows. A refused call leaves the tree to the rule: `deny`
        // lets it live, `stop` and `kill` act on it (the offender included).
        if matches!(action, Action::Stop | Action::Kill) {
            self.enforce(action, d.tree, d.ts_ns, &name, &reason);
        }
        // A caller killed while it waited for seccomp's answer may be gone
        // before this record arrived (its exit came through the kernel's
        // stream first).
        if let Some(exit) = self.procs.get(d.tgid).and_then(|p| p.exit_ns) {
            self.denial_effective(d.tgid, exit);
        }
    }

    /// A process with a pending kernel denial is gone: how long it took.
    pub(super) fn denial_effective(&mut self, pid: u32, ts_ns: u64) {
        let Some(policy) = &mut self.policy else {
            return;
        };
        let Some((at, rule, method)) = policy.denied.remove(&pid) else {
            return;
        };
        let latency = ts_ns.saturating_sub(at);
        policy.latencies.push((
            if method == "kernel" {
                "kernel-kill"
            } else {
                "refused-then-killed"
            }
            .into(),
            latency,
        ));
        let detail = json!({"action": "kill", "method": method, "pid": pid, "rule": rule, "event_ts_ns": at, "done_ns": ts_ns, "latency_ns": latency, "ok": true, "effective": true});
        let l = json::line(
            &self.ctx(),
            self.seq,
            "action",
            Some(ts_ns),
            None,
            None,
            detail,
            None,
        );
        self.emit(l);
    }

    /// Identity-based roles and the workload's directories.
    pub(super) fn ai_process(&mut self, pid: u32, root: bool) {
        let Some(ai) = &mut self.ai else { return };
        let cmdline = self
            .procs
            .get(pid)
            .map(|p| {
                p.cmdline
                    .iter()
                    .map(|a| escape::escape(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        ai.on_process(pid, &cmdline, root);
    }

    /// Baseline deviations become alerts.
    pub(super) fn deviations(
        &mut self,
        pid: u32,
        tid: u32,
        tree: u32,
        ts_ns: u64,
        dev: Vec<String>,
    ) {
        for d in dev {
            let a = Alert {
                rule: usize::MAX,
                name: "baseline".into(),
                severity: Severity::Medium,
                action: Action::Alert,
                pid,
                tid,
                tree,
                ts_ns,
                evidence: vec![self.seq.saturating_sub(1)],
                reason: format!("baseline: {d}"),
            };
            self.raise(a, "baseline");
        }
    }

    /// A verdict from the external analyser.
    pub(super) fn verdict(&mut self, v: &Verdict) {
        let Some(tree) = self.procs.tree_of(v.target) else {
            tracing::warn!(
                "analyser verdict refused: process {} is not in the traced tree",
                v.target
            );
            self.write_record("verdict", json!({"accepted": false, "target": v.target, "action": v.action.as_str(), "reason": v.reason, "rule": v.rule, "why": "target outside the traced tree"}));
            return;
        };
        self.write_record("verdict", json!({"accepted": true, "target": v.target, "action": v.action.as_str(), "reason": v.reason, "rule": v.rule, "received_ns": v.received_ns}));
        let a = Alert {
            rule: usize::MAX,
            name: v.rule.clone(),
            severity: Severity::High,
            action: v.action,
            pid: v.target,
            tid: v.target,
            tree,
            ts_ns: v.event_ts_ns,
            evidence: Vec::new(),
            reason: format!("analyser: {}", v.reason),
        };
        self.raise(a, "analyser");
    }
}

/// The consumer's end of the analyser link.
pub struct AnalyserLink {
    /// Records to the link thread.
    pub tx: std::sync::mpsc::SyncSender<Vec<String>>,
    /// Records waiting for the next send.
    pub pending: Vec<String>,
    /// Verdicts and state changes from the link thread.
    pub events: std::sync::mpsc::Receiver<crate::analyser::client::Event>,
    /// Failure policy.
    pub failure: crate::analyser::client::Failure,
    /// Trees stopped because the analyser failed (closed mode).
    pub stopped: Vec<u32>,
    /// Records the link could not take.
    pub dropped: u64,
}

impl Consumer {
    /// Hands pending records to the analyser link without blocking.
    pub(super) fn flush_analyser(&mut self) {
        let Some(a) = &mut self.analyser else { return };
        if a.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut a.pending);
        let n = batch.len() as u64;
        if a.tx.try_send(batch).is_err() {
            a.dropped += n;
        }
    }

    /// Acts on what the analyser link reported.
    pub(super) fn poll_analyser(&mut self) {
        let mut events = Vec::new();
        if let Some(a) = &self.analyser {
            while let Ok(e) = a.events.try_recv() {
                events.push(e);
            }
        }
        for e in events {
            match e {
                crate::analyser::client::Event::Verdict(v) => self.verdict(&v),
                crate::analyser::client::Event::Down(why) => {
                    let closed = self
                        .analyser
                        .as_ref()
                        .is_some_and(|a| a.failure == crate::analyser::client::Failure::Closed);
                    self.write_record("verdict", json!({"accepted": false, "analyser": "down", "why": why, "failure_mode": if closed { "closed" } else { "open" }}));
                    if closed {
                        let trees: std::collections::BTreeSet<u32> = self
                            .procs
                            .live()
                            .iter()
                            .filter_map(|p| self.procs.tree_of(*p))
                            .collect();
                        for t in &trees {
                            self.enforce(
                                Action::Stop,
                                *t,
                                Clock::monotonic_now(),
                                "analyser-failure-closed",
                                &format!("the analyser failed ({why}); failure mode closed"),
                            );
                        }
                        if let Some(a) = &mut self.analyser {
                            a.stopped = trees.into_iter().collect();
                        }
                    }
                }
                crate::analyser::client::Event::Up => {
                    self.write_record("verdict", json!({"accepted": true, "analyser": "up"}));
                    let stopped = self
                        .analyser
                        .as_mut()
                        .map(|a| std::mem::take(&mut a.stopped))
                        .unwrap_or_default();
                    for t in stopped {
                        self.enforce(
                            Action::Resume,
                            t,
                            Clock::monotonic_now(),
                            "analyser-failure-closed",
                            "the analyser answers again",
                        );
                    }
                }
            }
        }
    }
}
