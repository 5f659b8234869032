//! Acting on verdicts: stop (freeze), kill, resume a whole target tree.
//!
//! * When the tree is in its own cgroup v2 (`run` puts it there), the cgroup
//!   freezer and `cgroup.kill` act on every member at once, and new children
//!   are born inside the cgroup, so none escapes.
//! * Otherwise every known member gets SIGSTOP/SIGKILL/SIGCONT, and the
//!   tree's members are flagged in the kernel's target table: any member
//!   entering a syscall (a child forked just before the verdict included,
//!   since children inherit the flag at fork) is stopped or killed there.
pub mod cgroup;
pub mod identity;
pub mod seccomp;
pub mod supervisor;

use std::{collections::BTreeMap, path::PathBuf};

use ai_forensics_common::target;

use crate::{loader::Targets, output::clock::Clock, policy::rules::Action, target::procfs};

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The action.
    pub action: Action,
    /// Tree acted on.
    pub tree: u32,
    /// `cgroup`, `signals`, or `none`.
    pub method: &'static str,
    /// Processes signalled or flagged.
    pub members: Vec<u32>,
    /// Whether everything worked.
    pub ok: bool,
    /// Errors met.
    pub errors: Vec<String>,
    /// Monotonic time the action completed.
    pub done_ns: u64,
}

/// Acts on target trees.
pub struct Enforcer {
    targets: Targets,
    /// Cgroup of each tree that has one.
    pub cgroups: BTreeMap<u32, PathBuf>,
    /// Trees currently frozen.
    pub frozen: std::collections::BTreeSet<u32>,
    /// Trees killed.
    pub killed: std::collections::BTreeSet<u32>,
}

fn signal(pid: u32, sig: i32) -> Result<(), String> {
    // SAFETY: kill(2) with a pid and a signal number.
    if unsafe { libc::kill(pid as i32, sig) } == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // A member that already exited is not an error.
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(format!("signal {sig} to {pid}: {e}"))
        }
    }
}

impl Enforcer {
    /// An enforcer over the kernel's target table.
    #[must_use]
    pub fn new(targets: Targets) -> Self {
        Self {
            targets,
            cgroups: BTreeMap::new(),
            frozen: Default::default(),
            killed: Default::default(),
        }
    }

    /// Members: the known ones plus their living descendants in `/proc`
    /// (children whose fork record has not been processed yet).
    fn all_members(known: &[u32]) -> Vec<u32> {
        let mut all: Vec<u32> = known.to_vec();
        for p in known {
            all.extend(procfs::descendants(*p));
        }
        all.sort_unstable();
        all.dedup();
        all.retain(|p| *p != std::process::id());
        all
    }

    /// Applies `action` to tree `tree`, whose known members are `members`.
    pub fn apply(&mut self, action: Action, tree: u32, members: &[u32]) -> Done {
        let mut errors = Vec::new();
        let all = Self::all_members(members);
        let cg = self.cgroups.get(&tree).cloned();
        let method = match (action, &cg) {
            (Action::Log | Action::Alert | Action::Deny, _) => "none",
            (_, Some(_)) => "cgroup",
            (_, None) => "signals",
        };
        match action {
            Action::Log | Action::Alert | Action::Deny => {}
            Action::Stop => {
                for p in &all {
                    if let Err(e) = self.targets.set_flags(*p, target::FROZEN, 0) {
                        errors.push(e.to_string());
                    }
                }
                match &cg {
                    Some(dir) => {
                        if let Err(e) = cgroup::freeze(dir, true) {
                            errors.push(e);
                        }
                    }
                    None => {
                        errors.extend(all.iter().filter_map(|p| signal(*p, libc::SIGSTOP).err()))
                    }
                }
                self.frozen.insert(tree);
            }
            Action::Kill => {
                for p in &all {
                    if let Err(e) = self.targets.set_flags(*p, target::KILLED, 0) {
                        errors.push(e.to_string());
                    }
                }
                match &cg {
                    Some(dir) => {
                        if let Err(e) = cgroup::kill(dir) {
                            errors.push(e);
                            errors
                                .extend(all.iter().filter_map(|p| signal(*p, libc::SIGKILL).err()));
                        }
                    }
                    None => {
                        errors.extend(all.iter().filter_map(|p| signal(*p, libc::SIGKILL).err()))
                    }
                }
                self.killed.insert(tree);
            }
            Action::Resume => {
                for p in &all {
                    if let Err(e) = self.targets.set_flags(*p, 0, target::FROZEN) {
                        errors.push(e.to_string());
                    }
                }
                match &cg {
                    Some(dir) => {
                        if let Err(e) = cgroup::freeze(dir, false) {
                            errors.push(e);
                        }
                    }
                    None => {
                        errors.extend(all.iter().filter_map(|p| signal(*p, libc::SIGCONT).err()))
                    }
                }
                self.frozen.remove(&tree);
            }
        }
        Done {
            action,
            tree,
            method,
            members: all,
            ok: errors.is_empty(),
            errors,
            done_ns: Clock::monotonic_now(),
        }
    }

    /// A process born into a tree under an action: it gets the same.
    pub fn newcomer(&mut self, tree: u32, pid: u32) {
        if self.killed.contains(&tree) {
            let _ = self.targets.set_flags(pid, target::KILLED, 0);
            let _ = signal(pid, libc::SIGKILL);
        } else if self.frozen.contains(&tree) && !self.cgroups.contains_key(&tree) {
            let _ = self.targets.set_flags(pid, target::FROZEN, 0);
            let _ = signal(pid, libc::SIGSTOP);
        }
    }
}
