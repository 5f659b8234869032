//! Roles of the processes of an AI workload, where they can be seen:
//! launcher and ranks of a distributed job, data-loader workers, the tools an
//! agent runs.
use std::fs;

/// A role from a process's command line and environment.
#[must_use]
pub fn from_identity(cmdline: &str, pid: u32) -> Option<String> {
    let launcher = [
        "torchrun",
        "torch.distributed.run",
        "torch.distributed.launch",
        "accelerate launch",
        "deepspeed",
        "mpirun",
    ];
    if launcher.iter().any(|l| cmdline.contains(l)) {
        return Some("launcher".into());
    }
    let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let var = |name: &str| {
        env.split(|b| *b == 0).find_map(|kv| {
            let s = std::str::from_utf8(kv).ok()?;
            s.strip_prefix(name)?.strip_prefix('=').map(str::to_owned)
        })
    };
    if let Some(rank) = var("RANK") {
        let local = var("LOCAL_RANK").map_or_else(String::new, |l| format!(", local rank {l}"));
        let world = var("WORLD_SIZE").map_or_else(String::new, |w| format!(" of {w}"));
        return Some(format!("rank {rank}{world}{local}"));
    }
    if let Some(r) = cmdline.split_whitespace().find_map(|a| {
        a.strip_prefix("--local-rank=")
            .or_else(|| a.strip_prefix("--local_rank="))
    }) {
        return Some(format!("rank (local {r})"));
    }
    None
}

/// A role from lineage: a child forked (not executed) by an AI process is a
/// worker (a PyTorch DataLoader worker, a multiprocessing pool member); a
/// program executed by an AI process is a tool it runs.
#[must_use]
pub fn from_lineage(
    parent_is_ai: bool,
    same_exe_as_parent: bool,
    execed: bool,
) -> Option<&'static str> {
    if !parent_is_ai {
        return None;
    }
    if !execed && same_exe_as_parent {
        Some("worker")
    } else if execed {
        Some("tool")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(
            from_identity("torchrun --nproc_per_node 2 train.py", u32::MAX).as_deref(),
            Some("launcher")
        );
        assert_eq!(
            from_identity("python train.py --local-rank=1", u32::MAX).as_deref(),
            Some("rank (local 1)")
        );
        assert_eq!(from_identity("python train.py", u32::MAX), None);
        assert_eq!(from_lineage(true, true, false), Some("worker"));
        assert_eq!(from_lineage(true, false, true), Some("tool"));
        assert_eq!(from_lineage(false, true, false), None);
    }
}
