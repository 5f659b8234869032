//! A target's io_uring operation: recorded, and judged by the rules as the
//! syscall it does the work of (a rule on `openat` or `connect` holds
//! whichever way the process asked).
use std::borrow::Cow;

use ai_forensics_common::uring as flags;
use serde_json::json;

use super::consumer::Consumer;
use crate::{
    decode::{
        args::Args,
        escape,
        uring::{Uring, op_name, syscall_of},
    },
    output::json,
    policy::engine::Event,
    syscall::table as systable,
};

impl Consumer {
    /// Records and judges one io_uring completion.
    pub(super) fn uring(&mut self, u: &Uring) {
        let seq = self.seq;
        let path = u.path().map(escape::escape);
        let addr = u.addr().map(|a| a.json());
        let errno = (u.res < 0)
            .then(|| systable::errno_name(-i64::from(u.res)))
            .flatten();
        let comm = self
            .procs
            .get(u.tgid)
            .map(|p| p.comm.clone())
            .unwrap_or_default();
        if self.emitting() {
            let detail = json!({
                "op": op_name(u.opcode),
                "opcode": u.opcode,
                "syscall": syscall_of(u.opcode),
                "res": u.res,
                "errno": errno,
                "user_data": u.user_data,
                "duration_ns": u.duration_ns,
                "sq_thread": u.flags & flags::SQ_THREAD != 0,
                "fixed_file": u.flags & flags::FIXED != 0,
                "path": path,
                "addr": addr,
            });
            let l = json::line(
                &self.ctx(),
                self.seq,
                "io_uring",
                Some(u.ts_ns),
                Some((u.tgid, u.tid, &comm)),
                Some(u.tree),
                detail,
                path.clone(),
            );
            self.emit(l);
        }
        let Some(syscall) = syscall_of(u.opcode) else {
            return;
        };
        let Some(policy) = &mut self.policy else {
            return;
        };
        let mut args = Args::default();
        if let Some(a) = addr {
            args.0.push((Cow::Borrowed("addr"), a));
        }
        if let Some(p) = &path {
            args.0.push((Cow::Borrowed("pathname"), json!(p)));
        }
        let comm = escape::escape(&comm);
        let ev = Event {
            exfil_bytes: 0,
            seq,
            ts_ns: u.ts_ns,
            pid: u.tgid,
            tid: u.tid,
            tree: u.tree,
            syscall,
            comm: &comm,
            path: path.as_deref(),
            resolved: None,
            args: &args,
            ret: Some(i64::from(u.res)),
            errno,
        };
        let alerts = policy.engine.on_event(&ev);
        for a in alerts {
            self.raise(a, "rules");
        }
    }
}
