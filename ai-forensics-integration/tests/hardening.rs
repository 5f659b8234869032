//! Hardening: bad input, faults, hostile workloads, the control plane, and
//! living beside other tracers. ai-forensics runs as root next to workloads
//! that may be hostile; none of this may panic, leak kernel objects, or lose
//! data silently.
use std::{
    io::{BufRead as _, BufReader, Read as _},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ai_forensics_integration::{
    af, af_cmd, af_json, bin, bpf_leftovers, count, parse_jsonl, require_root, sql_exec, summary,
    syscalls, tempdir, workload,
};
use serde_json::Value;

/// Asserts the one-line, exit-2 error contract and that nothing is left
/// attached.
fn assert_usage_error(what: &str, code: i32, stderr: &str, needle: &str) {
    assert_eq!(code, 2, "{what}: exit {code}, stderr {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{what}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with("ai-forensics: error:"),
        "{what}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{what}: the error does not name the problem ({needle}): {stderr}"
    );
}

#[test]
#[expect(clippy::too_many_lines, reason = "one table")]
fn bad_input_is_a_one_line_error_and_exit_2() {
    require_root();
    let dir = tempdir("badinput");
    let d = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let write = |n: &str, text: &[u8]| {
        std::fs::write(dir.join(n), text).unwrap();
        d(n)
    };
    let malformed = write(
        "malformed.yaml",
        b"version: 1\nrules:\n  - name: x\n    action: [\n",
    );
    let unknown = write(
        "unknown.yaml",
        b"version: 1\nrules:\n  - name: x\n    action: alert\n    colour: red\n    match: {syscall: openat}\n",
    );
    let wrong_type = write("wrongtype.yaml", b"version: one\nrules: []\n");
    let huge = d("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let huge_cfg = d("huge.toml");
    std::fs::File::create(&huge_cfg)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let bad_toml = write("bad.toml", b"[recording]\nmode = \"sometimes\"\n");
    let not_toml = write("not.toml", b"[recording\n");
    let junk_db = write("junk.db", &[b'x'; 4096]);
    let future = d("future.db");
    let r = af(&["run", "--no-live", "--store", &future, "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    sql_exec(
        Path::new(&future),
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
    );
    let good = d("good.db");
    let r = af(&["run", "--no-live", "--store", &good, "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = write("token", b"0123456789abcdef0123456789abcdef\n");
    let short_token = write("short-token", b"abc\n");
    for t in [&token, &short_token] {
        std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{port}/events");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--bogus-flag".into()], "--bogus-flag"),
        (vec!["trace".into(), "--bogus-flag".into()], "--bogus-flag"),
        (vec!["trace".into()], "target"),
        (
            vec!["trace".into(), "--pid".into(), "999999999".into()],
            "999999999",
        ),
        (vec!["trace".into(), "--pid".into(), "abc".into()], "abc"),
        (vec!["trace".into(), "--pid".into(), "-5".into()], "-5"),
        (vec!["trace".into(), "--pid".into(), "0".into()], "--pid"),
        (vec!["trace".into(), "--pid".into(), "1".into()], "1"),
        (
            vec!["trace".into(), "--comm".into(), "pyth(on".into()],
            "pyth(on",
        ),
        (
            vec!["trace".into(), "--exe".into(), "[z-a]".into()],
            "[z-a]",
        ),
        (vec!["run".into()], "command"),
        (
            vec!["run".into(), "--".into(), "/no/such/program".into()],
            "/no/such/program",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--ring-buffer".into(),
                "huge".into(),
            ],
            "huge",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--syscalls".into(),
                "nosuchcall".into(),
            ],
            "nosuchcall",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--duration".into(),
                "soon".into(),
            ],
            "soon",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--interval".into(),
                "-1s".into(),
            ],
            "-1",
        ),
        (
            vec!["trace".into(), "--all".into(), "--top".into(), "0".into()],
            "0",
        ),
        (
            vec![
                "trace".into(),
                "--cgroup".into(),
                "/nonexistent/cgroup".into(),
            ],
            "/nonexistent/cgroup",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                "/no/such/rules.yaml".into(),
            ],
            "/no/such/rules.yaml",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                dir.to_str().unwrap().into(),
            ],
            "directory",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                malformed.clone(),
            ],
            "malformed.yaml",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                unknown.clone(),
            ],
            "colour",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                wrong_type.clone(),
            ],
            "version",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--rules".into(),
                huge.clone(),
            ],
            "too large",
        ),
        (
            vec!["rules".into(), "check".into(), malformed.clone()],
            "malformed.yaml",
        ),
        (
            vec![
                "run".into(),
                "--store".into(),
                junk_db.clone(),
                "--".into(),
                "true".into(),
            ],
            "junk.db",
        ),
        (
            vec!["sessions".into(), "--store".into(), junk_db.clone()],
            "junk.db",
        ),
        (
            vec!["sessions".into(), "--store".into(), future.clone()],
            "newer ai-forensics",
        ),
        (vec!["verify".into(), d("missing.db")], "missing.db"),
        (
            vec![
                "show".into(),
                "99999".into(),
                "--store".into(),
                good.clone(),
            ],
            "99999",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                "not a url".into(),
            ],
            "not a url",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                "http://127.0.0.1/x".into(),
            ],
            "port",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                dead.clone(),
                "--analyser-token-file".into(),
                token.clone(),
            ],
            "cannot connect",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                dead.clone(),
                "--analyser-token-file".into(),
                d("no-token"),
            ],
            "no-token",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                dead.clone(),
                "--analyser-token-file".into(),
                short_token,
            ],
            "16",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--analyser".into(),
                dead,
                "--analyser-token-file".into(),
                token,
                "--analyser-timeout".into(),
                "forever".into(),
            ],
            "forever",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--output".into(),
                "/no/such/dir/out.jsonl".into(),
                "--json".into(),
            ],
            "/no/such/dir/out.jsonl",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--baseline".into(),
                d("no-baseline.json"),
            ],
            "no-baseline.json",
        ),
        (
            vec![
                "trace".into(),
                "--all".into(),
                "--gpu-lib".into(),
                "/no/such/libcuda.so".into(),
            ],
            "/no/such/libcuda.so",
        ),
        (
            vec!["agent".into(), "--config".into(), d("missing.toml")],
            "missing.toml",
        ),
        (
            vec!["agent".into(), "--config".into(), bad_toml],
            "sometimes",
        ),
        (vec!["agent".into(), "--config".into(), not_toml], "line 1"),
        (
            vec![
                "agent".into(),
                "--check".into(),
                "--config".into(),
                huge_cfg,
            ],
            "too large",
        ),
        (
            vec![
                "query".into(),
                "last".into(),
                "--store".into(),
                good.clone(),
                "--since".into(),
                "yesterdayish".into(),
            ],
            "yesterdayish",
        ),
        (
            vec![
                "replay".into(),
                "last".into(),
                "--store".into(),
                good,
                "--format".into(),
                "xml".into(),
            ],
            "xml",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (args, needle) in &cases {
        // A case that does not fail would trace for ever: bound it.
        let o = af_cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|c| bounded_output(c, Duration::from_secs(30)))
            .unwrap();
        assert_usage_error(&format!("{args:?}"), o.0, &o.1, needle);
    }
    // Its own PID: the shell execs ai-forensics with `--pid $$`.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {} trace --pid $$", bin().display()))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_usage_error(
        "--pid (itself)",
        o.status.code().unwrap_or(-1),
        &String::from_utf8_lossy(&o.stderr),
        "itself",
    );
    assert!(
        bpf_leftovers().is_empty(),
        "left behind: {:?}",
        bpf_leftovers()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Exit code and stderr of a child, killed after `limit` (exit 137).
fn bounded_output(c: std::process::Child, limit: Duration) -> std::io::Result<(i32, String)> {
    let pid = c.id() as i32;
    let watchdog = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: killing the child this test started (it may already be
        // gone, then its pid is a zombie of ours and nothing else).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let o = c.wait_with_output()?;
    let _ = watchdog.join();
    use std::os::unix::process::ExitStatusExt as _;
    let code = o
        .status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0));
    Ok((code, String::from_utf8_lossy(&o.stderr).into_owned()))
}

#[test]
fn tracefs_that_cannot_be_mounted_is_a_clear_error() {
    require_root();
    // In a private mount namespace, hide /sys/kernel behind an empty tmpfs
    // that keeps only BTF: there is no tracefs and nowhere to mount one.
    let script = format!(
        "set -e
         mkdir -p /tmp/aif-btf-$$
         mount --bind /sys/kernel/btf /tmp/aif-btf-$$
         mount -t tmpfs none /sys/kernel
         mkdir /sys/kernel/btf
         mount --move /tmp/aif-btf-$$ /sys/kernel/btf
         rmdir /tmp/aif-btf-$$ || true
         touch /sys/kernel/tracing
         exec {} trace --all --duration 1s",
        bin().display()
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_usage_error(
        "tracefs",
        o.status.code().unwrap_or(-1),
        &String::from_utf8_lossy(&o.stderr),
        "tracefs",
    );
    assert!(bpf_leftovers().is_empty(), "{:?}", bpf_leftovers());
}

/// Spawns a workload that the test owns, reading its first stdout line
/// (when `ready` is set) before returning.
fn spawn_workload(args: &[&str]) -> std::process::Child {
    Command::new(workload())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Starts `ai-forensics trace` and waits until its programs are attached
/// (its log says so).
fn start_tracer(args: &[&str]) -> std::process::Child {
    let mut c = af_cmd()
        .env("RUST_LOG", "info")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = c.stderr.take().unwrap();
    // The "tracing; N syscall specs loaded" line.
    let _ = read_until_line(err, "tracing", Duration::from_secs(30));
    c
}

#[test]
fn sigkill_leaves_nothing_in_the_kernel_and_the_workload_runs_on() {
    require_root();
    assert!(bpf_leftovers().is_empty(), "{:?}", bpf_leftovers());
    // The workload: 2 s of spinning, then 300000 getppid; its own output
    // tells whether it finished.
    let mut w = spawn_workload(&["rate", "100000", "3"]);
    let pid = w.id().to_string();
    let mut tracer = start_tracer(&[
        "trace",
        "--pid",
        &pid,
        "--no-live",
        "-e",
        "all",
        "--json",
        "-o",
        "/dev/null",
        "--no-store",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    tracer.kill().unwrap(); // SIGKILL
    tracer.wait().unwrap();
    let left = bpf_leftovers();
    assert!(
        left.is_empty(),
        "left in the kernel after SIGKILL: {left:?}"
    );
    let status = w.wait().unwrap();
    assert!(status.success(), "the workload was harmed: {status}");
}

#[test]
fn a_target_that_exits_during_attach_is_handled() {
    require_root();
    for ms in [0_u64, 1, 5, 20, 50] {
        let mut c = Command::new("sleep")
            .arg(format!("0.0{ms:02}"))
            .spawn()
            .unwrap();
        let pid = c.id().to_string();
        let r = af(&["trace", "--pid", &pid, "--no-live", "--no-store"]);
        let _ = c.wait();
        // Either it exited before we looked (a usage error naming it), or we
        // attached and ended when it exited (0).
        assert!(
            r.code == 0 || r.code == 2,
            "exit {} for a target living {ms} ms: {}",
            r.code,
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        if r.code == 2 {
            assert_usage_error("exited target", r.code, &r.stderr, &pid);
        }
    }
    assert!(bpf_leftovers().is_empty(), "{:?}", bpf_leftovers());
}

/// Makes the next process the kernel creates get `pid` (root PID
/// namespace), then spawns `args`; `None` when another process took it.
fn spawn_with_pid(pid: u32, args: &[&str]) -> Option<std::process::Child> {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
    let c = Command::new(workload())
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    if c.id() == pid {
        Some(c)
    } else {
        let mut c = c;
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

#[test]
fn a_reused_pid_is_not_followed() {
    require_root();
    // The traced tree: a child making 1000 getppid calls that exits at once,
    // and a shell that outlives it by 4 s. When the child is gone, an
    // unrelated process gets its PID and makes 7777 calls: none may count.
    let w = workload();
    let dir = tempdir("pidreuse");
    let pidfile = dir.join("pid");
    let script = format!(
        "{} getppid 1000 & echo $! > {}; wait; sleep 4",
        w.display(),
        pidfile.display()
    );
    let out = dir.join("ev.jsonl");
    let mut rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "--no-store",
            "-e",
            "getppid",
            "--json",
            "-o",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no pid file");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Wait for the child to be gone, then take its PID.
    while Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut impostor = (0..50)
        .find_map(|_| spawn_with_pid(pid, &["getppid", "7777"]))
        .expect("could not get the reused pid");
    assert!(impostor.wait().unwrap().success());
    assert!(rec.wait().unwrap().success());
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let by_pid = syscalls(&recs, "getppid")
        .filter(|r| r["pid"].as_u64() == Some(u64::from(pid)))
        .count();
    assert_eq!(by_pid, 1000, "the reused pid was followed");
    let _ = std::fs::remove_dir_all(dir);
}

/// Two processes, one after the other, on the same pid (forced with
/// `ns_last_pid`), traced with `select`: returns the pid's `per_thread`
/// entries as (generation, getppid calls), fewest calls first, and the
/// generations of the processes listed with that pid.
fn two_processes_on_one_pid(
    tag: &str,
    select: &[&str],
    first: &[&str],
    second: &[&str],
) -> (Vec<(u64, u64)>, Vec<u64>) {
    let dir = tempdir(tag);
    let out = dir.join("out.jsonl");
    let mut args = vec!["trace"];
    args.extend_from_slice(select);
    args.extend_from_slice(&[
        "--per-process",
        "-e",
        "getppid",
        "--duration",
        "5s",
        "--no-live",
        "--no-store",
        "--json",
        "-o",
        out.to_str().unwrap(),
    ]);
    let mut tracer = start_tracer(&args);
    let mut one = Command::new(workload())
        .args(first)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = one.id();
    assert!(one.wait().unwrap().success());
    let mut two = (0..50)
        .find_map(|_| spawn_with_pid(pid, second))
        .expect("could not get the reused pid");
    assert!(two.wait().unwrap().success());
    assert!(tracer.wait().unwrap().success());
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let s = summary(&recs);
    let of_pid = |key: &str| -> Vec<Value> {
        s[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["pid"].as_u64() == Some(u64::from(pid)))
            .cloned()
            .collect()
    };
    let mut counts: Vec<(u64, u64)> = of_pid("per_thread")
        .iter()
        .map(|t| {
            (
                t["generation"].as_u64().unwrap(),
                t["syscalls"]["getppid"]["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    counts.sort_by_key(|c| c.1);
    let mut listed: Vec<u64> = of_pid("processes")
        .iter()
        .map(|p| p["generation"].as_u64().unwrap())
        .collect();
    listed.sort_unstable();
    let _ = std::fs::remove_dir_all(dir);
    (counts, listed)
}

/// Each process's counts, never their sum, and both processes listed (the
/// second does not take the first one's place).
fn assert_kept_apart(counts: &[(u64, u64)], listed: &[u64], want: [u64; 2]) {
    assert_eq!(
        counts.iter().map(|c| c.1).collect::<Vec<_>>(),
        want,
        "{counts:?}"
    );
    assert_ne!(counts[0].0, counts[1].0);
    let mut gens = vec![counts[0].0, counts[1].0];
    gens.sort_unstable();
    assert_eq!(listed, gens);
}

#[test]
fn a_reused_pid_keeps_its_own_counts_when_everything_is_traced() {
    require_root();
    // Under `--all --per-process`: 1000 and 777 getppid calls, never 1777.
    let (counts, listed) = two_processes_on_one_pid(
        "allreuse",
        &["--all"],
        &["getppid", "1000"],
        &["getppid", "777"],
    );
    assert_kept_apart(&counts, &listed, [777, 1000]);
}

#[test]
fn processes_matched_on_a_reused_pid_keep_their_own_counts() {
    require_root();
    // Each process is matched by `--exe` when it execs and added by user
    // space, which gives it a generation of its own (bit 28 set); both
    // wait 300 ms before their calls, so every call is counted.
    let (counts, listed) = two_processes_on_one_pid(
        "matchreuse",
        &["--exe", "/workload$"],
        &["spin-getppid", "1000", "300"],
        &["spin-getppid", "777", "300"],
    );
    assert_kept_apart(&counts, &listed, [777, 1000]);
    assert!(counts.iter().all(|c| c.0 & (1 << 28) != 0), "{counts:?}");
}

/// A fresh cgroup v2 under the hybrid mount, for a test to watch.
fn watched_cgroup(tag: &str) -> std::path::PathBuf {
    let base = Path::new("/sys/fs/cgroup/unified");
    assert!(base.join("cgroup.procs").is_file(), "cgroup v2 not mounted");
    let cg = base.join(format!("aif-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&cg).unwrap();
    cg
}

/// A tracer of cgroup `cg`'s getppid calls with per-process counts for
/// `duration`, its JSON stream to `out` and, if given, a store.
fn cgroup_tracer(
    cg: &Path,
    duration: &str,
    store: Option<&Path>,
    out: &Path,
) -> std::process::Child {
    let store = store.map_or_else(
        || vec!["--no-store".to_string()],
        |s| vec!["--store".to_string(), s.display().to_string()],
    );
    let mut args = vec![
        "trace",
        "--cgroup",
        cg.to_str().unwrap(),
        "--per-process",
        "-e",
        "getppid",
        "--duration",
        duration,
        "--no-live",
        "--json",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(store.iter().map(String::as_str));
    start_tracer(&args)
}

#[test]
fn cgroup_members_sharing_a_pid_get_no_summed_counts() {
    require_root();
    // Two members of a watched cgroup, one after the other on one pid, each
    // joining then exec'ing the workload (1000 and 777 getppid calls). The
    // kernel takes each in at its first syscall with generation 0, so their
    // counts share one key: both are listed, and neither gets the sum.
    let cg = watched_cgroup("share");
    let dir = tempdir("cgshare");
    let db = dir.join("s.db");
    let mut tracer = cgroup_tracer(&cg, "4s", Some(&db), &dir.join("out.jsonl"));
    let member = |n: u32| {
        format!(
            "echo $$ > {}; exec {} getppid {n}",
            cg.join("cgroup.procs").display(),
            workload().display()
        )
    };
    let spawn = |script: &str| {
        Command::new("/bin/sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut one = spawn(&member(1000));
    let pid = one.id();
    assert!(one.wait().unwrap().success());
    let mut two = (0..50)
        .find_map(|_| {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
            let mut c = spawn(&member(777));
            if c.id() == pid {
                Some(c)
            } else {
                let _ = c.kill();
                let _ = c.wait();
                None
            }
        })
        .expect("could not get the reused pid");
    assert!(two.wait().unwrap().success());
    assert!(tracer.wait().unwrap().success());
    let _ = std::fs::remove_dir(&cg);
    let recs = parse_jsonl(&std::fs::read_to_string(dir.join("out.jsonl")).unwrap());
    let summed: Vec<u64> = summary(&recs)["per_thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"].as_u64() == Some(u64::from(pid)))
        .map(|t| t["syscalls"]["getppid"]["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(summed, [1777], "the kernel's one key for both");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut q = conn
        .prepare("SELECT generation, calls FROM processes WHERE pid = ?1")
        .unwrap();
    let rows: Vec<(u32, Option<u64>)> = q
        .query_map([pid], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(0, None), (0, None)]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_process_moved_into_a_watched_cgroup_is_listed() {
    require_root();
    // A running process is moved into a watched cgroup after tracing began
    // and never forks or execs there: it is taken in at its first syscall
    // and must still be listed, with why, and counted.
    let cg = watched_cgroup("moved");
    let dir = tempdir("cgmoved");
    let out = dir.join("out.jsonl");
    let mut member = Command::new(workload())
        .args(["spin-getppid", "2500", "1500"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut tracer = cgroup_tracer(&cg, "3s", None, &out);
    std::fs::write(cg.join("cgroup.procs"), member.id().to_string()).unwrap();
    assert!(member.wait().unwrap().success());
    assert!(tracer.wait().unwrap().success());
    let _ = std::fs::remove_dir(&cg);
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let s = summary(&recs);
    let pid = u64::from(member.id());
    let listed: Vec<&Value> = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"].as_u64() == Some(pid))
        .collect();
    assert_eq!(listed.len(), 1, "{}", s["processes"]);
    assert_eq!(listed[0]["origin"], "matched");
    assert!(
        listed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("cgroup ")),
        "{}",
        listed[0]
    );
    assert!(
        recs.iter()
            .any(|r| r["type"] == "process" && r["pid"].as_u64() == Some(pid)),
        "no process record"
    );
    let calls: u64 = s["per_thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"].as_u64() == Some(pid))
        .map(|t| t["syscalls"]["getppid"]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(calls, 2500);
    let _ = std::fs::remove_dir_all(dir);
}

/// A frozen, empty `run-<pid>-1` cgroup, as a recorder killed while its
/// workload was stopped leaves behind.
fn stale_frozen_cgroup(parent: &Path, pid: u32) -> std::path::PathBuf {
    let d = parent.join(format!("run-{pid}-1"));
    let _ = std::fs::create_dir_all(&d);
    std::fs::write(d.join("cgroup.freeze"), "1").unwrap();
    d
}

#[test]
fn a_stale_frozen_cgroup_does_not_freeze_the_next_workload() {
    require_root();
    let parent = Path::new("/sys/fs/cgroup/unified/ai-forensics");
    assert!(
        parent.parent().unwrap().join("cgroup.procs").is_file(),
        "cgroup v2 not mounted at {}",
        parent.parent().unwrap().display()
    );
    // A leftover of a recorder that is gone (swept at start), and one with
    // the very PID the next recorder gets (must not be reused as it is).
    let free = |from: u32| {
        (from..from + 1000)
            .find(|p| !Path::new(&format!("/proc/{p}")).exists())
            .unwrap()
    };
    let gone = stale_frozen_cgroup(parent, free(20_000));
    let mut done = None;
    for _ in 0..50 {
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pid = free(last + 20);
        let same = stale_frozen_cgroup(parent, pid);
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        // Output to a file: a workload stuck before exec would hold a pipe open.
        let log = std::env::temp_dir().join(format!("aif-stale-cgroup-{pid}.log"));
        let c = af_cmd()
            .args(["run", "--no-live", "--no-store", "--", "true"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let got = c.id();
        let (code, _) = bounded_output(c, Duration::from_secs(30)).unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        if code != 0 {
            let _ = std::fs::write(same.join("cgroup.kill"), "1");
            panic!("the workload did not finish (exit {code}): {stderr}");
        }
        if got == pid {
            done = Some(same);
            break;
        }
        let _ = std::fs::remove_dir(&same);
    }
    let same = done.expect("could not start the recorder with the chosen pid");
    assert!(!gone.exists(), "a dead recorder's cgroup was not swept");
    assert!(!same.exists(), "the stale cgroup was left in place");
}

#[test]
fn a_full_disk_under_the_store_is_an_error_and_the_counts_survive() {
    require_root();
    let dir = tempdir("diskfull");
    let mnt = dir.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "none"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    let db = mnt.join("s.db");
    let (recs, r) = af_json(&[
        "run",
        "-e",
        "getppid",
        "--store",
        db.to_str().unwrap(),
        "--",
        workload().to_str().unwrap(),
        "rate",
        "50000",
        "4",
    ]);
    let _ = Command::new("umount").arg(&mnt).status();
    // The in-kernel count is exact; the stream has every call.
    let s = summary(&recs);
    assert_eq!(count(s, "getppid"), 200_000);
    assert_eq!(syscalls(&recs, "getppid").count(), 200_000);
    // The store failure is said plainly, once, and counted in the summary.
    assert!(
        r.stderr.contains("store:") && r.stderr.contains("full"),
        "no clear error about the full disk: {}",
        r.stderr
    );
    let failed = s["loss"]["store_failed"].as_u64().unwrap_or(0);
    assert!(failed > 0, "store failures not counted: {}", s["loss"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_closed_output_pipe_does_not_stop_the_recording() {
    require_root();
    let dir = tempdir("pipe");
    let db = dir.join("s.db");
    // `| head -n 5`: the reader goes away after five lines, a second
    // before the workload's second half. The store still wants every
    // record, so the recording goes on to the end.
    let w = workload();
    let script = format!(
        "{w} getppid 50000; sleep 1; {w} getppid 50000",
        w = w.display()
    );
    let mut rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "--format",
            "text",
            "-e",
            "getppid",
            "--store",
            db.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = rec.stdout.take().unwrap();
    let mut buf = [0_u8; 512];
    let _ = out.read(&mut buf).unwrap();
    drop(out);
    let mut err = String::new();
    rec.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = rec.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    // The store kept everything, and the session ran to its end.
    let shown = af(&["show", "last", "--json", "--store", db.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&shown.stdout).unwrap();
    // The workload's calls and the shell's one (it sets $PPID).
    assert_eq!(count(&v["summary"], "getppid"), 100_001);
    assert_eq!(v["status"], "completed");
    assert!(bpf_leftovers().is_empty(), "{:?}", bpf_leftovers());
    let _ = std::fs::remove_dir_all(dir);
}

/// `(read + lost)` of the summary's loss accounting.
fn delivered_and_lost(s: &Value) -> (u64, u64) {
    (
        s["records"].as_u64().unwrap_or(0),
        s["loss"]["lost_events"].as_u64().unwrap_or(0),
    )
}

#[test]
fn a_stopped_recorder_loses_nothing_silently() {
    require_root();
    let dir = tempdir("stopped");
    let out = dir.join("ev.jsonl");
    // 50000 getppid/s for 6 s = 300000 calls; the recorder is stopped (as by
    // Ctrl-Z) for 3 s in the middle, so its 1 MiB ring buffer overflows.
    let mut rec = start_tracer(&[
        "run",
        "--no-live",
        "--no-store",
        "--ring-buffer",
        "1M",
        "-e",
        "getppid",
        "--json",
        "-o",
        out.to_str().unwrap(),
        "--",
        workload().to_str().unwrap(),
        "rate",
        "50000",
        "6",
    ]);
    std::thread::sleep(Duration::from_millis(1000));
    let pid = rec.id() as i32;
    // SIGSTOP, as Ctrl-Z would (SIGTSTP itself is discarded by the kernel
    // when the test runs in an orphaned process group, as under CI).
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(rec.wait().unwrap().success());
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let s = summary(&recs);
    assert_eq!(count(s, "getppid"), 300_000, "the kernel count is exact");
    let got = syscalls(&recs, "getppid").count() as u64;
    let lost: u64 = recs
        .iter()
        .filter(|r| r["type"] == "lost")
        .map(|r| r["detail"]["count"].as_u64().unwrap())
        .sum();
    assert!(lost > 0, "the ring buffer should have overflowed");
    // Every getppid is either in the stream or counted as lost (the lost
    // count may also cover the process's own exit record).
    let counted_lost = delivered_and_lost(s).1;
    assert!(
        (300_000..=300_002).contains(&(got + counted_lost)),
        "{got} delivered + {counted_lost} lost != 300000"
    );
    assert!(
        lost <= counted_lost,
        "lost markers {lost} > lost {counted_lost}"
    );
    assert!(
        recs.iter()
            .any(|r| r["type"] == "alert" && r["detail"]["rule"] == "ring-buffer-overflow"),
        "the overflow is an alert"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Peak RSS (KiB, VmHWM) of a process, sampled until it exits. (wait4's
/// ru_maxrss is no use here: it includes the test process's own RSS
/// inherited at fork, up to the exec.)
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(v) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
            else {
                break;
            };
            peak = peak.max(v);
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

/// Exit status and CPU seconds of a finished child.
fn wait_usage(c: &std::process::Child) -> (i32, f64) {
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::wait4(c.id() as i32, &raw mut status, 0, &raw mut ru) };
    assert_eq!(r, c.id() as i32);
    let cpu = ru.ru_utime.tv_sec as f64
        + ru.ru_utime.tv_usec as f64 / 1e6
        + ru.ru_stime.tv_sec as f64
        + ru.ru_stime.tv_usec as f64 / 1e6;
    (status, cpu)
}

#[test]
fn a_syscall_flood_is_bounded_counted_and_alerted() {
    require_root();
    let dir = tempdir("flood");
    let db = dir.join("s.db");
    // A getppid flood for 8 s (several million attempts a second); the
    // recorder streams every call and stores it.
    let mut w = Command::new("sh")
        .arg("-c")
        .arg(format!("sleep 1; exec {} flood 8", workload().display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = w.id().to_string();
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 in wait_usage")]
    let rec = af_cmd()
        .args([
            "trace",
            "--pid",
            &pid,
            "--no-live",
            "-e",
            "getppid",
            "--json",
            "-o",
            "/dev/null",
            "--store",
            db.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak = watch_peak_rss(rec.id());
    let mut calls = String::new();
    w.stdout.take().unwrap().read_to_string(&mut calls).unwrap();
    assert!(w.wait().unwrap().success());
    let calls: u64 = calls.trim().parse().unwrap();
    let started = Instant::now();
    let (status, cpu_s) = wait_usage(&rec);
    assert_eq!(status, 0);
    let rss_kib = peak.join().unwrap();
    let wall = started.elapsed().as_secs_f64() + 9.0;
    let shown = stored_summary(&db);
    let s = &shown["summary"];
    eprintln!(
        "flood: {calls} calls ({:.1}M/s), recorder peak RSS {} MiB, CPU {cpu_s:.1} s in ~{wall:.0} s, loss {}",
        calls as f64 / 8e6,
        rss_kib / 1024,
        s["loss"]
    );
    assert!(calls > 8_000_000, "the flood made only {calls} calls");
    assert_eq!(count(s, "getppid"), calls, "the kernel count is exact");
    let (read, lost) = delivered_and_lost(s);
    assert!(lost > 0, "a flood this size overflows the ring buffer");
    assert!(read > 0);
    assert!(
        rss_kib < 256 * 1024,
        "recorder RSS {} MiB under a flood",
        rss_kib / 1024
    );
    let alerts = af(&[
        "query",
        "last",
        "--type",
        "alert",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert!(
        parse_jsonl(&alerts.stdout)
            .iter()
            .any(|r| r["detail"]["rule"] == "ring-buffer-overflow"),
        "the flood is an alert: {}",
        alerts.stdout
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `show last --json` of a store.
fn stored_summary(db: &Path) -> Value {
    let r = af(&["show", "last", "--json", "--store", db.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn many_paths_and_fds_do_not_grow_the_tables_without_bound() {
    require_root();
    let dir = tempdir("manypaths");
    let files = dir.join("f");
    std::fs::create_dir_all(&files).unwrap();
    // 120000 distinct files created, then up to 19000 fds held at once
    // (the hard fd limit allows: 20000 here; the fd table's own cap of 65536
    // per process, above any such limit, is a unit test in state::fds).
    let fds: u64 = {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) };
        (lim.rlim_max.saturating_sub(100)).min(19_000)
    };
    let script = format!(
        "{w} open-many 120000 {f} && {w} dup-many {fds}",
        w = workload().display(),
        f = files.display()
    );
    let db = dir.join("s.db");
    let rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "--store",
            db.to_str().unwrap(),
            "-e",
            "openat,close,dup",
            "--json",
            "-o",
            "/dev/null",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let peak = watch_peak_rss(rec.id());
    let mut rec = rec;
    assert!(rec.wait().unwrap().success());
    let peak_kib = peak.join().unwrap();
    let shown = stored_summary(&db);
    let s = &shown["summary"];
    assert!(count(s, "openat") >= 120_000);
    assert_eq!(count(s, "dup"), fds);
    let loss = &s["loss"];
    assert!(
        loss["aggregate_overflow"].as_u64().unwrap() > 0,
        "120000 paths should exceed the per-file table: {loss}"
    );
    assert!(
        peak_kib < 256 * 1024,
        "recorder peak RSS {} MiB",
        peak_kib / 1024
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A fork storm: 60,000 short-lived children. The kernel's counts are
/// exact; with the store on, memory keeps the last 1024 exited processes
/// and the store's processes table gets every one (calls included); the
/// recorder (summary included) stays bounded.
#[test]
fn a_fork_storm_does_not_grow_the_process_tables_without_bound() {
    require_root();
    let dir = tempdir("forkstorm");
    let db = dir.join("s.db");
    // Two per-thread statistics keys per child (set_robust_list,
    // exit_group), whether or not its pid was used before (keys carry the
    // process's generation): 60,000 children fit the kernel's 131,072-key
    // table.
    let n: u64 = 60_000;
    let rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "--mode",
            "events",
            "-e",
            "all",
            "--per-process",
            "--store",
            db.to_str().unwrap(),
            "--json",
            "-o",
            "/dev/null",
            "--",
        ])
        .arg(workload())
        .args(["churn", &n.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let peak = watch_peak_rss(rec.id());
    let mut rec = rec;
    let started = Instant::now();
    assert!(rec.wait().unwrap().success());
    let wall = started.elapsed();
    let peak_kib = peak.join().unwrap();
    let shown = stored_summary(&db);
    let s = &shown["summary"];
    assert_eq!(
        count(s, "clone") + count(s, "clone3"),
        n,
        "{}",
        s["syscalls"]
    );
    assert_eq!(count(s, "wait4"), n);
    let procs = s["processes"].as_array().unwrap();
    let exited = procs.iter().filter(|p| !p["exit_ns"].is_null()).count();
    let evicted = s["loss"]["process_table_evictions"].as_u64().unwrap();
    eprintln!(
        "fork storm: {n} children in {wall:?}, {} processes in memory ({exited} exited), {} written to the store early, {evicted} forgotten, recorder peak RSS {} MiB",
        procs.len(),
        s["processes_only_in_store"],
        peak_kib / 1024
    );
    let in_store = s["processes_only_in_store"].as_u64().unwrap();
    assert!(exited <= 1024, "{exited} exited processes kept");
    assert_eq!(evicted, 0);
    // The workload and its children: every one in the summary or written
    // to the store early, and all of them in the processes table.
    assert_eq!(procs.len() as u64 + in_store, n + 1);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, with_calls): (u64, u64) = conn
        .query_row("SELECT count(*), count(calls) FROM processes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(rows, n + 1);
    assert_eq!(with_calls, n + 1);
    // Every child makes exactly two syscalls (set_robust_list in glibc's
    // fork, exit_group), and 60,000 forks reuse pids where pid_max is 32768:
    // each process has its own count all the same (the kernel keys counts
    // by pid and generation).
    let (children, wrong, reused): (u64, u64, u64) = conn
        .query_row(
            "SELECT count(*), sum(calls != 2), (SELECT count(*) FROM (SELECT pid FROM processes WHERE origin = 'forked' GROUP BY pid HAVING count(*) > 1)) FROM processes WHERE origin = 'forked'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    eprintln!("fork storm: {reused} pids used by more than one child");
    assert_eq!(children, n);
    // No two children share a pid and a generation: each fork gets its
    // CPU's next sequence number.
    let shared: u64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT pid, generation FROM processes WHERE origin = 'forked' GROUP BY pid, generation HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(shared, 0, "children sharing a pid and a generation");
    if wrong != 0 {
        let mut q = conn
            .prepare("SELECT pid, generation, calls FROM processes WHERE origin = 'forked' AND calls != 2 LIMIT 10")
            .unwrap();
        let rows: Vec<(u32, u32, u64)> = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        panic!(
            "{wrong} children whose count is not 2: (pid, generation, calls) {rows:?}; loss {}",
            s["loss"]
        );
    }
    assert!(
        peak_kib < 256 * 1024,
        "recorder peak RSS {} MiB",
        peak_kib / 1024
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_process_mimicking_the_tracer_is_still_traced_and_attributed() {
    require_root();
    let w = workload();
    // argv[0] and comm both say "ai-forensics".
    let script = format!(
        "exec -a ai-forensics {} mimic ai-forensics 4321",
        w.display()
    );
    let (recs, _) = af_json(&["run", "-e", "getppid", "--", "bash", "-c", &script]);
    let s = summary(&recs);
    // bash itself asks for its parent a few times before the exec.
    let calls: Vec<&Value> = syscalls(&recs, "getppid")
        .filter(|r| r["comm"] == "ai-forensics")
        .collect();
    assert_eq!(calls.len(), 4321);
    // The process record names the real executable.
    let pid = calls[0]["pid"].as_u64().unwrap();
    let p = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
        .expect("process in the summary");
    assert_eq!(
        p["exe"].as_str(),
        Some(w.to_str().unwrap()),
        "attributed by executable: {p}"
    );
}

#[test]
fn hostile_names_stay_escaped_in_the_text_format() {
    require_root();
    let dir = tempdir("hostile-text");
    let name = dir.join("evil\u{1b}[2J\nfake line\u{202e}");
    let r = af(&[
        "run",
        "--no-live",
        "--no-store",
        "--format",
        "text",
        "-e",
        "openat",
        "--",
        workload().to_str().unwrap(),
        "open",
        name.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "raw ESC in the text output");
    assert!(!r.stdout.contains("\nfake line"), "a newline was injected");
    assert!(!r.stdout.contains('\u{202e}'), "raw bidi override");
    assert!(
        r.stdout.contains("evil\\x1b[2J\\nfake line"),
        "{}",
        r.stdout
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_control_plane_is_closed_to_others() {
    require_root();
    let dir = tempdir("control");
    let token = dir.join("token");
    let secret = "S3cr3t-token-never-logged-0123456789";
    std::fs::write(&token, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The analyser's unix socket: 0600, root's.
    let sock = dir.join("a.sock");
    let mut srv = af_cmd()
        .args(["analyser", "serve", "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .arg("--token-file")
        .arg(&token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sock.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    // A recording through it, with the most verbose log: the secret never
    // shows up.
    let r = af_cmd()
        .env("RUST_LOG", "trace")
        .args(["run", "--no-live", "--no-store", "--analyser"])
        .arg(format!("unix:{}", sock.display()))
        .arg("--analyser-token-file")
        .arg(&token)
        .args(["--", workload().to_str().unwrap(), "getppid", "10"])
        .output()
        .unwrap();
    let _ = srv.kill();
    let mut srv_err = String::new();
    srv.stderr
        .take()
        .unwrap()
        .read_to_string(&mut srv_err)
        .unwrap();
    let _ = srv.wait();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(!err.contains(secret), "the token was logged");
    assert!(!srv_err.contains(secret), "the analyser logged the token");
    // Listeners default to loopback.
    let cfg = af(&["agent", "--print-config"]);
    assert!(
        cfg.stdout.contains("listen = \"127.0.0.1:9464\""),
        "{}",
        cfg.stdout
    );
    let help = af(&["analyser", "serve", "--help"]);
    assert!(help.stdout.contains("127.0.0.1:9900"), "{}", help.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads `out` on a thread until it ends, collecting every line; returns
/// once a line containing `ready` was seen (panics after `limit`).
fn read_until_line(
    out: impl std::io::Read + Send + 'static,
    ready: &'static str,
    limit: Duration,
) -> std::thread::JoinHandle<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let mut all = String::new();
        let mut tx = Some(tx);
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(ready)
                && let Some(t) = tx.take()
            {
                let _ = t.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no '{ready}' line"));
    h
}

/// Whether a command is on PATH.
fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[expect(clippy::too_many_lines, reason = "five tracers side by side")]
fn other_tracers_and_a_second_instance_lose_nothing_beside_us() {
    require_root();
    for t in ["perf", "bpftrace"] {
        assert!(
            have(t),
            "{t} is not installed (cargo xtask setup installs it)"
        );
    }
    let dir = tempdir("coexist");
    let w = workload();
    // Two workloads, gated on stdin so every tracer is attached first:
    // A makes 30000 getppid calls, B 50000 and 25 execs of /bin/true.
    let gate = |args: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("read x; exec {args}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = gate(&format!("{} getppid 30000", w.display()));
    let mut b = gate(&format!(
        "/bin/sh -c '{} getppid 50000; for i in {}; do /bin/true; done'",
        w.display(),
        (1..=25)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let (pa, pb) = (a.id().to_string(), b.id().to_string());
    let oa = dir.join("a.jsonl");
    let ob = dir.join("b.jsonl");
    let ours = |pid: &str, out: &Path| {
        start_tracer(&[
            "trace",
            "--pid",
            pid,
            "--no-live",
            "--no-store",
            "--mode",
            "count",
            "--json",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let ia = ours(&pa, &oa);
    let ib = ours(&pb, &ob);
    // perf: syscall counts of A, and the sched tracepoints our classic
    // tracepoint programs share (a program returning 0 there would hide
    // the events from perf).
    let perf_trace = Command::new("perf")
        .args(["trace", "-s", "-p", &pa])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let perf_stat = Command::new("perf")
        .args(["stat", "-x", ",", "-e", "sched:sched_process_exec", "-a"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bt = Command::new("bpftrace")
        .args([
            "-e",
            &format!(
                "tracepoint:raw_syscalls:sys_enter /pid == {pa}/ {{ @calls = count(); }} \
                 tracepoint:sched:sched_process_exec /comm == \"true\"/ {{ @execs = count(); }}"
            ),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut bt = bt;
    let bt_lines = read_until_line(
        bt.stdout.take().unwrap(),
        "Attaching",
        Duration::from_secs(60),
    );
    // Let perf attach too (it prints no readiness line).
    std::thread::sleep(Duration::from_secs(3));
    use std::io::Write as _;
    for c in [&mut a, &mut b] {
        c.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    let stop = |c: &std::process::Child| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    };
    for c in [&perf_trace, &perf_stat, &bt] {
        stop(c);
    }
    let perf_out = perf_trace.wait_with_output().unwrap();
    let stat_out = perf_stat.wait_with_output().unwrap();
    let _ = bt.wait_with_output();
    let bt_out = bt_lines.join().unwrap();
    for i in [ia, ib] {
        let o = i.wait_with_output().unwrap();
        assert!(o.status.success());
    }
    // Ours: each instance sees its own target only, exactly.
    let ra = parse_jsonl(&std::fs::read_to_string(&oa).unwrap());
    let rb = parse_jsonl(&std::fs::read_to_string(&ob).unwrap());
    assert_eq!(count(summary(&ra), "getppid"), 30_000);
    // The inner shell asks for its parent once ($PPID).
    assert_eq!(count(summary(&rb), "getppid"), 50_001);
    // sh, the workload, and 25 /bin/true.
    assert_eq!(count(summary(&rb), "execve"), 27);
    // perf trace: A's getppid calls.
    let perf_text = String::from_utf8_lossy(&perf_out.stderr);
    let perf_n = perf_text
        .lines()
        .find_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.first() == Some(&"getppid")).then(|| t[1].parse::<u64>().ok())?
        })
        .unwrap_or_else(|| panic!("no getppid in perf trace: {perf_text}"));
    // perf trace itself misses a few calls even alone (29989 to 30000 of
    // 30000 here, with no LOST report): allow 0.1%, far from what a
    // suppressed or stolen event stream would show.
    assert!(
        (29_970..=30_000).contains(&perf_n),
        "perf trace saw {perf_n} of 30000 beside us"
    );
    // perf stat: every exec of the period (at least B's 26) still reaches perf.
    let stat_text = String::from_utf8_lossy(&stat_out.stderr);
    let execs: u64 = stat_text
        .lines()
        .find(|l| l.contains("sched_process_exec"))
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no exec count from perf stat: {stat_text}"));
    assert!(
        execs >= 26,
        "perf saw {execs} execs: our tracepoint programs hid them"
    );
    // bpftrace: A's syscalls (getppid and exit_group at least) and the execs.
    let val = |key: &str| {
        bt_out
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("@{key}: ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no @{key} in bpftrace output: {bt_out}"))
    };
    assert!(val("calls") >= 30_000, "bpftrace lost syscalls beside us");
    assert_eq!(val("execs"), 25, "bpftrace lost execs beside us");
    assert!(bpf_leftovers().is_empty(), "{:?}", bpf_leftovers());
    let _ = std::fs::remove_dir_all(dir);
}
