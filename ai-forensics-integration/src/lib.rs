//! Helpers shared by the integration tests: run the real `ai-forensics`
//! binary (as root) on real workloads and read what it recorded.
//!
//! Tests fail, never skip: a kernel that refuses BPF or a missing privilege
//! is a failure with the reason.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::Value;

pub mod services;

/// Workspace root.
#[must_use]
pub fn root() -> PathBuf {
    std::env::var_os("AI_FORENSICS_ROOT").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default()
        },
        PathBuf::from,
    )
}

/// The ai-forensics binary under test.
#[must_use]
pub fn bin() -> PathBuf {
    std::env::var_os("AI_FORENSICS_BIN")
        .map_or_else(|| root().join("target/release/ai-forensics"), PathBuf::from)
}

/// The deterministic workload binary.
#[must_use]
pub fn workload() -> PathBuf {
    std::env::var_os("AI_FORENSICS_WORKLOAD")
        .map_or_else(|| root().join("target/release/workload"), PathBuf::from)
}

/// Fails the test unless running as root (the programs cannot load otherwise).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "integration tests load eBPF programs and must run as root (use `cargo xtask test`)"
    );
    assert!(
        bin().is_file(),
        "ai-forensics binary missing at {} (use `cargo xtask test`)",
        bin().display()
    );
}

/// A fresh temporary directory.
#[must_use]
pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "aif-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// Result of one ai-forensics invocation.
#[derive(Debug)]
pub struct Run {
    /// Exit code (signal n as 128+n).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    o.status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// The store tests record into unless they name one (not the system's).
#[must_use]
pub fn test_store() -> PathBuf {
    std::env::temp_dir().join(format!("aif-test-{}.db", std::process::id()))
}

/// A command running ai-forensics, recording into [`test_store`].
#[must_use]
pub fn af_cmd() -> Command {
    let mut c = Command::new(bin());
    c.env("RUST_LOG", "warn")
        .env("AI_FORENSICS_STORE", test_store())
        .stdin(Stdio::null());
    c
}

/// Runs ai-forensics with `args`.
pub fn af<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let o = af_cmd().args(args).output().expect("start ai-forensics");
    Run {
        code: code(&o),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Parses JSON Lines; every line must be a JSON object.
#[must_use]
pub fn parse_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1))
        })
        .collect()
}

/// Runs ai-forensics with `args` plus `--json --output FILE` (the workload
/// keeps stdout to itself), asserts success, returns the records.
pub fn af_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Vec<Value>, Run) {
    af_json_exit(args, 0)
}

/// As [`af_json`], expecting exit code `code` (a launched workload's own).
pub fn af_json_exit<S: AsRef<std::ffi::OsStr>>(args: &[S], code: i32) -> (Vec<Value>, Run) {
    let dir = tempdir("json");
    let out = dir.join("events.jsonl");
    let mut a: Vec<std::ffi::OsString> = Vec::new();
    let mut it = args.iter().map(|s| s.as_ref().to_owned());
    // Insert the output flags right after the subcommand.
    if let Some(sub) = it.next() {
        a.push(sub);
        a.push("--json".into());
        a.push("--no-live".into());
        a.push("--output".into());
        a.push(out.clone().into_os_string());
    }
    a.extend(it);
    let r = af(&a);
    assert_eq!(
        r.code, code,
        "ai-forensics exit code ({}): {}",
        r.code, r.stderr
    );

    let text = std::fs::read_to_string(&out).expect("events file");
    let _ = std::fs::remove_dir_all(&dir);
    (parse_jsonl(&text), r)
}

/// The `summary` record's detail.
#[must_use]
pub fn summary(records: &[Value]) -> &Value {
    let s = records.last().expect("no records");
    assert_eq!(s["type"], "summary", "last record is not the summary");
    &s["detail"]
}

/// In-kernel count of `syscall` from the summary (0 when absent).
#[must_use]
pub fn count(summary: &Value, syscall: &str) -> u64 {
    summary["syscalls"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["syscall"] == syscall))
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0)
}

/// Syscall records of `name`.
pub fn syscalls<'a>(records: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    records
        .iter()
        .filter(move |r| r["type"] == "syscall" && r["detail"]["syscall"] == name)
}

/// Python with Debian's PyTorch.
#[must_use]
pub fn python() -> &'static Path {
    Path::new("/usr/bin/python3")
}

/// Names of ai-forensics programs still loaded after waiting up to 3 s for
/// the kernel's deferred release (programs are freed after an RCU grace
/// period once their last reference is gone).
#[must_use]
pub fn our_programs() -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let left = loaded_programs_now();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Names of loaded BPF programs that belong to ai-forensics, right now.
#[must_use]
pub fn loaded_programs_now() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|n| n.starts_with("raw_tracepoint_") || n.starts_with("tracepoint_sche"))
        .collect()
}

/// Names of the maps ai-forensics creates (as the kernel keeps them).
const OUR_MAPS: &[&str] = &[
    "CGROUPS",
    "CONFIG",
    "DENY",
    "DROPS",
    "EVENTS",
    "GPU_PENDING",
    "INFLIGHT",
    "LOSS",
    "LOST_BY_TREE",
    "PROC_STATS",
    "SCRATCH",
    "SLOT",
    "SPECS",
    "STATS",
    "TARGETS",
];

fn bpftool(what: &str) -> Vec<Value> {
    let o = Command::new("bpftool")
        .args(["-j", what, "show"])
        .output()
        .expect("bpftool (cargo xtask setup installs it)");
    serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap_or_default()
}

/// What ai-forensics left in the kernel, as bpftool sees it: programs,
/// links to them, maps, and pins under /sys/fs/bpf. Waits up to 3 s for
/// the kernel's deferred release.
#[must_use]
pub fn bpf_leftovers() -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let mut left = Vec::new();
        let progs = bpftool("prog");
        let ours: Vec<u64> = progs
            .iter()
            .filter(|p| {
                p["name"].as_str().is_some_and(|n| {
                    n.starts_with("raw_tracepoint_")
                        || n.starts_with("tracepoint_sche")
                        || n.starts_with("uprobe_cuda")
                        || n.starts_with("uretprobe_cuda")
                })
            })
            .filter_map(|p| p["id"].as_u64())
            .collect();
        left.extend(ours.iter().map(|id| format!("program {id}")));
        for l in bpftool("link") {
            if l["prog_id"].as_u64().is_some_and(|id| ours.contains(&id)) {
                left.push(format!("link {}", l["id"]));
            }
        }
        for m in bpftool("map") {
            if m["name"].as_str().is_some_and(|n| OUR_MAPS.contains(&n)) {
                left.push(format!("map {} {}", m["id"], m["name"]));
            }
        }
        if let Ok(d) = std::fs::read_dir("/sys/fs/bpf") {
            left.extend(d.flatten().map(|e| format!("pin {}", e.path().display())));
        }
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs SQL on a store with Python's sqlite3 (no SQLite shell needed).
pub fn sql_exec(db: &Path, sql: &str) {
    let ok = Command::new(python())
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(sql)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{sql}");
}

/// The first column of the first row of a query on a store.
#[must_use]
pub fn sql_value(db: &Path, sql: &str) -> String {
    let o = Command::new(python())
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchone()[0])"])
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}
