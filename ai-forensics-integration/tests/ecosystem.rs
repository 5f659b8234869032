//! The agent in a fleet: Prometheus, OpenTelemetry, Kafka, syslog, two
//! hosts in network namespaces, and a sink that goes down. Real servers on
//! loopback (installed by `cargo xtask test`), exact counts.
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use ai_forensics_integration::{
    require_root,
    services::{self, Broker, OtlpReceiver, Proc, Rsyslog, free_port, http_get, wait_for},
    tempdir, workload,
};
use serde_json::Value;

/// A configuration tracing processes named `comm`, events mode, no store
/// unless given, plus `extra` TOML.
fn config(dir: &Path, comm: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "host = \"test-host\"\n[targets]\ndiscover = false\ncomm = \"{comm}\"\n\
             [recording]\nmode = \"events\"\nsyscalls = \"getppid\"\nstore = \"\"\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// Runs the workload and waits for it: `spin-getppid N 300` spins 300 ms
/// first, so the agent has adopted it before the counted calls.
fn run_workload(args: &[&str]) -> u32 {
    let mut c = Command::new(workload());
    c.args(args);
    let mut child = c.spawn().expect("workload");
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

/// `export NAME: a offered, b sent, c dropped (queue full), d failed`.
fn export_line(log: &str, name: &str) -> (u64, u64, u64, u64) {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("export {name}: ")) && l.contains(" offered"))
        .unwrap_or_else(|| panic!("no final export line for {name}: {log}"));
    let nums: Vec<u64> = line
        .split(&format!("export {name}: "))
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn prometheus_shows_the_exact_counts_of_a_known_workload() {
    require_root();
    let dir = tempdir("prom");
    let port = free_port();
    let cfg = config(
        &dir,
        "^workload$",
        &format!("[prometheus]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let agent = services::agent(&cfg, &[]);
    let addr = format!("127.0.0.1:{port}");
    run_workload(&["spin-getppid", "10000", "300"]);
    let mut text = String::new();
    wait_for(
        "10000 getppid records and the kernel count in /metrics",
        Duration::from_secs(15),
        || {
            text = http_get(&addr, "/metrics").unwrap_or_default();
            // The in-kernel counts are sampled once a second: wait for
            // both the stream and the kernel's count to be in.
            metric(
                &text,
                "ai_forensics_target_syscalls_total{target=\"workload\",syscall=\"getppid\"}",
            ) == Some(10_000.0)
                && metric(&text, "ai_forensics_syscalls_total{syscall=\"getppid\"}")
                    == Some(10_000.0)
        },
    );
    // The kernel's own count is exact too (only the workload was traced).
    assert_eq!(
        metric(&text, "ai_forensics_syscalls_total{syscall=\"getppid\"}"),
        Some(10_000.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "ai_forensics_kernel_drops_total{cause=\"ringbuf_full\"}"
        ),
        Some(0.0)
    );
    assert!(
        metric(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0.0),
        "agent RSS"
    );
    assert!(
        metric(&text, "process_cpu_seconds_total").is_some(),
        "agent CPU"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("ai_forensics_info{") && l.contains("host=\"test-host\"")),
        "{text}"
    );
    assert!(text.contains("# TYPE ai_forensics_syscall_duration_seconds histogram"));
    // Labels are bounded: no paths, no pids.
    assert!(!text.contains("pid=") && !text.contains("path="));
    assert!(http_get(&addr, "/other").is_some_and(|b| b.contains("/metrics")));
    let (code, _) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(dir);
}

fn otlp_roundtrip(protocol: &str) {
    let dir = tempdir(&format!("otlp-{protocol}"));
    let out = dir.join("received.jsonl");
    let rx = OtlpReceiver::start(&out, 0, 0);
    let port = if protocol == "grpc" { rx.grpc } else { rx.http };
    let cfg = config(
        &dir,
        "^workload$",
        &format!(
            "[otlp]\nenabled = true\nprotocol = \"{protocol}\"\nendpoint = \"http://127.0.0.1:{port}\"\nrecords = [\"syscall\", \"exec\", \"alert\"]\n"
        ),
    );
    let agent = services::agent(&cfg, &[]);
    let pid = run_workload(&["spin-getppid", "2000", "300"]);
    let count = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"ai_forensics.syscall\": \"getppid\""))
            .count()
    };
    wait_for("2000 OTLP log records", Duration::from_secs(20), || {
        count() >= 2000
    });
    let (code, log) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0, "{log}");
    let (offered, sent, dropped, failed) = export_line(&log, "otlp");
    assert_eq!((dropped, failed), (0, 0), "{log}");
    assert_eq!(offered, sent);
    let text = std::fs::read_to_string(&out).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        recs.len() as u64,
        sent,
        "the receiver got exactly what was sent"
    );
    let getppid: Vec<&Value> = recs
        .iter()
        .filter(|r| r["attributes"]["ai_forensics.syscall"] == "getppid")
        .collect();
    assert_eq!(getppid.len(), 2000, "exactly the workload's calls");
    let r = getppid[0];
    assert_eq!(r["transport"], protocol);
    assert_eq!(r["attributes"]["process.pid"], pid);
    assert_eq!(r["attributes"]["ai_forensics.type"], "syscall");
    assert!(
        r["attributes"]["process.executable.path"]
            .as_str()
            .unwrap()
            .ends_with("/workload")
    );
    assert_eq!(r["resource"]["host.name"], "test-host");
    assert_eq!(r["resource"]["service.name"], "ai-forensics");
    assert_eq!(r["resource"]["os.type"], "linux");
    assert_eq!(r["severity"], "INFO");
    // The body is the JSON Lines record itself.
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["detail"]["syscall"], "getppid");
    assert_eq!(body["pid"], pid);
    let ns = r["time_unix_nano"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        ns <= now && now - ns < 120_000_000_000,
        "event time is wall-clock time"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn otlp_grpc_receives_exactly_the_events() {
    require_root();
    otlp_roundtrip("grpc");
}

#[test]
fn otlp_http_receives_exactly_the_events() {
    require_root();
    otlp_roundtrip("http");
}

/// Every message of `topic` as (key, host header, value), read back from
/// offset 0 with a Kafka client.
fn consume(broker: &str, topic: &str) -> Vec<(String, String, Value)> {
    use rskafka::client::{ClientBuilder, partition::UnknownTopicHandling};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ClientBuilder::new(vec![broker.to_owned()])
            .build()
            .await
            .expect("kafka client");
        let pc = client
            .partition_client(topic.to_owned(), 0, UnknownTopicHandling::Error)
            .await
            .expect("partition client");
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let (recs, high) = pc
                .fetch_records(offset, 1..5_000_000, 500)
                .await
                .expect("fetch");
            for r in &recs {
                let key = String::from_utf8_lossy(r.record.key.as_deref().unwrap_or_default())
                    .into_owned();
                let host = r
                    .record
                    .headers
                    .get("host")
                    .map(|h| String::from_utf8_lossy(h).into_owned())
                    .unwrap_or_default();
                let value = serde_json::from_slice(r.record.value.as_deref().unwrap_or_default())
                    .unwrap_or(Value::Null);
                out.push((key, host, value));
                offset = r.offset + 1;
            }
            if recs.is_empty() || offset >= high {
                break;
            }
        }
        out
    })
}

#[test]
fn kafka_consumer_reads_back_exactly_the_events() {
    require_root();
    let dir = tempdir("kafka");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _broker = Broker::start(&addr, &addr);
    let cfg = config(
        &dir,
        "^workload$",
        &format!("[kafka]\nenabled = true\nbrokers = [\"{addr}\"]\ntopic = \"aif-events\"\n"),
    );
    let agent = services::agent(&cfg, &[]);
    let pid = run_workload(&["spin-getppid", "3000", "300"]);
    let (code, log) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0, "{log}");
    let (offered, sent, dropped, failed) = export_line(&log, "kafka");
    assert_eq!((offered, dropped, failed), (sent, 0, 0), "{log}");
    let msgs = consume(&addr, "aif-events");
    assert_eq!(
        msgs.len() as u64,
        sent,
        "the topic holds exactly what was sent: {log}"
    );
    let getppid: Vec<&(String, String, Value)> = msgs
        .iter()
        .filter(|(_, _, m)| m["detail"]["syscall"] == "getppid")
        .collect();
    assert_eq!(getppid.len(), 3000);
    assert!(
        getppid
            .iter()
            .all(|(_, h, m)| m["pid"] == pid && m["type"] == "syscall" && h == "test-host")
    );
    // Keyed by host and workload tree.
    let key = &getppid[0].0;
    assert!(
        key.starts_with("test-host/") && key[10..].parse::<u32>().is_ok(),
        "{key}"
    );
    assert!(
        getppid.iter().all(|(k, _, _)| k == key),
        "one workload, one key"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn syslog_receives_the_alert_in_rfc5424() {
    require_root();
    let dir = tempdir("syslog");
    let rs = Rsyslog::start(&dir);
    let secret = dir.join("model-secret.txt");
    std::fs::write(&secret, "x").unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "version: 1\nrules:\n  - name: secret-read\n    severity: high\n    action: alert\n    match:\n      syscall: [openat]\n      path: \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let cfg = config(
        &dir,
        "^workload$",
        &format!(
            "[policy]\nrules = \"{}\"\n[syslog]\nenabled = true\naddress = \"udp://127.0.0.1:{}\"\nfacility = \"local3\"\n",
            rules.display(),
            rs.port
        ),
    );
    let agent = services::agent(&cfg, &[]);
    run_workload(&["spin-open", "300", secret.to_str().unwrap()]);
    let mut text = String::new();
    wait_for(
        "the alert in rsyslog's file",
        Duration::from_secs(15),
        || {
            text = std::fs::read_to_string(&rs.out).unwrap_or_default();
            text.contains("secret-read")
        },
    );
    let line = text.lines().find(|l| l.contains("secret-read")).unwrap();
    // <PRI>1 TIMESTAMP HOST APP PID MSGID [SD] MSG; local3 (19) * 8 + warning (4) = 156.
    assert!(line.starts_with("<156>1 "), "{line}");
    let f: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!(
        (f[2], f[3], f[5]),
        ("test-host", "ai-forensics", "1"),
        "{line}"
    );
    assert_eq!(f[6], "[aiforensics@32473", "{line}");
    assert!(line.contains("rule=\"secret-read\""));
    let json = &line[line.find("] {").unwrap() + 2..];
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["type"], "alert");
    // Only verdicts go to syslog, not events.
    assert!(!text.contains("\"syscall\",\"ts_ns\""));
    let (code, log) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0, "{log}");
    drop(rs);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_sink_down_for_10s_costs_only_its_own_records_and_they_are_counted() {
    require_root();
    let dir = tempdir("down");
    let out = dir.join("received.jsonl");
    let http = free_port();
    let rx = OtlpReceiver::start(&out, 0, http);
    let kport = free_port();
    let kaddr = format!("127.0.0.1:{kport}");
    let _broker = Broker::start(&kaddr, &kaddr);
    let db = dir.join("store.db");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "host = \"h\"\n[targets]\ndiscover = false\ncomm = \"^workload$\"\n\
             [recording]\nmode = \"events\"\nsyscalls = \"getppid\"\nstore = \"{}\"\n\
             [otlp]\nenabled = true\nprotocol = \"http\"\nendpoint = \"http://127.0.0.1:{http}\"\n\
             records = [\"syscall\"]\nqueue = 500\nbatch = 100\nretry_for = \"2s\"\ntimeout = \"1s\"\n\
             [kafka]\nenabled = true\nbrokers = [\"{kaddr}\"]\ntopic = \"t\"\nrecords = [\"syscall\"]\n",
            db.display()
        ),
    )
    .unwrap();
    let agent = services::agent(&cfg, &[]);
    // 1000 calls a second for 20 s; the OTLP receiver is down from 5 s to 15 s.
    let started = Instant::now();
    let mut w = Command::new(workload())
        .args(["rate", "1000", "20", "300"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    drop(rx);
    std::thread::sleep(Duration::from_secs(10));
    let _rx2 = OtlpReceiver::start(&out, 0, http);
    assert!(w.wait().unwrap().success());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(23),
        "the workload was slowed down: {took:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let (code, log) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0, "{log}");
    // The sink that was down: every record it was offered is sent, dropped
    // or failed, and the receiver holds exactly the sent ones.
    let (offered, sent, dropped, failed) = export_line(&log, "otlp");
    assert_eq!(offered, 20_000, "{log}");
    assert_eq!(sent + dropped + failed, offered, "{log}");
    assert!(dropped + failed >= 5_000, "the outage cost records: {log}");
    let received = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"ai_forensics.syscall\": \"getppid\""))
        .count() as u64;
    assert_eq!(received, sent, "{log}");
    // The other sinks lost nothing.
    let (k_offered, k_sent, k_dropped, k_failed) = export_line(&log, "kafka");
    assert_eq!(
        (k_offered, k_sent, k_dropped, k_failed),
        (20_000, 20_000, 0, 0),
        "{log}"
    );
    let r = ai_forensics_integration::af(&[
        "query",
        "last",
        "--syscall",
        "getppid",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert_eq!(
        r.stdout.lines().count(),
        20_000,
        "the store has every record"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `ip` with `args`, panicking with its output on failure.
fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Fleet;

impl Drop for Fleet {
    fn drop(&mut self) {
        for ns in ["aif-a", "aif-b"] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", "aif-br"]).status();
    }
}

#[test]
fn two_hosts_in_network_namespaces_ship_to_one_broker() {
    require_root();
    let dir = tempdir("fleet");
    let fleet = Fleet;
    drop(Fleet);
    ip(&["link", "add", "aif-br", "type", "bridge"]);
    ip(&["addr", "add", "10.201.0.1/24", "dev", "aif-br"]);
    ip(&["link", "set", "aif-br", "up"]);
    for (ns, addr) in [("aif-a", "10.201.0.2/24"), ("aif-b", "10.201.0.3/24")] {
        let (host_end, ns_end) = (format!("{ns}-h"), format!("{ns}-n"));
        ip(&["netns", "add", ns]);
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ]);
        ip(&["link", "set", &ns_end, "netns", ns]);
        ip(&["link", "set", &host_end, "master", "aif-br"]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&["-n", ns, "addr", "add", addr, "dev", &ns_end]);
        ip(&["-n", ns, "link", "set", &ns_end, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    let port = free_port();
    let broker_addr = format!("10.201.0.1:{port}");
    let _broker = Broker::start(&format!("0.0.0.0:{port}"), &broker_addr);
    // Each host runs its own copy of the workload, under its own name.
    let mut agents = Vec::new();
    for (ns, host) in [("aif-a", "host-a"), ("aif-b", "host-b")] {
        let wl = dir.join(format!("wl-{host}"));
        std::fs::copy(workload(), &wl).unwrap();
        let cfg = dir.join(format!("{host}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "host = \"{host}\"\n[targets]\ndiscover = false\ncomm = \"^wl-{host}$\"\n\
                 [recording]\nmode = \"events\"\nsyscalls = \"getppid\"\nstore = \"\"\n\
                 [kafka]\nenabled = true\nbrokers = [\"{broker_addr}\"]\ntopic = \"fleet\"\nrecords = [\"syscall\"]\n"
            ),
        )
        .unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .arg(ai_forensics_integration::bin())
            .args(["agent", "--config"])
            .arg(&cfg);
        agents.push((ns, host, wl, services::agent_cmd(c)));
    }
    for (i, (ns, _, wl, _)) in agents.iter().enumerate() {
        let n = (1000 * (i + 1)).to_string();
        let st = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(wl)
            .args(["spin-getppid", &n, "300"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut logs = Vec::new();
    for (_, host, _, p) in agents {
        let (code, log) = Proc::stop(p, libc::SIGTERM);
        assert_eq!(code, 0, "{host}: {log}");
        logs.push(log);
    }
    let msgs = consume(&broker_addr, "fleet");
    // Separated by host: the host header and the key's first part.
    let by_host = |h: &str| {
        msgs.iter()
            .filter(|(k, host, m)| {
                host == h && k.starts_with(&format!("{h}/")) && m["detail"]["syscall"] == "getppid"
            })
            .inspect(|(_, _, m)| assert_eq!(m["comm"], format!("wl-{h}"), "only its own workload"))
            .count()
    };
    assert_eq!(by_host("host-a"), 1000, "{logs:?}");
    assert_eq!(by_host("host-b"), 2000, "{logs:?}");
    drop(fleet);
    let _ = std::fs::remove_dir_all(dir);
}

fn rule_file(path: &Path, name: &str, target: &Path) {
    std::fs::write(
        path,
        format!(
            "version: 1\nrules:\n  - name: {name}\n    action: alert\n    match:\n      syscall: [openat]\n      path: \"{}\"\n",
            target.display()
        ),
    )
    .unwrap();
}

#[test]
fn sighup_reloads_rules_without_losing_an_event() {
    require_root();
    let dir = tempdir("reload");
    let (f1, f2) = (dir.join("one.bin"), dir.join("two.bin"));
    let rules = dir.join("rules.yaml");
    rule_file(&rules, "first", &f1);
    let db = dir.join("store.db");
    let cfg = dir.join("config.toml");
    let text = format!(
        "[targets]\ndiscover = false\ncomm = \"^workload$\"\n[recording]\nmode = \"events\"\nsyscalls = \"getppid,openat\"\nstore = \"{}\"\n[policy]\nrules = \"{}\"\n",
        db.display(),
        rules.display()
    );
    std::fs::write(&cfg, &text).unwrap();
    let mut agent = services::agent(&cfg, &[]);
    // A steady workload runs across both reloads: 2000 calls a second for 6 s.
    let mut steady = Command::new(workload())
        .args(["rate", "2000", "6", "300"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    run_workload(&["spin-open", "300", f1.to_str().unwrap()]);
    let hup = |p: &Proc| {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(p.child.id() as i32, libc::SIGHUP) };
    };
    // A broken file changes nothing.
    std::fs::write(&cfg, "[recording\nmode = ").unwrap();
    hup(&agent);
    agent.wait_output("keeping the running configuration", Duration::from_secs(10));
    // New rules: the first rule is gone, the second one fires.
    std::fs::write(&cfg, &text).unwrap();
    rule_file(&rules, "second", &f2);
    hup(&agent);
    agent.wait_output("reload: ", Duration::from_secs(10));
    agent.wait_output("applied (1 rules)", Duration::from_secs(10));
    run_workload(&[
        "spin-open",
        "300",
        f1.to_str().unwrap(),
        f2.to_str().unwrap(),
    ]);
    assert!(steady.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = agent.stop(libc::SIGTERM);
    assert_eq!(code, 0, "{log}");
    let alerts: Vec<&str> = log.lines().filter(|l| l.contains("matched rule")).collect();
    assert_eq!(alerts.len(), 2, "{log}");
    assert!(
        alerts[0].contains("'first'") && alerts[1].contains("'second'"),
        "{alerts:?}"
    );
    // Every call of the steady workload is in the store: nothing was lost
    // while the configuration changed.
    let r = ai_forensics_integration::af(&[
        "query",
        "last",
        "--syscall",
        "getppid",
        "--store",
        db.to_str().unwrap(),
    ]);
    assert_eq!(r.stdout.lines().count(), 12_000, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn agent_configuration_errors_are_one_line_and_install_writes_a_unit() {
    require_root();
    let dir = tempdir("agentcfg");
    let bad = dir.join("bad.toml");
    for (text, want) in [
        ("[recording]\nmode = \"fast\"\n", "recording.mode"),
        ("\n\n[kafka]\nqueue = \"x\"\n", "line 3: invalid type"),
        ("[targets]\ndiscover = false\n", "selects nothing"),
        (
            "[prometheus]\nenabled = true\nlisten = \"nowhere\"\n",
            "prometheus.listen",
        ),
        ("[nope]\n", "unknown field"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let r = ai_forensics_integration::af(&["agent", "--config", bad.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{text}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(want), "{text}: {}", r.stderr);
    }
    let r = ai_forensics_integration::af(&[
        "agent",
        "--config",
        dir.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--print-config"), "{}", r.stderr);
    // The printed defaults are a valid configuration.
    let defaults = ai_forensics_integration::af(&["agent", "--print-config"]);
    std::fs::write(&bad, &defaults.stdout).unwrap();
    let r = ai_forensics_integration::af(&["agent", "--check", "--config", bad.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // install / uninstall under a root directory.
    let root = dir.join("root");
    let r = ai_forensics_integration::af(&["install", "--root", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/ai-forensics.service")).unwrap();
    assert!(
        unit.contains(" agent --config /etc/ai-forensics/config.toml"),
        "{unit}"
    );
    assert!(root.join("etc/ai-forensics/config.toml").is_file());
    let r = ai_forensics_integration::af(&["uninstall", "--root", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !root
            .join("etc/systemd/system/ai-forensics.service")
            .exists()
    );
    let _ = std::fs::remove_dir_all(dir);
}
