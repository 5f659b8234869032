//! The seed's tracer, for real: exact counts, start-up hygiene, PyTorch.
use ai_forensics_integration::{
    af, af_json, count, our_programs, python, require_root, root, summary, syscalls, tempdir,
    workload,
};

#[test]
fn getppid_count_is_exact() {
    require_root();
    let w = workload();
    for mode in ["count", "events"] {
        let (recs, _) = af_json(&[
            "run",
            "--mode",
            mode,
            "-e",
            "getppid",
            "--",
            w.to_str().unwrap(),
            "getppid",
            "10000",
        ]);
        let s = summary(&recs);
        assert_eq!(count(s, "getppid"), 10_000, "mode {mode}");
        if mode == "events" {
            assert_eq!(syscalls(&recs, "getppid").count(), 10_000);
        } else {
            assert_eq!(syscalls(&recs, "getppid").count(), 0);
        }
        assert_eq!(s["exit_status"]["exited"], 0);
    }
}

/// Count mode counts every call at its exit with one program: the calls
/// that do not return normally (exit_group, a fork child's first return,
/// rt_sigreturn, execve) come out as the entry-counting --latency mode and
/// the workload's own arithmetic say.
#[test]
fn count_mode_at_exit_is_exact_for_calls_that_do_not_return_normally() {
    require_root();
    let w = workload();
    let w = w.to_str().unwrap();
    let table = |latency: bool, args: &[&str]| {
        let mut argv = vec!["run", "--mode", "count"];
        if latency {
            argv.push("--latency");
        }
        argv.push("--");
        argv.push(w);
        argv.extend_from_slice(args);
        let (recs, _) = af_json(&argv);
        let s = summary(&recs).clone();
        assert_eq!(s["exit_status"]["exited"], 0, "{args:?}");
        let at = s["counting"]["at"].as_str().unwrap_or("").to_owned();
        let rows: std::collections::BTreeMap<String, (u64, u64)> = s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["syscall"].as_str().unwrap().to_owned(),
                    (
                        r["count"].as_u64().unwrap(),
                        r["errors"].as_u64().unwrap_or(0),
                    ),
                )
            })
            .collect();
        (at, rows)
    };
    let (at, sig) = table(false, &["signals", "500"]);
    assert_eq!(at, "exit", "count mode without timing counts at exit");
    assert_eq!(sig["rt_sigreturn"].0, 500);
    assert_eq!(sig["tgkill"].0, 500);
    assert_eq!(sig["execve"].0, 1);
    assert_eq!(sig["exit_group"].0, 1);
    let (at, sig_entry) = table(true, &["signals", "500"]);
    assert_eq!(at, "entry");
    assert_eq!(
        sig, sig_entry,
        "the same calls counted at exit and at entry"
    );
    // Each child: one clone in the parent (its first return is not a
    // call), one exit_group; the threads: clone3 and exit.
    let (_, tree) = table(false, &["tree", "1000"]);
    let (_, tree_entry) = table(true, &["tree", "1000"]);
    assert_eq!(tree["getppid"].0, 11_000);
    assert_eq!(tree["clone"].0, 2);
    assert_eq!(tree["exit_group"].0, 3);
    assert_eq!(tree["exit"].0, 2);
    for name in [
        "getppid",
        "clone",
        "clone3",
        "exit",
        "exit_group",
        "execve",
        "wait4",
    ] {
        assert_eq!(tree.get(name), tree_entry.get(name), "{name}");
    }
    let (_, churn) = table(false, &["churn", "200"]);
    assert_eq!(churn["clone"].0, 200);
    assert_eq!(churn["exit_group"].0, 201);
    assert_eq!(churn["wait4"].0, 200);
}

/// `doctor` probes this kernel: what ai-forensics needs is here, every
/// feature says what it is for, a refused one says how the kernel refused,
/// and the session record carries the same answers.
#[test]
fn doctor_probes_the_kernel_and_the_session_record_carries_it() {
    require_root();
    let r = af(&["doctor", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("doctor --json");
    let features = v["features"].as_array().expect("features");
    let get = |name: &str| {
        features
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {features:?}"))
    };
    for name in ["kernel BTF", "ring buffer", "raw tracepoints"] {
        assert_eq!(get(name)["required"], true);
        assert_eq!(get(name)["available"], true, "{name}");
    }
    for f in features {
        assert!(!f["used_for"].as_str().unwrap().is_empty());
        if f["available"] == false {
            assert!(!f["detail"].as_str().unwrap().is_empty(), "why not: {f}");
        }
    }
    // This host runs count mode with one program, so the summary says so.
    assert_eq!(get("BTF task pointers")["available"], true);
    let text = af(&["doctor"]);
    assert!(
        text.stdout.contains("seccomp user notification"),
        "{}",
        text.stdout
    );
    let w = workload();
    let (recs, _) = af_json(&["run", "--", w.to_str().unwrap(), "getppid", "10"]);
    let session = recs
        .iter()
        .find(|r| r["type"] == "session")
        .expect("session");
    let kf = &session["detail"]["kernel_features"];
    for f in features {
        assert_eq!(kf[f["name"].as_str().unwrap()], f["available"], "{f}");
    }
}

#[test]
fn read_count_is_exact() {
    require_root();
    let w = workload();
    let (recs, _) = af_json(&[
        "run",
        "-e",
        "read",
        "--",
        w.to_str().unwrap(),
        "read-zero",
        "10000",
    ]);
    let s = summary(&recs);
    let zero_reads = syscalls(&recs, "read")
        .filter(|r| r["detail"]["args"]["fd_path"] == "/dev/zero")
        .count();
    assert_eq!(zero_reads, 10_000);
    assert!(
        syscalls(&recs, "read")
            .filter(|r| r["detail"]["args"]["fd_path"] == "/dev/zero")
            .all(|r| r["detail"]["ret"] == 4096)
    );
    // The kernel's lossless count and the stream agree.
    assert_eq!(count(s, "read"), syscalls(&recs, "read").count() as u64);
    assert_eq!(s["loss"]["lost_events"], 0);
    // In count mode too, the difference between 10000 and 0 reads is exact.
    let (a, _) = af_json(&[
        "run",
        "--mode",
        "count",
        "--",
        w.to_str().unwrap(),
        "read-zero",
        "10000",
    ]);
    let (b, _) = af_json(&[
        "run",
        "--mode",
        "count",
        "--",
        w.to_str().unwrap(),
        "read-zero",
        "0",
    ]);
    assert_eq!(
        count(summary(&a), "read") - count(summary(&b), "read"),
        10_000
    );
}

#[test]
fn first_syscall_of_the_command_is_recorded() {
    require_root();
    let w = workload();
    let (recs, _) = af_json(&[
        "run",
        "-e",
        "all",
        "--",
        w.to_str().unwrap(),
        "getppid",
        "1",
    ]);
    let first = recs
        .iter()
        .find(|r| r["type"] == "syscall")
        .expect("a syscall");
    assert_eq!(first["detail"]["syscall"], "execve");
    assert_eq!(first["detail"]["args"]["pathname"], w.to_str().unwrap());
    // Nothing ai-forensics did in the child before exec is attributed to it.
    assert_eq!(
        count(summary(&recs), "rt_sigaction") as usize,
        syscalls(&recs, "rt_sigaction").count()
    );
    assert_eq!(count(summary(&recs), "execve"), 1);
}

#[test]
fn traces_pytorch_training_and_prediction() {
    require_root();
    let out = tempdir("torch");
    let models = root().join("models");
    let (train, r) = af_json(&[
        "run".as_ref(),
        "--".as_ref(),
        python().as_os_str(),
        models.join("train.py").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--epochs".as_ref(),
        "2".as_ref(),
    ]);
    assert!(
        out.join("model.pt").is_file(),
        "training did not write the model: {}",
        r.stderr
    );
    let ts = summary(&train);
    for s in ["openat", "read", "mmap", "write"] {
        assert!(count(ts, s) > 0, "training: no {s}");
    }
    let ckpt = out.join("checkpoint-epoch1.pt");
    assert!(
        syscalls(&train, "openat").any(|r| r["detail"]["args"]["pathname"]
            == ckpt.to_str().unwrap()
            && r["detail"]["ret"].as_i64() >= Some(0)),
        "the checkpoint's openat is not in the record"
    );
    let model = out.join("model.pt");
    let (pred, _) = af_json(&[
        "run".as_ref(),
        "--".as_ref(),
        python().as_os_str(),
        models.join("predictions.py").as_os_str(),
        "--model".as_ref(),
        model.as_os_str(),
    ]);
    let ps = summary(&pred);
    for s in ["openat", "read", "mmap", "futex"] {
        assert!(count(ps, s) > 0, "prediction: no {s}");
    }
    let opened = syscalls(&pred, "openat").any(|r| {
        r["detail"]["args"]["pathname"] == model.to_str().unwrap()
            && r["detail"]["ret"].as_i64() >= Some(0)
    });
    assert!(opened, "prediction did not open {}", model.display());
    // Bytes read from the checkpoint are accounted to it.
    let files = ps["activity"]["files"].as_array().unwrap();
    let _ = files;
    let reads_of_model: i64 = syscalls(&pred, "read")
        .filter(|r| r["detail"]["args"]["fd_path"] == model.to_str().unwrap())
        .map(|r| r["detail"]["ret"].as_i64().unwrap_or(0))
        .sum();
    assert!(reads_of_model > 0, "no bytes read from the model file");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn non_root_gets_a_clear_error() {
    require_root();
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(ai_forensics_integration::bin())
        .args(["trace", "--all", "--duration", "1s"])
        .output()
        .expect("setpriv");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("must run as root"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

#[test]
fn trace_pid_follows_until_exit_and_detaches() {
    require_root();
    let w = workload();
    let mut child = std::process::Command::new(&w)
        .args(["spin-getppid", "5000", "700"])
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (recs, _) = af_json(&["trace", "--pid", &pid, "-e", "getppid"]);
    let _ = child.wait();
    // All 5000 calls come after the 700 ms spin: attached well before.
    assert_eq!(count(summary(&recs), "getppid"), 5000);
    assert!(
        our_programs().is_empty(),
        "programs left attached: {:?}",
        our_programs()
    );
}

#[test]
fn sigint_stops_cleanly_with_a_summary() {
    require_root();
    let w = workload();
    let mut sleeper = std::process::Command::new(&w)
        .args(["sleep", "20000"])
        .spawn()
        .unwrap();
    let t = ai_forensics_integration::af_cmd()
        .args(["trace", "--no-live", "--pid", &sleeper.id().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(t.id() as i32, libc::SIGINT) };
    let o = t.wait_with_output().unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("total"));
    assert!(our_programs().is_empty());
}

/// A row of the summary's syscall table.
fn row<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["syscall"] == name)
        .unwrap_or_else(|| panic!("no {name} row"))
}

#[test]
fn latency_is_exact_for_calls_that_block_and_migrate() {
    require_root();
    let w = workload();
    let w = w.to_str().unwrap();
    // Two threads sleep (switched out inside the call) while four threads
    // hammer getppid on two CPUs (preempted and migrated inside calls).
    let script = format!("{w} sleep 150 & {w} sleep 150 & {w} threads 4 20000; wait");
    let (recs, _) = af_json(&[
        "run",
        "--mode",
        "count",
        "--latency",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let s = summary(&recs);
    let g = row(s, "getppid");
    // 80,000 from the threads, plus the shell's own at start-up.
    assert!(g["count"].as_u64().unwrap() >= 80_000);
    assert_eq!(g["timed"], g["count"], "every getppid is timed");
    let sleep = row(s, "clock_nanosleep");
    assert_eq!(sleep["count"], 2);
    assert_eq!(
        sleep["timed"], 2,
        "a call that blocked keeps its entry time"
    );
    assert!(sleep["min_ns"].as_u64().unwrap() >= 150_000_000, "{sleep}");
    assert!(sleep["max_ns"].as_u64().unwrap() < 2_000_000_000, "{sleep}");

    // Without --latency, count mode counts and times nothing.
    let (recs, _) = af_json(&["run", "--mode", "count", "--", w, "sleep", "10"]);
    let s = summary(&recs);
    assert!(
        s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["timed"] == 0)
    );
    assert_eq!(row(s, "clock_nanosleep")["count"], 1);
}
