//! The conversation beside the actions: each LLM call captured in TLS
//! plaintext (`--tls-capture`), what it was asked and answered, and what
//! the targets did next (execs, connections, opens) until the next call.
use std::fmt::Write as _;

use html_escape::encode_text as esc;
use rusqlite::params;
use serde_json::Value;

use crate::{error::Result, store::Store};

/// Most calls shown.
const MAX_CALLS: usize = 200;
/// Most actions shown after each call.
const MAX_ACTIONS: usize = 20;
/// Actions are looked for this long after a call at most.
const AFTER_NS: i64 = 30_000_000_000;

/// One LLM call and what followed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmRow {
    /// Seconds after the session start.
    pub at_s: f64,
    /// Process.
    pub pid: i64,
    /// API, model, endpoint.
    pub what: String,
    /// The last user message sent.
    pub prompt: String,
    /// The reply's text.
    pub reply: String,
    /// Tool calls: name and arguments.
    pub tool_calls: Vec<(String, String)>,
    /// What the targets did next: (seconds after the call, description).
    pub after: Vec<(f64, String)>,
}

/// The session's LLM calls, in order (strings in their escaped form).
pub fn gather(store: &Store, id: i64, start: u64) -> Result<Vec<LlmRow>> {
    let c = &store.conn;
    let e = |x: rusqlite::Error| store.err(&x);
    let mut st = c
        .prepare("SELECT ts_ns, pid, record FROM events WHERE session_id = ?1 AND type = 'llm' ORDER BY seq LIMIT ?2")
        .map_err(e)?;
    let calls: Vec<(i64, i64, String)> = st
        .query_map(params![id, MAX_CALLS as i64], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get(2)?,
            ))
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;
    let mut act = c
        .prepare(
            "SELECT ts_ns, type, pid, syscall, path FROM events WHERE session_id = ?1 AND ts_ns > ?2 AND ts_ns <= ?3 \
             AND (type = 'exec' OR type = 'alert' OR syscall IN ('connect', 'execve', 'execveat', 'open', 'openat', 'openat2', 'unlink', 'unlinkat', 'rename', 'renameat2')) \
             ORDER BY seq LIMIT ?4",
        )
        .map_err(e)?;
    let mut out = Vec::new();
    for (i, (ts, pid, rec)) in calls.iter().enumerate() {
        let v: Value = serde_json::from_str(rec).unwrap_or(Value::Null);
        let d = &v["detail"];
        let l = &d["llm"];
        let s = |x: &Value| x.as_str().unwrap_or("").to_owned();
        let until = calls
            .get(i + 1)
            .map_or(ts + AFTER_NS, |n| n.0.min(ts + AFTER_NS));
        let after = act
            .query_map(params![id, ts, until, MAX_ACTIONS as i64], |r| {
                let t: i64 = r.get::<_, Option<i64>>(0)?.unwrap_or(0);
                let kind: String = r.get(1)?;
                let p: Option<i64> = r.get(2)?;
                let sys: Option<String> = r.get(3)?;
                let path: Option<String> = r.get(4)?;
                let what = match kind.as_str() {
                    "syscall" => sys.unwrap_or_default(),
                    k => k.to_owned(),
                };
                Ok((
                    (t - ts) as f64 / 1e9,
                    format!(
                        "{what} {} (pid {})",
                        path.unwrap_or_default(),
                        p.map_or_else(|| "?".into(), |p| p.to_string())
                    ),
                ))
            })
            .map_err(e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?;
        out.push(LlmRow {
            at_s: (*ts as f64 - start as f64) / 1e9,
            pid: *pid,
            what: format!(
                "{} {} at {}",
                s(&l["api"]),
                s(&l["model"]),
                s(&d["endpoint"])
            ),
            prompt: l["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .map(|m| s(&m["content"]))
                .unwrap_or_default(),
            reply: s(&l["reply"]),
            tool_calls: l["tool_calls"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| (s(&t["name"]), s(&t["arguments"])))
                        .collect()
                })
                .unwrap_or_default(),
            after,
        });
    }
    Ok(out)
}

/// The page's section.
#[must_use]
pub fn render(rows: &[LlmRow]) -> String {
    let mut h = String::new();
    if rows.is_empty() {
        return h;
    }
    let _ = writeln!(h, "<h2 id=\"llm\">LLM calls (TLS plaintext)</h2>");
    let _ = writeln!(
        h,
        "<table><tr><th>at (s)</th><th>pid</th><th class=\"l\">call</th><th class=\"l\">asked</th><th class=\"l\">answered</th><th class=\"l\">then</th></tr>"
    );
    for r in rows {
        let calls: String = r
            .tool_calls
            .iter()
            .map(|(n, a)| format!("<br>tool call {}({})", esc(n), esc(a)))
            .collect();
        let after: String = r
            .after
            .iter()
            .map(|(t, w)| format!("+{t:.3}s {}<br>", esc(w)))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{:.3}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}{calls}</td><td class=\"l\">{after}</td></tr>",
            r.at_s,
            r.pid,
            esc(&r.what),
            esc(&r.prompt),
            esc(&r.reply),
        );
    }
    let _ = writeln!(h, "</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_from_the_model_are_escaped() {
        let page = render(&[LlmRow {
            reply: "<script>alert(1)</script>".into(),
            tool_calls: vec![("sh".into(), "<img src=x>".into())],
            after: vec![(0.1, "exec <b>".into())],
            ..LlmRow::default()
        }]);
        assert!(page.contains("LLM calls"));
        assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>"));
    }
}
