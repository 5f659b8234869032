//! The AI workload in the HTML report: model artefacts, the classification
//! of each process with its evidence, phases per process, and exfiltration
//! per tree, from the summary's `ai` section.
use std::fmt::Write as _;

use html_escape::encode_text as esc;
use serde_json::Value;

use crate::output::table::bytes;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The AI sections (a note when the session has none).
#[must_use]
pub fn render(ai: &Value) -> String {
    let mut h = String::new();
    let _ = writeln!(h, "<h2 id=\"ai\">AI workload</h2>");
    if ai.is_null() {
        let _ = writeln!(
            h,
            "<p>Not analysed: the session was recorded in count mode (the AI view needs <code>--mode events</code>).</p>"
        );
        return h;
    }
    let arts = ai["artefacts"].as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(h, "<h3>Model artefacts</h3>");
    if arts.is_empty() {
        let _ = writeln!(h, "<p>No model, checkpoint or dataset file was opened.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th class=\"l\">kind</th><th class=\"l\">format</th><th>read</th><th>written</th><th>mapped</th><th class=\"l\">sha256</th><th class=\"l\">path</th></tr>"
        );
        for a in arts {
            let hash = a["sha256"].as_str().map_or_else(
                || {
                    format!(
                        "not hashed ({})",
                        a["hash_skipped"].as_str().unwrap_or("use --hash-artifacts")
                    )
                },
                str::to_owned,
            );
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"m\">{}</td><td class=\"m\">{}</td></tr>",
                esc(a["kind"].as_str().unwrap_or("")),
                esc(a["format"].as_str().unwrap_or("")),
                bytes(n(&a["bytes_read"])),
                bytes(n(&a["bytes_written"])),
                bytes(n(&a["bytes_mapped"])),
                esc(&hash),
                esc(a["path"].as_str().unwrap_or(""))
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "<h3>Classification</h3>");
    let classes = ai["classification"].as_object();
    if classes.is_none_or(serde_json::Map::is_empty) {
        let _ = writeln!(
            h,
            "<p>No process showed training, inference or serving.</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th class=\"l\">pid</th><th class=\"l\">kind</th><th>confidence</th><th class=\"l\">role</th><th class=\"l\">because</th></tr>"
        );
        for (pid, c) in classes.into_iter().flatten() {
            let why: Vec<String> = c["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|e| esc(e).into_owned())
                .collect();
            let kind = c["kind"].as_str().unwrap_or("");
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                esc(pid),
                esc(kind),
                if kind == "unknown" {
                    "-".to_owned()
                } else {
                    format!("{:.2}", c["confidence"].as_f64().unwrap_or(0.0))
                },
                esc(ai["roles"][pid.as_str()].as_str().unwrap_or("")),
                why.join("; ")
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "<h3>Phases</h3>");
    let phases = ai["phases"].as_object();
    let t0 = phases
        .into_iter()
        .flatten()
        .flat_map(|(_, v)| v.as_array().into_iter().flatten())
        .filter_map(|p| p["start_ns"].as_u64())
        .min()
        .unwrap_or(0);
    if phases.is_none_or(serde_json::Map::is_empty) {
        let _ = writeln!(h, "<p>No phases recorded.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th class=\"l\">pid</th><th>from (s)</th><th>to (s)</th><th class=\"l\">phase</th><th class=\"l\">evidence</th></tr>"
        );
        for (pid, list) in phases.into_iter().flatten() {
            for p in list.as_array().into_iter().flatten() {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td>{:.1}</td><td>{:.1}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                    esc(pid),
                    n(&p["start_ns"]).saturating_sub(t0) as f64 / 1e9,
                    n(&p["end_ns"]).saturating_sub(t0) as f64 / 1e9,
                    esc(p["name"].as_str().unwrap_or("")),
                    esc(p["evidence"].as_str().unwrap_or(""))
                );
            }
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "<h3>Exfiltration per process tree</h3>");
    let ex = ai["exfiltration"].as_object();
    if ex.is_none_or(serde_json::Map::is_empty) {
        let _ = writeln!(
            h,
            "<p>No tree read model artefacts and then sent or wrote data out.</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th class=\"l\">tree</th><th>model artefacts read</th><th>sent</th><th class=\"l\">sent to</th><th>written outside output dirs</th><th>after the model was read</th></tr>"
        );
        for (tree, t) in ex.into_iter().flatten() {
            let to: Vec<String> = t["sent_to"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{} ({})", esc(k), bytes(n(v))))
                .collect();
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"m\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(tree),
                bytes(n(&t["model_bytes_in"])),
                bytes(n(&t["sent_bytes"])),
                if to.is_empty() {
                    "nowhere".to_owned()
                } else {
                    to.join(", ")
                },
                bytes(n(&t["written_outside_bytes"])),
                bytes(n(&t["after_model_read"]))
            );
        }
        let _ = writeln!(h, "</table>");
    }
    h
}
