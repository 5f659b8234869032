//! TLS plaintext in the session: records of calls, HTTP exchanges and LLM
//! calls on the same timeline as the syscalls; LLM calls judged by the
//! rules; files to watch found as the targets exec and open them.
use std::{
    path::PathBuf,
    sync::mpsc::{Receiver, SyncSender},
    time::Duration,
};

use super::{
    consumer::{Consumer, Msg},
    options::TlsOptions,
};
use crate::{
    decode::{Syscall, TlsChunk, args::Args, escape},
    loader::Probes,
    output::json,
    policy::engine::Event,
    state::fds::FdTables,
    syscall::table as systable,
    tls::{Output, Tracker, files},
};

/// What attaching the files gave: (file, functions attached or why not).
type Attached = Vec<(String, std::result::Result<Vec<String>, String>)>;

/// Attaches the uprobes to the files known before the workload starts:
/// `--tls-binary`, the linker's TLS libraries, node/bun/deno on PATH.
pub fn attach_known(t: &TlsOptions, probes: &mut Probes, seen: &mut files::Seen) -> Msg {
    let mut list: Vec<(PathBuf, bool)> = t.binaries.iter().map(|b| (b.clone(), true)).collect();
    list.extend(files::system_libraries().into_iter().map(|f| (f, false)));
    list.extend(files::known_binaries().into_iter().map(|f| (f, false)));
    Msg::TlsFiles(attach(probes, list, t.capture_bytes, seen))
}

/// Waits up to `wait` for the consumer's requests and serves every one
/// queued; returns what to tell the consumer, if anything was attached.
pub fn serve(
    rx: &Receiver<Attach>,
    t: &TlsOptions,
    probes: &mut Probes,
    seen: &mut files::Seen,
    wait: Duration,
) -> Option<Msg> {
    let first = rx.recv_timeout(wait).ok()?;
    let mut list = Vec::new();
    for a in std::iter::once(first).chain(rx.try_iter()) {
        match a {
            Attach::Process(pid) => {
                list.extend(files::of_process(pid).into_iter().map(|f| (f, false)));
            }
            Attach::File(f) => list.push((f, false)),
        }
    }
    let done = attach(probes, list, t.capture_bytes, seen);
    (!done.is_empty()).then_some(Msg::TlsFiles(done))
}

/// Attaches the uprobes to each file not looked at before; `named` files
/// (`--tls-binary`) are reported even when they hold no TLS function.
fn attach(
    probes: &mut Probes,
    list: Vec<(PathBuf, bool)>,
    cap: u32,
    seen: &mut files::Seen,
) -> Attached {
    let mut out = Vec::new();
    for (f, named) in list {
        if !seen.first(&f) {
            continue;
        }
        let shown = std::fs::canonicalize(&f)
            .unwrap_or_else(|_| f.clone())
            .display()
            .to_string();
        match probes.attach_tls(&f, crate::tls::FUNCTIONS, cap) {
            Ok(fns) if !fns.is_empty() => {
                tracing::info!("tls: uprobes on {} in {shown}", fns.join(", "));
                out.push((shown, Ok(fns)));
            }
            Ok(_) if named => out.push((shown, Err("no TLS function in it".into()))),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("tls: {shown}: {e}");
                out.push((shown, Err(e.to_string())));
            }
        }
    }
    out
}

/// Something the main thread should attach the TLS uprobes to.
#[derive(Debug)]
pub enum Attach {
    /// A process's executable and mapped TLS libraries.
    Process(u32),
    /// A file a target opened.
    File(PathBuf),
}

/// The consumer's side of TLS capture.
#[derive(Debug)]
pub struct TlsLink {
    /// Connections and counters.
    pub tracker: Tracker,
    /// Requests to the main thread (never blocks: a full queue drops the
    /// request, and the process is looked at again at its next exec).
    pub attach: SyncSender<Attach>,
}

/// The remote end of a socket, from the fd table (`... -> 1.2.3.4:443]`).
fn endpoint(fds: &FdTables, tgid: u32, fd: i64) -> Option<String> {
    let e = fds.get(tgid, fd)?;
    let name = String::from_utf8_lossy(&e.name);
    let (_, peer) = name.split_once("-> ")?;
    Some(peer.trim_end_matches(']').to_owned())
}

impl Consumer {
    /// One record of TLS plaintext.
    pub(super) fn tls_chunk(&mut self, c: TlsChunk) {
        let fds = &self.fds;
        let Some(link) = &mut self.tls else { return };
        let out = link.tracker.chunk(c, &|p, fd| endpoint(fds, p, fd));
        self.tls_emit(out);
    }

    /// A syscall that may tie a TLS connection to its socket, or show a TLS
    /// library being opened.
    pub(super) fn tls_syscall(&mut self, s: &Syscall) {
        let Some(link) = &mut self.tls else { return };
        let name = systable::name(s.nr).unwrap_or("");
        if s.ret >= 0 && crate::tls::SOCKET_IO.contains(&name) {
            let fd = s.args[0] as i32 as i64;
            if self
                .fds
                .get(s.tgid, fd)
                .is_some_and(|e| !e.is_path && e.name.starts_with(b"socket:"))
            {
                let fds = &self.fds;
                link.tracker
                    .socket_io(s.tgid, s.tid, fd, s.ts_ns, &|p, fd| endpoint(fds, p, fd));
            }
        } else if s.ret >= 0
            && matches!(name, "open" | "openat" | "openat2")
            && let Some(p) = s.str0.as_deref()
            && crate::tls::files::is_tls_library(p)
        {
            let path = PathBuf::from(String::from_utf8_lossy(p).into_owned());
            let path = if path.is_absolute() {
                path
            } else {
                // Relative to the process's working directory.
                PathBuf::from(format!("/proc/{}/cwd", s.tgid)).join(path)
            };
            let _ = link.attach.try_send(Attach::File(path));
        }
    }

    /// A target executed a program: its image may carry a TLS library.
    pub(super) fn tls_exec(&mut self, pid: u32) {
        if let Some(link) = &self.tls {
            let _ = link.attach.try_send(Attach::Process(pid));
        }
    }

    /// A process is gone: its connections end.
    pub(super) fn tls_exit(&mut self, pid: u32) {
        let Some(link) = &mut self.tls else { return };
        let out = link.tracker.exited(pid);
        self.tls_emit(out);
    }

    /// The session ends: calls in pieces and open connections are written.
    pub(super) fn tls_finish(&mut self) {
        let fds = &self.fds;
        let Some(link) = &mut self.tls else { return };
        let out = link.tracker.finish_all(&|p, fd| endpoint(fds, p, fd));
        self.tls_emit(out);
    }

    fn tls_emit(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Call { who, ts_ns, rec } => {
                    if self.emitting() {
                        let comm = self.comm_of(who.0);
                        let l = json::line(
                            &self.ctx(),
                            self.seq,
                            "tls",
                            Some(ts_ns),
                            Some((who.0, who.1, &comm)),
                            Some(who.2),
                            &rec,
                            None,
                        );
                        self.emit(l);
                    }
                }
                Output::Exchange { who, ts_ns, rec } => {
                    let kind = if rec.llm.is_some() { "llm" } else { "http" };
                    let seq = self.seq;
                    if self.emitting() {
                        let comm = self.comm_of(who.0);
                        let l = json::line(
                            &self.ctx(),
                            self.seq,
                            kind,
                            Some(ts_ns),
                            Some((who.0, who.1, &comm)),
                            Some(who.2),
                            &rec,
                            rec.path.clone(),
                        );
                        self.emit(l);
                    }
                    if let Some(ai) = &mut self.ai
                        && let Some(c) = &rec.llm
                    {
                        ai.llm_call(who.0, c);
                    }
                    if rec.llm.is_some() {
                        self.judge_llm(seq, who, ts_ns, &rec);
                    }
                }
            }
        }
    }

    fn comm_of(&self, pid: u32) -> Vec<u8> {
        self.procs
            .get(pid)
            .map(|p| p.comm.clone())
            .unwrap_or_default()
    }

    /// An LLM call, judged by the rules (`Engine::on_llm`, shared with
    /// `rules test --session`).
    fn judge_llm(
        &mut self,
        seq: u64,
        who: (u32, u32, u32),
        ts_ns: u64,
        rec: &crate::tls::ExchangeRecord,
    ) {
        let Some(policy) = &mut self.policy else {
            return;
        };
        let Ok(detail) = serde_json::to_value(rec) else {
            return;
        };
        let comm = escape::escape(&self_comm(&self.procs, who.0));
        let args = Args::default();
        let ev = Event {
            exfil_bytes: 0,
            seq,
            ts_ns,
            pid: who.0,
            tid: who.1,
            tree: who.2,
            syscall: crate::policy::rules::LLM,
            comm: &comm,
            path: None,
            resolved: None,
            args: &args,
            ret: Some(0),
            errno: None,
        };
        let alerts = policy.engine.on_llm(&ev, &detail);
        for a in alerts {
            self.raise(a, "rules");
        }
    }
}

fn self_comm(procs: &crate::state::procs::Processes, pid: u32) -> Vec<u8> {
    procs.get(pid).map(|p| p.comm.clone()).unwrap_or_default()
}
