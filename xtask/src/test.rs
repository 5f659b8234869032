//! The whole test suite: unit tests (no root), then the integration tests,
//! which load the real programs into the kernel and therefore run as root.
use crate::util::{self, cmd, root};

/// `cargo xtask test [FILTER] [--integration-only] [--kernel K [--full]]`.
pub fn run(
    filter: Option<&str>,
    integration_only: bool,
    kernel: Option<&str>,
    full: bool,
) -> anyhow::Result<()> {
    if let Some(k) = kernel {
        crate::vm::chosen(k)?;
    }
    if !integration_only && kernel.is_none() {
        println!("== unit tests ==");
        util::run(cmd("cargo").args([
            "test",
            "--workspace",
            "--exclude",
            "ai-forensics-ebpf",
            "--exclude",
            "ai-forensics-integration",
        ]))?;
    }
    println!("== building for the integration tests (release) ==");
    util::run(cmd("cargo").args([
        "build",
        "--release",
        "--package",
        "ai-forensics",
        "--package",
        "ai-forensics-integration",
        "--bins",
    ]))?;
    // Build the test binaries without running them (cargo itself never runs as root).
    let built = cmd("cargo")
        .args([
            "test",
            "--release",
            "--package",
            "ai-forensics-integration",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !built.status.success() {
        anyhow::bail!("building the integration tests failed");
    }
    let out = String::from_utf8_lossy(&built.stdout);
    let mut tests = Vec::new();
    for line in out.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && v["profile"]["test"] == true
            && let Some(exe) = v["executable"].as_str()
        {
            let name = v["target"]["name"].as_str().unwrap_or("").to_owned();
            tests.push((name, exe.to_owned()));
        }
    }
    if tests.is_empty() {
        anyhow::bail!("no integration test binaries were built");
    }
    if let Some(k) = kernel {
        let tests: Vec<(String, std::path::PathBuf)> =
            tests.into_iter().map(|(n, e)| (n, e.into())).collect();
        return crate::vm::run(k, full, &tests);
    }
    let bin_dir = root().join("target").join("release");
    println!("== integration tests (as root, one at a time) ==");
    let mut failed = Vec::new();
    for (_, t) in &tests {
        let mut c = util::as_root(t);
        c.env("AI_FORENSICS_BIN", bin_dir.join("ai-forensics"))
            .env("AI_FORENSICS_WORKLOAD", bin_dir.join("workload"))
            .env("AI_FORENSICS_ROOT", root())
            .env("AI_FORENSICS_SERVICES", crate::services::dir())
            .arg("--test-threads=1");
        if let Some(f) = filter {
            c.arg(f);
        }
        if let Err(e) = util::run(&mut c) {
            failed.push(e.to_string());
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("integration tests failed:\n{}", failed.join("\n"));
    }
    println!("== all tests passed ==");
    Ok(())
}
