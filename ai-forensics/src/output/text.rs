//! strace-like text, one line per record, printed from the JSON record (the
//! one rendered form), so live output and a replay from the store match:
//!
//! ```text
//! 12:00:01.123456789 python3[1234/1240] openat(AT_FDCWD, "/m/model.pt", O_RDONLY|O_CLOEXEC, 00) = 3</m/model.pt> <0.000012>
//! ```
//!
//! Strings from the traced process are quoted and escaped (see
//! `decode::escape`), so every record is exactly one line.
use serde_json::Value;

use crate::{
    decode::escape,
    syscall::signature::{self, Arg},
};

/// `HH:MM:SS.nnnnnnnnn` from the record's RFC 3339 `time`.
fn time_of_day(v: &Value) -> String {
    v["time"]
        .as_str()
        .and_then(|t| t.get(11..t.len().saturating_sub(1)))
        .unwrap_or("-")
        .to_owned()
}

fn who(v: &Value) -> String {
    let comm = v["comm"].as_str().unwrap_or("?");
    let (pid, tid) = (
        v["pid"].as_u64().unwrap_or(0),
        v["tid"].as_u64().unwrap_or(0),
    );
    let t = time_of_day(v);
    if pid == tid {
        format!("{t} {comm}[{pid}]")
    } else {
        format!("{t} {comm}[{pid}/{tid}]")
    }
}

/// Re-quotes a JSON string that holds escaped bytes (`decode::escape`).
/// At most `n` characters of an escaped string, cut at a character (and
/// not inside an escape: a cut escape would not unescape).
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n).collect();
    if let Some(i) = out.rfind('\\')
        && out.len() - i < 12
    {
        out.truncate(i);
    }
    out.push_str("...");
    out
}

fn quote(s: &str) -> String {
    match escape::unescape(s) {
        Some(b) => escape::quoted(&b),
        None => format!("\"{s}\""),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sockaddr(v: &Value) -> String {
    let port = v["port"].as_u64().unwrap_or(0);
    match v["family"].as_str() {
        Some("inet") => format!("{{{}:{port}}}", v["ip"].as_str().unwrap_or("?")),
        Some("inet6") => format!("{{[{}]:{port}}}", v["ip"].as_str().unwrap_or("?")),
        Some("unix") => match (v["path"].as_str(), v["abstract"].as_str()) {
            (Some(p), _) => format!("{{unix:{}}}", quote(p)),
            (None, Some(a)) => format!("{{unix:@{}}}", quote(a)),
            _ => "{unix:unnamed}".into(),
        },
        Some("netlink") => format!(
            "{{netlink:pid={},groups={:#x}}}",
            v["pid"],
            v["groups"].as_u64().unwrap_or(0)
        ),
        _ => format!(
            "{{family={} {}}}",
            v["family"],
            v["data"].as_str().unwrap_or("")
        ),
    }
}

fn arg_text(name: &str, kind: Option<Arg>, args: &serde_json::Map<String, Value>) -> String {
    let v = &args[name];
    let path = args.get(&format!("{name}_path")).and_then(Value::as_str);
    let cut = args
        .get(&format!("{name}_truncated"))
        .is_some_and(|c| c == true);
    match (kind, v) {
        (Some(Arg::Path | Arg::Path2 | Arg::Str), Value::String(s)) => {
            format!("{}{}", quote(s), if cut { "..." } else { "" })
        }
        // A string that could not be read from the process: its pointer.
        (_, Value::Object(o)) if o.contains_key("ptr") && o.len() == 1 => scalar(&o["ptr"]),

        (Some(Arg::Argv), Value::Array(items)) => {
            let list: Vec<String> = items
                .iter()
                .map(|a| quote(a.as_str().unwrap_or("")))
                .collect();
            format!("[{}{}]", list.join(", "), if cut { ", ..." } else { "" })
        }
        (Some(Arg::SockAddr | Arg::SockAddrOut), Value::Object(_)) => sockaddr(v),
        (Some(Arg::CloneArgs), Value::Object(o)) => format!("{{flags={}}}", scalar(&o["flags"])),
        (Some(Arg::FdPair), Value::Array(p)) => {
            format!("[{}]", p.iter().map(scalar).collect::<Vec<_>>().join(", "))
        }
        (_, _) => match path {
            Some(p) => format!("{}<{p}>", scalar(v)),
            None => scalar(v),
        },
    }
}

fn syscall(v: &Value) -> String {
    let d = &v["detail"];
    let name = d["syscall"].as_str().unwrap_or("?");
    let empty = serde_json::Map::new();
    let args = d["args"].as_object().unwrap_or(&empty);
    let texts: Vec<String> = match signature::lookup(name) {
        Some(sig) => sig
            .args
            .iter()
            .filter(|(n, _)| args.contains_key(*n))
            .map(|(n, k)| arg_text(n, Some(*k), args))
            .collect(),
        None => args
            .keys()
            .filter(|k| !k.ends_with("_path") && !k.ends_with("_truncated"))
            .map(|k| arg_text(k, None, args))
            .collect(),
    };
    let call = format!("{name}({})", texts.join(", "));
    if d["phase"] == "entry" {
        return format!("{} {call} = ?", who(v));
    }
    let ret = if let Some(e) = d["errno"].as_str() {
        format!("-1 {e}")
    } else {
        let r = d["ret"].as_i64().unwrap_or(0);
        match (d["ret_kind"].as_str(), d["ret_path"].as_str()) {
            (Some("addr"), _) => format!("{r:#x}"),
            (Some("fd"), Some(p)) => format!("{r}<{p}>"),
            _ => r.to_string(),
        }
    };
    match d["duration_ns"].as_u64() {
        Some(ns) => format!(
            "{} {call} = {ret} <{}.{:06}>",
            who(v),
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000
        ),
        None => format!("{} {call} = {ret}", who(v)),
    }
}

/// The text line of a record, or `None` for records that text leaves out
/// (the session header and the summary, which is printed as tables).
#[must_use]
pub fn line(v: &Value) -> Option<String> {
    let d = &v["detail"];
    Some(match v["type"].as_str()? {
        "syscall" => syscall(v),
        "lost" => format!(
            "{} !!! {} records lost on cpu {} between {} and {} !!!",
            time_of_day(v),
            d["count"],
            d["cpu"],
            d["first_time"]
                .as_str()
                .and_then(|t| t.get(11..t.len() - 1))
                .unwrap_or("?"),
            d["last_time"]
                .as_str()
                .and_then(|t| t.get(11..t.len() - 1))
                .unwrap_or("?")
        ),
        "fork" => {
            let what = if d["thread"] == true {
                "thread"
            } else {
                "process"
            };
            format!("{} +++ new {what} {} +++", who(v), d["child_tid"])
        }
        "exec" => format!(
            "{} +++ exec {} +++",
            who(v),
            quote(d["filename"].as_str().unwrap_or(""))
        ),
        "exit" => {
            let what = if d["group_dead"] == true {
                "process exited"
            } else {
                "thread exited"
            };
            format!("{} +++ {what} +++", who(v))
        }
        "process" => format!(
            "{} +++ process {} {} exe={} cmdline={}{} +++",
            time_of_day(v),
            v["pid"],
            quote(d["comm"].as_str().unwrap_or("")),
            d["exe"].as_str().map_or_else(|| "?".into(), quote),
            d["cmdline"]
                .as_array()
                .map(|c| c
                    .iter()
                    .map(|a| quote(a.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default(),
            d["reason"]
                .as_str()
                .map_or_else(String::new, |r| format!(" reason={}", quote(r)))
        ),
        "target" => format!(
            "{} +++ tracing {} ({}) +++",
            who(v),
            v["pid"],
            d["reason"].as_str().unwrap_or("")
        ),
        "tls" => format!(
            "{} tls {} {} {} B {} {}{}",
            who(v),
            d["function"].as_str().unwrap_or("?"),
            d["direction"].as_str().unwrap_or("?"),
            d["bytes"],
            d["endpoint"].as_str().unwrap_or("?"),
            d["data"]
                .as_str()
                .map_or_else(|| "(http/2)".into(), |t| quote(&clip(t, 200))),
            if d["truncated"] == true {
                " (truncated)"
            } else {
                ""
            }
        ),
        "http" => format!(
            "{} http {} {} {} -> {} ({} B in, {} B out)",
            who(v),
            d["endpoint"].as_str().unwrap_or("?"),
            d["method"].as_str().unwrap_or("?"),
            quote(d["path"].as_str().unwrap_or("")),
            d["status"],
            d["request_body"].as_str().map_or(0, str::len),
            d["response_body"].as_str().map_or(0, str::len),
        ),
        "llm" => {
            let l = &d["llm"];
            let calls: Vec<String> = l["tool_calls"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| {
                            format!(
                                "{}({})",
                                t["name"].as_str().unwrap_or("?"),
                                quote(&clip(t["arguments"].as_str().unwrap_or(""), 200))
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let prompt = l["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or("");
            format!(
                "{} llm {} {} {} asked {} replied {}{}",
                who(v),
                l["api"].as_str().unwrap_or("?"),
                l["model"].as_str().unwrap_or("?"),
                d["endpoint"].as_str().unwrap_or("?"),
                quote(&clip(prompt, 200)),
                quote(&clip(l["reply"].as_str().unwrap_or(""), 200)),
                if calls.is_empty() {
                    String::new()
                } else {
                    format!(" tool calls {}", calls.join(", "))
                }
            )
        }
        "alert" | "action" | "verdict" => format!(
            "{} *** {} {} ***",
            time_of_day(v),
            v["type"].as_str().unwrap_or(""),
            d
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        decode::{Record, args, record, tests::syscall_bytes},
        output::{clock::Clock, json},
        state::{fds::FdTables, procs::Processes},
    };

    fn rec(name: &str, ret: i64, a: [u64; 6], s0: &[u8], ret_path: Option<&str>) -> Value {
        let clock = Clock { offset_ns: 0 };
        let (procs, fds) = (Processes::default(), FdTables::default());
        let ctx = json::Ctx {
            clock: &clock,
            procs: &procs,
            fds: &fds,
        };
        let nr = crate::syscall::table::number(name).unwrap();
        let Record::Syscall(s) = record(&syscall_bytes(nr, ret, a, b"", s0, b"", 0)).unwrap()
        else {
            panic!()
        };
        let l = json::syscall(
            &ctx,
            1,
            &s,
            &args::render(&s, &fds),
            ret_path.map(str::to_owned),
        );
        serde_json::from_str(&l.json).unwrap()
    }

    #[test]
    fn like_strace() {
        let v = rec(
            "openat",
            3,
            [(-100i64) as u64, 1, 0o2000000, 0, 0, 0],
            b"/m/model.pt",
            Some("/m/model.pt"),
        );
        let l = line(&v).unwrap();
        assert!(l.ends_with("python3[42/43] openat(AT_FDCWD, \"/m/model.pt\", O_RDONLY|O_CLOEXEC, 00) = 3</m/model.pt> <0.000000>"), "{l}");
        let e = rec(
            "openat",
            -2,
            [(-100i64) as u64, 1, 0, 0, 0, 0],
            b"/a\nb\"c",
            None,
        );
        let l = line(&e).unwrap();
        assert!(!l.contains('\n'));
        assert!(
            l.contains("openat(AT_FDCWD, \"/a\\nb\\\"c\", O_RDONLY, 00) = -1 ENOENT"),
            "{l}"
        );
        let m = rec(
            "mmap",
            0x7f00_0000_0000,
            [0, 4096, 3, 0x22, u64::MAX, 0],
            b"",
            None,
        );
        assert!(line(&m).unwrap().contains("mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000"));
    }
}
