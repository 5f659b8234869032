//! Recognising AI workloads: ML runtime libraries they map and model files
//! they open.
use std::{fs, path::Path};

/// Why a process looks like an AI workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `library` or `model-file`.
    pub kind: &'static str,
    /// What matched (library family or file format).
    pub what: &'static str,
    /// The path that matched.
    pub path: Vec<u8>,
}

impl Finding {
    /// One-line reason, as reported.
    #[must_use]
    pub fn reason(&self) -> String {
        format!(
            "{} {} ({})",
            self.kind,
            self.what,
            crate::decode::escape::escape(&self.path)
        )
    }
}

/// ML runtime libraries, by file-name prefix.
const LIBRARIES: &[(&str, &str)] = &[
    ("libtorch", "pytorch"),
    ("libc10", "pytorch"),
    ("libcudart", "cuda-runtime"),
    ("libcuda.so", "cuda-driver"),
    ("libcublas", "cuda-blas"),
    ("libcudnn", "cudnn"),
    ("libnccl", "nccl"),
    ("libonnxruntime", "onnxruntime"),
    ("libtensorflow", "tensorflow"),
    ("_pywrap_tensorflow", "tensorflow"),
    ("libggml", "ggml"),
    ("libllama", "llama.cpp"),
    ("libxla", "xla"),
    ("xla_extension", "jax"),
    ("libjax", "jax"),
    ("libmlx", "mlx"),
];

/// File names that make the process opening them an AI workload in the
/// kernel (`kind` 1: prefix, 2: suffix; `bits`: `policy::rules::ai_bits`).
/// Runtimes above all: a pickle checkpoint (.pt, .pth, .ckpt) needs torch,
/// whose libraries are opened first, while a bare `.pth` or `.bin` is also
/// what site-packages and many non-ML programs open.
pub const KERNEL_MARKERS: &[(u32, &str, u8)] = &[
    (1, "libtorch", 1),
    (1, "libc10", 1),
    (1, "libcudart", 1),
    (1, "libcublas", 1),
    (1, "libcudnn", 1),
    (1, "libnccl", 1),
    (1, "libonnxruntime", 1),
    (1, "libtensorflow", 1),
    (1, "_pywrap_tensorflow", 1),
    (1, "libxla", 1),
    (1, "xla_extension", 1),
    (1, "libjax", 1),
    (1, "libmlx", 1),
    (2, ".safetensors", 1),
    (2, ".onnx", 1),
    (2, ".tflite", 1),
    (2, ".keras", 1),
    (1, "libggml", 2),
    (1, "libllama", 2),
    (1, "llama-addon", 2),
    (2, ".gguf", 2),
    (2, ".ggml", 2),
];

/// [`KERNEL_MARKERS`] as the kernel's table.
#[must_use]
pub fn kernel_markers() -> Vec<ai_forensics_common::AiMarker> {
    KERNEL_MARKERS
        .iter()
        .map(|(kind, p, bits)| {
            let mut pattern = [0u8; ai_forensics_common::AI_MARKER_MAX];
            pattern[..p.len()].copy_from_slice(p.as_bytes());
            ai_forensics_common::AiMarker {
                kind: *kind,
                len: p.len() as u32,
                flag: u32::from(*bits),
                _pad: 0,
                pattern,
            }
        })
        .collect()
}

/// Model and checkpoint formats, by extension.
const MODEL_EXTENSIONS: &[(&str, &str)] = &[
    (".safetensors", "safetensors"),
    (".pt", "pytorch"),
    (".pth", "pytorch"),
    (".bin", "pytorch-bin"),
    (".ckpt", "checkpoint"),
    (".onnx", "onnx"),
    (".gguf", "gguf"),
    (".ggml", "ggml"),
    (".tflite", "tflite"),
    (".h5", "keras-hdf5"),
    (".keras", "keras"),
    (".mlmodel", "coreml"),
    (".pb", "tensorflow-graph"),
];

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// Whether `path` names an ML runtime library or a model file.
#[must_use]
pub fn classify(path: &[u8]) -> Option<Finding> {
    let name = file_name(path);
    let lower: Vec<u8> = name.to_ascii_lowercase();
    if lower.windows(3).any(|w| w == b".so") {
        for (prefix, what) in LIBRARIES {
            if lower.starts_with(prefix.as_bytes()) {
                return Some(Finding {
                    kind: "library",
                    what,
                    path: path.to_vec(),
                });
            }
        }
        return None;
    }
    let in_hf_cache = path
        .windows(b"/huggingface/hub/models--".len())
        .any(|w| w == b"/huggingface/hub/models--");
    // Python's site directories hold `.pth` path-configuration files that
    // every interpreter reads at start-up: not models.
    let parent = path.rsplitn(2, |b| *b == b'/').nth(1).unwrap_or_default();
    let in_site_dir = parent.ends_with(b"site-packages") || parent.ends_with(b"dist-packages");
    for (ext, what) in MODEL_EXTENSIONS {
        // ".bin" and ".pb" are too generic on their own: only inside a
        // Hugging Face cache do they count.
        let generic = matches!(*ext, ".bin" | ".pb");
        let site_config = in_site_dir && *ext == ".pth";
        if lower.ends_with(ext.as_bytes()) && (!generic || in_hf_cache) && !site_config {
            return Some(Finding {
                kind: "model-file",
                what,
                path: path.to_vec(),
            });
        }
    }
    if in_hf_cache {
        return Some(Finding {
            kind: "model-file",
            what: "huggingface-cache",
            path: path.to_vec(),
        });
    }
    None
}

/// Looks through `/proc/<pid>/maps` for an ML runtime library.
#[must_use]
pub fn scan_maps(pid: u32) -> Option<Finding> {
    let maps = fs::read(Path::new("/proc").join(pid.to_string()).join("maps")).ok()?;
    maps.split(|b| *b == b'\n').find_map(|line| {
        let path = line.splitn(6, |b| *b == b' ').nth(5)?;
        let path = path.trim_ascii_start();
        if path.starts_with(b"/") {
            classify(path).filter(|f| f.kind == "library")
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_and_models() {
        let f = classify(b"/usr/lib/python3/dist-packages/torch/lib/libtorch_cpu.so").unwrap();
        assert_eq!((f.kind, f.what), ("library", "pytorch"));
        assert_eq!(
            classify(b"/usr/lib/x86_64-linux-gnu/libcudart.so.12")
                .unwrap()
                .what,
            "cuda-runtime"
        );
        assert_eq!(
            classify(b"/data/model.safetensors").unwrap().what,
            "safetensors"
        );
        assert_eq!(classify(b"ckpt/epoch1.PT").unwrap().what, "pytorch");
        assert_eq!(classify(b"/m/llama-135m.gguf").unwrap().what, "gguf");
        assert!(classify(b"/usr/lib/x86_64-linux-gnu/libc.so.6").is_none());
        assert!(classify(b"/usr/bin/python3").is_none());
        assert!(classify(b"/tmp/data.bin").is_none());
        assert!(
            classify(b"/usr/local/lib/python3.11/dist-packages/distutils-precedence.pth").is_none()
        );
        assert!(classify(b"/usr/lib/python3/site-packages/x.pth").is_none());
        assert!(classify(b"/data/ckpt/model.pth").is_some());
        assert!(classify(b"/root/.cache/huggingface/hub/models--x--y/blobs/abc").is_some());
        assert!(
            classify(b"/root/.cache/huggingface/hub/models--x--y/snapshots/1/pytorch_model.bin")
                .is_some()
        );
    }

    #[test]
    fn scanning_self_finds_nothing_ml() {
        assert!(scan_maps(std::process::id()).is_none());
    }
}
