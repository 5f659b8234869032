//! The event stream: agreement with strace, decoded arguments, fd-to-path,
//! hostile strings, and exact loss accounting.
use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use ai_forensics_integration::{
    af_json, count, python, require_root, root, summary, syscalls, tempdir, workload,
};
use serde_json::Value;

/// Per-syscall counts from `strace -f -c -o FILE`.
fn strace_counts(file: &std::path::Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 5 && f[0].parse::<f64>().is_ok() && f[f.len() - 1] != "total" {
            m.insert(f[f.len() - 1].to_owned(), f[3].parse().unwrap());
        }
    }
    m
}

/// Paths given to the open family in an `strace -f -e trace=... -o FILE` log.
fn strace_paths(file: &std::path::Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut set = BTreeSet::new();
    for line in text.lines() {
        if let Some(i) = line.find('"')
            && let Some(j) = line[i + 1..].find('"')
        {
            set.insert(line[i + 1..i + 1 + j].to_owned());
        }
    }
    set
}

/// The syscall records of what strace itself traced: not strace's own,
/// and not those its child makes between fork and exec (strace starts
/// tracing it at the exec).
fn tracee_calls(recs: &[Value]) -> Vec<&Value> {
    let procs = summary(recs)["processes"].as_array().unwrap();
    let strace = procs
        .iter()
        .find(|p| p["exe"].as_str().is_some_and(|e| e.ends_with("/strace")))
        .and_then(|p| p["pid"].as_u64())
        .expect("strace in the process list");
    // strace's children (feature probes, then the command): each counts
    // from its exec on; one that never execs is strace's own.
    let children: BTreeMap<u64, Option<u64>> = recs
        .iter()
        .filter(|r| r["type"] == "fork" && r["pid"].as_u64() == Some(strace))
        .filter_map(|r| r["detail"]["child_pid"].as_u64())
        .map(|c| {
            let exec = recs
                .iter()
                .find(|r| r["type"] == "exec" && r["pid"].as_u64() == Some(c))
                .and_then(|r| r["ts_ns"].as_u64());
            (c, exec)
        })
        .collect();
    assert!(
        children.values().any(Option::is_some),
        "no exec of the command"
    );
    recs.iter()
        .filter(|r| r["type"] == "syscall")
        .filter(|r| r["pid"].as_u64() != Some(strace))
        .filter(|r| match r["pid"].as_u64().and_then(|p| children.get(&p)) {
            None => true,
            Some(None) => false,
            Some(Some(exec_ts)) => {
                r["ts_ns"].as_u64() >= Some(*exec_ts) || r["detail"]["syscall"] == "execve"
            }
        })
        .collect()
}

/// Runs `cmd` under strace, itself under ai-forensics, so that both watch
/// the very same run (a Python program's heap growth, for one, differs
/// from run to run), and compares what they saw of the command's tree.
fn fidelity(cmd: &[&str]) {
    let dir = tempdir("strace");
    let sc = dir.join("c.txt");
    let sp = dir.join("p.txt");
    let sc_s = sc.to_str().unwrap();
    let sp_s = sp.to_str().unwrap();
    // Counts: strace -f -c, every syscall.
    let mut args = vec![
        "run", "-e", "all", "--", "strace", "-f", "-c", "-o", sc_s, "--",
    ];
    args.extend_from_slice(cmd);
    let (recs, _) = af_json(&args);
    assert_eq!(summary(&recs)["loss"]["lost_events"], 0);
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for r in tracee_calls(&recs) {
        let name = r["detail"]["syscall"].as_str().unwrap();
        // strace -c leaves out calls that never return.
        if name != "exit_group" && name != "exit" {
            *ours.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        ours,
        strace_counts(&sc),
        "per-syscall counts differ from strace for {cmd:?}"
    );
    // Paths: the open family, decoded by both.
    let mut args = vec![
        "run",
        "-e",
        "open,openat,openat2,creat,execve",
        "--",
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=open,openat,openat2,creat",
        "-o",
        sp_s,
        "--",
    ];
    args.extend_from_slice(cmd);
    let (recs, _) = af_json(&args);
    let ours: BTreeSet<String> = tracee_calls(&recs)
        .into_iter()
        .filter(|r| r["detail"]["syscall"] != "execve")
        .filter_map(|r| r["detail"]["args"]["pathname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        ours,
        strace_paths(&sp),
        "opened paths differ from strace for {cmd:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agrees_with_strace_on_a_deterministic_mix() {
    require_root();
    let dir = tempdir("mix");
    let w = workload();
    fidelity(&[w.to_str().unwrap(), "mix", "500", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agrees_with_strace_on_pytorch_prediction() {
    require_root();
    let out = tempdir("pred");
    let models = root().join("models");
    let st = Command::new(python())
        .arg(models.join("train.py"))
        .args(["--epochs", "1", "--steps", "10", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success());
    let model = out.join("model.pt");
    fidelity(&[
        python().to_str().unwrap(),
        models.join("predictions.py").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn arguments_are_decoded() {
    require_root();
    let dir = tempdir("decode");
    let w = workload();
    let (recs, _) = af_json(&[
        "run",
        "-e",
        "all",
        "--",
        w.to_str().unwrap(),
        "mix",
        "3",
        dir.to_str().unwrap(),
    ]);
    let mix = dir.join("mix.dat");
    let mix = mix.to_str().unwrap();
    let open = syscalls(&recs, "openat")
        .find(|r| r["detail"]["args"]["pathname"] == mix)
        .expect("openat of mix.dat");
    let d = &open["detail"];
    assert_eq!(d["args"]["dirfd"], "AT_FDCWD");
    assert_eq!(d["args"]["flags"], "O_RDWR|O_CREAT|O_TRUNC|O_CLOEXEC");
    assert_eq!(d["args"]["mode"], "0644");
    assert!(d["ret"].as_i64().unwrap() >= 3 && d["errno"].is_null());
    assert!(d["duration_ns"].as_u64().is_some());
    let write = syscalls(&recs, "write")
        .find(|r| r["detail"]["args"]["fd_path"] == mix)
        .expect("write to mix.dat");
    assert_eq!(
        (
            write["detail"]["args"]["count"].as_u64(),
            write["detail"]["ret"].as_i64()
        ),
        (Some(100), Some(100))
    );
    let pread = syscalls(&recs, "pread64")
        .find(|r| r["detail"]["args"]["fd_path"] == mix)
        .expect("pread64");
    assert_eq!(pread["detail"]["ret"], 100);
    let mmap = syscalls(&recs, "mmap")
        .find(|r| r["detail"]["args"]["length"] == 65536)
        .expect("mmap 64 KiB");
    assert_eq!(mmap["detail"]["args"]["prot"], "PROT_READ|PROT_WRITE");
    assert_eq!(mmap["detail"]["args"]["flags"], "MAP_PRIVATE|MAP_ANONYMOUS");
    assert!(syscalls(&recs, "munmap").any(|r| r["detail"]["args"]["length"] == 65536));
    let futex = syscalls(&recs, "futex")
        .find(|r| r["detail"]["args"]["futex_op"] == "FUTEX_WAKE_PRIVATE")
        .expect("futex");
    assert_eq!(futex["detail"]["args"]["val"], 1);
    let brk = syscalls(&recs, "brk")
        .find(|r| r["detail"]["args"]["addr"].is_null())
        .expect("brk(NULL)");
    assert!(brk["detail"]["ret"].as_i64().unwrap() > 0);
    // execve: path and argv, read at entry.
    let exec = syscalls(&recs, "execve").next().unwrap();
    assert_eq!(
        exec["detail"]["args"]["argv"],
        serde_json::json!([w.to_str().unwrap(), "mix", "3", dir.to_str().unwrap()])
    );
    assert_eq!(exec["detail"]["ret"], 0);
    // Failed calls carry their errno name.
    let (recs, _) = ai_forensics_integration::af_json_exit(
        &["run", "-e", "openat", "--", "cat", "/nonexistent/file"],
        1,
    );
    let e = syscalls(&recs, "openat")
        .find(|r| r["detail"]["args"]["pathname"] == "/nonexistent/file")
        .unwrap();
    assert_eq!(
        (e["detail"]["ret"].as_i64(), e["detail"]["errno"].as_str()),
        (Some(-2), Some("ENOENT"))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sockets_are_decoded() {
    require_root();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket; s=socket.socket(); s.connect(('127.0.0.1', {port})); s.sendall(b'x'*1000); s.close()"
    );
    let h = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut c, &mut v).unwrap();
        v.len()
    });
    let (recs, _) = af_json(&[
        "run",
        "-e",
        "network",
        "--",
        python().to_str().unwrap(),
        "-c",
        &code,
    ]);
    assert_eq!(h.join().unwrap(), 1000);
    let c = syscalls(&recs, "connect")
        .find(|r| r["detail"]["args"]["addr"]["port"] == port)
        .expect("connect");
    assert_eq!(c["detail"]["args"]["addr"]["ip"], "127.0.0.1");
    assert_eq!(c["detail"]["args"]["addr"]["family"], "inet");
    let sent: i64 = syscalls(&recs, "sendto")
        .filter(|r| {
            r["detail"]["args"]["sockfd_path"]
                .as_str()
                .is_some_and(|p| p.contains(&format!("127.0.0.1:{port}")))
        })
        .map(|r| r["detail"]["ret"].as_i64().unwrap())
        .sum();
    assert_eq!(sent, 1000, "bytes sent to the peer, by fd-to-endpoint");
    let eps = summary(&recs)["activity"]["endpoints"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        eps.iter()
            .any(|e| e["endpoint"] == format!("127.0.0.1:{port}") && e["connects"] == 1)
    );
}

#[test]
fn fd_to_path_follows_dup2_and_reuse() {
    require_root();
    let dir = tempdir("dup");
    let w = workload();
    let (recs, run) = af_json(&[
        "run",
        "-e",
        "read,dup3,dup2,close,openat",
        "--",
        w.to_str().unwrap(),
        "dup",
        dir.to_str().unwrap(),
    ]);
    let path = |n: &str| dir.join(format!("{n}.txt")).to_str().unwrap().to_owned();
    let reads: Vec<(i64, String, i64)> = syscalls(&recs, "read")
        .filter(|r| {
            r["detail"]["args"]["fd_path"]
                .as_str()
                .is_some_and(|p| p.starts_with(dir.to_str().unwrap()))
        })
        .map(|r| {
            let a = &r["detail"]["args"];
            (
                a["fd"].as_i64().unwrap(),
                a["fd_path"].as_str().unwrap().to_owned(),
                r["detail"]["ret"].as_i64().unwrap(),
            )
        })
        .collect();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("a="))
        .expect("fd numbers");
    let fds: Vec<i64> = line
        .split(' ')
        .map(|kv| kv.split('=').nth(1).unwrap().parse().unwrap())
        .collect();
    let (b, c) = (fds[1], fds[2]);
    assert_eq!(
        reads,
        vec![(100, path("a"), 3), (c, path("c"), 5), (b, path("b"), 7)],
        "fd 100 is a.txt after dup2; the reused fd number names c.txt"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hostile_paths_stay_valid_and_round_trip() {
    require_root();
    let dir = tempdir("hostile");
    let d = dir.to_str().unwrap();
    // The workload turns \xNN into raw bytes.
    let names = [
        "new\nline",
        "quo\"te",
        "<script>alert(1)</script>",
        "bad\\xff\\xfeutf8",
        "tab\tand\\x1b[31mansi",
        "bidi\u{202e}txt.exe",
    ];
    let args: Vec<String> = names.iter().map(|n| format!("{d}/{n}")).collect();
    let w = workload();
    let mut cmd = vec![
        "run".to_owned(),
        "-e".into(),
        "openat".into(),
        "--".into(),
        w.to_str().unwrap().into(),
        "open".into(),
    ];
    cmd.extend(args.iter().cloned());
    let (recs, _) = af_json(&cmd);
    let got: BTreeSet<Vec<u8>> = syscalls(&recs, "openat")
        .filter_map(|r| r["detail"]["args"]["pathname"].as_str())
        .map(|p| ai_forensics::decode::escape::unescape(p).expect("valid escapes"))
        .collect();
    for n in names {
        let mut want = dir.as_os_str().as_encoded_bytes().to_vec();
        want.push(b'/');
        want.extend(unescape_workload(n.as_bytes()));
        assert!(got.contains(&want), "{n:?} did not round-trip");
    }
    // The text format keeps one record per line.
    let mut tcmd = vec![
        "run",
        "--format",
        "text",
        "-e",
        "openat",
        "--no-summary",
        "--",
    ];
    tcmd.push(w.to_str().unwrap());
    tcmd.push("open");
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    tcmd.extend(a);
    let t = ai_forensics_integration::af(&tcmd);
    assert_eq!(t.code, 0);
    let lines: Vec<&str> = t
        .stdout
        .lines()
        .filter(|l| l.contains("openat(") && l.contains(d))
        .collect();
    assert_eq!(
        lines.len(),
        names.len(),
        "one line per openat:\n{}",
        t.stdout
    );
    assert!(
        !t.stdout.contains('\u{1b}'),
        "raw escape sequence reached the terminal output"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn unescape_workload(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 4 <= s.len() && s[i + 1] == b'x' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&s[i + 2..i + 4]).unwrap(), 16).unwrap(),
            );
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn loss_is_counted_exactly_and_marked_in_the_stream() {
    require_root();
    let w = workload();
    // 5M events into the smallest ring buffer: most cannot be delivered.
    let (recs, _) = af_json(&[
        "run",
        "--ring-buffer",
        "4K",
        "-e",
        "getppid",
        "--",
        w.to_str().unwrap(),
        "getppid",
        "5000000",
    ]);
    let s = summary(&recs);
    let kernel = count(s, "getppid");
    assert_eq!(kernel, 5_000_000, "in-kernel counts never lose");
    let received = syscalls(&recs, "getppid").count() as u64;
    let markers: Vec<&Value> = recs.iter().filter(|r| r["type"] == "lost").collect();
    let marked: u64 = markers
        .iter()
        .map(|r| r["detail"]["count"].as_u64().unwrap())
        .sum();
    let lost = s["loss"]["lost_events"].as_u64().unwrap();
    let getppid_row = s["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["syscall"] == "getppid")
        .unwrap();
    let lost_getppid = getppid_row["lost"].as_u64().unwrap();
    assert!(lost_getppid > 0, "expected loss with a 4K ring buffer");
    assert_eq!(
        received + lost_getppid,
        kernel,
        "kernel count = received + counted lost"
    );
    assert!(lost >= lost_getppid);

    // Every loss the kernel counted was reported in the stream (at most the
    // very last gap can lack a marker if nothing followed it on that CPU).
    assert!(marked <= lost && lost - marked <= s["loss"]["lost_events"].as_u64().unwrap());
    let pending = lost - marked;
    assert!(
        markers.len() > 1,
        "gaps are marked where they happen, not once at the end"
    );
    // Markers sit between delivered events.
    let first_marker = recs.iter().position(|r| r["type"] == "lost").unwrap();
    let last_event = recs.iter().rposition(|r| r["type"] == "syscall").unwrap();
    assert!(first_marker < last_event);
    eprintln!(
        "received {received}, lost {lost} ({} markers, {pending} after the last event)",
        markers.len()
    );
}
