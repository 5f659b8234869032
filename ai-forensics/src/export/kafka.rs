//! Kafka: every record as its JSON line (the JSON Lines schema) on one
//! topic, keyed `HOST/TREE` with the host and record type as headers, so a
//! consumer can tell the hosts of a fleet apart and keep each workload's
//! records in order. Produced with acknowledgement from all in-sync
//! replicas (rskafka, a pure-Rust client, on a private single-threaded
//! runtime).
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{TimeZone as _, Utc};
use rskafka::{
    BackoffConfig,
    client::{
        ClientBuilder,
        partition::{Compression, PartitionClient, UnknownTopicHandling},
    },
    record::Record,
};

use super::{Deliver, Exported};
use crate::{
    agent::config,
    error::{Error, Result},
};

/// The Kafka exporter.
pub struct Kafka {
    rt: tokio::runtime::Runtime,
    brokers: Vec<String>,
    topic: String,
    host: String,
    timeout: Duration,
    client: Option<Arc<PartitionClient>>,
}

impl Kafka {
    /// Prepares the exporter; it connects on first delivery (and again
    /// after any failure), so a broker that is down at start is no error.
    pub fn new(c: &config::Kafka, host: &str, timeout: Duration) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the Kafka exporter's runtime", e))?;
        Ok(Self {
            rt,
            brokers: c.brokers.clone(),
            topic: c.topic.clone(),
            host: host.to_owned(),
            timeout,
            client: None,
        })
    }

    async fn connect(
        brokers: Vec<String>,
        topic: String,
        timeout: Duration,
    ) -> std::result::Result<PartitionClient, String> {
        let client = ClientBuilder::new(brokers)
            .client_id("ai-forensics")
            // Give up inside the client after the timeout: the exporter
            // does its own retrying and counting.
            .backoff_config(BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                base: 2.0,
                deadline: Some(timeout),
            })
            .build()
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let controller = client
            .controller_client()
            .map_err(|e| format!("controller: {e}"))?;
        // One partition keeps every host's records in one order; an
        // existing topic is used as it is.
        if let Err(e) = controller
            .create_topic(topic.clone(), 1, 1, timeout.as_millis() as i32)
            .await
        {
            let msg = e.to_string();
            if !msg.contains("TopicAlreadyExists") && !msg.contains("already exists") {
                tracing::debug!("kafka: creating topic {topic}: {msg}");
            }
        }
        client
            .partition_client(topic, 0, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| format!("partition client: {e}"))
    }

    fn record(&self, r: &Exported) -> Record {
        let tree = field_u64(&r.json, "tree").map_or_else(|| "-".to_owned(), |t| t.to_string());
        Record {
            key: Some(format!("{}/{tree}", self.host).into_bytes()),
            value: Some(r.json.as_bytes().to_vec()),
            headers: BTreeMap::from([
                ("host".to_owned(), self.host.as_bytes().to_vec()),
                ("type".to_owned(), r.kind.as_bytes().to_vec()),
            ]),
            timestamp: Utc.timestamp_nanos(r.unix_ns as i64),
        }
    }
}

impl Deliver for Kafka {
    fn deliver(&mut self, batch: &[Arc<Exported>]) -> std::result::Result<(), String> {
        let records: Vec<Record> = batch.iter().map(|r| self.record(r)).collect();
        let (brokers, topic, timeout) = (self.brokers.clone(), self.topic.clone(), self.timeout);
        let client = self.client.clone();
        let r = self.rt.block_on(async move {
            let pc = match client {
                Some(c) => c,
                None => Arc::new(
                    tokio::time::timeout(timeout * 2, Self::connect(brokers, topic, timeout))
                        .await
                        .map_err(|_| "connecting: timed out".to_owned())??,
                ),
            };
            tokio::time::timeout(timeout, pc.produce(records, Compression::NoCompression))
                .await
                .map_err(|_| "produce: timed out".to_owned())?
                .map_err(|e| format!("produce: {e}"))?;
            Ok::<_, String>(pc)
        });
        match r {
            Ok(pc) => {
                self.client = Some(pc);
                Ok(())
            }
            Err(e) => {
                self.client = None;
                Err(format!("kafka {}: {e}", self.brokers.join(",")))
            }
        }
    }
}

/// The first `"name":NUMBER` of a JSON line: the envelope's field, which
/// comes before any detail (a `"` inside a string value is always escaped,
/// so the pattern cannot match inside one).
#[must_use]
pub fn field_u64(json: &str, name: &str) -> Option<u64> {
    let pat = format!(",\"{name}\":");
    let at = json.find(&pat)? + pat.len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields() {
        let j = r#"{"v":1,"seq":3,"exe":"/x\",\"tree\":9","tree":2,"detail":{"tree":5}}"#;
        assert_eq!(field_u64(j, "tree"), Some(2));
        assert_eq!(field_u64(j, "seq"), Some(3));
        assert_eq!(field_u64(r#"{"v":1,"tree":null}"#, "tree"), None);
    }
}
