//! The objects kernel rules protect, by identity: what user space puts in
//! the kernel's `DENY_FILES`, `DENY_EXES` and `EXE_SIZES` maps, keeps
//! current while the session runs, and decides for images held at exec.
//!
//! * A kernel open rule's globs are expanded over the file system (a glob
//!   that starts with `*/` or `**/` under every home directory), and each
//!   match's (device, inode) goes in `DENY_FILES` (a glob that starts with
//!   `*/` or `**/` is rooted at each home directory), with the path it was
//!   found under (the record's `resolved` path). Rescanned every
//!   [`RESCAN`]: a key file or home directory made later is protected from
//!   the next scan on, one that is gone leaves the map (its inode number
//!   could be reused by an unrelated file).
//! * A kernel exec rule's names are looked up in every directory of `PATH`
//!   and the standard binary directories; each executable's inode goes in
//!   `DENY_EXES`, its size in `EXE_SIZES`, its SHA-256 in [`Identity`]. A
//!   new image of one of those sizes is held at exec; [`Identity::held`]
//!   compares its content and says whether it is a denied program.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use ai_forensics_common::{ObjDeny, ObjKey, deny};
use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

use crate::{
    loader::IdentityMaps,
    policy::rules::{Action, AiCond, Rules},
};

/// How often the protected files are looked for again.
pub const RESCAN: Duration = Duration::from_secs(2);
/// Most directory entries one scan visits (a bound on its cost).
const SCAN_BUDGET: usize = 200_000;
/// Deepest directory level a scan descends to below its root.
const SCAN_DEPTH: usize = 8;
/// Directories searched for denied executables besides `PATH`.
const BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/libexec",
];

/// The kernel encoding of a device number (`MKDEV`: major << 20 | minor),
/// as `super_block.s_dev` holds it.
#[must_use]
pub fn kernel_dev(st_dev: u64) -> u64 {
    let (major, minor) = (libc::major(st_dev), libc::minor(st_dev));
    (u64::from(major) << 20) | u64::from(minor)
}

/// Identity of the file at `path` (symlinks followed, as an open would).
#[must_use]
pub fn key_of(path: &Path) -> Option<(ObjKey, std::fs::Metadata)> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        ObjKey {
            dev: kernel_dev(m.dev()),
            ino: m.ino(),
        },
        m,
    ))
}

/// What a kernel rule does to the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deny {
    /// Rule index.
    pub rule: usize,
    /// SIGKILL or SIGSTOP.
    pub signal: u32,
    /// `deny::ONLY_*`.
    pub flags: u32,
    /// The rule's action (`deny`, `stop`, `kill`).
    pub action: Action,
}

impl Deny {
    fn obj(self) -> ObjDeny {
        ObjDeny {
            rule: self.rule as u32,
            signal: self.signal,
            flags: self.flags,
            _pad: 0,
        }
    }
}

/// `deny::ONLY_*` flags of a condition on AI workloads.
#[must_use]
pub fn only_flags(c: Option<AiCond>) -> u32 {
    match c {
        Some(AiCond::Ml) => deny::ONLY_AI_ML,
        Some(AiCond::Llm) => deny::ONLY_AI_LLM,
        Some(AiCond::Any) => deny::ONLY_AI_ML | deny::ONLY_AI_LLM,
        _ => 0,
    }
}

/// One kernel open rule's globs.
struct FileRule {
    deny: Deny,
    globs: Vec<(String, GlobMatcher)>,
}

/// One denied executable.
#[derive(Clone, Debug)]
pub struct Exe {
    /// Where it was found.
    pub path: PathBuf,
    /// The rule.
    pub deny: Deny,
}

/// What the kernel maps hold, for the deciders outside the kernel (the
/// seccomp supervisor of `run`): kept equal to the maps at every rescan.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    /// Denied files by identity, with the path each was found at.
    pub files: BTreeMap<ObjKey, (PathBuf, Deny)>,
    /// Denied executables by identity.
    pub exes: BTreeMap<ObjKey, Exe>,
    /// Denied executables by content: (size, SHA-256).
    pub hashes: HashMap<(u64, [u8; 32]), Exe>,
    /// Sizes of the denied executables.
    pub sizes: BTreeSet<u64>,
}

/// A shared, read-mostly view of [`Protected`].
pub type SharedProtected = Arc<RwLock<Protected>>;

/// A held image's fate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Its content is that of a denied executable.
    Denied {
        /// The rule.
        deny: Deny,
        /// The denied executable it is a copy of.
        copy_of: PathBuf,
    },
    /// Anything else: let it go.
    Cleared,
}

/// The protected objects of a rule set, and the kernel maps they live in.
pub struct Identity {
    maps: IdentityMaps,
    files: Vec<FileRule>,
    /// What is in `DENY_FILES` now, and the path it was found at.
    protected: BTreeMap<ObjKey, (PathBuf, Deny)>,
    /// What is in `DENY_EXES`, by identity.
    exes: BTreeMap<ObjKey, Exe>,
    /// Content of the denied executables: (size, SHA-256) -> which.
    hashes: HashMap<(u64, [u8; 32]), Exe>,
    /// Home directories, the roots of `*/...` and `**/...` globs.
    homes: Vec<PathBuf>,
    last_scan: Instant,
    /// Files that could not be put in the map (it was full).
    pub overflow: u64,
    /// The same sets for deciders outside the kernel.
    shared: SharedProtected,
}

fn signal_of(a: Action) -> u32 {
    if a == Action::Stop { 19 } else { 9 }
}

fn glob(g: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(g)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// Home directories: `/root`, every `/home/*`, and those named in
/// `/etc/passwd`.
#[must_use]
pub fn homes() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/root")];
    if let Ok(d) = std::fs::read_dir("/home") {
        out.extend(d.flatten().map(|e| e.path()));
    }
    if let Ok(p) = std::fs::read_to_string("/etc/passwd") {
        for line in p.lines() {
            if let Some(h) = line.split(':').nth(5)
                && h.starts_with('/')
                && h != "/"
                && !h.starts_with("/nonexistent")
            {
                out.push(PathBuf::from(h));
            }
        }
    }
    out.retain(|p| p.is_dir());
    out.sort();
    out.dedup();
    out
}

/// The literal directory a glob starts in, and the rest.
fn literal_root(g: &str) -> (PathBuf, usize) {
    let mut root = PathBuf::from("/");
    let mut depth = 0;
    for (i, c) in g.split('/').enumerate() {
        if c.contains(['*', '?', '[', '{']) {
            return (root, g.split('/').count() - i);
        }
        if i > 0 && !c.is_empty() {
            root.push(c);
        }
        depth = i;
    }
    let _ = depth;
    (root, 0)
}

/// Every existing path under `root` (itself included) that `m` matches,
/// descending at most `depth` levels (`usize::MAX`: up to [`SCAN_DEPTH`]).
fn walk(root: &Path, m: &GlobMatcher, depth: usize, budget: &mut usize, out: &mut Vec<PathBuf>) {
    if m.is_match(root) && root.exists() {
        out.push(root.to_path_buf());
    }
    if depth == 0 || *budget == 0 {
        return;
    }
    // Not through symlinks: a loop would never end, and the object a link
    // points to is found under its own path (or is outside the globs).
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let Ok(dir) = std::fs::read_dir(root) else {
        return;
    };
    for e in dir.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        walk(&e.path(), m, depth - 1, budget, out);
    }
}

/// A glob as absolute globs to walk: itself when it is absolute; one per
/// home directory when it starts with `*/` or `**/` (`**/.aws/credentials`
/// is `<home>/.aws/credentials`: the files a process reaches through
/// `$HOME`, not every such name anywhere below it).
fn rooted(g: &str, m: &GlobMatcher, homes: &[PathBuf]) -> Vec<(String, GlobMatcher)> {
    if g.starts_with('/') {
        return vec![(g.to_owned(), m.clone())];
    }
    let sub = g.trim_start_matches("**/").trim_start_matches("*/");
    homes
        .iter()
        .filter_map(|h| {
            let full = format!("{}/{sub}", h.display());
            glob(&full).map(|m| (full, m))
        })
        .collect()
}

impl Identity {
    /// The protected objects of `rules`, written to `maps`.
    pub fn new(rules: &Rules, maps: IdentityMaps) -> Self {
        let mut files = Vec::new();
        let mut exe_names: Vec<(String, Deny)> = Vec::new();
        for r in rules.rules.iter().filter(|r| r.kernel) {
            let d = Deny {
                rule: r.id,
                signal: signal_of(r.action),
                flags: only_flags(r.when.ai_workload),
                action: r.action,
            };
            if !r.kernel_files.is_empty() {
                files.push(FileRule {
                    deny: d,
                    globs: r
                        .kernel_files
                        .iter()
                        .filter_map(|g| glob(g).map(|m| (g.clone(), m)))
                        .collect(),
                });
            }
            exe_names.extend(r.kernel_exes.iter().map(|n| (n.clone(), d)));
        }
        let mut me = Self {
            maps,
            files,
            protected: BTreeMap::new(),
            exes: BTreeMap::new(),
            hashes: HashMap::new(),
            homes: homes(),
            last_scan: Instant::now(),
            overflow: 0,
            shared: SharedProtected::default(),
        };
        me.install_exes(&exe_names);
        me.rescan();
        me
    }

    fn install_exes(&mut self, names: &[(String, Deny)]) {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.extend(BIN_DIRS.iter().map(PathBuf::from));
        dirs.retain(|d| d.is_absolute());
        let mut sizes: BTreeMap<u64, u32> = BTreeMap::new();
        for (name, d) in names {
            let candidates: Vec<PathBuf> = if name.starts_with('/') {
                vec![PathBuf::from(name)]
            } else {
                dirs.iter().map(|dir| dir.join(name)).collect()
            };
            for path in candidates {
                let Some((key, meta)) = key_of(&path) else {
                    continue;
                };
                if !meta.is_file() || self.exes.contains_key(&key) {
                    continue;
                }
                let exe = Exe {
                    path: path.clone(),
                    deny: *d,
                };
                if self.maps.exes.insert(key, d.obj(), 0).is_err() {
                    self.overflow += 1;
                    continue;
                }
                if let Some(h) = sha256_file(&path) {
                    self.hashes.insert((meta.len(), h), exe.clone());
                    // The least restrictive flags of the rules sharing a size.
                    let f = sizes.entry(meta.len()).or_insert(d.flags);
                    *f &= d.flags;
                }
                self.exes.insert(key, exe);
            }
        }
        for (size, flags) in sizes {
            if self.maps.sizes.insert(size, flags, 0).is_err() {
                self.overflow += 1;
            }
        }
        if let Ok(mut sh) = self.shared.write() {
            sh.exes.clone_from(&self.exes);
            sh.hashes.clone_from(&self.hashes);
            sh.sizes = self.hashes.keys().map(|(size, _)| *size).collect();
        }
        tracing::info!(
            "identity: {} executables denied by inode ({} distinct contents)",
            self.exes.len(),
            self.hashes.len()
        );
    }

    /// Looks for the protected files again when [`RESCAN`] has passed.
    pub fn maybe_rescan(&mut self) {
        if self.last_scan.elapsed() >= RESCAN {
            self.rescan();
        }
    }

    /// Expands every glob and brings `DENY_FILES` in line with what exists.
    pub fn rescan(&mut self) {
        self.last_scan = Instant::now();
        self.homes = homes();
        let mut found: BTreeMap<ObjKey, (PathBuf, Deny)> = BTreeMap::new();
        let mut budget = SCAN_BUDGET;
        for fr in &self.files {
            for (g, m) in &fr.globs {
                let mut paths = Vec::new();
                for (g, m) in rooted(g, m, &self.homes) {
                    let (root, rest) = literal_root(&g);
                    let depth = if g.contains("**") { SCAN_DEPTH } else { rest };
                    walk(&root, &m, depth, &mut budget, &mut paths);
                }
                for p in paths {
                    if let Some((key, meta)) = key_of(&p)
                        && meta.is_file()
                    {
                        found.entry(key).or_insert((p, fr.deny));
                    }
                }
            }
        }
        if budget == 0 {
            tracing::warn!(
                "identity: the scan for protected files stopped after {SCAN_BUDGET} entries"
            );
        }
        for k in self.protected.keys() {
            if !found.contains_key(k) {
                let _ = self.maps.files.remove(k);
            }
        }
        for (k, (p, d)) in &found {
            if !self.protected.contains_key(k) {
                if self.maps.files.insert(*k, d.obj(), 0).is_err() {
                    self.overflow += 1;
                    continue;
                }
                tracing::debug!("identity: protecting {}", p.display());
            }
        }
        if let Ok(mut sh) = self.shared.write() {
            sh.files.clone_from(&found);
        }
        self.protected = found;
    }

    /// The protected sets, kept current, for deciders outside the kernel.
    #[must_use]
    pub fn shared(&self) -> SharedProtected {
        Arc::clone(&self.shared)
    }

    /// Number of files protected now.
    #[must_use]
    pub fn protected_files(&self) -> usize {
        self.protected.len()
    }

    /// The path a protected object was found at.
    #[must_use]
    pub fn resolved(&self, key: &ObjKey) -> Option<&Path> {
        self.protected
            .get(key)
            .map(|(p, _)| p.as_path())
            .or_else(|| self.exes.get(key).map(|e| e.path.as_path()))
    }

    /// Decides an image held at exec: `pid`'s executable, of identity `key`.
    pub fn held(&mut self, pid: u32, key: ObjKey) -> Held {
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let verdict = std::fs::metadata(&exe)
            .ok()
            .and_then(|m| Some((m.len(), sha256_file(&exe)?)))
            .and_then(|k| self.hashes.get(&k))
            .map_or(Held::Cleared, |e| Held::Denied {
                deny: e.deny,
                copy_of: e.path.clone(),
            });
        if verdict == Held::Cleared {
            let _ = self.maps.cleared.insert(key, 1, 0);
        }
        verdict
    }
}

/// SHA-256 of a file's content.
pub fn sha256_file(path: &Path) -> Option<[u8; 32]> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_device_encoding() {
        // makedev(8, 1) in glibc's encoding.
        let st = libc::makedev(8, 1);
        assert_eq!(kernel_dev(st), (8 << 20) | 1);
        let st = libc::makedev(259, 300);
        assert_eq!(kernel_dev(st), (259 << 20) | 300);
    }

    #[test]
    fn literal_roots() {
        assert_eq!(
            literal_root("/root/.ssh/*"),
            (PathBuf::from("/root/.ssh"), 1)
        );
        assert_eq!(literal_root("/home/*/.ssh/*"), (PathBuf::from("/home"), 3));
        assert_eq!(
            literal_root("/etc/shadow"),
            (PathBuf::from("/etc/shadow"), 0)
        );
    }

    #[test]
    fn globs_stay_within_components_and_find_real_files() {
        let dir = std::env::temp_dir().join(format!("af-ident-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/.ssh")).unwrap();
        std::fs::create_dir_all(dir.join("a/deep/x/.ssh")).unwrap();
        std::fs::write(dir.join("a/.ssh/id_rsa"), "k").unwrap();
        std::fs::write(dir.join("a/deep/x/.ssh/id_rsa"), "k").unwrap();
        let one = glob(&format!("{}/*/.ssh/*", dir.display())).unwrap();
        let (root, rest) = literal_root(&format!("{}/*/.ssh/*", dir.display()));
        let mut out = Vec::new();
        let mut budget = 1000;
        walk(&root, &one, rest, &mut budget, &mut out);
        assert_eq!(out, vec![dir.join("a/.ssh/id_rsa")]);
        let any = glob(&format!("{}/**/.ssh/*", dir.display())).unwrap();
        let mut out = Vec::new();
        walk(&dir, &any, SCAN_DEPTH, &mut budget, &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![dir.join("a/.ssh/id_rsa"), dir.join("a/deep/x/.ssh/id_rsa")]
        );
        let homes = vec![dir.join("a"), dir.join("b")];
        let r = rooted("**/.ssh/id_rsa", &glob("**/.ssh/id_rsa").unwrap(), &homes);
        let names: Vec<&str> = r.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            names,
            vec![
                format!("{}/a/.ssh/id_rsa", dir.display()),
                format!("{}/b/.ssh/id_rsa", dir.display())
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
