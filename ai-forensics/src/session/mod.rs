//! A tracing session, from loading the programs to the final summary.
//!
//! Order matters for exactness: bad input is rejected before anything is
//! loaded; targets are in the kernel table before the programs are attached
//! (`--pid`), or the launched child is registered before it may exec
//! (`run`); at the end the ring buffer is drained completely after the
//! workload is gone, and only then are the kernel's counters read.
pub mod consumer;
pub mod options;
pub mod reload;
pub mod respond;
pub mod setup;
pub mod summary;
mod tls;
mod uring;

use std::{
    io::{self, IsTerminal as _, Write as _},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use signal_hook::{
    consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1},
    iterator::{SignalsInfo, exfiltrator::WithOrigin},
};

use self::{
    consumer::{Consumer, Flight, Msg, Shared, StoreLink},
    options::{Format, Mode, Options},
};
use crate::{
    aggregate::{activity::Activity, syscalls},
    error::{Error, Result},
    loader::Probes,
    output::clock::Clock,
    reader::{self, ReaderStats},
    state::{
        fds::FdTables,
        procs::{Origin, Processes},
    },
    store::{
        Store,
        session::{Begin, Finish},
        writer::{self as store_writer, StoreMsg, WriterStats},
    },
    syscall::table as systable,
    target::launch,
};

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code for ai-forensics itself (the workload's for `run`).
    pub exit_code: u8,
}

/// Messages (of up to 4096 records each) queued for the store writer: a
/// bound on the memory a slow disk can make the recorder hold.
const STORE_QUEUE: usize = 12;
/// Exited processes kept in memory when the store takes the rest.
const SPILL_KEEP_EXITED: usize = 1024;

/// Longest the exporters get at the end to deliver what they hold.
const EXPORT_GRACE: Duration = Duration::from_secs(5);

/// Reader batches queued for the consumer.
const RING_QUEUE: usize = 16;

/// Interval of the store's per-syscall timeline.
const TIMELINE_EVERY: Duration = Duration::from_millis(250);

/// Records kept by the flight recorder at most, whatever its window.
const FLIGHT_MAX_RECORDS: usize = 2_000_000;

/// Why the main loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The traced tree is gone.
    Exited,
    /// Signal, duration, closed output.
    Interrupted,
}

/// Runs a session to its end.
#[expect(
    clippy::too_many_lines,
    reason = "the session's steps read best in order"
)]
pub fn run(opts: &Options) -> Result<Outcome> {
    crate::loader::privilege::check()?;
    setup::check_targets(opts)?;
    if let Some(a) = &opts.analyser {
        crate::analyser::client::probe(a)?;
    }
    // The metrics endpoint binds first: a busy port is a usage error before
    // anything is loaded.
    let metrics_shared: Option<crate::metrics::Shared> = opts
        .agent
        .as_ref()
        .filter(|a| a.config.prometheus.enabled)
        .map(|_| Arc::new(Mutex::new(crate::metrics::Snapshot::default())));
    let mut metrics_server = match (&opts.agent, &metrics_shared) {
        (Some(a), Some(sh)) => Some(crate::metrics::Server::start(
            a.config.prometheus.listen.parse().map_err(|_| {
                Error::usage(format!(
                    "prometheus.listen: '{}' is not an address",
                    a.config.prometheus.listen
                ))
            })?,
            Arc::clone(sh),
            &a.host,
        )?),
        _ => None,
    };
    let sink = setup::open_sink(opts)?;
    let store = opts.store.as_deref().map(Store::create).transpose()?;
    let mut probes = Probes::load(&setup::load_options(opts))?;
    let specs = setup::specs(opts);
    probes.set_specs(&specs)?;
    let deny = setup::deny_rules(opts);
    // Where the security hooks refuse the call, a path match at syscall
    // entry would only kill a process whose call is refused anyway.
    if !deny.is_empty() && probes.lsm.is_err() {
        probes.set_deny(&deny)?;
        tracing::info!("{} in-kernel deny patterns loaded", deny.len());
    }
    let identity_flags = setup::identity_flags(opts.rules.as_ref());
    if identity_flags & ai_forensics_common::config::AI_MARK != 0 {
        probes.set_ai_markers(&crate::target::discover::kernel_markers())?;
    }
    let filter = setup::seccomp_filter(opts, probes.lsm.is_ok())?;
    if probes.lsm.is_ok() {
        tracing::info!(
            "prevention: deny rules refuse opens and execs in the kernel's security hooks (BPF LSM)"
        );
    }
    let identity = match (&opts.rules, identity_flags) {
        (Some(rules), f) if f & !ai_forensics_common::config::AI_MARK != 0 => {
            let id = crate::enforce::identity::Identity::new(rules, probes.identity_maps()?);
            tracing::info!(
                "identity: {} protected files denied by inode",
                id.protected_files()
            );
            Some(id)
        }
        _ => None,
    };
    let protected = identity
        .as_ref()
        .map(crate::enforce::identity::Identity::shared);

    let clock = Clock::new();
    let started = Clock::monotonic_now();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let header = session_detail(opts, &clock);

    // The store's writer thread, with the session row opened first.
    let writer_stats = Arc::new(Mutex::new(WriterStats::default()));
    let mut store_side = None;
    let mut store_link = None;
    if let Some(store) = store {
        let id = store.begin(&Begin {
            header: &header,
            started_ns: started,
            started_at: clock.rfc3339(started),
            flight_recorder: opts
                .flight_recorder
                .map(|d| humantime::format_duration(d).to_string()),
        })?;
        // Bounded: when the store cannot keep up, the consumer counts the
        // records it could not hand over as a gap instead of waiting.
        let (stx, srx) = mpsc::sync_channel::<StoreMsg>(STORE_QUEUE);
        let anchor = anchor_out(opts, &store, &header, started, opts.agent.is_some())?;
        let handle = store_writer::spawn(store, id, srx, Arc::clone(&writer_stats), anchor)
            .map_err(|e| Error::io("starting the store writer", e))?;
        store_link = Some(StoreLink {
            tx: stx.clone(),
            pending: Vec::new(),
            gap: None,
            last_flush: Instant::now(),
            writer: Arc::clone(&writer_stats),
            flight: opts.flight_recorder.map(|w| Flight {
                window_ns: w.as_nanos() as u64,
                buf: std::collections::VecDeque::new(),
                max_records: FLIGHT_MAX_RECORDS,
                triggered: None,
                expired: 0,
            }),
        });
        store_side = Some((id, handle, stx));
    }

    // Batches of up to 4096 records wait here for the consumer: 16 of them
    // bound what a slow consumer makes the recorder hold (a few MB); past
    // that the ring buffer fills and the kernel counts what it drops.
    let (tx, rx) = mpsc::sync_channel::<Msg>(RING_QUEUE);
    // Files for the TLS uprobes, found by the consumer as targets run.
    let (tls_tx, tls_rx) = match opts.tls {
        Some(_) => {
            let (t, r) = mpsc::sync_channel::<tls::Attach>(256);
            (Some(t), Some(r))
        }
        None => (None, None),
    };
    let mut tls_seen = crate::tls::files::Seen::default();
    // With a store, exited processes past the last 1024 go to its
    // processes table as they are forgotten: memory stays flat under any
    // process churn and the store still lists every process.
    let mut procs = Processes::default();
    if store_link.is_some() {
        procs.spill_to_store(SPILL_KEEP_EXITED);
    }
    let mut consumer = Consumer {
        clock,
        procs,
        fds: FdTables::default(),
        activity: Activity::default(),
        selection: opts.selection.clone(),
        mode: opts.mode,
        sink,
        store: store_link,
        selectors: opts.targets.selectors.clone(),
        targets: probes.targets.clone(),
        next_tree: 2,
        cgroup_trees: std::collections::BTreeMap::new(),
        shared: Arc::clone(&shared),
        seq: 0,
        matched: 0,
        track_live: !opts.targets.all,
        pending_exec: std::collections::HashMap::new(),
        overflow: (None, 0),
        policy: (opts.rules.is_some() || opts.analyser.is_some()).then(|| {
            let rules = opts.rules.clone().unwrap_or_default();
            let mut p = respond::Policy::new(
                crate::policy::engine::Engine::new(rules),
                crate::enforce::Enforcer::new(probes.targets.clone()),
            );
            p.identity = identity;
            p
        }),
        analyser: None,
        ai: (opts.mode == Mode::Events).then(|| crate::ai::AiState::new(opts.baseline.clone())),
        exporters: match &opts.agent {
            Some(a) => crate::export::Exporters::start(&a.config, &a.host)?,
            None => crate::export::Exporters::default(),
        },
        retired: Arc::new(Mutex::new(Vec::new())),
        tls: tls_tx.map(|attach| tls::TlsLink {
            tracker: crate::tls::Tracker::default(),
            attach,
        }),
        flow: metrics_shared.as_ref().map(|sh| {
            crate::metrics::FlowCounter::new(
                Arc::clone(sh),
                opts.agent
                    .as_ref()
                    .map_or(64, |a| a.config.prometheus.max_targets),
            )
        }),
    };
    consumer.header(header.clone());
    let initial = setup::initial_targets(opts, &mut probes)?;
    let mut tree = initial.next_tree;
    consumer.next_tree = tree;
    consumer.cgroup_trees = initial.cgroup_trees;
    // A launched workload gets its own cgroup v2: stop and kill act on it as one.
    let run_cgroup = opts.launch.as_ref().and_then(|_| {
        match crate::enforce::cgroup::create(std::process::id(), tree) {
            Ok(cg) => Some(cg),
            Err(e) => {
                tracing::info!("no cgroup for the workload ({e}); stop and kill will use signals");
                None
            }
        }
    });
    if let (Some(cg), Some(policy)) = (&run_cgroup, &mut consumer.policy) {
        policy.enforcer.cgroups.insert(tree, cg.dir().to_path_buf());
    }
    let analyser_stats = Arc::new(Mutex::new(crate::analyser::client::Stats::default()));
    let mut analyser_thread = None;
    if let Some(cfg) = &opts.analyser {
        let (atx, arx) = mpsc::sync_channel::<Vec<String>>(64);
        let (etx, erx) = mpsc::sync_channel(1024);
        analyser_thread = Some(
            crate::analyser::client::spawn(cfg.clone(), arx, etx, Arc::clone(&analyser_stats))
                .map_err(|e| Error::io("starting the analyser link", e))?,
        );
        consumer.analyser = Some(respond::AnalyserLink {
            tx: atx,
            pending: Vec::new(),
            events: erx,
            failure: cfg.failure,
            stopped: Vec::new(),
            dropped: 0,
        });
    }
    for i in initial.procs {
        consumer.handle(Msg::Observe {
            pid: i.pid,
            tree: i.tree,
            origin: i.origin,
            reason: i.reason,
            generation: i.generation,
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reader_stats = Arc::new(ReaderStats::default());
    let ring = probes
        .events
        .take()
        .ok_or_else(|| Error::Runtime("ring buffer already taken".into()))?;
    // Verdicts need records promptly; otherwise a few ms of batching is free.
    let poll_ms = if opts.rules.is_some() || opts.analyser.is_some() {
        1
    } else {
        10
    };
    let reader = reader::spawn(
        ring,
        tx.clone(),
        Arc::clone(&stop),
        Arc::clone(&reader_stats),
        poll_ms,
    )
    .map_err(|e| Error::io("starting the reader thread", e))?;
    // A closed output (`| head`) ends the session only when the stream was
    // all the recording was for; a store, exporters, metrics, rules, an
    // analyser or in-kernel deny rules keep it going.
    let output_is_everything = consumer.store.is_none()
        && consumer.exporters.list.is_empty()
        && consumer.flow.is_none()
        && consumer.policy.is_none()
        && consumer.analyser.is_none()
        && deny.is_empty();
    let consumer_thread = thread::Builder::new()
        .name("consumer".into())
        .spawn(move || consumer.run(&rx))
        .map_err(|e| Error::io("starting the consumer thread", e))?;
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGUSR1, SIGHUP])
        .map_err(|e| Error::io("installing signal handlers", e))?;

    // Launch after attaching: fork, register, then let it exec.
    let mut child: Option<u32> = None;
    let mut supervisor = None;
    let attach = probes.attach();
    // CUDA uprobes go in before the workload starts, so its first call counts.
    if attach.is_ok() && opts.mode == Mode::Events {
        let _ = tx.send(gpu_setup(opts, &mut probes));
    }
    // So are the TLS ones, on the files known before anything runs.
    if let (Ok(()), Some(t)) = (&attach, &opts.tls) {
        let _ = tx.send(tls::attach_known(t, &mut probes, &mut tls_seen));
    }
    if let Some(l) = &opts.launch
        && attach.is_ok()
    {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let mut gated = launch::fork_gated(&l.argv, l.creds.as_ref(), filter.as_ref())?;
        let pid = gated.pid;
        if let (Some(listener), Some(protected)) = (gated.listener.take(), protected.clone()) {
            let report = tx.clone();
            let started =
                crate::enforce::supervisor::Supervisor::start(crate::enforce::supervisor::Config {
                    listener,
                    protected,
                    targets: probes.targets.clone(),
                    launched: pid,
                    report: Box::new(move |d| {
                        let _ = report.send(Msg::Denied(Box::new(d)));
                    }),
                });
            match started {
                Ok(s) => supervisor = Some(s),
                Err(e) => {
                    gated.abort();
                    return Err(Error::io("starting the seccomp supervisor", e));
                }
            }
            tracing::info!(
                "prevention: {} of the launched tree are decided before they run (seccomp)",
                filter
                    .as_ref()
                    .map_or(String::new(), |f| f.calls.join(", "))
            );
        }
        let generation = match probes.targets.add_launched(pid, tree) {
            Ok(g) => g,
            Err(e) => {
                gated.abort();
                return Err(e);
            }
        };
        if let Some(cg) = &run_cgroup
            && let Err(e) = crate::enforce::cgroup::enter(cg.dir(), pid)
        {
            tracing::warn!("{e}; stop and kill will use signals");
        }
        tree += 1;
        let _ = tx.send(Msg::Observe {
            pid,
            tree: tree - 1,
            origin: Origin::Launched,
            reason: Some("run".into()),
            generation,
        });
        gated.open()?;
        child = Some(pid);
    }
    let ctl = tx;
    if let Err(e) = attach {
        stop.store(true, Ordering::Release);
        drop(ctl);
        let _ = reader.join();
        let _ = consumer_thread.join();
        // The session row says why nothing was recorded.
        if let Some((id, handle, stx)) = store_side {
            drop(stx);
            if let Ok(store) = handle.join() {
                store.fail(id, &e.to_string());
            }
        }
        drop(run_cgroup);
        return Err(e);
    }
    tracing::info!("tracing; {} syscall specs loaded", specs.len());

    let live_table = opts.live && io::stderr().is_terminal();
    let open_ended = opts.targets.open_ended();
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut child_status: Option<i32> = None;
    let mut interrupted = 0u32;
    let mut next_tick = Instant::now() + opts.interval;
    let mut prev_stats = probes.read_stats()?;
    let mut prev_sample = prev_stats.clone();
    let mut next_sample = Instant::now() + TIMELINE_EVERY;
    let mut empty_checks = 0u32;
    let mut agent_config = opts
        .agent
        .as_ref()
        .map(|a| a.config.clone())
        .unwrap_or_default();
    let mut next_metrics = Instant::now();
    let end = loop {
        match (&tls_rx, &opts.tls) {
            // Files to watch are attached as soon as they are asked for: a
            // process's first TLS call may come quickly.
            (Some(rx), Some(t)) => {
                let wait = Duration::from_millis(20);
                if let Some(m) = tls::serve(rx, t, &mut probes, &mut tls_seen, wait) {
                    let _ = ctl.send(m);
                }
            }
            _ => thread::sleep(Duration::from_millis(20)),
        }
        for info in signals.pending() {
            if info.signal == SIGUSR1 {
                let _ = ctl.send(Msg::Trigger("SIGUSR1 (ai-forensics dump)".into()));
                continue;
            }
            if info.signal == SIGHUP {
                match &opts.agent {
                    Some(a) => reload::apply(a, &mut agent_config, &mut probes, &ctl),
                    None => tracing::info!("SIGHUP: nothing to reload outside agent mode"),
                }
                continue;
            }
            interrupted += 1;
            let from_process = info.process.is_some_and(|p| p.pid != 0);
            if let (Some(pid), 1, true) = (child, interrupted, from_process) {
                // Sent to ai-forensics by a process (not the terminal, which
                // signals the whole foreground group): pass it on.
                // SAFETY: forwarding a signal to our own child.
                unsafe { libc::kill(pid as i32, info.signal) };
            }
        }
        if interrupted > 0 && (child.is_none() || interrupted > 1) {
            break End::Interrupted;
        }
        if let Some(pid) = child {
            if reap_tree(pid, &mut child_status) {
                break End::Exited;
            }
        } else if !open_ended {
            let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
            if sh.live == 0 && sh.seen_any {
                empty_checks += 1;
                if empty_checks >= 3 {
                    break End::Exited;
                }
            } else {
                empty_checks = 0;
            }
        }
        if (output_is_everything && shared.lock().is_ok_and(|s| s.output_closed))
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break End::Interrupted;
        }
        if let Some((_, _, stx)) = &store_side
            && Instant::now() >= next_sample
        {
            // The store's timeline: per-syscall counts every 250 ms.
            next_sample += TIMELINE_EVERY;
            let now = probes.read_stats()?;
            let rows = syscalls::rows(&syscalls::delta(&now, &prev_sample))
                .into_iter()
                .map(|r| (r.syscall, r.count, r.errors))
                .collect();
            let _ = stx.try_send(StoreMsg::Timeline {
                ts_ns: Clock::monotonic_now(),
                rows,
            });
            prev_sample = now;
        }
        if let Some(sh) = &metrics_shared
            && Instant::now() >= next_metrics
        {
            next_metrics = Instant::now() + Duration::from_millis(500);
            let store_dropped = shared.lock().map(|s| s.store_dropped).unwrap_or(0);
            metrics_update(sh, &probes, store_dropped)?;
        }
        if live_table && Instant::now() >= next_tick {
            next_tick += opts.interval;
            let now = probes.read_stats()?;
            let delta = syscalls::delta(&now, &prev_stats);
            let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
            summary::live(opts, &delta, &now, &sh, Clock::monotonic_now() - started);
            prev_stats = now;
        }
    };

    // Everything the kernel submitted is drained before the summary.
    let prevention = supervisor.map(crate::enforce::supervisor::Supervisor::finish);
    stop.store(true, Ordering::Release);
    drop(ctl);
    reader
        .join()
        .map_err(|_| Error::Runtime("reader thread panicked".into()))?;
    let mut consumer = consumer_thread
        .join()
        .map_err(|_| Error::Runtime("consumer thread panicked".into()))?;
    // The analyser link sends what it still has, then ends.
    consumer.flush_analyser();
    let analyser_dropped = consumer.analyser.as_ref().map_or(0, |a| a.dropped);
    consumer.analyser = None;
    if let Some(t) = analyser_thread {
        let _ = t.join();
    }
    drop(run_cgroup);
    let ended = Clock::monotonic_now();
    let mut stats = probes.read_stats()?;
    if let Some(p) = &prevention {
        // Refused calls never reached the entry tracepoint (seccomp runs
        // before it); their exit, with EPERM, counted their error.
        for (nr, n) in &p.denied_calls {
            if let Some(s) = stats.get_mut(*nr as usize) {
                s.count += n;
            }
        }
    }
    if let Some((_, _, stx)) = &store_side {
        let rows = syscalls::rows(&syscalls::delta(&stats, &prev_sample))
            .into_iter()
            .map(|r| (r.syscall, r.count, r.errors))
            .collect();
        let _ = stx.send(StoreMsg::Timeline { ts_ns: ended, rows });
    }
    let drops = probes.read_drops()?;
    let uring = probes.read_uring()?;
    let lsm = probes.lsm.clone();
    let counting = probes.exit_count.clone();
    let per_thread = if opts.per_process {
        summary::read_per_thread(&probes)
    } else {
        Vec::new()
    };
    let lost_by_tree = (0..ai_forensics_common::MAX_TREES)
        .filter_map(|t| {
            probes
                .read_lost_for_tree(t)
                .ok()
                .filter(|n| *n > 0)
                .map(|n| (t, n))
        })
        .collect();
    drop(probes);
    let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
    let mut totals = summary::per_process(&per_thread);
    summary::mark_shared(&mut totals, consumer.procs.iter());
    let mut report = summary::Report {
        opts,
        stats: &stats,
        drops,
        shared: &sh,
        reader_records: reader_stats.records.load(Ordering::Relaxed),
        per_thread: &per_thread,
        per_process: &totals,
        elapsed_ns: ended - started,
        child_status,
        lost_by_tree,
        store: None,
        store_failed: writer_stats.lock().map_or(0, |w| w.failed),
        uring,
        counting,
        policy: policy_summary(&consumer, &analyser_stats, analyser_dropped).map(|mut v| {
            v["prevention"] = match (&lsm, &prevention) {
                (Ok(()), _) => json!({"mechanism": "lsm"}),
                (Err(_), Some(p)) => prevention_json(p),
                (Err(why), None) => json!({"mechanism": "signal", "why_not_lsm": why}),
            };
            v
        }),
        ai: {
            let counts: std::collections::BTreeMap<String, u64> = syscalls::rows(&stats)
                .into_iter()
                .map(|r| (r.syscall, r.count))
                .collect();
            let procs = &consumer.procs;
            consumer.ai.as_mut().map(|a| {
                if opts.hash_artifacts {
                    a.artefacts.hash_all();
                }
                a.json(procs, &counts)
            })
        },
    };
    // Serialised once: the stream's record and the store's session row.
    let detail = serde_json::value::to_raw_value(&report.json(&consumer))
        .map_err(|e| Error::Runtime(format!("serialising the summary: {e}")))?;
    consumer.write_record("summary", &detail);
    if let Some(s) = &mut consumer.sink {
        let _ = s.out.flush();
    }
    let trigger = consumer
        .store
        .as_ref()
        .and_then(|s| s.flight.as_ref())
        .and_then(|f| f.triggered.clone());
    consumer.close_store();

    // The writer seals its last batch; the session row is completed.
    if let Some((id, handle, stx)) = store_side {
        drop(stx);
        let mut store = handle
            .join()
            .map_err(|_| Error::Runtime("store writer panicked".into()))?;
        let ws = writer_stats.lock().map(|w| w.clone()).unwrap_or_default();
        // The last batches' anchors go out before the exporters finish.
        consumer.export_anchors(ws.anchors.clone());
        let rows = syscalls::rows(&stats);
        let status = if end == End::Exited {
            "completed"
        } else {
            "interrupted"
        };
        let fin = store.finish(
            id,
            &Finish {
                status,
                ended_ns: ended,
                ended_at: consumer.clock.rfc3339(ended),
                exit_status: summary::status_json(child_status),
                summary: detail.get(),
                rows: &rows,
                procs: &consumer.procs,
                spilled: consumer.procs.spilled,
                per_process: &totals,
                activity: (opts.mode == Mode::Events).then_some(&consumer.activity),
                final_digest: hex::encode(ws.last_digest),
                batches: ws.batches,
                events: ws.events,
                trigger,
            },
        );
        if let Err(e) = &fin {
            tracing::error!("completing the session in the store: {e}");
        }
        report.store = Some(summary::StoreReport {
            path: store.path.display().to_string(),
            session: id,
            batches: ws.batches,
            events: ws.events,
            final_digest: hex::encode(ws.last_digest),
            dropped: sh.store_dropped,
            failed: ws.failed,
            error: ws
                .error
                .clone()
                .or_else(|| fin.err().map(|e| e.to_string())),
            flight_untriggered: opts.flight_recorder.is_some() && ws.events == 0,
        });
    }
    if let Some(m) = metrics_server.take() {
        m.stop();
    }
    // Exporters deliver what they still hold (bounded), then report.
    if !consumer.exporters.list.is_empty() || consumer.retired.lock().is_ok_and(|r| !r.is_empty()) {
        let finished = std::mem::take(&mut consumer.exporters).finish(EXPORT_GRACE);
        let mut all = consumer
            .retired
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        all.extend(finished);
        for c in &all {
            tracing::info!(
                "export {}: {} offered, {} sent, {} dropped (queue full), {} failed{}",
                c.name,
                c.offered,
                c.sent,
                c.dropped,
                c.failed,
                c.last_error
                    .as_deref()
                    .map_or_else(String::new, |e| format!("; last error: {e}"))
            );
        }
        if let Some(sh) = &metrics_shared
            && let Ok(mut s) = sh.lock()
        {
            s.exporters = all;
        }
    }
    if let Some(err) = &sh.output_error {
        return Err(Error::Runtime(format!("writing events: {err}")));
    }
    if !sh.output_closed && opts.summary {
        let text = report.text(&consumer);
        let r = if opts.events_on_stdout() {
            io::stderr().write_all(text.as_bytes())
        } else {
            io::stdout().write_all(text.as_bytes())
        };
        if let Err(e) = r
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            return Err(Error::io("writing the summary", e));
        }
    }
    let exit_code = match child_status {
        Some(st) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st) as u8,
        Some(st) if libc::WIFSIGNALED(st) => 128 + libc::WTERMSIG(st) as u8,
        _ => 0,
    };
    Ok(Outcome { exit_code })
}

/// Attaches the CUDA uprobes to the libraries named with `--gpu-lib`, those
/// the dynamic linker knows, and those the initial targets map.
fn gpu_setup(opts: &Options, probes: &mut Probes) -> Msg {
    use crate::ai::gpu;
    let mut libs: Vec<String> = opts
        .gpu_libs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    libs.extend(gpu::find_libraries());
    for pid in &opts.targets.pids {
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for l in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
                let base = l.rsplit('/').next().unwrap_or("");
                if (base.starts_with("libcudart.so") || base.starts_with("libcuda.so"))
                    && !libs.iter().any(|x| x == l)
                {
                    libs.push(l.to_owned());
                }
            }
        }
    }
    let mut attached = Vec::new();
    for lib in &libs {
        match probes.attach_cuda(std::path::Path::new(lib), gpu::FUNCTIONS) {
            Ok(f) if !f.is_empty() => attached.push(format!("{lib} ({})", f.join(", "))),
            Ok(_) => tracing::info!("{lib}: no CUDA function to watch"),
            Err(e) => tracing::warn!("CUDA uprobes on {lib}: {e}"),
        }
    }
    let devices = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/dri", "/dev/kfd"]
        .iter()
        .any(|d| std::path::Path::new(d).exists());
    let note = match (attached.is_empty(), devices) {
        (true, false) => Some("no GPU device and no CUDA library on this machine: GPU accounting has nothing to watch".to_owned()),
        (true, true) => Some("GPU devices present but no CUDA library found (use --gpu-lib): ioctls only".to_owned()),
        _ => None,
    };
    Msg::Gpu(attached, note)
}

/// Alerts, actions and their latencies, and what the analyser link did.
/// Publishes the kernel's counters to the metrics snapshot.
fn metrics_update(sh: &crate::metrics::Shared, probes: &Probes, store_dropped: u64) -> Result<()> {
    let stats = probes.read_stats()?;
    let drops = probes.read_drops()?;
    let rows = syscalls::rows(&stats)
        .into_iter()
        .map(|r| {
            let hist = stats
                .get(r.nr as usize)
                .map(|s| s.hist.to_vec())
                .unwrap_or_default();
            (r, hist)
        })
        .collect();
    let drops = summary::DROP_NAMES
        .iter()
        .zip(drops.iter())
        .filter(|(n, _)| !n.starts_with("reserved"))
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect();
    if let Ok(mut s) = sh.lock() {
        s.syscalls = rows;
        s.drops = drops;
        s.store_dropped = store_dropped;
    }
    Ok(())
}

fn policy_summary(
    c: &Consumer,
    analyser: &Arc<Mutex<crate::analyser::client::Stats>>,
    analyser_dropped: u64,
) -> Option<serde_json::Value> {
    let p = c.policy.as_ref()?;
    let mut lat: Vec<String> = Vec::new();
    let mut by: std::collections::BTreeMap<&str, Vec<u64>> = std::collections::BTreeMap::new();
    for (a, ns) in &p.latencies {
        by.entry(a.as_str()).or_default().push(*ns);
    }
    for (a, v) in &by {
        let max = v.iter().max().copied().unwrap_or(0);
        lat.push(format!(
            "{a}: {} times, event to done max {:.3} ms",
            v.len(),
            max as f64 / 1e6
        ));
    }
    let a = analyser.lock().map(|s| s.clone()).unwrap_or_default();
    Some(json!({
        "alerts": p.alerts,
        "actions": p.actions,
        "latency": lat.join(", "),
        "latencies_ns": p.latencies.iter().map(|(a, n)| json!({"action": a, "ns": n})).collect::<Vec<_>>(),
        "analyser": (a.batches + a.failures + a.refused > 0).then(|| json!({"batches": a.batches, "records": a.records, "dropped": a.dropped + analyser_dropped, "failures": a.failures, "verdicts": a.verdicts, "refused": a.refused, "last_error": a.last_error})),
    }))
}

/// What the seccomp supervisor did, for the summary.
fn prevention_json(p: &crate::enforce::supervisor::Stats) -> serde_json::Value {
    json!({
        "mechanism": "seccomp",
        "notified": p.notified,
        "allowed": p.allowed,
        "denied": p.denied,
        "unresolved": p.unresolved,
        "gone": p.gone,
        "decision_ns_mean": p.total_ns.checked_div(p.notified).unwrap_or(0),
        "decision_ns_max": p.max_ns,
    })
}

/// Reaps exited children (as subreaper, orphans of the tree too); records
/// the launched command's status. True when no child is left.
fn reap_tree(pid: u32, status_out: &mut Option<i32>) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child with a local status.
        let r = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
        if r > 0 {
            if r as u32 == pid {
                *status_out = Some(status);
            }
            continue;
        }
        return r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
    }
}

fn session_detail(opts: &Options, clock: &Clock) -> serde_json::Value {
    let (host, kernel) = uname();
    json!({
        "tool": "ai-forensics",
        "version": env!("CARGO_PKG_VERSION"),
        "schema": crate::output::json::SCHEMA_VERSION,
        "host": host,
        "kernel": kernel,
        "arch": std::env::consts::ARCH,
        "clock_offset_ns": clock.offset_ns.to_string(),
        "mode": match opts.mode { Mode::Count => "count", Mode::Events => "events" },
        "format": opts.format.map(|f| match f { Format::Json => "json", Format::Text => "text" }),
        "syscalls": opts.selection.numbers.iter().map(|n| systable::display_name(*n)).collect::<Vec<_>>(),
        "command": opts.launch.as_ref().map(|l| l.argv.iter().map(|a| crate::decode::escape::escape(a.as_encoded_bytes())).collect::<Vec<_>>()),
        "pids": opts.targets.pids,
        "all": opts.targets.all,
        "ring_buffer_bytes": opts.ring_bytes,
        "latency": opts.latency,
        "flight_recorder_ns": opts.flight_recorder.map(|d| d.as_nanos() as u64),
        "kernel_features": crate::loader::features::probe()
            .into_iter()
            .map(|f| (f.name, f.available))
            .collect::<std::collections::BTreeMap<_, _>>(),
    })
}

/// Host name and kernel release.
fn uname() -> (String, String) {
    // SAFETY: uname fills a zeroed local utsname.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&raw mut u) } != 0 {
        return (String::new(), String::new());
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.nodename), s(&u.release))
}

/// Where sealed batches' digests go besides the store: the `--anchor` file
/// (opened for appending, created 0600) and, when exporters run, the
/// exporters.
fn anchor_out(
    opts: &Options,
    store: &crate::store::Store,
    header: &serde_json::Value,
    started_ns: u64,
    export: bool,
) -> Result<store_writer::AnchorOut> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = match &opts.anchor {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| Error::usage(format!("--anchor {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut context = serde_json::Map::new();
    context.insert(
        "store".into(),
        std::fs::canonicalize(&store.path)
            .unwrap_or_else(|_| store.path.clone())
            .display()
            .to_string()
            .into(),
    );
    context.insert("host".into(), header["host"].clone());
    context.insert("boot_id".into(), crate::store::boot_id().into());
    context.insert("started_ns".into(), started_ns.into());
    Ok(store_writer::AnchorOut {
        file,
        export,
        context,
    })
}
