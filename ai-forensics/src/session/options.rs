//! A session's resolved options: what the rest of the code sees, whatever
//! the command line looked like.
use std::{ffi::OsString, path::PathBuf, time::Duration};

use crate::{
    syscall::Selection,
    target::{launch::Credentials, select::Selectors},
};

/// What is kept from the syscalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In-kernel aggregates only: lossless and cheapest.
    Count,
    /// Every selected syscall streamed as an event (plus the aggregates).
    Events,
}

/// Format of the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines.
    Json,
    /// strace-like text.
    Text,
}

/// Who to trace.
#[derive(Clone, Debug, Default)]
pub struct TargetSpec {
    /// Explicit process ids (with their descendants and threads).
    pub pids: Vec<u32>,
    /// Everything but ai-forensics itself.
    pub all: bool,
    /// Name/executable/discovery selectors.
    pub selectors: Selectors,
    /// cgroup v2 directories.
    pub cgroups: Vec<PathBuf>,
}

impl TargetSpec {
    /// Whether the set of targets can grow without bound (so the session
    /// runs until stopped rather than until the targets exit).
    #[must_use]
    pub fn open_ended(&self) -> bool {
        self.all
            || self.selectors.watches_exec()
            || self.selectors.discover
            || !self.cgroups.is_empty()
    }
}

/// A command to launch under tracing.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// Run as this user instead of root.
    pub creds: Option<Credentials>,
    /// Refuse denied opens and execs through seccomp user notification.
    pub seccomp: bool,
}

/// Resolved options of a tracing session.
#[derive(Clone, Debug)]
pub struct Options {
    /// Who to trace.
    pub targets: TargetSpec,
    /// Command to launch (`run`).
    pub launch: Option<Launch>,
    /// Count or events.
    pub mode: Mode,
    /// Selected syscalls (events mode).
    pub selection: Selection,
    /// Event stream format, if events are written.
    pub format: Option<Format>,
    /// Where events go (stdout when `None`).
    pub output: Option<PathBuf>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Keep per-process/thread counts.
    pub per_process: bool,
    /// Ring buffer size in bytes.
    pub ring_bytes: u32,
    /// Time syscalls (latency statistics).
    pub latency: bool,
    /// Live table refresh interval.
    pub interval: Duration,
    /// Show the live table (when stderr is a terminal).
    pub live: bool,
    /// Print the final summary.
    pub summary: bool,
    /// Rows in tables.
    pub top: usize,
    /// The store to record into (`None`: `--no-store`).
    pub store: Option<PathBuf>,
    /// Where each sealed batch's digest is appended (`--anchor`).
    pub anchor: Option<PathBuf>,
    /// Keep only this much history in memory until a trigger.
    pub flight_recorder: Option<Duration>,
    /// Rules to evaluate and enforce.
    pub rules: Option<crate::policy::rules::Rules>,
    /// External analyser.
    pub analyser: Option<crate::analyser::client::Config>,
    /// Learned profile to compare the run with.
    pub baseline: Option<crate::ai::baseline::Profile>,
    /// Hash model artefacts at the end (bounded).
    pub hash_artifacts: bool,
    /// CUDA libraries to attach uprobes to (besides those found).
    pub gpu_libs: Vec<PathBuf>,
    /// TLS plaintext capture (`None`: off).
    pub tls: Option<TlsOptions>,
    /// Agent mode: exporters, metrics, reloadable configuration.
    pub agent: Option<AgentSetup>,
}

/// TLS plaintext capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// Bytes captured per call.
    pub capture_bytes: u32,
    /// Files to watch besides those found.
    pub binaries: Vec<PathBuf>,
}

/// What the agent adds to a session.
#[derive(Clone, Debug)]
pub struct AgentSetup {
    /// The configuration it started with.
    pub config: crate::agent::config::Config,
    /// Its file, re-read on SIGHUP.
    pub path: PathBuf,
    /// Host name in exported records.
    pub host: String,
}

impl Options {
    /// Whether the event stream goes to stdout.
    #[must_use]
    pub fn events_on_stdout(&self) -> bool {
        self.format.is_some() && self.output.is_none()
    }
}
