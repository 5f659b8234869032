//! Prometheus metrics on `/metrics`.
//!
//! The kernel's per-syscall counters (exact, whatever the mode) and the
//! consumer's per-target counts are published as snapshots; a collector
//! turns the latest snapshot into metric families at scrape time, so a
//! scrape never touches the hot path. Labels are bounded: syscall names (a
//! fixed table), drop causes, exporters, rule names from the rule file, and
//! workload names capped at `max_targets` (the rest are `target="other"`);
//! no paths or pids.
//!
//! Latency histograms use the kernel's own bucket edges, powers of two of a
//! nanosecond (`le` 1.024e-06, 8.192e-06, ... seconds): each count is the
//! exact number of calls shorter than its bound, not an interpolation.
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
};

use prometheus::{
    Encoder as _, Registry, TextEncoder,
    core::{Collector, Desc},
    proto::{self, MetricFamily, MetricType},
};

use crate::{
    aggregate::syscalls::Row,
    error::{Error, Result},
    export::Counts,
};

/// What the consumer counts from the records.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    /// (target, syscall) -> records.
    pub target_syscalls: BTreeMap<(String, String), u64>,
    /// (target, direction) -> bytes.
    pub target_bytes: BTreeMap<(String, &'static str), u64>,
    /// Record type -> records emitted.
    pub records: BTreeMap<&'static str, u64>,
    /// (rule, severity) -> alerts.
    pub alerts: BTreeMap<(String, String), u64>,
    /// Action -> actions taken.
    pub actions: BTreeMap<String, u64>,
    /// Processes traced now.
    pub processes: u64,
}

/// Everything a scrape shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Kernel per-syscall rows (with histogram buckets).
    pub syscalls: Vec<(Row, Vec<u64>)>,
    /// Kernel drops by cause.
    pub drops: Vec<(String, u64)>,
    /// Records the store could not take.
    pub store_dropped: u64,
    /// Exporters.
    pub exporters: Vec<Counts>,
    /// From the records.
    pub flow: Flow,
}

/// Shared between the session (writer) and the collector (reader).
pub type Shared = Arc<Mutex<Snapshot>>;

/// Bucket bounds, in nanoseconds (powers of two: exact kernel bucket edges).
const BOUNDS_NS: [u64; 10] = [
    1 << 10,
    1 << 13,
    1 << 16,
    1 << 19,
    1 << 22,
    1 << 25,
    1 << 28,
    1 << 30,
    1 << 32,
    1 << 34,
];

struct SnapshotCollector {
    shared: Shared,
    host: String,
    descs: Vec<Desc>,
}

const FAMILIES: &[(&str, &str, &[&str])] = &[
    (
        "ai_forensics_syscalls_total",
        "Syscalls made by the traced processes (in-kernel count, exact).",
        &["syscall"],
    ),
    (
        "ai_forensics_syscall_errors_total",
        "Syscalls that returned an error.",
        &["syscall"],
    ),
    (
        "ai_forensics_syscall_duration_seconds",
        "Time from syscall entry to exit (timed calls).",
        &["syscall"],
    ),
    (
        "ai_forensics_target_syscalls_total",
        "Syscall records streamed, per workload (events mode).",
        &["target", "syscall"],
    ),
    (
        "ai_forensics_target_bytes_total",
        "Bytes moved by syscall family, per workload (events mode).",
        &["target", "direction"],
    ),
    (
        "ai_forensics_records_total",
        "Records emitted, by type.",
        &["type"],
    ),
    (
        "ai_forensics_kernel_drops_total",
        "Records or entries the kernel programs could not keep, by cause.",
        &["cause"],
    ),
    (
        "ai_forensics_store_dropped_total",
        "Records the store could not take (its queue was full).",
        &[],
    ),
    (
        "ai_forensics_export_records_total",
        "Records offered to an exporter, by outcome (sent, dropped: queue full, failed: delivery gave up, pending).",
        &["exporter", "outcome"],
    ),
    (
        "ai_forensics_export_up",
        "Whether the exporter's last delivery succeeded.",
        &["exporter"],
    ),
    (
        "ai_forensics_alerts_total",
        "Alerts raised, by rule and severity.",
        &["rule", "severity"],
    ),
    (
        "ai_forensics_actions_total",
        "Enforcement actions taken.",
        &["action"],
    ),
    (
        "ai_forensics_traced_processes",
        "Processes traced now.",
        &[],
    ),
    (
        "ai_forensics_info",
        "Version and host of this agent.",
        &["version", "host"],
    ),
];

fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut l = proto::LabelPair::default();
    l.set_name(name.to_owned());
    l.set_value(value.to_owned());
    l
}

fn metric(labels: &[(&str, &str)]) -> proto::Metric {
    let mut m = proto::Metric::default();
    m.set_label(labels.iter().map(|(k, v)| label(k, v)).collect());
    m
}

fn counter(labels: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut m = metric(labels);
    let mut c = proto::Counter::default();
    c.set_value(v);
    m.set_counter(c);
    m
}

fn gauge(labels: &[(&str, &str)], v: f64) -> proto::Metric {
    let mut m = metric(labels);
    let mut g = proto::Gauge::default();
    g.set_value(v);
    m.set_gauge(g);
    m
}

fn family(name: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let help = FAMILIES.iter().find(|f| f.0 == name).map_or("", |f| f.1);
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// Cumulative counts at [`BOUNDS_NS`] from the kernel's histogram.
fn cumulative(hist: &[u64]) -> Vec<u64> {
    BOUNDS_NS
        .iter()
        .map(|b| {
            hist.iter()
                .enumerate()
                .filter(|(i, _)| ai_forensics_common::hist_bucket_floor(i + 1) <= *b)
                .map(|(_, n)| *n)
                .sum()
        })
        .collect()
}

impl SnapshotCollector {
    fn families(&self, s: &Snapshot) -> Vec<MetricFamily> {
        use MetricType::{COUNTER, GAUGE, HISTOGRAM};
        let mut out = Vec::new();
        let rows = &s.syscalls;
        out.push(family(
            "ai_forensics_syscalls_total",
            COUNTER,
            rows.iter()
                .map(|(r, _)| counter(&[("syscall", &r.syscall)], r.count as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_syscall_errors_total",
            COUNTER,
            rows.iter()
                .map(|(r, _)| counter(&[("syscall", &r.syscall)], r.errors as f64))
                .collect(),
        ));
        let hists = rows
            .iter()
            .filter(|(r, _)| r.timed > 0)
            .map(|(r, hist)| {
                let mut m = metric(&[("syscall", &r.syscall)]);
                let mut h = proto::Histogram::default();
                h.set_sample_count(r.timed);
                h.set_sample_sum(r.total_ns as f64 / 1e9);
                h.set_bucket(
                    BOUNDS_NS
                        .iter()
                        .zip(cumulative(hist))
                        .map(|(b, n)| {
                            let mut k = proto::Bucket::default();
                            k.set_upper_bound(*b as f64 / 1e9);
                            k.set_cumulative_count(n);
                            k
                        })
                        .collect(),
                );
                m.set_histogram(h);
                m
            })
            .collect();
        out.push(family(
            "ai_forensics_syscall_duration_seconds",
            HISTOGRAM,
            hists,
        ));
        let f = &s.flow;
        out.push(family(
            "ai_forensics_target_syscalls_total",
            COUNTER,
            f.target_syscalls
                .iter()
                .map(|((t, sc), n)| counter(&[("target", t), ("syscall", sc)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_target_bytes_total",
            COUNTER,
            f.target_bytes
                .iter()
                .map(|((t, d), n)| counter(&[("target", t), ("direction", d)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_records_total",
            COUNTER,
            f.records
                .iter()
                .map(|(k, n)| counter(&[("type", k)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_kernel_drops_total",
            COUNTER,
            s.drops
                .iter()
                .map(|(c, n)| counter(&[("cause", c)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_store_dropped_total",
            COUNTER,
            vec![counter(&[], s.store_dropped as f64)],
        ));
        let mut ex = Vec::new();
        let mut up = Vec::new();
        for e in &s.exporters {
            let pending = e.offered.saturating_sub(e.sent + e.dropped + e.failed);
            for (o, n) in [
                ("sent", e.sent),
                ("dropped", e.dropped),
                ("failed", e.failed),
                ("pending", pending),
            ] {
                ex.push(counter(&[("exporter", &e.name), ("outcome", o)], n as f64));
            }
            up.push(gauge(
                &[("exporter", &e.name)],
                if e.up { 1.0 } else { 0.0 },
            ));
        }
        out.push(family("ai_forensics_export_records_total", COUNTER, ex));
        out.push(family("ai_forensics_export_up", GAUGE, up));
        out.push(family(
            "ai_forensics_alerts_total",
            COUNTER,
            f.alerts
                .iter()
                .map(|((r, sv), n)| counter(&[("rule", r), ("severity", sv)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_actions_total",
            COUNTER,
            f.actions
                .iter()
                .map(|(a, n)| counter(&[("action", a)], *n as f64))
                .collect(),
        ));
        out.push(family(
            "ai_forensics_traced_processes",
            GAUGE,
            vec![gauge(&[], f.processes as f64)],
        ));
        out.push(family(
            "ai_forensics_info",
            GAUGE,
            vec![gauge(
                &[("version", env!("CARGO_PKG_VERSION")), ("host", &self.host)],
                1.0,
            )],
        ));
        // Families without samples are left out of the exposition.
        out.retain(|f| !f.get_metric().is_empty());
        out
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.shared.lock().map(|s| s.clone()).unwrap_or_default();
        self.families(&s)
    }
}

/// The `/metrics` endpoint.
pub struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Serves `/metrics` on `addr` from `shared`.
    pub fn start(addr: SocketAddr, shared: Shared, host: &str) -> Result<Self> {
        let registry = Registry::new();
        let descs = FAMILIES
            .iter()
            .filter_map(|(name, help, labels)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels.iter().map(|l| (*l).to_owned()).collect(),
                    std::collections::HashMap::new(),
                )
                .ok()
            })
            .collect();
        registry
            .register(Box::new(SnapshotCollector {
                shared,
                host: host.to_owned(),
                descs,
            }))
            .map_err(|e| Error::Runtime(format!("metrics registry: {e}")))?;
        // CPU, memory and file descriptors of ai-forensics itself.
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        let _ = registry.register(Box::new(pc));
        let server = tiny_http::Server::http(addr)
            .map_err(|e| Error::usage(format!("prometheus: cannot listen on {addr}: {e}")))?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let s2 = Arc::clone(&server);
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for req in s2.incoming_requests() {
                    let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                        let mut buf = Vec::new();
                        let enc = TextEncoder::new();
                        let _ = enc.encode(&registry.gather(), &mut buf);
                        let ct = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            enc.format_type().as_bytes(),
                        )
                        .ok();
                        let mut r = tiny_http::Response::from_data(buf);
                        if let Some(h) = ct {
                            r.add_header(h);
                        }
                        r
                    } else {
                        tiny_http::Response::from_data(
                            b"ai-forensics: metrics are on /metrics\n".to_vec(),
                        )
                        .with_status_code(404)
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| Error::io("starting the metrics thread", e))?;
        tracing::info!("prometheus metrics on http://{addr}/metrics");
        Ok(Self {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Direction of the bytes a syscall moved, by family.
#[must_use]
pub fn direction(syscall: &str) -> Option<&'static str> {
    Some(match syscall {
        "read" | "pread64" | "readv" | "preadv" | "preadv2" => "read",
        "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => "written",
        "recvfrom" | "recvmsg" | "recvmmsg" => "received",
        "sendto" | "sendmsg" | "sendmmsg" | "sendfile" => "sent",
        "mmap" => "mapped",
        _ => return None,
    })
}

/// The consumer's side: counts records as they are emitted and publishes
/// them to the shared snapshot a few times a second.
pub struct FlowCounter {
    flow: Flow,
    names: std::collections::HashMap<u32, String>,
    distinct: std::collections::BTreeSet<String>,
    max_targets: usize,
    shared: Shared,
    last: std::time::Instant,
}

impl FlowCounter {
    /// Counts into `shared`, with at most `max_targets` workload names.
    #[must_use]
    pub fn new(shared: Shared, max_targets: usize) -> Self {
        Self {
            flow: Flow::default(),
            names: std::collections::HashMap::new(),
            distinct: std::collections::BTreeSet::new(),
            max_targets,
            shared,
            last: std::time::Instant::now(),
        }
    }

    /// The `target` label of tree `tree`: the name of the first process seen
    /// in it (escaped, at most 32 bytes), or `other` past the cap.
    fn target(&mut self, tree: u32, comm: &[u8]) -> String {
        if let Some(n) = self.names.get(&tree) {
            return n.clone();
        }
        let mut name = crate::decode::escape::escape(comm);
        if name.is_empty() {
            name = "unknown".into();
        }
        if name.len() > 32 {
            let mut cut = 32;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        if !self.distinct.contains(&name) {
            if self.distinct.len() >= self.max_targets {
                name = "other".into();
            } else {
                self.distinct.insert(name.clone());
            }
        }
        if self.names.len() > 100_000 {
            self.names.clear();
        }
        self.names.insert(tree, name.clone());
        name
    }

    /// A streamed syscall record.
    pub fn syscall(&mut self, tree: u32, comm: &[u8], syscall: &str, ret: i64, len_arg: u64) {
        let t = self.target(tree, comm);
        *self
            .flow
            .target_syscalls
            .entry((t.clone(), syscall.to_owned()))
            .or_default() += 1;
        if let Some(dir) = direction(syscall)
            && ret >= 0
        {
            let n = if dir == "mapped" { len_arg } else { ret as u64 };
            *self.flow.target_bytes.entry((t, dir)).or_default() += n;
        }
    }

    /// Any emitted record.
    pub fn record(&mut self, kind: &'static str, json: &str) {
        *self.flow.records.entry(kind).or_default() += 1;
        if kind == "alert" || kind == "action" {
            let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
            let d = &v["detail"];
            let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_owned();
            if kind == "alert" {
                *self
                    .flow
                    .alerts
                    .entry((s(&d["rule"]), s(&d["severity"])))
                    .or_default() += 1;
            } else {
                *self.flow.actions.entry(s(&d["action"])).or_default() += 1;
            }
        }
    }

    /// Whether it is time to publish (every 200 ms).
    #[must_use]
    pub fn due(&self) -> bool {
        self.last.elapsed() >= std::time::Duration::from_millis(200)
    }

    /// Publishes the counts and the exporters' counters.
    pub fn publish(&mut self, processes: u64, exporters: Vec<Counts>) {
        self.last = std::time::Instant::now();
        self.flow.processes = processes;
        if let Ok(mut s) = self.shared.lock() {
            s.flow = self.flow.clone();
            s.exporters = exporters;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_exact_counts_and_bounded_labels() {
        let mut hist = vec![0u64; ai_forensics_common::HIST_BUCKETS];
        hist[ai_forensics_common::hist_bucket(300)] = 9;
        hist[ai_forensics_common::hist_bucket(5_000_000)] = 1;
        let row = Row {
            syscall: "getppid".into(),
            nr: 110,
            count: 10_000,
            errors: 0,
            timed: 10,
            total_ns: 5_002_700,
            min_ns: 300,
            avg_ns: 500_270,
            max_ns: 5_000_000,
            p99_ns: 5_000_000,
            lost: 0,
        };
        let shared: Shared = Arc::new(Mutex::new(Snapshot {
            syscalls: vec![(row, hist)],
            drops: vec![("ringbuf_full".into(), 3)],
            exporters: vec![Counts {
                name: "kafka".into(),
                offered: 10,
                sent: 7,
                dropped: 2,
                failed: 1,
                ..Default::default()
            }],
            ..Default::default()
        }));
        let c = SnapshotCollector {
            shared,
            host: "h".into(),
            descs: Vec::new(),
        };
        let fams = c.collect();
        let mut buf = Vec::new();
        TextEncoder::new().encode(&fams, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("ai_forensics_syscalls_total{syscall=\"getppid\"} 10000"),
            "{text}"
        );
        assert!(text.contains("ai_forensics_syscall_duration_seconds_bucket{syscall=\"getppid\",le=\"0.000001024\"} 9"), "{text}");
        assert!(text.contains("ai_forensics_syscall_duration_seconds_bucket{syscall=\"getppid\",le=\"0.004194304\"} 9"), "{text}");
        assert!(text.contains("ai_forensics_syscall_duration_seconds_bucket{syscall=\"getppid\",le=\"0.033554432\"} 10"), "{text}");
        assert!(
            text.contains("ai_forensics_syscall_duration_seconds_count{syscall=\"getppid\"} 10")
        );
        assert!(text.contains(
            "ai_forensics_export_records_total{exporter=\"kafka\",outcome=\"failed\"} 1"
        ));
        assert!(text.contains("ai_forensics_kernel_drops_total{cause=\"ringbuf_full\"} 3"));
        assert!(text.contains("ai_forensics_info{version=\"") && text.contains(",host=\"h\"} 1"));
    }
}
