//! io_uring: operations a target submits to a ring never pass a syscall
//! tracepoint. They are seen on the io_uring tracepoints, counted exactly
//! by opcode, attributed to the submitting process, judged by the rules as
//! the syscall they do the work of, and a protected file opened through a
//! ring is caught by identity.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use ai_forensics_integration::{af, af_cmd, parse_jsonl, require_root, root, summary, tempdir};
use serde_json::Value;

fn uring_bin() -> PathBuf {
    let b = root().join("target/release/uring");
    assert!(b.is_file(), "{} not built", b.display());
    b
}

fn run(rules: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> (Vec<Value>, String, i32) {
    let dir = tempdir("uring-run");
    let out = dir.join("ev.jsonl");
    let mut c = af_cmd();
    c.args(["run", "--no-live", "--no-store", "--json", "-o"])
        .arg(&out);
    if let Some(r) = rules {
        c.arg("--rules").arg(r);
    }
    c.arg("--").arg(uring_bin()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("start ai-forensics");
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap_or_default());
    let _ = std::fs::remove_dir_all(dir);
    (
        recs,
        String::from_utf8_lossy(&o.stdout).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

fn ops(s: &Value) -> Vec<(String, u64, u64)> {
    s["io_uring"]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["op"].as_str().unwrap().to_owned(),
                o["count"].as_u64().unwrap(),
                o["errors"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// 50 rounds of openat + read + close through the ring: counted exactly by
/// opcode, one record each, every one the workload's, the open's path as
/// the kernel copied it. Not one of them is a syscall.
#[test]
fn io_uring_operations_are_seen_counted_and_attributed() {
    require_root();
    let dir = tempdir("uring-count");
    let file = dir.join("data.txt");
    std::fs::write(&file, "payload\n").unwrap();
    let (recs, stdout, code) = run(None, &[], &["repeat", "50", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let s = summary(&recs);
    assert_eq!(s["io_uring"]["traced"], true);
    assert_eq!(
        ops(s),
        [
            ("OPENAT".to_owned(), 50, 0),
            ("CLOSE".to_owned(), 50, 0),
            ("READ".to_owned(), 50, 0)
        ]
    );
    let pid = recs
        .iter()
        .find(|r| r["type"] == "exec")
        .and_then(|r| r["pid"].as_u64())
        .unwrap();
    let u: Vec<&Value> = recs.iter().filter(|r| r["type"] == "io_uring").collect();
    assert_eq!(u.len(), 150);
    assert!(u.iter().all(|r| r["pid"].as_u64() == Some(pid)));
    let opens: Vec<&&Value> = u.iter().filter(|r| r["detail"]["op"] == "OPENAT").collect();
    assert!(
        opens
            .iter()
            .all(|r| r["detail"]["path"] == file.to_str().unwrap()
                && r["detail"]["res"].as_i64() >= Some(0))
    );
    assert!(
        u.iter()
            .filter(|r| r["detail"]["op"] == "READ")
            .all(|r| r["detail"]["res"] == 8)
    );
    // The syscalls: only the ring's own.
    let calls: Vec<&str> = s["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["syscall"].as_str().unwrap())
        .collect();
    assert!(calls.contains(&"io_uring_setup") && calls.contains(&"io_uring_enter"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A protected key opened through the ring: the kernel kills the process
/// at the open's completion, before it can read the descriptor.
#[test]
fn an_io_uring_open_of_a_protected_file_is_killed_by_identity() {
    require_root();
    let dir = tempdir("uring-key");
    let key = dir.join("id_uring");
    std::fs::write(&key, "URING-KEY\n").unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "version: 1\nrules:\n  - name: key\n    action: kill\n    kernel: true\n    match: {{syscall: [openat], path: [\"{}\"]}}\n",
            key.display()
        ),
    )
    .unwrap();
    let (recs, stdout, code) = run(Some(&rules), &[], &["read", key.to_str().unwrap()]);
    assert!(!stdout.contains("URING-KEY"), "{stdout}");
    assert_eq!(code, 137, "{stdout}");
    let a = recs
        .iter()
        .find(|r| r["type"] == "alert")
        .expect("an alert");
    let d = &a["detail"];
    assert_eq!(d["rule"], "key");
    assert_eq!(d["mechanism"], "identity");
    assert_eq!(d["enforced"], "signal");
    assert_eq!(d["path"], key.to_str().unwrap());
    assert!(d["reason"].as_str().unwrap().contains("io_uring"), "{d}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A connect through the ring is judged like a connect syscall: the rule on
/// its address fires (the address is read from the submitter's memory).
#[test]
fn rules_judge_io_uring_connects_by_address() {
    require_root();
    let dir = tempdir("uring-net");
    // A documentation address on loopback: the connect is refused at once.
    let ip = "198.51.100.7";
    let _ = Command::new("ip")
        .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
        .status();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "version: 1\nrules:\n  - name: banned-endpoint\n    action: alert\n    match: {{syscall: connect, addr: {{in: [\"{ip}\"]}}}}\n"
        ),
    )
    .unwrap();
    let (recs, stdout, code) = run(Some(&rules), &[], &["net", ip, "9"]);
    let _ = Command::new("ip")
        .args(["addr", "del", &format!("{ip}/32"), "dev", "lo"])
        .status();
    assert_eq!(code, 0, "{stdout}");
    let c = recs
        .iter()
        .find(|r| r["type"] == "io_uring" && r["detail"]["op"] == "CONNECT")
        .expect("the connect");
    assert_eq!(c["detail"]["addr"]["ip"], ip);
    assert_eq!(c["detail"]["errno"], "ECONNREFUSED");
    let a: Vec<&Value> = recs.iter().filter(|r| r["type"] == "alert").collect();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["detail"]["rule"], "banned-endpoint");
    let _ = std::fs::remove_dir_all(dir);
}

/// Under the bundled rules, an AI workload that sets up a ring raises an
/// alert; an ordinary program that does is left alone.
#[test]
fn an_ai_workload_setting_up_a_ring_is_an_alert() {
    require_root();
    let dir = tempdir("uring-ai");
    let model = dir.join("model.gguf");
    std::fs::write(&model, "GGUF").unwrap();
    let hostname = "/etc/hostname";
    let (recs, stdout, code) = run(
        Some(Path::new("builtin")),
        &[("URING_FIRST_OPEN", model.to_str().unwrap())],
        &["read", hostname],
    );
    assert_eq!(code, 0, "{stdout}");
    let rules: Vec<&str> = recs
        .iter()
        .filter(|r| r["type"] == "alert")
        .map(|r| r["detail"]["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["io-uring-setup"]);
    let r = af(&[
        "run",
        "--no-live",
        "--no-store",
        "--rules",
        "builtin",
        "--",
        uring_bin().to_str().unwrap(),
        "read",
        hostname,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rules: 0 alerts"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(dir);
}
