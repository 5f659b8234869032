//! The classification loop: rules, verdicts, stopping and killing the agent,
//! in the kernel and from user space, and the analyser's failure modes.
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ai_forensics::analyser::protocol;
use ai_forensics_integration::{
    af, af_cmd, parse_jsonl, python, require_root, root, tempdir, workload,
};
use serde_json::Value;

fn agent() -> PathBuf {
    root().join("ai-forensics-integration/scripts/agent.py")
}

fn run_rules(rules: &str, args: &[&str], code: i32) -> (Vec<Value>, String) {
    let dir = tempdir("policy-run");
    let out = dir.join("ev.jsonl");
    let mut a: Vec<String> = vec![
        "run".into(),
        "--no-live".into(),
        "--json".into(),
        "-o".into(),
        out.to_str().unwrap().into(),
        "--rules".into(),
        rules.into(),
    ];
    a.extend(args.iter().map(|s| (*s).to_owned()));
    let r = af(&a);
    assert_eq!(r.code, code, "exit code: {}", r.stderr);
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let _ = std::fs::remove_dir_all(dir);
    (recs, r.stdout)
}

fn of_type<'a>(recs: &'a [Value], t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    recs.iter().filter(move |r| r["type"] == t)
}

const LOCAL_RULES: &str = r#"
version: 1
rules:
  - name: shell
    action: kill
    kernel: true
    match: {syscall: [execve, execveat], basename: [sh, bash, dash]}
  - name: creds
    action: kill
    kernel: true
    match: {syscall: [open, openat], path: ["CREDS_PATH"]}
  - name: attacker
    action: kill
    match: {syscall: connect, port: ATTACKER_PORT}
"#;

fn rules_file(dir: &Path, port: u16) -> PathBuf {
    let p = dir.join("rules.yaml");
    let creds = dir.join("home/.aws/credentials");
    std::fs::write(
        &p,
        LOCAL_RULES
            .replace("ATTACKER_PORT", &port.to_string())
            .replace("CREDS_PATH", creds.to_str().unwrap()),
    )
    .unwrap();
    p
}

#[test]
fn the_agent_is_stopped_when_it_turns_malicious_and_untouched_when_benign() {
    require_root();
    let dir = tempdir("agent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rules = rules_file(&dir, port);
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[default]\naws_secret_access_key=FAKE\n",
    )
    .unwrap();
    let py = python().to_str().unwrap();
    let ag = agent();
    let ag = ag.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();

    // Benign: runs to completion, no alert.
    let (recs, stdout) = run_rules(rules.to_str().unwrap(), &["--", py, ag, o], 0);
    assert!(stdout.contains("benign done"));
    assert_eq!(of_type(&recs, "alert").count(), 0);

    // Each malicious action: killed, the action never completes.
    let port_s = port.to_string();
    for (what, extra) in [
        ("creds", None),
        ("shell", None),
        ("connect", Some(port_s.as_str())),
    ] {
        let mut args = vec!["--", "env"];
        let homevar = format!("HOME={}", home.display());
        args.push(&homevar);
        args.extend([py, ag, o, what]);
        if let Some(x) = extra {
            args.push(x);
        }
        let _ = std::fs::remove_file(out.join("MARKER"));
        let started = Instant::now();
        let (recs, stdout) = run_rules(rules.to_str().unwrap(), &args, 137);
        assert!(stdout.contains("benign done"), "{what}: {stdout}");
        // In-kernel rules (shell, credentials) stop the call itself: the
        // agent never gets past it. A user-space rule (the connect) acts
        // within the bound below, after the call.
        if what == "creds" {
            assert!(
                !stdout.contains("malicious done"),
                "{what}: the agent finished its malicious action"
            );
        }
        assert!(
            !out.join("MARKER").exists(),
            "{what}: the shell ran a command"
        );
        let alert = of_type(&recs, "alert")
            .next()
            .unwrap_or_else(|| panic!("{what}: no alert"));
        let kill = of_type(&recs, "action")
            .find(|a| a["detail"]["action"] == "kill")
            .expect("kill action");
        let latency_ms = kill["detail"]["latency_ns"].as_u64().unwrap() as f64 / 1e6;
        eprintln!(
            "{what}: rule {} ({}), event to tree killed {latency_ms:.3} ms",
            alert["detail"]["rule"], alert["detail"]["source"]
        );
        // The bound we state: the whole tree is dead within 100 ms of the event.
        assert!(latency_ms < 100.0, "{what}: {latency_ms} ms");
        assert!(started.elapsed() < Duration::from_secs(30));
        if what != "connect" {
            assert_eq!(alert["detail"]["source"], "kernel");
            let eff = of_type(&recs, "action")
                .find(|a| a["detail"]["effective"] == true)
                .expect("kernel kill took effect");
            eprintln!(
                "{what}: in-kernel kill effective {:.3} ms after the call's entry",
                eff["detail"]["latency_ns"].as_u64().unwrap() as f64 / 1e6
            );
        }
    }
    drop(listener);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_kernel_kills_a_shell_before_it_runs_a_command() {
    require_root();
    let dir = tempdir("kshell");
    let marker = dir.join("MARKER");
    let weights = dir.join("model.safetensors");
    std::fs::write(&weights, b"{}").unwrap();
    let script = format!(
        // Opening weights makes it an AI workload (the kernel flags it).
        // The sleep keeps the agent alive until the tree kill that follows
        // the kernel's verdict lands (otherwise python may exit 0 first).
        "import subprocess, time; open('{}').read(); subprocess.run(['/bin/sh', '-c', 'touch {}']); time.sleep(10)",
        weights.display(),
        marker.display()
    );
    let (recs, _) = run_rules(
        "builtin",
        &["--", python().to_str().unwrap(), "-c", &script],
        137,
    );
    assert!(!marker.exists(), "the shell ran its command");
    let a = of_type(&recs, "alert")
        .find(|a| a["detail"]["source"] == "kernel")
        .expect("kernel alert");
    assert_eq!(a["detail"]["rule"], "shell-spawned-by-model");
    assert_eq!(a["detail"]["path"], "/bin/sh");
    assert_eq!(a["detail"]["mechanism"], "identity");
    assert!(
        of_type(&recs, "ai_mark").any(|m| m["detail"]["file"] == "model.safetensors"),
        "no ai_mark record"
    );
    let sh_pid = a["pid"].as_u64().unwrap();
    if a["detail"]["enforced"] == "signal" {
        // Nothing the shell would do after exec is in the record.
        let after: Vec<&Value> = of_type(&recs, "syscall")
            .filter(|r| r["pid"] == sh_pid && r["detail"]["syscall"] != "execve")
            .filter(|r| r["ts_ns"].as_u64() > a["ts_ns"].as_u64())
            .collect();
        assert!(
            after.is_empty(),
            "the shell made syscalls after the kill: {after:?}"
        );
    } else {
        // Refused before it ran (`run` decides execs through seccomp): the
        // exec never happened, so no shell image ever existed.
        assert_eq!(a["detail"]["call_ran"], false);
        assert!(
            !of_type(&recs, "exec")
                .any(|e| e["pid"] == sh_pid && e["detail"]["filename"] == "/bin/sh"),
            "the shell's image was loaded"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A scripted analyser: answers each batch with the next queued verdicts,
/// signed with `token` (or not, or garbage, or slowly).
struct Fake {
    port: u16,
    queue: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behave {
    Good,
    WrongToken,
    Garbage,
    Slow,
}

fn fake_analyser(token: &'static [u8], behave: Behave) -> Fake {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let queue = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (q, s) = (Arc::clone(&queue), Arc::clone(&seen));
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let sig = req
                .headers()
                .iter()
                .find(|h| h.field.equiv(protocol::SIGNATURE_HEADER))
                .map(|h| h.value.as_str().to_owned());
            assert!(
                protocol::verify(token, &body, sig.as_deref()),
                "the recorder's request is signed"
            );
            for l in String::from_utf8_lossy(&body).lines() {
                if let Ok(v) = serde_json::from_str::<Value>(l) {
                    s.lock().unwrap().push(v);
                }
            }
            if behave == Behave::Slow {
                std::thread::sleep(Duration::from_secs(5));
            }
            let out: String = q.lock().unwrap().drain(..).map(|v| v + "\n").collect();
            let (out, key): (Vec<u8>, &[u8]) = match behave {
                Behave::WrongToken => (out.into_bytes(), b"not-the-shared-token"),
                Behave::Garbage => (b"this is not json\n".to_vec(), token),
                _ => (out.into_bytes(), token),
            };
            let sign = protocol::sign(key, &out);
            let resp = tiny_http::Response::from_data(out).with_header(
                tiny_http::Header::from_bytes(protocol::SIGNATURE_HEADER, sign.as_bytes()).unwrap(),
            );
            let _ = req.respond(resp);
        }
    });
    Fake { port, queue, seen }
}

const TOKEN: &[u8] = b"integration-test-shared-token";

fn token_file(dir: &Path) -> PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, TOKEN).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn state(pid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s[s.rfind(')')? + 2..].chars().next())
        .unwrap_or('X')
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Verdicts freeze, resume and kill the whole tree, including a child forked
/// just before the verdict; none escapes. Run under `trace --pid` (signals
/// and in-kernel flags, no cgroup).
#[test]
fn verdicts_freeze_resume_and_kill_the_whole_tree() {
    require_root();
    let dir = tempdir("verdicts");
    let fake = fake_analyser(TOKEN, Behave::Good);
    // A parent that keeps forking short-lived children and one long-lived child.
    let script = "import os,time\nkid=os.fork()\nif kid==0:\n    while True: os.getppid(); time.sleep(0.01)\nwhile True:\n    p=os.fork()\n    if p==0:\n        os.getppid(); time.sleep(0.05); os._exit(0)\n    os.waitpid(p,0)\n";
    let mut w = Command::new(python()).args(["-c", script]).spawn().unwrap();
    let root_pid = w.id();
    let out = dir.join("ev.jsonl");
    let tracer = af_cmd()
        .args([
            "trace",
            "--pid",
            &root_pid.to_string(),
            "--no-live",
            "--json",
            "-o",
            out.to_str().unwrap(),
            "--analyser",
            &format!("http://127.0.0.1:{}/events", fake.port),
            "--analyser-token-file",
            token_file(&dir).to_str().unwrap(),
            "--duration",
            "8s",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the analyser to see records", || {
        fake.seen.lock().unwrap().len() > 10
    });
    let verdict = |action: &str| {
        fake.queue.lock().unwrap().push(format!("{{\"target\": {root_pid}, \"action\": \"{action}\", \"reason\": \"test\", \"rule\": \"t\"}}"))
    };
    verdict("stop");
    wait_for("the tree to stop", || state(root_pid) == 'T');
    std::thread::sleep(Duration::from_millis(300));
    let members: Vec<u32> = std::iter::once(root_pid)
        .chain(descendants(root_pid))
        .collect();
    assert!(members.len() >= 2);
    for p in &members {
        assert_eq!(state(*p), 'T', "member {p} is not stopped");
    }
    verdict("resume");
    wait_for("the tree to run again", || state(root_pid) != 'T');
    verdict("kill");
    wait_for("the tree to die", || {
        let _ = w.try_wait();
        !alive(root_pid)
    });
    for p in &members {
        wait_for(&format!("member {p} to die"), || !alive(*p));
    }
    let o = tracer.wait_with_output().unwrap();
    assert!(o.status.success());
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let actions: Vec<String> = of_type(&recs, "action")
        .map(|a| a["detail"]["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["stop", "resume", "kill"]);
    assert!(
        of_type(&recs, "action")
            .all(|a| a["detail"]["method"] == "signals" && a["detail"]["ok"] == true)
    );
    // A verdict about a process outside the tree is refused.
    let _ = std::fs::remove_dir_all(dir);
}

fn descendants(pid: u32) -> Vec<u32> {
    let o = Command::new("ps")
        .args(["-e", "-o", "pid=,ppid="])
        .output()
        .unwrap();
    let pairs: Vec<(u32, u32)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &pairs {
            if *pp == p {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    !matches!(state(pid), 'X' | 'Z')
}

fn analyser_run(behave: Behave, failure: &str, verdict_kill: bool) -> (Vec<Value>, i32, Fake) {
    let dir = tempdir("anl");
    let fake = fake_analyser(TOKEN, behave);
    let w = workload();
    if verdict_kill {
        // Kill whatever the analyser hears about first.
        let q = Arc::clone(&fake.queue);
        let seen = Arc::clone(&fake.seen);
        std::thread::spawn(move || {
            loop {
                if let Some(pid) = seen.lock().unwrap().iter().find_map(|v| v["pid"].as_u64()) {
                    q.lock().unwrap().push(format!(
                        "{{\"target\": {pid}, \"action\": \"kill\", \"reason\": \"forged?\"}}"
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
    let out = dir.join("ev.jsonl");
    // Not through pipes: a workload left frozen would hold them open.
    let status = af_cmd()
        .args([
            "run",
            "--no-live",
            "--json",
            "-o",
            out.to_str().unwrap(),
            "--analyser",
            &format!("http://127.0.0.1:{}/e", fake.port),
            "--analyser-token-file",
            token_file(&dir).to_str().unwrap(),
            "--analyser-failure",
            failure,
            "--analyser-timeout",
            "1s",
            "--duration",
            "4s",
            "--",
            w.to_str().unwrap(),
            "rate",
            "200",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("{} rate 200 3", w.display())])
        .status();
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap());
    let _ = std::fs::remove_dir_all(dir);
    use std::os::unix::process::ExitStatusExt as _;
    (
        recs,
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        fake,
    )
}

#[test]
fn analyser_failures_follow_the_failure_mode() {
    require_root();
    let w = workload();
    let token_dir = tempdir("anl-down");
    let tf = token_file(&token_dir);
    // Hung (listens, never answers), open: the workload finishes. (An
    // address nobody listens on is refused at start.)
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    let r = af(&[
        "run",
        "--no-live",
        "--analyser",
        &format!("http://127.0.0.1:{port}/e"),
        "--analyser-token-file",
        tf.to_str().unwrap(),
        "--analyser-failure",
        "open",
        "--analyser-timeout",
        "500ms",
        "--",
        w.to_str().unwrap(),
        "rate",
        "200",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Hung, closed: the workload is stopped (the session ends by --duration).
    let mut rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "--json",
            "-o",
            token_dir.join("c.jsonl").to_str().unwrap(),
            "--analyser",
            &format!("http://127.0.0.1:{port}/e"),
            "--analyser-token-file",
            tf.to_str().unwrap(),
            "--analyser-failure",
            "closed",
            "--analyser-timeout",
            "500ms",
            "--duration",
            "3s",
            "--",
            w.to_str().unwrap(),
            "rate",
            "200",
            "10",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let _ = rec.wait();
    assert!(started.elapsed() < Duration::from_secs(8));
    let recs = parse_jsonl(&std::fs::read_to_string(token_dir.join("c.jsonl")).unwrap());
    let stop = of_type(&recs, "action")
        .find(|a| a["detail"]["action"] == "stop")
        .expect("stopped for the failure");
    assert_eq!(stop["detail"]["rule"], "analyser-failure-closed");
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("{} rate 200 10", w.display())])
        .status();
    drop(hung);
    // Slow (answers after the timeout), closed: stopped too.
    let (recs, _, _) = analyser_run(Behave::Slow, "closed", false);
    assert!(
        of_type(&recs, "action").any(|a| a["detail"]["action"] == "stop"),
        "slow analyser, closed mode"
    );
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("{} rate 200 3", w.display())])
        .status();
    // Garbage, open: nothing acted on, the workload finishes.
    let (recs, code, _) = analyser_run(Behave::Garbage, "open", true);
    assert_eq!(code, 0);
    assert!(of_type(&recs, "action").next().is_none());
    // A verdict signed with the wrong token is refused: the workload survives.
    let (recs, code, fake) = analyser_run(Behave::WrongToken, "open", true);
    assert_eq!(code, 0, "a forged kill verdict was obeyed");
    assert!(!fake.seen.lock().unwrap().is_empty());
    let s = recs.last().unwrap();
    assert!(
        s["detail"]["policy"]["analyser"]["refused"]
            .as_u64()
            .unwrap()
            > 0
    );
    // And a good one is obeyed.
    let (_, code, _) = analyser_run(Behave::Good, "open", true);
    assert_eq!(code, 137, "the good kill verdict was not obeyed");
    let _ = std::fs::remove_dir_all(token_dir);
}

#[test]
fn rules_check_and_test_against_a_session() {
    require_root();
    let dir = tempdir("rulescheck");
    let ok = af(&["rules", "check", "builtin"]);
    assert_eq!(ok.code, 0);
    assert!(ok.stdout.contains("rules ok"));
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nrules:\n  - name: x\n    action: kil\n    match: {}\n",
    )
    .unwrap();
    let r = af(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.yaml:4:"), "{}", r.stderr);
    // Record an agent session without rules, then test the pack against it.
    let db = dir.join("s.db");
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/credentials"), "x").unwrap();
    let homevar = format!("HOME={}", home.display());
    let rec = af(&[
        "run",
        "--no-live",
        "-e",
        "all",
        "--store",
        db.to_str().unwrap(),
        "--",
        "env",
        &homevar,
        python().to_str().unwrap(),
        agent().to_str().unwrap(),
        dir.join("out").to_str().unwrap(),
        "creds",
    ]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    let t = af(&[
        "rules",
        "test",
        "builtin",
        "--session",
        "last",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.stdout.contains("credentials-touched"), "{}", t.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

/// The evasion corpus is caught and the benign corpus runs clean, under
/// every bundled profile, in count and in events mode (`rules test
/// --corpus`, which runs each case under `ai-forensics run`).
#[test]
fn the_evasion_corpus_is_caught_and_the_benign_corpus_runs_clean() {
    require_root();
    let corpus = root().join("rules/corpus");
    let r = af(&[
        "rules",
        "test",
        "builtin",
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    for line in r.stdout.lines().filter(|l| l.contains("corpus, profile")) {
        eprintln!("{line}");
    }
    let wrong: Vec<&str> = r.stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert!(
        wrong.is_empty(),
        "cases that did not behave:\n{}",
        wrong.join("\n")
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every case of every profile and mode ran: 4 profiles x 2 modes.
    let totals = r
        .stdout
        .lines()
        .filter(|l| l.contains("corpus, profile"))
        .count();
    assert_eq!(totals, 2 * 4 * 2, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("evasion corpus, profile auto, count mode: 32 cases, 32 caught")
    );
    assert!(r.stdout.contains(
        "benign corpus, profile agent, events mode: 11 cases, 0 caught, 11 passed clean, 0 wrong"
    ));
}

/// The bystander: an ordinary `python3 -c 'print(1)'` through the pyenv
/// shim on PATH (a `#!/usr/bin/env bash` script) runs to completion under
/// the builtin rules, in both modes.
#[test]
fn a_pyenv_shim_launch_is_never_taken_for_the_model() {
    require_root();
    let Some(shim) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("python3"))
            .find(|p| p.is_file())
    }) else {
        panic!("no python3 on PATH");
    };
    for mode in ["count", "events"] {
        let r = af(&[
            "run",
            "--no-live",
            "--no-store",
            "--mode",
            mode,
            "--rules",
            "builtin",
            "--",
            shim.to_str().unwrap(),
            "-c",
            "print('hello from python')",
        ]);
        assert_eq!(r.code, 0, "{mode}: {}", r.stderr);
        assert!(
            r.stdout.contains("hello from python"),
            "{mode}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("rules: 0 alerts"), "{mode}: {}", r.stdout);
    }
}

/// A protected file that appears after the start (a new key in a watched
/// directory) is denied by identity from the next scan on, whatever path
/// reaches it.
#[test]
fn a_key_made_after_the_start_is_protected_by_identity() {
    require_root();
    let dir = tempdir("newkey");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "version: 1\nrules:\n  - name: keys\n    action: kill\n    kernel: true\n    match: {{syscall: [openat], path: [\"{}/*\"]}}\n",
            keys.display()
        ),
    )
    .unwrap();
    let key = keys.join("id_new");
    let link = dir.join("innocent");
    // The workload waits for the key to exist, gives the scan (every 2 s)
    // time to see it, then reads it through a symlink.
    let script = format!(
        "import os, time\nwhile not os.path.exists('{k}'): time.sleep(0.05)\ntime.sleep(2.5)\nos.symlink('{k}', '{l}')\nprint(open('{l}').read())\n",
        k = key.display(),
        l = link.display()
    );
    let child = af_cmd()
        .args(["run", "--no-live", "--no-store", "--json", "-o"])
        .arg(dir.join("ev.jsonl"))
        .arg("--rules")
        .arg(&rules)
        .args(["--", python().to_str().unwrap(), "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&key, "NEW-KEY\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("NEW-KEY"), "the key was read: {stdout}");
    let recs = parse_jsonl(&std::fs::read_to_string(dir.join("ev.jsonl")).unwrap());
    let a = of_type(&recs, "alert")
        .find(|a| a["detail"]["source"] == "kernel")
        .expect("kernel alert");
    assert_eq!(a["detail"]["rule"], "keys");
    assert_eq!(a["detail"]["mechanism"], "identity");
    assert_eq!(a["detail"]["resolved"], key.to_str().unwrap());
    let _ = std::fs::remove_dir_all(dir);
}
