//! Behaviour baselines: a profile of what benign runs of a workload do
//! (syscall mix, executables run, endpoints contacted, directories written,
//! model artefacts used), learned from recorded sessions, and the deviations
//! of a new run from it.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Default distance (total variation, 0..1) between syscall mixes above
/// which a run is flagged.
pub const MIX_THRESHOLD: f64 = 0.25;

/// A learned profile (`baseline learn ... -o profile.json`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version (1).
    pub version: u32,
    /// Sessions learned from.
    pub sessions: u32,
    /// Share of each syscall in the calls (averaged over sessions).
    pub syscall_mix: BTreeMap<String, f64>,
    /// Executables run.
    pub exes: BTreeSet<String>,
    /// Endpoints contacted (`ip:port`, `unix:"/path"`).
    pub endpoints: BTreeSet<String>,
    /// Directories written to.
    pub dirs_written: BTreeSet<String>,
    /// Model artefacts used.
    pub artefacts: BTreeSet<String>,
    /// Flag a run whose mix is farther than this.
    pub mix_threshold: f64,
}

/// What one run did, in the profile's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Calls per syscall.
    pub counts: BTreeMap<String, u64>,
    /// Executables run.
    pub exes: BTreeSet<String>,
    /// Endpoints contacted.
    pub endpoints: BTreeSet<String>,
    /// Directories written to.
    pub dirs_written: BTreeSet<String>,
    /// Model artefacts used.
    pub artefacts: BTreeSet<String>,
}

/// The directory of a path.
#[must_use]
pub fn dir_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_owned(),
        None => ".".into(),
    }
}

impl Observed {
    /// Reads what a stored record shows.
    pub fn feed(&mut self, v: &Value) {
        let d = &v["detail"];
        match v["type"].as_str() {
            Some("exec") => {
                if let Some(f) = d["filename"].as_str() {
                    self.exes.insert(f.to_owned());
                }
            }
            Some("syscall") => {
                let a = &d["args"];
                match d["syscall"].as_str() {
                    Some("connect") => {
                        if let (Some(ip), Some(port)) =
                            (a["addr"]["ip"].as_str(), a["addr"]["port"].as_u64())
                        {
                            self.endpoints.insert(format!("{ip}:{port}"));
                        } else if let Some(p) = a["addr"]["path"].as_str() {
                            self.endpoints.insert(format!("unix:{p}"));
                        }
                    }
                    Some("open" | "openat" | "creat" | "openat2")
                        if d["ret"].as_i64().is_some_and(|r| r >= 0) =>
                    {
                        let path = a["pathname"].as_str().unwrap_or("");
                        let writes = a["flags"].as_str().is_some_and(|f| {
                            f.contains("O_WRONLY") || f.contains("O_RDWR") || f.contains("O_CREAT")
                        });
                        if writes && !path.starts_with("/dev/") && !path.starts_with("/proc/") {
                            self.dirs_written.insert(dir_of(path));
                        }
                        if crate::target::discover::classify(path.as_bytes())
                            .is_some_and(|f| f.kind == "model-file")
                        {
                            self.artefacts.insert(path.to_owned());
                        }
                    }
                    _ => {}
                }
            }
            Some("summary") => {
                for r in d["syscalls"].as_array().into_iter().flatten() {
                    if let (Some(n), Some(c)) = (r["syscall"].as_str(), r["count"].as_u64()) {
                        self.counts.insert(n.to_owned(), c);
                    }
                }
            }
            _ => {}
        }
    }

    fn mix(&self) -> BTreeMap<String, f64> {
        let total: u64 = self.counts.values().sum();
        if total == 0 {
            return BTreeMap::new();
        }
        self.counts
            .iter()
            .map(|(k, v)| (k.clone(), *v as f64 / total as f64))
            .collect()
    }
}

/// Total variation distance between two mixes (0 = same, 1 = disjoint).
#[must_use]
pub fn distance(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> f64 {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.iter()
        .map(|k| (a.get(*k).unwrap_or(&0.0) - b.get(*k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
        / 2.0
}

impl Profile {
    /// Learns a profile from the runs.
    #[must_use]
    pub fn learn(runs: &[Observed]) -> Self {
        let mut p = Self {
            version: 1,
            sessions: runs.len() as u32,
            mix_threshold: MIX_THRESHOLD,
            ..Default::default()
        };
        for r in runs {
            for (k, v) in r.mix() {
                *p.syscall_mix.entry(k).or_default() += v / runs.len() as f64;
            }
            p.exes.extend(r.exes.iter().cloned());
            p.endpoints.extend(r.endpoints.iter().cloned());
            p.dirs_written.extend(r.dirs_written.iter().cloned());
            p.artefacts.extend(r.artefacts.iter().cloned());
        }
        p
    }

    /// Reads a profile file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("--baseline {}: {e}", path.display())))?;
        let p: Self = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "--baseline {}: not a baseline profile: {e}",
                path.display()
            ))
        })?;
        if p.version != 1 {
            return Err(Error::usage(format!(
                "--baseline {}: version {} is not supported",
                path.display(),
                p.version
            )));
        }
        Ok(p)
    }

    /// What a run did that the profile has not seen.
    #[must_use]
    pub fn deviations(&self, run: &Observed) -> Vec<String> {
        let mut out = Vec::new();
        for e in run.exes.difference(&self.exes) {
            out.push(format!("new executable {e}"));
        }
        for e in run.endpoints.difference(&self.endpoints) {
            out.push(format!("new endpoint {e}"));
        }
        for d in run.dirs_written.difference(&self.dirs_written) {
            out.push(format!("new directory written {d}"));
        }
        if !run.counts.is_empty() && !self.syscall_mix.is_empty() {
            let d = distance(&self.syscall_mix, &run.mix());
            if d > self.mix_threshold {
                out.push(format!(
                    "syscall mix distance {d:.3} above {:.3}",
                    self.mix_threshold
                ));
            }
        }
        out
    }

    /// New items of one kind, for live checking (`kind`: exe, endpoint, dir).
    #[must_use]
    pub fn is_new(&self, kind: &str, item: &str) -> bool {
        match kind {
            "exe" => !self.exes.contains(item),
            "endpoint" => !self.endpoints.contains(item),
            _ => !self.dirs_written.contains(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exes: &[&str], counts: &[(&str, u64)]) -> Observed {
        Observed {
            exes: exes.iter().map(|s| (*s).to_owned()).collect(),
            counts: counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn learn_and_deviate() {
        let a = run(&["/usr/bin/python3"], &[("read", 100), ("write", 10)]);
        let b = run(&["/usr/bin/python3"], &[("read", 110), ("write", 12)]);
        let p = Profile::learn(&[a.clone(), b]);
        assert!(p.deviations(&a).is_empty());
        let evil = run(
            &["/usr/bin/python3", "/bin/sh"],
            &[("read", 100), ("write", 10)],
        );
        assert_eq!(p.deviations(&evil), vec!["new executable /bin/sh"]);
        let odd = run(&["/usr/bin/python3"], &[("connect", 500), ("read", 10)]);
        assert!(p.deviations(&odd)[0].starts_with("syscall mix distance"));
        assert!((distance(&p.syscall_mix, &p.syscall_mix)).abs() < 1e-9);
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Profile>(&j).unwrap(), p);
        assert_eq!(dir_of("/a/b/c"), "/a/b");
        assert_eq!(dir_of("/c"), "/");
    }
}
