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

/// Interval statistics of one syscall's stamps (Welford's running mean and
/// sum of squared deviations), for periodicity without keeping the stamps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ticks {
    first: u64,
    last: u64,
    stamps: u64,
    mean: f64,
    m2: f64,
}

impl Ticks {
    fn new(ts: u64) -> Self {
        Self {
            first: ts,
            last: ts,
            stamps: 1,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// One more stamp; a stamp older than the last counts as a zero interval.
    fn add(&mut self, ts: u64) {
        let x = ts.saturating_sub(self.last) as f64;
        self.last = self.last.max(ts);
        self.stamps += 1;
        let n = (self.stamps - 1) as f64;
        let d = x - self.mean;
        self.mean += d / n;
        self.m2 += d * (x - self.mean);
    }

    /// Appends `b`, which follows `self` in time: the interval between the
    /// two counts, then `b`'s intervals are combined (Chan et al.).
    fn then(&mut self, b: &Self) {
        self.add(b.first);
        let na = (self.stamps - 1) as f64;
        let nb = (b.stamps - 1) as f64;
        if nb > 0.0 {
            let n = na + nb;
            let d = b.mean - self.mean;
            self.mean += d * nb / n;
            self.m2 += b.m2 + d * d * na * nb / n;
        }
        self.stamps += b.stamps - 1;
        self.last = self.last.max(b.last);
    }

    /// Cycles per second when the intervals are regular (coefficient of
    /// variation under 0.5) and there are at least four stamps.
    fn rate(&self) -> Option<f64> {
        let n = (self.stamps - 1) as f64;
        (self.stamps >= 4 && self.mean > 0.0 && (self.m2 / n).sqrt() / self.mean < 0.5)
            .then(|| 1e9 / self.mean)
    }
}

/// Interval statistics per syscall (index into `names`).
type TickMap = BTreeMap<u16, Ticks>;

fn append(into: &mut TickMap, from: &TickMap) {
    for (i, t) in from {
        into.entry(*i).and_modify(|a| a.then(t)).or_insert(*t);
    }
}

/// Number of `Sign` variants.
const SIGNS: usize = 7;

#[derive(Clone, Debug, Default)]
struct Bin {
    counts: [u32; SIGNS],
    cpu_ns: u64,
    ticks: TickMap,
}

/// A phase being built, with the interval statistics its rate comes from
/// (kept for compute and serving phases only).
#[derive(Clone, Debug)]
struct Run {
    phase: Phase,
    ticks: TickMap,
}

impl Run {
    fn periodic(name: &str) -> bool {
        matches!(name, "compute" | "serving")
    }

    /// `later` follows this run and has the same name.
    fn extend(&mut self, later: &Self) {
        self.phase.end_ns = later.phase.end_ns;
        append(&mut self.ticks, &later.ticks);
    }
}

/// The timeline of one live process: a window of open bins, and the
/// phases folded from the bins before it. Memory is bounded by the window
/// and the number of phases, not by how long the process runs.
#[derive(Clone, Debug, Default)]
struct Live {
    open: BTreeMap<u64, Bin>,
    /// The first bin not folded yet (`None` until the first fold).
    next: Option<u64>,
    newest: u64,
    seen_compute: bool,
    /// The run of equal labels being extended.
    cur: Option<Run>,
    /// The last runs after idle-gap merging, still open to change.
    tail: Vec<Run>,
    /// Finished phases.
    phases: Vec<Phase>,
}

/// Timelines of every process. Live processes keep a short window of raw
/// bins; everything older is folded into phases as it goes. An exited
/// process keeps only its finished timeline. What does not fit the bounds
/// is counted in `truncated`.
#[derive(Debug, Default)]
pub struct Phases {
    live: BTreeMap<u32, Live>,
    names: Vec<String>,
    /// Finished timelines of exited processes.
    done: BTreeMap<u32, Vec<Phase>>,
    /// Phases held now, live and finished.
    held_phases: usize,
    /// Syscalls, phases or processes left out of the timelines by the bounds.
    pub truncated: u64,
}

/// Bins a live process keeps open (2 s): CPU samples and late records land
/// up to this far behind its newest record.
const OPEN_BINS: u64 = 20;
/// Live processes with a timeline.
const MAX_LIVE: usize = 1024;
/// Finished timelines kept.
const MAX_DONE: usize = 16_384;
/// Phases kept per process.
const MAX_PHASES: usize = 4096;
/// Phases kept over all processes (about 100 bytes each).
const MAX_HELD_PHASES: usize = 200_000;

impl Phases {
    /// Records one syscall's sign.
    pub fn note(&mut self, pid: u32, ts: u64, sign: Sign, syscall: &str) {
        if self.live.len() >= MAX_LIVE && !self.live.contains_key(&pid) {
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
        let b = self.bin(pid, ts);
        b.counts[sign as usize] += 1;
        b.ticks
            .entry(idx)
            .and_modify(|t| t.add(ts))
            .or_insert_with(|| Ticks::new(ts));
    }

    /// CPU time the process used up to `ts` (from `/proc`), as a delta.
    pub fn cpu(&mut self, pid: u32, ts: u64, delta_ns: u64) {
        if self.live.contains_key(&pid) {
            self.bin(pid, ts).cpu_ns += delta_ns;
        }
    }

    /// The open bin of `pid` for `ts`; bins that fell out of the window
    /// are folded first (once per 100 ms of a process's activity, not per
    /// record). A record older than the window joins its oldest open bin.
    fn bin(&mut self, pid: u32, ts: u64) -> &mut Bin {
        let key_of = |l: &Live| {
            let k = (ts / BIN_NS).max(l.newest.saturating_sub(OPEN_BINS));
            l.next.map_or(k, |n| k.max(n))
        };
        let advances = self
            .live
            .get(&pid)
            .is_none_or(|l| l.open.is_empty() || key_of(l) > l.newest);
        if advances {
            let mut l = self.live.remove(&pid).unwrap_or_default();
            l.newest = l.newest.max(key_of(&l));
            let keep_from = l.newest.saturating_sub(OPEN_BINS);
            while let Some(entry) = l.open.first_entry() {
                if *entry.key() >= keep_from {
                    break;
                }
                let (k, b) = entry.remove_entry();
                self.fold(&mut l, k, &b);
            }
            self.live.insert(pid, l);
        }
        let l = self.live.entry(pid).or_default();
        let key = key_of(l);
        l.open.entry(key).or_default()
    }

    /// Folds bin `k` (and the empty bins before it) into the timeline.
    fn fold(&mut self, l: &mut Live, k: u64, b: &Bin) {
        let from = l.next.unwrap_or(k);
        if from < k {
            // Empty bins all get one label: fold the gap at once.
            let (name, evidence) = self.label(&Bin::default(), l.seen_compute);
            self.step(l, name, evidence, from, k, &TickMap::new());
        }
        let (name, evidence) = self.label(b, l.seen_compute);
        l.seen_compute |= name == "compute";
        self.step(l, name, evidence, k, k + 1, &b.ticks);
        l.next = Some(k + 1);
    }

    /// Stage one: runs of equal labels over bins `from..to`.
    fn step(
        &mut self,
        l: &mut Live,
        name: &'static str,
        ev: String,
        from: u64,
        to: u64,
        t: &TickMap,
    ) {
        let periodic = Run::periodic(name);
        match &mut l.cur {
            Some(r) if r.phase.name == name => {
                r.phase.end_ns = to * BIN_NS;
                if periodic {
                    append(&mut r.ticks, t);
                }
            }
            cur => {
                let next = Run {
                    phase: Phase {
                        name,
                        start_ns: from * BIN_NS,
                        end_ns: to * BIN_NS,
                        evidence: ev,
                        rate_per_s: None,
                    },
                    ticks: if periodic { t.clone() } else { TickMap::new() },
                };
                if let Some(done) = cur.replace(next) {
                    self.merge(l, done);
                }
            }
        }
    }

    /// Stage two: short idle gaps (under 300 ms) inside a phase belong to
    /// it (sampling granularity, not a change of phase). Only the last
    /// runs can still change; older ones are finished.
    fn merge(&mut self, l: &mut Live, p: Run) {
        let short_gap =
            |q: &Run| q.phase.name == "idle" && q.phase.end_ns - q.phase.start_ns < 3 * BIN_NS;
        match l.tail.as_mut_slice() {
            [.., a, b] if short_gap(b) && a.phase.name == p.phase.name => {
                a.extend(&p);
                l.tail.pop();
            }
            [.., a] if a.phase.name == p.phase.name => a.extend(&p),
            _ => l.tail.push(p),
        }
        while l.tail.len() > 3 {
            let r = l.tail.remove(0);
            self.finish_phase(&mut l.phases, r);
        }
    }

    fn finish_phase(&mut self, into: &mut Vec<Phase>, r: Run) {
        if into.len() >= MAX_PHASES || self.held_phases >= MAX_HELD_PHASES {
            self.truncated += 1;
            return;
        }
        let mut p = r.phase;
        if Run::periodic(p.name) {
            p.rate_per_s = self.rate(&r.ticks);
        }
        self.held_phases += 1;
        into.push(p);
    }

    /// The most frequent syscall of a window (clock reads aside), if its
    /// intervals are regular.
    fn rate(&self, t: &TickMap) -> Option<f64> {
        t.iter()
            .filter(|(i, _)| !self.names[usize::from(**i)].starts_with("clock"))
            .max_by_key(|(_, t)| t.stamps)
            .and_then(|(_, t)| t.rate())
    }

    /// A process exited: its timeline is finished and its window freed.
    pub fn finish(&mut self, pid: u32) {
        let Some(l) = self.live.remove(&pid) else {
            return;
        };
        let tl = self.complete(l);
        if self.done.len() < MAX_DONE || self.done.contains_key(&pid) {
            // A reused pid replaces the older timeline.
            if let Some(old) = self.done.insert(pid, tl) {
                self.held_phases -= old.len();
            }
        } else {
            self.held_phases -= tl.len();
            self.truncated += 1;
        }
    }

    /// Drops the finished timeline of a process the process table let go.
    pub fn forget(&mut self, pid: u32) {
        if let Some(tl) = self.done.remove(&pid) {
            self.held_phases -= tl.len();
        }
    }

    /// Folds every open bin and run of `l` into its finished phases.
    fn complete(&mut self, mut l: Live) -> Vec<Phase> {
        for (k, b) in std::mem::take(&mut l.open) {
            self.fold(&mut l, k, &b);
        }
        if let Some(r) = l.cur.take() {
            self.merge(&mut l, r);
        }
        for r in std::mem::take(&mut l.tail) {
            self.finish_phase(&mut l.phases, r);
        }
        l.phases
    }

    fn label(&self, b: &Bin, seen_compute: bool) -> (&'static str, String) {
        let c = |s: Sign| b.counts[s as usize];
        let busy = b.cpu_ns > BIN_NS / 4;
        let top = b
            .ticks
            .iter()
            .max_by_key(|(_, t)| t.stamps)
            .map(|(i, t)| format!("{}x {}", t.stamps, self.names[usize::from(*i)]))
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
        if b.counts.iter().sum::<u32>() == 0 {
            return ("idle", "no syscalls, little CPU".into());
        }
        if !seen_compute && c(Sign::Alloc) + c(Sign::Import) > 0 {
            return ("setup", format!("{} allocations", c(Sign::Alloc)));
        }
        ("compute", top)
    }

    /// The phases of `pid`: finished, or so far for a live process (its
    /// state is not changed).
    #[must_use]
    pub fn timeline(&mut self, pid: u32) -> Vec<Phase> {
        // A live process first: a reused pid's older timeline may be done.
        let Some(l) = self.live.get(&pid).cloned() else {
            return self.done.get(&pid).cloned().unwrap_or_default();
        };
        let (held, truncated) = (self.held_phases, self.truncated);
        let tl = self.complete(l);
        (self.held_phases, self.truncated) = (held, truncated);
        tl
    }

    /// Live processes with an open window, and phases held (for tests).
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        (
            self.live.len(),
            self.live.values().map(|l| l.open.len()).sum(),
            self.held_phases,
        )
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

/// Serving phases below this many are socket chatter (an IPC pipe, a
/// helper's handshake), not a server.
const SERVING_MIN_PHASES: usize = 3;
/// Evidence score at which a classification is certain (two strong signals,
/// or one strong and two weak ones).
const CERTAIN_SCORE: f64 = 4.0;
/// Below this score the evidence is too thin to name a kind.
const THIN_SCORE: f64 = 2.0;

/// Classifies a process from its phases and its artefact traffic.
///
/// Each signal adds to a kind's score and is listed as evidence. The kind
/// with the highest score wins; its confidence is its share of all scores
/// times its strength (its score over [`CERTAIN_SCORE`], at most 1), so one
/// signal alone is never certain. Below [`THIN_SCORE`] the kind is
/// `unknown`, with the evidence that was seen.
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
    if serving >= SERVING_MIN_PHASES {
        serve += 2.0 + serving as f64;
        evidence.push(format!("{serving} serving phases (socket requests)"));
    } else if serving > 0 {
        serve += 0.5 * serving as f64;
        evidence.push(format!(
            "{serving} short serving phase(s): socket chatter, too little for a server"
        ));
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
        // A second of compute supports what the artefacts already say.
        if compute_ns >= 1_000_000_000 {
            if train > 0.0 {
                train += 1.0;
            } else if infer > 0.0 {
                infer += 1.0;
            }
        }
    }
    let total = train + infer + serve;
    let (kind, score) = if train >= infer && train >= serve {
        ("training", train)
    } else if serve > infer {
        ("serving", serve)
    } else {
        ("inference", infer)
    };
    if score < THIN_SCORE {
        return Classification {
            kind: "unknown",
            confidence: 0.0,
            evidence,
        };
    }
    let strength = (score / CERTAIN_SCORE).min(1.0);
    Classification {
        kind,
        confidence: (score / total * strength * 100.0).round() / 100.0,
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
        // One strong signal alone is not certain.
        let i = classify(&[], 0, 5000, 0);
        assert_eq!((i.kind, i.confidence), ("inference", 0.75));
    }

    /// A helper that starts, exchanges a few messages on a socket pair and
    /// exits (node-llama-cpp's binary test) is not a server.
    #[test]
    fn socket_chatter_is_not_serving() {
        let phase = |name, start_ns, end_ns| Phase {
            name,
            start_ns,
            end_ns,
            evidence: String::new(),
            rate_per_s: None,
        };
        let helper = [
            phase("setup", 0, 300_000_000),
            phase("serving", 300_000_000, 500_000_000),
        ];
        let c = classify(&helper, 0, 0, 0);
        assert_eq!((c.kind, c.confidence), ("unknown", 0.0));
        assert!(c.evidence[0].contains("too little for a server"), "{c:?}");
        // Many serving phases are.
        let server: Vec<Phase> = (0..6)
            .map(|i| phase("serving", i * BIN_NS * 3, i * BIN_NS * 3 + BIN_NS))
            .collect();
        let c = classify(&server, 0, 0, 0);
        assert_eq!((c.kind, c.confidence), ("serving", 1.0));
        // Weights and a long compute: inference, certain.
        let c = classify(&[phase("compute", 0, 2_000_000_000)], 0, 5000, 0);
        assert_eq!((c.kind, c.confidence), ("inference", 1.0));
    }

    /// Interval statistics folded bin by bin equal those of all stamps.
    #[test]
    fn ticks_combine_like_one_pass() {
        let stamps: Vec<u64> = (0..200u64)
            .map(|i| i * 1000 + (i * i * 7919) % 613)
            .collect();
        let mut one = Ticks::new(stamps[0]);
        for t in &stamps[1..] {
            one.add(*t);
        }
        for split in [1, 2, 50, 199] {
            let mut a = Ticks::new(stamps[0]);
            for t in &stamps[1..split] {
                a.add(*t);
            }
            let mut b = Ticks::new(stamps[split]);
            for t in &stamps[split + 1..] {
                b.add(*t);
            }
            a.then(&b);
            assert_eq!(
                (a.first, a.last, a.stamps),
                (one.first, one.last, one.stamps)
            );
            assert!((a.mean - one.mean).abs() < 1e-6, "{split}");
            assert!((a.m2 - one.m2).abs() / one.m2 < 1e-9, "{split}");
        }
        let iv: Vec<f64> = stamps.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = iv.iter().sum::<f64>() / iv.len() as f64;
        assert!((one.mean - mean).abs() < 1e-6);
    }

    /// A process that runs for an hour keeps a window of bins, not an
    /// hour of them; its phases are the same as for a short run.
    #[test]
    fn long_runs_stay_bounded() {
        let mut p = Phases::default();
        let hour = 3600 * 1_000_000_000u64;
        let mut t = 0;
        while t < hour {
            p.note(7, t, Sign::Other, "futex");
            p.cpu(7, t, 5_000_000);
            t += 10_000_000;
        }
        let (live, open, phases) = p.held();
        assert_eq!(live, 1);
        assert!(open <= OPEN_BINS as usize + 1, "{open}");
        assert!(phases <= 3, "{phases}");
        let tl = p.timeline(7);
        assert_eq!(tl.len(), 1, "{tl:?}");
        assert_eq!(
            (tl[0].name, tl[0].start_ns, tl[0].end_ns),
            ("compute", 0, hour)
        );
        let r = tl[0].rate_per_s.unwrap();
        assert!((r - 100.0).abs() < 0.01, "{r}");
        // Looking did not change it; the exit finishes the same timeline.
        p.finish(7);
        assert_eq!(p.timeline(7), tl);
        assert_eq!(p.held(), (0, 0, 1));
    }

    /// Idle gaps under 300 ms join the phase around them, and its rate
    /// counts the stamps on both sides; long gaps are their own phase,
    /// and a long silence costs one idle phase, not one bin per 100 ms.
    #[test]
    fn gaps_and_late_records() {
        let mut p = Phases::default();
        let s = BIN_NS;
        let mut t = 0;
        let mut burst = |p: &mut Phases, from: u64, bins: u64| {
            t = from;
            while t < from + bins * s {
                p.note(3, t, Sign::Other, "futex");
                t += s / 10;
            }
            p.cpu(3, from, bins * s);
        };
        burst(&mut p, 0, 10);
        burst(&mut p, 12 * s, 10);
        // A record from before the window joins its oldest open bin.
        p.note(3, 0, Sign::Other, "futex");
        burst(&mut p, 10_000 * s, 5);
        p.finish(3);
        let tl = p.timeline(3);
        let names: Vec<&str> = tl.iter().map(|x| x.name).collect();
        assert_eq!(names, ["compute", "idle", "compute"], "{tl:?}");
        assert_eq!((tl[0].start_ns, tl[0].end_ns), (0, 22 * s));
        // The 200 ms gap and the late record make the joined phase's
        // intervals irregular; the last burst ticks at 100/s.
        assert_eq!(tl[0].rate_per_s, None);
        assert!((tl[2].rate_per_s.unwrap() - 100.0).abs() < 0.5, "{tl:?}");
        assert_eq!((tl[1].start_ns, tl[1].end_ns), (22 * s, 10_000 * s));
    }

    /// Bounds: processes beyond the live cap are counted, not kept.
    #[test]
    fn live_cap_counts() {
        let mut p = Phases::default();
        for pid in 0..(MAX_LIVE as u32 + 10) {
            p.note(pid, 0, Sign::Other, "read");
        }
        assert_eq!(p.held().0, MAX_LIVE);
        assert_eq!(p.truncated, 10);
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
