//! JSON Lines records (schema version [`SCHEMA_VERSION`], see `docs/schema.md`
//! and `ai-forensics schema`).
//!
//! Every record has the same top-level fields, whatever its type:
//! `v, seq, type, ts_ns, time, pid, tid, ppid, comm, exe, tree, detail`.
//! Fields that do not apply are `null`; what is specific to the type is in
//! `detail`.
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

/// A record with the common top-level fields.
#[must_use]
pub fn envelope(
    ctx: &Ctx<'_>,
    seq: u64,
    kind: &str,
    ts_ns: Option<u64>,
    who: Option<(u32, u32, &[u8])>,
    tree: Option<u32>,
    detail: Value,
) -> Value {
    let (pid, tid, comm) = match who {
        Some((p, t, c)) => (json!(p), json!(t), json!(escape::escape(c))),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let proc_ = who.and_then(|(p, _, _)| ctx.procs.get(p));
    json!({
        "v": SCHEMA_VERSION,
        "seq": seq,
        "type": kind,
        "ts_ns": ts_ns,
        "time": ts_ns.map(|t| ctx.clock.rfc3339(t)),
        "pid": pid,
        "tid": tid,
        "ppid": proc_.and_then(|p| p.ppid),
        "comm": comm,
        "exe": proc_.and_then(|p| p.exe.as_deref()).map(escape::escape),
        "tree": tree,
        "detail": detail,
    })
}

/// A syscall record from its rendered arguments (taken before the call's
/// effect on the fd table) and the path of the fd it returned, if any
/// (taken after).
#[must_use]
pub fn syscall(
    ctx: &Ctx<'_>,
    seq: u64,
    s: &Syscall,
    r: args::Rendered,
    ret_path: Option<String>,
) -> Value {
    let errno = s.errno();
    let ret_kind = match r.ret {
        Ret::Fd => "fd",
        Ret::Addr => "addr",
        Ret::Size => "size",
        Ret::Pid => "pid",
        Ret::Int => "int",
    };
    let detail = json!({
        "syscall": r.name,
        "nr": s.nr,
        "phase": if s.at_entry { "entry" } else { "exit" },
        "args": r.args,
        "ret": (!s.at_entry).then_some(s.ret),
        "ret_kind": ret_kind,
        "ret_path": ret_path,
        "errno": errno.map(|e| crate::syscall::table::errno_name(e).map_or_else(|| e.to_string(), str::to_owned)),
        "duration_ns": s.duration_ns,
        "cpu": s.cpu,
        "read_fault": s.flags & ai_forensics_common::ev::READ_FAULT != 0,
    });
    envelope(
        ctx,
        seq,
        "syscall",
        Some(s.ts_ns),
        Some((s.tgid, s.tid, &s.comm)),
        Some(s.tree),
        detail,
    )
}

/// A loss marker.
#[must_use]
pub fn lost(ctx: &Ctx<'_>, seq: u64, l: &Lost) -> Value {
    envelope(
        ctx,
        seq,
        "lost",
        Some(l.ts_ns),
        None,
        None,
        json!({"count": l.count, "cpu": l.cpu, "first_ts_ns": l.first_ts_ns, "last_ts_ns": l.last_ts_ns,
               "first_time": ctx.clock.rfc3339(l.first_ts_ns), "last_time": ctx.clock.rfc3339(l.last_ts_ns),
               "source": "kernel"}),
    )
}

/// A fork record.
#[must_use]
pub fn fork(ctx: &Ctx<'_>, seq: u64, f: &Fork) -> Value {
    envelope(
        ctx,
        seq,
        "fork",
        Some(f.ts_ns),
        Some((f.tgid, f.tid, &f.comm)),
        Some(f.tree),
        json!({"child_pid": f.child_tgid, "child_tid": f.child_tid, "thread": f.is_thread()}),
    )
}

/// An exec record.
#[must_use]
pub fn exec(ctx: &Ctx<'_>, seq: u64, e: &Exec) -> Value {
    let p = ctx.procs.get(e.tgid);
    envelope(
        ctx,
        seq,
        "exec",
        Some(e.ts_ns),
        Some((e.tgid, e.tid, &e.comm)),
        Some(e.tree),
        json!({"filename": escape::escape(&e.filename), "filename_truncated": e.truncated,
               "old_tid": e.old_tid,
               "argv": p.map(|p| p.cmdline.iter().map(|a| escape::escape(a)).collect::<Vec<_>>())}),
    )
}

/// An exit record.
#[must_use]
pub fn exit(ctx: &Ctx<'_>, seq: u64, e: &Exit) -> Value {
    envelope(
        ctx,
        seq,
        "exit",
        Some(e.ts_ns),
        Some((e.tgid, e.tid, &e.comm)),
        Some(e.tree),
        json!({"group_dead": e.group_dead}),
    )
}

/// A process identity record (first sight of a process, or a new program).
#[must_use]
pub fn process(ctx: &Ctx<'_>, seq: u64, pid: u32, ts_ns: Option<u64>) -> Value {
    let p = ctx.procs.get(pid);
    let comm = p.map(|p| p.comm.clone()).unwrap_or_default();
    envelope(
        ctx,
        seq,
        "process",
        ts_ns,
        Some((pid, pid, &comm)),
        p.map(|p| p.tree),
        p.map_or(Value::Null, super::super::state::procs::Process::json),
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
            comm: b"x".to_vec(),
        };
        let recs = [
            syscall(&ctx, 1, &s, args::render(&s, &fds), None),
            lost(&ctx, 2, &l),
            fork(&ctx, 3, &f),
            process(&ctx, 4, 1, None),
        ];
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        for r in &recs {
            assert_eq!(keys(r), keys(&recs[0]));
            // Serialised form parses back.
            let line = serde_json::to_string(r).unwrap();
            assert!(!line.contains('\n'));
            let back: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(&back, r);
        }
        let path = recs[0]["detail"]["args"]["pathname"].as_str().unwrap();
        assert_eq!(escape::unescape(path).unwrap(), b"/\n\"<x>\xff");
    }
}
