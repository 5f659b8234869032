//! `cargo xtask soak --minutes N`: a mixed workload (a steady syscall rate,
//! file churn, process trees, futex-heavy threads and real PyTorch
//! inference) traced in events mode with the store on, for N minutes. The
//! recorder's RSS and CPU time are sampled every second; the verdict
//! comes from the trend after the first minute (a least-squares slope and
//! the last minute against the second), not from two single samples; at the
//! end the loss accounting comes from the store. Writes `docs/soak.md` (full runs) and
//! `target/soak/soak.json`.
use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::util::{self, root};

/// Options of `cargo xtask soak`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// How long the workload runs.
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Steady getppid calls per second beside the rest of the mix.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Seconds between samples of the recorder's RSS and CPU time.
    #[arg(long, default_value_t = 1)]
    pub every: u64,
}

/// One sample of the recorder.
struct Sample {
    t_s: f64,
    rss: Rss,
    /// CPU time used so far (user + system), seconds.
    cpu_s: f64,
}

/// Resident memory of a process in KiB: total, anonymous (heap), file-backed
/// (binary, libraries, the store's mapped WAL index).
#[derive(Clone, Copy, Default)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

fn proc_rss_kib(pid: u32) -> Option<Rss> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Rss {
        total: field("VmRSS:")?,
        anon: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
    })
}

/// utime + stime of a process, in seconds.
fn proc_cpu_s(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

fn script(o: &Options, workload: &std::path::Path, dir: &std::path::Path) -> String {
    let secs = o.minutes * 60;
    let w = workload.display();
    let d = dir.display();
    let py = root().join("models/predictions.py");
    format!(
        r#"set -u
end=$((SECONDS + {secs}))
{w} rate {rate} {secs} &
while [ $SECONDS -lt $end ]; do
  {w} mix 2000 {d} >/dev/null
  {w} tree 8 >/dev/null
  {w} threads 4 5000 >/dev/null
  /usr/bin/python3 {py} >/dev/null 2>&1
  sleep 1
done
wait
"#,
        rate = o.rate,
        py = py.display()
    )
}

/// Runs the soak.
pub fn run(o: &Options) -> anyhow::Result<()> {
    if o.minutes == 0 || o.every == 0 {
        bail!("soak: --minutes and --every must be at least 1");
    }
    crate::bench::build()?;
    // The prediction run needs the trained model.
    if !root().join("models/out/model.pt").exists() {
        println!("soak: training the bundled model first");
        util::run(
            std::process::Command::new("/usr/bin/python3")
                .arg(root().join("models/train.py"))
                .current_dir(root()),
        )?;
    }
    let bin = root().join("target/release/ai-forensics");
    let workload = root().join("target/release/workload");
    let tmp = root().join("target/soak");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("files"))?;
    let db = tmp.join("soak.db");
    let sh = tmp.join("mix.sh");
    std::fs::write(&sh, script(o, &workload, &tmp.join("files")))?;
    println!(
        "soak: {} min of mixed workload under `ai-forensics run --mode events -e all` with the store",
        o.minutes
    );
    let mut child = util::as_root(&bin)
        .args([
            "run",
            "--no-live",
            "--mode",
            "events",
            "-e",
            "all",
            "--store",
        ])
        .arg(&db)
        .args(["--log", "warn", "--", "bash"])
        .arg(&sh)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ai-forensics")?;
    let pid = child.id();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_print = 10.0;
    loop {
        thread::sleep(Duration::from_secs(o.every));
        if child.try_wait()?.is_some() {
            break;
        }
        let t = start.elapsed().as_secs_f64();
        let (Some(rss), Some(cpu_s)) = (proc_rss_kib(pid), proc_cpu_s(pid)) else {
            break;
        };
        if t >= next_print {
            next_print += 10.0;
            println!(
                "  {t:6.0} s  rss {:6.1} MiB (anon {:6.1}, file {:5.1})  cpu {cpu_s:6.1} s",
                mib(rss.total),
                mib(rss.anon),
                mib(rss.file),
            );
        }
        samples.push(Sample { t_s: t, rss, cpu_s });
    }
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("soak: ai-forensics exited with {}: {stderr}", out.status);
    }
    let show = Command::new(&bin)
        .args(["show", "last", "--json", "--store"])
        .arg(&db)
        .output()?;
    let shown: Value = serde_json::from_slice(&show.stdout)
        .with_context(|| format!("show --json: {}", String::from_utf8_lossy(&show.stderr)))?;
    let db_bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    let result = analyse(o, &samples, &shown, db_bytes);
    std::fs::write(
        tmp.join("soak.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    let md = render(&result);
    print!("{md}");
    if o.minutes >= 10 {
        let page = root().join("docs/soak.md");
        let existing = std::fs::read_to_string(&page).unwrap_or_default();
        std::fs::write(&page, with_notes(&md, &existing))?;
        println!("soak: wrote docs/soak.md");
    }
    let _ = std::fs::remove_file(&db);
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Per-minute windows: RSS mean/min/max, anonymous heap mean, CPU share.
fn minutes(samples: &[Sample]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut prev_cpu: Option<(f64, f64)> = None;
    let last_min = samples.last().map_or(0, |s| (s.t_s / 60.0).ceil() as u64);
    for m in 0..last_min {
        let w: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.t_s > m as f64 * 60.0 && s.t_s <= (m + 1) as f64 * 60.0)
            .collect();
        // A last window cut short (the run's final seconds) is left out.
        let Some(last) = w.last().filter(|_| w.len() >= 10) else {
            continue;
        };
        let n = w.len() as f64;
        let mean = w.iter().map(|s| mib(s.rss.total)).sum::<f64>() / n;
        let anon = w.iter().map(|s| mib(s.rss.anon)).sum::<f64>() / n;
        let min = w.iter().map(|s| s.rss.total).min().unwrap_or(0);
        let max = w.iter().map(|s| s.rss.total).max().unwrap_or(0);
        let (t0, c0) = prev_cpu.unwrap_or((0.0, 0.0));
        let cpu = 100.0 * (last.cpu_s - c0) / (last.t_s - t0).max(1e-9);
        prev_cpu = Some((last.t_s, last.cpu_s));
        out.push(json!({
            "minute": m + 1,
            "rss_mean_mib": mean,
            "rss_min_mib": mib(min),
            "rss_max_mib": mib(max),
            "anon_mean_mib": anon,
            "cpu_pct": cpu,
        }));
    }
    out
}

fn analyse(o: &Options, samples: &[Sample], shown: &Value, db_bytes: u64) -> Value {
    // Warm-up: the first minute (the first sample on runs of a minute).
    let settled: Vec<&Sample> = if samples.iter().any(|s| s.t_s > 60.0) {
        samples.iter().filter(|s| s.t_s > 60.0).collect()
    } else {
        samples.iter().collect()
    };
    let peak = samples.iter().map(|s| s.rss.total).max().unwrap_or(0);
    let end = samples.last().map_or(0, |s| s.rss.total);
    let per_min = minutes(samples);
    let level = settled.iter().map(|s| mib(s.rss.total)).sum::<f64>() / settled.len().max(1) as f64;
    // The trend after warm-up, in MiB a minute, and what it adds up to
    // over the settled part of the run.
    let pts: Vec<(f64, f64)> = settled
        .iter()
        .map(|s| (s.t_s / 60.0, mib(s.rss.total)))
        .collect();
    let anon_pts: Vec<(f64, f64)> = settled
        .iter()
        .map(|s| (s.t_s / 60.0, mib(s.rss.anon)))
        .collect();
    let per_minute = slope(&pts);
    let span_min = pts.last().map_or(0.0, |l| l.0) - pts.first().map_or(0.0, |f| f.0);
    let trend = per_minute * span_min;
    // Second minute against the last.
    let mean_of = |v: Option<&Value>| v.and_then(|m| m["rss_mean_mib"].as_f64()).unwrap_or(0.0);
    let step = if per_min.len() >= 3 {
        mean_of(per_min.last()) - mean_of(per_min.get(1))
    } else {
        0.0
    };
    let bound = f64::max(4.0, level * 0.05);
    let cpu_total = samples.last().map_or(0.0, |s| s.cpu_s);
    let t_total = samples.last().map_or(1.0, |s| s.t_s);
    let summary = &shown["summary"];
    let loss = &summary["loss"];
    json!({
        "date": util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default().trim(),
        "kernel": util::output(Command::new("uname").arg("-r")).unwrap_or_default().trim(),
        "commit": util::output(Command::new("git").args(["-C", &root().display().to_string(), "rev-parse", "--short", "HEAD"])).unwrap_or_default().trim(),
        "minutes": o.minutes,
        "rate": o.rate,
        "sample_every_s": o.every,
        "samples": samples.len(),
        "per_minute": per_min,
        "rss_level_mib": level,
        "rss_peak_mib": mib(peak),
        "rss_end_mib": mib(end),
        "rss_slope_mib_per_min": per_minute,
        "anon_slope_mib_per_min": slope(&anon_pts),
        "rss_trend_mib": trend,
        "rss_second_to_last_minute_mib": step,
        "flat_bound_mib": bound,
        "flat": trend.abs() <= bound && step.abs() <= bound,
        "cpu_mean_pct": 100.0 * cpu_total / t_total,
        "syscalls": summary["total_calls"],
        "records_read": summary["records"],
        "records_stored": shown["records_stored"],
        "store_bytes": db_bytes,
        "status": shown["status"],
        "loss": loss,
    })
}

fn render(r: &Value) -> String {
    let mut s = String::new();
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let _ = writeln!(s, "# Soak: {} minutes under tracing\n", r["minutes"]);
    let _ = writeln!(
        s,
        "`cargo xtask soak --minutes {}` on {}, kernel {}, commit {}. The mix, in a loop: \
         a steady {} getppid/s, file churn (`workload mix`), process trees (fork, exec, \
         exit), four futex-heavy threads, and the bundled PyTorch prediction run; traced \
         with `ai-forensics run --mode events -e all` into the store. The recorder's RSS \
         and CPU time are sampled every {} s ({} samples).\n",
        r["minutes"],
        r["date"].as_str().unwrap_or(""),
        r["kernel"].as_str().unwrap_or(""),
        r["commit"].as_str().unwrap_or(""),
        r["rate"],
        r["sample_every_s"],
        r["samples"],
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| syscalls counted | {} |", r["syscalls"]);
    let _ = writeln!(
        s,
        "| records read / stored | {} / {} |",
        r["records_read"], r["records_stored"]
    );
    let _ = writeln!(
        s,
        "| store size | {:.0} MiB |",
        f(&r["store_bytes"]) / 1_048_576.0
    );
    let _ = writeln!(s, "| lost in the kernel | {} |", r["loss"]["lost_events"]);
    let _ = writeln!(
        s,
        "| dropped by the store | {} |",
        r["loss"]["store_dropped"]
    );
    let _ = writeln!(s, "| decode errors | {} |", r["loss"]["decode_errors"]);
    let _ = writeln!(
        s,
        "| RSS after the first minute: mean / peak / end | {:.1} / {:.1} / {:.1} MiB |",
        f(&r["rss_level_mib"]),
        f(&r["rss_peak_mib"]),
        f(&r["rss_end_mib"])
    );
    let _ = writeln!(
        s,
        "| RSS trend after the first minute (least squares) | {:+.2} MiB/min, {:+.1} MiB over the run (anonymous heap {:+.2} MiB/min) |",
        f(&r["rss_slope_mib_per_min"]),
        f(&r["rss_trend_mib"]),
        f(&r["anon_slope_mib_per_min"])
    );
    let _ = writeln!(
        s,
        "| last minute's mean minus the second's | {:+.1} MiB |",
        f(&r["rss_second_to_last_minute_mib"])
    );
    let _ = writeln!(
        s,
        "| verdict (both within {:.1} MiB, the larger of 4 MiB and 5% of the level) | **{}** |",
        f(&r["flat_bound_mib"]),
        if r["flat"] == true {
            "flat"
        } else {
            "NOT flat"
        }
    );
    let _ = writeln!(
        s,
        "| CPU of ai-forensics, mean | {:.1} % of one core |",
        f(&r["cpu_mean_pct"])
    );
    let _ = writeln!(
        s,
        "| session status | {} |\n",
        r["status"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "| minute | RSS mean | RSS min | RSS max | anonymous heap, mean | CPU (% of a core) |\n|---:|---:|---:|---:|---:|---:|"
    );
    for m in r["per_minute"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} |",
            m["minute"],
            f(&m["rss_mean_mib"]),
            f(&m["rss_min_mib"]),
            f(&m["rss_max_mib"]),
            f(&m["anon_mean_mib"]),
            f(&m["cpu_pct"])
        );
    }
    s
}

/// The heading under which docs/soak.md keeps its hand-written reading of
/// the numbers; a new run keeps that section.
const NOTES: &str = "\n## Reading it\n";

/// The generated page, with the notes of the existing one kept.
fn with_notes(generated: &str, existing: &str) -> String {
    match existing.find(NOTES) {
        Some(i) => format!("{generated}{}", &existing[i..]),
        None => generated.to_owned(),
    }
}
