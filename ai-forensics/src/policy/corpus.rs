//! `rules test PROFILE --corpus DIR`: runs every program of an evasion and
//! a benign corpus under `ai-forensics run` with a bundled profile, and
//! compares the alerts with what each case expects.
//!
//! A case is a small program (`.py` runs under `/usr/bin/python3`, `.sh`
//! under `/bin/bash`) whose first comment lines say what must happen:
//!
//! ```text
//! # expect: credentials-read        (a rule that must raise an alert; or `pass`)
//! # expect-agent: pass              (the same for one profile)
//! ```
//!
//! Each case gets a protected key (`AF_SECRET`, under `/root/.ssh`, made
//! before the recorder starts and removed after), `$HOME/.aws/credentials`
//! (`HOME=/root`; made when missing, removed after), a scratch directory
//! (`AF_SCRATCH`, with `AF_HOME` inside it), a tiny weights file
//! (`AF_WEIGHTS`, whose opening makes the process an ML workload) and a
//! tiny GGUF model (`AF_GGUF`, an LLM workload).
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::error::{Error, Result};

/// One corpus program.
#[derive(Clone, Debug)]
pub struct Case {
    /// The program.
    pub path: PathBuf,
    /// Default expectation: `None` for no alert, or the rule that must fire.
    pub expect: Option<String>,
    /// Per-profile expectations.
    pub per_profile: Vec<(String, Option<String>)>,
}

impl Case {
    /// Reads a case's expectations from its leading comments.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("corpus {}: {e}", path.display())))?;
        let mut expect = None;
        let mut per_profile = Vec::new();
        let mut seen = false;
        for line in text.lines().take(8) {
            let Some(rest) = line.strip_prefix("# expect") else {
                continue;
            };
            let (profile, value) = match rest.split_once(':') {
                Some((p, v)) => (p.trim_start_matches('-').trim(), v.trim()),
                None => continue,
            };
            let v = (value != "pass").then(|| value.to_owned());
            if profile.is_empty() {
                expect = v;
                seen = true;
            } else {
                per_profile.push((profile.to_owned(), v));
            }
        }
        if !seen {
            return Err(Error::usage(format!(
                "corpus {}: no '# expect:' line",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            expect,
            per_profile,
        })
    }

    /// What the case expects under `profile`.
    #[must_use]
    pub fn expected(&self, profile: &str) -> Option<&str> {
        self.per_profile
            .iter()
            .find(|(p, _)| p == profile)
            .map_or(self.expect.as_deref(), |(_, v)| v.as_deref())
    }
}

/// The cases of a corpus directory, in name order.
pub fn cases(dir: &Path) -> Result<Vec<Case>> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::usage(format!("corpus {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::usage(format!("corpus {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py" || x == "sh"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Case::load(p)).collect()
}

/// What one run of a case showed.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case's file name.
    pub name: String,
    /// What it expected.
    pub expected: Option<String>,
    /// Rules that raised alerts, with how the kernel ones were enforced.
    pub alerts: Vec<(String, String)>,
    /// Whether the outcome is the expected one.
    pub ok: bool,
    /// The recorder's exit code.
    pub code: i32,
}

/// Where a case's files live while it runs.
struct Fixture {
    scratch: PathBuf,
    secret: PathBuf,
    made_ssh: bool,
    /// What was made for `$HOME/.aws/credentials` (nothing when it existed).
    made_aws: Vec<PathBuf>,
}

impl Fixture {
    fn new(tag: &str) -> Result<Self> {
        let scratch =
            std::env::temp_dir().join(format!("ai-forensics-corpus-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(scratch.join("home"))
            .map_err(|e| Error::io("corpus scratch directory", e))?;
        std::fs::write(scratch.join("model.safetensors"), b"{}")
            .map_err(|e| Error::io("corpus weights file", e))?;
        std::fs::write(scratch.join("model.gguf"), b"GGUF\x03\0\0\0")
            .map_err(|e| Error::io("corpus GGUF file", e))?;
        let ssh = Path::new("/root/.ssh");
        let made_ssh = !ssh.exists();
        if made_ssh {
            std::fs::create_dir_all(ssh).map_err(|e| Error::io("/root/.ssh", e))?;
        }
        let secret = ssh.join(format!("ai-forensics-corpus-{}", std::process::id()));
        std::fs::write(&secret, b"CORPUS-SECRET\n").map_err(|e| Error::io("corpus secret", e))?;
        // A cloud credentials file where a process finds it through $HOME
        // (/root here), made only when there is none.
        let mut made_aws = Vec::new();
        let aws = Path::new("/root/.aws");
        if !aws.exists() {
            std::fs::create_dir_all(aws).map_err(|e| Error::io("/root/.aws", e))?;
            made_aws.push(aws.to_path_buf());
        }
        let creds = aws.join("credentials");
        if !creds.exists() {
            std::fs::write(&creds, b"[default]\naws_secret_access_key=CORPUS\n")
                .map_err(|e| Error::io("corpus credentials", e))?;
            made_aws.insert(0, creds);
        }
        Ok(Self {
            scratch,
            secret,
            made_ssh,
            made_aws,
        })
    }
}

/// Kills what a case left behind (a tree a `stop` rule froze stays frozen
/// after the recorder ends, by design): every process whose environment
/// names this case's scratch directory. Thawed first, so SIGKILL lands.
fn reap(scratch: &Path) {
    let needle = format!("AF_SCRATCH={}", scratch.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            // SAFETY: kill(2) with a pid and signal numbers.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGCONT);
            }
        }
    }
    // A frozen cgroup keeps its members from dying: thaw the recorder's.
    if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup/unified/ai-forensics")
        .or_else(|_| std::fs::read_dir("/sys/fs/cgroup/ai-forensics"))
    {
        for cg in d.flatten() {
            let _ = std::fs::write(cg.path().join("cgroup.freeze"), "0");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        reap(&self.scratch);
        let _ = std::fs::remove_file(&self.secret);
        if self.made_ssh {
            let _ = std::fs::remove_dir(Path::new("/root/.ssh"));
        }
        for p in &self.made_aws {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
        }
        let _ = Command::new("umount")
            .arg(self.scratch.join("mnt"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Runs `case` under `rules` (`builtin:PROFILE`) in `mode` (`count` or
/// `events`).
pub fn run(case: &Case, profile: &str, mode: &str) -> Result<Outcome> {
    let me = std::env::current_exe().map_err(|e| Error::io("finding ai-forensics", e))?;
    let name = case
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fx = Fixture::new(&format!("{profile}-{mode}"))?;
    let out = fx.scratch.join("records.jsonl");
    let interp = if case.path.extension().is_some_and(|x| x == "sh") {
        "/bin/bash"
    } else {
        "/usr/bin/python3"
    };
    let status = Command::new(&me)
        .args(["run", "--no-store", "--no-summary", "--no-live", "--rules"])
        .arg(format!("builtin:{profile}"))
        .args(["--mode", mode, "--json", "-o"])
        .arg(&out)
        .arg("--duration")
        .arg(humantime::format_duration(Duration::from_secs(20)).to_string())
        .arg("--")
        .arg(interp)
        .arg(&case.path)
        .env("AF_SECRET", &fx.secret)
        .env("HOME", "/root")
        .env("AF_SCRATCH", &fx.scratch)
        .env("AF_HOME", fx.scratch.join("home"))
        .env("AF_WEIGHTS", fx.scratch.join("model.safetensors"))
        .env("AF_GGUF", fx.scratch.join("model.gguf"))
        .env("AF_MODELS", models_dir(&case.path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::io("running a corpus case", e))?;
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let mut alerts = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] == "alert" {
            let d = &v["detail"];
            alerts.push((
                d["rule"].as_str().unwrap_or("?").to_owned(),
                match (d["mechanism"].as_str(), d["enforced"].as_str()) {
                    (Some(m), Some(e)) => format!("{m}, {e}"),
                    (Some(m), None) => m.to_owned(),
                    _ => "rules".to_owned(),
                },
            ));
        }
    }
    let expected = case.expected(profile).map(ToOwned::to_owned);
    let ok = match &expected {
        None => alerts.is_empty(),
        Some(rule) => alerts.iter().any(|(r, _)| r == rule),
    };
    Ok(Outcome {
        name,
        expected,
        alerts,
        ok,
        code: status.code().unwrap_or(-1),
    })
}

/// The bundled models (`models/` beside `rules/`), for the PyTorch cases.
fn models_dir(case: &Path) -> PathBuf {
    case.ancestors()
        .map(|a| a.join("models"))
        .find(|m| m.join("train.py").is_file())
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// Runs both corpora (`evasion/`, `benign/` under `dir`) for each profile
/// and mode, prints a table, and returns whether every case behaved.
pub fn test(dir: &Path, profiles: &[&str], modes: &[&str]) -> Result<bool> {
    let mut all_ok = true;
    for kind in ["evasion", "benign"] {
        let cases = cases(&dir.join(kind))?;
        for profile in profiles {
            for mode in modes {
                let mut caught = 0;
                let mut passed = 0;
                let mut wrong = Vec::new();
                for c in &cases {
                    let o = run(c, profile, mode)?;
                    if o.expected.is_some() && o.ok {
                        caught += 1;
                    } else if o.ok {
                        passed += 1;
                    }
                    let rules: BTreeSet<String> =
                        o.alerts.iter().map(|(r, m)| format!("{r} ({m})")).collect();
                    println!(
                        "  {} {profile:<9} {mode:<6} {kind:<7} {:<28} expected {:<24} got {}",
                        if o.ok { "ok  " } else { "FAIL" },
                        o.name,
                        o.expected.as_deref().unwrap_or("pass"),
                        if rules.is_empty() {
                            format!("no alert (exit {})", o.code)
                        } else {
                            rules.into_iter().collect::<Vec<_>>().join(", ")
                        }
                    );
                    if !o.ok {
                        wrong.push(o.name);
                    }
                }
                all_ok &= wrong.is_empty();
                println!(
                    "{kind} corpus, profile {profile}, {mode} mode: {} cases, {caught} caught, {passed} passed clean, {} wrong{}",
                    cases.len(),
                    wrong.len(),
                    if wrong.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", wrong.join(", "))
                    }
                );
            }
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_per_profile() {
        let dir = std::env::temp_dir().join(format!("af-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.py");
        std::fs::write(
            &p,
            "# expect: shell-spawned-by-model\n# expect-agent: pass\nprint(1)\n",
        )
        .unwrap();
        let c = Case::load(&p).unwrap();
        assert_eq!(c.expected("auto"), Some("shell-spawned-by-model"));
        assert_eq!(c.expected("agent"), None);
        std::fs::write(&p, "print(1)\n").unwrap();
        assert!(Case::load(&p).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_bundled_corpora_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/corpus");
        let e = cases(&root.join("evasion")).unwrap();
        let b = cases(&root.join("benign")).unwrap();
        assert!(e.len() >= 25, "{}", e.len());
        assert!(e.iter().all(|c| c.expect.is_some()));
        assert!(b.iter().all(|c| c.expected("agent").is_none()));
    }
}
