//! The embedded store: replay equals live, tampering is found, a killed
//! recorder leaves a usable database, the flight recorder keeps its window,
//! reports escape what the workload named.
use std::{path::Path, process::Command, time::Duration};

use ai_forensics_integration::{
    af, af_cmd, python, require_root, root, sql_exec, sql_value, tempdir, workload,
};

fn record(db: &Path, args: &[&str]) -> String {
    let mut a = vec!["run", "--no-live", "--store", db.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = af(&a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

#[test]
fn replay_equals_the_live_stream() {
    require_root();
    let dir = tempdir("replay");
    let db = dir.join("s.db");
    let live = dir.join("live.jsonl");
    let models = root().join("models");
    let out = dir.join("m");
    let st = Command::new(python())
        .arg(models.join("train.py"))
        .args(["--epochs", "1", "--steps", "10", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success());
    record(
        &db,
        &[
            "--json",
            "-o",
            live.to_str().unwrap(),
            "--",
            python().to_str().unwrap(),
            models.join("predictions.py").to_str().unwrap(),
            "--model",
            out.join("model.pt").to_str().unwrap(),
        ],
    );
    let replay = af(&["replay", "last", "--store", db.to_str().unwrap()]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let live_text = std::fs::read_to_string(&live).unwrap();
    assert!(live_text.lines().count() > 1000);
    assert_eq!(
        replay.stdout, live_text,
        "replay differs from the live JSON Lines"
    );
    // Text replay prints the same lines the live text output would.
    let text = af(&[
        "replay",
        "last",
        "--format",
        "text",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.contains("openat(AT_FDCWD, \"") && l.contains("model.pt"))
    );
    // Queries.
    let q = af(&[
        "query",
        "last",
        "--syscall",
        "openat",
        "--path",
        "*model.pt",
        "--store",
        db.to_str().unwrap(),
    ]);
    let hits: Vec<&str> = q.stdout.lines().collect();
    assert!(
        !hits.is_empty()
            && hits
                .iter()
                .all(|l| l.contains("model.pt") && l.contains("\"openat\""))
    );
    let sessions = af(&["sessions", "--store", db.to_str().unwrap()]);
    assert!(sessions.stdout.contains("completed"));
    let show = af(&["show", "last", "--store", db.to_str().unwrap()]);
    assert!(show.stdout.contains("openat") && show.stdout.contains("final digest"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tampering_is_found_batch_by_batch() {
    require_root();
    let dir = tempdir("tamper");
    let base = dir.join("base.db");
    let w = workload();
    // Several sealed batches: about three seconds at 20k calls/s.
    record(
        &base,
        &[
            "-e",
            "getppid",
            "--",
            w.to_str().unwrap(),
            "rate",
            "20000",
            "3",
        ],
    );
    let v = af(&["verify", base.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(v.stdout.contains("intact"), "{}", v.stdout);
    let batches: i64 = sql_value(&base, "SELECT count(*) FROM batches")
        .parse()
        .unwrap();
    assert!(batches >= 4, "need several batches, got {batches}");
    let copy = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(&base, &p).unwrap();
        p
    };
    // One event changed.
    let altered = copy("altered.db");
    sql_exec(
        &altered,
        "UPDATE events SET record = replace(record, 'getppid', 'getpid') WHERE id = (SELECT id FROM events WHERE batch = 2 LIMIT 1 OFFSET 3)",
    );
    let v = af(&["verify", altered.to_str().unwrap()]);
    assert_eq!(v.code, 1);
    assert!(
        v.stdout.contains("TAMPERED: batch 2 altered"),
        "{}",
        v.stdout
    );
    // One event deleted.
    let removed = copy("removed.db");
    sql_exec(
        &removed,
        "DELETE FROM events WHERE id = (SELECT id FROM events WHERE batch = 3 LIMIT 1 OFFSET 5)",
    );
    let v = af(&["verify", removed.to_str().unwrap()]);
    assert!(
        v.stdout.contains("TAMPERED: batch 3 removed"),
        "{}",
        v.stdout
    );
    // Two batches swapped (their records exchanged).
    let swapped = copy("swapped.db");
    sql_exec(
        &swapped,
        "UPDATE events SET batch = CASE batch WHEN 2 THEN 3 ELSE 2 END WHERE batch IN (2, 3); UPDATE batches SET batch = -batch WHERE batch IN (2, 3); UPDATE batches SET batch = CASE batch WHEN -2 THEN 3 ELSE 2 END WHERE batch IN (-2, -3)",
    );
    let v = af(&["verify", swapped.to_str().unwrap()]);
    assert_eq!(v.code, 1);
    assert!(v.stdout.contains("TAMPERED: batch 2"), "{}", v.stdout);
    // The last batch dropped entirely: the recorded final digest gives it away.
    let truncated = copy("truncated.db");
    sql_exec(
        &truncated,
        &format!(
            "DELETE FROM events WHERE batch = {batches}; DELETE FROM batches WHERE batch = {batches}"
        ),
    );
    let v = af(&["verify", truncated.to_str().unwrap()]);
    assert_eq!(v.code, 1, "{}", v.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_killed_recorder_leaves_a_usable_store() {
    require_root();
    let dir = tempdir("crash");
    let db = dir.join("s.db");
    let w = workload();
    let mut rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "-e",
            "getppid",
            "--store",
            db.to_str().unwrap(),
            "--",
            w.to_str().unwrap(),
            "rate",
            "50000",
            "30",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    rec.kill().unwrap(); // SIGKILL
    rec.wait().unwrap();
    // The workload runs on unharmed (it was our child; it is now orphaned).
    let integrity = sql_value(&db, "PRAGMA integrity_check");
    assert_eq!(integrity, "ok");
    let v = af(&["verify", db.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    assert!(
        v.stdout.contains("intact up to its last sealed batch"),
        "{}",
        v.stdout
    );
    let stored: u64 = sql_value(&db, "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    // At 50k calls/s for 3 s, all but the last uncommitted batch (<= 0.5 s + queue) are in.
    assert!(stored > 80_000, "only {stored} records survived");
    // The next recording marks the session as ended abnormally.
    record(&db, &["--", "true"]);
    let status = sql_value(&db, "SELECT status FROM sessions WHERE id = 1");
    assert_eq!(status, "aborted");
    let _ = Command::new("pkill")
        .args(["-f", &format!("{} rate 50000 30", w.display())])
        .status();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn flight_recorder_keeps_the_window_before_a_trigger() {
    require_root();
    let dir = tempdir("flight");
    let db = dir.join("s.db");
    let w = workload();
    let rec = af_cmd()
        .args([
            "run",
            "--no-live",
            "-e",
            "getppid",
            "--flight-recorder",
            "2s",
            "--store",
            db.to_str().unwrap(),
            "--",
            w.to_str().unwrap(),
            "rate",
            "2000",
            "8",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = rec.id();
    std::thread::sleep(Duration::from_millis(5000));
    let d = af(&["dump", "--pid", &pid.to_string()]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let o = rec.wait_with_output().unwrap();
    assert!(o.status.success());
    // Kept: about 2 s before the trigger (at 5 s) and the 3 s after it;
    // not the first 3 s.
    let n: u64 = sql_value(&db, "SELECT count(*) FROM events WHERE syscall = 'getppid'")
        .parse()
        .unwrap();
    assert!(
        (7_000..=12_500).contains(&n),
        "{n} getppid records stored, expected about 10000 of 16000"
    );
    let trig = sql_value(&db, "SELECT trigger FROM sessions");
    assert!(trig.contains("SIGUSR1"), "{trig}");
    assert_eq!(af(&["verify", db.to_str().unwrap()]).code, 0);
    // Without a trigger nothing is kept but the session row.
    let db2 = dir.join("s2.db");
    record(
        &db2,
        &[
            "--flight-recorder",
            "1s",
            "-e",
            "getppid",
            "--",
            w.to_str().unwrap(),
            "getppid",
            "100",
        ],
    );
    assert_eq!(sql_value(&db2, "SELECT count(*) FROM events"), "0");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn reports_render_and_escape_hostile_names() {
    require_root();
    let dir = tempdir("report");
    let db = dir.join("s.db");
    let hostile = dir.join("<img src=x onerror=alert(1)>");
    let w = workload();
    record(
        &db,
        &[
            "--mode",
            "events",
            "-e",
            "file,memory",
            "--",
            w.to_str().unwrap(),
            "open",
            hostile.to_str().unwrap(),
        ],
    );
    let html = dir.join("r.html");
    let r = af(&[
        "report",
        "last",
        "--html",
        html.to_str().unwrap(),
        "--store",
        db.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "escaped name missing"
    );
    assert!(!page.contains("<img"), "live markup in the report");
    assert!(!page.contains("<script"), "scripts in the report");
    assert!(page.contains("<svg"), "charts missing");
    // The bundled PyTorch run, rendered by a real browser.
    let models = root().join("models");
    record(
        &db,
        &[
            "--mode",
            "events",
            "--",
            python().to_str().unwrap(),
            models.join("train.py").to_str().unwrap(),
            "--epochs",
            "1",
            "--steps",
            "50",
            "--out",
            dir.join("m").to_str().unwrap(),
        ],
    );
    let html2 = dir.join("torch.html");
    assert_eq!(
        af(&[
            "report",
            "last",
            "--html",
            html2.to_str().unwrap(),
            "--store",
            db.to_str().unwrap()
        ])
        .code,
        0
    );
    let term = af(&["report", "last", "--store", db.to_str().unwrap()]);
    assert!(
        term.stdout.contains("syscalls per second by group") && term.stdout.contains("top files")
    );
    let png = dir.join("torch.png");
    let shot = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1000,1400")
        .arg(format!("file://{}", html2.display()))
        .output()
        .expect("chromium (installed by cargo xtask setup)");
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(
        size > 50_000,
        "screenshot of {size} bytes: the charts did not render"
    );
    let _ = std::fs::remove_dir_all(dir);
}
