//! Per-syscall cost: a pinned loop of getppid or read(4 KiB) from
//! /dev/zero, bare and under each tracer, in alternating rounds; and the tax
//! on a process that is not traced while another one is.
use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use super::{
    Ctx,
    proc::{Gated, Ready, Tracer, tail},
    stats,
};

/// How a tracer's own count of the loop's calls is read from its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    None,
    /// ai-forensics' summary table: `... calls ... name`.
    Ours,
    /// `strace -c`: `% time seconds usecs/call calls errors syscall`.
    Strace,
    /// `perf trace -s`: `name calls errors total ...`.
    Perf,
    /// bpftrace map: `@[NR]: count`.
    Bpftrace,
    /// `syscount-bpfcc`: `NAME COUNT`.
    Bcc,
}

/// One way of running the loop.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Key in the JSON.
    pub key: &'static str,
    /// Row label.
    pub label: &'static str,
    /// The loop makes N / `scale` calls (slow tracers get fewer).
    scale: u64,
    ready: Ready,
    /// Ends by itself when its target exits.
    exits_with_target: bool,
    parse: Parse,
    /// Program it needs (peers).
    pub needs: Option<&'static str>,
}

const fn cfg(
    key: &'static str,
    label: &'static str,
    scale: u64,
    ready: Ready,
    exits_with_target: bool,
    parse: Parse,
    needs: Option<&'static str>,
) -> Config {
    Config {
        key,
        label,
        scale,
        ready,
        exits_with_target,
        parse,
        needs,
    }
}

const OURS_READY: Ready = Ready::Marker("tracing;");

/// Every configuration, bare first, the floor second.
pub const CONFIGS: &[Config] = &[
    cfg(
        "bare",
        "bare (untraced)",
        1,
        Ready::After(Duration::ZERO),
        true,
        Parse::None,
        None,
    ),
    cfg(
        "floor",
        "empty raw-tracepoint programs (floor)",
        1,
        Ready::Marker("floor programs attached"),
        false,
        Parse::None,
        None,
    ),
    cfg(
        "floor_exit",
        "one empty program on sys_exit (one-program floor)",
        1,
        Ready::Marker("floor programs attached"),
        false,
        Parse::None,
        None,
    ),
    cfg(
        "count",
        "ai-forensics count mode",
        1,
        OURS_READY,
        true,
        Parse::Ours,
        None,
    ),
    cfg(
        "count_latency",
        "ai-forensics count mode --latency",
        1,
        OURS_READY,
        true,
        Parse::Ours,
        None,
    ),
    cfg(
        "events_jsonl",
        "ai-forensics events, JSONL to a file",
        1,
        OURS_READY,
        true,
        Parse::Ours,
        None,
    ),
    cfg(
        "events_store",
        "ai-forensics events, into the store",
        1,
        OURS_READY,
        true,
        Parse::Ours,
        None,
    ),
    cfg(
        "strace",
        "strace -f -c",
        200,
        Ready::Marker("attached"),
        true,
        Parse::Strace,
        Some("strace"),
    ),
    cfg(
        "perf_trace",
        "perf trace -s",
        50,
        Ready::After(Duration::from_secs(3)),
        true,
        Parse::Perf,
        Some("perf"),
    ),
    cfg(
        "bpftrace",
        "bpftrace, count raw_syscalls for the pid",
        1,
        Ready::Marker("Attaching"),
        false,
        Parse::Bpftrace,
        Some("bpftrace"),
    ),
    cfg(
        "bcc_syscount",
        "bcc syscount-bpfcc -p",
        1,
        Ready::Marker("Tracing syscalls"),
        false,
        Parse::Bcc,
        Some("syscount-bpfcc"),
    ),
];

/// Name and number (this architecture) of the loop's syscall.
fn syscall_of(kind: &str) -> (&'static str, u32) {
    let getppid = if cfg!(target_arch = "aarch64") {
        173
    } else {
        110
    };
    let read = if cfg!(target_arch = "aarch64") { 63 } else { 0 };
    if kind == "getppid" {
        ("getppid", getppid)
    } else {
        ("read", read)
    }
}

fn argv(ctx: &Ctx, c: &Config, pid: u32, kind: &str) -> Option<Vec<String>> {
    let bin = ctx.bin.display().to_string();
    let (name, _) = syscall_of(kind);
    let ours = |extra: &[&str]| {
        let mut v = vec![
            bin.clone(),
            "trace".into(),
            "--pid".into(),
            pid.to_string(),
            "--no-live".into(),
            "--log".into(),
            "info".into(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let jsonl = ctx.tmp.join("percall.jsonl").display().to_string();
    let db = ctx.tmp.join("percall.db").display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let pid_s = pid.to_string();
    Some(match c.key {
        "bare" => return None,
        "floor" => vec![bin, "bench-floor".into()],
        "floor_exit" => vec![bin, "bench-floor".into(), "--exit-only".into()],
        "count" => ours(&["--mode", "count", "--no-store"]),
        "count_latency" => ours(&["--mode", "count", "--latency", "--no-store"]),
        "events_jsonl" => ours(&[
            "--mode",
            "events",
            "-e",
            name,
            "--json",
            "-o",
            &jsonl,
            "--no-store",
        ]),
        "events_store" => ours(&["--mode", "events", "-e", name, "--store", &db]),
        "strace" => s(&["strace", "-f", "-c", "-p", &pid_s]),
        "perf_trace" => s(&["perf", "trace", "-s", "-p", &pid_s]),
        "bpftrace" => vec![
            "bpftrace".into(),
            "-e".into(),
            format!(
                "tracepoint:raw_syscalls:sys_enter /pid == {pid}/ {{ @[args->id] = count(); }}"
            ),
        ],
        "bcc_syscount" => s(&["syscount-bpfcc", "-p", &pid_s]),
        _ => unreachable!("unknown configuration {}", c.key),
    })
}

/// The tracer's own count of the loop's syscall.
fn seen(p: Parse, out: &str, kind: &str) -> Option<u64> {
    let (name, nr) = syscall_of(kind);
    let num = |t: &str| t.replace(',', "").parse::<u64>().ok();
    out.lines().find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        match p {
            Parse::None => None,
            // Without timing, ours has only `calls [errors] name`.
            Parse::Ours if t.len() <= 3 => (t.len() >= 2 && t.last() == Some(&name))
                .then(|| num(t[0]))
                .flatten(),
            Parse::Ours | Parse::Strace => (t.len() >= 5 && t.last() == Some(&name))
                .then(|| num(t[3]))
                .flatten(),
            Parse::Perf | Parse::Bcc => (t.len() >= 2 && t[0] == name).then(|| num(t[1])).flatten(),
            Parse::Bpftrace => l
                .trim()
                .strip_prefix(&format!("@[{nr}]:"))
                .and_then(|v| num(v.trim())),
        }
    })
}

/// One run: the loop's ns per call, and what the tracer counted.
fn measure(
    ctx: &Ctx,
    c: &Config,
    kind: &str,
    n: u64,
    target: Option<u32>,
) -> anyhow::Result<(f64, Option<u64>)> {
    let lp = Gated::timed_loop(&ctx.workload, kind, n)?;
    let traced = target.unwrap_or(lp.pid());
    let tracer = match argv(ctx, c, traced, kind) {
        None => None,
        Some(a) => {
            let mut t = match Tracer::spawn(&a, true) {
                Ok(t) => t,
                Err(e) => {
                    lp.abort();
                    return Err(e);
                }
            };
            if let Err(e) = t.ready(c.ready, Duration::from_secs(120)) {
                lp.abort();
                let _ = t.stop(Duration::ZERO);
                return Err(e);
            }
            Some(t)
        }
    };
    let out = lp.go();
    let grace = if c.exits_with_target && target.is_none() {
        Duration::from_secs(10)
    } else {
        Duration::ZERO
    };
    let tracer_out = tracer.map(|t| t.stop(grace));
    let out = out?;
    let ns: f64 = out
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("loop printed {out:?}"))?;
    let counted = tracer_out.as_deref().and_then(|o| seen(c.parse, o, kind));
    if c.parse != Parse::None && counted.is_none() && target.is_none() {
        anyhow::bail!(
            "{}: no count of the loop's calls in its output: {}",
            c.label,
            tail(tracer_out.as_deref().unwrap_or(""), 300)
        );
    }
    Ok((ns, counted))
}

/// Calls per run for `kind` before scaling.
fn base_calls(ctx: &Ctx, kind: &str) -> u64 {
    match (kind, ctx.quick) {
        ("getppid", false) => 4_000_000,
        ("getppid", true) => 1_000_000,
        (_, false) => 2_000_000,
        (_, true) => 500_000,
    }
}

/// The per-call table for both loops.
pub fn run(ctx: &Ctx, available: &dyn Fn(&Config) -> Result<(), String>) -> Value {
    let mut out = serde_json::Map::new();
    for kind in ["getppid", "read-zero"] {
        println!("== per-call cost: {kind} ==");
        let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut counted: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        let mut failed: BTreeMap<&str, String> = BTreeMap::new();
        for c in CONFIGS {
            if let Err(why) = available(c) {
                failed.insert(c.key, why);
            }
        }
        for round in 0..ctx.rounds {
            for c in CONFIGS {
                if failed.contains_key(c.key) {
                    continue;
                }
                let n = base_calls(ctx, kind) / c.scale;
                match measure(ctx, c, kind, n, None) {
                    Ok((ns, seen)) => {
                        println!(
                            "  round {}: {:<45} {ns:>10.1} ns/call  counted {seen:?} of {n}",
                            round + 1,
                            c.label
                        );
                        samples.entry(c.key).or_default().push(ns);
                        counted.insert(c.key, seen);
                    }
                    Err(e) => {
                        println!("  {}: failed: {e}", c.label);
                        failed.insert(c.key, e.to_string());
                    }
                }
            }
        }
        let bare = samples.get("bare").map_or(f64::NAN, |v| stats::median(v));
        let floor_added = samples
            .get("floor")
            .map_or(f64::NAN, |v| stats::median(v) - bare);
        let bcc_added = samples
            .get("bcc_syscount")
            .map_or(f64::NAN, |v| stats::median(v) - bare);
        let mut rows = Vec::new();
        for c in CONFIGS {
            let n = base_calls(ctx, kind) / c.scale;
            let mut row = json!({"key": c.key, "label": c.label, "calls": n});
            if let Some(v) = samples.get(c.key) {
                let m = stats::median(v);
                row["samples_ns"] = json!(v);
                row["median_ns"] = json!(m);
                row["min_ns"] = json!(stats::min(v));
                row["max_ns"] = json!(stats::max(v));
                row["added_ns"] = json!(m - bare);
                if c.key != "bare" && c.key != "floor" && floor_added > 0.0 {
                    row["ratio_to_floor"] = json!((m - bare) / floor_added);
                }
                if c.key != "bare" && c.key != "bcc_syscount" && bcc_added > 0.0 {
                    row["ratio_to_bcc"] = json!((m - bare) / bcc_added);
                }
                if let Some(s) = counted.get(c.key) {
                    row["counted"] = json!(s);
                }
            }
            if let Some(e) = failed.get(c.key) {
                row["unavailable"] = json!(e);
            }
            rows.push(row);
        }
        out.insert(kind.replace('-', "_"), Value::Array(rows));
    }
    Value::Object(out)
}

/// The tax on an untraced process: the loop runs untraced while the floor
/// programs are attached, or while ai-forensics traces a sleeping process.
pub fn untraced(ctx: &Ctx) -> Value {
    println!("== tax on untraced processes ==");
    let keys = ["bare", "floor", "floor_exit", "count", "events_jsonl"];
    let configs: Vec<&Config> = CONFIGS.iter().filter(|c| keys.contains(&c.key)).collect();
    let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut failed: BTreeMap<&str, String> = BTreeMap::new();
    let n = base_calls(ctx, "getppid");
    for round in 0..ctx.rounds {
        for c in &configs {
            if failed.contains_key(c.key) {
                continue;
            }
            let sleeper = std::process::Command::new("sleep").arg("3600").spawn();
            let Ok(mut sleeper) = sleeper else {
                failed.insert(c.key, "cannot start sleep".into());
                continue;
            };
            match measure(ctx, c, "getppid", n, Some(sleeper.id())) {
                Ok((ns, _)) => {
                    println!("  round {}: {:<45} {ns:>10.1} ns/call", round + 1, c.label);
                    samples.entry(c.key).or_default().push(ns);
                }
                Err(e) => {
                    failed.insert(c.key, e.to_string());
                }
            }
            let _ = sleeper.kill();
            let _ = sleeper.wait();
        }
    }
    let bare = samples.get("bare").map_or(f64::NAN, |v| stats::median(v));
    let floor_added = samples
        .get("floor")
        .map_or(f64::NAN, |v| stats::median(v) - bare);
    let rows: Vec<Value> = configs
        .iter()
        .map(|c| {
            let mut row = json!({"key": c.key, "label": c.label, "calls": n});
            if let Some(v) = samples.get(c.key) {
                let added = stats::median(v) - bare;
                row["samples_ns"] = json!(v);
                row["median_ns"] = json!(stats::median(v));
                row["added_ns"] = json!(added);
                if c.key != "bare" && c.key != "floor" && floor_added > 0.0 {
                    row["ratio_to_floor"] = json!(added / floor_added);
                }
            }
            if let Some(e) = failed.get(c.key) {
                row["unavailable"] = json!(e);
            }
            row
        })
        .collect();
    Value::Array(rows)
}

/// Where the time goes on the loop's CPU under count mode and under the
/// floor: the top symbols of `perf record`.
pub fn profile(ctx: &Ctx) -> Value {
    println!("== profile (perf record on the loop's CPU) ==");
    let mut out = serde_json::Map::new();
    for key in ["floor", "count", "count_latency", "events_jsonl"] {
        let Some(c) = CONFIGS.iter().find(|c| c.key == key) else {
            continue;
        };
        match profile_one(ctx, c) {
            Ok(top) => {
                out.insert(key.into(), json!(top));
            }
            Err(e) => {
                out.insert(key.into(), json!({"unavailable": e.to_string()}));
            }
        }
    }
    Value::Object(out)
}

fn profile_one(ctx: &Ctx, c: &Config) -> anyhow::Result<Vec<Value>> {
    let data = ctx.tmp.join(format!("perf-{}.data", c.key));
    let n = base_calls(ctx, "getppid") * 2;
    let lp = Gated::timed_loop(&ctx.workload, "getppid", n)?;
    let Some(a) = argv(ctx, c, lp.pid(), "getppid") else {
        anyhow::bail!("nothing to profile");
    };
    let mut t = Tracer::spawn(&a, true)?;
    t.ready(c.ready, Duration::from_secs(60))?;
    let rec: Vec<String> = [
        "perf",
        "record",
        "-C",
        &super::proc::LOOP_CPU.to_string(),
        "-o",
        &data.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut p = Tracer::spawn(&rec, true)?;
    p.ready(
        Ready::After(Duration::from_secs(1)),
        Duration::from_secs(10),
    )?;
    let r = lp.go();
    let _ = p.stop(Duration::ZERO);
    let _ = t.stop(Duration::from_secs(10));
    r?;
    let rep = std::process::Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--sort",
            "sym",
            "--no-children",
            "-q",
            "-i",
        ])
        .arg(&data)
        .output()?;
    let _ = std::fs::remove_file(&data);
    let text = String::from_utf8_lossy(&rep.stdout);
    let top: Vec<Value> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (pct, rest) = l.split_once('%')?;
            let pct: f64 = pct.trim().parse().ok()?;
            let sym = rest
                .trim()
                .trim_start_matches("[k]")
                .trim_start_matches("[.]")
                .trim();
            Some(json!({"percent": pct, "symbol": sym}))
        })
        .take(12)
        .collect();
    if top.is_empty() {
        anyhow::bail!(
            "perf report printed nothing: {}",
            tail(&String::from_utf8_lossy(&rep.stderr), 300)
        );
    }
    Ok(top)
}
