//! Model artefacts: weights, checkpoints, tokenizers and datasets the
//! workload opened or mapped, recognised by name and by the format magic
//! read from the file itself.
use std::{
    collections::BTreeMap,
    fs::File,
    io::Read as _,
    path::{Path, PathBuf},
};

use serde::Serialize;

/// What an artefact is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Model weights (read).
    Weights,
    /// A checkpoint (written by the workload).
    Checkpoint,
    /// Tokenizer or vocabulary.
    Tokenizer,
    /// Training or evaluation data.
    Dataset,
    /// Model configuration.
    Config,
}

/// A recognised artefact and its usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artefact {
    /// Path as the workload named it (escaped form).
    pub path: String,
    /// Kind.
    pub kind: Kind,
    /// File format (`safetensors`, `pytorch-zip`, `pickle`, `gguf`, `onnx`...).
    pub format: String,
    /// How the format was recognised: `magic` or `name`.
    pub by: &'static str,
    /// Successful opens.
    pub opens: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes mapped.
    pub bytes_mapped: u64,
    /// First access (monotonic ns).
    pub first_ns: u64,
    /// Last access.
    pub last_ns: u64,
    /// Inside a Hugging Face cache.
    pub hf_cache: bool,
    /// SHA-256 (hex), when hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it was not hashed, when hashing was asked for but skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_skipped: Option<String>,
    /// Process that first opened it (to resolve a relative path).
    #[serde(skip)]
    pub opener: u32,
}

/// Format recognised from the first bytes of a file.
#[must_use]
pub fn magic(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"GGUF") {
        return Some("gguf");
    }
    if head.starts_with(b"PK\x03\x04") {
        return Some("pytorch-zip");
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Some("pickle");
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some("numpy");
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Some("hdf5");
    }
    if head.starts_with(b"PAR1") {
        return Some("parquet");
    }
    if head.len() >= 9 {
        // safetensors: a little-endian u64 header length, then a JSON object.
        let n = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        if n > 1 && n < 100 << 20 && head[8] == b'{' {
            return Some("safetensors");
        }
    }
    None
}

fn by_name(name: &str) -> Option<(Kind, &'static str)> {
    let lower = name.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    let ext = base.rsplit_once('.').map_or("", |(_, e)| e);
    Some(match (base, ext) {
        (
            "tokenizer.json"
            | "tokenizer_config.json"
            | "vocab.txt"
            | "vocab.json"
            | "merges.txt"
            | "special_tokens_map.json",
            _,
        ) => (Kind::Tokenizer, "tokenizer"),
        (_, "model") if base.contains("tokenizer") || base.contains("spiece") => {
            (Kind::Tokenizer, "sentencepiece")
        }
        ("config.json" | "generation_config.json", _) => (Kind::Config, "json"),
        (_, "safetensors") => (Kind::Weights, "safetensors"),
        (_, "pt" | "pth") => (Kind::Weights, "pytorch"),
        (_, "ckpt") => (Kind::Checkpoint, "checkpoint"),
        (_, "gguf") => (Kind::Weights, "gguf"),
        (_, "ggml") => (Kind::Weights, "ggml"),
        (_, "onnx") => (Kind::Weights, "onnx"),
        (_, "tflite") => (Kind::Weights, "tflite"),
        (_, "h5" | "keras") => (Kind::Weights, "keras"),
        (_, "pkl" | "pickle") => (Kind::Weights, "pickle"),
        (_, "bin") if lower.contains("pytorch_model") || lower.contains("/huggingface/") => {
            (Kind::Weights, "pytorch-bin")
        }
        (_, "parquet") => (Kind::Dataset, "parquet"),
        (_, "arrow") => (Kind::Dataset, "arrow"),
        (_, "tfrecord" | "tfrecords") => (Kind::Dataset, "tfrecord"),
        (_, "npy" | "npz") => (Kind::Dataset, "numpy"),
        (_, "jsonl") if lower.contains("data") || lower.contains("train") => {
            (Kind::Dataset, "jsonl")
        }
        _ => return None,
    })
}

/// Reads the first bytes of a file the workload opened (relative paths are
/// taken from the process's working directory).
fn head_of(path: &str, pid: u32) -> Option<Vec<u8>> {
    use std::os::unix::{ffi::OsStrExt as _, fs::OpenOptionsExt as _};
    let raw = crate::decode::escape::unescape(path)?;
    let p = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
    let full = if p.is_absolute() {
        p
    } else {
        Path::new(&format!("/proc/{pid}/cwd")).join(p)
    };
    // Only regular files: the path is the workload's, and opening a FIFO,
    // a terminal or /dev/ptmx would block this thread (or make a new
    // pseudo-terminal). Checked before the open and again on the open file
    // (the path may change in between); the open never blocks.
    if !std::fs::metadata(&full).ok()?.is_file() {
        return None;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(full)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = [0u8; 16];
    let n = f.read(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Classifies an opened file: by magic when it can be read, else by name.
#[must_use]
pub fn classify(path: &str, pid: u32) -> Option<(Kind, String, &'static str)> {
    let named = by_name(path);
    // Python's site directories hold `.pth` path-configuration files.
    let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
    if path.ends_with(".pth")
        && (parent.ends_with("site-packages") || parent.ends_with("dist-packages"))
    {
        return None;
    }
    let head = head_of(path, pid);
    if let Some(fmt) = head.as_deref().and_then(magic) {
        let kind = named.map_or(
            match fmt {
                "numpy" | "parquet" | "hdf5" => Kind::Dataset,
                _ => Kind::Weights,
            },
            |(k, _)| k,
        );
        // A zip or pickle with no model-like name is not assumed to be a model.
        if named.is_none() && matches!(fmt, "pytorch-zip" | "pickle" | "hdf5" | "numpy") {
            return None;
        }
        return Some((kind, fmt.to_owned(), "magic"));
    }
    // A binary model format by name whose content is something else (text):
    // not a model. An empty or unreadable file (being written) keeps its name.
    if let (Some((_, f)), Some(h)) = (named, &head)
        && !h.is_empty()
        && matches!(
            f,
            "pytorch" | "pickle" | "pytorch-bin" | "safetensors" | "gguf"
        )
    {
        return None;
    }
    named.map(|(k, f)| (k, f.to_owned(), "name"))
}

/// Artefacts by path.
#[derive(Debug, Default)]
pub struct Artefacts {
    /// Known artefacts.
    pub by_path: BTreeMap<String, Artefact>,
}

impl Artefacts {
    /// A file was opened: record it if it is an artefact.
    pub fn opened(&mut self, path: &str, pid: u32, ts: u64, writes: bool) {
        if let Some(a) = self.by_path.get_mut(path) {
            a.opens += 1;
            a.last_ns = ts;
            if writes {
                a.kind = promote(a.kind);
            }
            return;
        }
        if self.by_path.len() >= 100_000 {
            return;
        }
        let Some((mut kind, format, by)) = classify(path, pid) else {
            return;
        };
        if writes {
            kind = promote(kind);
        }
        self.by_path.insert(
            path.to_owned(),
            Artefact {
                path: path.to_owned(),
                kind,
                format,
                by,
                opens: 1,
                bytes_read: 0,
                bytes_written: 0,
                bytes_mapped: 0,
                first_ns: ts,
                last_ns: ts,
                hf_cache: path.contains("/huggingface/hub/models--"),
                sha256: None,
                hash_skipped: None,
                opener: pid,
            },
        );
    }

    /// Bytes moved to or from an artefact.
    pub fn io(&mut self, path: &str, ts: u64, read: u64, written: u64, mapped: u64) {
        if let Some(a) = self.by_path.get_mut(path) {
            a.bytes_read += read;
            a.bytes_written += written;
            a.bytes_mapped += mapped;
            a.last_ns = ts;
            if written > 0 {
                a.kind = promote(a.kind);
            }
        }
    }

    /// Total bytes read (and mapped) from model artefacts (weights, checkpoints).
    #[must_use]
    pub fn model_bytes_in(&self) -> u64 {
        self.by_path
            .values()
            .filter(|a| matches!(a.kind, Kind::Weights | Kind::Checkpoint))
            .map(|a| a.bytes_read + a.bytes_mapped)
            .sum()
    }

    /// Re-reads the format magic of written artefacts (their content exists
    /// only after the workload wrote it).
    pub fn refresh_formats(&mut self) {
        for a in self.by_path.values_mut().filter(|a| a.bytes_written > 0) {
            if let Some(fmt) = head_of(&a.path, a.opener).as_deref().and_then(magic) {
                a.format = fmt.to_owned();
                a.by = "magic";
            }
        }
    }
}

fn promote(k: Kind) -> Kind {
    match k {
        Kind::Weights => Kind::Checkpoint,
        other => other,
    }
}

/// Largest artefact hashed.
pub const HASH_MAX_BYTES: u64 = 2 << 30;
/// Time allowed for hashing all artefacts.
pub const HASH_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

impl Artefacts {
    /// SHA-256 of every artefact with an absolute path, up to
    /// [`HASH_MAX_BYTES`] each, within [`HASH_BUDGET`] in all; the rest are
    /// left unhashed (and say why). Runs in its own thread so the recorder
    /// never waits longer than the budget.
    pub fn hash_all(&mut self) {
        use sha2::{Digest as _, Sha256};
        let jobs: Vec<(String, PathBuf)> = self
            .by_path
            .values()
            .filter_map(|a| {
                let raw = crate::decode::escape::unescape(&a.path)?;
                use std::os::unix::ffi::OsStrExt as _;
                let p = PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
                p.is_absolute().then(|| (a.path.clone(), p))
            })
            .collect();
        let deadline = std::time::Instant::now() + HASH_BUDGET;
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            for (key, p) in jobs {
                let r = (|| -> Result<String, String> {
                    let meta = std::fs::metadata(&p).map_err(|e| e.to_string())?;
                    if !meta.is_file() {
                        return Err("not a regular file".to_owned());
                    }
                    if meta.len() > HASH_MAX_BYTES {
                        return Err(format!("{} bytes is over the limit", meta.len()));
                    }
                    let mut f = File::open(&p).map_err(|e| e.to_string())?;
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        if std::time::Instant::now() > deadline {
                            return Err("hashing time budget spent".to_owned());
                        }
                        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    Ok(hex::encode(h.finalize()))
                })();
                if tx.send((key, r)).is_err() {
                    return;
                }
            }
        });
        while let Ok((key, r)) = rx.recv_timeout(
            deadline
                .saturating_duration_since(std::time::Instant::now())
                .max(std::time::Duration::from_millis(1)),
        ) {
            if let Some(a) = self.by_path.get_mut(&key) {
                match r {
                    Ok(h) => a.sha256 = Some(h),
                    Err(why) => a.hash_skipped = Some(why),
                }
            }
        }
        drop(worker);
        for a in self.by_path.values_mut() {
            if a.sha256.is_none() && a.hash_skipped.is_none() {
                a.hash_skipped = Some(if a.path.starts_with('/') {
                    "hashing time budget spent".to_owned()
                } else {
                    "relative path".to_owned()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        let mut st = 20u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":1}");
        assert_eq!(magic(&st), Some("safetensors"));
        assert_eq!(magic(b"GGUF\x03\0\0\0"), Some("gguf"));
        assert_eq!(magic(b"PK\x03\x04rest"), Some("pytorch-zip"));
        assert_eq!(magic(b"\x80\x04\x95"), Some("pickle"));
        assert_eq!(magic(b"\x93NUMPY\x01\x00"), Some("numpy"));
        assert_eq!(magic(b"hello world, text"), None);
        assert_eq!(magic(b""), None);
    }

    #[test]
    fn names() {
        assert_eq!(by_name("/m/model.safetensors").unwrap().0, Kind::Weights);
        assert_eq!(by_name("/m/tokenizer.json").unwrap().0, Kind::Tokenizer);
        assert_eq!(by_name("/d/train-000.parquet").unwrap().0, Kind::Dataset);
        assert_eq!(by_name("/c/epoch3.ckpt").unwrap().0, Kind::Checkpoint);
        assert!(by_name("/etc/passwd").is_none());
        assert!(by_name("/tmp/x.bin").is_none());
        assert!(by_name("/h/huggingface/hub/models--a--b/snapshots/1/pytorch_model.bin").is_some());
    }

    #[test]
    fn accounting() {
        let dir = std::env::temp_dir().join(format!("aif-art-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = dir.join("w.safetensors");
        let mut content = 10u64.to_le_bytes().to_vec();
        content.extend_from_slice(b"{\"x\":null}0123");
        std::fs::write(&w, &content).unwrap();
        let mut a = Artefacts::default();
        let p = w.to_str().unwrap();
        a.opened(p, std::process::id(), 1, false);
        a.io(p, 2, 100, 0, 0);
        a.io(p, 3, 50, 0, 4096);
        let art = &a.by_path[p];
        assert_eq!(
            (art.kind, art.format.as_str(), art.by),
            (Kind::Weights, "safetensors", "magic")
        );
        assert_eq!(
            (art.bytes_read, art.bytes_mapped, art.first_ns, art.last_ns),
            (150, 4096, 1, 3)
        );
        assert_eq!(a.model_bytes_in(), 150 + 4096);
        a.opened("/nope/not-a-model.txt", 1, 1, false);
        assert_eq!(a.by_path.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn hashes_what_is_there_and_says_why_not_otherwise() {
        let dir = std::env::temp_dir().join(format!("aif-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = dir.join("model.gguf");
        std::fs::write(&w, b"GGUF\x03\0\0\0").unwrap();
        let gone = dir.join("gone.safetensors");
        let mut a = Artefacts::default();
        a.opened(w.to_str().unwrap(), 1, 1, false);
        a.opened(gone.to_str().unwrap(), 1, 1, false);
        a.opened("rel/model.onnx", 1, 1, false);
        a.hash_all();
        let got = &a.by_path[w.to_str().unwrap()];
        // sha256 of the 8 bytes above.
        assert_eq!(
            got.sha256.as_deref(),
            Some("527ee9a8eac07fc69af277c264ea5bf5c0f037c442b5c3336c18aa10d2096bd6")
        );
        assert!(got.hash_skipped.is_none());
        let gone = &a.by_path[gone.to_str().unwrap()];
        assert!(gone.sha256.is_none() && gone.hash_skipped.is_some());
        assert_eq!(
            a.by_path["rel/model.onnx"].hash_skipped.as_deref(),
            Some("relative path")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
