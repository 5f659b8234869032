//! Rule files: YAML, validated on load with line-numbered errors.
//!
//! ```yaml
//! version: 1
//! lists:
//!   allowed_endpoints: ["127.0.0.0/8", "::1/128"]
//! rules:
//!   - name: weights-then-egress
//!     severity: critical
//!     action: kill
//!     match: {syscall: [read, pread64], path: ["*.safetensors"]}
//!     threshold: {bytes: 50MB, window: 30s, per: process}
//!     then:
//!       match: {syscall: connect, addr: {not_in: "@allowed_endpoints"}}
//!       within: 30s
//! ```
//!
//! See `docs/rules.md` for every field.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
    time::Duration,
};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use regex::Regex;
use serde::Deserialize;

use crate::{
    error::{Error, Result},
    syscall::table,
};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Low,
    /// Suspicious.
    #[default]
    Medium,
    /// Likely malicious.
    High,
    /// Stop it now.
    Critical,
}

impl Severity {
    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// What to do when a rule fires.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record the finding only.
    Log,
    /// Record an alert (and fire the flight recorder).
    Alert,
    /// Freeze the whole target tree.
    Stop,
    /// Kill the whole target tree.
    Kill,
    /// Refuse the call (kernel rules only): it fails with `EPERM` before it
    /// runs where the call can be refused (seccomp in `run`, BPF LSM);
    /// elsewhere the offending process is killed before the call returns.
    /// The rest of the tree lives.
    Deny,
    /// Thaw a frozen tree.
    Resume,
}

impl Action {
    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Alert => "alert",
            Self::Stop => "stop",
            Self::Kill => "kill",
            Self::Deny => "deny",
            Self::Resume => "resume",
        }
    }

    /// Parses an action name (for verdicts).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "log" => Self::Log,
            "alert" => Self::Alert,
            "stop" => Self::Stop,
            "kill" => Self::Kill,
            "deny" => Self::Deny,
            "resume" => Self::Resume,
            _ => return None,
        })
    }
}

/// `ai_workload:` in a rule file: `true`, `false`, `ml` or `llm`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum AiSpec {
    Bool(bool),
    Kind(String),
}

/// Which AI workloads a condition holds for. The kernel flags a process
/// (and the children it forks afterwards) when it opens an ML runtime or
/// model file (`ml`: torch, TensorFlow, ONNX Runtime, safetensors...) or an
/// LLM runtime or GGUF model (`llm`: llama.cpp, ggml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AiCond {
    /// Flagged either way.
    Any,
    /// Not flagged.
    No,
    /// Flagged by an ML runtime or model file.
    Ml,
    /// Flagged by an LLM runtime or GGUF model.
    Llm,
}

impl AiCond {
    /// Whether a process with AI flags `bits` ([`ai_bits`]) matches.
    #[must_use]
    pub fn test(self, bits: u8) -> bool {
        match self {
            Self::Any => bits != 0,
            Self::No => bits == 0,
            Self::Ml => bits & ai_bits::ML != 0,
            Self::Llm => bits & ai_bits::LLM != 0,
        }
    }
}

/// A process's AI flags as user space keeps them (the kernel's
/// `target::AI_ML` / `AI_LLM` shifted down by 16).
pub mod ai_bits {
    /// An ML runtime or model file.
    pub const ML: u8 = 1;
    /// An LLM runtime or GGUF model.
    pub const LLM: u8 = 2;
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            Self::One(v) => vec![v.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    version: u32,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    rules: Vec<RuleSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    severity: Severity,
    action: Action,
    #[serde(default)]
    kernel: bool,
    #[serde(rename = "match")]
    when: MatchSpec,
    #[serde(default)]
    threshold: Option<ThresholdSpec>,
    #[serde(default)]
    then: Option<ThenSpec>,
    /// Profiles the rule belongs to (absent: every profile).
    #[serde(default)]
    profiles: Option<Vec<String>>,
}

/// The profiles a rule file can name (`profiles:` on a rule).
pub const PROFILES: &[&str] = &["auto", "training", "inference", "agent"];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchSpec {
    syscall: Option<OneOrMany<String>>,
    path: Option<OneOrMany<String>>,
    path_not: Option<OneOrMany<String>>,
    basename: Option<OneOrMany<String>>,
    comm: Option<String>,
    exe: Option<String>,
    cmdline: Option<String>,
    ancestor: Option<String>,
    uid: Option<u32>,
    ai_workload: Option<AiSpec>,
    ret: Option<String>,
    errno: Option<OneOrMany<String>>,
    args: Option<BTreeMap<String, ArgSpec>>,
    addr: Option<AddrSpec>,
    port: Option<OneOrMany<u16>>,
    exfil_bytes: Option<String>,
    from_llm: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum ArgSpec {
    Number(i64),
    Text(String),
    Cond(ArgCondSpec),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgCondSpec {
    eq: Option<i64>,
    ne: Option<i64>,
    lt: Option<i64>,
    le: Option<i64>,
    gt: Option<i64>,
    ge: Option<i64>,
    glob: Option<OneOrMany<String>>,
    contains: Option<OneOrMany<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddrSpec {
    #[serde(rename = "in")]
    inside: Option<OneOrMany<String>>,
    not_in: Option<OneOrMany<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdSpec {
    count: Option<u64>,
    bytes: Option<String>,
    window: String,
    #[serde(default)]
    per: Scope,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThenSpec {
    #[serde(rename = "match")]
    when: MatchSpec,
    within: String,
    #[serde(default)]
    scope: Scope,
}

/// What a threshold or sequence is counted over.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One process.
    Process,
    /// A whole target tree.
    #[default]
    Tree,
}

/// A comparison on a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// ==
    Eq(i64),
    /// !=
    Ne(i64),
    /// <
    Lt(i64),
    /// <=
    Le(i64),
    /// >
    Gt(i64),
    /// >=
    Ge(i64),
}

impl Cmp {
    /// Whether `v` satisfies it.
    #[must_use]
    pub fn test(self, v: i64) -> bool {
        match self {
            Self::Eq(x) => v == x,
            Self::Ne(x) => v != x,
            Self::Lt(x) => v < x,
            Self::Le(x) => v <= x,
            Self::Gt(x) => v > x,
            Self::Ge(x) => v >= x,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (op, rest) = ["<=", ">=", "==", "!=", "<", ">", "="]
            .iter()
            .find_map(|op| s.strip_prefix(op).map(|r| (*op, r)))?;
        let n: i64 = rest.trim().parse().ok()?;
        Some(match op {
            "<=" => Self::Le(n),
            ">=" => Self::Ge(n),
            "==" | "=" => Self::Eq(n),
            "!=" => Self::Ne(n),
            "<" => Self::Lt(n),
            _ => Self::Gt(n),
        })
    }
}

/// A condition on one argument.
#[derive(Clone, Debug)]
pub enum ArgCond {
    /// Numeric comparisons (all must hold).
    Num(Vec<Cmp>),
    /// The (escaped) string value matches a glob.
    Glob(GlobSet),
    /// The symbolic flags contain all of these names.
    Contains(Vec<String>),
}

/// A compiled condition: every present part must hold.
#[derive(Clone, Debug, Default)]
pub struct Cond {
    /// Syscall names.
    pub syscalls: Option<BTreeSet<String>>,
    /// Main path globs.
    pub path: Option<GlobSet>,
    /// Main path must match none of these.
    pub path_not: Option<GlobSet>,
    /// Last path component.
    pub basename: Option<BTreeSet<String>>,
    /// Thread name.
    pub comm: Option<Regex>,
    /// Executable.
    pub exe: Option<Regex>,
    /// Command line, joined with spaces.
    pub cmdline: Option<Regex>,
    /// Any ancestor's name or executable.
    pub ancestor: Option<Regex>,
    /// Real uid.
    pub uid: Option<u32>,
    /// The process (or an ancestor) uses an ML runtime or opened a model file.
    pub ai_workload: Option<AiCond>,
    /// Return value.
    pub ret: Option<RetCond>,
    /// Error names.
    pub errno: Option<BTreeSet<String>>,
    /// Argument conditions.
    pub args: Vec<(String, ArgCond)>,
    /// Socket address must be in one of these networks.
    pub addr_in: Option<Vec<IpNet>>,
    /// Socket address must be in none of these networks.
    pub addr_not_in: Option<Vec<IpNet>>,
    /// Socket port.
    pub port: Option<BTreeSet<u16>>,
    /// The tree's bytes sent or written outside after reading model artefacts.
    pub exfil: Option<Cmp>,
    /// An exec whose command an LLM reply or tool call of the same tree
    /// named within this long before (`from_llm: 30s`).
    pub from_llm: Option<Duration>,
}

/// A condition on the return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetCond {
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
    /// Comparison.
    Cmp(Cmp),
}

/// Counting matches before a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// At least this many matching calls.
    pub count: Option<u64>,
    /// At least this many bytes (sum of return values).
    pub bytes: Option<u64>,
    /// Within this window.
    pub window: Duration,
    /// Per process or per tree.
    pub per: Scope,
}

/// A follow-up that must match after the rule's first part.
#[derive(Clone, Debug)]
pub struct Then {
    /// What must follow.
    pub when: Cond,
    /// How soon.
    pub within: Duration,
    /// Same process or same tree.
    pub scope: Scope,
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Position in the file.
    pub id: usize,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Action.
    pub action: Action,
    /// Also enforce in the kernel at syscall entry.
    pub kernel: bool,
    /// Line of the rule in its file.
    pub line: usize,
    /// The condition.
    pub when: Cond,
    /// Counting, if any.
    pub threshold: Option<Threshold>,
    /// Follow-up, if any.
    pub then: Option<Then>,
    /// In-kernel patterns of a kernel rule checked on the path argument at
    /// syscall entry: (class, kind, bytes). Only literal open paths and
    /// prefixes: they stop the call before it runs (an `O_TRUNC` included),
    /// where the identity check at exit can only kill after it.
    pub kernel_patterns: Vec<(u32, u32, String)>,
    /// Globs of the files a kernel open rule denies by identity.
    pub kernel_files: Vec<String>,
    /// Names (basenames, or absolute paths) of the executables a kernel
    /// exec rule denies by identity.
    pub kernel_exes: Vec<String>,
}

/// A validated rule file.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Where it came from.
    pub source: String,
    /// The bundled profile it is (`None` for a user's file).
    pub profile: Option<String>,
    /// The rules.
    pub rules: Vec<Rule>,
    /// Named lists.
    pub lists: BTreeMap<String, Vec<String>>,
}

/// Bytes from `50MB`, `1GiB`, `4096`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let i = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let n: f64 = t[..i].parse().ok()?;
    let m: u64 = match t[i..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KIB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MIB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GIB" => 1 << 30,
        _ => return None,
    };
    Some((n * m as f64) as u64)
}

struct Ctx<'a> {
    source: &'a str,
    text: &'a str,
    lists: &'a BTreeMap<String, Vec<String>>,
}

impl Ctx<'_> {
    fn line_of(&self, name: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let t = l.trim_start().trim_start_matches("- ").trim();
                t.strip_prefix("name:")
                    .is_some_and(|n| n.trim().trim_matches(['"', '\'']) == name)
            })
            .map_or(0, |i| i + 1)
    }

    fn err(&self, rule: &str, field: &str, msg: impl std::fmt::Display) -> Error {
        Error::usage(format!(
            "{}:{}: rule '{rule}': {field}: {msg}",
            self.source,
            self.line_of(rule)
        ))
    }

    /// Expands `@list` references.
    fn expand(&self, rule: &str, field: &str, items: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in items {
            if let Some(name) = i.strip_prefix('@') {
                let l = self
                    .lists
                    .get(name)
                    .ok_or_else(|| self.err(rule, field, format!("no list named '{name}'")))?;
                out.extend(l.iter().cloned());
            } else {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn globs(&self, rule: &str, field: &str, v: &OneOrMany<String>) -> Result<GlobSet> {
        let mut b = GlobSetBuilder::new();
        for g in self.expand(rule, field, v.to_vec())? {
            b.add(
                Glob::new(&g).map_err(|e| self.err(rule, field, format!("bad glob '{g}': {e}")))?,
            );
        }
        b.build().map_err(|e| self.err(rule, field, e))
    }

    fn regex(&self, rule: &str, field: &str, v: &str) -> Result<Regex> {
        Regex::new(v).map_err(|e| {
            let last = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_owned();
            self.err(rule, field, format!("invalid regex '{v}': {last}"))
        })
    }

    fn nets(&self, rule: &str, field: &str, v: &OneOrMany<String>) -> Result<Vec<IpNet>> {
        self.expand(rule, field, v.to_vec())?
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.err(
                            rule,
                            field,
                            format!("'{s}' is not an address or CIDR network"),
                        )
                    })
            })
            .collect()
    }

    fn cond(&self, rule: &str, prefix: &str, m: &MatchSpec) -> Result<Cond> {
        let f = |name: &str| format!("{prefix}.{name}");
        let mut c = Cond::default();
        if let Some(s) = &m.syscall {
            let names: BTreeSet<String> = s.to_vec().into_iter().collect();
            for n in &names {
                if n != LLM
                    && table::number(n).is_none()
                    && crate::syscall::signature::lookup(n).is_none()
                {
                    return Err(self.err(rule, &f("syscall"), format!("unknown syscall '{n}'")));
                }
            }
            c.syscalls = Some(names);
        }
        c.path = m
            .path
            .as_ref()
            .map(|p| self.globs(rule, &f("path"), p))
            .transpose()?;
        c.path_not = m
            .path_not
            .as_ref()
            .map(|p| self.globs(rule, &f("path_not"), p))
            .transpose()?;
        c.basename = m
            .basename
            .as_ref()
            .map(|b| {
                self.expand(rule, &f("basename"), b.to_vec())
                    .map(|v| v.into_iter().collect())
            })
            .transpose()?;
        c.comm = m
            .comm
            .as_deref()
            .map(|r| self.regex(rule, &f("comm"), r))
            .transpose()?;
        c.exe = m
            .exe
            .as_deref()
            .map(|r| self.regex(rule, &f("exe"), r))
            .transpose()?;
        c.cmdline = m
            .cmdline
            .as_deref()
            .map(|r| self.regex(rule, &f("cmdline"), r))
            .transpose()?;
        c.ancestor = m
            .ancestor
            .as_deref()
            .map(|r| self.regex(rule, &f("ancestor"), r))
            .transpose()?;
        c.uid = m.uid;
        c.ai_workload = match &m.ai_workload {
            None => None,
            Some(AiSpec::Bool(true)) => Some(AiCond::Any),
            Some(AiSpec::Bool(false)) => Some(AiCond::No),
            Some(AiSpec::Kind(k)) => Some(match k.as_str() {
                "ml" => AiCond::Ml,
                "llm" => AiCond::Llm,
                _ => {
                    return Err(self.err(
                        rule,
                        &f("ai_workload"),
                        format!("'{k}': expected true, false, ml or llm"),
                    ));
                }
            }),
        };
        c.ret = m
            .ret
            .as_deref()
            .map(|r| match r.trim() {
                "ok" => Ok(RetCond::Ok),
                "error" => Ok(RetCond::Error),
                other => Cmp::parse(other).map(RetCond::Cmp).ok_or_else(|| {
                    self.err(
                        rule,
                        &f("ret"),
                        format!("'{other}': use ok, error, or a comparison like '>= 0'"),
                    )
                }),
            })
            .transpose()?;
        c.errno = m.errno.as_ref().map(|e| e.to_vec().into_iter().collect());
        if let Some(args) = &m.args {
            for (name, spec) in args {
                let field = f(&format!("args.{name}"));
                let cond = match spec {
                    ArgSpec::Number(n) => ArgCond::Num(vec![Cmp::Eq(*n)]),
                    ArgSpec::Text(t) => match Cmp::parse(t) {
                        Some(cmp) => ArgCond::Num(vec![cmp]),
                        None => {
                            ArgCond::Glob(self.globs(rule, &field, &OneOrMany::One(t.clone()))?)
                        }
                    },
                    ArgSpec::Cond(a) => {
                        let mut nums = Vec::new();
                        for (v, mk) in [
                            (a.eq, Cmp::Eq as fn(i64) -> Cmp),
                            (a.ne, Cmp::Ne),
                            (a.lt, Cmp::Lt),
                            (a.le, Cmp::Le),
                            (a.gt, Cmp::Gt),
                            (a.ge, Cmp::Ge),
                        ] {
                            if let Some(v) = v {
                                nums.push(mk(v));
                            }
                        }
                        match (&a.glob, &a.contains, nums.is_empty()) {
                            (Some(g), None, true) => ArgCond::Glob(self.globs(rule, &field, g)?),
                            (None, Some(c), true) => ArgCond::Contains(c.to_vec()),
                            (None, None, false) => ArgCond::Num(nums),
                            _ => return Err(self.err(rule, &field, "use one of: comparisons (eq, ne, lt, le, gt, ge), glob, or contains")),
                        }
                    }
                };
                c.args.push((name.clone(), cond));
            }
        }
        if let Some(a) = &m.addr {
            c.addr_in = a
                .inside
                .as_ref()
                .map(|v| self.nets(rule, &f("addr.in"), v))
                .transpose()?;
            c.addr_not_in = a
                .not_in
                .as_ref()
                .map(|v| self.nets(rule, &f("addr.not_in"), v))
                .transpose()?;
        }
        c.port = m.port.as_ref().map(|p| p.to_vec().into_iter().collect());
        c.exfil = m
            .exfil_bytes
            .as_deref()
            .map(|e| {
                let t = e.trim();
                let (op, num) =
                    t.split_at(t.find(|ch: char| ch.is_ascii_digit()).unwrap_or(t.len()));
                let n = parse_bytes(num).ok_or_else(|| {
                    self.err(
                        rule,
                        &f("exfil_bytes"),
                        format!("'{e}': use a comparison with a size, like '>= 10MB'"),
                    )
                })?;
                Cmp::parse(&format!("{op}{n}")).ok_or_else(|| {
                    self.err(
                        rule,
                        &f("exfil_bytes"),
                        format!("'{e}': use a comparison with a size, like '>= 10MB'"),
                    )
                })
            })
            .transpose()?;
        c.from_llm = m
            .from_llm
            .as_deref()
            .map(|d| {
                humantime::parse_duration(d)
                    .map_err(|e| self.err(rule, &f("from_llm"), format!("'{d}': {e}")))
            })
            .transpose()?;
        Ok(c)
    }
}

/// The pseudo-syscall rules name to match LLM API calls seen in TLS
/// plaintext (`--tls-capture`).
pub const LLM: &str = "llm";

/// Most rule-file bytes read.
const MAX_FILE: u64 = 4 << 20;

impl Rules {
    /// Reads and validates a rule file.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::usage(format!("rules {}: {e}", path.display())))?;
        if meta.len() > MAX_FILE {
            return Err(Error::usage(format!(
                "rules {}: {} bytes is too large (at most {MAX_FILE})",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("rules {}: {e}", path.display())))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates rule text; errors carry `source:line`.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        Self::parse_profile(source, text, "auto")
    }

    /// Parses a rule file, keeping the rules of `profile` (those with no
    /// `profiles:` belong to every profile).
    pub fn parse_profile(source: &str, text: &str, profile: &str) -> Result<Self> {
        let mut spec: FileSpec = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map_or_else(String::new, |l| format!("{}:{}: ", l.line(), l.column()));
            let msg = e.to_string();
            // The message repeats the location at its end; keep one line.
            let msg = msg
                .split(" at line ")
                .next()
                .unwrap_or(&msg)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            Error::usage(format!("{source}:{at}{msg}"))
        })?;
        if spec.version != 1 {
            return Err(Error::usage(format!(
                "{source}: version {} is not supported (this build reads version 1)",
                spec.version
            )));
        }
        for r in &spec.rules {
            for p in r.profiles.iter().flatten() {
                if !PROFILES.contains(&p.as_str()) {
                    return Err(Error::usage(format!(
                        "{source}: rule '{}': profile '{p}' is not one of {}",
                        r.name,
                        PROFILES.join(", ")
                    )));
                }
            }
        }
        spec.rules.retain(|r| {
            r.profiles
                .as_ref()
                .is_none_or(|p| p.iter().any(|x| x == profile))
        });
        let ctx = Ctx {
            source,
            text,
            lists: &spec.lists,
        };
        let mut rules = Vec::new();
        let mut names = BTreeSet::new();
        for (id, r) in spec.rules.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err(Error::usage(format!(
                    "{source}: rule {} has an empty name",
                    id + 1
                )));
            }
            if !names.insert(r.name.clone()) {
                return Err(ctx.err(&r.name, "name", "duplicate rule name"));
            }
            let when = ctx.cond(&r.name, "match", &r.when)?;
            let threshold = match &r.threshold {
                None => None,
                Some(t) => {
                    let window = humantime::parse_duration(&t.window).map_err(|e| {
                        ctx.err(&r.name, "threshold.window", format!("'{}': {e}", t.window))
                    })?;
                    let bytes = t
                        .bytes
                        .as_deref()
                        .map(|b| {
                            parse_bytes(b).ok_or_else(|| {
                                ctx.err(
                                    &r.name,
                                    "threshold.bytes",
                                    format!("'{b}' is not a size (e.g. 50MB)"),
                                )
                            })
                        })
                        .transpose()?;
                    if t.count.is_none() && bytes.is_none() {
                        return Err(ctx.err(&r.name, "threshold", "needs count or bytes"));
                    }
                    Some(Threshold {
                        count: t.count,
                        bytes,
                        window,
                        per: t.per,
                    })
                }
            };
            let then = match &r.then {
                None => None,
                Some(t) => Some(Then {
                    when: ctx.cond(&r.name, "then.match", &t.when)?,
                    within: humantime::parse_duration(&t.within).map_err(|e| {
                        ctx.err(&r.name, "then.within", format!("'{}': {e}", t.within))
                    })?,
                    scope: t.scope,
                }),
            };
            let mut kernel_pats = Vec::new();
            let mut kernel_files = Vec::new();
            let mut kernel_exes = Vec::new();
            if r.action == Action::Deny && !r.kernel {
                return Err(ctx.err(
                    &r.name,
                    "action",
                    "deny refuses calls in the kernel: the rule needs kernel: true",
                ));
            }
            if r.kernel {
                kernel_compatible(&ctx, r, &when)?;
                let sys = when.syscalls.clone().unwrap_or_default();
                let exec = sys.iter().any(|s| s.starts_with("execve"));
                let open = sys.iter().any(|s| !s.starts_with("execve"));
                if open {
                    for (kind, p) in kernel_patterns(&ctx, r)? {
                        if kind != ai_forensics_common::deny::BASENAME {
                            kernel_pats.push((ai_forensics_common::deny::CLASS_OPEN, kind, p));
                        }
                    }
                    if let Some(p) = &r.when.path {
                        kernel_files = ctx.expand(&r.name, "match.path", p.to_vec())?;
                    }
                }
                if exec {
                    if let Some(b) = &r.when.basename {
                        kernel_exes = ctx.expand(&r.name, "match.basename", b.to_vec())?;
                    }
                    if let Some(p) = &r.when.path {
                        for g in ctx.expand(&r.name, "match.path", p.to_vec())? {
                            if g.contains(['*', '?', '[', '{']) || !g.starts_with('/') {
                                return Err(ctx.err(
                                    &r.name,
                                    "kernel",
                                    format!("exec rules name executables by absolute path or basename, not '{g}'"),
                                ));
                            }
                            kernel_exes.push(g);
                        }
                    }
                }
            }
            rules.push(Rule {
                id,
                name: r.name.clone(),
                description: r.description.clone(),
                severity: r.severity,
                action: r.action,
                kernel: r.kernel,
                line: ctx.line_of(&r.name),
                when,
                threshold,
                then,
                kernel_patterns: kernel_pats,
                kernel_files,
                kernel_exes,
            });
        }
        Ok(Self {
            source: source.to_owned(),
            profile: None,
            rules,
            lists: spec.lists,
        })
    }

    /// Syscalls the rules need to see; `None` when some rule looks at all.
    #[must_use]
    pub fn syscalls(&self) -> Option<BTreeSet<String>> {
        let mut s = BTreeSet::new();
        for r in &self.rules {
            for c in std::iter::once(&r.when).chain(r.then.as_ref().map(|t| &t.when)) {
                s.extend(c.syscalls.as_ref()?.iter().cloned());
            }
        }
        Some(s)
    }
}

/// A `kernel: true` rule must be something the kernel can check alone: an
/// exec or open, matched on its path by exact value, prefix (`/dir/*`) or
/// basename, with stop or kill.
fn kernel_compatible(ctx: &Ctx<'_>, r: &RuleSpec, c: &Cond) -> Result<()> {
    let bad = |why: &str| Err(ctx.err(&r.name, "kernel", why));
    if !matches!(r.action, Action::Kill | Action::Stop | Action::Deny) {
        return bad("kernel rules act with deny, stop or kill");
    }
    if r.threshold.is_some() || r.then.is_some() {
        return bad("kernel rules cannot have a threshold or a then");
    }
    let Some(sys) = &c.syscalls else {
        return bad("kernel rules must name their syscalls (exec or open family)");
    };
    let exec = ["execve", "execveat"];
    let open = ["open", "openat", "openat2", "creat", "open_by_handle_at"];
    if !sys
        .iter()
        .all(|s| exec.contains(&s.as_str()) || open.contains(&s.as_str()))
    {
        return bad("kernel rules apply to execve/execveat and open/openat/openat2/creat only");
    }
    if r.when.path.is_none() && r.when.basename.is_none() {
        return bad("kernel rules match on path or basename");
    }
    let exec = sys.iter().any(|s| exec.contains(&s.as_str()));
    if exec && r.when.basename.is_none() && r.when.path.is_none() {
        return bad("kernel exec rules name their executables (basename or path)");
    }
    kernel_patterns(ctx, r)?;
    Ok(())
}

/// The kernel patterns of a kernel rule: (kind, bytes).
fn kernel_patterns(ctx: &Ctx<'_>, r: &RuleSpec) -> Result<Vec<(u32, String)>> {
    use ai_forensics_common::deny;
    let mut out = Vec::new();
    if let Some(b) = &r.when.basename {
        for n in ctx.expand(&r.name, "match.basename", b.to_vec())? {
            out.push((deny::BASENAME, n));
        }
    }
    if let Some(p) = &r.when.path {
        for g in ctx.expand(&r.name, "match.path", p.to_vec())? {
            let body = g.trim_end_matches("**").trim_end_matches('*');
            if body.contains(['*', '?', '[', '{']) {
                // Only literal paths and `literal/*` prefixes fit the entry
                // check: a `/home/*/.ssh/*` pattern is expanded over existing
                // homes; other globs are left to the identity check.
                out.extend(expand_homes(&g).into_iter().map(|p| (deny::PREFIX, p)));
            } else if body.len() < g.len() {
                out.push((deny::PREFIX, body.to_owned()));
            } else {
                out.push((deny::EXACT, g));
            }
        }
    }
    // Paths too long for the entry check are still denied by identity.
    out.retain(|(k, p)| *k == deny::BASENAME || (!p.is_empty() && p.len() <= deny::PATTERN_MAX));
    for (_, p) in &out {
        if p.len() > deny::PATTERN_MAX || p.is_empty() {
            return Err(ctx.err(
                &r.name,
                "kernel",
                format!("pattern '{p}' must be 1 to {} bytes", deny::PATTERN_MAX),
            ));
        }
    }
    Ok(out)
}

/// `/home/*/.ssh/*` becomes `/home/<user>/.ssh/` for each existing home.
fn expand_homes(glob: &str) -> Vec<String> {
    let Some(rest) = glob.strip_prefix("/home/*/") else {
        return Vec::new();
    };
    let rest = rest.trim_end_matches("**").trim_end_matches('*');
    if rest.contains(['*', '?', '[', '{']) {
        return Vec::new();
    }
    std::fs::read_dir("/home")
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| format!("/home/{}/{rest}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version: 1
lists:
  ok_nets: ["127.0.0.0/8", "::1"]
rules:
  - name: shell
    severity: critical
    action: kill
    kernel: true
    match:
      syscall: [execve, execveat]
      basename: [sh, bash]
  - name: exfil
    action: alert
    match: {syscall: [read], path: ["*.safetensors"]}
    threshold: {bytes: 50MB, window: 30s, per: process}
    then:
      match: {syscall: connect, addr: {not_in: "@ok_nets"}}
      within: 30s
  - name: writes
    action: log
    match:
      syscall: openat
      args: {flags: {contains: O_WRONLY}}
      ret: ">= 0"
"#;

    #[test]
    fn parses_and_compiles() {
        let r = Rules::parse("t.yaml", GOOD).unwrap();
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].line, 6);
        assert!(r.rules[0].kernel);
        let t = r.rules[1].threshold.unwrap();
        assert_eq!(t.bytes, Some(50_000_000));
        assert_eq!(t.per, Scope::Process);
        assert_eq!(
            r.rules[1]
                .then
                .as_ref()
                .unwrap()
                .when
                .addr_not_in
                .as_ref()
                .unwrap()
                .len(),
            2
        );
        // Exec rules are decided on the executed file's identity, not on
        // the name passed to execve: no entry pattern, two names to resolve.
        assert!(r.rules[0].kernel_patterns.is_empty());
        assert_eq!(r.rules[0].kernel_exes, vec!["sh", "bash"]);
    }

    #[test]
    fn kernel_open_rules_keep_their_globs_and_literal_entry_patterns() {
        let y = "version: 1\nrules:\n  - name: k\n    action: kill\n    kernel: true\n    match: {syscall: [openat], path: [\"/etc/shadow\", \"/root/.ssh/*\", \"**/.aws/credentials\"], ai_workload: ml}\n";
        let r = Rules::parse("k.yaml", y).unwrap();
        let k = &r.rules[0];
        assert_eq!(
            k.kernel_files,
            vec!["/etc/shadow", "/root/.ssh/*", "**/.aws/credentials"]
        );
        // Only the literal path and prefix fit the entry check.
        let entry: Vec<&str> = k.kernel_patterns.iter().map(|p| p.2.as_str()).collect();
        assert_eq!(entry, vec!["/etc/shadow", "/root/.ssh/"]);
        assert_eq!(k.when.ai_workload, Some(AiCond::Ml));
        let bad = y.replace("ai_workload: ml", "ai_workload: gpu");
        assert!(
            Rules::parse("k.yaml", &bad)
                .unwrap_err()
                .to_string()
                .contains("expected true, false, ml or llm")
        );
        let glob_exec = "version: 1\nrules:\n  - name: e\n    action: kill\n    kernel: true\n    match: {syscall: [execve], path: [\"/bin/*\"]}\n";
        assert!(Rules::parse("e.yaml", glob_exec).is_err());
    }

    #[test]
    fn ai_conditions() {
        use ai_bits::{LLM, ML};
        assert!(AiCond::Any.test(ML) && AiCond::Any.test(LLM) && !AiCond::Any.test(0));
        assert!(AiCond::No.test(0) && !AiCond::No.test(ML));
        assert!(AiCond::Ml.test(ML | LLM) && !AiCond::Ml.test(LLM));
        assert!(AiCond::Llm.test(LLM) && !AiCond::Llm.test(ML));
    }

    #[test]
    fn errors_have_line_numbers() {
        let bad_field =
            "version: 1\nrules:\n  - name: x\n    action: kill\n    sycall: read\n    match: {}\n";
        let e = Rules::parse("r.yaml", bad_field).unwrap_err().to_string();
        assert!(e.starts_with("r.yaml:5:"), "{e}");
        assert!(e.contains("unknown field `sycall`"), "{e}");
        let bad_type = "version: 1\nrules:\n  - name: x\n    action: 7\n    match: {}\n";
        assert!(
            Rules::parse("r.yaml", bad_type)
                .unwrap_err()
                .to_string()
                .starts_with("r.yaml:4:")
        );
        let bad_regex =
            "version: 1\nrules:\n  - name: x\n    action: log\n    match: {comm: \"(\"}\n";
        let e = Rules::parse("r.yaml", bad_regex).unwrap_err().to_string();
        assert!(
            e.starts_with("r.yaml:3: rule 'x': match.comm: invalid regex"),
            "{e}"
        );
        let no_list =
            "version: 1\nrules:\n  - name: y\n    action: log\n    match: {path: \"@nope\"}\n";
        assert!(
            Rules::parse("r.yaml", no_list)
                .unwrap_err()
                .to_string()
                .contains("no list named 'nope'")
        );
        let bad_kernel = "version: 1\nrules:\n  - name: k\n    action: alert\n    kernel: true\n    match: {syscall: execve, basename: sh}\n";
        assert!(
            Rules::parse("r.yaml", bad_kernel)
                .unwrap_err()
                .to_string()
                .contains("deny, stop or kill")
        );
        let user_deny =
            "version: 1\nrules:\n  - name: d\n    action: deny\n    match: {syscall: connect}\n";
        assert!(
            Rules::parse("r.yaml", user_deny)
                .unwrap_err()
                .to_string()
                .contains("the rule needs kernel: true")
        );
        assert!(Rules::parse("r.yaml", "version: 2\nrules: []\n").is_err());
        assert!(Rules::parse("r.yaml", "- just\n- a list\n").is_err());
        assert!(
            Rules::parse(
                "r.yaml",
                "version: 1\nrules:\n  - name: a\n    action: log\n    match: {syscall: nosuch}\n"
            )
            .is_err()
        );
        let dup = "version: 1\nrules:\n  - {name: a, action: log, match: {}}\n  - {name: a, action: log, match: {}}\n";
        assert!(
            Rules::parse("r.yaml", dup)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
    }

    #[test]
    fn sizes_and_comparisons() {
        assert_eq!(parse_bytes("50MB"), Some(50_000_000));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(Cmp::parse(">= 0"), Some(Cmp::Ge(0)));
        assert_eq!(Cmp::parse("== -13"), Some(Cmp::Eq(-13)));
        assert!(Cmp::parse("x").is_none());
        assert!(Cmp::Lt(5).test(4) && !Cmp::Lt(5).test(5));
    }
}
