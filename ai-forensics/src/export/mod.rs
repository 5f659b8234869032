//! Exporters: the same records as the event stream, shipped to the systems
//! a fleet already runs (an OpenTelemetry collector, Kafka, syslog).
//!
//! Each exporter has its own thread and its own bounded queue. The consumer
//! only ever offers a record to a queue (never waits): when an exporter is
//! down or slow, its queue fills and further records are dropped for that
//! exporter alone, and counted. A batch that cannot be delivered is retried
//! with backoff for a bounded time, then dropped and counted. So for every
//! exporter, at the end: offered = sent + dropped (queue full) + failed.
//!
//! * `otlp`: OTLP logs over gRPC or HTTP/protobuf;
//! * `kafka`: JSON records (the JSON Lines schema) to a topic;
//! * `syslog`: alerts and actions as RFC 5424 messages.
pub mod kafka;
pub mod otlp;
pub mod syslog;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::agent::config::{Config, Delivery};

/// Record types an exporter can be given.
pub const RECORD_TYPES: &[&str] = &[
    "syscall", "process", "exec", "fork", "exit", "alert", "action", "lost", "denied", "summary",
    "tls", "http", "llm", "anchor",
];

/// A record as exporters see it: its JSON line and what they index it by.
#[derive(Debug)]
pub struct Exported {
    /// The JSON Lines record.
    pub json: String,
    /// Record type.
    pub kind: &'static str,
    /// Monotonic time (ns), when the record has one.
    pub ts_ns: Option<u64>,
    /// Wall-clock time (ns since the epoch).
    pub unix_ns: u64,
    /// Process.
    pub pid: Option<u32>,
    /// Thread.
    pub tid: Option<u32>,
}

/// An exporter's counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records offered to the exporter.
    pub offered: AtomicU64,
    /// Records delivered (acknowledged by the other end).
    pub sent: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records dropped after their batch could not be delivered in time.
    pub failed: AtomicU64,
    /// Failed delivery attempts.
    pub errors: AtomicU64,
    /// Whether the last attempt succeeded.
    pub up: AtomicBool,
    /// Last error.
    pub last_error: Mutex<Option<String>>,
}

/// A snapshot of [`Stats`].
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Exporter name.
    pub name: String,
    /// Records offered.
    pub offered: u64,
    /// Delivered.
    pub sent: u64,
    /// Dropped: queue full.
    pub dropped: u64,
    /// Dropped: delivery failed for too long.
    pub failed: u64,
    /// Failed attempts.
    pub errors: u64,
    /// Last attempt succeeded.
    pub up: bool,
    /// Last error.
    pub last_error: Option<String>,
}

/// Delivers one batch; an error means "retry later".
pub trait Deliver: Send {
    /// Sends `batch`; all or nothing.
    fn deliver(&mut self, batch: &[Arc<Exported>]) -> Result<(), String>;
}

/// Resolved delivery settings.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Queue bound.
    pub queue: usize,
    /// Batch bound.
    pub batch: usize,
    /// Longest wait before a partial batch leaves.
    pub flush: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retry budget per batch.
    pub retry_for: Duration,
}

impl Policy {
    /// From the configuration (already checked).
    #[must_use]
    pub fn from(d: &Delivery) -> Self {
        let dur =
            |s: &str, def: u64| humantime::parse_duration(s).unwrap_or(Duration::from_millis(def));
        Self {
            queue: d.queue.max(1),
            batch: d.batch.max(1),
            flush: dur(&d.flush, 200),
            timeout: dur(&d.timeout, 5000),
            retry_for: dur(&d.retry_for, 60_000),
        }
    }
}

/// One running exporter.
pub struct Exporter {
    /// Name (`otlp`, `kafka`, `syslog`).
    pub name: &'static str,
    kinds: Vec<&'static str>,
    tx: Option<SyncSender<Arc<Exported>>>,
    /// Counters.
    pub stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Exporter {
    /// Starts an exporter thread around `deliver`.
    pub fn start(
        name: &'static str,
        kinds: Vec<&'static str>,
        policy: Policy,
        mut deliver: Box<dyn Deliver>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Arc<Exported>>(policy.queue);
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name(format!("export-{name}"))
            .spawn(move || run(name, &rx, &policy, deliver.as_mut(), &st, &sp))?;
        Ok(Self {
            name,
            kinds,
            tx: Some(tx),
            stats,
            thread: Some(thread),
            stop,
        })
    }

    /// Offers a record; never blocks.
    pub fn offer(&self, r: &Arc<Exported>) {
        if !self.kinds.contains(&r.kind) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        self.stats.offered.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(Arc::clone(r)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether this exporter takes records of `kind`.
    #[must_use]
    pub fn wants(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }

    /// Counters now.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let s = &self.stats;
        Counts {
            name: self.name.into(),
            offered: s.offered.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            up: s.up.load(Ordering::Relaxed),
            last_error: s.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }

    /// Stops taking records, delivers what is queued (retrying for at most
    /// `grace`), and returns the final counts.
    pub fn finish(mut self, grace: Duration) -> Counts {
        self.tx = None;
        let deadline = Instant::now() + grace;
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            // Past the grace period the thread gives up its retries and
            // counts what it still holds as failed.
            self.stop.store(true, Ordering::Release);
            let _ = t.join();
        }
        self.counts()
    }
}

/// The exporter thread: batches, delivers, retries, counts.
fn run(
    name: &str,
    rx: &Receiver<Arc<Exported>>,
    p: &Policy,
    deliver: &mut dyn Deliver,
    stats: &Stats,
    stop: &AtomicBool,
) {
    let mut closed = false;
    while !closed {
        let mut batch: Vec<Arc<Exported>> = Vec::with_capacity(p.batch);
        let first_deadline = Instant::now() + p.flush;
        while batch.len() < p.batch {
            let wait = first_deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(if batch.is_empty() { p.flush } else { wait }) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => {
                    if !batch.is_empty() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            if stop.load(Ordering::Acquire) {
                // Shutting down past the grace period: no more attempts.
                stats
                    .failed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                break;
            }
            match deliver.deliver(&batch) {
                Ok(()) => {
                    stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if !stats.up.swap(true, Ordering::Relaxed)
                        && stats.errors.load(Ordering::Relaxed) > 0
                    {
                        tracing::info!("export {name}: delivering again");
                    }
                    break;
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    if stats.up.swap(false, Ordering::Relaxed)
                        || stats.errors.load(Ordering::Relaxed) == 1
                    {
                        tracing::warn!(
                            "export {name}: {e}; retrying, records queue up to the bound then are counted as dropped"
                        );
                    }
                    if let Ok(mut le) = stats.last_error.lock() {
                        *le = Some(e);
                    }
                    if started.elapsed() >= p.retry_for || stop.load(Ordering::Acquire) {
                        stats
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::warn!(
                            "export {name}: {} records dropped after {:?} of failed delivery",
                            batch.len(),
                            started.elapsed()
                        );
                        break;
                    }
                    // Sleep in small steps so a stop is seen quickly.
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Acquire) {
                        thread::sleep(Duration::from_millis(20));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Record types from a configuration list (`all` = every type).
#[must_use]
pub fn kinds(list: &[String]) -> Vec<&'static str> {
    if list.iter().any(|k| k == "all") {
        return RECORD_TYPES.to_vec();
    }
    RECORD_TYPES
        .iter()
        .copied()
        .filter(|t| list.iter().any(|k| k == t))
        .collect()
}

/// Every configured exporter.
#[derive(Default)]
pub struct Exporters {
    /// Running exporters.
    pub list: Vec<Exporter>,
}

impl Exporters {
    /// Starts the exporters `c` enables.
    pub fn start(c: &Config, host: &str) -> crate::error::Result<Self> {
        let io = |what: &str, e: std::io::Error| {
            crate::error::Error::io(format!("starting the {what} exporter"), e)
        };
        let mut list = Vec::new();
        if c.otlp.enabled {
            let d = otlp::Otlp::new(&c.otlp, host, Policy::from(&c.otlp.delivery).timeout)?;
            list.push(
                Exporter::start(
                    "otlp",
                    kinds(&c.otlp.records),
                    Policy::from(&c.otlp.delivery),
                    Box::new(d),
                )
                .map_err(|e| io("otlp", e))?,
            );
        }
        if c.kafka.enabled {
            let d = kafka::Kafka::new(&c.kafka, host, Policy::from(&c.kafka.delivery).timeout)?;
            list.push(
                Exporter::start(
                    "kafka",
                    kinds(&c.kafka.records),
                    Policy::from(&c.kafka.delivery),
                    Box::new(d),
                )
                .map_err(|e| io("kafka", e))?,
            );
        }
        if c.syslog.enabled {
            let d = syslog::Syslog::new(&c.syslog, host)?;
            list.push(
                Exporter::start(
                    "syslog",
                    vec!["alert", "action", "denied", "anchor"],
                    Policy::from(&c.syslog.delivery),
                    Box::new(d),
                )
                .map_err(|e| io("syslog", e))?,
            );
        }
        Ok(Self { list })
    }

    /// Whether any exporter takes records of `kind`.
    #[must_use]
    pub fn wants(&self, kind: &str) -> bool {
        self.list.iter().any(|e| e.wants(kind))
    }

    /// Offers a record to every exporter.
    pub fn offer(&self, r: &Arc<Exported>) {
        for e in &self.list {
            e.offer(r);
        }
    }

    /// Counters of every exporter.
    #[must_use]
    pub fn counts(&self) -> Vec<Counts> {
        self.list.iter().map(Exporter::counts).collect()
    }

    /// Stops every exporter (see [`Exporter::finish`]).
    pub fn finish(self, grace: Duration) -> Vec<Counts> {
        self.list.into_iter().map(|e| e.finish(grace)).collect()
    }
}

/// Wall-clock nanoseconds since the epoch now.
#[must_use]
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        fail_first: u32,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl Deliver for Flaky {
        fn deliver(&mut self, batch: &[Arc<Exported>]) -> Result<(), String> {
            if self.fail_first > 0 {
                self.fail_first -= 1;
                return Err("down".into());
            }
            let mut g = self.got.lock().unwrap();
            g.extend(batch.iter().map(|r| r.json.clone()));
            Ok(())
        }
    }

    fn rec(i: u32, kind: &'static str) -> Arc<Exported> {
        Arc::new(Exported {
            json: format!("{{\"seq\":{i}}}"),
            kind,
            ts_ns: Some(u64::from(i)),
            unix_ns: 0,
            pid: Some(1),
            tid: Some(1),
        })
    }

    fn policy(queue: usize) -> Policy {
        Policy {
            queue,
            batch: 10,
            flush: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn retries_then_delivers_everything_in_order() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let e = Exporter::start(
            "t",
            vec!["syscall"],
            policy(1000),
            Box::new(Flaky {
                fail_first: 2,
                got: Arc::clone(&got),
            }),
        )
        .unwrap();
        for i in 0..100 {
            e.offer(&rec(i, "syscall"));
            e.offer(&rec(i, "summary"));
        }
        let c = e.finish(Duration::from_secs(10));
        assert_eq!((c.offered, c.sent, c.dropped, c.failed), (100, 100, 0, 0));
        assert_eq!(c.errors, 2);
        let g = got.lock().unwrap();
        assert_eq!(g.len(), 100);
        assert_eq!(g[99], "{\"seq\":99}");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let e = Exporter::start(
            "t",
            vec!["syscall"],
            policy(5),
            Box::new(Flaky {
                fail_first: u32::MAX,
                got,
            }),
        )
        .unwrap();
        let t = Instant::now();
        for i in 0..1000 {
            e.offer(&rec(i, "syscall"));
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "offer never waits"
        );
        let c = e.finish(Duration::from_millis(300));
        assert_eq!(c.offered, 1000);
        assert_eq!(c.sent, 0);
        assert_eq!(c.dropped + c.failed, 1000, "{c:?}");
        assert!(c.dropped > 900);
        assert!(!c.up && c.last_error.as_deref() == Some("down"));
    }

    #[test]
    fn kinds_from_config() {
        assert_eq!(kinds(&["all".into()]).len(), RECORD_TYPES.len());
        assert_eq!(
            kinds(&["alert".into(), "syscall".into()]),
            vec!["syscall", "alert"]
        );
    }
}
