//! ai-forensics: the flight recorder and kill switch for AI workloads.
//!
//! Data path: `loader` attaches the kernel programs; `target` decides who is
//! traced; `reader` drains the ring buffer; `decode` turns bytes into
//! records; `state` keeps fd and process tables; `aggregate` builds
//! summaries; `output` writes tables, JSON Lines and text; `export` ships
//! records to OpenTelemetry, Kafka and syslog; `metrics` serves Prometheus;
//! `session` runs it all in order; `agent` is the long-running service;
//! `cli` and `app` are the command line.
pub mod agent;
pub mod aggregate;
pub mod ai;
pub mod analyser;
pub mod app;
pub mod cli;
pub mod decode;
pub mod enforce;
pub mod error;
pub mod export;
pub mod fuzz;
pub mod inspect;
pub mod loader;
pub mod metrics;
pub mod output;
pub mod policy;
pub mod reader;
pub mod report;
pub mod session;
pub mod state;
pub mod store;
pub mod syscall;
pub mod target;
pub mod tls;
