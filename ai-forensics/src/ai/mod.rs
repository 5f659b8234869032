//! AI-aware forensics: what no generic syscall tool knows about the workload.
//! Model artefacts and their traffic, workload phases with training/inference
//! classification, exfiltration accounting, process roles, GPU activity, and
//! deviations from a learned baseline. Fed by the consumer from the event
//! stream (events mode), reported in the summary, the store and the report.
pub mod artefacts;
pub mod baseline;
pub mod exfil;
pub mod gpu;
pub mod phases;
pub mod roles;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use self::{
    artefacts::{Artefacts, Kind},
    baseline::{Observed, Profile},
    exfil::Exfil,
    gpu::Gpu,
    phases::{Phases, Sign},
};
use crate::{
    decode::{Syscall, args::int, escape, flags},
    state::{fds::FdTables, procs::Processes},
    syscall::table,
};

/// Everything AI-aware, for one session.
#[derive(Default)]
pub struct AiState {
    /// Artefacts.
    pub artefacts: Artefacts,
    /// Exfiltration accounting.
    pub exfil: Exfil,
    /// Phases.
    pub phases: Phases,
    /// GPU activity.
    pub gpu: Gpu,
    /// Roles seen from identity (launcher, ranks).
    pub roles: BTreeMap<u32, String>,
    /// The baseline to compare with (`--baseline`).
    pub baseline: Option<Profile>,
    /// What this run did, in baseline terms.
    pub observed: Observed,
    /// Deviations already reported.
    pub deviations: Vec<String>,
    /// LLM API calls seen in TLS plaintext, per process.
    pub llm: BTreeMap<u32, LlmUse>,
    cpu_last: HashMap<u32, (u64, u64)>,
}

fn is_code(path: &[u8]) -> bool {
    let p = String::from_utf8_lossy(path);
    p.ends_with(".py")
        || p.ends_with(".pyc")
        || p.contains(".so")
        || p.contains("site-packages")
        || p.contains("dist-packages")
        || p.contains("lib-dynload")
}

/// A process's LLM API use (from `--tls-capture`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LlmUse {
    /// Calls.
    pub calls: u64,
    /// Models asked for or answered by.
    pub models: std::collections::BTreeSet<String>,
    /// Tool calls the replies asked for, by tool.
    pub tool_calls: BTreeMap<String, u64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// The peer of a connected network socket from its fd description.
fn peer_of(desc: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(desc);
    if !s.contains("AF_INET") {
        return None;
    }
    s.split("-> ")
        .nth(1)
        .or_else(|| s.split("<- ").nth(1))
        .map(|x| x.trim_end_matches(']').to_owned())
}

impl AiState {
    /// An LLM API call of `pid` (strings already escaped).
    pub fn llm_call(&mut self, pid: u32, c: &crate::tls::llm::Call) {
        if !self.llm.contains_key(&pid) && self.llm.len() >= 4096 {
            return;
        }
        let u = self.llm.entry(pid).or_default();
        u.calls += 1;
        if let Some(m) = &c.model
            && u.models.len() < 16
        {
            u.models.insert(m.clone());
        }
        for t in &c.tool_calls {
            if u.tool_calls.len() < 64 || u.tool_calls.contains_key(&t.name) {
                *u.tool_calls.entry(t.name.clone()).or_default() += 1;
            }
        }
        u.input_tokens += c.usage.input.unwrap_or(0);
        u.output_tokens += c.usage.output.unwrap_or(0);
    }

    /// A fresh state comparing with `baseline`, if any.
    #[must_use]
    pub fn new(baseline: Option<Profile>) -> Self {
        Self {
            baseline,
            ..Default::default()
        }
    }

    /// A process came under tracing or executed a program.
    pub fn on_process(&mut self, pid: u32, cmdline: &str, cwd_root: bool) {
        if let Some(r) = roles::from_identity(cmdline, pid) {
            self.roles.insert(pid, r);
        }
        if cwd_root && let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
            self.exfil.own_dir(&cwd.to_string_lossy());
        }
    }

    /// A process exited: its phase timeline is finished and its raw
    /// samples freed, so exited processes cost only their summary.
    pub fn on_exit(&mut self, pid: u32) {
        self.phases.finish(pid);
        self.cpu_last.remove(&pid);
    }

    /// A program was executed. Returns new baseline deviations.
    pub fn on_exec(&mut self, filename: &[u8]) -> Vec<String> {
        let f = escape::escape(filename);
        self.observed.exes.insert(f.clone());
        self.check("exe", &f, &format!("new executable {f}"))
    }

    fn check(&mut self, kind: &str, item: &str, what: &str) -> Vec<String> {
        match &self.baseline {
            Some(p)
                if p.is_new(kind, item)
                    && !self.deviations.iter().any(|d| d == what)
                    && self.deviations.len() < 1000 =>
            {
                self.deviations.push(what.to_owned());
                vec![what.to_owned()]
            }
            _ => Vec::new(),
        }
    }

    /// Samples CPU time of `pid` (call about every 100 ms).
    pub fn sample_cpu(&mut self, pid: u32, now_ns: u64) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let ns = ticks * 1_000_000_000 / crate::target::procfs::clock_ticks();
        let (prev_cpu, prev_ts) = self
            .cpu_last
            .insert(pid, (ns, now_ns))
            .unwrap_or((ns, now_ns));
        // Spread the CPU used since the last sample over the bins it covers.
        let used = ns.saturating_sub(prev_cpu);
        let span = now_ns.saturating_sub(prev_ts).max(1);
        let mut t = prev_ts;
        while t < now_ns {
            let bin_end = (t / phases::BIN_NS + 1) * phases::BIN_NS;
            let part = bin_end.min(now_ns) - t;
            self.phases.cpu(pid, t, used * part / span);
            t = bin_end;
        }
    }

    /// Accounts one syscall. Call before the fd table applies it. Returns new
    /// baseline deviations.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per kind of call, in one place"
    )]
    pub fn apply(&mut self, s: &Syscall, fds: &FdTables) -> Vec<String> {
        let mut dev = Vec::new();
        if s.at_entry {
            return dev;
        }
        let Some(name) = table::name(s.nr) else {
            return dev;
        };
        let ok = s.ret >= 0;
        let a = &s.args;
        let fd0 = int(a[0]);
        let fd_entry = fds.get(s.tgid, fd0);
        let fd_path = fd_entry
            .filter(|e| e.is_path)
            .map(|e| escape::escape(&e.name));
        let art_kind = |p: &Option<String>, st: &Artefacts| {
            p.as_ref().and_then(|p| st.by_path.get(p)).map(|x| x.kind)
        };
        let mut sign = Sign::Other;
        match name {
            "open" | "openat" | "openat2" | "creat" => {
                if let Some(p) = &s.str0 {
                    let fl = match name {
                        "open" => a[1],
                        "openat" => a[2],
                        "creat" => libc::O_WRONLY as u64,
                        _ => 0,
                    };
                    let writes = flags::open_writes(fl);
                    let path = escape::escape(p);
                    if ok {
                        self.artefacts.opened(&path, s.tgid, s.ts_ns, writes);
                        if let Some(x) = self.artefacts.by_path.get(&path) {
                            if path.starts_with('/') {
                                self.exfil.own_dir(&baseline::dir_of(&path));
                            }
                            self.observed.artefacts.insert(path.clone());
                            sign = if writes {
                                Sign::Checkpoint
                            } else if x.kind == Kind::Dataset {
                                Sign::Data
                            } else {
                                Sign::ModelLoad
                            };
                        } else if is_code(p) {
                            sign = Sign::Import;
                        }
                        if writes && !path.starts_with("/dev/") && !path.starts_with("/proc/") {
                            let d = baseline::dir_of(&path);
                            self.observed.dirs_written.insert(d.clone());
                            dev.extend(self.check(
                                "dir",
                                &d,
                                &format!("new directory written {d}"),
                            ));
                        }
                    } else if is_code(p) {
                        sign = Sign::Import;
                    }
                }
            }
            "stat" | "lstat" | "newfstatat" | "statx" | "access" | "faccessat" | "faccessat2"
            | "readlink" | "getdents64"
                if s.str0.as_deref().is_some_and(is_code)
                    || fd_entry.is_some_and(|e| is_code(&e.name)) =>
            {
                sign = Sign::Import;
            }
            "read" | "pread64" | "readv" | "preadv" | "preadv2" if ok => {
                let n = s.ret as u64;
                match art_kind(&fd_path, &self.artefacts) {
                    Some(k) => {
                        let p = fd_path.clone().unwrap_or_default();
                        self.artefacts.io(&p, s.ts_ns, n, 0, 0);
                        if matches!(k, Kind::Weights | Kind::Checkpoint) {
                            self.exfil.model_read(s.tree, n);
                        }
                        sign = if k == Kind::Dataset {
                            Sign::Data
                        } else {
                            Sign::ModelLoad
                        };
                    }
                    None if fd_entry.is_some_and(|e| is_code(&e.name)) => sign = Sign::Import,
                    None if fd_entry.is_some_and(|e| peer_of(&e.name).is_some()) => {
                        sign = Sign::Serving
                    }
                    None => {}
                }
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendto" | "sendmsg"
                if ok =>
            {
                let n = s.ret as u64;
                if art_kind(&fd_path, &self.artefacts).is_some() {
                    self.artefacts
                        .io(fd_path.as_deref().unwrap_or_default(), s.ts_ns, 0, n, 0);
                    sign = Sign::Checkpoint;
                } else if let Some(peer) = fd_entry.and_then(|e| peer_of(&e.name)) {
                    self.exfil.sent(s.tree, &peer, n);
                    sign = Sign::Serving;
                } else if name == "sendto"
                    && let Some(addr) = crate::decode::sockaddr::parse(&s.blob)
                    && matches!(
                        addr,
                        crate::decode::sockaddr::SockAddr::Inet(_)
                            | crate::decode::sockaddr::SockAddr::Inet6(_)
                    )
                {
                    self.exfil.sent(s.tree, &addr.text(), n);
                    sign = Sign::Serving;
                } else if let Some(p) = &fd_path {
                    self.exfil.wrote(s.tree, p, n);
                }
            }
            "mmap" if ok => {
                let len = a[1];
                if flags::map_anonymous(a[3]) {
                    sign = Sign::Alloc;
                } else if let Some(p) = fds
                    .get(s.tgid, int(a[4]))
                    .filter(|e| e.is_path)
                    .map(|e| escape::escape(&e.name))
                {
                    if let Some(k) = self.artefacts.by_path.get(&p).map(|x| x.kind) {
                        self.artefacts.io(&p, s.ts_ns, 0, 0, len);
                        if matches!(k, Kind::Weights | Kind::Checkpoint) {
                            self.exfil.model_read(s.tree, len);
                        }
                        sign = Sign::ModelLoad;
                    } else {
                        sign = Sign::Import;
                    }
                }
            }
            "brk" | "munmap" | "mremap" | "madvise" => sign = Sign::Alloc,
            "accept" | "accept4" | "recvfrom" | "recvmsg" => sign = Sign::Serving,
            "connect" if ok || s.ret == -i64::from(libc::EINPROGRESS) => {
                if let Some(addr) = crate::decode::sockaddr::parse(&s.blob) {
                    let ep = match &addr {
                        crate::decode::sockaddr::SockAddr::Unix(_) => addr.text(),
                        other => other.endpoint().unwrap_or_default(),
                    };
                    self.observed.endpoints.insert(ep.clone());
                    dev.extend(self.check("endpoint", &ep, &format!("new endpoint {ep}")));
                }
            }
            "ioctl" => {
                if let Some(e) = fd_entry
                    && gpu::is_gpu_device(&String::from_utf8_lossy(&e.name))
                {
                    self.gpu.ioctl(
                        &escape::escape(&e.name),
                        &flags::ioctl_req(a[1] & 0xffff_ffff),
                    );
                }
            }
            _ => {}
        }
        self.phases.note(s.tgid, s.ts_ns, sign, name);
        dev
    }

    /// Bytes the tree sent or wrote outside after reading model artefacts.
    #[must_use]
    pub fn exfil_of(&self, tree: u32) -> u64 {
        self.exfil
            .trees
            .get(&tree)
            .map_or(0, |t| t.after_model_read)
    }

    /// The AI section of the summary.
    #[must_use]
    pub fn json(&mut self, procs: &Processes, counts: &BTreeMap<String, u64>) -> Value {
        self.artefacts.refresh_formats();
        self.observed.counts.clone_from(counts);
        let mut phases = serde_json::Map::new();
        let mut classes = serde_json::Map::new();
        let mut roles = serde_json::Map::new();
        // Artefact traffic by the process that opened it, in one pass (a
        // lookup per process, not a scan: runs can retain 65,536 processes).
        let mut traffic: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
        for a in self.artefacts.by_path.values() {
            let t = traffic.entry(a.opener).or_default();
            match a.kind {
                Kind::Checkpoint => t.0 += a.bytes_written,
                Kind::Weights => t.1 += a.bytes_read + a.bytes_mapped,
                Kind::Dataset => t.2 += a.bytes_read,
                _ => {}
            }
        }
        for p in procs.iter() {
            let tl = self.phases.timeline(p.pid);
            let (ckpt, weights, data) = traffic.get(&p.pid).copied().unwrap_or_default();
            let c = phases::classify(&tl, ckpt, weights, data);
            let parent = p.ppid.and_then(|pp| procs.get(pp));
            let parent_ai = parent.is_some_and(|pp| {
                traffic.contains_key(&pp.pid) || self.roles.contains_key(&pp.pid)
            });
            let same_exe = parent.is_some_and(|pp| pp.exe == p.exe);
            let execed = parent.is_some_and(|pp| pp.exe != p.exe);
            let role = self
                .roles
                .get(&p.pid)
                .cloned()
                .or_else(|| {
                    self.llm
                        .contains_key(&p.pid)
                        .then(|| "llm_client".to_owned())
                })
                .or_else(|| roles::from_lineage(parent_ai, same_exe, execed).map(str::to_owned))
                .or_else(|| (c.kind != "unknown").then(|| c.kind.to_owned()));
            if !tl.is_empty() {
                phases.insert(p.pid.to_string(), json!(tl));
            }
            // Unknown is listed when something was seen, with what it was.
            if c.kind != "unknown" || !c.evidence.is_empty() {
                classes.insert(p.pid.to_string(), json!(c));
            }
            if let Some(r) = role {
                roles.insert(p.pid.to_string(), json!(r));
            }
        }
        let mut baseline = Value::Null;
        if let Some(p) = &self.baseline {
            let all = p.deviations(&self.observed);
            baseline = json!({"profile_sessions": p.sessions, "deviations": all, "mix_distance": baseline::distance(&p.syscall_mix, &{
                let total: u64 = counts.values().sum();
                counts.iter().map(|(k, v)| (k.clone(), *v as f64 / total.max(1) as f64)).collect()
            })});
        }
        json!({
            "artefacts": self.artefacts.by_path.values().collect::<Vec<_>>(),
            "model_bytes_in": self.artefacts.model_bytes_in(),
            "phases": phases,
            "phases_truncated": self.phases.truncated,
            "classification": classes,
            "roles": roles,
            "exfiltration": self.exfil.trees,
            "gpu": self.gpu.json(),
            "llm": self.llm,
            "baseline": baseline,
        })
    }
}
