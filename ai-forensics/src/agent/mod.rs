//! The agent: ai-forensics as a long-running service on every host of a
//! fleet. It traces what its configuration selects (AI workloads found
//! automatically by default), records into the store, serves Prometheus
//! metrics, ships records to OpenTelemetry, Kafka and syslog, and re-reads
//! its configuration and rules on SIGHUP.
pub mod config;
pub mod install;
