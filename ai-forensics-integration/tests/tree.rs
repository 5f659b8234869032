//! Following the workload's process tree: every process and thread of it,
//! exactly, and nothing else.
use std::{collections::HashMap, process::Command, time::Duration};

use ai_forensics_integration::{
    af_json, count, python, require_root, root, summary, tempdir, workload,
};
use serde_json::Value;

/// getppid calls per (pid, tid) from the summary's per-thread table.
fn getppid_by_thread(s: &Value) -> HashMap<(u64, u64), u64> {
    s["per_thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| {
            Some((
                (t["pid"].as_u64()?, t["tid"].as_u64()?),
                t["syscalls"]["getppid"]["count"].as_u64()?,
            ))
        })
        .collect()
}

fn pids_with_cmdline<'a>(recs: &'a [Value], arg: &'a str) -> impl Iterator<Item = u64> + 'a {
    recs.iter()
        .filter(|r| r["type"] == "process")
        .filter(move |r| {
            r["detail"]["cmdline"]
                .as_array()
                .is_some_and(|c| c.iter().any(|a| a == arg))
        })
        .filter_map(|r| r["pid"].as_u64())
}

#[test]
fn every_process_and_thread_of_the_tree_exactly_and_nothing_else() {
    require_root();
    let w = workload();
    let w = w.to_str().unwrap();
    // An outsider making the same calls at the same time.
    let mut outsider = Command::new(w)
        .args(["getppid", "3000000"])
        .spawn()
        .unwrap();
    let script = root().join("ai-forensics-integration/scripts/tree.py");
    let shell = format!(
        "{w} getppid 1111 | {w} getppid 2222; {py} {script} 1000",
        py = python().display(),
        script = script.display()
    );
    let (recs, run) = af_json(&[
        "run",
        "--per-process",
        "-e",
        "process",
        "--",
        "sh",
        "-c",
        &shell,
    ]);
    let _ = outsider.kill();
    let _ = outsider.wait();
    let s = summary(&recs);
    let by = getppid_by_thread(s);

    // Shell pipeline: two processes with their exact counts.
    for n in ["1111", "2222"] {
        let pids: Vec<u64> = pids_with_cmdline(&recs, n).collect();
        assert_eq!(pids.len(), 1, "one process ran `getppid {n}`: {pids:?}");
        assert_eq!(
            by.get(&(pids[0], pids[0])).copied(),
            Some(n.parse().unwrap()),
            "pipeline stage {n}"
        );
    }
    // Python: two worker processes and two threads, each reports pid, tid, count.
    let mut workers = 0;
    for line in run.stdout.lines().filter(|l| l.starts_with("worker ")) {
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(by.get(&(f[0], f[1])).copied(), Some(f[2]), "{line}");
        workers += 1;
    }
    assert_eq!(workers, 4, "stdout: {}", run.stdout);
    // The whole tree's getppid total is exact (the shell itself calls
    // getppid once at start-up to set $PPID); the outsider is nowhere.
    let shell_pid = recs
        .iter()
        .find(|r| r["type"] == "process" && r["detail"]["origin"] == "launched")
        .and_then(|r| r["pid"].as_u64())
        .unwrap();
    let shell_calls = by.get(&(shell_pid, shell_pid)).copied().unwrap_or(0);
    assert!(shell_calls <= 1);
    assert_eq!(
        count(s, "getppid"),
        1111 + 2222 + 1000 * (1 + 2 + 3 + 4) + shell_calls
    );
    let outsider_pid = u64::from(outsider.id());
    assert!(
        by.keys().all(|(p, _)| *p != outsider_pid),
        "outsider traced"
    );
    assert!(
        s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["pid"] != outsider_pid)
    );
}

#[test]
fn an_orphaned_grandchild_stays_traced() {
    require_root();
    let w = workload();
    let (recs, run) = af_json(&[
        "run",
        "--per-process",
        "--",
        w.to_str().unwrap(),
        "orphan",
        "5000",
    ]);
    let g: u64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("grandchild "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let by = getppid_by_thread(summary(&recs));
    assert_eq!(
        by.get(&(g, g)).copied(),
        Some(5000),
        "grandchild {g} after its parent exited"
    );
}

#[test]
fn comm_picks_up_a_process_started_later() {
    require_root();
    let dir = tempdir("comm");
    let named = dir.join("aifcommprobe");
    std::fs::copy(workload(), &named).unwrap();
    let out = dir.join("ev.jsonl");
    let tracer = ai_forensics_integration::af_cmd()
        .args([
            "trace",
            "--comm",
            "^aifcommprobe$",
            "--json",
            "--no-live",
            "--duration",
            "4s",
            "-e",
            "getppid",
            "--per-process",
            "-o",
        ])
        .arg(&out)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // It spins 500 ms before its calls: matching happens when its exec is seen.
    let mut p = Command::new(&named)
        .args(["spin-getppid", "4321", "500"])
        .spawn()
        .unwrap();
    let pid = u64::from(p.id());
    p.wait().unwrap();
    let o = tracer.wait_with_output().unwrap();
    assert!(o.status.success());
    let recs = ai_forensics_integration::parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let target = recs
        .iter()
        .find(|r| r["type"] == "target" && r["pid"] == pid)
        .expect("target record");
    assert!(
        target["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("comm matches")
    );
    assert_eq!(
        getppid_by_thread(summary(&recs)).get(&(pid, pid)).copied(),
        Some(4321)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn discover_finds_pytorch_and_not_plain_python() {
    require_root();
    let dir = tempdir("discover");
    let out = dir.join("ev.jsonl");
    let tracer = ai_forensics_integration::af_cmd()
        .args([
            "trace",
            "--discover",
            "--json",
            "--no-live",
            "--duration",
            "12s",
            "--mode",
            "count",
            "-o",
        ])
        .arg(&out)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut plain = Command::new(python())
        .args(["-c", "import time; print(1); time.sleep(1)"])
        .spawn()
        .unwrap();
    let plain_pid = u64::from(plain.id());
    plain.wait().unwrap();
    let models = root().join("models");
    let mut torch = Command::new(python())
        .arg(models.join("train.py"))
        .args(["--epochs", "1", "--steps", "20", "--out"])
        .arg(dir.join("m"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let torch_pid = u64::from(torch.id());
    torch.wait().unwrap();
    let o = tracer.wait_with_output().unwrap();
    assert!(o.status.success());
    let recs = ai_forensics_integration::parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let found = recs
        .iter()
        .find(|r| r["type"] == "target" && r["pid"] == torch_pid)
        .expect("PyTorch run discovered");
    let reason = found["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("pytorch"), "reason: {reason}");
    assert!(
        !recs
            .iter()
            .any(|r| r["type"] == "target" && r["pid"] == plain_pid),
        "plain python flagged"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn user_flag_runs_the_workload_unprivileged() {
    require_root();
    let (recs, _) = af_json(&["run", "--user", "nobody", "--", "/usr/bin/id", "-u"]);
    let p = recs
        .iter()
        .find(|r| r["type"] == "process" && r["detail"]["exe"] == "/usr/bin/id")
        .expect("process record");
    assert_eq!(p["detail"]["uid"], 65534);
    let (bad, _) = (
        ai_forensics_integration::af(&["run", "--user", "no-such-user-xyz", "--", "true"]),
        (),
    );
    assert_eq!(bad.code, 2);
}

#[test]
fn cgroup_members_are_traced() {
    require_root();
    let base = std::path::Path::new("/sys/fs/cgroup/unified");
    assert!(
        base.join("cgroup.procs").is_file(),
        "cgroup v2 not mounted at {}",
        base.display()
    );
    let cg = base.join(format!("aif-test-{}", std::process::id()));
    std::fs::create_dir_all(&cg).unwrap();
    let w = workload();
    // The member starts first (spinning), the tracer then finds it in the cgroup.
    let mut member = Command::new(&w)
        .args(["spin-getppid", "2500", "1500"])
        .spawn()
        .unwrap();
    std::fs::write(cg.join("cgroup.procs"), member.id().to_string()).unwrap();
    let (recs, _) = af_json(&[
        "trace",
        "--cgroup",
        cg.to_str().unwrap(),
        "--per-process",
        "--duration",
        "3s",
        "--mode",
        "count",
    ]);
    member.wait().unwrap();
    let pid = u64::from(member.id());
    assert_eq!(
        getppid_by_thread(summary(&recs)).get(&(pid, pid)).copied(),
        Some(2500)
    );
    let _ = std::fs::remove_dir(&cg);
}
