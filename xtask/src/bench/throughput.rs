//! Throughput and loss: the largest event rate sustained with zero loss into
//! each sink, the loss accounting at a rate above it, and the agent's own CPU
//! and memory at a fixed rate.
use std::{path::Path, process::Command, time::Duration, time::Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{
    Ctx,
    proc::{Gated, Ready, Tracer},
};

/// Where events go.
#[derive(Clone, Copy, Debug)]
pub enum Sink {
    /// JSON Lines to a file.
    Jsonl,
    /// The SQLite store.
    Store,
    /// No events: count mode.
    Count,
}

impl Sink {
    fn key(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Store => "store",
            Self::Count => "count",
        }
    }
}

/// Rates tried, in events per second.
const LADDER: &[u64] = &[
    100_000, 200_000, 300_000, 400_000, 500_000, 600_000, 800_000, 1_000_000, 1_250_000, 1_500_000,
    2_000_000,
];

fn remove_outputs(ctx: &Ctx) {
    for f in ["tp.jsonl", "tp.db", "tp.db-wal", "tp.db-shm"] {
        let _ = std::fs::remove_file(ctx.tmp.join(f));
    }
}

/// Lines of `file` that are getppid records (counted outside ai-forensics).
fn getppid_records(file: &Path) -> anyhow::Result<u64> {
    let o = Command::new("grep")
        .args(["-c", "-F", "\"detail\":{\"syscall\":\"getppid\""])
        .arg(file)
        .output()
        .context("grep")?;
    Ok(String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0))
}

/// The summary of the session just recorded.
fn summary(ctx: &Ctx, sink: Sink) -> anyhow::Result<(Value, Option<u64>)> {
    match sink {
        Sink::Jsonl => {
            let f = ctx.tmp.join("tp.jsonl");
            let o = Command::new("tail").arg("-n1").arg(&f).output()?;
            let v: Value = serde_json::from_slice(&o.stdout).context("the JSONL's last line")?;
            if v["type"] != "summary" {
                anyhow::bail!("the JSONL does not end with a summary");
            }
            Ok((v["detail"].clone(), Some(getppid_records(&f)?)))
        }
        Sink::Store => {
            let o = Command::new(&ctx.bin)
                .args(["show", "last", "--json", "--store"])
                .arg(ctx.tmp.join("tp.db"))
                .output()?;
            let v: Value = serde_json::from_slice(&o.stdout).context("show --json")?;
            let stored = v["records_stored"].as_u64();
            Ok((v["summary"].clone(), stored))
        }
        Sink::Count => Ok((Value::Null, None)),
    }
}

/// One trial: `workload ARGS` traced by pid into `sink`.
fn trial(ctx: &Ctx, sink: Sink, workload_args: &[String]) -> anyhow::Result<Value> {
    remove_outputs(ctx);
    let mut w = vec![ctx.workload.display().to_string()];
    w.extend(workload_args.iter().cloned());
    let g = Gated::shell(&w, true)?;
    let mut a: Vec<String> = [
        ctx.bin.display().to_string().as_str(),
        "trace",
        "--pid",
        &g.pid().to_string(),
        "--no-live",
        "--log",
        "info",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let jsonl = ctx.tmp.join("tp.jsonl").display().to_string();
    let db = ctx.tmp.join("tp.db").display().to_string();
    let extra: Vec<&str> = match sink {
        Sink::Jsonl => vec![
            "--mode",
            "events",
            "-e",
            "getppid",
            "--json",
            "-o",
            &jsonl,
            "--no-store",
        ],
        Sink::Store => vec!["--mode", "events", "-e", "getppid", "--store", &db],
        Sink::Count => vec!["--mode", "count", "--no-store"],
    };
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut t = Tracer::spawn(&a, false)?;
    if let Err(e) = t.ready(Ready::Marker("tracing;"), Duration::from_secs(60)) {
        g.abort();
        return Err(e);
    }
    let start = Instant::now();
    let done = g.go();
    let wall = start.elapsed().as_secs_f64();
    let (usage, _) = t.wait_usage(Duration::from_secs(600));
    let done: u64 = done?.trim().parse().unwrap_or(0);
    let (sum, received) = summary(ctx, sink)?;
    let row = sum["syscalls"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["syscall"] == "getppid"))
        .cloned()
        .unwrap_or(Value::Null);
    let kernel = row["count"].as_u64().unwrap_or(0);
    let lost = row["lost"].as_u64().unwrap_or(0);
    let loss = &sum["loss"];
    let store_dropped = loss["store_dropped"].as_u64().unwrap_or(0);
    let decode_errors = loss["decode_errors"].as_u64().unwrap_or(0);
    let zero_loss = match sink {
        Sink::Jsonl => lost == 0 && received == Some(kernel) && kernel >= done,
        Sink::Store => {
            lost == 0
                && store_dropped == 0
                && decode_errors == 0
                && received.unwrap_or(0) >= kernel
                && kernel >= done
        }
        Sink::Count => true,
    };
    remove_outputs(ctx);
    Ok(json!({
        "sink": sink.key(),
        "workload": workload_args,
        "calls_made": done,
        "wall_s": wall,
        "achieved_rate": done as f64 / wall,
        "kernel_count": kernel,
        "received": received,
        "lost_in_kernel": lost,
        "store_dropped": store_dropped,
        "decode_errors": decode_errors,
        "zero_loss": zero_loss,
        "agent_cpu_s": usage.cpu_s,
        "agent_cpu_percent": usage.cpu_s / wall * 100.0,
        "agent_max_rss_mib": usage.max_rss_kib as f64 / 1024.0,
    }))
}

fn rate_args(rate: u64, secs: u64) -> Vec<String> {
    vec!["rate".into(), rate.to_string(), secs.to_string()]
}

fn show(t: &Value) {
    println!(
        "  {:<6} {:>10.0}/s for {:>5.1}s: kernel {} received {} lost {} zero-loss {} (agent {:.0}% CPU, {:.0} MiB)",
        t["sink"].as_str().unwrap_or(""),
        t["achieved_rate"].as_f64().unwrap_or(0.0),
        t["wall_s"].as_f64().unwrap_or(0.0),
        t["kernel_count"],
        t["received"],
        t["lost_in_kernel"],
        t["zero_loss"],
        t["agent_cpu_percent"].as_f64().unwrap_or(0.0),
        t["agent_max_rss_mib"].as_f64().unwrap_or(0.0),
    );
}

/// Climbs the whole ladder (up to 2M events/s) with short trials, so the
/// share delivered above the limit is shown too, then confirms the best
/// rate below the first loss with a long one (stepping down when the long
/// one loses).
fn max_rate(ctx: &Ctx, sink: Sink) -> Value {
    let (search, confirm) = if ctx.quick { (3, 5) } else { (10, 60) };
    let mut trials = Vec::new();
    let mut best: Option<usize> = None;
    let mut limit = None;
    for (i, r) in LADDER.iter().enumerate() {
        match trial(ctx, sink, &rate_args(*r, search)) {
            Ok(t) => {
                show(&t);
                let ok = t["zero_loss"] == true;
                let kept_pace = t["achieved_rate"].as_f64().unwrap_or(0.0) >= 0.95 * *r as f64;
                trials.push(t);
                if ok && kept_pace && limit.is_none() {
                    best = Some(i);
                } else if limit.is_none() {
                    limit = Some(if ok {
                        "the workload could not go faster"
                    } else {
                        "loss"
                    });
                }
                if !kept_pace {
                    // The workload's own ceiling: higher rungs would repeat it.
                    break;
                }
            }
            Err(e) => {
                trials.push(json!({"rate": r, "error": e.to_string()}));
                break;
            }
        }
    }
    let mut sustained = Value::Null;
    let mut idx = best;
    let mut tries = 0;
    while let Some(i) = idx {
        tries += 1;
        match trial(ctx, sink, &rate_args(LADDER[i], confirm)) {
            Ok(t) => {
                show(&t);
                let ok = t["zero_loss"] == true;
                if ok {
                    sustained = json!({"rate": LADDER[i], "seconds": confirm, "trial": t.clone()});
                }
                trials.push(t);
                if ok {
                    break;
                }
            }
            Err(e) => trials.push(json!({"rate": LADDER[i], "error": e.to_string()})),
        }
        idx = if i > 0 && tries < 3 {
            Some(i - 1)
        } else {
            None
        };
    }
    json!({"sustained": sustained, "search_seconds": search, "confirm_seconds": confirm, "search_stopped_by": limit, "trials": trials})
}

/// Everything in this section.
pub fn run(ctx: &Ctx) -> Value {
    println!("== throughput and loss ==");
    let jsonl = max_rate(ctx, Sink::Jsonl);
    let store = max_rate(ctx, Sink::Store);
    // Above any sustainable rate: as fast as one thread can call.
    let secs = if ctx.quick { 3 } else { 10 };
    let flood = trial(ctx, Sink::Jsonl, &["flood".into(), secs.to_string()]);
    let accounting = match flood {
        Ok(t) => {
            show(&t);
            let k = t["kernel_count"].as_u64().unwrap_or(0);
            let r = t["received"].as_u64().unwrap_or(0);
            let l = t["lost_in_kernel"].as_u64().unwrap_or(0);
            json!({"trial": t, "balanced": k == r + l})
        }
        Err(e) => json!({"error": e.to_string()}),
    };
    json!({"jsonl": jsonl, "store": store, "loss_accounting": accounting})
}

/// The agent's CPU and peak RSS at 100k events/s, per sink.
pub fn agent(ctx: &Ctx) -> Value {
    println!("== agent cost at 100k events/s ==");
    let secs = if ctx.quick { 5 } else { 20 };
    let mut out = serde_json::Map::new();
    for sink in [Sink::Count, Sink::Jsonl, Sink::Store] {
        let v = match trial(ctx, sink, &rate_args(100_000, secs)) {
            Ok(t) => {
                show(&t);
                t
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        out.insert(sink.key().into(), v);
    }
    Value::Object(out)
}
