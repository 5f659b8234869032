//! The HTML page: one self-contained file, inline CSS and SVG, no scripts.
use std::fmt::Write as _;

use html_escape::encode_text as esc;

use super::{charts, data::ReportData};
use crate::output::table::bytes;

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}\
td.l,th.l{text-align:left;font-family:monospace}.facts td{text-align:left}.chart{margin:8px 0}.flex{display:flex;gap:16px;align-items:flex-start}";

/// Renders the report page.
#[must_use]
pub fn render(d: &ReportData) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ai-forensics session {}</title><style>{STYLE}</style></head><body>\n",
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
        "<table class=\"facts\"><tr><td>status</td><td>{}</td></tr>",
        esc(&d.status)
    );
    for (k, v) in &d.facts {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
    }
    let _ = writeln!(h, "<tr><td>loss</td><td>{}</td></tr></table>", esc(&d.loss));

    let _ = writeln!(
        h,
        "<h2>Activity over time</h2><div class=\"chart\">{}</div>",
        charts::timeline(
            &d.timeline,
            &d.alerts.iter().map(|a| a.at_s).collect::<Vec<_>>()
        )
    );
    if d.memory.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Memory</h2><p>No memory events recorded (count mode, or mmap/brk not selected).</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<h2>Memory</h2><div class=\"chart\">{}</div>",
            charts::memory(&d.memory)
        );
    }

    let _ = writeln!(
        h,
        "<h2>Syscalls</h2><table><tr><th class=\"l\">syscall</th><th>calls</th><th>errors</th><th>total s</th><th>avg µs</th><th>p99 µs</th><th>max µs</th><th>lost events</th></tr>"
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
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                f.opens,
                bytes(f.read),
                bytes(f.written),
                bytes(f.mapped)
            );
        }
        let _ = writeln!(h, "</table><div class=\"chart\">{bars}</div></div>");
    }

    let _ = writeln!(
        h,
        "<h2>Process tree</h2><table><tr><th class=\"l\">process</th><th class=\"l\">executable</th><th class=\"l\">command line</th><th>calls</th><th class=\"l\">traced because</th></tr>"
    );
    for p in &d.processes {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}{} {}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            "&nbsp;&nbsp;".repeat(p.depth),
            p.pid,
            esc(&p.comm),
            esc(&p.exe),
            esc(&p.cmdline),
            p.calls.map_or_else(|| "-".into(), |c| c.to_string()),
            esc(&p.reason)
        );
    }
    let _ = writeln!(h, "</table>");

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
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.endpoint),
                e.connects,
                bytes(e.sent),
                bytes(e.received)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    h.push_str(&super::llm::render(&d.llm));
    let _ = writeln!(h, "<h2>Alerts</h2>");
    if d.alerts.is_empty() {
        let _ = writeln!(h, "<p>None.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th>at (s)</th><th class=\"l\">severity</th><th class=\"l\">rule</th><th class=\"l\">reason</th></tr>"
        );
        for a in &d.alerts {
            let _ = writeln!(
                h,
                "<tr><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                a.at_s,
                esc(&a.severity),
                esc(&a.rule),
                esc(&a.reason)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    h.push_str("</body></html>\n");
    h
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
