//! GPU activity: ioctls on GPU device files, and CUDA runtime/driver calls
//! seen by uprobes (allocations, frees, copies, kernel launches).
use std::collections::BTreeMap;

use serde::Serialize;

/// CUDA functions watched by uprobes, in the order of their ids on the wire.
pub const FUNCTIONS: &[&str] = &[
    "cudaMalloc",
    "cudaFree",
    "cudaMemcpy",
    "cudaMemcpyAsync",
    "cudaLaunchKernel",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuLaunchKernel",
    "cuMemcpyHtoD_v2",
    "cuMemcpyDtoH_v2",
];

/// Whether a path is a GPU device file.
#[must_use]
pub fn is_gpu_device(path: &str) -> bool {
    path.starts_with("/dev/nvidia") || path.starts_with("/dev/dri/") || path == "/dev/kfd"
}

/// Counts per CUDA function.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallStats {
    /// Calls.
    pub calls: u64,
    /// Bytes (allocated, copied).
    pub bytes: u64,
}

/// Everything GPU.
#[derive(Debug, Default)]
pub struct Gpu {
    /// (device, request) -> ioctl calls.
    pub ioctls: BTreeMap<(String, String), u64>,
    /// Function -> stats.
    pub calls: BTreeMap<&'static str, CallStats>,
    /// Device pointer -> bytes, for allocations not yet freed.
    pub outstanding: BTreeMap<u64, u64>,
    /// Peak of outstanding bytes.
    pub peak_outstanding: u64,
    /// Libraries with uprobes attached.
    pub libraries: Vec<String>,
    /// Why GPU accounting has nothing to show, when it has nothing.
    pub note: Option<String>,
}

impl Gpu {
    /// An ioctl on `device` with request text `request`.
    pub fn ioctl(&mut self, device: &str, request: &str) {
        if self.ioctls.len() < 10_000 {
            *self
                .ioctls
                .entry((device.to_owned(), request.to_owned()))
                .or_default() += 1;
        }
    }

    /// A CUDA call seen by a uprobe: function id, size, device pointer.
    pub fn call(&mut self, func: u32, size: u64, ptr: u64, ret: i64) {
        let Some(name) = FUNCTIONS.get(func as usize) else {
            return;
        };
        let s = self.calls.entry(name).or_default();
        s.calls += 1;
        match *name {
            "cudaMalloc" | "cuMemAlloc_v2" => {
                s.bytes += size;
                if ret == 0 && ptr != 0 {
                    self.outstanding.insert(ptr, size);
                    let total: u64 = self.outstanding.values().sum();
                    self.peak_outstanding = self.peak_outstanding.max(total);
                }
            }
            "cudaFree" | "cuMemFree_v2" => {
                self.outstanding.remove(&ptr);
            }
            "cudaMemcpy" | "cudaMemcpyAsync" | "cuMemcpyHtoD_v2" | "cuMemcpyDtoH_v2" => {
                s.bytes += size
            }
            _ => {}
        }
    }

    /// JSON summary.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ioctls": self.ioctls.iter().map(|((d, r), n)| serde_json::json!({"device": d, "request": r, "calls": n})).collect::<Vec<_>>(),
            "cuda": self.calls,
            "outstanding_allocations": self.outstanding.len(),
            "outstanding_bytes": self.outstanding.values().sum::<u64>(),
            "peak_outstanding_bytes": self.peak_outstanding,
            "libraries": self.libraries,
            "note": self.note,
        })
    }
}

/// CUDA libraries on this machine (from the dynamic linker's cache and the
/// usual directories), to attach uprobes to before any workload loads them.
#[must_use]
pub fn find_libraries() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(o) = std::process::Command::new("ldconfig").arg("-p").output() {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((_, path)) = line.split_once("=> ") {
                let base = path.rsplit('/').next().unwrap_or("");
                if (base.starts_with("libcudart.so") || base.starts_with("libcuda.so"))
                    && !out.contains(&path.trim().to_owned())
                {
                    out.push(path.trim().to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations() {
        let mut g = Gpu::default();
        g.call(0, 100, 0xA, 0);
        g.call(0, 300, 0xB, 0);
        g.call(1, 0, 0xA, 0);
        g.call(2, 64, 0, 0);
        assert_eq!(
            g.calls["cudaMalloc"],
            CallStats {
                calls: 2,
                bytes: 400
            }
        );
        assert_eq!(g.outstanding.len(), 1);
        assert_eq!(g.peak_outstanding, 400);
        assert_eq!(g.calls["cudaMemcpy"].bytes, 64);
        assert!(
            is_gpu_device("/dev/nvidia0")
                && is_gpu_device("/dev/dri/card0")
                && !is_gpu_device("/dev/null")
        );
    }
}
