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
    let mut t = Vec::new();
    t.push(target(
        "count mode: at most 20 ns added per traced getppid",
        added("count"),
        20.0,
        false,
        "ns",
        format!(
            "with --latency (exact timing): {} ns",
            num(added("count_latency"), 1)
        ),
    ));
    t.push(target(
        "count mode: at most 1.5x the empty-program floor",
        row(g, "count").and_then(|x| f(&x["ratio_to_floor"])),
        1.5,
        false,
        "x",
        format!(
            "floor adds {} ns; --latency is {}x",
            num(added("floor"), 1),
            num(
                row(g, "count_latency").and_then(|x| f(&x["ratio_to_floor"])),
                2
            )
        ),
    ));
    let u = &r["untraced"];
    let ua = |k: &str| row(u, k).and_then(|x| f(&x["added_ns"]));
    let worst_untraced = [ua("count"), ua("events_jsonl")]
        .into_iter()
        .flatten()
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    t.push(target(
        "untraced processes: at most 10 ns added per syscall",
        worst_untraced,
        10.0,
        false,
        "ns",
        format!(
            "count {} ns, events {} ns, the bare floor programs {} ns",
            num(ua("count"), 1),
            num(ua("events_jsonl"), 1),
            num(ua("floor"), 1)
        ),
    ));
    t.push(target(
        "event mode: at most 120 ns added per traced syscall",
        added("events_jsonl"),
        120.0,
        false,
        "ns",
        format!(
            "JSONL to a file; into the store: {} ns",
            num(added("events_store"), 1)
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
    let slow = |k: &str| {
        row(tc, k).and_then(|x| {
            let a = f(&x["train_slowdown_percent"])?;
            let b = f(&x["predictions_slowdown_percent"])?;
            Some((a, b))
        })
    };
    for (k, lim, name) in [("count", 1.0, "count"), ("events", 2.0, "event")] {
        t.push(target(
            &format!("PyTorch: at most {lim}% slowdown in {name} mode"),
            slow(k).map(|(a, b)| a.max(b)),
            lim,
            false,
            "%",
            slow(k).map_or_else(String::new, |(a, b)| {
                format!("training {a:.2}%, predictions {b:.2}%")
            }),
        ));
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

fn percall_table(out: &mut String, rows: &Value, rounds: &Value) {
    let _ = writeln!(
        out,
        "| configuration | calls per run | ns/call (median of {rounds}) | min - max | added ns/call | x floor | calls counted by the tracer |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for r in rows.as_array().into_iter().flatten() {
        let label = r["label"].as_str().unwrap_or("");
        if let Some(why) = r["unavailable"]
            .as_str()
            .filter(|_| r["median_ns"].is_null())
        {
            let _ = writeln!(
                out,
                "| {label} | | unavailable: {} | | | | |",
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
            "| {label} | {} | {} | {} - {} | {} | {} | {counted} |",
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
        );
    }
}

fn trials_table(out: &mut String, t: &Value) {
    let _ = writeln!(
        out,
        "| workload | seconds | achieved rate | kernel count | received | lost in kernel | store dropped | zero loss | agent CPU | agent RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for x in t["trials"].as_array().into_iter().flatten() {
        if let Some(e) = x["error"].as_str() {
            let _ = writeln!(
                out,
                "| rate {} | | error: {} | | | | | | | |",
                x["rate"],
                e.replace('|', "/")
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0}/s | {} | {} | {} | {} | {} | {:.0}% | {:.1} MiB |",
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
            "| while | ns/call (median) | added ns/call |\n|---|---:|---:|"
        );
        for x in rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                s(&x["label"]),
                num(f(&x["median_ns"]), 1),
                if x["key"] == "bare" {
                    "-".into()
                } else {
                    num(f(&x["added_ns"]), 1)
                }
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
            "## 4. PyTorch workloads\n\n`models/train.py --steps {}` (steps per second as the script measures its training loop) and `models/predictions.py` (wall time of the script, imports included), Debian's python3-torch, {} alternating rounds.\n",
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
                    format!("{}%", num(f(&x["train_slowdown_percent"]), 2))
                },
                num(f(&p["median"]), 3),
                num(f(&p["min"]), 3),
                num(f(&p["max"]), 3),
                if x["key"] == "bare" {
                    "-".into()
                } else {
                    format!("{}%", num(f(&x["predictions_slowdown_percent"]), 2))
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
                {"key": "events_jsonl", "added_ns": 100.0}
            ]},
            "untraced": [{"key": "count", "added_ns": 4.0}, {"key": "events_jsonl", "added_ns": 5.0}],
            "throughput": {"jsonl": {"sustained": {"rate": 500000, "seconds": 60}}},
            "agent": {"jsonl": {"agent_max_rss_mib": 40.0}}
        });
        let t = targets(&r);
        let by = |i: usize| t[i]["status"].as_str().unwrap().to_owned();
        assert_eq!(by(0), "missed by 15.0 ns (1.8x the target)");
        assert!(by(1).starts_with("missed"));
        assert_eq!(by(2), "met");
        assert_eq!(by(3), "met");
        assert_eq!(by(4), "missed: 50% of the target");
        assert_eq!(by(5), "not measured");
        assert_eq!(by(7), "met");
        let md = markdown(&json!({"machine": {}, "targets": t}), Some("## Analysis"));
        assert!(md.contains("| count mode: at most 20 ns added per traced getppid | 35.00 ns |"));
        assert!(md.ends_with("## Analysis\n"));
    }
}
