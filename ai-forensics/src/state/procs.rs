//! The process table: identity and lineage of every traced process.
//!
//! Filled from `/proc` at attach time and from the kernel's fork, exec and
//! exit records afterwards, so short-lived processes keep an identity even
//! when `/proc` no longer has them. Bounded like the fd tables.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};

use crate::{
    decode::{Exec, Exit, Fork, escape},
    target::procfs,
};

/// Most processes remembered (exited ones are forgotten first).
pub const MAX_PROCESSES: usize = 65_536;
/// Most exited processes remembered for the summary; the oldest exits are
/// forgotten first (counted; their fork, exec and exit records are in the
/// stream and the store).
pub const MAX_EXITED: usize = 16_384;

/// How the process came under tracing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Started by `ai-forensics run`.
    Launched,
    /// Found running when tracing began.
    Attached,
    /// Created by a traced process.
    Forked,
    /// Matched a selector (name, executable, cgroup, discovery) later.
    Matched,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::Launched => "launched",
            Self::Attached => "attached",
            Self::Forked => "forked",
            Self::Matched => "matched",
        }
    }
}

/// One process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: Option<u32>,
    /// Target tree.
    pub tree: u32,
    /// Name.
    pub comm: Vec<u8>,
    /// Executable.
    pub exe: Option<Vec<u8>>,
    /// Command line.
    pub cmdline: Vec<Vec<u8>>,
    /// Real uid.
    pub uid: Option<u32>,
    /// cgroup v2 path.
    pub cgroup: Option<String>,
    /// Container id from the cgroup path.
    pub container: Option<String>,
    /// Monotonic time it was first seen (fork time for forked ones).
    pub start_ns: Option<u64>,
    /// Monotonic time its last thread exited.
    pub exit_ns: Option<u64>,
    /// Threads seen.
    pub threads: BTreeSet<u32>,
    /// How it came under tracing.
    pub origin: Origin,
    /// Why it is traced (selector match, discovery reason).
    pub reason: Option<String>,
    /// Generation the kernel gave it at fork (0 for processes found,
    /// launched or adopted): with the pid, the key of its kernel counts.
    pub generation: u32,
    /// `exit_ns` comes from its exit record (no record of it can follow),
    /// not from finding it gone from `/proc` while its records were still
    /// queued.
    exit_seen: bool,
}

impl Process {
    fn new(pid: u32, tree: u32, origin: Origin) -> Self {
        Self {
            pid,
            ppid: None,
            tree,
            comm: Vec::new(),
            exe: None,
            cmdline: Vec::new(),
            uid: None,
            cgroup: None,
            container: None,
            start_ns: None,
            exit_ns: None,
            threads: BTreeSet::from([pid]),
            origin,
            reason: None,
            generation: 0,
            exit_seen: false,
        }
    }

    fn fill_from_proc(&mut self) {
        if let Some(i) = procfs::info(self.pid) {
            self.ppid = self.ppid.or(i.ppid);
            if !i.comm.is_empty() {
                self.comm = i.comm;
            }
            self.exe = i.exe.or(self.exe.take());
            if !i.cmdline.is_empty() {
                self.cmdline = i.cmdline;
            }
            self.uid = i.uid;
            self.container = i.cgroup.as_deref().and_then(procfs::container_id);
            self.cgroup = i.cgroup;
        }
    }

    /// JSON identity record.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "pid": self.pid,
            "ppid": self.ppid,
            "tree": self.tree,
            "comm": escape::escape(&self.comm),
            "exe": self.exe.as_deref().map(escape::escape),
            "cmdline": self.cmdline.iter().map(|a| escape::escape(a)).collect::<Vec<_>>(),
            "uid": self.uid,
            "cgroup": self.cgroup.as_deref().map(|c| escape::escape(c.as_bytes())),
            "container": self.container,
            "start_ns": self.start_ns,
            "exit_ns": self.exit_ns,
            "threads": self.threads.len(),
            "origin": self.origin.as_str(),
            "reason": self.reason,
            "generation": self.generation,
        })
    }
}

/// All processes, plus the set still alive.
#[derive(Debug, Default)]
pub struct Processes {
    map: BTreeMap<u32, Process>,
    live: BTreeSet<u32>,
    /// Exits in the order they came, `(pid, exit time)`: which exited
    /// process to forget next, without a scan.
    exited: VecDeque<(u32, u64)>,
    /// Exited processes whose pid a newer process took, by pid and exit
    /// time: still listed, and forgotten in exit order like the others.
    retired: BTreeMap<(u32, u64), Process>,
    /// Live processes let go because the table was full of live ones: not
    /// taken for new processes when their records come (at most
    /// `MAX_SPILL`; an exit or a fork on the pid clears it).
    dropped_alive: BTreeSet<u32>,
    /// Exited processes kept in memory when a store takes the rest (see
    /// [`Processes::spill_to_store`]); `MAX_EXITED` otherwise.
    keep_exited: Option<usize>,
    /// Forgotten processes waiting to be written to the store.
    spill: Option<Vec<Process>>,
    /// Processes forgotten because of the bounds (in no table any more).
    pub evicted: u64,
    /// Processes handed to the store when forgotten from memory.
    pub spilled: u64,
    /// Pids let go since the last [`Processes::take_forgotten`]: what other
    /// tables hold for them (timelines, memory counters) can go too.
    forgotten: Vec<u32>,
}

/// Forgotten processes waiting for the store, at most (the writer is
/// behind when this fills; further ones are then only counted).
const MAX_SPILL: usize = 65_536;

impl Processes {
    /// The process with id `pid`.
    #[must_use]
    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.map.get(&pid)
    }

    /// Every process: the ones holding their pid, by pid, then those whose
    /// pid a newer process took.
    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.map.values().chain(self.retired.values())
    }

    /// Whether `pid`'s process was let go alive (the table was full): its
    /// records are not a new process's.
    #[must_use]
    pub fn dropped_alive(&self, pid: u32) -> bool {
        self.dropped_alive.contains(&pid)
    }

    /// Pids of processes believed alive.
    #[must_use]
    pub fn live(&self) -> &BTreeSet<u32> {
        &self.live
    }

    /// Living members of target tree `tree`.
    #[must_use]
    pub fn members(&self, tree: u32) -> Vec<u32> {
        self.live
            .iter()
            .copied()
            .filter(|p| self.map.get(p).is_some_and(|x| x.tree == tree))
            .collect()
    }

    /// Tree of process `pid`.
    #[must_use]
    pub fn tree_of(&self, pid: u32) -> Option<u32> {
        self.map.get(&pid).map(|p| p.tree)
    }

    /// With a store: exited processes past `keep` are handed to it (taken
    /// with [`Processes::take_spilled`]) instead of being forgotten, so the
    /// store's processes table lists every process while memory holds a
    /// bounded few.
    pub fn spill_to_store(&mut self, keep: usize) {
        self.keep_exited = Some(keep.min(MAX_EXITED));
        self.spill = Some(Vec::new());
    }

    /// Processes forgotten since the last call, for the store.
    pub fn take_spilled(&mut self) -> Vec<Process> {
        self.spill.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Gives the store back processes it could not take now.
    pub fn unspill(&mut self, mut v: Vec<Process>) {
        if let Some(s) = &mut self.spill {
            v.append(s);
            *s = v;
        }
    }

    /// Pids let go since the last call.
    pub fn take_forgotten(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.forgotten)
    }

    fn forget(&mut self, p: Process) {
        // What other tables hold for a pid that a newer process took is
        // that process's now.
        if self.forgotten.len() < MAX_SPILL && !self.map.contains_key(&p.pid) {
            self.forgotten.push(p.pid);
        }
        match &mut self.spill {
            Some(s) if s.len() < MAX_SPILL => {
                s.push(p);
                self.spilled += 1;
            }
            _ => self.evicted += 1,
        }
    }

    fn make_room(&mut self) {
        if self.map.len() + self.retired.len() < MAX_PROCESSES || self.forget_oldest_exited() {
            return;
        }
        // Every remembered process is alive: the lowest pid goes.
        if let Some(v) = self.map.keys().next().copied() {
            self.live.remove(&v);
            if self.dropped_alive.len() < MAX_SPILL {
                self.dropped_alive.insert(v);
            }
            if let Some(p) = self.map.remove(&v) {
                self.forget(p);
            }
        }
    }

    /// Forgets the process that exited first, whether it still holds its
    /// pid or a newer process took it. Queue entries of processes already
    /// forgotten are skipped.
    fn forget_oldest_exited(&mut self) -> bool {
        while let Some((pid, ts)) = self.exited.pop_front() {
            if self
                .map
                .get(&pid)
                .is_some_and(|p| p.exit_ns == Some(ts) && !self.live.contains(&pid))
                && let Some(p) = self.map.remove(&pid)
            {
                self.forget(p);
                return true;
            }
            if let Some(p) = self.retired.remove(&(pid, ts)) {
                self.forget(p);
                return true;
            }
        }
        false
    }

    /// Makes room for a new process with `pid`: an exited process that
    /// still holds it moves aside (kept, and forgotten in exit order). A
    /// process believed alive stays. So does one only found gone from
    /// `/proc` (its exit record not read yet) unless `new` says the pid is
    /// surely another process's now (a fork record): a later record of its
    /// own (an exec) is still its, and it counts as alive again. Returns
    /// whether the pid is free.
    fn free_pid(&mut self, pid: u32, new: bool) -> bool {
        let Some(old) = self.map.get_mut(&pid) else {
            return true;
        };
        let Some(exit) = old.exit_ns.filter(|_| !self.live.contains(&pid)) else {
            return false;
        };
        if !old.exit_seen && !new {
            old.exit_ns = None;
            return false;
        }
        if let Some(old) = self.map.remove(&pid) {
            self.retired.insert((pid, exit), old);
        }
        true
    }

    /// A fork at `ts` made a new process with `pid`, which a process believed
    /// alive still holds. If that one started before the fork, it is gone
    /// and its exit record was lost: it moves aside like an exited process
    /// (its exit time unknown, queued as of the fork). If not, it is this
    /// very child, seen in `/proc` at attach, and the fork record replaces
    /// it.
    fn retire_unseen_exit(&mut self, pid: u32, ts: u64) {
        if self
            .map
            .get(&pid)
            .is_none_or(|p| p.start_ns.is_none_or(|s| s >= ts))
        {
            return;
        }
        if let Some(old) = self.map.remove(&pid) {
            self.retired.insert((pid, ts), old);
            self.exited_at(pid, ts);
        }
    }

    /// A process ended at `ts`: queued to be forgotten in exit order.
    fn exited_at(&mut self, pid: u32, ts: u64) {
        self.exited.push_back((pid, ts));
        self.trim_exited();
    }

    fn trim_exited(&mut self) {
        let keep = self.keep_exited.unwrap_or(MAX_EXITED);
        while self.exited.len() > keep {
            self.forget_oldest_exited();
        }
    }

    /// A process found running or launched: identity from `/proc`;
    /// `generation` keys its kernel counts.
    pub fn observe(
        &mut self,
        pid: u32,
        tree: u32,
        origin: Origin,
        ts_ns: Option<u64>,
        generation: u32,
    ) -> &Process {
        if self.free_pid(pid, false) {
            self.make_room();
            let mut p = Process::new(pid, tree, origin);
            p.start_ns = ts_ns;
            p.generation = generation;
            p.fill_from_proc();
            for t in procfs::threads(pid) {
                p.threads.insert(t);
            }
            self.map.insert(pid, p);
        }
        self.live.insert(pid);
        &self.map[&pid]
    }

    /// Records why `pid` is traced.
    pub fn set_reason(&mut self, pid: u32, reason: String) {
        if let Some(p) = self.map.get_mut(&pid) {
            p.reason = Some(reason);
        }
    }

    /// A fork record. Returns true for a new process (not a thread).
    pub fn fork(&mut self, f: &Fork) -> bool {
        if f.is_thread() {
            if let Some(p) = self.map.get_mut(&f.tgid) {
                p.threads.insert(f.child_tid);
            }
            return false;
        }
        if !self.free_pid(f.child_tgid, true) {
            self.retire_unseen_exit(f.child_tgid, f.ts_ns);
        }
        self.dropped_alive.remove(&f.child_tgid);
        self.make_room();
        let mut p = Process::new(f.child_tgid, f.tree, Origin::Forked);
        p.ppid = Some(f.tgid);
        p.start_ns = Some(f.ts_ns);
        p.comm = f.comm.clone();
        p.generation = f.child_gen;
        if let Some(parent) = self.map.get(&f.tgid) {
            p.exe.clone_from(&parent.exe);
            p.cmdline.clone_from(&parent.cmdline);
            p.uid = parent.uid;
            p.cgroup.clone_from(&parent.cgroup);
            p.container.clone_from(&parent.container);
        }
        self.map.insert(f.child_tgid, p);
        self.live.insert(f.child_tgid);
        true
    }

    /// An exec record: the new program's identity.
    pub fn exec(&mut self, e: &Exec, origin: Origin) {
        if self.free_pid(e.tgid, false) {
            self.make_room();
            let mut p = Process::new(e.tgid, e.tree, origin);
            p.start_ns = Some(e.ts_ns);
            self.map.insert(e.tgid, p);
        }
        self.live.insert(e.tgid);
        let Some(p) = self.map.get_mut(&e.tgid) else {
            return;
        };
        p.comm = e.comm.clone();
        p.exe = Some(e.filename.clone());
        // The new command line and resolved executable are in /proc now.
        if let Some(i) = procfs::info(e.tgid) {
            if !i.cmdline.is_empty() {
                p.cmdline = i.cmdline;
            }
            if let Some(exe) = i.exe {
                p.exe = Some(exe);
            }
            p.uid = i.uid.or(p.uid);
        }
        if e.old_tid != e.tid {
            p.threads.retain(|t| *t == e.tid);
        }
    }

    /// Sets the argv recorded by an execve entry record.
    pub fn set_cmdline(&mut self, pid: u32, argv: Vec<Vec<u8>>) {
        if let Some(p) = self.map.get_mut(&pid) {
            p.cmdline = argv;
        }
    }

    /// An exit record. Returns true when the whole process is gone.
    pub fn exit(&mut self, e: &Exit) -> bool {
        let mut ended = false;
        if let Some(p) = self.map.get_mut(&e.tgid) {
            if p.threads.len() < 65_536 {
                p.threads.insert(e.tid);
            }
            if e.group_dead {
                p.exit_ns = Some(e.ts_ns);
                p.exit_seen = true;
                ended = true;
            }
        }
        if e.group_dead {
            self.live.remove(&e.tgid);
            self.dropped_alive.remove(&e.tgid);
        }
        if ended {
            self.exited_at(e.tgid, e.ts_ns);
        }
        e.group_dead
    }

    /// A thread seen in a syscall record. Returns false when no process
    /// holds `tgid` but one whose exit record was read (the record is a new
    /// process's).
    pub fn saw_thread(&mut self, tgid: u32, tid: u32, comm: &[u8]) -> bool {
        let Some(p) = self.map.get_mut(&tgid) else {
            return false;
        };
        if p.threads.len() < 65_536 {
            p.threads.insert(tid);
        }
        if tid == tgid && p.comm.is_empty() {
            p.comm = comm.to_vec();
        }
        !p.exit_seen
    }

    /// Forgets live processes whose exit record was lost (they no longer
    /// exist in `/proc`). Returns how many.
    pub fn reap_vanished(&mut self, now_ns: u64) -> usize {
        let gone: Vec<u32> = self
            .live
            .iter()
            .copied()
            .filter(|p| !procfs::alive(*p))
            .collect();
        for p in &gone {
            self.live.remove(p);
            if let Some(proc_) = self.map.get_mut(p)
                && proc_.exit_ns.is_none()
            {
                proc_.exit_ns = Some(now_ns);
                self.exited.push_back((*p, now_ns));
            }
        }
        self.trim_exited();
        gone.len()
    }
}

/// The exit record of a whole process `pid` at `ts_ns` (for tests).
#[cfg(test)]
pub(crate) fn group_exit(pid: u32, ts_ns: u64) -> Exit {
    Exit {
        ts_ns,
        tgid: pid,
        tid: pid,
        tree: 1,
        group_dead: true,
        comm: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fork(parent: u32, child: u32, tid: u32) -> Fork {
        Fork {
            ts_ns: 10,
            tgid: parent,
            tid: parent,
            child_tid: tid,
            child_tgid: child,
            tree: 1,
            child_gen: 0,
            comm: b"p".to_vec(),
        }
    }

    #[test]
    fn lineage() {
        let mut ps = Processes::default();
        assert!(ps.fork(&fork(4_000_000, 4_000_001, 4_000_001)));
        assert!(!ps.fork(&fork(4_000_001, 4_000_001, 4_000_002)));
        let c = ps.get(4_000_001).unwrap();
        assert_eq!(c.ppid, Some(4_000_000));
        assert_eq!(c.threads.len(), 2);
        assert!(ps.live().contains(&4_000_001));
        let thread_exit = Exit {
            ts_ns: 20,
            tgid: 4_000_001,
            tid: 4_000_002,
            tree: 1,
            group_dead: false,
            comm: vec![],
        };
        assert!(!ps.exit(&thread_exit));
        assert!(ps.live().contains(&4_000_001));
        let exit = Exit {
            group_dead: true,
            tid: 4_000_001,
            ..thread_exit
        };
        assert!(ps.exit(&exit));
        assert!(!ps.live().contains(&4_000_001));
        assert_eq!(ps.get(4_000_001).unwrap().exit_ns, Some(20));
    }

    /// With a store, exited processes past the kept few are handed over in
    /// exit order, and handed back when the store could not take them.
    #[test]
    fn spilled_processes_go_to_the_store() {
        let mut ps = Processes::default();
        ps.spill_to_store(4);
        for pid in 10..20u32 {
            ps.fork(&fork(1, pid, pid));
            ps.exit(&group_exit(pid, u64::from(pid)));
        }
        let out = ps.take_spilled();
        assert_eq!(
            out.iter().map(|p| p.pid).collect::<Vec<_>>(),
            (10..16).collect::<Vec<_>>()
        );
        assert_eq!((ps.spilled, ps.evicted, ps.iter().count()), (6, 0, 4));
        ps.unspill(out);
        assert_eq!(ps.take_spilled().len(), 6);
        assert!(ps.take_spilled().is_empty());
    }

    /// Exited processes are forgotten oldest first past `MAX_EXITED`, and
    /// a pid reused by a live process is not forgotten with the old one.
    #[test]
    fn exited_are_bounded_in_exit_order() {
        let mut ps = Processes::default();
        let n = MAX_EXITED as u32 + 100;
        let exit = group_exit;
        for pid in 2..2 + n {
            ps.fork(&fork(1, pid, pid));
        }
        // pid 2 exits first, then is reused by a live process.
        ps.exit(&exit(2, 1));
        ps.fork(&fork(1, 2, 2));
        for pid in 3..2 + n {
            ps.exit(&exit(pid, u64::from(pid)));
        }
        assert_eq!(
            ps.iter().filter(|p| p.exit_ns.is_some()).count(),
            MAX_EXITED
        );
        assert!(
            ps.get(2).is_some_and(|p| p.exit_ns.is_none()),
            "the reused pid stays"
        );
        // The first exits were forgotten, the last kept.
        assert!(ps.get(3).is_none());
        assert!(ps.get(n + 1).is_some());
        // The first process with pid 2 is among them, counted.
        assert_eq!(ps.evicted, u64::from(n) - MAX_EXITED as u64);
    }

    /// A pid reused while the exited process that had it is still kept:
    /// both are listed, each with its own generation, and both reach the
    /// store in exit order; adopting or exec'ing on the pid starts a new
    /// process too, and a live process keeps its entry.
    #[test]
    fn a_reused_pid_keeps_the_exited_process() {
        const P: u32 = 4_000_050;
        const Q: u32 = 4_000_060;
        let exit = group_exit;
        let mut ps = Processes::default();
        ps.spill_to_store(1);
        ps.fork(&Fork {
            child_gen: 3,
            ..fork(1, P, P)
        });
        ps.exit(&exit(P, 100));
        ps.fork(&Fork {
            child_gen: 5,
            ..fork(1, P, P)
        });
        let gens: Vec<(u32, Option<u64>)> = ps.iter().map(|p| (p.generation, p.exit_ns)).collect();
        assert_eq!(gens, vec![(5, None), (3, Some(100))]);
        assert_eq!(ps.get(P).unwrap().generation, 5);
        ps.exit(&exit(P, 200));
        // One exited process is kept: the first goes to the store, and
        // the pid's other tables are not released (the newer one holds it).
        let out = ps.take_spilled();
        assert_eq!(out.iter().map(|p| p.generation).collect::<Vec<_>>(), [3]);
        assert_eq!(ps.iter().count(), 1);
        assert!(ps.take_forgotten().is_empty());
        // A process adopted on the pid, then one exec'ing on it after
        // that one exits: new entries each time.
        let mut ps = Processes::default();
        ps.fork(&fork(1, Q, Q));
        ps.exit(&exit(Q, 10));
        ps.observe(Q, 2, Origin::Matched, Some(20), 7);
        assert_eq!(ps.iter().count(), 2);
        assert!(
            ps.get(Q)
                .is_some_and(|p| p.exit_ns.is_none() && p.tree == 2)
        );
        assert!(ps.live().contains(&Q));
        ps.exit(&exit(Q, 30));
        ps.exec(
            &Exec {
                ts_ns: 40,
                tgid: Q,
                tid: Q,
                old_tid: Q,
                tree: 3,
                filename: b"/bin/true".to_vec(),
                comm: b"true".to_vec(),
                truncated: false,
            },
            Origin::Forked,
        );
        assert_eq!(ps.iter().count(), 3);
        assert_eq!(ps.get(Q).unwrap().tree, 3);
        // A live process on the pid keeps its entry when observed again.
        ps.observe(Q, 9, Origin::Matched, Some(50), 9);
        assert_eq!((ps.iter().count(), ps.get(Q).unwrap().tree), (3, 3));
        assert_eq!(ps.evicted, 0);
    }

    /// A table full of live processes lets the lowest pid go and remembers
    /// it, so its next records do not bring it back (and push another out);
    /// its exit clears that.
    #[test]
    fn a_live_process_let_go_is_not_taken_for_a_new_one() {
        let mut ps = Processes::default();
        let first = 4_000_000u32;
        for pid in first..first + MAX_PROCESSES as u32 + 1 {
            ps.fork(&fork(1, pid, pid));
        }
        assert!(ps.get(first).is_none());
        assert!(ps.dropped_alive(first));
        assert!(!ps.saw_thread(first, first, b"x"));
        assert!(!ps.dropped_alive(first + 1));
        ps.exit(&group_exit(first, 99));
        assert!(!ps.dropped_alive(first));
        assert_eq!(ps.evicted, 1);
    }

    /// A process found gone from `/proc` while its records were still
    /// queued is the same process when they come (no duplicate); after its
    /// exit record, a record on its pid is another process's.
    #[test]
    fn a_process_reaped_before_its_records_are_read_stays_one() {
        const P: u32 = 4_000_080;
        let mut ps = Processes::default();
        ps.fork(&fork(1, P, P));
        assert_eq!(ps.reap_vanished(20), 1);
        assert!(ps.get(P).unwrap().exit_ns.is_some());
        assert!(ps.saw_thread(P, P, b"x"));
        ps.exec(
            &Exec {
                ts_ns: 15,
                tgid: P,
                tid: P,
                old_tid: P,
                tree: 1,
                filename: b"/bin/true".to_vec(),
                comm: b"true".to_vec(),
                truncated: false,
            },
            Origin::Forked,
        );
        assert_eq!(ps.iter().count(), 1);
        assert!(ps.live().contains(&P));
        ps.exit(&group_exit(P, 16));
        assert_eq!(ps.get(P).unwrap().exit_ns, Some(16));
        assert!(!ps.saw_thread(P, P, b"x"));
    }

    /// A fork onto the pid of a process whose exit record was lost: the old
    /// one stays listed (exit unknown) and is forgotten in turn; a fork
    /// record for a child the attach-time scan already found replaces it.
    #[test]
    fn a_lost_exit_does_not_lose_the_process() {
        const P: u32 = 4_000_070;
        let two_forks = |ps: &mut Processes| {
            ps.fork(&Fork {
                ts_ns: 10,
                child_gen: 3,
                ..fork(1, P, P)
            });
            ps.fork(&Fork {
                ts_ns: 50,
                child_gen: 5,
                ..fork(1, P, P)
            });
        };
        let mut ps = Processes::default();
        two_forks(&mut ps);
        let gens: Vec<(u32, Option<u64>)> = ps.iter().map(|p| (p.generation, p.exit_ns)).collect();
        assert_eq!(gens, [(5, None), (3, None)]);
        assert!(ps.live().contains(&P));
        // With a store that keeps no exited process in memory, the old
        // one goes to it at once.
        let mut ps = Processes::default();
        ps.spill_to_store(0);
        two_forks(&mut ps);
        let out = ps.take_spilled();
        assert_eq!(out.iter().map(|p| p.generation).collect::<Vec<_>>(), [3]);
        assert_eq!(ps.iter().count(), 1);
        // Let go before the child took the pid: what other tables hold for
        // it is the old process's.
        assert_eq!(ps.take_forgotten(), [P]);
        // Seen in /proc at 100, its fork record (at 90) comes after: one
        // process.
        let mut ps = Processes::default();
        ps.observe(P, 1, Origin::Attached, Some(100), 0);
        ps.fork(&Fork {
            ts_ns: 90,
            child_gen: 7,
            ..fork(1, P, P)
        });
        assert_eq!(ps.iter().count(), 1);
        assert_eq!(ps.get(P).unwrap().generation, 7);
    }
}
