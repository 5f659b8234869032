//! Prevention: under `run`, a denied open or exec is refused before it runs
//! (seccomp user notification), the process lives unless the rule says
//! kill, the refused calls are counted exactly, and a thread racing the
//! check still never gets the file.
use std::path::{Path, PathBuf};

use ai_forensics_integration::{af, count, parse_jsonl, python, require_root, summary, tempdir};
use serde_json::Value;

fn alerts(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| r["type"] == "alert" && r["detail"]["source"] == "kernel")
        .collect()
}

fn deny_rules(dir: &Path, action: &str, key: &Path) -> PathBuf {
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "version: 1\nrules:\n  - name: key\n    action: {action}\n    kernel: true\n    match: {{syscall: [open, openat, openat2, creat], path: [\"{}\"]}}\n  - name: shells\n    action: {action}\n    kernel: true\n    match: {{syscall: [execve, execveat], basename: [sh, dash, bash]}}\n",
            key.display()
        ),
    )
    .unwrap();
    rules
}

/// Runs `script` under `run --rules RULES` with `extra` flags; returns the
/// records, the workload's stdout and ai-forensics' exit code.
fn run_script(rules: &Path, extra: &[&str], script: &str) -> (Vec<Value>, String, i32) {
    let dir = tempdir("prevent-run");
    let out = dir.join("ev.jsonl");
    let mut a: Vec<String> = [
        "run",
        "--no-live",
        "--no-store",
        "--json",
        "-o",
        out.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a.extend([
        "--".into(),
        python().to_str().unwrap().into(),
        "-c".into(),
        script.into(),
    ]);
    let r = af(&a);
    let recs = parse_jsonl(&std::fs::read_to_string(&out).unwrap_or_default());
    let _ = std::fs::remove_dir_all(dir);
    (recs, r.stdout, r.code)
}

/// The issue's own case: an open of the key with `O_WRONLY|O_TRUNC`. Under
/// seccomp it fails with EPERM and the key is intact, whatever the
/// spelling; the process lives (action deny). With `--no-seccomp` the
/// kernel's signal is the last resort: the process dies, but the call ran.
#[test]
fn a_denied_open_never_happens_and_the_process_lives() {
    require_root();
    let dir = tempdir("prevent-open");
    let key = dir.join("keys/id_test");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "KEY-CONTENT\n").unwrap();
    std::os::unix::fs::symlink(&key, dir.join("innocent")).unwrap();
    let rules = deny_rules(&dir, "deny", &key);
    let script = format!(
        r#"
import errno, os
d = {d:?}
os.chdir(d + "/keys")
ways = [d + "/keys/id_test", "id_test", "./../keys//id_test", d + "/innocent",
        "/proc/self/root" + d + "/keys/id_test", "/proc/self/cwd/id_test"]
for w in ways:
    try:
        os.open(w, os.O_WRONLY | os.O_TRUNC)
        print("OPENED", w)
    except OSError as e:
        print("refused" if e.errno == errno.EPERM else "other", e.errno, w)
print("alive")
"#,
        d = dir.to_str().unwrap()
    );
    let (recs, stdout, code) = run_script(&rules, &[], &script);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY-CONTENT\n");
    assert_eq!(stdout.matches("refused 1 ").count(), 6, "{stdout}");
    assert!(stdout.contains("alive"), "{stdout}");
    let a = alerts(&recs);
    assert_eq!(a.len(), 6, "{a:?}");
    for x in &a {
        let d = &x["detail"];
        assert_eq!(d["enforced"], "seccomp", "{d}");
        assert_eq!(d["call_ran"], false, "{d}");
        assert_eq!(d["action"], "deny", "{d}");
        assert_eq!(d["resolved"], key.to_str().unwrap(), "{d}");
        let lat = d["decision_latency_ns"].as_u64().unwrap();
        assert!(lat > 0 && lat < 1_000_000_000, "{d}");
    }
    // No action record: deny leaves the tree alone.
    assert!(!recs.iter().any(|r| r["type"] == "action"));
    let p = &summary(&recs)["policy"]["prevention"];
    assert_eq!(p["denied"], 6, "{p}");
    assert_eq!(p["unresolved"], 0, "{p}");

    // A kill rule: the call is refused and the caller dies while it waits
    // for the answer, so it never runs again either.
    let kill_rules = deny_rules(&dir, "kill", &key);
    let (recs, stdout, code) = run_script(&kill_rules, &[], &script);
    assert_eq!(code, 137, "{stdout}");
    assert!(!stdout.contains("refused 1 "), "it ran on: {stdout}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY-CONTENT\n");
    let a = alerts(&recs);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["detail"]["enforced"], "seccomp");
    assert_eq!(a[0]["detail"]["call_ran"], false);

    // The last resort: the signal at the open's exit. The process never
    // uses the descriptor, but O_TRUNC has emptied the file.
    let (recs, stdout, code) = run_script(&rules, &["--no-seccomp"], &script);
    assert_eq!(code, 137, "{stdout}");
    assert!(!stdout.contains("alive"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "");
    let a = alerts(&recs);
    assert!(!a.is_empty());
    for x in &a {
        assert_eq!(x["detail"]["enforced"], "signal", "{x}");
        assert_eq!(x["detail"]["call_ran"], true, "{x}");
    }
    assert_eq!(
        summary(&recs)["policy"]["prevention"]["mechanism"],
        "signal"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A denied exec fails with EPERM: the shell by name, a copy of it (by
/// content), its bytes in a memfd run with fexecve; the process lives.
#[test]
fn a_denied_exec_never_happens() {
    require_root();
    let dir = tempdir("prevent-exec");
    let rules = deny_rules(&dir, "deny", &dir.join("no-key"));
    let script = format!(
        r#"
import errno, os, shutil
d = {d:?}
shutil.copy("/bin/dash", d + "/notashell")
mfd = os.memfd_create("x")
os.write(mfd, open("/bin/dash", "rb").read())
def attempt(what, f):
    try:
        f()
        print("RAN", what)
    except OSError as e:
        print("refused" if e.errno == errno.EPERM else "other", e.errno, what)
attempt("sh", lambda: os.execv("/bin/sh", ["sh", "-c", "echo SHELL"]))
attempt("copy", lambda: os.execv(d + "/notashell", ["x", "-c", "echo SHELL"]))
attempt("memfd", lambda: os.execve(mfd, ["x", "-c", "echo SHELL"], {{}}))
print("alive")
"#,
        d = dir.to_str().unwrap()
    );
    let (recs, stdout, code) = run_script(&rules, &[], &script);
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("SHELL"), "{stdout}");
    assert_eq!(stdout.matches("refused 1 ").count(), 3, "{stdout}");
    let a = alerts(&recs);
    let mech: Vec<&str> = a
        .iter()
        .map(|x| x["detail"]["mechanism"].as_str().unwrap())
        .collect();
    assert_eq!(mech, ["identity", "content", "content"], "{a:?}");
    assert!(a.iter().all(|x| x["detail"]["enforced"] == "seccomp"));
    let copy_of = a[1]["detail"]["copy_of"].as_str().unwrap_or_default();
    assert!(
        ["sh", "dash"].contains(&copy_of.rsplit('/').next().unwrap_or_default()),
        "{:?}",
        a[1]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Refused calls never reach the syscall tracepoint's entry (seccomp runs
/// first): the counts add them, so the workload's openat count is the same
/// whether its 100 opens of the key are refused or not.
#[test]
fn refused_calls_are_counted_exactly() {
    require_root();
    let dir = tempdir("prevent-count");
    let key = dir.join("id_test");
    std::fs::write(&key, "K\n").unwrap();
    let rules = deny_rules(&dir, "deny", &key);
    let other = dir.join("other.yaml");
    std::fs::write(
        &other,
        "version: 1\nrules:\n  - name: nothing\n    action: alert\n    match: {syscall: [getppid]}\n",
    )
    .unwrap();
    let script = format!(
        "import os\nfor i in range(100):\n    try:\n        os.open({k:?}, os.O_RDONLY)\n    except OSError:\n        pass\nprint('done')\n",
        k = key.to_str().unwrap()
    );
    let (denied, out_d, code_d) = run_script(&rules, &[], &script);
    let (plain, out_p, code_p) = run_script(&other, &[], &script);
    assert_eq!((code_d, code_p), (0, 0), "{out_d} {out_p}");
    let (sd, sp) = (summary(&denied), summary(&plain));
    assert_eq!(count(sd, "openat"), count(sp, "openat"));
    let errors = |s: &Value| {
        s["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["syscall"] == "openat")
            .and_then(|r| r["errors"].as_u64())
            .unwrap()
    };
    assert_eq!(errors(sd), errors(sp) + 100);
    assert_eq!(sd["policy"]["prevention"]["denied"], 100);
    let _ = std::fs::remove_dir_all(dir);
}

/// The attacker's race: a second thread flips the path between a harmless
/// file and the key while the first opens it in a loop, so the path the
/// supervisor checked is not the one the kernel opens. Whatever wins, the
/// key's content never reaches the process: a refused call fails, and an
/// open that slips past the check is caught by identity at its exit.
#[test]
fn a_thread_racing_the_check_never_reads_the_key() {
    require_root();
    let dir = tempdir("prevent-race");
    let key = dir.join("id_race");
    std::fs::write(&key, "RACE-KEY\n").unwrap();
    let harmless = dir.join("harmless");
    std::fs::write(&harmless, "harmless\n").unwrap();
    let rules = deny_rules(&dir, "deny", &key);
    let script = format!(
        r#"
import ctypes, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
a, b = {a:?}.encode(), {b:?}.encode()
n = max(len(a), len(b)) + 1
buf = ctypes.create_string_buffer(n)
stop = False
def flip():
    while not stop:
        ctypes.memmove(buf, a + b"\0", len(a) + 1)
        ctypes.memmove(buf, b + b"\0", len(b) + 1)
threading.Thread(target=flip, daemon=True).start()
for _ in range(1500):
    fd = libc.open(buf, os.O_RDONLY)
    if fd >= 0:
        data = os.read(fd, 100)
        os.close(fd)
        if b"RACE" in data:
            print("LEAK", data)
stop = True
print("survived")
"#,
        a = harmless.to_str().unwrap(),
        b = key.to_str().unwrap()
    );
    let (recs, stdout, _code) = run_script(&rules, &[], &script);
    assert!(!stdout.contains("LEAK"), "{stdout}");
    let a = alerts(&recs);
    assert!(!a.is_empty(), "no denial at all: {stdout}");
    // Every alert is a refusal, or the kill at the exit of an open that won
    // the race (then the process is gone and said nothing more).
    for x in &a {
        let e = x["detail"]["enforced"].as_str().unwrap();
        assert!(e == "seccomp" || e == "signal", "{x}");
    }
    if a.iter().any(|x| x["detail"]["enforced"] == "signal") {
        assert!(!stdout.contains("survived"), "{stdout}");
    }
    eprintln!(
        "race: {} refused before they ran, {} caught at the open's exit",
        a.iter()
            .filter(|x| x["detail"]["enforced"] == "seccomp")
            .count(),
        a.iter()
            .filter(|x| x["detail"]["enforced"] == "signal")
            .count()
    );
    let _ = std::fs::remove_dir_all(dir);
}
