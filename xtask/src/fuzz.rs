//! `cargo xtask fuzz`: runs each cargo-fuzz target under `fuzz/` for a bounded
//! time, seeded with the committed corpus. A crash leaves its input under
//! `fuzz/artifacts/TARGET/`; copied to `fuzz/regressions/TARGET/` it becomes
//! a regression test (`ai-forensics/tests/fuzz_regressions.rs`).
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::util::{self, cmd, root};

/// The fuzz targets, in `fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &[
    "decode_record",
    "rules_parse",
    "analyser_verdicts",
    "agent_config",
];

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only these targets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Installs cargo-fuzz when missing.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if util::succeeds(cmd("cargo").args(["fuzz", "--version"])) {
        return Ok(());
    }
    println!("fuzz: installing cargo-fuzz");
    util::run(cmd("cargo").args(["install", "--locked", "cargo-fuzz"]))
        .context("cargo install cargo-fuzz")
}

/// Runs the targets; fails when any of them found a crash.
pub fn run(o: &Options) -> anyhow::Result<()> {
    for t in &o.only {
        if !TARGETS.contains(&t.as_str()) {
            bail!("fuzz: unknown target {t} (targets: {})", TARGETS.join(", "));
        }
    }
    ensure_cargo_fuzz()?;
    let dir = root().join("fuzz");
    let mut failed = Vec::new();
    for &t in TARGETS {
        if !o.only.is_empty() && !o.only.iter().any(|x| x == t) {
            continue;
        }
        let corpus = dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let seeds = dir.join("seeds").join(t);
        let start = Instant::now();
        println!("== fuzz {t}: {} s ==", o.seconds);
        let mut c = cmd("cargo");
        c.args(["+nightly", "fuzz", "run", "--fuzz-dir"])
            .arg(&dir)
            .arg(t)
            .arg(&corpus);
        if seeds.is_dir() {
            c.arg(&seeds);
        }
        c.arg("--")
            .arg(format!("-max_total_time={}", o.seconds))
            .arg("-rss_limit_mb=4096")
            .arg("-max_len=65536")
            .arg("-print_final_stats=1");
        // libFuzzer reports on stderr; it is passed through and its final
        // execution count kept for the line below.
        let mut child = c
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cargo fuzz run")?;
        let mut executed = None;
        if let Some(err) = child.stderr.take() {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                    executed = n.trim().parse::<u64>().ok();
                }
            }
        }
        let ok = child.wait().is_ok_and(|s| s.success());
        let inputs = count_files(&corpus);
        println!(
            "fuzz {t}: {} in {} s of fuzzing ({:.0} s with the build), {} executions, corpus {inputs} inputs",
            if ok { "no crash" } else { "CRASH" },
            o.seconds,
            start.elapsed().as_secs_f64(),
            executed.map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
        if !ok {
            failed.push(t);
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz: crashes in {} (inputs under fuzz/artifacts/; copy them to fuzz/regressions/TARGET/ once fixed)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn count_files(d: &Path) -> usize {
    std::fs::read_dir(d).map_or(0, |r| r.flatten().count())
}
