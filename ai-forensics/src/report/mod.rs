//! Reports of a recorded session: tables on the terminal, or one
//! self-contained HTML file with charts drawn as inline SVG (no network
//! needed to view it). Every string that came from a traced process is
//! HTML-escaped.
pub mod ai_html;
pub mod charts;
pub mod data;
pub mod html;
pub mod llm;
pub mod story;

use std::{io::Write as _, path::Path};

use crate::{
    error::{Error, Result},
    output::table,
    store::Store,
};

/// `report SESSION [--html FILE]`.
pub fn run(path: &Path, session: &str, html_out: Option<&Path>) -> Result<u8> {
    let store = Store::open(path)?;
    let id = store.session_id(session)?;
    let d = data::gather(&store, id)?;
    match html_out {
        Some(file) => {
            let page = html::render(&d);
            std::fs::write(file, page)
                .map_err(|e| Error::usage(format!("--html {}: {e}", file.display())))?;
            println!("report of session {id} written to {}", file.display());
        }
        None => {
            let mut out = String::new();
            out.push_str(&format!("session {id}: {} ({})\n", d.title, d.status));
            out.push_str(&table::syscalls(&d.rows, 0));
            out.push_str("\nsyscalls per second by group\n");
            for (g, series) in &d.timeline {
                let total: u64 = series.iter().map(|(_, c)| *c).sum();
                let peak = series.iter().map(|(_, c)| *c).max().unwrap_or(0);
                out.push_str(&format!("  {g:<10} total {total:>10}  peak {peak:>8}/s\n"));
            }
            if let Some((_, heap, mapped)) = d.memory.last() {
                out.push_str(&format!(
                    "\nmemory at the end: heap {} above its start, {} mapped\n",
                    table::bytes(*heap),
                    table::bytes(*mapped)
                ));
            }
            out.push_str("\ntop files\n");
            for f in &d.files {
                out.push_str(&format!(
                    "  {:>12} read {:>12} written  {}\n",
                    table::bytes(f.read),
                    table::bytes(f.written),
                    f.path
                ));
            }
            out.push_str("\nprocesses\n");
            for p in &d.processes {
                out.push_str(&format!(
                    "  {:indent$}{} {} {} calls={}\n",
                    "",
                    p.pid,
                    p.comm,
                    p.exe,
                    p.calls.map_or("-".into(), |c| c.to_string()),
                    indent = p.depth * 2
                ));
            }
            if !d.endpoints.is_empty() {
                out.push_str("\nnetwork endpoints\n");
                for e in &d.endpoints {
                    out.push_str(&format!(
                        "  {} connects={} sent={} received={}\n",
                        e.endpoint,
                        e.connects,
                        table::bytes(e.sent),
                        table::bytes(e.received)
                    ));
                }
            }
            if !d.llm.is_empty() {
                out.push_str("\nLLM calls\n");
                for c in &d.llm {
                    out.push_str(&format!(
                        "  +{:.3}s pid {} {}\n    asked: {}\n    answered: {}\n",
                        c.at_s, c.pid, c.what, c.prompt, c.reply
                    ));
                    for (n, a) in &c.tool_calls {
                        out.push_str(&format!("    tool call {n}({a})\n"));
                    }
                    for (t, w) in &c.after {
                        out.push_str(&format!("    then +{t:.3}s {w}\n"));
                    }
                }
            }
            if !d.alerts.is_empty() {
                out.push_str("\nalerts\n");
                for a in &d.alerts {
                    out.push_str(&format!(
                        "  +{:.3}s {} {} {}\n",
                        a.at_s, a.severity, a.rule, a.reason
                    ));
                }
            }
            std::io::stdout()
                .write_all(out.as_bytes())
                .map_err(|e| Error::io("writing the report", e))?;
        }
    }
    Ok(0)
}
