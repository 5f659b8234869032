//! BENCHMARKS.md from the results: the targets first, then every table.
use std::fmt::Write as _;

use serde_json::{Value, json};

fn row<'a>(rows: &'a Value, key: &str) -> Option<&'a Value> {
    rows.as_array()?.iter().find(|r| r["key"] == key)
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.digits$}"))
}

/// One target: met when `measured <= limit` (or `>=` when `at_least`).
fn target(
    what: &str,
    measured: Option<f64>,
    limit: f64,
    at_least: bool,
    unit: &str,
    detail: String,
) -> Value {
    let met = measured.map(|m| if at_least { m >= limit } else { m <= limit });
    let status = match (met, measured) {
        (Some(true), _) => "met".to_owned(),
        (Some(false), Some(m)) => {
            if at_least {
                format!("missed: {:.0}% of the target", m / limit * 100.0)
            } else {
                format!(
                    "missed by {:.1} {unit} ({:.1}x the target)",
                    m - limit,
                    m / limit
                )
            }
        }
        _ => "not measured".to_owned(),
    };
    json!({"target": what, "measured": measured, "limit": limit, "unit": unit, "met": met, "status": status, "detail": detail})
}

/// Where we stand against each target.
pub fn targets(r: &Value) -> Value {
    let g = &r["per_call"]["getppid"];
    let added = |k: &str| row(g, k).and_then(|x| f(&x["added_ns"]));
    let ratio = |rows: &Value, k: &str, of: &str| row(rows, k).and_then(|x| f(&x[of]));
    let mut t = Vec::new();
    t.push(target(
        "count mode: at most 0.6x the two-empty-program floor per traced getppid",
        ratio(g, "count", "ratio_to_floor"),
        0.6,
        false,
        "x",
        format!(
            "{} ns added, floor {} ns, one empty program {} ns ({}x); {}x bcc syscount; --latency {}x",
            num(added("count"), 1),
            num(added("floor"), 1),
            num(added("floor_exit"), 1),
            num(ratio(g, "floor_exit", "ratio_to_floor"), 2),
            num(ratio(g, "count", "ratio_to_bcc"), 2),
            num(ratio(g, "count_latency", "ratio_to_floor"), 2),
        ),
    ));
    let u = &r["untraced"];
    let ua = |k: &str| row(u, k).and_then(|x| f(&x["added_ns"]));
    t.push(target(
        "untraced processes while count mode runs: at most 0.6x the floor",
        ratio(u, "count", "ratio_to_floor"),
        0.6,
        false,
        "x",
        format!(
            "count {} ns; events mode {} ns ({}x); floor {} ns; one empty program {} ns",
            num(ua("count"), 1),
            num(ua("events_jsonl"), 1),
            num(ratio(u, "events_jsonl", "ratio_to_floor"), 2),
            num(ua("floor"), 1),
            num(ua("floor_exit"), 1),
        ),
    ));
    t.push(target(
        "events mode: at most 2.5x the floor per streamed getppid (JSONL)",
        ratio(g, "events_jsonl", "ratio_to_floor"),
        2.5,
        false,
        "x",
        format!(
            "{} ns added; into the store {}x; {}x bcc syscount",
            num(added("events_jsonl"), 1),
            num(ratio(g, "events_store", "ratio_to_floor"), 2),
            num(ratio(g, "events_jsonl", "ratio_to_bcc"), 2),
        ),
    ));
    let sustained = |s: &str| {
        let v = &r["throughput"][s]["sustained"];
        f(&v["rate"]).map(|rate| (rate, v["seconds"].as_u64().unwrap_or(0)))
    };
    let fmt_rate = |s: Option<(f64, u64)>| {
        s.map_or_else(
            || "none".to_owned(),
            |(r, secs)| format!("{:.0}k/s for {secs} s", r / 1e3),
        )
    };
    t.push(target(
        "zero loss at 1M events/s or more for 60 s (JSONL sink)",
        sustained("jsonl")
            .filter(|(_, s)| *s >= 60 || r["quick"] == true)
            .map(|(x, _)| x),
        1e6,
        true,
        "events/s",
        format!(
            "JSONL: {}; store: {}",
            fmt_rate(sustained("jsonl")),
            fmt_rate(sustained("store"))
        ),
    ));
    let tc = &r["pytorch"]["configs"];
    let paired = |k: &str, which: &str| row(tc, k).map(|x| x[which].clone());
    for (k, lim, name) in [("count", 1.0, "count"), ("events", 2.0, "event")] {
        let train = paired(k, "train_paired").unwrap_or(Value::Null);
        let pred = paired(k, "predictions_paired").unwrap_or(Value::Null);
        let worst = [f(&train["median_percent"]), f(&pred["median_percent"])]
            .into_iter()
            .flatten()
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
        let mut v = target(
            &format!("PyTorch: at most {lim}% slowdown in {name} mode (median of paired rounds)"),
            worst,
            lim,
            false,
            "%",
            format!(
                "training {}; predictions {}",
                paired_text(&train),
                paired_text(&pred)
            ),
        );
        // Judged on the intervals: met when both upper bounds are within
        // the limit, missed when a lower bound is above it, else the runs
        // cannot tell.
        let bounds = |p: &Value| {
            let a = p["ci95_percent"].as_array()?;
            Some((f(a.first()?)?, f(a.get(1)?)?))
        };
        if let (Some(a), Some(b)) = (bounds(&train), bounds(&pred)) {
            let (lo, hi) = (a.0.max(b.0), a.1.max(b.1));
            let (met, status) = if hi <= lim {
                (
                    json!(true),
                    "met (95% intervals within the limit)".to_owned(),
                )
            } else if lo > lim {
                (
                    json!(false),
                    format!("missed (a 95% interval starts at {lo:.2}%)"),
                )
            } else {
                (
                    Value::Null,
                    format!(
                        "inconclusive: the 95% intervals reach {hi:.2}% and include the limit{}",
                        if a.0 <= 0.0 && b.0 <= 0.0 {
                            "; not distinguishable from zero"
                        } else {
                            ""
                        }
                    ),
                )
            };
            v["met"] = met;
            v["status"] = json!(status);
        }
        t.push(v);
    }
    let rss: Vec<(String, f64)> = r["agent"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| f(&v["agent_max_rss_mib"]).map(|x| (k.clone(), x)))
                .collect()
        })
        .unwrap_or_default();
    t.push(target(
        "agent RSS at most 64 MiB (100k events/s)",
        rss.iter()
            .map(|(_, x)| *x)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x)))),
        64.0,
        false,
        "MiB",
        rss.iter()
            .map(|(k, x)| format!("{k} {x:.1} MiB"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    Value::Array(t)
}

/// A paired slowdown: its median, 95% interval and whether it differs from
/// zero.
pub fn paired_text(p: &Value) -> String {
    let Some(m) = f(&p["median_percent"]) else {
        return "not measured".into();
    };
    let ci = p["ci95_percent"].as_array().and_then(|a| {
        let lo = f(a.first()?)?;
        let hi = f(a.get(1)?)?;
        Some((lo, hi))
    });
    match ci {
        Some((lo, hi)) => format!(
            "{m:.2}% (95% CI {lo:.2}% to {hi:.2}%, {} pairs{})",
            p["pairs"],
            if lo <= 0.0 && hi >= 0.0 {
                ": not distinguishable from zero"
            } else {
                ""
            }
        ),
        None => format!("{m:.2}% ({} pairs, too few for an interval)", p["pairs"]),
    }
}

fn percall_table(out: &mut String, rows: &Value, rounds: &Value) {
    let _ = writeln!(
        out,
        "| configuration | calls per run | ns/call (median of {rounds}) | min - max | added ns/call | x floor | x bcc syscount | calls counted by the tracer |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows.as_array().into_iter().flatten() {
        let label = r["label"].as_str().unwrap_or("");
        if let Some(why) = r["unavailable"]
            .as_str()
            .filter(|_| r["median_ns"].is_null())
        {
            let _ = writeln!(
                out,
                "| {label} | | unavailable: {} | | | | | |",
                why.replace('|', "/")
            );
            continue;
        }
        let counted = match (r["counted"].as_u64(), r["calls"].as_u64()) {
            (Some(c), Some(n)) if c >= n => format!("{c} (all)"),
            (Some(c), Some(n)) => format!("{c} ({} missing)", n - c),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} - {} | {} | {} | {} | {counted} |",
            r["calls"],
            num(f(&r["median_ns"]), 1),
            num(f(&r["min_ns"]), 1),
            num(f(&r["max_ns"]), 1),
            if r["key"] == "bare" {
                "-".into()
            } else {
                num(f(&r["added_ns"]), 1)
            },
            num(f(&r["ratio_to_floor"]), 2).replace("n/a", "-"),
            num(f(&r["ratio_to_bcc"]), 2).replace("n/a", "-"),
        );
    }
}

fn trials_table(out: &mut String, t: &Value) {
    let _ = writeln!(
        out,
        "| workload | seconds | achieved rate | kernel count | received | delivered | lost in kernel | store dropped | zero loss | agent CPU | agent RSS |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for x in t["trials"].as_array().into_iter().flatten() {
        if let Some(e) = x["error"].as_str() {
            let _ = writeln!(
                out,
                "| rate {} | | error: {} | | | | | | | | |",
                x["rate"],
                e.replace('|', "/")
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0}/s | {} | {} | {} | {} | {} | {} | {:.0}% | {:.1} MiB |",
            x["workload"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default(),
            f(&x["wall_s"]).unwrap_or(0.0),
            f(&x["achieved_rate"]).unwrap_or(0.0),
            x["kernel_count"],
            x["received"],
            match (x["received"].as_f64(), x["kernel_count"].as_f64()) {
                (Some(r), Some(k)) if k > 0.0 => format!("{:.1}%", (r / k * 100.0).min(100.0)),
                _ => "-".into(),
            },
            x["lost_in_kernel"],
            x["store_dropped"],
            if x["zero_loss"] == true {
                "yes"
            } else {
                "**no**"
            },
            f(&x["agent_cpu_percent"]).unwrap_or(0.0),
            f(&x["agent_max_rss_mib"]).unwrap_or(0.0),
        );
    }
}

/// The whole document.
pub fn markdown(r: &Value, analysis: Option<&str>) -> String {
    let mut o = String::new();
    let m = &r["machine"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let _ = writeln!(o, "# Benchmarks\n");
    let _ = writeln!(
        o,
        "Generated by `cargo xtask bench`{} on {}: Linux {}, {} x {}, {} GiB, ai-forensics {}. Raw numbers: `benchmarks.json`.\n",
        if r["quick"] == true {
            " --quick (a short run: few rounds, short trials; not for quoting)"
        } else {
            ""
        },
        s(&m["date"]),
        s(&m["kernel"]),
        m["cpus"],
        s(&m["cpu"]),
        m["memory_gib"],
        s(&m["commit"]),
    );
    for r in r["reruns"].as_array().into_iter().flatten() {
        let sections: Vec<&str> = r["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            o,
            "Rerun with `--only {}` on {}, ai-forensics {}: those sections are from that run.\n",
            sections.join(","),
            s(&r["date"]),
            s(&r["commit"]),
        );
    }
    let peers = &m["peers"];
    let _ = writeln!(
        o,
        "Peers: {}; {}; {}; {}.\n",
        s(&peers["strace"]),
        s(&peers["perf"]),
        s(&peers["bpftrace"]),
        s(&peers["bcc"])
    );
    for n in r["notes"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "Note: {}\n", s(n));
    }
    let _ = writeln!(o, "## Targets\n");
    let _ = writeln!(
        o,
        "| target | measured | status | detail |\n|---|---:|---|---|"
    );
    for t in r["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "| {} | {} {} | {} | {} |",
            s(&t["target"]),
            num(
                f(&t["measured"]),
                if t["unit"] == "events/s" { 0 } else { 2 }
            ),
            s(&t["unit"]),
            s(&t["status"]),
            s(&t["detail"]),
        );
    }
    if let Some(pc) = r["per_call"].as_object() {
        let _ = writeln!(
            o,
            "\n## 1. Per-syscall cost\n\nA loop of one syscall, pinned to CPU 1, timed around the loop only; tracers' user space is pinned to CPU 0. Every configuration runs once per round, rounds alternate. \"added\" is the median minus the bare median; \"x floor\" divides it by what empty programs on the same raw tracepoints add. The last column is the tracer's own count of the loop's calls (each loop makes exactly the number of calls shown).\n"
        );
        for (k, title) in [
            ("getppid", "getppid"),
            ("read_zero", "read(4 KiB) from /dev/zero"),
        ] {
            if let Some(rows) = pc.get(k) {
                let _ = writeln!(o, "### {title}\n");
                percall_table(&mut o, rows, &r["rounds"]);
                let _ = writeln!(o);
            }
        }
    }
    if let Some(rows) = r["untraced"].as_array() {
        let _ = writeln!(
            o,
            "## 2. Tax on untraced processes\n\nThe getppid loop runs untraced while ai-forensics traces a sleeping process (or while the floor programs are attached, which fire for every process).\n"
        );
        let _ = writeln!(
            o,
            "| while | ns/call (median) | added ns/call | x floor |\n|---|---:|---:|---:|"
        );
        for x in rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                s(&x["label"]),
                num(f(&x["median_ns"]), 1),
                if x["key"] == "bare" {
                    "-".into()
                } else {
                    num(f(&x["added_ns"]), 1)
                },
                num(f(&x["ratio_to_floor"]), 2).replace("n/a", "-"),
            );
        }
        let _ = writeln!(o);
    }
    if r["throughput"].is_object() {
        let _ = writeln!(
            o,
            "## 3. Throughput and loss\n\nA single thread makes getppid calls at a paced rate; ai-forensics streams each one (events mode, `-e getppid`). Zero loss means the kernel's count of calls equals the records received (counted in the JSONL file with grep, or stored), with nothing lost in the ring buffer or dropped by the store.\n"
        );
        for (k, title) in [("jsonl", "JSONL to a file"), ("store", "into the store")] {
            let t = &r["throughput"][k];
            let sus = &t["sustained"];
            let _ = writeln!(
                o,
                "### {title}: {}\n",
                f(&sus["rate"]).map_or_else(
                    || "no rate sustained with zero loss".to_owned(),
                    |x| format!(
                        "{:.0}k events/s sustained for {} s with zero loss",
                        x / 1e3,
                        sus["seconds"]
                    )
                )
            );
            if let Some(by) = t["search_stopped_by"].as_str() {
                let _ = writeln!(o, "The search stopped at the next rate because of {by}.\n");
            }
            trials_table(&mut o, t);
            let _ = writeln!(o);
        }
        let a = &r["throughput"]["loss_accounting"];
        if let Some(x) = a["trial"].as_object() {
            let _ = writeln!(
                o,
                "### Loss accounting above the sustainable rate\n\nUnpaced getppid for {:.1} s: kernel count {} = received {} + lost {}: {}.\n",
                f(&x["wall_s"]).unwrap_or(0.0),
                x["kernel_count"],
                x["received"],
                x["lost_in_kernel"],
                if a["balanced"] == true {
                    "balanced, every call accounted for"
                } else {
                    "**not balanced**"
                }
            );
        }
    }
    if let Some(rows) = r["pytorch"]["configs"].as_array() {
        let _ = writeln!(
            o,
            "## 4. PyTorch workloads\n\n`models/train.py --steps {}` (steps per second as the script measures its training loop) and `models/predictions.py` (wall time of the script, imports included), Debian's python3-torch, {} alternating rounds. A slowdown is the median of the per-round slowdowns against the bare run of the same round, with a distribution-free 95% confidence interval (sign-test order statistics); an interval that contains zero means the overhead is not distinguishable from zero at this number of runs.\n",
            s(&r["pytorch"]["train_steps"]),
            r["pytorch"]["rounds"]
        );
        let _ = writeln!(
            o,
            "| configuration | training steps/s, median (min - max) | slowdown | predictions s, median (min - max) | slowdown |\n|---|---:|---:|---:|---:|"
        );
        for x in rows {
            if let Some(e) = x["error"]
                .as_str()
                .filter(|_| x["train_steps_per_s"].is_null())
            {
                let _ = writeln!(
                    o,
                    "| {} | error: {} | | | |",
                    s(&x["label"]),
                    e.replace('|', "/")
                );
                continue;
            }
            let t = &x["train_steps_per_s"];
            let p = &x["predictions_wall_s"];
            let _ = writeln!(
                o,
                "| {} | {} ({} - {}) | {} | {} ({} - {}) | {} |",
                s(&x["label"]),
                num(f(&t["median"]), 1),
                num(f(&t["min"]), 1),
                num(f(&t["max"]), 1),
                if x["key"] == "bare" {
                    "-".into()
                } else {
                    paired_text(&x["train_paired"])
                },
                num(f(&p["median"]), 3),
                num(f(&p["min"]), 3),
                num(f(&p["max"]), 3),
                if x["key"] == "bare" {
                    "-".into()
                } else {
                    paired_text(&x["predictions_paired"])
                },
            );
        }
        let _ = writeln!(o);
    }
    if let Some(a) = r["agent"].as_object() {
        let _ = writeln!(
            o,
            "## 5. Agent cost at 100k events/s\n\nCPU time (user + system) and peak RSS of the ai-forensics process itself (from wait4), tracing a process that makes 100,000 getppid calls per second.\n"
        );
        let _ = writeln!(
            o,
            "| sink | seconds | CPU, % of one core | peak RSS | events |\n|---|---:|---:|---:|---:|"
        );
        for (k, x) in a {
            let _ = writeln!(
                o,
                "| {k} | {:.1} | {:.1}% | {:.1} MiB | {} |",
                f(&x["wall_s"]).unwrap_or(0.0),
                f(&x["agent_cpu_percent"]).unwrap_or(0.0),
                f(&x["agent_max_rss_mib"]).unwrap_or(0.0),
                x["kernel_count"]
            );
        }
        let _ = writeln!(o);
    }
    if let Some(t) = r["tls"].as_object() {
        let _ = writeln!(
            o,
            "## 6. TLS plaintext capture\n\nA Python client (`ssl`, OpenSSL 3 as a shared library) makes {} `sendall` calls (one `SSL_write_ex` each) over loopback to a sink, timed inside the process; medians of the alternating rounds. \"uprobes\" is `--tls-capture` minus events mode without it: the entry and return uprobes, the copy of the plaintext into the ring buffer and its records. \"floor\" is the same client while bpftrace holds an empty uprobe and uretprobe on `SSL_write_ex`: what the kernel's uprobe mechanism costs alone; \"x floor\" divides the uprobes' cost by it.\n",
            t.get("calls_per_run").unwrap_or(&Value::Null)
        );
        if let Some(e) = t.get("error").and_then(Value::as_str) {
            let _ = writeln!(o, "unavailable: {e}\n");
        }
        let _ = writeln!(
            o,
            "| bytes per call | bare ns | floor ns | events ns | --tls-capture ns | uprobes ns | x floor | x bare |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for x in t
            .get("rows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                x["size"],
                num(f(&x["bare_ns"]), 0),
                num(f(&x["floor_ns"]), 0),
                num(f(&x["events_ns"]), 0),
                num(f(&x["tls_ns"]), 0),
                num(f(&x["uprobes_ns"]), 0),
                num(f(&x["uprobes_x_floor"]), 2),
                num(f(&x["tls_x_bare"]), 2)
            );
        }
        let _ = writeln!(o);
    }
    if let Some(p) = r["profile"].as_object() {
        let _ = writeln!(
            o,
            "## Where the time goes\n\n`perf record` on the loop's CPU while it makes getppid calls, top symbols.\n"
        );
        for (k, v) in p {
            let title = super::percall::CONFIGS
                .iter()
                .find(|c| c.key == k)
                .map_or(k.as_str(), |c| c.label);
            let _ = writeln!(o, "### {title}\n");
            if let Some(e) = v["unavailable"].as_str() {
                let _ = writeln!(o, "unavailable: {e}\n");
                continue;
            }
            let _ = writeln!(o, "| % | symbol |\n|---:|---|");
            for x in v.as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "| {:.2} | `{}` |",
                    f(&x["percent"]).unwrap_or(0.0),
                    s(&x["symbol"])
                );
            }
            let _ = writeln!(o);
        }
    }
    if let Some(a) = analysis {
        o.push_str(a.trim_end());
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_judged_from_the_numbers() {
        let r = json!({
            "per_call": {"getppid": [
                {"key": "bare", "median_ns": 70.0, "added_ns": 0.0},
                {"key": "floor", "added_ns": 20.0},
                {"key": "count", "added_ns": 35.0, "ratio_to_floor": 1.75},
                {"key": "events_jsonl", "added_ns": 40.0, "ratio_to_floor": 2.0}
            ]},
            "untraced": [{"key": "count", "added_ns": 4.0, "ratio_to_floor": 0.2}, {"key": "events_jsonl", "added_ns": 5.0}],
            "throughput": {"jsonl": {"sustained": {"rate": 500000, "seconds": 60}}},
            "pytorch": {"configs": [{"key": "count",
                "train_paired": {"pairs": 20, "median_percent": 0.5, "ci95_percent": [-1.0, 2.0]},
                "predictions_paired": {"pairs": 20, "median_percent": 0.2, "ci95_percent": [0.1, 0.4]}}]},
            "agent": {"jsonl": {"agent_max_rss_mib": 40.0}}
        });
        let t = targets(&r);
        let by = |i: usize| t[i]["status"].as_str().unwrap().to_owned();
        assert_eq!(by(0), "missed by 1.1 x (2.9x the target)");
        assert_eq!(by(1), "met");
        assert_eq!(by(2), "met");
        assert_eq!(by(3), "missed: 50% of the target");
        assert_eq!(
            by(4),
            "inconclusive: the 95% intervals reach 2.00% and include the limit"
        );
        assert!(
            t[4]["detail"].as_str().unwrap().contains(
                "0.50% (95% CI -1.00% to 2.00%, 20 pairs: not distinguishable from zero)"
            )
        );
        assert_eq!(by(5), "not measured");
        assert_eq!(by(6), "met");
        let md = markdown(&json!({"machine": {}, "targets": t}), Some("## Analysis"));
        assert!(md.contains(
            "| count mode: at most 0.6x the two-empty-program floor per traced getppid | 1.75 x |"
        ));
        assert!(md.ends_with("## Analysis\n"));
    }
}
