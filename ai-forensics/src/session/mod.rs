//! A tracing session, from loading the programs to the final summary.
//!
//! Order matters for exactness: bad input is rejected before anything is
//! loaded; targets are in the kernel table before the programs are attached
//! (`--pid`), or the launched child is registered before it may exec
//! (`run`); at the end the ring buffer is drained completely after the
//! workload is gone and only then are the kernel's counters read.
pub mod consumer;
pub mod options;
pub mod summary;

use std::{
    collections::BTreeSet,
    fs::File,
    io::{self, BufWriter, IsTerminal as _, Write as _},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use ai_forensics_common::{SyscallSpec, config as cfg, spec};
use serde_json::json;
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::{SignalsInfo, exfiltrator::WithOrigin},
};

use self::{
    consumer::{Consumer, Msg, Shared, Sink},
    options::{Format, Mode, Options},
};
use crate::{
    aggregate::{activity::Activity, syscalls},
    error::{Error, Result},
    loader::{LoadOptions, Probes},
    output::clock::Clock,
    reader::{self, ReaderStats},
    state::{
        fds::FdTables,
        procs::{Origin, Processes},
    },
    syscall::{signature, table as systable},
    target::{launch, procfs},
};

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code for ai-forensics itself (the workload's for `run`).
    pub exit_code: u8,
}

/// Capacity of the in-flight table: threads of targets inside a syscall at once.
const INFLIGHT_ENTRIES: u32 = 65_536;
/// Capacity of the per-thread statistics table.
const PROC_STATS_ENTRIES: u32 = 131_072;

fn load_options(opts: &Options) -> LoadOptions {
    let mut flags = 0;
    if opts.targets.all {
        flags |= cfg::ALL;
    }
    if opts.latency {
        flags |= cfg::TIMING;
    }
    if opts.per_process {
        flags |= cfg::PER_PROC;
    }
    if !opts.targets.cgroups.is_empty() {
        flags |= cfg::CGROUP;
    }
    if opts.targets.selectors.watches_exec() {
        flags |= cfg::WATCH_EXEC;
    }
    if opts.targets.selectors.discover {
        flags |= cfg::WATCH_OPEN | cfg::WATCH_EXEC;
    }
    if opts.mode == Mode::Events {
        flags |= cfg::EVENTS;
    }
    LoadOptions {
        flags,
        ring_bytes: opts.ring_bytes,
        inflight: INFLIGHT_ENTRIES,
        proc_stats: if opts.per_process {
            PROC_STATS_ENTRIES
        } else {
            0
        },
    }
}

/// Capture specs for every syscall number the kernel must know about.
fn specs(opts: &Options) -> Vec<(u32, SyscallSpec)> {
    let mut out = Vec::new();
    let captured = if opts.mode == Mode::Events {
        opts.selection.captured()
    } else {
        BTreeSet::new()
    };
    for (nr, name) in systable::all() {
        let mut sp = if captured.contains(&nr) {
            signature::lookup(name).map_or(
                SyscallSpec {
                    flags: spec::EVENT,
                    ..SyscallSpec::NONE
                },
                signature::capture_spec,
            )
        } else {
            SyscallSpec::NONE
        };
        if opts.targets.selectors.discover
            && matches!(name, "open" | "openat" | "openat2" | "creat")
        {
            let sig = signature::lookup(name).map(signature::capture_spec);
            sp.flags |= spec::WATCH;
            if let Some(s) = sig {
                sp.str0_arg = s.str0_arg;
            }
            if !captured.contains(&nr) {
                // Discovery needs the path; the target's own opens are not streamed.
                sp.flags &= !spec::EVENT;
            }
        }
        if sp != SyscallSpec::NONE {
            out.push((nr, sp));
        }
    }
    out
}

/// Validates the targets before anything is loaded.
fn check_targets(opts: &Options) -> Result<()> {
    let me = std::process::id();
    for &pid in &opts.targets.pids {
        if pid == 0 {
            return Err(Error::usage("--pid: 0 is not a process"));
        }
        if pid == me {
            return Err(Error::usage(format!(
                "--pid {pid}: that is ai-forensics itself, which never traces itself"
            )));
        }
        if !procfs::exists(pid) {
            return Err(Error::usage(format!("--pid {pid}: no such process")));
        }
    }
    for cg in &opts.targets.cgroups {
        if !cg.join("cgroup.procs").is_file() {
            return Err(Error::usage(format!(
                "--cgroup {}: not a cgroup v2 directory (no cgroup.procs)",
                cg.display()
            )));
        }
    }
    Ok(())
}

fn open_sink(opts: &Options) -> Result<Option<Sink>> {
    let Some(format) = opts.format else {
        return Ok(None);
    };
    let out: Box<dyn io::Write + Send> = match &opts.output {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| Error::usage(format!("--output {}: {e}", path.display())))?,
        ),
        None => Box::new(io::stdout()),
    };
    Ok(Some(Sink {
        format,
        out: BufWriter::with_capacity(1 << 16, out),
    }))
}

fn cgroup_id(path: &std::path::Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    // The cgroup id bpf_get_current_cgroup_id returns is the inode number of
    // the cgroup's directory in cgroupfs.
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| Error::usage(format!("--cgroup {}: {e}", path.display())))
}

/// Runs a session to its end.
#[expect(
    clippy::too_many_lines,
    reason = "the session's steps read best in order"
)]
pub fn run(opts: &Options) -> Result<Outcome> {
    check_targets(opts)?;
    let sink = open_sink(opts)?;
    let mut probes = Probes::load(&load_options(opts))?;
    probes.set_specs(&specs(opts))?;

    let clock = Clock::new();
    let started = Clock::monotonic_now();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (tx, rx) = mpsc::sync_channel::<Msg>(256);
    let mut consumer = Consumer {
        clock,
        procs: Processes::default(),
        fds: FdTables::default(),
        activity: Activity::default(),
        selection: opts.selection.clone(),
        mode: opts.mode,
        sink,
        selectors: opts.targets.selectors.clone(),
        targets: probes.targets.clone(),
        next_tree: 2,
        shared: Arc::clone(&shared),
        seq: 0,
        lost_by_cpu: std::collections::HashMap::new(),
        lost_records: Vec::new(),
        matched: 0,
        track_live: !opts.targets.all,
        pending_exec: std::collections::HashMap::new(),
    };
    consumer.header(session_detail(opts, &clock));

    // Targets known now: explicit PIDs with their descendants, running
    // processes that match a selector, members of the cgroups.
    let mut initial: Vec<(u32, u32, Origin, Option<String>)> = Vec::new();
    let mut tree = 1;
    for &pid in &opts.targets.pids {
        initial.push((pid, tree, Origin::Attached, Some("--pid".into())));
        for d in procfs::descendants(pid) {
            initial.push((
                d,
                tree,
                Origin::Attached,
                Some(format!("descendant of {pid}")),
            ));
        }
        tree += 1;
    }
    for (i, cg) in opts.targets.cgroups.iter().enumerate() {
        let t = tree + i as u32;
        probes
            .cgroups
            .insert(cgroup_id(cg)?, t, 0)
            .map_err(|e| Error::Runtime(format!("cgroup map: {e}")))?;
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        let cid = procfs::container_id(&cg.to_string_lossy());
        for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            let why = match &cid {
                Some(c) => format!("cgroup {} (container {c})", cg.display()),
                None => format!("cgroup {}", cg.display()),
            };
            initial.push((pid, t, Origin::Attached, Some(why)));
        }
    }
    tree += opts.targets.cgroups.len() as u32;
    if opts.targets.selectors.watches_exec() || opts.targets.selectors.discover {
        let me = std::process::id();
        for pid in procfs::all_pids() {
            if pid == me || pid == 1 {
                continue;
            }
            if let Some(info) = procfs::info(pid)
                && let Some(reason) = opts.targets.selectors.match_running(&info)
            {
                initial.push((pid, tree, Origin::Matched, Some(reason)));
                tree = (tree + 1).min(ai_forensics_common::MAX_TREES - 1);
            }
        }
    }
    consumer.next_tree = tree;
    for (pid, t, _, _) in &initial {
        if *pid != std::process::id() {
            probes.targets.add(*pid, *t)?;
        }
    }
    for (pid, t, origin, reason) in initial {
        consumer.handle(Msg::Observe {
            pid,
            tree: t,
            origin,
            reason,
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reader_stats = Arc::new(ReaderStats::default());
    let ring = probes
        .events
        .take()
        .ok_or_else(|| Error::Runtime("ring buffer already taken".into()))?;
    let reader = reader::spawn(
        ring,
        tx.clone(),
        Arc::clone(&stop),
        Arc::clone(&reader_stats),
    )
    .map_err(|e| Error::io("starting the reader thread", e))?;
    let consumer_thread = thread::Builder::new()
        .name("consumer".into())
        .spawn(move || consumer.run(&rx))
        .map_err(|e| Error::io("starting the consumer thread", e))?;

    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM])
        .map_err(|e| Error::io("installing signal handlers", e))?;

    // Launch after attaching: fork, register, then let it exec.
    let mut child: Option<u32> = None;
    let attach = probes.attach();
    if let Some(l) = &opts.launch
        && attach.is_ok()
    {
        {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            let gated = launch::fork_gated(&l.argv, l.creds.as_ref())?;
            let pid = gated.pid;
            if let Err(e) = probes.targets.add_launched(pid, tree) {
                gated.abort();
                return Err(e);
            }
            let _ = tx.send(Msg::Observe {
                pid,
                tree,
                origin: Origin::Launched,
                reason: Some("run".into()),
            });
            gated.open()?;
            child = Some(pid);
        }
    }
    drop(tx);
    if let Err(e) = attach {
        stop.store(true, Ordering::Release);
        let _ = reader.join();
        let _ = consumer_thread.join();
        return Err(e);
    }
    tracing::info!("tracing; {} syscall specs loaded", specs(opts).len());

    let live_table = opts.live && io::stderr().is_terminal();
    let open_ended = opts.targets.open_ended();
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut child_status: Option<i32> = None;
    let mut interrupted = 0u32;
    let mut next_tick = Instant::now() + opts.interval;
    let mut prev_stats = probes.read_stats()?;
    let mut empty_checks = 0u32;
    loop {
        thread::sleep(Duration::from_millis(20));
        for info in signals.pending() {
            interrupted += 1;
            let from_process = info.process.is_some_and(|p| p.pid != 0);
            match (child, interrupted) {
                (Some(pid), 1) if from_process => {
                    // SAFETY: forwarding a signal to our own child.
                    unsafe { libc::kill(pid as i32, info.signal) };
                }
                (Some(_), 1) => {}
                _ => {}
            }
        }
        if interrupted > 0 && (child.is_none() || interrupted > 1) {
            break;
        }
        if let Some(pid) = child {
            // Reap the whole tree: as subreaper we get orphans too.
            let mut gone = false;
            loop {
                let mut status = 0;
                // SAFETY: waitpid on any child with a local status.
                let r = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
                if r > 0 {
                    if r as u32 == pid {
                        child_status = Some(status);
                    }
                    continue;
                }
                if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                    gone = true;
                }
                break;
            }
            if gone {
                break;
            }
        } else if !open_ended {
            let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
            if sh.live == 0 && sh.seen_any {
                empty_checks += 1;
                if empty_checks >= 3 {
                    break;
                }
            } else {
                empty_checks = 0;
            }
        }
        if shared.lock().is_ok_and(|s| s.output_closed) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if live_table && Instant::now() >= next_tick {
            next_tick += opts.interval;
            let now = probes.read_stats()?;
            let delta = syscalls::delta(&now, &prev_stats);
            let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
            summary::live(opts, &delta, &now, &sh, Clock::monotonic_now() - started);
            prev_stats = now;
        }
    }

    // Everything the kernel submitted is drained before the summary.
    stop.store(true, Ordering::Release);
    reader
        .join()
        .map_err(|_| Error::Runtime("reader thread panicked".into()))?;
    let mut consumer = consumer_thread
        .join()
        .map_err(|_| Error::Runtime("consumer thread panicked".into()))?;
    let ended = Clock::monotonic_now();
    let stats = probes.read_stats()?;
    let drops = probes.read_drops()?;
    let per_thread = if opts.per_process {
        summary::read_per_thread(&probes)
    } else {
        Vec::new()
    };
    let sh = shared.lock().map(|s| s.clone()).unwrap_or_default();
    let report = summary::Report {
        opts,
        stats: &stats,
        drops,
        shared: &sh,
        reader_records: reader_stats.records.load(Ordering::Relaxed),
        per_thread: &per_thread,
        elapsed_ns: ended - started,
        child_status,
        lost_by_tree: (0..ai_forensics_common::MAX_TREES)
            .filter_map(|t| {
                probes
                    .read_lost_for_tree(t)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| (t, n))
            })
            .collect(),
    };

    if let Some(err) = &sh.output_error {
        return Err(Error::Runtime(format!("writing events: {err}")));
    }
    if !sh.output_closed {
        let detail = report.json(&consumer);
        consumer.write_record("summary", detail);
        if let Some(s) = &mut consumer.sink {
            let _ = s.out.flush();
        }
        if opts.summary {
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
    }
    drop(probes);
    let exit_code = match child_status {
        Some(st) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st) as u8,
        Some(st) if libc::WIFSIGNALED(st) => 128 + libc::WTERMSIG(st) as u8,
        _ => 0,
    };
    Ok(Outcome { exit_code })
}

fn session_detail(opts: &Options, clock: &Clock) -> serde_json::Value {
    let uname = rustix_uname();
    json!({
        "tool": "ai-forensics",
        "version": env!("CARGO_PKG_VERSION"),
        "schema": crate::output::json::SCHEMA_VERSION,
        "host": uname.0,
        "kernel": uname.1,
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
    })
}

/// Host name and kernel release.
fn rustix_uname() -> (String, String) {
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
