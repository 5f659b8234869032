//! `cargo xtask soak --minutes N`: a mixed workload (a steady syscall rate,
//! file churn, process trees, futex-heavy threads and real PyTorch
//! inference) traced in events mode with the store on, for N minutes. The
//! recorder's RSS and CPU are sampled every 10 s; at the end the loss
//! accounting comes from the store. Writes `docs/soak.md` (full runs) and
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
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub every: u64,
}

/// One sample of the recorder.
struct Sample {
    t_s: f64,
    rss_kib: u64,
    cpu_pct: f64,
}

fn proc_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
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
    let mut last = (0.0_f64, proc_cpu_s(pid).unwrap_or(0.0));
    loop {
        thread::sleep(Duration::from_secs(o.every));
        if child.try_wait()?.is_some() {
            break;
        }
        let t = start.elapsed().as_secs_f64();
        let (Some(rss), Some(cpu)) = (proc_rss_kib(pid), proc_cpu_s(pid)) else {
            break;
        };
        let pct = 100.0 * (cpu - last.1) / (t - last.0).max(1e-9);
        last = (t, cpu);
        println!(
            "  {t:6.0} s  rss {:6.1} MiB  cpu {pct:5.1} %",
            rss as f64 / 1024.0
        );
        samples.push(Sample {
            t_s: t,
            rss_kib: rss,
            cpu_pct: pct,
        });
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
        std::fs::write(root().join("docs/soak.md"), md)?;
        println!("soak: wrote docs/soak.md");
    }
    let _ = std::fs::remove_file(&db);
    Ok(())
}

fn analyse(o: &Options, samples: &[Sample], shown: &Value, db_bytes: u64) -> Value {
    let mib = |k: u64| k as f64 / 1024.0;
    // Warm-up: the first minute (or the first sample on short runs).
    let warm = samples
        .iter()
        .find(|s| s.t_s >= 60.0)
        .or_else(|| samples.first())
        .map_or(0, |s| s.rss_kib);
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let end = samples.last().map_or(0, |s| s.rss_kib);
    let growth = mib(end.saturating_sub(warm));
    let cpu: Vec<f64> = samples.iter().map(|s| s.cpu_pct).collect();
    let mean_cpu = cpu.iter().sum::<f64>() / cpu.len().max(1) as f64;
    let summary = &shown["summary"];
    let loss = &summary["loss"];
    json!({
        "date": util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default().trim(),
        "kernel": util::output(Command::new("uname").arg("-r")).unwrap_or_default().trim(),
        "commit": util::output(Command::new("git").args(["-C", &root().display().to_string(), "rev-parse", "--short", "HEAD"])).unwrap_or_default().trim(),
        "minutes": o.minutes,
        "rate": o.rate,
        "samples": samples.iter().map(|s| json!({"t_s": s.t_s.round(), "rss_mib": (mib(s.rss_kib) * 10.0).round() / 10.0, "cpu_pct": (s.cpu_pct * 10.0).round() / 10.0})).collect::<Vec<_>>(),
        "rss_after_warmup_mib": mib(warm),
        "rss_peak_mib": mib(peak),
        "rss_end_mib": mib(end),
        "rss_growth_mib": growth,
        "flat": growth <= 4.0 || growth <= mib(warm) * 0.05,
        "cpu_mean_pct": mean_cpu,
        "cpu_max_pct": cpu.iter().copied().fold(0.0, f64::max),
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
         with `ai-forensics run --mode events -e all` into the store.\n",
        r["minutes"],
        r["date"].as_str().unwrap_or(""),
        r["kernel"].as_str().unwrap_or(""),
        r["commit"].as_str().unwrap_or(""),
        r["rate"],
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
        f(&r["store_bytes"]) / 1048576.0
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
        "| RSS after 1 min / peak / end | {:.1} / {:.1} / {:.1} MiB |",
        f(&r["rss_after_warmup_mib"]),
        f(&r["rss_peak_mib"]),
        f(&r["rss_end_mib"])
    );
    let _ = writeln!(
        s,
        "| RSS growth after warm-up | {:.1} MiB ({}) |",
        f(&r["rss_growth_mib"]),
        if r["flat"] == true {
            "flat"
        } else {
            "NOT flat"
        }
    );
    let _ = writeln!(
        s,
        "| CPU of ai-forensics, mean / max of 10 s samples | {:.1} % / {:.1} % of one core |",
        f(&r["cpu_mean_pct"]),
        f(&r["cpu_max_pct"])
    );
    let _ = writeln!(
        s,
        "| session status | {} |\n",
        r["status"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "| time (s) | RSS (MiB) | CPU (% of a core) |\n|---:|---:|---:|"
    );
    for x in r["samples"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} |",
            x["t_s"],
            f(&x["rss_mib"]),
            f(&x["cpu_pct"])
        );
    }
    s
}
