//! Evaluating rules against the event stream: conditions, thresholds over
//! time windows, and sequences (`then`). The same engine runs live (in the
//! consumer thread) and over a stored session (`rules test`).
use std::{
    borrow::Cow,
    collections::{HashMap, VecDeque},
};

use serde_json::Value;

use super::rules::{Action, ArgCond, Cond, RetCond, Rule, Rules, Scope, Severity};
use crate::decode::args::Args;

/// What the engine knows about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// Parent.
    pub ppid: Option<u32>,
    /// Name.
    pub comm: String,
    /// Executable.
    pub exe: String,
    /// Command line joined with spaces.
    pub cmdline: String,
    /// Real uid.
    pub uid: Option<u32>,
    /// AI flags ([`ai_bits`](crate::policy::rules::ai_bits)): the kernel
    /// saw it (or the process it was forked from) open an ML or LLM runtime
    /// or model file.
    pub ai: u8,
}

/// One syscall, as rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Record sequence number.
    pub seq: u64,
    /// Monotonic entry time.
    pub ts_ns: u64,
    /// Process.
    pub pid: u32,
    /// Thread.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// Syscall name.
    pub syscall: &'a str,
    /// Thread name.
    pub comm: &'a str,
    /// Main path (escaped form), as the process passed it.
    pub path: Option<&'a str>,
    /// The path the kernel resolved for the descriptor the call returned
    /// (escaped form), when it differs: `path` conditions hold when either
    /// matches, `path_not` when neither does.
    pub resolved: Option<&'a str>,
    /// Rendered arguments.
    pub args: &'a Args,
    /// Return value (None at entry).
    pub ret: Option<i64>,
    /// Error name.
    pub errno: Option<&'a str>,
    /// Bytes the tree sent or wrote outside its directories after reading
    /// model artefacts (AI-aware accounting; 0 when not known).
    pub exfil_bytes: u64,
}

/// A rule that fired.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Rule index.
    pub rule: usize,
    /// Rule name.
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Action to take.
    pub action: Action,
    /// Process of the last matching event.
    pub pid: u32,
    /// Thread.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// Time of the last matching event.
    pub ts_ns: u64,
    /// Sequence numbers of the events that made it fire.
    pub evidence: Vec<u64>,
    /// Why, in words.
    pub reason: String,
}

#[derive(Default)]
struct Window {
    items: VecDeque<(u64, u64, u64)>,
    bytes: u64,
}

/// A sequence's first part that fired: when, and its evidence.
type Armed = (u64, Vec<u64>);

/// Most processes the engine remembers.
const MAX_PROCS: usize = 65_536;
/// Most evidence sequence numbers kept per alert.
const MAX_EVIDENCE: usize = 64;
/// Repeats of the same rule for the same process within this time are not
/// alerted again.
const REPEAT_NS: u64 = 1_000_000_000;

/// The rule engine.
pub struct Engine {
    rules: Rules,
    procs: HashMap<u32, ProcInfo>,
    windows: HashMap<(usize, u32), Window>,
    armed: HashMap<(usize, u32), Vec<Armed>>,
    last: HashMap<(usize, u32), u64>,
    /// Judge kernel rules here too, on the recorded paths: a replay of a
    /// recording (`rules test --session`), where no kernel decides.
    judge_kernel_rules: bool,
    /// Per tree, what LLM replies and tool calls said lately (for `from_llm`).
    llm_said: HashMap<u32, VecDeque<Said>>,
}

/// What one LLM call said: when, and the commands it could have named.
#[derive(Clone, Debug)]
struct Said {
    ts_ns: u64,
    text: String,
    pieces: Vec<String>,
}

/// LLM calls remembered per tree.
const SAID_KEEP: usize = 32;

/// Path-like words of a text (`/...`, `~/...`, `./...`), in order, each once.
#[must_use]
pub fn paths_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| c.is_whitespace() || "\"'`,;(){}[]<>|&=".contains(c)) {
        let w = w.trim_end_matches(['.', ':']);
        if (w.starts_with('/') || w.starts_with("~/") || w.starts_with("./"))
            && w.len() > 1
            && !out.iter().any(|o| o == w)
        {
            out.push(w.to_owned());
        }
        if out.len() >= 32 {
            break;
        }
    }
    out
}

/// Candidate commands in what an LLM said: its lines, and the string
/// values of JSON in it (tool-call arguments), each at least 4 bytes.
fn pieces_of(text: &str) -> Vec<String> {
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.trim().to_owned()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line
            .trim()
            .trim_matches('`')
            .trim_start_matches("$ ")
            .trim();
        if let Ok(v) = serde_json::from_str::<Value>(l) {
            strings(&v, &mut out);
        } else {
            out.push(l.to_owned());
        }
    }
    out.retain(|p| p.len() >= 4);
    out.truncate(256);
    out
}

fn key(scope: Scope, ev: &Event<'_>) -> u32 {
    match scope {
        Scope::Process => ev.pid,
        Scope::Tree => ev.tree,
    }
}

fn num(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .and_then(|h| i64::from_str_radix(h, 16).ok()),
        _ => None,
    }
}

/// The socket address argument of a call, if any, as (ip, port).
fn sockaddr(args: &Args) -> Option<(std::net::IpAddr, u16)> {
    ["addr", "dest_addr", "src_addr"].iter().find_map(|k| {
        let a = args.get(k)?;
        // An IPv4-mapped IPv6 address is the IPv4 address it maps.
        let ip = a
            .get("ip")?
            .as_str()?
            .parse::<std::net::IpAddr>()
            .ok()?
            .to_canonical();
        Some((ip, a.get("port")?.as_u64()? as u16))
    })
}

impl Engine {
    /// An engine for `rules`.
    #[must_use]
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            procs: HashMap::new(),
            windows: HashMap::new(),
            armed: HashMap::new(),
            last: HashMap::new(),
            judge_kernel_rules: false,
            llm_said: HashMap::new(),
        }
    }

    /// An engine for a replay of a recording: kernel rules are judged on
    /// the recorded paths (as passed and as the kernel resolved them), for
    /// calls that succeeded, since no kernel decides them there.
    #[must_use]
    pub fn for_replay(rules: Rules) -> Self {
        Self {
            judge_kernel_rules: true,
            ..Self::new(rules)
        }
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// A process exited: what the engine held for it alone (its identity,
    /// per-process windows and pending sequences, repeat suppression) is
    /// dropped, so a workload that churns processes cannot grow the engine.
    /// Per-tree state stays with the tree.
    pub fn exited(&mut self, pid: u32) {
        self.procs.remove(&pid);
        for (i, rule) in self.rules.rules.iter().enumerate() {
            self.last.remove(&(i, pid));
            if rule.threshold.is_some_and(|t| t.per == Scope::Process) {
                self.windows.remove(&(i, pid));
            }
            if rule
                .then
                .as_ref()
                .is_some_and(|t| t.scope == Scope::Process)
            {
                self.armed.remove(&(i, pid));
            }
        }
    }

    /// Held state, for tests: processes, windows, pending sequences, repeat
    /// stamps.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize, usize) {
        (
            self.procs.len(),
            self.windows.len(),
            self.armed.len(),
            self.last.len(),
        )
    }

    /// Records (or updates) what is known about a process.
    pub fn observe(&mut self, pid: u32, mut info: ProcInfo) {
        if self.procs.len() >= MAX_PROCS
            && !self.procs.contains_key(&pid)
            && let Some(k) = self.procs.keys().next().copied()
        {
            self.procs.remove(&k);
        }
        let parent_ai = info
            .ppid
            .and_then(|p| self.procs.get(&p))
            .map_or(0, |p| p.ai);
        if let Some(old) = self.procs.get(&pid) {
            info.ai |= old.ai;
        }
        info.ai |= parent_ai;
        self.procs.insert(pid, info);
    }

    /// The kernel flagged `pid` an AI workload (`bits`: `ai_bits`).
    pub fn mark(&mut self, pid: u32, bits: u8) {
        self.procs.entry(pid).or_default().ai |= bits;
    }

    /// A new process: it inherits its parent's identity until it execs.
    pub fn fork(&mut self, parent: u32, child: u32) {
        let mut info = self.procs.get(&parent).cloned().unwrap_or_default();
        info.ppid = Some(parent);
        self.observe(child, info);
    }

    /// What the engine knows about `pid`.
    #[must_use]
    pub fn process(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    fn ancestors_match(&self, pid: u32, re: &regex::Regex) -> bool {
        let mut cur = self.procs.get(&pid).and_then(|p| p.ppid);
        for _ in 0..64 {
            let Some(p) = cur else { return false };
            let Some(info) = self.procs.get(&p) else {
                return false;
            };
            if re.is_match(&info.comm) || re.is_match(&info.exe) {
                return true;
            }
            cur = info.ppid;
        }
        false
    }

    /// An LLM call of `tree` at `ts_ns` said `text` (reply and tool-call
    /// arguments, in their escaped form).
    pub fn llm_said(&mut self, tree: u32, ts_ns: u64, text: &str) {
        let q = self.llm_said.entry(tree).or_default();
        q.push_back(Said {
            ts_ns,
            text: text.to_owned(),
            pieces: pieces_of(text),
        });
        while q.len() > SAID_KEEP {
            q.pop_front();
        }
    }

    /// An LLM call (an `llm` record's `detail`), as the rules see it: the
    /// pseudo-syscall `llm` with arguments `api`, `model`, `endpoint`,
    /// `host`, `prompt` (the last user message), `reply`, `tool` (the tool
    /// names called, space-separated) and `arguments` (every tool call's
    /// arguments, newline-separated); the paths named in the arguments are
    /// its paths (a `path` condition holds for any of them). What it said is
    /// remembered for `from_llm`. `ev` gives who and when (its syscall,
    /// path and args are replaced).
    pub fn on_llm(&mut self, ev: &Event<'_>, detail: &Value) -> Vec<Alert> {
        let l = &detail["llm"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let calls = l["tool_calls"].as_array().cloned().unwrap_or_default();
        let tools: Vec<String> = calls.iter().map(|t| text(&t["name"])).collect();
        let arguments: Vec<String> = calls.iter().map(|t| text(&t["arguments"])).collect();
        let prompt = l["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| text(&m["content"]))
            .unwrap_or_default();
        let reply = text(&l["reply"]);
        let args = Args(vec![
            (Cow::Borrowed("api"), l["api"].clone()),
            (Cow::Borrowed("model"), l["model"].clone()),
            (Cow::Borrowed("endpoint"), detail["endpoint"].clone()),
            (Cow::Borrowed("host"), detail["host"].clone()),
            (Cow::Borrowed("prompt"), Value::String(prompt)),
            (Cow::Borrowed("reply"), Value::String(reply.clone())),
            (Cow::Borrowed("tool"), Value::String(tools.join(" "))),
            (
                Cow::Borrowed("arguments"),
                Value::String(arguments.join("\n")),
            ),
        ]);
        self.llm_said(
            ev.tree,
            ev.ts_ns,
            &format!("{reply}\n{}", arguments.join("\n")),
        );
        let paths = paths_in(&arguments.join("\n"));
        let mut list: Vec<Option<&str>> = paths.iter().map(|p| Some(p.as_str())).collect();
        if list.is_empty() {
            list.push(None);
        }
        for path in list {
            let e = Event {
                syscall: super::rules::LLM,
                path,
                resolved: None,
                args: &args,
                ret: Some(0),
                errno: None,
                exfil_bytes: 0,
                ..*ev
            };
            let alerts = self.on_event(&e);
            if !alerts.is_empty() {
                return alerts;
            }
        }
        Vec::new()
    }

    /// Whether an exec's command (its command line, escaped) was named by
    /// an LLM call of its tree in the `within` before it.
    fn said_by_llm(&self, ev: &Event<'_>, within: std::time::Duration) -> bool {
        let argv = ev.args["argv"].as_array().map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let cmd = argv
            .or_else(|| self.procs.get(&ev.pid).map(|i| i.cmdline.clone()))
            .unwrap_or_default();
        if cmd.trim().len() < 4 {
            return false;
        }
        let since = ev.ts_ns.saturating_sub(within.as_nanos() as u64);
        self.llm_said.get(&ev.tree).is_some_and(|q| {
            q.iter()
                .filter(|s| s.ts_ns >= since && s.ts_ns <= ev.ts_ns)
                .any(|s| {
                    s.text.contains(cmd.trim()) || s.pieces.iter().any(|p| cmd.contains(p.as_str()))
                })
        })
    }

    fn matches(&self, c: &Cond, ev: &Event<'_>) -> bool {
        if let Some(within) = c.from_llm
            && !(matches!(ev.syscall, "execve" | "execveat") && self.said_by_llm(ev, within))
        {
            return false;
        }
        if let Some(s) = &c.syscalls
            && !s.contains(ev.syscall)
        {
            return false;
        }
        let paths = || ev.path.into_iter().chain(ev.resolved);
        if let Some(g) = &c.path
            && !paths().any(|p| g.is_match(p))
        {
            return false;
        }
        if let Some(g) = &c.path_not
            && paths().any(|p| g.is_match(p))
        {
            return false;
        }
        if let Some(b) = &c.basename {
            let base = ev.path.map(|p| p.rsplit('/').next().unwrap_or(p));
            if !base.is_some_and(|b2| b.contains(b2)) {
                return false;
            }
        }
        let info = self.procs.get(&ev.pid);
        if let Some(re) = &c.comm
            && !re.is_match(ev.comm)
        {
            return false;
        }
        if let Some(re) = &c.exe
            && !info.is_some_and(|i| re.is_match(&i.exe))
        {
            return false;
        }
        if let Some(re) = &c.cmdline
            && !info.is_some_and(|i| re.is_match(&i.cmdline))
        {
            return false;
        }
        if let Some(re) = &c.ancestor
            && !self.ancestors_match(ev.pid, re)
        {
            return false;
        }
        if let Some(u) = c.uid
            && info.and_then(|i| i.uid) != Some(u)
        {
            return false;
        }
        if let Some(ai) = c.ai_workload
            && !ai.test(info.map_or(0, |i| i.ai))
        {
            return false;
        }
        if let Some(r) = c.ret {
            let ok = match (r, ev.ret) {
                (RetCond::Ok, Some(v)) => ev.errno.is_none() && v >= 0,
                (RetCond::Error, _) => ev.errno.is_some(),
                (RetCond::Cmp(cmp), Some(v)) => cmp.test(v),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(set) = &c.errno
            && !ev.errno.is_some_and(|e| set.contains(e))
        {
            return false;
        }
        for (name, cond) in &c.args {
            let v = &ev.args[name.as_str()];
            let ok = match cond {
                ArgCond::Num(cmps) => num(v).is_some_and(|n| cmps.iter().all(|c| c.test(n))),
                ArgCond::Glob(g) => v.as_str().is_some_and(|s| g.is_match(s)),
                ArgCond::Contains(flags) => v
                    .as_str()
                    .is_some_and(|s| flags.iter().all(|f| s.split('|').any(|x| x == f))),
            };
            if !ok {
                return false;
            }
        }
        if let Some(cmp) = c.exfil
            && !cmp.test(ev.exfil_bytes as i64)
        {
            return false;
        }
        if c.addr_in.is_some() || c.addr_not_in.is_some() || c.port.is_some() {
            let Some((ip, port)) = sockaddr(ev.args) else {
                return false;
            };
            if let Some(nets) = &c.addr_in
                && !nets.iter().any(|n| n.contains(&ip))
            {
                return false;
            }
            if let Some(nets) = &c.addr_not_in
                && nets.iter().any(|n| n.contains(&ip))
            {
                return false;
            }
            if let Some(ports) = &c.port
                && !ports.contains(&port)
            {
                return false;
            }
        }
        true
    }

    /// Bytes a matching call moved, for byte thresholds.
    fn bytes_of(ev: &Event<'_>) -> u64 {
        match ev.syscall {
            "mmap" => ev.args["length"].as_u64().unwrap_or(0),
            _ => ev.ret.filter(|r| *r > 0).map_or(0, |r| r as u64),
        }
    }

    fn describe(rule: &Rule, ev: &Event<'_>, extra: &str) -> String {
        let what = ev
            .path
            .map_or_else(|| ev.syscall.to_owned(), |p| format!("{}({p})", ev.syscall));
        let d = if rule.description.is_empty() {
            String::new()
        } else {
            format!(": {}", rule.description)
        };
        format!(
            "{}[{}] {what}{extra} matched rule '{}'{d}",
            ev.comm, ev.pid, rule.name
        )
    }

    /// Evaluates one event; returns the alerts it completes.
    pub fn on_event(&mut self, ev: &Event<'_>) -> Vec<Alert> {
        let mut out = Vec::new();
        for i in 0..self.rules.rules.len() {
            let rule = &self.rules.rules[i];
            // Kernel rules are decided in the kernel, on the object opened
            // or executed (their `denied` records raise the alerts): a
            // second verdict here on the path string would disagree with it
            // (a failed execve, a name that is not the file).
            if rule.kernel
                && (!self.judge_kernel_rules || ev.ret.is_none_or(|r| (-4095..0).contains(&r)))
            {
                continue;
            }
            // A pending sequence: does this event complete it?
            if let Some(then) = &rule.then {
                let k = key(then.scope, ev);
                if let Some(list) = self.armed.get_mut(&(i, k)) {
                    let within = then.within.as_nanos() as u64;
                    list.retain(|(t, _)| ev.ts_ns.saturating_sub(*t) <= within);
                }
                let armed = self.armed.get(&(i, k)).is_some_and(|l| !l.is_empty());
                if armed && self.matches(&then.when, ev) {
                    let mut evidence = self
                        .armed
                        .remove(&(i, k))
                        .and_then(|mut l| l.pop())
                        .map(|x| x.1)
                        .unwrap_or_default();
                    evidence.push(ev.seq);
                    let rule = &self.rules.rules[i];
                    out.push(self.alert(rule, ev, evidence, " after the rule's first part"));
                    continue;
                }
            }
            if !self.matches(&rule.when, ev) {
                continue;
            }
            let mut evidence = vec![ev.seq];
            if let Some(t) = rule.threshold {
                let k = match t.per {
                    Scope::Process => ev.pid,
                    Scope::Tree => ev.tree,
                };
                let w = self.windows.entry((i, k)).or_default();
                let b = Self::bytes_of(ev);
                w.items.push_back((ev.ts_ns, b, ev.seq));
                w.bytes += b;
                let window = t.window.as_nanos() as u64;
                while w
                    .items
                    .front()
                    .is_some_and(|(ts, _, _)| ev.ts_ns.saturating_sub(*ts) > window)
                {
                    if let Some((_, b0, _)) = w.items.pop_front() {
                        w.bytes -= b0;
                    }
                }
                let count_ok = t.count.is_none_or(|n| w.items.len() as u64 >= n);
                let bytes_ok = t.bytes.is_none_or(|n| w.bytes >= n);
                if !(count_ok && bytes_ok) {
                    continue;
                }
                evidence = w
                    .items
                    .iter()
                    .rev()
                    .take(MAX_EVIDENCE)
                    .map(|x| x.2)
                    .collect();
                evidence.reverse();
                let extra = format!(
                    " ({} calls, {} bytes in {:?})",
                    w.items.len(),
                    w.bytes,
                    t.window
                );
                *w = Window::default();
                if rule.then.is_none() {
                    let rule = &self.rules.rules[i];
                    out.push(self.alert(rule, ev, evidence, &extra));
                    continue;
                }
            }
            if let Some(then) = &rule.then {
                let k = key(then.scope, ev);
                let list = self.armed.entry((i, k)).or_default();
                if list.len() < 1024 {
                    list.push((ev.ts_ns, evidence));
                }
                continue;
            }
            // Plain match: alert, but not again for the same process within a second.
            let last = self.last.entry((i, ev.pid)).or_insert(0);
            if *last != 0 && ev.ts_ns.saturating_sub(*last) < REPEAT_NS {
                continue;
            }
            *last = ev.ts_ns;
            let rule = &self.rules.rules[i];
            out.push(self.alert(rule, ev, evidence, ""));
        }
        out
    }

    fn alert(&self, rule: &Rule, ev: &Event<'_>, evidence: Vec<u64>, extra: &str) -> Alert {
        Alert {
            rule: rule.id,
            name: rule.name.clone(),
            severity: rule.severity,
            action: rule.action,
            pid: ev.pid,
            tid: ev.tid,
            tree: ev.tree,
            ts_ns: ev.ts_ns,
            evidence,
            reason: Self::describe(rule, ev, extra),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(pairs: &[(&'static str, Value)]) -> Args {
        Args(
            pairs
                .iter()
                .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), v.clone()))
                .collect(),
        )
    }

    fn ev<'a>(
        seq: u64,
        ts_s: f64,
        syscall: &'a str,
        path: Option<&'a str>,
        a: &'a Args,
        ret: i64,
    ) -> Event<'a> {
        Event {
            seq,
            ts_ns: (ts_s * 1e9) as u64,
            pid: 10,
            tid: 10,
            tree: 1,
            syscall,
            comm: "python3",
            path,
            resolved: None,
            args: a,
            ret: Some(ret),
            errno: None,
            exfil_bytes: 0,
        }
    }

    const RULES: &str = r#"
version: 1
lists:
  ok: ["127.0.0.0/8"]
rules:
  - name: shell
    action: kill
    match: {syscall: execve, basename: [sh, bash], ai_workload: true}
  - name: exfil
    action: kill
    match: {syscall: read, path: ["*.safetensors"]}
    threshold: {bytes: 1000, window: 30s, per: process}
    then:
      match: {syscall: connect, addr: {not_in: "@ok"}}
      within: 30s
  - name: deletes
    action: alert
    match: {syscall: unlink}
    threshold: {count: 3, window: 1s}
"#;

    #[test]
    fn sequences_thresholds_and_process_conditions() {
        let mut e = Engine::new(Rules::parse("t", RULES).unwrap());
        e.observe(
            10,
            ProcInfo {
                comm: "python3".into(),
                ..Default::default()
            },
        );
        let none = args(&[]);
        // Not an AI process yet: the shell rule does not fire.
        assert!(
            e.on_event(&ev(1, 0.0, "execve", Some("/bin/sh"), &none, 0))
                .is_empty()
        );
        // 600 + 600 bytes of weights cross the threshold.
        assert!(
            e.on_event(&ev(2, 1.0, "read", Some("/m/w.safetensors"), &none, 600))
                .is_empty()
        );
        assert!(
            e.on_event(&ev(3, 2.0, "read", Some("/m/w.safetensors"), &none, 600))
                .is_empty()
        );
        // A connect inside the allow-list does nothing; outside, it completes the sequence.
        let local = args(&[(
            "addr",
            json!({"family": "inet", "ip": "127.0.0.1", "port": 80}),
        )]);
        assert!(
            e.on_event(&ev(4, 3.0, "connect", None, &local, 0))
                .is_empty()
        );
        let remote = args(&[(
            "addr",
            json!({"family": "inet", "ip": "203.0.113.9", "port": 443}),
        )]);
        let a = e.on_event(&ev(5, 4.0, "connect", None, &remote, 0));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, "exfil");
        assert_eq!(a[0].evidence, vec![2, 3, 5]);
        // The kernel's mark record (it opened an ML runtime or model file)
        // makes it an AI workload: the shell rule fires.
        e.mark(10, crate::policy::rules::ai_bits::ML);
        let s = e.on_event(&ev(6, 5.0, "execve", Some("/usr/bin/bash"), &none, 0));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].action, Action::Kill);
        // Three unlinks within a second.
        assert!(
            e.on_event(&ev(7, 6.0, "unlink", Some("/x/1"), &none, 0))
                .is_empty()
        );
        assert!(
            e.on_event(&ev(8, 6.1, "unlink", Some("/x/2"), &none, 0))
                .is_empty()
        );
        assert_eq!(
            e.on_event(&ev(9, 6.2, "unlink", Some("/x/3"), &none, 0))
                .len(),
            1
        );
    }

    /// 10,000 processes that each arm a per-process sequence and trip a
    /// plain rule leave nothing behind once they exit; a per-tree window
    /// stays with its tree.
    #[test]
    fn exited_processes_leave_no_state() {
        let mut e = Engine::new(Rules::parse("t", RULES).unwrap());
        let none = args(&[]);
        for pid in 100..10_100u32 {
            e.observe(pid, ProcInfo::default());
            let mut r = ev(
                u64::from(pid),
                1.0,
                "read",
                Some("/m/w.safetensors"),
                &none,
                2000,
            );
            r.pid = pid;
            assert!(e.on_event(&r).is_empty());
            let mut x = ev(u64::from(pid), 1.0, "execve", Some("/bin/sh"), &none, 0);
            x.pid = pid;
            e.on_event(&x);
            let mut u = ev(u64::from(pid), 1.0, "unlink", Some("/x"), &none, 0);
            u.pid = pid;
            e.on_event(&u);
            e.exited(pid);
        }
        let (procs, windows, armed, last) = e.held();
        assert_eq!((procs, last), (0, 0));
        // The exfil sequence's second part and the unlink threshold count
        // per tree: one entry each, still there for the tree; the read
        // threshold's per-process windows are gone.
        assert_eq!((windows, armed), (1, 1));
    }

    #[test]
    fn sequences_expire() {
        let mut e = Engine::new(Rules::parse("t", RULES).unwrap());
        let none = args(&[]);
        e.on_event(&ev(1, 0.0, "read", Some("/m/w.safetensors"), &none, 2000));
        let remote = args(&[(
            "addr",
            json!({"family": "inet", "ip": "203.0.113.9", "port": 443}),
        )]);
        assert!(
            e.on_event(&ev(2, 40.0, "connect", None, &remote, 0))
                .is_empty(),
            "30 s window passed"
        );
    }
}
