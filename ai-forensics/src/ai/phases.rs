//! Workload phases from the syscall stream: start-up (imports), set-up,
//! model load, data loading, compute, checkpoint writes, serving, idle.
//!
//! Each traced process's activity is put in 100 ms bins: what its syscalls
//! touched (modules, model artefacts, datasets, sockets, memory) and how much
//! CPU it used (sampled from `/proc`). A bin's label is its strongest
//! evidence; runs of equal labels make a phase. Training and inference are
//! then told apart by what the phases and artefacts show.
use std::collections::BTreeMap;

use serde::Serialize;

/// Bin width.
pub const BIN_NS: u64 = 100_000_000;

/// What a syscall says about the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sign {
    /// Loading code: .py/.pyc/.so, site-packages.
    Import,
    /// Heap and anonymous mappings.
    Alloc,
    /// Reading or mapping model weights.
    ModelLoad,
    /// Reading datasets.
    Data,
    /// Writing model artefacts.
    Checkpoint,
    /// Network requests (accept, receive, send).
    Serving,
    /// Anything else.
    Other,
}

#[derive(Clone, Debug, Default)]
struct Bin {
    counts: BTreeMap<Sign, u32>,
    cpu_ns: u64,
    /// The first 16 distinct syscalls of the bin (index into `names`), with
    /// their counts.
    first_syscalls: Vec<(u16, u32)>,
}

/// A phase of one process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    /// `startup`, `setup`, `model-load`, `data-loading`, `compute`, `checkpoint`, `serving`, `idle`.
    pub name: &'static str,
    /// Start (monotonic ns).
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// What showed it.
    pub evidence: String,
    /// Periodic rate inside the phase, if any (cycles per second).
    pub rate_per_s: Option<f64>,
}

/// Timelines of every process. Live processes keep raw bins and stamps;
/// an exited one keeps only its finished timeline. Everything is bounded:
/// what does not fit is counted in `truncated`.
#[derive(Debug, Default)]
pub struct Phases {
    bins: BTreeMap<u32, BTreeMap<u64, Bin>>,
    /// Timestamps of syscalls per process (bounded), for periodicity.
    stamps: BTreeMap<u32, Vec<(u64, u16)>>,
    names: Vec<String>,
    /// Finished timelines of exited processes.
    done: BTreeMap<u32, Vec<Phase>>,
    /// Bins and stamps held now, over all live processes.
    held_bins: usize,
    held_stamps: usize,
    /// Syscalls or processes left out of the timelines by the bounds.
    pub truncated: u64,
}

/// Stamps kept per process.
const MAX_STAMPS: usize = 200_000;
/// Stamps kept over all live processes (16 bytes each).
const MAX_HELD_STAMPS: usize = 2_000_000;
/// Bins kept over all live processes (about 100 bytes each; 100 ms each).
const MAX_HELD_BINS: usize = 200_000;
/// Live processes with a timeline.
const MAX_LIVE: usize = 1024;
/// Finished timelines kept.
const MAX_DONE: usize = 16_384;

impl Phases {
    /// Records one syscall's sign.
    pub fn note(&mut self, pid: u32, ts: u64, sign: Sign, syscall: &str) {
        if self.bins.len() >= MAX_LIVE && !self.bins.contains_key(&pid) {
            self.truncated += 1;
            return;
        }
        let idx = match self.names.iter().position(|n| n == syscall) {
            Some(i) => i as u16,
            None => {
                self.names.push(syscall.to_owned());
                (self.names.len() - 1) as u16
            }
        };
        let bins = self.bins.entry(pid).or_default();
        let key = ts / BIN_NS;
        if !bins.contains_key(&key) {
            if self.held_bins >= MAX_HELD_BINS {
                self.truncated += 1;
                return;
            }
            self.held_bins += 1;
        }
        let b = bins.entry(key).or_default();
        *b.counts.entry(sign).or_default() += 1;
        if let Some(pos) = b.first_syscalls.iter().position(|(i, _)| *i == idx) {
            b.first_syscalls[pos].1 += 1;
        } else if b.first_syscalls.len() < 16 {
            b.first_syscalls.push((idx, 1));
        }
        let st = self.stamps.entry(pid).or_default();
        if st.len() < MAX_STAMPS && self.held_stamps < MAX_HELD_STAMPS {
            st.push((ts, idx));
            self.held_stamps += 1;
        }
    }

    /// A process exited: its timeline is made now and its raw bins and
    /// stamps are freed.
    pub fn finish(&mut self, pid: u32) {
        if !self.bins.contains_key(&pid) {
            return;
        }
        let tl = self.timeline(pid);
        if let Some(b) = self.bins.remove(&pid) {
            self.held_bins -= b.len();
        }
        if let Some(st) = self.stamps.remove(&pid) {
            self.held_stamps -= st.len();
        }
        if self.done.len() < MAX_DONE {
            self.done.insert(pid, tl);
        } else {
            self.truncated += 1;
        }
    }

    /// CPU time the process used up to `ts` (from `/proc`), as a delta.
    pub fn cpu(&mut self, pid: u32, ts: u64, delta_ns: u64) {
        if let Some(t) = self.bins.get_mut(&pid) {
            t.entry(ts / BIN_NS).or_default().cpu_ns += delta_ns;
        }
    }

    fn label(&self, b: &Bin, seen_compute: bool) -> (&'static str, String) {
        let c = |s| b.counts.get(&s).copied().unwrap_or(0);
        let busy = b.cpu_ns > BIN_NS / 4;
        let top = b
            .first_syscalls
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(i, n)| format!("{n}x {}", self.names[usize::from(*i)]))
            .unwrap_or_default();
        if c(Sign::Checkpoint) > 0 {
            return (
                "checkpoint",
                format!("{} writes to model artefacts", c(Sign::Checkpoint)),
            );
        }
        if c(Sign::ModelLoad) > 0 {
            return (
                "model-load",
                format!("{} reads/maps of model weights", c(Sign::ModelLoad)),
            );
        }
        if c(Sign::Data) > 0 {
            return ("data-loading", format!("{} dataset reads", c(Sign::Data)));
        }
        if c(Sign::Serving) > 0 {
            return ("serving", format!("{} socket requests", c(Sign::Serving)));
        }
        if c(Sign::Import) > c(Sign::Alloc) && c(Sign::Import) > 0 && !seen_compute {
            return (
                "startup",
                format!("{} module loads (imports)", c(Sign::Import)),
            );
        }
        if busy {
            let cpu = format!("{:.0}% CPU", b.cpu_ns as f64 * 100.0 / BIN_NS as f64);
            return if !seen_compute && c(Sign::Alloc) > 0 {
                ("setup", format!("{cpu}, {} allocations", c(Sign::Alloc)))
            } else {
                ("compute", format!("{cpu}; {top}"))
            };
        }
        if b.counts.values().sum::<u32>() == 0 {
            return ("idle", "no syscalls, little CPU".into());
        }
        if !seen_compute && c(Sign::Alloc) + c(Sign::Import) > 0 {
            return ("setup", format!("{} allocations", c(Sign::Alloc)));
        }
        ("compute", top)
    }

    /// The phases of `pid`.
    #[must_use]
    pub fn timeline(&self, pid: u32) -> Vec<Phase> {
        if let Some(tl) = self.done.get(&pid) {
            return tl.clone();
        }
        let Some(bins) = self.bins.get(&pid) else {
            return Vec::new();
        };
        let (Some(first), Some(last)) = (bins.keys().next().copied(), bins.keys().last().copied())
        else {
            return Vec::new();
        };
        let mut out: Vec<Phase> = Vec::new();
        let mut seen_compute = false;
        let empty = Bin::default();
        for k in first..=last {
            let b = bins.get(&k).unwrap_or(&empty);
            let (name, evidence) = self.label(b, seen_compute);
            seen_compute |= name == "compute";
            match out.last_mut() {
                Some(p) if p.name == name => p.end_ns = (k + 1) * BIN_NS,
                _ => out.push(Phase {
                    name,
                    start_ns: k * BIN_NS,
                    end_ns: (k + 1) * BIN_NS,
                    evidence,
                    rate_per_s: None,
                }),
            }
        }
        // Short idle gaps (under 300 ms) inside a phase belong to it:
        // sampling granularity, not a change of phase.
        let mut merged: Vec<Phase> = Vec::new();
        for p in out {
            let short_gap = |q: &Phase| q.name == "idle" && q.end_ns - q.start_ns < 3 * BIN_NS;
            match merged.as_mut_slice() {
                [.., a, b] if short_gap(b) && a.name == p.name => {
                    a.end_ns = p.end_ns;
                    merged.pop();
                }
                [.., a] if a.name == p.name => a.end_ns = p.end_ns,
                _ => merged.push(p),
            }
        }
        let mut out = merged;
        for p in out
            .iter_mut()
            .filter(|p| matches!(p.name, "compute" | "serving"))
        {
            p.rate_per_s = self.periodic(pid, p.start_ns, p.end_ns);
        }
        out
    }

    /// A periodic syscall inside a window: the most frequent one whose
    /// intervals are regular (coefficient of variation under 0.5).
    fn periodic(&self, pid: u32, start: u64, end: u64) -> Option<f64> {
        let st = self.stamps.get(&pid)?;
        let mut by: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
        for (t, i) in st.iter().filter(|(t, _)| *t >= start && *t < end) {
            by.entry(*i).or_default().push(*t);
        }
        let (_, ts) = by
            .into_iter()
            .filter(|(i, v)| v.len() >= 4 && !self.names[*i as usize].starts_with("clock"))
            .max_by_key(|(_, v)| v.len())?;
        let iv: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = iv.iter().sum::<f64>() / iv.len() as f64;
        let var = iv.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / iv.len() as f64;
        (mean > 0.0 && var.sqrt() / mean < 0.5).then(|| 1e9 / mean)
    }
}

/// Training, inference or serving, with a confidence, from evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// `training`, `inference`, `serving` or `unknown`.
    pub kind: &'static str,
    /// 0..1.
    pub confidence: f64,
    /// What decided it.
    pub evidence: Vec<String>,
}

/// Classifies a process from its phases and its artefact traffic.
#[must_use]
pub fn classify(
    phases: &[Phase],
    checkpoint_bytes: u64,
    weights_read: u64,
    dataset_read: u64,
) -> Classification {
    let mut train = 0.0;
    let mut infer = 0.0;
    let mut serve = 0.0;
    let mut evidence = Vec::new();
    if checkpoint_bytes > 0 {
        train += 3.0;
        evidence.push(format!(
            "wrote {checkpoint_bytes} bytes of model checkpoints"
        ));
    }
    if dataset_read > 0 {
        train += 1.0;
        evidence.push(format!("read {dataset_read} bytes of datasets"));
    }
    if weights_read > 0 && checkpoint_bytes == 0 {
        infer += 3.0;
        evidence.push(format!(
            "read {weights_read} bytes of model weights and wrote none"
        ));
    }
    let serving = phases.iter().filter(|p| p.name == "serving").count();
    if serving > 0 {
        serve += 2.0 + serving as f64;
        evidence.push(format!("{serving} serving phases (socket requests)"));
    }
    let compute_ns: u64 = phases
        .iter()
        .filter(|p| p.name == "compute")
        .map(|p| p.end_ns - p.start_ns)
        .sum();
    let checkpoints = phases.iter().filter(|p| p.name == "checkpoint").count();
    if checkpoints > 1 {
        train += 1.0;
        evidence.push(format!("{checkpoints} checkpoint phases between compute"));
    }
    if compute_ns > 0 {
        evidence.push(format!("{:.2} s of compute", compute_ns as f64 / 1e9));
    }
    let total = train + infer + serve;
    if total == 0.0 {
        return Classification {
            kind: "unknown",
            confidence: 0.0,
            evidence,
        };
    }
    let (kind, score) = if train >= infer && train >= serve {
        ("training", train)
    } else if serve > infer {
        ("serving", serve)
    } else {
        ("inference", infer)
    };
    Classification {
        kind,
        confidence: (score / total * 100.0).round() / 100.0,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_in_order() {
        let mut p = Phases::default();
        let s = BIN_NS;
        for i in 0..5 {
            p.note(1, i * s / 2, Sign::Import, "openat");
        }
        p.note(1, 3 * s, Sign::Alloc, "mmap");
        p.cpu(1, 3 * s, s / 2);
        for b in 4..8 {
            p.note(1, b * s, Sign::Other, "futex");
            p.cpu(1, b * s, s);
        }
        p.note(1, 8 * s, Sign::Checkpoint, "write");
        p.cpu(1, 9 * s, s);
        p.note(1, 9 * s, Sign::Other, "futex");
        let names: Vec<&str> = p.timeline(1).iter().map(|x| x.name).collect();
        assert_eq!(
            names,
            ["startup", "setup", "compute", "checkpoint", "compute"]
        );
        let c = classify(&p.timeline(1), 1000, 0, 0);
        assert_eq!(c.kind, "training");
        let i = classify(&[], 0, 5000, 0);
        assert_eq!((i.kind, i.confidence), ("inference", 1.0));
    }

    #[test]
    fn periodic_rates() {
        let mut p = Phases::default();
        for i in 0..50u64 {
            p.note(1, i * 20_000_000, Sign::Other, "futex");
            p.cpu(1, i * 20_000_000, 20_000_000);
        }
        let t = p.timeline(1);
        let r = t.iter().find_map(|x| x.rate_per_s).unwrap();
        assert!((r - 50.0).abs() < 1.0, "{r}");
    }
}
