//! Who is traced: the first thing every program asks.
use ai_forensics_common::{MAX_TREES, config as cfg, target};
use aya_ebpf::helpers::bpf_get_current_cgroup_id;

use crate::{
    config,
    maps::{CGROUPS, TARGETS},
};

/// Tree id of `tgid` when it is a target.
///
/// `TARGETS` is an array indexed by TGID, so the common "not a target" answer
/// costs one inlined array load, no hashing.
#[inline(always)]
pub fn target_of(tgid: u32) -> Option<u32> {
    target_entry(tgid).map(|v| (v & target::TREE_MASK) as u32)
}

/// Raw `TARGETS` value (tree id and flags) when `tgid` is a target.
#[inline(always)]
pub fn target_entry(tgid: u32) -> Option<u64> {
    let c = config::get();
    if c.flags & cfg::ALL != 0 {
        if tgid == c.self_tgid {
            return None;
        }
        // Everything is traced; with per-process counts, a process forked
        // during the run has its generation in the table (nothing else).
        let generation = if c.flags & cfg::PER_PROC != 0 {
            TARGETS.get(tgid).map_or(0, |v| *v & !target::TREE_MASK)
        } else {
            0
        };
        return Some(1 | generation);
    }
    if let Some(v) = TARGETS.get(tgid) {
        let v = *v;
        if v & target::TREE_MASK != 0 {
            return Some(v);
        }
    }
    if c.flags & cfg::CGROUP != 0 && tgid != c.self_tgid {
        // SAFETY: helper without arguments.
        let cg = unsafe { bpf_get_current_cgroup_id() };
        // SAFETY: the value is copied out before the map can change.
        if let Some(tree) = unsafe { CGROUPS.get(cg) } {
            let tree = *tree;
            if tree != 0 && tree < MAX_TREES {
                let _ = TARGETS.set(tgid, u64::from(tree), 0);
                return Some(u64::from(tree));
            }
        }
    }
    None
}

/// Raw `TARGETS` value of `tgid` (tree id and flags), 0 when not a target.
#[inline(always)]
pub fn target_value(tgid: u32) -> u64 {
    TARGETS.get(tgid).copied().unwrap_or(0)
}
