//! What TLS plaintext capture costs per call: a Python client's
//! `SSL_write` over loopback (OpenSSL, dynamic), timed inside the process,
//! bare, traced in events mode without capture, and with `--tls-capture`,
//! in alternating rounds. The uprobes' own cost is the difference between
//! the last two.
use std::{collections::BTreeMap, process::Command, time::Duration};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{Ctx, stats};

const CONFIGS: &[(&str, &str)] = &[
    ("bare", "bare"),
    (
        "floor",
        "bpftrace: empty uprobe and uretprobe on SSL_write_ex",
    ),
    ("events", "ai-forensics events mode, no capture"),
    ("tls", "ai-forensics events mode, --tls-capture"),
];

/// Payload sizes per call.
const SIZES: &[usize] = &[64, 4096];

/// The libssl the client maps (from the dynamic linker's cache).
fn libssl() -> Option<String> {
    let o = Command::new("ldconfig").arg("-p").output().ok()?;
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
        let (name, path) = l.split_once("=> ")?;
        name.trim()
            .starts_with("libssl.so.3")
            .then(|| path.trim().to_owned())
    })
}

/// Empty uprobes on the same function, held by bpftrace while `f` runs:
/// what the kernel's uprobe mechanism costs alone.
fn with_floor<T>(lib: &str, f: impl FnOnce() -> T) -> Option<T> {
    let prog = format!("uprobe:{lib}:SSL_write_ex {{}} uretprobe:{lib}:SSL_write_ex {{}}");
    let mut bt = Command::new("bpftrace")
        .args(["-e", &prog])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    // bpftrace attaches within a few seconds.
    std::thread::sleep(Duration::from_secs(4));
    let r = f();
    let _ = bt.kill();
    let _ = bt.wait();
    Some(r)
}

fn ns_per_call(out: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix("BENCH_NS_PER_CALL "))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs the section.
pub fn run(ctx: &Ctx) -> Value {
    match measure(ctx) {
        Ok(v) => v,
        Err(e) => json!({"error": format!("{e:#}")}),
    }
}

fn measure(ctx: &Ctx) -> anyhow::Result<Value> {
    let script = ctx
        .root
        .join("ai-forensics-integration/scripts/tls_bench.py");
    let (cert, key, port_file) = (
        ctx.tmp.join("tls-cert.pem"),
        ctx.tmp.join("tls-key.pem"),
        ctx.tmp.join("tls-port"),
    );
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("openssl (makes the server's certificate)")?;
    anyhow::ensure!(ok.status.success(), "openssl req failed");
    let _ = std::fs::remove_file(&port_file);
    let mut server = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(["server"])
        .arg(&cert)
        .arg(&key)
        .arg(&port_file)
        .spawn()
        .context("starting the TLS sink")?;
    let mut waited = 0;
    while !port_file.exists() && waited < 200 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    let port = std::fs::read_to_string(&port_file)
        .context("the TLS sink's port")?
        .trim()
        .to_owned();
    let n: usize = if ctx.quick { 5_000 } else { 40_000 };
    let mut per: BTreeMap<(usize, &str), Vec<f64>> = BTreeMap::new();
    for _ in 0..ctx.rounds {
        for &size in SIZES {
            for (key, _) in CONFIGS {
                let client = [
                    "/usr/bin/python3".to_owned(),
                    script.display().to_string(),
                    "client".into(),
                    port.clone(),
                    n.to_string(),
                    size.to_string(),
                ];
                if *key == "floor" {
                    let Some(lib) = libssl() else { continue };
                    let o = with_floor(&lib, || {
                        Command::new(&client[0]).args(&client[1..]).output()
                    });
                    if let Some(Ok(o)) = o
                        && let Some(v) = ns_per_call(&String::from_utf8_lossy(&o.stdout))
                    {
                        per.entry((size, key)).or_default().push(v);
                    }
                    continue;
                }
                let mut c = if *key == "bare" {
                    let mut c = Command::new(&client[0]);
                    c.args(&client[1..]);
                    c
                } else {
                    let mut c = Command::new(&ctx.bin);
                    c.args([
                        "run",
                        "--no-live",
                        "--no-summary",
                        "--no-store",
                        "--mode",
                        "events",
                        "--json",
                        "-o",
                    ])
                    .arg(ctx.tmp.join("tls.jsonl"));
                    if *key == "tls" {
                        c.arg("--tls-capture");
                    }
                    c.arg("--").args(&client);
                    c
                };
                let o = c.output().context("running the TLS client")?;
                let out = String::from_utf8_lossy(&o.stdout);
                if let Some(v) = ns_per_call(&out) {
                    per.entry((size, key)).or_default().push(v);
                }
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(ctx.tmp.join("tls.jsonl"));
    let mut rows = Vec::new();
    for &size in SIZES {
        let m = |k: &str| per.get(&(size, k)).map(|v| stats::median(v));
        let (bare, events, tls, floor) = (m("bare"), m("events"), m("tls"), m("floor"));
        rows.push(json!({
            "size": size,
            "bare_ns": bare,
            "floor_ns": floor,
            "uprobes_x_floor": tls.zip(events).zip(floor.zip(bare)).map(|((t, e), (f, b))| (t - e) / (f - b)),
            "events_ns": events,
            "tls_ns": tls,
            "uprobes_ns": tls.zip(events).map(|(t, e)| t - e),
            "tls_x_bare": tls.zip(bare).map(|(t, b)| t / b),
            "samples": per.get(&(size, "tls")).map_or(0, Vec::len),
        }));
    }
    Ok(json!({"calls_per_run": n, "rows": rows}))
}
