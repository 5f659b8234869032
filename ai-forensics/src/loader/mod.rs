//! Loading the embedded eBPF object, configuring it for this kernel and this
//! run, and attaching its programs.
//!
//! The object is built by `build.rs` (aya-build) and embedded in the binary,
//! so the released tool is one file. Links are owned by [`Probes`]: dropping
//! it (normal exit, error, or panic unwinding) detaches everything, and the
//! kernel does the same if the process is killed, since nothing is pinned.
pub mod btf;
pub mod features;
pub mod privilege;
pub mod tracefs;
mod uprobe;

use std::{
    fs,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use ai_forensics_common::{
    CONFIG_GLOBAL, Config, MAX_SYSCALLS, ProcKey, ProcStat, SyscallSpec, SyscallStat, drop, maps,
    target,
};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{RawTracePoint, TracePoint},
};

use crate::error::{Error, Result};

/// The compiled kernel programs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ai-forensics"));

/// Where a program attaches.
#[derive(Clone, Copy, Debug)]
enum Hook {
    /// Raw tracepoint by name.
    Raw(&'static str),
    /// Classic tracepoint (category, name).
    Tracepoint(&'static str, &'static str),
}

/// Program table, in attach order: lifecycle hooks first, so no fork slips
/// past while the syscall hooks come up.
const PROGRAMS: &[(&str, Hook)] = &[
    (
        "raw_tracepoint_sched_process_fork",
        Hook::Raw("sched_process_fork"),
    ),
    (
        "tracepoint_sched_process_exec",
        Hook::Tracepoint("sched", "sched_process_exec"),
    ),
    (
        "tracepoint_sched_process_exit",
        Hook::Tracepoint("sched", "sched_process_exit"),
    ),
    // Moves a switched-out thread's call from its CPU slot to INFLIGHT:
    // attached before the syscall hooks so no slot is left behind.
    ("raw_tracepoint_sched_switch", Hook::Raw("sched_switch")),
    ("raw_tracepoint_sys_exit", Hook::Raw("sys_exit")),
    ("raw_tracepoint_sys_enter", Hook::Raw("sys_enter")),
    // Attached when this kernel has the io_uring tracepoints.
    (
        "tracepoint_io_uring_submit_req",
        Hook::Tracepoint("io_uring", "io_uring_submit_req"),
    ),
    (
        "tracepoint_io_uring_complete",
        Hook::Tracepoint("io_uring", "io_uring_complete"),
    ),
    // Attached only when executables are denied by identity.
    (
        "raw_tracepoint_sched_process_exec_deny",
        Hook::Raw("sched_process_exec"),
    ),
];

/// What to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `ai_forensics_common::config` flags.
    pub flags: u32,
    /// Ring buffer size in bytes (a power of two, at least one page).
    pub ring_bytes: u32,
    /// Capacity of the in-flight syscall table (threads inside a syscall).
    pub inflight: u32,
    /// Capacity of the per-thread statistics table (0 when not kept).
    pub proc_stats: u32,
}

/// The loaded, attached programs and their maps.
pub struct Probes {
    /// Keeps the programs and their links alive.
    _ebpf: Ebpf,
    /// TGID -> tree id of targets (shared with the consumer thread, which
    /// adds processes matched by selectors).
    pub targets: Targets,
    /// Capture spec per syscall number.
    pub specs: Array<MapData, SyscallSpec>,
    /// Per-syscall statistics (per CPU).
    pub stats: PerCpuArray<MapData, SyscallStat>,
    /// Per-thread statistics (per CPU; one unused slot unless enabled).
    /// Kept even when unused: the programs hold its fd.
    pub proc_stats: PerCpuHashMap<MapData, ProcKey, ProcStat>,
    /// Drop counters (per CPU).
    pub drops: PerCpuArray<MapData, u64>,
    /// Lost records per tree (per CPU).
    pub lost_by_tree: PerCpuArray<MapData, u64>,
    /// Cgroups whose members are targets.
    pub cgroups: HashMap<MapData, u64, u32>,
    /// The event ring buffer, until the reader takes it.
    pub events: Option<RingBuf<MapData>>,
    /// Size of `targets` (pid_max).
    pub pid_max: u32,
    /// The configuration flags the programs were loaded with.
    pub flags: u32,
    /// Whether the BPF LSM programs are loaded (deny rules prevent in the
    /// kernel's security hooks), or why not.
    pub lsm: std::result::Result<(), String>,
    /// Whether count mode counts every call at its exit with one syscall
    /// program (`sys_enter` not attached), or why not.
    pub exit_count: std::result::Result<(), String>,
    /// This kernel's io_uring submission tracepoint.
    uring_submit: &'static str,
}

/// This architecture's numbers of the calls count mode at exit treats
/// specially.
fn call_nrs() -> ai_forensics_common::CallNrs {
    let n = |name| crate::syscall::table::number(name).unwrap_or(u32::MAX);
    ai_forensics_common::CallNrs {
        exit: n("exit"),
        exit_group: n("exit_group"),
        rt_sigreturn: n("rt_sigreturn"),
        clone: n("clone"),
        clone3: n("clone3"),
        fork: n("fork"),
        vfork: n("vfork"),
        _pad: 0,
    }
}

/// The BPF LSM programs and their hooks.
const LSM_PROGRAMS: &[(&str, &str)] = &[
    ("lsm_file_open", "file_open"),
    ("lsm_bprm_check", "bprm_check_security"),
];

/// Whether the kernel runs the BPF LSM (`bpf` in the active LSM list).
///
/// # Errors
/// Why not, in a sentence for the user.
pub fn bpf_lsm_active() -> std::result::Result<(), String> {
    let list = std::fs::read_to_string("/sys/kernel/security/lsm")
        .map_err(|e| format!("/sys/kernel/security/lsm: {e}"))?;
    if list.trim().split(',').any(|l| l == "bpf") {
        Ok(())
    } else {
        Err(format!(
            "the BPF LSM is not active (lsm={}; boot with lsm=...,bpf)",
            list.trim()
        ))
    }
}

/// Loads the LSM programs (verifier only; attached with the others).
fn load_lsm(ebpf: &mut Ebpf) -> std::result::Result<(), String> {
    bpf_lsm_active()?;
    let btf = aya::Btf::from_sys_fs().map_err(|e| format!("kernel BTF: {e}"))?;
    for (name, hook) in LSM_PROGRAMS {
        let p: &mut aya::programs::Lsm = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("no program {name}"))?
            .try_into()
            .map_err(|e| format!("program {name}: {e}"))?;
        p.load(hook, &btf)
            .map_err(|e| format!("loading the {hook} LSM program: {e}"))?;
    }
    Ok(())
}

fn bpf_err(context: impl Into<String>, e: impl std::fmt::Display) -> Error {
    let full = e.to_string();
    tracing::debug!("{full}");
    // Verifier logs are long: keep the first line and the verifier's last
    // complaint on the one-line error.
    let mut lines = full.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default().to_owned();
    let last = full
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let message = if last == first {
        first
    } else {
        format!("{first} ... {last}")
    };
    Error::Bpf {
        context: context.into(),
        message,
    }
}

fn attach_raw(prog: &mut aya::programs::Program, name: &str, tp: &str) -> Result<()> {
    let p: &mut RawTracePoint = prog
        .try_into()
        .map_err(|e| bpf_err(format!("program {name}"), e))?;
    p.load()
        .map_err(|e| bpf_err(format!("verifying {name}"), e))?;
    p.attach(tp).map_err(|e| {
        bpf_err(
            format!("attaching raw tracepoint {tp} (kernel support needed)"),
            e,
        )
    })?;
    Ok(())
}

/// Loads the object and attaches only the empty programs on the syscall raw
/// tracepoints: the cost floor of any raw-tracepoint tracer, for the
/// benchmarks. They stay attached while the value lives.
pub fn attach_floor(exit_only: bool) -> Result<Ebpf> {
    privilege::check()?;
    privilege::raise_memlock();
    let mut ebpf = EbpfLoader::new()
        .btf(None)
        .load(OBJECT)
        .map_err(|e| bpf_err("loading the eBPF object", e))?;
    let programs: &[(&str, &str)] = if exit_only {
        &[("floor_exit", "sys_exit")]
    } else {
        &[("floor_exit", "sys_exit"), ("floor_enter", "sys_enter")]
    };
    for (name, tp) in programs {
        let prog = ebpf
            .program_mut(name)
            .ok_or_else(|| Error::Runtime(format!("eBPF object has no program {name}")))?;
        attach_raw(prog, name, tp)?;
    }
    Ok(ebpf)
}

/// The kernel's pid_max: TGIDs are below it.
pub fn pid_max() -> Result<u32> {
    let s = fs::read_to_string("/proc/sys/kernel/pid_max")
        .map_err(|e| Error::io("reading /proc/sys/kernel/pid_max", e))?;
    s.trim()
        .parse()
        .map_err(|_| Error::env(format!("unexpected pid_max '{}'", s.trim())))
}

fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| Error::Runtime(format!("eBPF object has no map {name}")))?;
    T::try_from(map).map_err(|e| bpf_err(format!("map {name}"), e))
}

impl Probes {
    /// Loads the programs with `opts`, attaches them and returns the maps.
    ///
    /// Count mode without timing counts every call at its exit with one
    /// syscall program when the kernel lets the exit hook read a task's
    /// saved registers (BTF task pointers, 5.15+); otherwise at entry, with
    /// the reason kept in [`Probes::exit_count`].
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        use ai_forensics_common::config as cfg;
        if opts.flags & (cfg::TIMING | cfg::EVENTS | cfg::DENY) == 0 {
            let exit_only = LoadOptions {
                flags: opts.flags | cfg::EXIT_COUNT,
                ..opts.clone()
            };
            match Self::load_with(&exit_only)? {
                Ok(p) => return Ok(p),
                Err(why) => {
                    tracing::debug!("counting at syscall entry: {why}");
                    let mut p = Self::load_with(opts)?.map_err(Error::Environment)?;
                    p.exit_count = Err(why);
                    return Ok(p);
                }
            }
        }
        let mut p = Self::load_with(opts)?.map_err(Error::Environment)?;
        p.exit_count = Err("timing, events or entry rules need the entry hook".into());
        Ok(p)
    }

    /// The programs loaded with `opts`; the inner error says why the
    /// kernel refused the count-at-exit hook.
    fn load_with(opts: &LoadOptions) -> Result<std::result::Result<Self, String>> {
        privilege::check()?;
        privilege::raise_memlock();
        if let Some(why) = features::missing_required() {
            return Err(Error::Environment(why));
        }
        tracefs::ensure_mounted()?;
        let pid_max = pid_max()?;
        let offsets = btf::task_offsets()?;
        let identity = ai_forensics_common::config::DENY_FILES
            | ai_forensics_common::config::DENY_EXES
            | ai_forensics_common::config::AI_MARK;
        // Events mode resolves the paths of opened files from their dentries.
        let (off, request) = if opts.flags & (identity | ai_forensics_common::config::EVENTS) != 0 {
            btf::identity_offsets()?
        } else {
            (ai_forensics_common::Offsets::NONE, None)
        };
        let exit_group_dead_off =
            tracefs::field_offset("sched", "sched_process_exit", "group_dead")?.unwrap_or(0);
        let uring = uring_offsets(request);
        let mut flags = opts.flags;
        let uring_submit = uring.map_or("io_uring_submit_req", |(_, tp)| tp);
        let uring = uring.map(|(o, _)| o);
        if uring.is_some() {
            flags |= ai_forensics_common::config::URING;
        }
        let config = Config {
            flags,
            self_tgid: std::process::id(),
            pid_max,
            exit_group_dead_off,
            task_pid_off: offsets.pid,
            task_tgid_off: offsets.tgid,
            execve_nr: crate::syscall::table::number("execve").unwrap_or(u32::MAX),
            execveat_nr: crate::syscall::table::number("execveat").unwrap_or(u32::MAX),
            nr: call_nrs(),
            off,
            // The openat number also names the BPF LSM's refused opens.
            uring: uring.unwrap_or(ai_forensics_common::UringOffsets {
                openat_nr: crate::syscall::table::number("openat").unwrap_or(u32::MAX),
                ..ai_forensics_common::UringOffsets::NONE
            }),
        };
        tracing::debug!(?config, "loading eBPF programs");
        let mut loader = EbpfLoader::new();
        // The programs carry no CO-RE relocations and no BTF-typed attach
        // points: the kernel's BTF (17 MB of heap once parsed) is not needed.
        loader
            .btf(None)
            .override_global(CONFIG_GLOBAL, &config, true)
            .map_max_entries(maps::TARGETS, pid_max)
            .map_max_entries(maps::EVENTS, opts.ring_bytes)
            .map_max_entries(maps::INFLIGHT, opts.inflight.max(1))
            .map_max_entries(maps::PROC_STATS, opts.proc_stats.max(1));
        let mut ebpf = loader
            .load(OBJECT)
            .map_err(|e| bpf_err("loading the eBPF object", e))?;

        let targets = Targets {
            map: Arc::new(Mutex::new(take(&mut ebpf, maps::TARGETS)?)),
            pid_max,
            added: Arc::new(AtomicU32::new(0)),
        };
        let specs = take(&mut ebpf, maps::SPECS)?;
        let stats = take(&mut ebpf, maps::STATS)?;
        let proc_stats = take(&mut ebpf, maps::PROC_STATS)?;
        let drops = take(&mut ebpf, maps::DROPS)?;
        let lost_by_tree = take(&mut ebpf, maps::LOST_BY_TREE)?;
        let cgroups = take(&mut ebpf, maps::CGROUPS)?;
        let events = take(&mut ebpf, maps::EVENTS)?;
        if flags & ai_forensics_common::config::EXIT_COUNT != 0 {
            // The exit hook reads the exiting task's registers through a BTF
            // task pointer: verified now, so a kernel without it counts at
            // entry instead.
            let name = "tracepoint_sched_process_exit";
            let p: &mut TracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| Error::Runtime(format!("eBPF object has no program {name}")))?
                .try_into()
                .map_err(|e| bpf_err(format!("program {name}"), e))?;
            if let Err(e) = p.load() {
                return Ok(Err(format!(
                    "the kernel refused the task-exit hook that reads the saved syscall number ({})",
                    bpf_err("verifying", e)
                )));
            }
        }
        // Prevention in the security hooks, where the kernel allows it.
        let lsm = if flags
            & (ai_forensics_common::config::DENY_FILES | ai_forensics_common::config::DENY_EXES)
            != 0
        {
            load_lsm(&mut ebpf)
        } else {
            Err("no kernel deny rules".into())
        };
        if let Err(why) = &lsm {
            tracing::debug!("BPF LSM not used: {why}");
        }
        Ok(Ok(Self {
            _ebpf: ebpf,
            targets,
            specs,
            stats,
            proc_stats,
            drops,
            lost_by_tree,
            cgroups,
            events: Some(events),
            pid_max,
            flags,
            lsm,
            exit_count: Ok(()),
            uring_submit,
        }))
    }

    /// Attaches every program. Call after the maps are set up.
    pub fn attach(&mut self) -> Result<()> {
        if self.lsm.is_ok() {
            for (name, hook) in LSM_PROGRAMS {
                let r = self
                    ._ebpf
                    .program_mut(name)
                    .ok_or_else(|| format!("no program {name}"))
                    .and_then(|p| {
                        let p: &mut aya::programs::Lsm =
                            p.try_into().map_err(|e| format!("program {name}: {e}"))?;
                        p.attach()
                            .map(|_| ())
                            .map_err(|e| format!("attaching the {hook} LSM program: {e}"))
                    });
                if let Err(e) = r {
                    tracing::warn!("{e}; deny rules fall back to seccomp and signals");
                    self.lsm = Err(e);
                    break;
                }
            }
        }
        for (name, hook) in PROGRAMS {
            if *name == "raw_tracepoint_sched_process_exec_deny"
                && self.flags & ai_forensics_common::config::DENY_EXES == 0
            {
                continue;
            }
            if name.starts_with("tracepoint_io_uring")
                && self.flags & ai_forensics_common::config::URING == 0
            {
                continue;
            }
            if matches!(
                *name,
                "raw_tracepoint_sys_enter" | "raw_tracepoint_sched_switch"
            ) && self.flags & ai_forensics_common::config::EXIT_COUNT != 0
            {
                // Counting at exit: nothing is remembered between entry and
                // exit, so neither the entry hook nor the slot hand-over runs.
                continue;
            }
            let prog = self
                ._ebpf
                .program_mut(name)
                .ok_or_else(|| Error::Runtime(format!("eBPF object has no program {name}")))?;
            match hook {
                Hook::Raw(tp) => attach_raw(prog, name, tp)?,
                Hook::Tracepoint(cat, tp) => {
                    let tp = if *name == "tracepoint_io_uring_submit_req" {
                        self.uring_submit
                    } else {
                        tp
                    };
                    let p: &mut TracePoint = prog
                        .try_into()
                        .map_err(|e| bpf_err(format!("program {name}"), e))?;
                    match p.load() {
                        Ok(()) | Err(aya::programs::ProgramError::AlreadyLoaded) => {}
                        Err(e) => return Err(bpf_err(format!("verifying {name}"), e)),
                    }
                    p.attach(cat, tp)
                        .map_err(|e| bpf_err(format!("attaching tracepoint {cat}:{tp}"), e))?;
                }
            }
        }
        Ok(())
    }

    /// Writes the in-kernel deny rules (at most `deny::MAX_RULES`).
    pub fn set_deny(&mut self, rules: &[ai_forensics_common::DenyRule]) -> Result<()> {
        let mut map: Array<&mut MapData, ai_forensics_common::DenyRule> = self
            ._ebpf
            .map_mut(maps::DENY)
            .ok_or_else(|| Error::Runtime("eBPF object has no DENY map".into()))
            .and_then(|m| Array::try_from(m).map_err(|e| bpf_err("map DENY", e)))?;
        let end = ai_forensics_common::DenyRule {
            class: 0,
            kind: 0,
            len: 0,
            signal: 0,
            rule: 0,
            _pad: 0,
            pattern: [0; ai_forensics_common::deny::PATTERN_MAX],
        };
        // Every slot is written: a reload with fewer rules leaves no old
        // one behind (class 0 ends the table).
        for i in 0..ai_forensics_common::deny::MAX_RULES {
            let r = rules.get(i as usize).unwrap_or(&end);
            map.set(i, r, 0)
                .map_err(|e| bpf_err("writing deny rules", e))?;
        }
        Ok(())
    }

    /// Handles on the identity maps (files and executables denied by
    /// device and inode, sizes of denied executables, images cleared after
    /// a hold, AI marker names), for the consumer thread to keep current.
    pub fn identity_maps(&mut self) -> Result<IdentityMaps> {
        Ok(IdentityMaps {
            files: take(&mut self._ebpf, maps::DENY_FILES)?,
            exes: take(&mut self._ebpf, maps::DENY_EXES)?,
            sizes: take(&mut self._ebpf, maps::EXE_SIZES)?,
            cleared: take(&mut self._ebpf, maps::EXE_CLEARED)?,
        })
    }

    /// Writes the AI marker table (at most `AI_MARKERS_MAX`).
    pub fn set_ai_markers(&mut self, markers: &[ai_forensics_common::AiMarker]) -> Result<()> {
        let mut map: Array<&mut MapData, ai_forensics_common::AiMarker> = self
            ._ebpf
            .map_mut(maps::AI_MARKERS)
            .ok_or_else(|| Error::Runtime("eBPF object has no AI_MARKERS map".into()))
            .and_then(|m| Array::try_from(m).map_err(|e| bpf_err("map AI_MARKERS", e)))?;
        let end = ai_forensics_common::AiMarker {
            kind: 0,
            len: 0,
            flag: 0,
            _pad: 0,
            pattern: [0; ai_forensics_common::AI_MARKER_MAX],
        };
        for i in 0..ai_forensics_common::AI_MARKERS_MAX {
            let m = markers.get(i as usize).unwrap_or(&end);
            map.set(i, m, 0)
                .map_err(|e| bpf_err("writing AI markers", e))?;
        }
        Ok(())
    }

    /// Writes the capture spec of every syscall number.
    pub fn set_specs(&mut self, specs: &[(u32, SyscallSpec)]) -> Result<()> {
        for (nr, spec) in specs {
            if *nr < MAX_SYSCALLS {
                self.specs
                    .set(*nr, spec, 0)
                    .map_err(|e| bpf_err("writing syscall specs", e))?;
            }
        }
        Ok(())
    }

    /// Sum over CPUs of every syscall's statistics, indexed by number.
    pub fn read_stats(&self) -> Result<Vec<SyscallStat>> {
        let mut out = vec![SyscallStat::default(); MAX_SYSCALLS as usize];
        for (nr, slot) in out.iter_mut().enumerate() {
            let per_cpu = self
                .stats
                .get(&(nr as u32), 0)
                .map_err(|e| bpf_err("reading statistics", e))?;
            for s in per_cpu.iter() {
                merge_stat(slot, s);
            }
        }
        Ok(out)
    }

    /// Sum over CPUs of the io_uring counts by opcode (`None`: this kernel
    /// has no io_uring tracepoints, so nothing of io_uring was seen).
    pub fn read_uring(&self) -> Result<Option<Vec<ai_forensics_common::UringStat>>> {
        if self.flags & ai_forensics_common::config::URING == 0 {
            return Ok(None);
        }
        let map = self._ebpf.map(maps::URING_STATS).ok_or_else(|| {
            Error::Runtime(format!("eBPF object has no map {}", maps::URING_STATS))
        })?;
        let arr: PerCpuArray<&MapData, ai_forensics_common::UringStat> =
            PerCpuArray::try_from(map).map_err(|e| bpf_err("io_uring counts", e))?;
        let mut out = vec![
            ai_forensics_common::UringStat::default();
            ai_forensics_common::uring::OPS as usize
        ];
        for (op, slot) in out.iter_mut().enumerate() {
            let v = arr
                .get(&(op as u32), 0)
                .map_err(|e| bpf_err("reading io_uring counts", e))?;
            for s in v.iter() {
                slot.count += s.count;
                slot.errors += s.errors;
            }
        }
        Ok(Some(out))
    }

    /// Sum over CPUs of each drop counter, indexed by cause.
    pub fn read_drops(&self) -> Result<[u64; drop::COUNT as usize]> {
        let mut out = [0u64; drop::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let v = self
                .drops
                .get(&(i as u32), 0)
                .map_err(|e| bpf_err("reading drop counters", e))?;
            *slot = v.iter().sum();
        }
        Ok(out)
    }

    /// Sum over CPUs of the records lost for `tree`.
    pub fn read_lost_for_tree(&self, tree: u32) -> Result<u64> {
        let v = self
            .lost_by_tree
            .get(&tree, 0)
            .map_err(|e| bpf_err("reading loss counters", e))?;
        Ok(v.iter().sum())
    }
}

/// The kernel's identity maps.
pub struct IdentityMaps {
    /// Files denied by (device, inode).
    pub files: HashMap<MapData, ai_forensics_common::ObjKey, ai_forensics_common::ObjDeny>,
    /// Executables denied by (device, inode).
    pub exes: HashMap<MapData, ai_forensics_common::ObjKey, ai_forensics_common::ObjDeny>,
    /// Sizes of denied executables -> `deny::ONLY_*` flags.
    pub sizes: HashMap<MapData, u64, u32>,
    /// Images compared after a hold and let go.
    pub cleared: HashMap<MapData, ai_forensics_common::ObjKey, u32>,
}

/// Where the io_uring programs read: the tracepoint fields (tracefs) and,
/// with `request`, the request fields (BTF). `None` when this kernel has
/// no io_uring tracepoints (io_uring absent or too old): nothing of
/// io_uring is seen then, and the session says so.
/// The submission tracepoint is `io_uring_submit_req` since 6.0 and
/// `io_uring_submit_sqe` before, with the same fields.
fn uring_offsets(
    request: Option<btf::UringRequest>,
) -> Option<(ai_forensics_common::UringOffsets, &'static str)> {
    let f = |tp: &str, field: &str| tracefs::field_offset("io_uring", tp, field).ok().flatten();
    let submit = ["io_uring_submit_req", "io_uring_submit_sqe"]
        .into_iter()
        .find(|tp| f(tp, "req").is_some())?;
    let mut o = ai_forensics_common::UringOffsets {
        submit_req: f(submit, "req")?,
        submit_opcode: f(submit, "opcode")?,
        submit_sq_thread: f(submit, "sq_thread")?,
        complete_req: f("io_uring_complete", "req")?,
        complete_user_data: f("io_uring_complete", "user_data")?,
        complete_res: f("io_uring_complete", "res")?,
        openat_nr: crate::syscall::table::number("openat").unwrap_or(u32::MAX),
        ..ai_forensics_common::UringOffsets::NONE
    };
    if let Some([cmd, slot, filename, name, addr, addr_len]) = request {
        o.kiocb_cmd = cmd;
        o.open_slot = slot;
        o.open_filename = filename;
        o.filename_name = name;
        o.connect_addr = addr;
        o.connect_addr_len = addr_len;
    }
    Some((o, submit))
}

/// Handle on the kernel's target table.
#[derive(Clone)]
pub struct Targets {
    map: Arc<Mutex<Array<MapData, u64>>>,
    pid_max: u32,
    /// Processes added so far: the next one's generation.
    added: Arc<AtomicU32>,
}

impl Targets {
    /// Makes `tgid` a target in `tree`. Returns the generation its
    /// per-process counts are kept under.
    pub fn add(&self, tgid: u32, tree: u32) -> Result<u32> {
        self.add_raw(tgid, u64::from(tree))
    }

    /// Makes a launched child a target whose syscalls count from its
    /// execve. Returns its generation.
    pub fn add_launched(&self, tgid: u32, tree: u32) -> Result<u32> {
        self.add_raw(
            tgid,
            u64::from(tree) | ai_forensics_common::target::AWAIT_EXEC,
        )
    }

    fn add_raw(&self, tgid: u32, value: u64) -> Result<u32> {
        if tgid >= self.pid_max {
            return Err(Error::usage(format!(
                "pid {tgid} is beyond pid_max {}",
                self.pid_max
            )));
        }
        let mut map = self
            .map
            .lock()
            .map_err(|_| Error::Runtime("target table lock poisoned".into()))?;
        let generation = target::user_generation(self.added.fetch_add(1, Ordering::Relaxed));
        map.set(
            tgid,
            value | (u64::from(generation) << target::GEN_SHIFT),
            0,
        )
        .map_err(|e| bpf_err(format!("adding target {tgid}"), e))?;
        Ok(generation)
    }

    /// Sets then clears flag bits of a target's entry (no-op for non-targets).
    pub fn set_flags(&self, tgid: u32, set: u64, clear: u64) -> Result<()> {
        if tgid >= self.pid_max {
            return Ok(());
        }
        let mut map = self
            .map
            .lock()
            .map_err(|_| Error::Runtime("target table lock poisoned".into()))?;
        let v = map.get(&tgid, 0).unwrap_or(0);
        if v & target::TREE_MASK == 0 {
            return Ok(());
        }
        map.set(tgid, (v | set) & !clear, 0)
            .map_err(|e| bpf_err(format!("flagging target {tgid}"), e))
    }

    /// A target's entry in the kernel table (`None`: not a target).
    #[must_use]
    pub fn entry(&self, tgid: u32) -> Option<u64> {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(&tgid, 0).ok())
            .filter(|v| *v != 0)
    }

    /// Whether `tgid` is currently a target in the kernel table.
    #[must_use]
    pub fn contains(&self, tgid: u32) -> bool {
        self.map
            .lock()
            .ok()
            .and_then(|m| m.get(&tgid, 0).ok())
            .is_some_and(|v| v != 0)
    }
}

/// Adds one CPU's statistics into a total.
pub fn merge_stat(total: &mut SyscallStat, s: &SyscallStat) {
    total.count += s.count;
    total.errors += s.errors;
    total.timed += s.timed;
    total.total_ns += s.total_ns;
    if s.min_ns != 0 && (total.min_ns == 0 || s.min_ns < total.min_ns) {
        total.min_ns = s.min_ns;
    }
    total.max_ns = total.max_ns.max(s.max_ns);
    total.lost += s.lost;

    for (t, h) in total.hist.iter_mut().zip(s.hist.iter()) {
        *t += h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_stats() {
        let mut t = SyscallStat::default();
        let mut a = SyscallStat {
            count: 3,
            errors: 1,
            timed: 3,
            total_ns: 30,
            min_ns: 5,
            max_ns: 15,
            ..Default::default()
        };
        a.hist[4] = 3;
        let b = SyscallStat {
            count: 2,
            timed: 2,
            total_ns: 8,
            min_ns: 3,
            max_ns: 5,
            ..Default::default()
        };
        merge_stat(&mut t, &a);
        merge_stat(&mut t, &b);
        merge_stat(&mut t, &SyscallStat::default());
        assert_eq!(
            (t.count, t.errors, t.timed, t.total_ns, t.min_ns, t.max_ns),
            (5, 1, 5, 38, 3, 15)
        );
        assert_eq!(t.hist[4], 3);
    }

    #[test]
    fn bpf_error_is_one_line() {
        let e = bpf_err(
            "verifying x",
            "load failed\nline 1\n\nR1 invalid mem access\n",
        );
        assert_eq!(
            e.to_string(),
            "verifying x: load failed ... R1 invalid mem access"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
