//! `cargo xtask bench`: what tracing costs, measured side by side with the
//! tools users would use instead, on this machine, in one run.
//!
//! * `percall`: ns added per syscall (getppid, read 4 KiB) under each tracer,
//!   and the tax on untraced processes, plus where the time goes (perf);
//! * `throughput`: largest zero-loss event rate per sink, loss accounting
//!   above it, the agent's CPU and RSS at 100k events/s;
//! * `pytorch`: the bundled training and prediction runs, bare and traced;
//! * `tls`: ns per `SSL_write` with `--tls-capture`'s uprobes.
//!
//! Results go to `BENCHMARKS.md` and `benchmarks.json` (with `--quick`,
//! under `target/bench-quick/` unless `--out` says otherwise).
mod percall;
mod proc;
mod pytorch;
mod report;
mod stats;
mod throughput;
mod tls;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::util::{self, cmd, root};

/// What every section needs.
pub struct Ctx {
    /// The ai-forensics binary (release).
    pub bin: PathBuf,
    /// The deterministic workload binary.
    pub workload: PathBuf,
    /// Scratch directory.
    pub tmp: PathBuf,
    /// Repository root.
    pub root: PathBuf,
    /// Short run.
    pub quick: bool,
    /// Alternating rounds per configuration.
    pub rounds: usize,
}

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// A short run (fewer rounds, shorter trials) to check the suite works.
    #[arg(long)]
    pub quick: bool,
    /// Directory for BENCHMARKS.md and benchmarks.json (default: the
    /// repository root; target/bench-quick with --quick).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only these sections (comma-separated: percall, untraced, profile,
    /// throughput, pytorch, agent, tls).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

const SECTIONS: &[&str] = &[
    "percall",
    "untraced",
    "profile",
    "throughput",
    "pytorch",
    "agent",
    "tls",
];

pub fn build() -> anyhow::Result<()> {
    crate::build::user(true)?;
    util::run(cmd("cargo").args([
        "build",
        "--release",
        "--package",
        "ai-forensics-integration",
        "--bin",
        "workload",
    ]))
}

/// Peers from Debian, and the kernel headers bcc compiles against (linked
/// where bcc looks for them when the running kernel has none installed).
fn ensure_peers() -> Vec<String> {
    let mut notes = Vec::new();
    let have = |b: &str| {
        util::succeeds(std::process::Command::new("sh").args(["-c", &format!("command -v {b}")]))
    };
    let mut pkgs = Vec::new();
    for (bin, pkg) in [
        ("strace", "strace"),
        ("perf", "linux-perf"),
        ("bpftrace", "bpftrace"),
        ("syscount-bpfcc", "bpfcc-tools"),
    ] {
        if !have(bin) {
            pkgs.push(pkg);
        }
    }
    let headers = || {
        std::fs::read_dir("/usr/src").ok().and_then(|d| {
            let mut v: Vec<PathBuf> = d
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("linux-headers-") && n.ends_with("-amd64"))
                })
                .collect();
            v.sort();
            v.pop()
        })
    };
    if headers().is_none() {
        pkgs.push("linux-headers-amd64");
    }
    if !pkgs.is_empty() {
        println!("installing benchmark peers: {}", pkgs.join(" "));
        let ok = util::succeeds(
            std::process::Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&pkgs)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
        if !ok {
            notes.push(format!("apt-get install {} failed", pkgs.join(" ")));
        }
    }
    let release = util::output(std::process::Command::new("uname").arg("-r"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let modules = Path::new("/lib/modules").join(&release);
    if let Some(h) = headers()
        && !modules.join("build").exists()
    {
        let common = PathBuf::from(h.display().to_string().replace("-amd64", "-common"));
        let _ = std::fs::create_dir_all(&modules);
        let linked = std::os::unix::fs::symlink(&h, modules.join("build")).is_ok()
            && (!common.is_dir()
                || std::os::unix::fs::symlink(&common, modules.join("source")).is_ok());
        notes.push(format!(
            "bcc compiles against {} (linked as {}/build{}): the running kernel {release} has no headers package",
            h.display(),
            modules.display(),
            if linked { "" } else { ", link failed" }
        ));
    }
    notes
}

fn version(argv: &[&str]) -> Option<String> {
    let o = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()?;
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    s.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let out = |c: &mut std::process::Command| util::output(c).unwrap_or_default().trim().to_owned();
    let commit = out(cmd("git").args(["rev-parse", "--short", "HEAD"]));
    let dirty = !out(cmd("git").args(["status", "--porcelain", "--untracked-files=no"])).is_empty();
    json!({
        "date": out(std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        "kernel": out(std::process::Command::new("uname").arg("-r")),
        "cpu": model,
        "cpus": cpus,
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "commit": if dirty { format!("{commit} (with local changes)") } else { commit },
        "peers": {
            "strace": version(&["strace", "-V"]),
            "perf": version(&["perf", "version"]),
            "bpftrace": version(&["bpftrace", "--version"]),
            "bcc": util::output(std::process::Command::new("dpkg-query").args(["-W", "-f", "${Version}", "bpfcc-tools"])).map(|v| format!("bpfcc-tools {v}")),
        },
    })
}

/// Runs the suite.
pub fn run(o: &Options) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("cargo xtask bench needs root: it loads eBPF programs and runs tracers that do");
    }
    for s in &o.only {
        if !SECTIONS.contains(&s.as_str()) {
            bail!(
                "--only: unknown section '{s}' (sections: {})",
                SECTIONS.join(", ")
            );
        }
    }
    let want = |s: &str| o.only.is_empty() || o.only.iter().any(|x| x == s);
    crate::setup::ensure()?;
    build()?;
    let notes = ensure_peers();
    let root = root();
    let out_dir = o.out.clone().unwrap_or_else(|| {
        if o.quick {
            root.join("target").join("bench-quick")
        } else {
            root.clone()
        }
    });
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let tmp = std::env::temp_dir().join(format!("ai-forensics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ctx = Ctx {
        bin: root.join("target/release/ai-forensics"),
        workload: root.join("target/release/workload"),
        tmp: tmp.clone(),
        root: root.clone(),
        quick: o.quick,
        rounds: if o.quick { 2 } else { 5 },
    };
    let have = |b: &str| {
        util::succeeds(std::process::Command::new("sh").args(["-c", &format!("command -v {b}")]))
    };
    let available = |c: &percall::Config| match c.needs {
        Some(b) if !have(b) => Err(format!("{b} is not installed")),
        _ => Ok(()),
    };
    let mut results = json!({
        "machine": machine(),
        "quick": o.quick,
        "rounds": ctx.rounds,
        "notes": notes,
    });
    // `--only` reruns some sections into the existing results, which keep
    // their own machine line; the rerun is listed with its own date and
    // commit.
    if !o.only.is_empty()
        && let Ok(text) = std::fs::read_to_string(out_dir.join("benchmarks.json"))
        && let Ok(mut old) = serde_json::from_str::<Value>(&text)
    {
        let m = &results["machine"];
        let rerun = json!({"sections": o.only, "date": m["date"], "commit": m["commit"]});
        match old["reruns"].as_array_mut() {
            Some(v) => v.push(rerun),
            None => old["reruns"] = json!([rerun]),
        }
        results = old;
    }
    if want("percall") {
        results["per_call"] = percall::run(&ctx, &available);
    }
    if want("untraced") {
        results["untraced"] = percall::untraced(&ctx);
    }
    if want("profile") {
        results["profile"] = percall::profile(&ctx);
    }
    if want("throughput") {
        results["throughput"] = throughput::run(&ctx);
    }
    if want("pytorch") {
        results["pytorch"] = pytorch::run(&ctx);
    }
    if want("agent") {
        results["agent"] = throughput::agent(&ctx);
    }
    if want("tls") {
        results["tls"] = tls::run(&ctx);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    results["targets"] = report::targets(&results);
    let json_path = out_dir.join("benchmarks.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")?;
    let md_path = out_dir.join("BENCHMARKS.md");
    let analysis = std::fs::read_to_string(root.join("docs/performance.md")).ok();
    std::fs::write(&md_path, report::markdown(&results, analysis.as_deref()))?;
    println!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

/// Rebuilds BENCHMARKS.md from a benchmarks.json (after editing the analysis).
pub fn render(json_path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(json_path)
        .with_context(|| format!("reading {}", json_path.display()))?;
    let mut results: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", json_path.display()))?;
    results["targets"] = report::targets(&results);
    let analysis = std::fs::read_to_string(root().join("docs/performance.md")).ok();
    let md = json_path.with_file_name("BENCHMARKS.md");
    std::fs::write(&md, report::markdown(&results, analysis.as_deref()))?;
    println!("wrote {}", md.display());
    Ok(())
}
