//! Before recording: what to load, what to capture, where events go, and
//! which processes are targets from the start.
use std::{
    collections::BTreeSet,
    fs::File,
    io::{self, BufWriter},
};

use ai_forensics_common::{SyscallSpec, config as cfg, spec};

use super::{
    consumer::Sink,
    options::{Mode, Options},
};
use crate::{
    error::{Error, Result},
    loader::{LoadOptions, Probes},
    state::procs::Origin,
    syscall::{signature, table as systable},
    target::procfs,
};

/// Capacity of the in-flight table: threads of targets inside a syscall at once.
const INFLIGHT_ENTRIES: u32 = 65_536;
/// Capacity of the per-thread statistics table.
const PROC_STATS_ENTRIES: u32 = 131_072;

/// Kernel configuration for `opts`.
#[must_use]
pub fn load_options(opts: &Options) -> LoadOptions {
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
    if opts.mode == Mode::Events || opts.rules.is_some() {
        // Count mode with rules still streams the calls the rules look at
        // (`rule_capture`): verdicts never depend on the recording mode.
        flags |= cfg::EVENTS;
    }
    if !deny_rules(opts).is_empty() {
        flags |= cfg::DENY;
    }
    flags |= identity_flags(opts.rules.as_ref());
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
#[must_use]
pub fn specs(opts: &Options) -> Vec<(u32, SyscallSpec)> {
    let mut out = Vec::new();
    let captured = if opts.mode == Mode::Events {
        opts.selection.captured()
    } else {
        rule_capture(opts)
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
        if identity_flags(opts.rules.as_ref()) != 0
            && matches!(
                name,
                "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" | "pidfd_getfd"
            )
        {
            sp.flags |= spec::FD_OPEN;
            if let Some(s) = signature::lookup(name).map(signature::capture_spec) {
                sp.str0_arg = s.str0_arg;
            }
        }
        if !deny_rules(opts).is_empty() {
            let class = match name {
                "execve" | "execveat" => spec::DENY_EXEC,
                "open" | "openat" | "openat2" | "creat" => spec::DENY_OPEN,
                _ => 0,
            };
            if class != 0 {
                sp.flags |= class;
                if let Some(s) = signature::lookup(name).map(signature::capture_spec) {
                    sp.str0_arg = s.str0_arg;
                }
            }
        }
        if sp.flags & spec::EVENT != 0
            && matches!(
                name,
                "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" | "pidfd_getfd"
            )
        {
            // The record adds the path the kernel resolved for the new fd.
            sp.flags |= spec::RESOLVE;
        }
        if sp != SyscallSpec::NONE {
            out.push((nr, sp));
        }
    }
    out
}

/// What count mode streams for the rules: the calls they name (all when
/// one names none), with the fd-tracking calls that resolve their paths;
/// nothing without rules.
#[must_use]
pub fn rule_capture(opts: &Options) -> BTreeSet<u32> {
    let Some(rules) = &opts.rules else {
        return BTreeSet::new();
    };
    let sel = match rules.syscalls() {
        None => crate::syscall::groups::Selection::parse("all"),
        Some(names) => {
            let mut s = crate::syscall::groups::Selection::default_set();
            s.numbers = names.iter().filter_map(|n| systable::number(n)).collect();
            Ok(s)
        }
    };
    sel.map(|s| s.captured()).unwrap_or_default()
}

/// Kernel flags for the identity checks `rules` need: files and executables
/// denied by identity, and AI markers whenever rules are loaded (workload
/// rules depend on them, in every recording mode alike).
#[must_use]
pub fn identity_flags(rules: Option<&crate::policy::rules::Rules>) -> u32 {
    let Some(rules) = rules else { return 0 };
    let mut f = cfg::AI_MARK;
    for r in rules.rules.iter().filter(|r| r.kernel) {
        if !r.kernel_files.is_empty() {
            f |= cfg::DENY_FILES;
        }
        if !r.kernel_exes.is_empty() {
            f |= cfg::DENY_EXES;
        }
    }
    f
}

/// The in-kernel deny table for the `kernel: true` rules.
#[must_use]
pub fn deny_rules(opts: &Options) -> Vec<ai_forensics_common::DenyRule> {
    deny_rules_of(opts.rules.as_ref())
}

/// The seccomp filter `run` puts on its workload: when kernel deny rules
/// protect files or executables, their opens and execs are decided before
/// they run.
/// Not needed where the BPF LSM refuses the same calls (`lsm`).
pub fn seccomp_filter(
    opts: &Options,
    lsm: bool,
) -> Result<Option<crate::enforce::seccomp::Filter>> {
    let (Some(l), Some(rules)) = (&opts.launch, &opts.rules) else {
        return Ok(None);
    };
    if lsm {
        return Ok(None);
    }
    let kernel = || rules.rules.iter().filter(|r| r.kernel);
    let calls = crate::enforce::supervisor::calls(
        kernel().any(|r| !r.kernel_files.is_empty()),
        kernel().any(|r| !r.kernel_exes.is_empty()),
    );
    if !l.seccomp || calls.is_empty() {
        return Ok(None);
    }
    crate::enforce::seccomp::Filter::build(&calls).map(Some)
}

/// The in-kernel deny table of `rules`.
#[must_use]
pub fn deny_rules_of(
    rules: Option<&crate::policy::rules::Rules>,
) -> Vec<ai_forensics_common::DenyRule> {
    let Some(rules) = rules else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in rules.rules.iter().filter(|r| r.kernel) {
        let signal = if r.action == crate::policy::rules::Action::Stop {
            19
        } else {
            9
        };
        for (class, kind, pat) in &r.kernel_patterns {
            let mut pattern = [0u8; ai_forensics_common::deny::PATTERN_MAX];
            let b = pat.as_bytes();
            pattern[..b.len()].copy_from_slice(b);
            out.push(ai_forensics_common::DenyRule {
                class: *class,
                kind: *kind,
                len: b.len() as u32,
                signal,
                rule: r.id as u32,
                _pad: 0,
                pattern,
            });
        }
    }
    out.truncate(ai_forensics_common::deny::MAX_RULES as usize);
    out
}

/// Validates the targets before anything is loaded.
pub fn check_targets(opts: &Options) -> Result<()> {
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

/// Opens the event stream's destination.
pub fn open_sink(opts: &Options) -> Result<Option<Sink>> {
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

/// A process that is a target from the start.
pub struct Initial {
    /// Process id.
    pub pid: u32,
    /// Tree.
    pub tree: u32,
    /// How it came under tracing.
    pub origin: Origin,
    /// Why.
    pub reason: Option<String>,
    /// Generation its per-process counts are kept under (set when added).
    pub generation: u32,
}

/// Targets known at start, and the trees they make up.
pub struct InitialTargets {
    /// The processes.
    pub procs: Vec<Initial>,
    /// The next free tree id.
    pub next_tree: u32,
    /// The tree of each watched cgroup, with what it is (the reason given to
    /// members the kernel takes in later).
    pub cgroup_trees: std::collections::BTreeMap<u32, String>,
}

/// Targets known at start: explicit PIDs with their descendants, members of
/// the cgroups (whose ids also go to the kernel), running processes that
/// match a selector.
pub fn initial_targets(opts: &Options, probes: &mut Probes) -> Result<InitialTargets> {
    let mut cgroup_trees = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    let mut tree = 1;
    for &pid in &opts.targets.pids {
        out.push(Initial {
            pid,
            tree,
            origin: Origin::Attached,
            generation: 0,
            reason: Some("--pid".into()),
        });
        for d in procfs::descendants(pid) {
            out.push(Initial {
                pid: d,
                tree,
                origin: Origin::Attached,
                generation: 0,
                reason: Some(format!("descendant of {pid}")),
            });
        }
        tree += 1;
    }
    for cg in &opts.targets.cgroups {
        probes
            .cgroups
            .insert(cgroup_id(cg)?, tree, 0)
            .map_err(|e| Error::Runtime(format!("cgroup map: {e}")))?;
        let members = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        let why = match procfs::container_id(&cg.to_string_lossy()) {
            Some(c) => format!("cgroup {} (container {c})", cg.display()),
            None => format!("cgroup {}", cg.display()),
        };
        cgroup_trees.insert(tree, why.clone());
        for pid in members.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            out.push(Initial {
                pid,
                tree,
                origin: Origin::Attached,
                generation: 0,
                reason: Some(why.clone()),
            });
        }
        tree += 1;
    }
    if opts.targets.selectors.watches_exec() || opts.targets.selectors.discover {
        let me = std::process::id();
        for pid in procfs::all_pids() {
            if pid == me || pid == 1 {
                continue;
            }
            if let Some(info) = procfs::info(pid)
                && let Some(reason) = opts.targets.selectors.match_running(&info)
            {
                out.push(Initial {
                    pid,
                    tree,
                    origin: Origin::Matched,
                    generation: 0,
                    reason: Some(reason),
                });
                tree = (tree + 1).min(ai_forensics_common::MAX_TREES - 1);
            }
        }
    }
    for i in &mut out {
        if i.pid != std::process::id() {
            i.generation = probes.targets.add(i.pid, i.tree)?;
        }
    }
    Ok(InitialTargets {
        procs: out,
        next_tree: tree,
        cgroup_trees,
    })
}
