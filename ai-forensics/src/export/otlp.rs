//! OpenTelemetry: events and alerts as OTLP log records, over gRPC (tonic)
//! or HTTP/protobuf, with the types of the official `opentelemetry-proto`.
//!
//! Resource attributes: `service.name`, `service.version`, `host.name`,
//! `host.arch`, `os.type`, `os.version` (kernel release). Each record: the
//! JSON line as body, time of the event, severity (alerts `WARN`, kills and
//! denials `ERROR`, the rest `INFO`), and attributes under the semantic
//! conventions where they exist (`process.pid`, `process.parent_pid`,
//! `thread.id`, `process.executable.name`, `process.executable.path`),
//! `ai_forensics.*` otherwise (`type`, `seq`, `tree`, `syscall`, `rule`).
use std::{sync::Arc, time::Duration};

use opentelemetry_proto::tonic::{
    collector::logs::v1::{ExportLogsServiceRequest, logs_service_client::LogsServiceClient},
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    resource::v1::Resource,
};
use prost::Message as _;
use serde_json::Value as Json;

use super::{Deliver, Exported, unix_now_ns};
use crate::{
    agent::config,
    error::{Error, Result},
};

enum Transport {
    Http {
        agent: ureq::Agent,
        url: String,
    },
    Grpc {
        rt: tokio::runtime::Runtime,
        endpoint: String,
        client: Option<LogsServiceClient<tonic::transport::Channel>>,
    },
}

/// The OTLP exporter.
pub struct Otlp {
    transport: Transport,
    headers: Vec<(String, String)>,
    resource: Resource,
    timeout: Duration,
}

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

fn text(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

impl Otlp {
    /// Prepares the exporter (it connects on first delivery).
    pub fn new(c: &config::Otlp, host: &str, timeout: Duration) -> Result<Self> {
        let transport = match c.protocol.as_str() {
            "http" => Transport::Http {
                agent: ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .build()
                    .into(),
                url: format!("{}/v1/logs", c.endpoint.trim_end_matches('/')),
            },
            _ => Transport::Grpc {
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("starting the OTLP exporter's runtime", e))?,
                endpoint: c.endpoint.clone(),
                client: None,
            },
        };
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let resource = Resource {
            attributes: vec![
                text("service.name", "ai-forensics"),
                text("service.version", env!("CARGO_PKG_VERSION")),
                text("host.name", host),
                text("host.arch", std::env::consts::ARCH),
                text("os.type", "linux"),
                text("os.version", release),
            ],
            ..Default::default()
        };
        Ok(Self {
            transport,
            headers: c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            resource,
            timeout,
        })
    }

    fn request(&self, batch: &[Arc<Exported>]) -> ExportLogsServiceRequest {
        let observed = unix_now_ns();
        let log_records = batch.iter().map(|r| log_record(r, observed)).collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "ai-forensics".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

/// One OTLP log record from an exported record.
fn log_record(r: &Exported, observed: u64) -> LogRecord {
    let v: Json = serde_json::from_str(&r.json).unwrap_or_default();
    let d = &v["detail"];
    let mut attributes = vec![text("ai_forensics.type", r.kind)];
    let int = |key: &str, x: &Json| x.as_i64().map(|n| kv(key, Value::IntValue(n)));
    let string = |key: &str, x: &Json| x.as_str().map(|s| text(key, s));
    attributes.extend(
        [
            int("ai_forensics.seq", &v["seq"]),
            int("ai_forensics.tree", &v["tree"]),
            int("process.pid", &v["pid"]),
            int("process.parent_pid", &v["ppid"]),
            int("thread.id", &v["tid"]),
            string("process.executable.name", &v["comm"]),
            string("process.executable.path", &v["exe"]),
            string("ai_forensics.syscall", &d["syscall"]),
            string("ai_forensics.rule", &d["rule"]),
            string("ai_forensics.action", &d["action"]),
        ]
        .into_iter()
        .flatten(),
    );
    let (severity, severity_text) = match r.kind {
        "alert" if matches!(d["action"].as_str(), Some("kill" | "stop")) => {
            (SeverityNumber::Error, "ERROR")
        }
        "alert" => (SeverityNumber::Warn, "WARN"),
        "denied" | "action" => (SeverityNumber::Error, "ERROR"),
        "lost" => (SeverityNumber::Warn, "WARN"),
        _ => (SeverityNumber::Info, "INFO"),
    };
    LogRecord {
        time_unix_nano: r.unix_ns,
        observed_time_unix_nano: observed,
        severity_number: severity as i32,
        severity_text: severity_text.into(),
        body: Some(AnyValue {
            value: Some(Value::StringValue(r.json.clone())),
        }),
        attributes,
        ..Default::default()
    }
}

impl Deliver for Otlp {
    fn deliver(&mut self, batch: &[Arc<Exported>]) -> std::result::Result<(), String> {
        let req = self.request(batch);
        let timeout = self.timeout;
        match &mut self.transport {
            Transport::Http { agent, url } => {
                let body = req.encode_to_vec();
                let mut post = agent
                    .post(url.as_str())
                    .header("Content-Type", "application/x-protobuf");
                for (k, v) in &self.headers {
                    post = post.header(k.as_str(), v.as_str());
                }
                let resp = post
                    .send(&body[..])
                    .map_err(|e| format!("otlp {url}: {e}"))?;
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("otlp {url}: HTTP {status}"))
                }
            }
            Transport::Grpc {
                rt,
                endpoint,
                client,
            } => {
                let headers = self.headers.clone();
                let ep = endpoint.clone();
                let existing = client.take();
                let r = rt.block_on(async move {
                    let mut c = match existing {
                        Some(c) => c,
                        None => {
                            tokio::time::timeout(timeout, LogsServiceClient::connect(ep.clone()))
                                .await
                                .map_err(|_| "connecting: timed out".to_owned())?
                                .map_err(|e| format!("connecting: {e}"))?
                        }
                    };
                    let mut request = tonic::Request::new(req);
                    request.set_timeout(timeout);
                    for (k, v) in &headers {
                        if let (Ok(k), Ok(v)) = (
                            k.to_ascii_lowercase()
                                .parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(),
                            v.parse(),
                        ) {
                            request.metadata_mut().insert(k, v);
                        }
                    }
                    let resp = tokio::time::timeout(timeout, c.export(request))
                        .await
                        .map_err(|_| "export: timed out".to_owned())?
                        .map_err(|s| format!("export: {} {}", s.code(), s.message()))?;
                    if let Some(p) = resp.into_inner().partial_success
                        && p.rejected_log_records > 0
                    {
                        tracing::warn!(
                            "otlp: collector rejected {} log records: {}",
                            p.rejected_log_records,
                            p.error_message
                        );
                    }
                    Ok::<_, String>(c)
                });
                match r {
                    Ok(c) => {
                        *client = Some(c);
                        Ok(())
                    }
                    Err(e) => Err(format!("otlp {endpoint}: {e}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_attributes_follow_the_conventions() {
        let r = Exported {
            json: r#"{"v":1,"seq":4,"type":"syscall","pid":10,"tid":11,"ppid":1,"comm":"python3","exe":"/usr/bin/python3.11","tree":1,"detail":{"syscall":"openat"}}"#.into(),
            kind: "syscall",
            ts_ns: Some(5),
            unix_ns: 1_700_000_000_000_000_000,
            pid: Some(10),
            tid: Some(11),
        };
        let l = log_record(&r, 7);
        let get = |k: &str| {
            l.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(get("process.pid"), Some(Value::IntValue(10)));
        assert_eq!(get("thread.id"), Some(Value::IntValue(11)));
        assert_eq!(
            get("process.executable.path"),
            Some(Value::StringValue("/usr/bin/python3.11".into()))
        );
        assert_eq!(
            get("ai_forensics.syscall"),
            Some(Value::StringValue("openat".into()))
        );
        assert_eq!(l.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(l.severity_text, "INFO");
        // The request encodes and decodes.
        let c = config::Otlp {
            protocol: "http".into(),
            ..Default::default()
        };
        let o = Otlp::new(&c, "h", Duration::from_secs(1)).unwrap();
        let req = o.request(&[Arc::new(r)]);
        let back = ExportLogsServiceRequest::decode(&req.encode_to_vec()[..]).unwrap();
        assert_eq!(back.resource_logs[0].scope_logs[0].log_records.len(), 1);
    }
}
