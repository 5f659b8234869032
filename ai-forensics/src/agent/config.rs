//! The agent's configuration file (TOML). Every key has a default, so an
//! empty file is a valid configuration: discover AI workloads, record their
//! events into the store, export nothing. `ai-forensics agent
//! --print-config` prints the defaults; `docs/agent.md` explains each key.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default location of the configuration.
pub const DEFAULT_PATH: &str = "/etc/ai-forensics/config.toml";

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name of this host in exported records (default: the kernel's host name).
    pub host: String,
    /// Who to trace.
    pub targets: Targets,
    /// What to record and keep.
    pub recording: Recording,
    /// Verdicts.
    pub policy: Policy,
    /// Diagnostics.
    pub log: Log,
    /// Prometheus metrics endpoint.
    pub prometheus: Prometheus,
    /// OpenTelemetry logs export.
    pub otlp: Otlp,
    /// Kafka export.
    pub kafka: Kafka,
    /// Alerts to syslog.
    pub syslog: Syslog,
}

/// `[targets]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Find AI workloads automatically (processes mapping ML runtimes or
    /// opening model files).
    pub discover: bool,
    /// Processes whose name matches this regex ("" for none).
    pub comm: String,
    /// Processes whose executable path matches this regex ("" for none).
    pub exe: String,
    /// cgroup v2 directories whose members are traced.
    pub cgroups: Vec<PathBuf>,
    /// Every process but ai-forensics itself.
    pub all: bool,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            discover: true,
            comm: String::new(),
            exe: String::new(),
            cgroups: Vec::new(),
            all: false,
        }
    }
}

/// `[recording]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Recording {
    /// `events` (stream the selected syscalls) or `count` (aggregates only).
    pub mode: String,
    /// Syscalls to stream (names and groups, as `--syscalls`).
    pub syscalls: String,
    /// Ring buffer size.
    pub ring_buffer: String,
    /// Store database ("" to keep no store).
    pub store: String,
    /// Keep only this much history until an alert triggers ("" for off).
    pub flight_recorder: String,
    /// Append-only file that gets each sealed batch's digest ("" for none; as `--anchor`).
    pub anchor: String,
    /// Per-process and per-thread counts.
    pub per_process: bool,
    /// Exact latency statistics in count mode.
    pub latency: bool,
    /// Capture TLS plaintext and recognise LLM API calls (events mode; as `--tls-capture`).
    pub tls_capture: bool,
    /// Bytes captured per TLS call (as `--tls-capture-bytes`).
    pub tls_capture_bytes: String,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            mode: "events".into(),
            syscalls: "default".into(),
            ring_buffer: "8M".into(),
            store: crate::store::DEFAULT_PATH.into(),
            flight_recorder: String::new(),
            anchor: String::new(),
            per_process: false,
            latency: false,
            tls_capture: false,
            tls_capture_bytes: "16K".into(),
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Rule file, `builtin`, or "" for none.
    pub rules: String,
    /// External analyser URL ("" for none).
    pub analyser: String,
    /// File with the analyser's shared secret.
    pub analyser_token_file: String,
    /// `open` or `closed`.
    pub analyser_failure: String,
    /// Per-request analyser timeout.
    pub analyser_timeout: String,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rules: String::new(),
            analyser: String::new(),
            analyser_token_file: String::new(),
            analyser_failure: "open".into(),
            analyser_timeout: "2s".into(),
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// error, warn, info, debug or trace (`RUST_LOG` wins when set).
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// `[prometheus]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Prometheus {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Address to listen on (loopback by default).
    pub listen: String,
    /// Distinct workload names exported as `target` labels; the rest are
    /// counted under `target="other"`.
    pub max_targets: usize,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:9464".into(),
            max_targets: 64,
        }
    }
}

/// Delivery settings every exporter shares.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// Records waiting for this exporter at most; past that, records are
    /// dropped for this exporter only, and counted.
    pub queue: usize,
    /// Records per request at most.
    pub batch: usize,
    /// Longest a record waits before its batch leaves.
    pub flush: String,
    /// Per-request timeout.
    pub timeout: String,
    /// How long one batch is retried (with backoff) before it is dropped
    /// and counted.
    pub retry_for: String,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            queue: 65_536,
            batch: 1_000,
            flush: "200ms".into(),
            timeout: "5s".into(),
            retry_for: "60s".into(),
        }
    }
}

/// `[otlp]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Otlp {
    /// Export events and alerts as OTLP logs.
    pub enabled: bool,
    /// `grpc` (endpoint like http://127.0.0.1:4317) or `http` (http/protobuf,
    /// endpoint like http://127.0.0.1:4318; `/v1/logs` is appended).
    pub protocol: String,
    /// Collector endpoint.
    pub endpoint: String,
    /// Extra request headers (e.g. authorization).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Record types exported (`all` or a list: syscall, process, exec,
    /// fork, exit, alert, action, lost, summary).
    pub records: Vec<String>,
    /// Delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
}

impl Default for Otlp {
    fn default() -> Self {
        Self {
            enabled: false,
            protocol: "grpc".into(),
            endpoint: "http://127.0.0.1:4317".into(),
            headers: std::collections::BTreeMap::new(),
            records: vec!["all".into()],
            delivery: Delivery::default(),
        }
    }
}

/// `[kafka]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Kafka {
    /// Export events and alerts to Kafka.
    pub enabled: bool,
    /// Bootstrap brokers (`host:port`).
    pub brokers: Vec<String>,
    /// Topic (created with one partition when missing).
    pub topic: String,
    /// Record types exported (as for `[otlp]`).
    pub records: Vec<String>,
    /// Delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
}

impl Default for Kafka {
    fn default() -> Self {
        Self {
            enabled: false,
            brokers: vec!["127.0.0.1:9092".into()],
            topic: "ai-forensics".into(),
            records: vec!["all".into()],
            delivery: Delivery::default(),
        }
    }
}

/// `[syslog]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Syslog {
    /// Send alerts (and enforcement actions) as RFC 5424 messages.
    pub enabled: bool,
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:///dev/log`.
    pub address: String,
    /// Facility (`user`, `daemon`, `auth`, `local0`..`local7`).
    pub facility: String,
    /// APP-NAME field.
    pub app_name: String,
    /// Delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
}

impl Default for Syslog {
    fn default() -> Self {
        Self {
            enabled: false,
            address: "unix:///dev/log".into(),
            facility: "local0".into(),
            app_name: "ai-forensics".into(),
            delivery: Delivery {
                batch: 100,
                ..Delivery::default()
            },
        }
    }
}

/// Largest configuration file read.
pub const MAX_FILE: u64 = 1 << 20;

impl Config {
    /// Reads and checks a configuration file: bad TOML, unknown keys and
    /// bad values are one-line errors naming the file (and the line).
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::usage(format!("config {}: cannot read: {e}", path.display())))?;
        if meta.len() > MAX_FILE {
            return Err(Error::usage(format!(
                "config {}: {} bytes is too large (at most {MAX_FILE})",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("config {}: cannot read: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::usage(format!("config {}: {e}", path.display())))
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let c: Self = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_owned();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: {msg}")
                }
                None => msg,
            }
        })?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let r = &self.recording;
        if !matches!(r.mode.as_str(), "events" | "count") {
            return Err(format!(
                "recording.mode: '{}' is not events or count",
                r.mode
            ));
        }
        for (name, d) in [
            ("otlp", &self.otlp.delivery),
            ("kafka", &self.kafka.delivery),
            ("syslog", &self.syslog.delivery),
        ] {
            if d.queue == 0 || d.batch == 0 {
                return Err(format!("{name}: queue and batch must be at least 1"));
            }
            for (k, v) in [
                ("flush", &d.flush),
                ("timeout", &d.timeout),
                ("retry_for", &d.retry_for),
            ] {
                humantime::parse_duration(v)
                    .map_err(|e| format!("{name}.{k}: '{v}' is not a duration ({e})"))?;
            }
        }
        if self.otlp.enabled {
            if !matches!(self.otlp.protocol.as_str(), "grpc" | "http") {
                return Err(format!(
                    "otlp.protocol: '{}' is not grpc or http",
                    self.otlp.protocol
                ));
            }
            if !self.otlp.endpoint.starts_with("http://")
                && !self.otlp.endpoint.starts_with("https://")
            {
                return Err(format!(
                    "otlp.endpoint: '{}' is not an http:// or https:// URL",
                    self.otlp.endpoint
                ));
            }
        }
        if self.kafka.enabled {
            if self.kafka.brokers.is_empty() {
                return Err("kafka.brokers: at least one broker is needed".into());
            }
            if self.kafka.topic.is_empty() {
                return Err("kafka.topic: empty".into());
            }
        }
        if self.syslog.enabled {
            crate::export::syslog::Address::parse(&self.syslog.address)
                .map_err(|e| format!("syslog.address: {e}"))?;
            crate::export::syslog::facility(&self.syslog.facility)
                .map_err(|e| format!("syslog.facility: {e}"))?;
        }
        if self.prometheus.enabled {
            self.prometheus
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| {
                    format!(
                        "prometheus.listen: '{}' is not an address like 127.0.0.1:9464",
                        self.prometheus.listen
                    )
                })?;
        }
        for (name, recs) in [("otlp", &self.otlp.records), ("kafka", &self.kafka.records)] {
            for r in recs {
                if !crate::export::RECORD_TYPES.contains(&r.as_str()) && r != "all" {
                    return Err(format!(
                        "{name}.records: '{r}' is not a record type ({})",
                        crate::export::RECORD_TYPES.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// The host name exported records carry.
    #[must_use]
    pub fn host_name(&self) -> String {
        if self.host.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into())
        } else {
            self.host.clone()
        }
    }

    /// The defaults, as a commented TOML file.
    #[must_use]
    pub fn default_text() -> String {
        let body = toml::to_string_pretty(&Self::default()).unwrap_or_default();
        format!(
            "# ai-forensics agent configuration. Every key is optional; the values\n# below are the defaults. See docs/agent.md.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::default();
        assert!(c.targets.discover && !c.prometheus.enabled && !c.kafka.enabled);
        assert_eq!(c.recording.mode, "events");
    }

    #[test]
    fn defaults_round_trip() {
        let text = Config::default_text();
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let e = Config::parse("[recording]\nmode = \"fast\"\n").unwrap_err();
        assert!(e.contains("recording.mode"), "{e}");
        let e = Config::parse("[recordin]\n").unwrap_err();
        assert!(
            e.starts_with("line 1:") && e.contains("unknown field"),
            "{e}"
        );
        let e = Config::parse("\n\n[kafka]\nqueue = \"many\"\n").unwrap_err();
        assert!(
            e.starts_with("line 3:") && e.contains("invalid type"),
            "{e}"
        );
        let e = Config::parse("[otlp]\nenabled = true\nprotocol = \"smtp\"\n").unwrap_err();
        assert!(e.contains("otlp.protocol"), "{e}");
        let e = Config::parse("[kafka]\nflush = \"soon\"\n").unwrap_err();
        assert!(e.contains("kafka.flush"), "{e}");
        let e =
            Config::parse("[prometheus]\nenabled = true\nlisten = \"everywhere\"\n").unwrap_err();
        assert!(e.contains("prometheus.listen"), "{e}");
        let e = Config::parse("[syslog]\nenabled = true\naddress = \"carrier-pigeon://x\"\n")
            .unwrap_err();
        assert!(e.contains("syslog.address"), "{e}");
        let e = Config::parse("[kafka]\nrecords = [\"tweets\"]\n").unwrap_err();
        assert!(e.contains("kafka.records"), "{e}");
        assert!(Config::parse("not toml at all = = =").is_err());
    }
}
