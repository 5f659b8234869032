//! The HTML page: one self-contained file, inline CSS and SVG, no scripts.
use std::fmt::Write as _;

use html_escape::encode_text as esc;

use super::{charts, data::ReportData};
use crate::output::table::bytes;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}h3{font-size:15px}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}\
td.l,th.l{text-align:left}td.m{text-align:left;font-family:monospace;word-break:break-all}.facts td{text-align:left}.chart{margin:8px 0;overflow-x:auto}\
.flex{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}.verdict{padding:10px 14px;border-radius:6px;margin:8px 0}.bad{background:#fde2e1;border:1px solid #d33}.ok{background:#e3f6e3;border:1px solid #3a3}\
.k{display:inline-block;min-width:56px;padding:1px 6px;border-radius:4px;font-size:11px;text-align:center;background:#eee}.k-alert,.k-action,.k-secret{background:#fbb}.k-exec{background:#cde}.k-network{background:#fdc}.k-model,.k-data{background:#dfd}.k-write{background:#fec}.k-llm{background:#e6d9ff}\
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f7f7f7;padding:6px;margin:4px 0}pre:target{background:#fff3b0}nav a{margin-right:12px}";

fn links(seqs: &[u64], d: &ReportData) -> String {
    seqs.iter()
        .map(|s| {
            if d.story.evidence.contains_key(s) {
                format!("<a href=\"#r{s}\">#{s}</a>")
            } else {
                format!("#{s}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn verdict(h: &mut String, d: &ReportData) {
    let st = &d.story;
    let _ = writeln!(h, "<h2 id=\"verdict\">Verdict</h2>");
    if st.verdicts.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"verdict ok\">No rule fired{}. Loss: {}.</div>",
            st.prevention
                .as_deref()
                .map_or_else(String::new, |p| format!("; prevention ran ({})", esc(p))),
            esc(&d.loss)
        );
        return;
    }
    let kills = st.actions.iter().filter(|a| a.action == "kill").count();
    let refused = st.verdicts.iter().filter(|v| v.refused).count();
    let _ = writeln!(
        h,
        "<div class=\"verdict bad\"><b>{} alert(s), {} action(s){}{}.</b> {}</div>",
        st.verdicts.len(),
        st.actions.len(),
        if kills > 0 {
            format!(", the workload was killed ({kills} kill(s))")
        } else {
            String::new()
        },
        if refused > 0 {
            format!(", {refused} call(s) refused before they ran")
        } else {
            String::new()
        },
        st.prevention
            .as_deref()
            .map(|p| esc(p).into_owned())
            .unwrap_or_default()
    );
    let _ = writeln!(
        h,
        "<table><tr><th>at (s)</th><th class=\"l\">severity</th><th class=\"l\">rule</th><th class=\"l\">action</th><th class=\"l\">enforced by</th><th class=\"l\">what happened</th><th class=\"l\">evidence</th></tr>"
    );
    for v in &st.verdicts {
        let _ = writeln!(
            h,
            "<tr><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            v.at_s,
            esc(&v.severity),
            esc(&v.rule),
            esc(&v.action),
            esc(&v.mechanism),
            if v.refused {
                " (refused before it ran)"
            } else {
                ""
            },
            esc(&v.reason),
            links(&v.seqs, d)
        );
    }
    let _ = writeln!(h, "</table>");
    if !st.actions.is_empty() {
        let _ = writeln!(
            h,
            "<table><tr><th>at (s)</th><th class=\"l\">action</th><th class=\"l\">target</th><th class=\"l\">took effect</th><th>event to done (ms)</th><th class=\"l\">record</th></tr>"
        );
        for a in &st.actions {
            let _ = writeln!(
                h,
                "<tr><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                a.at_s,
                esc(&a.action),
                esc(&a.target),
                a.ok.map_or("?", |o| if o { "yes" } else { "no" }),
                a.latency_ms
                    .map_or_else(|| "-".into(), |m| format!("{m:.3}")),
                links(&[a.seq], d)
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

fn timeline(h: &mut String, d: &ReportData) {
    let st = &d.story;
    let _ = writeln!(h, "<h2 id=\"timeline\">Timeline</h2>");
    if st.entries.is_empty() {
        let _ = writeln!(
            h,
            "<p>Nothing notable recorded (count mode records no events).</p>"
        );
        return;
    }
    let _ = writeln!(
        h,
        "<table><tr><th>at (s)</th><th class=\"l\">pid</th><th class=\"l\">kind</th><th class=\"l\">what</th><th class=\"l\">records</th></tr>"
    );
    for en in &st.entries {
        let _ = writeln!(
            h,
            "<tr><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\"><span class=\"k k-{}\">{}</span></td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            en.at_s,
            en.pid.map_or_else(String::new, |p| p.to_string()),
            en.kind,
            en.kind,
            esc(&en.text),
            links(&en.seqs, d)
        );
    }
    let _ = writeln!(h, "</table>");
    if st.entries_left_out > 0 {
        let _ = writeln!(
            h,
            "<p>{} more entries left out (alerts, actions and secrets are always shown).</p>",
            st.entries_left_out
        );
    }
}

fn charts_section(h: &mut String, d: &ReportData) {
    let alerts: Vec<f64> = d.alerts.iter().map(|a| a.at_s).collect();
    let x = d.duration_s;
    let _ = writeln!(
        h,
        "<h2 id=\"charts\">Activity, memory and I/O</h2><p>One time axis for all three; red lines mark alerts.</p><div class=\"chart\">{}</div>",
        charts::timeline(&d.timeline, x, &alerts)
    );
    if d.memory.is_empty() {
        let _ = writeln!(
            h,
            "<p>No memory events recorded (count mode, or mmap/brk not selected).</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<div class=\"chart\">{}</div>",
            charts::memory(&d.memory, x, &alerts)
        );
    }
    if d.story.io.is_empty() {
        let _ = writeln!(h, "<p>No read or write events recorded.</p>");
    } else {
        let _ = writeln!(
            h,
            "<div class=\"chart\">{}</div>",
            charts::io(&d.story.io, x, &alerts)
        );
    }
}

fn tree(h: &mut String, d: &ReportData) {
    let _ = writeln!(
        h,
        "<h2 id=\"processes\">Process tree</h2><table><tr><th class=\"l\">process</th><th class=\"l\">command line</th><th class=\"l\">role</th><th class=\"l\">classified as</th><th class=\"l\">ended</th><th>calls</th><th>threads</th><th class=\"l\">traced because</th></tr>"
    );
    for p in &d.processes {
        let cmd = serde_json::from_str::<Vec<String>>(&p.cmdline)
            .map_or_else(|_| p.cmdline.clone(), |v| v.join(" "));
        let class = &d.ai["classification"][p.pid.to_string()];
        let class = class["kind"].as_str().map_or_else(String::new, |k| {
            if k == "unknown" {
                "unknown (thin evidence)".to_owned()
            } else {
                format!("{k} ({:.2})", class["confidence"].as_f64().unwrap_or(0.0))
            }
        });
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}{} {}</td><td class=\"m\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            "&nbsp;&nbsp;".repeat(p.depth),
            p.pid,
            esc(&p.comm),
            esc(&cmd),
            esc(&p.role),
            esc(&class),
            esc(&p.exit),
            p.calls.map_or_else(|| "-".into(), |c| c.to_string()),
            p.threads.map_or_else(|| "-".into(), |c| c.to_string()),
            esc(&p.reason)
        );
    }
    let _ = writeln!(h, "</table>");
}

fn evidence(h: &mut String, d: &ReportData) {
    let _ = writeln!(h, "<h2 id=\"evidence\">Evidence records</h2>");
    if d.story.evidence.is_empty() {
        let _ = writeln!(h, "<p>No records are cited.</p>");
        return;
    }
    let _ = writeln!(
        h,
        "<p>The records cited above, as sealed in the store (<code>ai-forensics verify</code> checks them).</p>"
    );
    for (seq, rec) in &d.story.evidence {
        let _ = writeln!(h, "<pre id=\"r{seq}\">#{seq} {}</pre>", esc(rec));
    }
}

/// Renders the report page: verdict first, then what happened in order,
/// who did it, the AI view, and the tables and records behind it all.
#[must_use]
pub fn render(d: &ReportData) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>ai-forensics session {}</title><style>{STYLE}</style></head><body>\n",
        d.id
    );
    let _ = writeln!(
        h,
        "<h1>ai-forensics session {}: {}</h1>",
        d.id,
        esc(&d.title)
    );
    let _ = writeln!(
        h,
        "<nav><a href=\"#verdict\">verdict</a><a href=\"#timeline\">timeline</a><a href=\"#charts\">charts</a><a href=\"#processes\">processes</a><a href=\"#ai\">AI workload</a><a href=\"#llm\">LLM calls</a><a href=\"#syscalls\">syscalls</a><a href=\"#evidence\">evidence</a></nav>"
    );
    let _ = writeln!(
        h,
        "<table class=\"facts\"><tr><td>status</td><td>{}</td></tr>",
        esc(&d.status)
    );
    for (k, v) in &d.facts {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
    }
    let _ = writeln!(h, "<tr><td>loss</td><td>{}</td></tr></table>", esc(&d.loss));
    verdict(&mut h, d);
    timeline(&mut h, d);
    charts_section(&mut h, d);
    tree(&mut h, d);
    h.push_str(&super::ai_html::render(&d.ai));
    h.push_str(&super::llm::render(&d.llm));
    tables(&mut h, d);
    evidence(&mut h, d);
    h.push_str("</body></html>\n");
    h
}

fn tables(h: &mut String, d: &ReportData) {
    let _ = writeln!(
        h,
        "<h2 id=\"syscalls\">Syscalls</h2><table><tr><th class=\"l\">syscall</th><th>calls</th><th>errors</th><th>total s</th><th>avg µs</th><th>p99 µs</th><th>max µs</th><th>lost events</th></tr>"
    );
    for r in &d.rows {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.6}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            esc(&r.syscall),
            r.count,
            r.errors,
            r.total_ns as f64 / 1e9,
            r.avg_ns as f64 / 1e3,
            r.p99_ns as f64 / 1e3,
            r.max_ns as f64 / 1e3,
            r.lost
        );
    }
    let _ = writeln!(h, "</table>");
    let _ = writeln!(h, "<h2>Top files by bytes read and written</h2>");
    if d.files.is_empty() {
        let _ = writeln!(h, "<p>No file events recorded.</p>");
    } else {
        let bars = charts::file_bars(
            &d.files
                .iter()
                .map(|f| (f.read, f.written))
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            h,
            "<div class=\"flex\"><table><tr><th class=\"l\">file</th><th>opens</th><th>read</th><th>written</th><th>mapped</th></tr>"
        );
        for f in &d.files {
            let _ = writeln!(
                h,
                "<tr><td class=\"m\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                f.opens,
                bytes(f.read),
                bytes(f.written),
                bytes(f.mapped)
            );
        }
        let _ = writeln!(h, "</table><div class=\"chart\">{bars}</div></div>");
    }
    let _ = writeln!(h, "<h2>Network endpoints</h2>");
    if d.endpoints.is_empty() {
        let _ = writeln!(h, "<p>None recorded.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th class=\"l\">endpoint</th><th>connects</th><th>sent</th><th>received</th></tr>"
        );
        for e in &d.endpoints {
            let _ = writeln!(
                h,
                "<tr><td class=\"m\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.endpoint),
                e.connects,
                bytes(e.sent),
                bytes(e.received)
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::{FileRow, ProcRow};

    #[test]
    fn traced_strings_are_escaped() {
        let d = ReportData {
            title: "<script>x</script>".into(),
            files: vec![FileRow {
                path: "<img src=x onerror=alert(1)>".into(),
                read: 1,
                written: 0,
                mapped: 0,
                opens: 1,
            }],
            processes: vec![ProcRow {
                pid: 1,
                depth: 0,
                comm: "a&b".into(),
                exe: "\"e\"".into(),
                cmdline: "[]".into(),
                calls: None,
                reason: String::new(),
                role: String::new(),
                exit: String::new(),
                threads: None,
            }],
            ..Default::default()
        };
        let p = render(&d);
        assert!(!p.contains("<img src=x"));
        assert!(p.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!p.contains("<script>"));
        assert!(p.contains("a&amp;b"));
        assert!(!p.contains("<script"), "no scripts at all");
    }
}
