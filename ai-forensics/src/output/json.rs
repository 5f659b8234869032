//! JSON Lines records (schema version [`SCHEMA_VERSION`], see `docs/schema.md`
//! and `ai-forensics schema`).
//!
//! Every record has the same top-level fields, whatever its type:
//! `v, seq, type, ts_ns, time, pid, tid, ppid, comm, exe, tree, detail`.
//! Fields that do not apply are `null`; what is specific to the type is in
//! `detail`. Records are serialised straight from typed structs (no
//! intermediate JSON tree): this is the recorder's hot path.
use serde::Serialize;
use serde_json::{Value, json};

use super::clock::Clock;
use crate::{
    decode::{Exec, Exit, Fork, Lost, Syscall, args, escape},
    state::{fds::FdTables, procs::Processes},
    syscall::signature::Ret,
};

/// Version of the record layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// What JSON rendering needs besides the record.
pub struct Ctx<'a> {
    /// Clock conversion.
    pub clock: &'a Clock,
    /// Process identities.
    pub procs: &'a Processes,
    /// fd tables.
    pub fds: &'a FdTables,
}

/// The common top-level fields.
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    v: u32,
    seq: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    ts_ns: Option<u64>,
    time: Option<String>,
    pid: Option<u32>,
    tid: Option<u32>,
    ppid: Option<u32>,
    comm: Option<std::borrow::Cow<'a, str>>,
    exe: Option<std::borrow::Cow<'a, str>>,
    tree: Option<u32>,
    detail: D,
}

/// A serialised record and what the store indexes it by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The JSON text (one line, no newline).
    pub json: String,
    /// Record type.
    pub kind: &'static str,
    /// Monotonic time.
    pub ts_ns: Option<u64>,
    /// Process.
    pub pid: Option<u32>,
    /// Thread.
    pub tid: Option<u32>,
    /// Syscall name (syscall records).
    pub syscall: Option<String>,
    /// Main path of the record, for `query --path`.
    pub path: Option<String>,
}

/// Serialises a record with the common fields.
#[must_use]
#[expect(
    clippy::too_many_arguments,
    reason = "the envelope's fields, in schema order"
)]
pub fn line<D: Serialize>(
    ctx: &Ctx<'_>,
    seq: u64,
    kind: &'static str,
    ts_ns: Option<u64>,
    who: Option<(u32, u32, &[u8])>,
    tree: Option<u32>,
    detail: D,
    path: Option<String>,
) -> Line {
    let proc_ = who.and_then(|(p, _, _)| ctx.procs.get(p));
    let env = Envelope {
        v: SCHEMA_VERSION,
        seq,
        kind,
        ts_ns,
        time: ts_ns.map(|t| ctx.clock.rfc3339(t)),
        pid: who.map(|w| w.0),
        tid: who.map(|w| w.1),
        ppid: proc_.and_then(|p| p.ppid),
        comm: who.map(|w| escape::escape_cow(w.2)),
        exe: proc_.and_then(|p| p.exe.as_deref()).map(escape::escape_cow),
        tree,
        detail,
    };
    // Sized for a typical record, so the serialiser does not regrow it.
    let mut buf = Vec::with_capacity(512);
    let json = match serde_json::to_writer(&mut buf, &env) {
        // SAFETY: serde_json writes valid UTF-8.
        Ok(()) => unsafe { String::from_utf8_unchecked(buf) },
        Err(_) => String::new(),
    };
    Line {
        json,
        kind,
        ts_ns,
        pid: who.map(|w| w.0),
        tid: who.map(|w| w.1),
        syscall: None,
        path,
    }
}

#[derive(Serialize)]
struct SyscallDetail<'a> {
    syscall: &'a str,
    nr: u32,
    phase: &'static str,
    args: &'a args::Args,
    ret: Option<i64>,
    ret_kind: &'static str,
    ret_path: Option<&'a str>,
    errno: Option<String>,
    duration_ns: Option<u64>,
    cpu: u32,
    read_fault: bool,
}

/// A syscall record from its rendered arguments (taken before the call's
/// effect on the fd table) and the path of the fd it returned, if any
/// (taken after).
#[must_use]
pub fn syscall(
    ctx: &Ctx<'_>,
    seq: u64,
    s: &Syscall,
    r: &args::Rendered,
    ret_path: Option<String>,
) -> Line {
    let ret_kind = match r.ret {
        Ret::Fd => "fd",
        Ret::Addr => "addr",
        Ret::Size => "size",
        Ret::Pid => "pid",
        Ret::Int => "int",
    };
    let detail = SyscallDetail {
        syscall: &r.name,
        nr: s.nr,
        phase: if s.at_entry { "entry" } else { "exit" },
        args: &r.args,
        ret: (!s.at_entry).then_some(s.ret),
        ret_kind,
        ret_path: ret_path.as_deref(),
        errno: s.errno().map(|e| {
            crate::syscall::table::errno_name(e).map_or_else(|| e.to_string(), str::to_owned)
        }),
        duration_ns: s.duration_ns,
        cpu: s.cpu,
        read_fault: s.flags & ai_forensics_common::ev::READ_FAULT != 0,
    };
    let path = main_path(r, ret_path.as_deref());
    let mut l = line(
        ctx,
        seq,
        "syscall",
        Some(s.ts_ns),
        Some((s.tgid, s.tid, &s.comm)),
        Some(s.tree),
        detail,
        path,
    );
    l.syscall = Some(r.name.clone());
    l
}

/// Argument keys of a syscall record's main path, in the order they are
/// taken (the store's `path` column; replay and `verify` derive it the same way).
pub const MAIN_PATH_KEYS: &[&str] = &[
    "pathname",
    "path",
    "oldpath",
    "filename",
    "fd_path",
    "sockfd_path",
    "dirfd_path",
];

/// The main path of a syscall: its path argument, or what its fd or
/// returned fd refers to.
#[must_use]
pub fn main_path(r: &args::Rendered, ret_path: Option<&str>) -> Option<String> {
    MAIN_PATH_KEYS
        .iter()
        .find_map(|k| r.args.get(k).and_then(Value::as_str))
        .or(ret_path)
        .map(str::to_owned)
}

/// A loss marker.
#[must_use]
pub fn lost(ctx: &Ctx<'_>, seq: u64, l: &Lost) -> Line {
    let detail = json!({"count": l.count, "cpu": l.cpu, "first_ts_ns": l.first_ts_ns, "last_ts_ns": l.last_ts_ns,
           "first_time": ctx.clock.rfc3339(l.first_ts_ns), "last_time": ctx.clock.rfc3339(l.last_ts_ns),
           "source": "kernel"});
    line(ctx, seq, "lost", Some(l.ts_ns), None, None, detail, None)
}

/// A fork record.
#[must_use]
pub fn fork(ctx: &Ctx<'_>, seq: u64, f: &Fork) -> Line {
    let detail =
        json!({"child_pid": f.child_tgid, "child_tid": f.child_tid, "thread": f.is_thread()});
    line(
        ctx,
        seq,
        "fork",
        Some(f.ts_ns),
        Some((f.tgid, f.tid, &f.comm)),
        Some(f.tree),
        detail,
        None,
    )
}

/// An exec record.
#[must_use]
pub fn exec(ctx: &Ctx<'_>, seq: u64, e: &Exec) -> Line {
    let p = ctx.procs.get(e.tgid);
    let filename = escape::escape(&e.filename);
    let detail = json!({"filename": filename, "filename_truncated": e.truncated,
           "old_tid": e.old_tid,
           "argv": p.map(|p| p.cmdline.iter().map(|a| escape::escape(a)).collect::<Vec<_>>())});
    line(
        ctx,
        seq,
        "exec",
        Some(e.ts_ns),
        Some((e.tgid, e.tid, &e.comm)),
        Some(e.tree),
        detail,
        Some(filename),
    )
}

/// An exit record.
#[must_use]
pub fn exit(ctx: &Ctx<'_>, seq: u64, e: &Exit) -> Line {
    line(
        ctx,
        seq,
        "exit",
        Some(e.ts_ns),
        Some((e.tgid, e.tid, &e.comm)),
        Some(e.tree),
        json!({"group_dead": e.group_dead}),
        None,
    )
}

/// A process identity record (first sight of a process, or a new program).
#[must_use]
pub fn process(ctx: &Ctx<'_>, seq: u64, pid: u32, ts_ns: Option<u64>) -> Line {
    let p = ctx.procs.get(pid);
    let comm = p.map(|p| p.comm.clone()).unwrap_or_default();
    let detail = p.map_or(Value::Null, crate::state::procs::Process::json);
    let exe = detail["exe"].as_str().map(str::to_owned);
    line(
        ctx,
        seq,
        "process",
        ts_ns,
        Some((pid, pid, &comm)),
        p.map(|p| p.tree),
        detail,
        exe,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Record, record, tests::syscall_bytes};

    #[test]
    fn every_record_has_the_same_top_level_fields() {
        let clock = Clock { offset_ns: 0 };
        let procs = Processes::default();
        let fds = FdTables::default();
        let ctx = Ctx {
            clock: &clock,
            procs: &procs,
            fds: &fds,
        };
        let nr = crate::syscall::table::number("openat").unwrap();
        let Record::Syscall(s) =
            record(&syscall_bytes(nr, 3, [0; 6], b"", b"/\n\"<x>\xff", b"", 0)).unwrap()
        else {
            panic!()
        };
        let l = Lost {
            ts_ns: 1,
            cpu: 0,
            tgid: 0,
            tid: 0,
            count: 3,
            first_ts_ns: 1,
            last_ts_ns: 2,
        };
        let f = Fork {
            ts_ns: 1,
            tgid: 1,
            tid: 1,
            child_tid: 2,
            child_tgid: 2,
            tree: 1,
            child_gen: 0,
            comm: b"x".to_vec(),
        };
        let r = args::render(&s, &fds);
        let lines = [
            syscall(&ctx, 1, &s, &r, None),
            lost(&ctx, 2, &l),
            fork(&ctx, 3, &f),
            process(&ctx, 4, 1, None),
        ];
        let recs: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(&l.json).unwrap())
            .collect();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        for (r, l) in recs.iter().zip(&lines) {
            assert_eq!(keys(r), keys(&recs[0]));
            assert!(!l.json.contains('\n'));
        }
        assert_eq!(keys(&recs[0])[..3], ["v", "seq", "type"]);
        let path = recs[0]["detail"]["args"]["pathname"].as_str().unwrap();
        assert_eq!(escape::unescape(path).unwrap(), b"/\n\"<x>\xff");
        assert_eq!(lines[0].path.as_deref(), Some(path));
        assert_eq!(lines[0].syscall.as_deref(), Some("openat"));
    }
}
