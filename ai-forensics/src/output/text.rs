//! strace-like text, one line per record:
//!
//! ```text
//! 12:00:01.123456789 python3[1234/1240] openat(AT_FDCWD, "/m/model.pt", O_RDONLY|O_CLOEXEC) = 3</m/model.pt> <0.000012>
//! ```
//!
//! Strings from the traced process are quoted and escaped (see
//! `decode::escape`), so every record is exactly one line.
use super::{clock::Clock, json::Ctx};
use crate::decode::{Exec, Exit, Fork, Lost, Syscall, args, escape};

fn who(clock: &Clock, ts: u64, pid: u32, tid: u32, comm: &[u8]) -> String {
    let c = escape::escape(comm);
    if pid == tid {
        format!("{} {c}[{pid}]", clock.time_of_day(ts))
    } else {
        format!("{} {c}[{pid}/{tid}]", clock.time_of_day(ts))
    }
}

/// A syscall line.
#[must_use]
pub fn syscall(ctx: &Ctx<'_>, s: &Syscall) -> String {
    let r = args::render(s, ctx.fds);
    let head = who(ctx.clock, s.ts_ns, s.tgid, s.tid, &s.comm);
    if s.at_entry {
        return format!("{head} {} = ?", r.call_text);
    }
    match s.duration_ns {
        Some(d) => format!(
            "{head} {} = {} <{}.{:06}>",
            r.call_text,
            r.ret_text,
            d / 1_000_000_000,
            (d % 1_000_000_000) / 1000
        ),
        None => format!("{head} {} = {}", r.call_text, r.ret_text),
    }
}

/// A loss line.
#[must_use]
pub fn lost(clock: &Clock, l: &Lost) -> String {
    format!(
        "{} !!! {} records lost on cpu {} between {} and {} !!!",
        clock.time_of_day(l.ts_ns),
        l.count,
        l.cpu,
        clock.time_of_day(l.first_ts_ns),
        clock.time_of_day(l.last_ts_ns)
    )
}

/// A fork line.
#[must_use]
pub fn fork(clock: &Clock, f: &Fork) -> String {
    let what = if f.is_thread() { "thread" } else { "process" };
    format!(
        "{} +++ new {what} {} +++",
        who(clock, f.ts_ns, f.tgid, f.tid, &f.comm),
        f.child_tid
    )
}

/// An exec line.
#[must_use]
pub fn exec(clock: &Clock, e: &Exec) -> String {
    format!(
        "{} +++ exec {} +++",
        who(clock, e.ts_ns, e.tgid, e.tid, &e.comm),
        escape::quoted(&e.filename)
    )
}

/// An exit line.
#[must_use]
pub fn exit(clock: &Clock, e: &Exit) -> String {
    let what = if e.group_dead {
        "process exited"
    } else {
        "thread exited"
    };
    format!(
        "{} +++ {what} +++",
        who(clock, e.ts_ns, e.tgid, e.tid, &e.comm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        decode::{Record, record, tests::syscall_bytes},
        state::{fds::FdTables, procs::Processes},
    };

    #[test]
    fn one_line_per_record() {
        let clock = Clock { offset_ns: 0 };
        let (procs, fds) = (Processes::default(), FdTables::default());
        let ctx = Ctx {
            clock: &clock,
            procs: &procs,
            fds: &fds,
        };
        let nr = crate::syscall::table::number("openat").unwrap();
        let Record::Syscall(s) = record(&syscall_bytes(
            nr,
            -2,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            b"",
            b"/a\nb",
            b"",
            0,
        ))
        .unwrap() else {
            panic!()
        };
        let line = syscall(&ctx, &s);
        assert!(!line.contains('\n'));
        assert!(
            line.ends_with("openat(AT_FDCWD, \"/a\\nb\", O_RDONLY, 00) = -1 ENOENT <0.000000>"),
            "{line}"
        );
        assert!(line.contains("python3[42/43]"));
    }
}
