//! What this kernel offers the programs, probed at run time (`ai-forensics
//! doctor`, and the session record): each feature, whether it is here, and
//! what its absence costs. Nothing here makes loading fail: the loader
//! picks the hooks from what it finds and says what is degraded.
use std::path::Path;

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};
use serde::Serialize;

/// One probed feature.
#[derive(Clone, Debug, Serialize)]
pub struct Feature {
    /// Short name.
    pub name: &'static str,
    /// Whether the kernel offers it.
    pub available: bool,
    /// Whether ai-forensics cannot trace at all without it.
    pub required: bool,
    /// What was found (a version, a path, the kernel's refusal).
    pub detail: String,
    /// What it is used for, and what its absence costs.
    pub used_for: &'static str,
}

fn feature(
    name: &'static str,
    probe: std::result::Result<bool, String>,
    required: bool,
    used_for: &'static str,
) -> Feature {
    let (available, detail) = match probe {
        Ok(true) => (true, String::new()),
        Ok(false) => (false, "not offered by this kernel".to_owned()),
        Err(e) => (false, e),
    };
    Feature {
        name,
        available,
        required,
        detail,
        used_for,
    }
}

/// An error with its causes (aya's say which call failed; the cause says
/// why, e.g. the kernel's EPERM).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    crate::error::one_line(&s)
}

fn program(t: ProgramType) -> std::result::Result<bool, String> {
    is_program_supported(t).map_err(|e| chain(&e))
}

fn helper(t: ProgramType, h: BpfHelper) -> std::result::Result<bool, String> {
    is_helper_supported(t, h).map_err(|e| chain(&e))
}

/// The one-line reason this kernel cannot run the programs at all, if it
/// cannot (checked before loading, so the error names the feature).
#[must_use]
pub fn missing_required() -> Option<String> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF, 5.4+): ai-forensics reads kernel structure offsets from it".into(),
        );
    }
    if matches!(is_map_supported(MapType::RingBuf), Ok(false)) {
        return Some("this kernel has no BPF ring buffer (5.8+ needed)".into());
    }
    if matches!(program(ProgramType::RawTracePoint), Ok(false)) {
        return Some("this kernel has no raw tracepoint programs (4.17+ needed)".into());
    }
    None
}

fn exists(p: &str) -> std::result::Result<bool, String> {
    Ok(Path::new(p).exists())
}

/// Whether the kernel offers seccomp's user notification (5.0+).
fn seccomp_user_notif() -> std::result::Result<bool, String> {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
    const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
    let action = SECCOMP_RET_USER_NOTIF;
    // SAFETY: the kernel reads one u32 from the pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            (&raw const action).cast::<libc::c_void>(),
        )
    };
    if r == 0 {
        Ok(true)
    } else {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
            Ok(false)
        } else {
            Err(format!("seccomp(GET_ACTION_AVAIL): {e}"))
        }
    }
}

/// Whether cgroup v2 is mounted and a child cgroup has `cgroup.freeze` and
/// `cgroup.kill` (5.2+ and 5.14+).
fn cgroup_freeze_kill() -> std::result::Result<bool, String> {
    let Some(root) = crate::enforce::cgroup::mount_point() else {
        return Err("cgroup v2 is not mounted".into());
    };
    let probe = root.join(format!("ai-forensics-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("creating {}: {e}", probe.display()))?;
    let found = (
        probe.join("cgroup.freeze").exists(),
        probe.join("cgroup.kill").exists(),
    );
    let _ = std::fs::remove_dir(&probe);
    match found {
        (true, true) => Ok(true),
        (false, _) => Err(format!("{}: no cgroup.freeze", root.display())),
        (true, false) => Err(format!("{}: no cgroup.kill (5.14+)", root.display())),
    }
}

fn io_uring_tracepoints() -> std::result::Result<bool, String> {
    let _ = super::tracefs::ensure_mounted();
    let dir = Path::new("/sys/kernel/tracing/events/io_uring");
    Ok(dir.join("io_uring_submit_req").exists() || dir.join("io_uring_submit_sqe").exists())
}

/// Every feature, probed now (a few milliseconds: each program-type probe
/// loads a two-instruction program).
#[must_use]
pub fn probe() -> Vec<Feature> {
    let lsm_active = super::bpf_lsm_active();
    vec![
        feature(
            "kernel BTF",
            exists("/sys/kernel/btf/vmlinux"),
            true,
            "kernel structure offsets (task ids, files, exec, io_uring requests) read at load time: no build-specific offsets",
        ),
        feature(
            "ring buffer",
            is_map_supported(MapType::RingBuf).map_err(|e| chain(&e)),
            true,
            "the event stream (5.8+)",
        ),
        feature(
            "raw tracepoints",
            program(ProgramType::RawTracePoint),
            true,
            "syscall entry and exit, fork, context switch (4.17+)",
        ),
        feature(
            "bpf_send_signal",
            helper(ProgramType::RawTracePoint, BpfHelper::BPF_FUNC_send_signal),
            false,
            "stop and kill from the kernel before the offending call returns; without it a verdict acts from user space, after the call",
        ),
        feature(
            "BTF task pointers",
            helper(ProgramType::TracePoint, BpfHelper::BPF_FUNC_task_pt_regs),
            false,
            "count mode with one syscall program (counted at exit); without it count mode counts at entry with two (about twice the per-call cost)",
        ),
        feature(
            "fentry/fexit",
            program(ProgramType::Tracing),
            false,
            "not used yet (a cheaper hook than the syscall tracepoints where the kernel allows it)",
        ),
        feature(
            "kprobes",
            program(ProgramType::KProbe)
                .map(|ok| ok && Path::new("/sys/bus/event_source/devices/kprobe").exists()),
            false,
            "not used (tracepoints cover every hook ai-forensics needs)",
        ),
        feature(
            "uprobes",
            exists("/sys/bus/event_source/devices/uprobe"),
            false,
            "CUDA calls in libcudart and TLS plaintext (--tls-capture); without them GPU activity and LLM calls are not seen",
        ),
        feature(
            "bpf_loop",
            helper(ProgramType::KProbe, BpfHelper::BPF_FUNC_loop),
            false,
            "TLS plaintext capture (--tls-capture, 5.17+); without it TLS calls are not recorded (the summary says why)",
        ),
        Feature {
            name: "BPF LSM active",
            available: lsm_active.is_ok(),
            required: false,
            detail: lsm_active.err().unwrap_or_default(),
            used_for: "refusing a denied open or exec in the kernel (EPERM, the call never runs); without it `run` refuses with seccomp notification, `trace` kills after the call",
        },
        feature(
            "seccomp user notification",
            seccomp_user_notif(),
            false,
            "refusing denied opens and execs of a launched workload without the BPF LSM; without it they are killed after the call",
        ),
        feature(
            "cgroup v2 freeze/kill",
            cgroup_freeze_kill(),
            false,
            "stopping and killing a launched tree as one (no fork escapes); without it signals go to each process",
        ),
        feature(
            "io_uring tracepoints",
            io_uring_tracepoints(),
            false,
            "io_uring operations counted, recorded and judged as the syscalls they stand for (5.5+); without them io_uring is invisible",
        ),
    ]
}

/// The text table of `ai-forensics doctor`.
#[must_use]
pub fn table(features: &[Feature]) -> String {
    use std::fmt::Write as _;
    let (host, release) = (
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default(),
    );
    let mut o = format!(
        "kernel {} on {} ({})\n\n",
        release.trim(),
        host.trim(),
        std::env::consts::ARCH
    );
    let w = features.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in features {
        let mark = match (f.available, f.required) {
            (true, _) => "yes",
            (false, true) => "MISSING",
            (false, false) => "no",
        };
        let _ = writeln!(o, "{:<w$}  {mark:<7}  {}", f.name, f.used_for);
        if !f.available && !f.detail.is_empty() {
            let _ = writeln!(
                o,
                "{:<w$}           {}",
                "",
                crate::error::one_line(&f.detail)
            );
        }
    }
    if let Some(f) = features.iter().find(|f| f.required && !f.available) {
        let _ = writeln!(
            o,
            "\nai-forensics cannot trace on this kernel: {} is missing",
            f.name
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_feature_is_named_and_optional_ones_say_why() {
        let f = vec![
            feature("ring buffer", Ok(false), true, "the event stream"),
            feature(
                "fentry/fexit",
                Err("bpf_prog_load failed: Operation not permitted\n".into()),
                false,
                "not used yet",
            ),
            feature("uprobes", Ok(true), false, "CUDA calls"),
        ];
        let t = table(&f);
        assert!(t.contains("ring buffer   MISSING  the event stream"), "{t}");
        assert!(t.contains("uprobes       yes "), "{t}");
        assert!(t.contains("Operation not permitted\\n"), "escaped: {t}");
        assert!(t.ends_with("ai-forensics cannot trace on this kernel: ring buffer is missing\n"));
    }
}
