//! Feeding stored or received JSON records to the rule engine (`rules test`
//! and the reference analyser), exactly as the live consumer does.
use std::borrow::Cow;

use serde_json::Value;

use super::engine::{Alert, Engine, Event, ProcInfo};
use crate::decode::args::Args;

/// A syscall record's fields, owned.
struct Owned {
    seq: u64,
    ts_ns: u64,
    pid: u32,
    tid: u32,
    tree: u32,
    syscall: String,
    comm: String,
    path: Option<String>,
    args: Args,
    ret: Option<i64>,
    errno: Option<String>,
    resolved: Option<String>,
}

fn args_of(v: &Value) -> Args {
    Args(
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn main_path(args: &Args, d: &Value) -> Option<String> {
    crate::output::json::MAIN_PATH_KEYS
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .or_else(|| d["ret_path"].as_str())
        .map(str::to_owned)
}

fn u32_of(v: &Value) -> u32 {
    v.as_u64().unwrap_or(0) as u32
}

/// Feeds one record; returns the alerts it completes.
pub fn feed(engine: &mut Engine, v: &Value) -> Vec<Alert> {
    let d = &v["detail"];
    match v["type"].as_str() {
        Some("process") => {
            let info = ProcInfo {
                ppid: d["ppid"].as_u64().map(|p| p as u32),
                comm: d["comm"].as_str().unwrap_or("").to_owned(),
                exe: d["exe"].as_str().unwrap_or("").to_owned(),
                cmdline: d["cmdline"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
                uid: d["uid"].as_u64().map(|u| u as u32),
                ai: 0,
            };
            engine.observe(u32_of(&v["pid"]), info);
            Vec::new()
        }
        Some("ai_mark") => {
            let bits = match d["kind"].as_str() {
                Some("llm") => super::rules::ai_bits::LLM,
                _ => super::rules::ai_bits::ML,
            };
            engine.mark(u32_of(&v["pid"]), bits);
            Vec::new()
        }
        Some("fork") if d["thread"] != true => {
            engine.fork(u32_of(&v["pid"]), u32_of(&d["child_pid"]));
            Vec::new()
        }
        Some("syscall") => {
            let args = args_of(&d["args"]);
            let o = Owned {
                seq: v["seq"].as_u64().unwrap_or(0),
                ts_ns: v["ts_ns"].as_u64().unwrap_or(0),
                pid: u32_of(&v["pid"]),
                tid: u32_of(&v["tid"]),
                tree: u32_of(&v["tree"]),
                syscall: d["syscall"].as_str().unwrap_or("").to_owned(),
                comm: v["comm"].as_str().unwrap_or("").to_owned(),
                path: main_path(&args, d),
                resolved: d["ret_path"].as_str().map(str::to_owned),
                ret: d["ret"].as_i64(),
                errno: d["errno"].as_str().map(str::to_owned),
                args,
            };
            let ev = Event {
                seq: o.seq,
                ts_ns: o.ts_ns,
                pid: o.pid,
                tid: o.tid,
                tree: o.tree,
                syscall: &o.syscall,
                comm: &o.comm,
                path: o.path.as_deref(),
                resolved: o
                    .resolved
                    .as_deref()
                    .filter(|r| Some(*r) != o.path.as_deref()),
                args: &o.args,
                ret: o.ret,
                errno: o.errno.as_deref(),
                exfil_bytes: 0,
            };
            engine.on_event(&ev)
        }
        Some("llm") => {
            let (comm, args) = (v["comm"].as_str().unwrap_or(""), Args::default());
            let ev = Event {
                seq: v["seq"].as_u64().unwrap_or(0),
                ts_ns: v["ts_ns"].as_u64().unwrap_or(0),
                pid: u32_of(&v["pid"]),
                tid: u32_of(&v["tid"]),
                tree: u32_of(&v["tree"]),
                syscall: super::rules::LLM,
                comm,
                path: None,
                resolved: None,
                args: &args,
                ret: Some(0),
                errno: None,
                exfil_bytes: 0,
            };
            engine.on_llm(&ev, d)
        }
        _ => Vec::new(),
    }
}
