//! Alerts, enforcement actions and in-kernel denials as RFC 5424 syslog
//! messages (the syslog crate's formatter), to a local socket or a remote
//! daemon over UDP or TCP. Events are not sent: syslog is for verdicts.
//!
//! A message: severity from the alert (`warning` for alerts, `alert` for
//! kills and stops), MSGID 1 (alert), 2 (action) or 3 (denied), structured
//! data `[aiforensics@32473 type= rule= action= pid= tree= host=]`, and
//! the record's JSON line as MSG.
use std::{collections::BTreeMap, sync::Arc};

use syslog::{Facility, Formatter5424, Logger, LoggerBackend};

use super::{Deliver, Exported};
use crate::{
    agent::config,
    error::{Error, Result},
};

/// Where messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `udp://HOST:PORT`.
    Udp(String),
    /// `tcp://HOST:PORT`.
    Tcp(String),
    /// `unix:///dev/log`.
    Unix(String),
}

impl Address {
    /// Parses `udp://`, `tcp://` or `unix://` addresses.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Some(a) = s.strip_prefix("udp://") {
            Ok(Self::Udp(a.to_owned()))
        } else if let Some(a) = s.strip_prefix("tcp://") {
            Ok(Self::Tcp(a.to_owned()))
        } else if let Some(p) = s.strip_prefix("unix://") {
            Ok(Self::Unix(p.to_owned()))
        } else {
            Err(format!(
                "'{s}' is not udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"
            ))
        }
    }
}

/// A facility by name.
pub fn facility(name: &str) -> std::result::Result<Facility, String> {
    Ok(match name {
        "user" => Facility::LOG_USER,
        "daemon" => Facility::LOG_DAEMON,
        "auth" => Facility::LOG_AUTH,
        "authpriv" => Facility::LOG_AUTHPRIV,
        "local0" => Facility::LOG_LOCAL0,
        "local1" => Facility::LOG_LOCAL1,
        "local2" => Facility::LOG_LOCAL2,
        "local3" => Facility::LOG_LOCAL3,
        "local4" => Facility::LOG_LOCAL4,
        "local5" => Facility::LOG_LOCAL5,
        "local6" => Facility::LOG_LOCAL6,
        "local7" => Facility::LOG_LOCAL7,
        other => {
            return Err(format!(
                "'{other}' is not user, daemon, auth, authpriv or local0..local7"
            ));
        }
    })
}

/// The syslog exporter.
pub struct Syslog {
    address: Address,
    formatter: Formatter5424,
    host: String,
    logger: Option<Logger<LoggerBackend, Formatter5424>>,
}

impl Syslog {
    /// Prepares the exporter (it connects on first delivery).
    pub fn new(c: &config::Syslog, host: &str) -> Result<Self> {
        let address = Address::parse(&c.address).map_err(Error::usage)?;
        let formatter = Formatter5424 {
            facility: facility(&c.facility).map_err(Error::usage)?,
            hostname: Some(host.to_owned()),
            process: c.app_name.clone(),
            pid: std::process::id(),
        };
        Ok(Self {
            address,
            formatter,
            host: host.to_owned(),
            logger: None,
        })
    }

    fn connect(&self) -> std::result::Result<Logger<LoggerBackend, Formatter5424>, String> {
        let f = self.formatter.clone();
        match &self.address {
            Address::Udp(a) => syslog::udp(f, "0.0.0.0:0", a.as_str()),
            Address::Tcp(a) => syslog::tcp(f, a.as_str()),
            Address::Unix(p) => syslog::unix_custom(f, p),
        }
        .map_err(|e| format!("syslog {:?}: {e}", self.address))
    }
}

/// Structured data, message id and severity of a record.
fn message(r: &Exported, host: &str) -> (u32, BTreeMap<String, BTreeMap<String, String>>, bool) {
    let v: serde_json::Value = serde_json::from_str(&r.json).unwrap_or_default();
    let d = &v["detail"];
    let s = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut p = BTreeMap::new();
    p.insert("type".to_owned(), r.kind.to_owned());
    p.insert("host".to_owned(), host.to_owned());
    for (k, x) in [
        ("rule", &d["rule"]),
        ("action", &d["action"]),
        ("severity", &d["severity"]),
        ("pid", &v["pid"]),
        ("tree", &v["tree"]),
        ("comm", &v["comm"]),
        ("session", &d["session"]),
        ("batch", &d["batch"]),
        ("digest", &d["digest"]),
    ] {
        let val = s(x);
        if !val.is_empty() {
            p.insert(k.to_owned(), val);
        }
    }
    let urgent = matches!(d["action"].as_str(), Some("kill" | "stop")) || r.kind == "denied";
    let id = match r.kind {
        "alert" => 1,
        "action" => 2,
        "anchor" => 4,
        _ => 3,
    };
    (
        id,
        BTreeMap::from([("aiforensics@32473".to_owned(), p)]),
        urgent,
    )
}

impl Deliver for Syslog {
    fn deliver(&mut self, batch: &[Arc<Exported>]) -> std::result::Result<(), String> {
        if self.logger.is_none() {
            self.logger = Some(self.connect()?);
        }
        let host = self.host.clone();
        for (i, r) in batch.iter().enumerate() {
            let (id, sd, urgent) = message(r, &host);
            let Some(logger) = self.logger.as_mut() else {
                break;
            };
            let res = if urgent {
                logger.alert((id, sd, r.json.as_str()))
            } else {
                logger.warning((id, sd, r.json.as_str()))
            };
            if let Err(e) = res {
                self.logger = None;
                // Part of the batch went out: a retry resends all of it, so
                // a receiver can see those messages twice (syslog has no
                // acknowledgement to do better).
                return Err(format!("syslog {:?}: message {i}: {e}", self.address));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_facilities() {
        assert_eq!(
            Address::parse("udp://127.0.0.1:514"),
            Ok(Address::Udp("127.0.0.1:514".into()))
        );
        assert_eq!(
            Address::parse("unix:///dev/log"),
            Ok(Address::Unix("/dev/log".into()))
        );
        assert!(Address::parse("127.0.0.1:514").is_err());
        assert!(facility("local7").is_ok() && facility("kern").is_err());
    }

    #[test]
    fn alert_message_fields() {
        let r = Exported {
            json: r#"{"v":1,"type":"alert","pid":7,"comm":"py] \"x","tree":2,"detail":{"rule":"creds","action":"kill","severity":"critical"}}"#.into(),
            kind: "alert",
            ts_ns: None,
            unix_ns: 0,
            pid: Some(7),
            tid: Some(7),
        };
        let (id, sd, urgent) = message(&r, "h1");
        assert_eq!(id, 1);
        assert!(urgent);
        let p = &sd["aiforensics@32473"];
        assert_eq!(p["rule"], "creds");
        assert_eq!(p["pid"], "7");
        assert_eq!(p["comm"], "py] \"x");
        // The formatter escapes `]`, `"` and `\` in parameter values.
        let f = Formatter5424 {
            facility: Facility::LOG_LOCAL0,
            hostname: Some("h1".into()),
            process: "ai-forensics".into(),
            pid: 1,
        };
        let text = f.format_5424_structured_data(sd);
        assert!(text.contains(r#"comm="py\] \"x""#), "{text}");
    }
}
