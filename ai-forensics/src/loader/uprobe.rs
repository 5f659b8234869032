//! Uprobes attached after load, to libraries and executables as they are
//! found: CUDA calls and TLS library calls. A uprobe is set on a file, so
//! every process that maps it is seen; the programs keep to targets.
use std::path::Path;

use aya::programs::{
    UProbe,
    uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
};

use super::{Probes, bpf_err};
use crate::error::{Error, Result};

impl Probes {
    /// The uprobe program `name`, verified on first use.
    fn uprobe(&mut self, name: &str) -> Result<&mut UProbe> {
        let prog: &mut UProbe = self
            ._ebpf
            .program_mut(name)
            .ok_or_else(|| Error::Runtime(format!("eBPF object has no program {name}")))?
            .try_into()
            .map_err(|e| bpf_err(format!("program {name}"), e))?;
        if prog.fd().is_err() {
            prog.load()
                .map_err(|e| bpf_err(format!("verifying {name}"), e))?;
        }
        Ok(prog)
    }

    /// Attaches the CUDA uprobes to `lib` for every function of `functions`
    /// (id = index) the library exports. Returns the names attached.
    pub fn attach_cuda(&mut self, lib: &Path, functions: &[&str]) -> Result<Vec<String>> {
        self.uprobe("uprobe_cuda")?;
        self.uprobe("uretprobe_cuda")?;
        let mut attached = Vec::new();
        for (id, f) in functions.iter().enumerate() {
            let point = || UProbeAttachPoint {
                location: UProbeAttachLocation::Symbol(f),
                cookie: Some(id as u64),
            };
            if self
                .uprobe("uprobe_cuda")?
                .attach(point(), lib, UProbeScope::AllProcesses)
                .is_err()
            {
                continue;
            }
            if f.contains("Alloc") || *f == "cudaMalloc" {
                self.uprobe("uretprobe_cuda")?
                    .attach(point(), lib, UProbeScope::AllProcesses)
                    .map_err(|e| bpf_err(format!("uretprobe {f} in {}", lib.display()), e))?;
            }
            attached.push((*f).to_owned());
        }
        Ok(attached)
    }

    /// Attaches the TLS plaintext uprobes (entry and return) to every
    /// function of `functions` (wire id, symbol) that `file` defines,
    /// capturing up to `cap` bytes per call. Returns the symbols attached;
    /// a file that defines none of them is not an error (empty list).
    pub fn attach_tls(
        &mut self,
        file: &Path,
        functions: &[(u32, &str)],
        cap: u32,
    ) -> Result<Vec<String>> {
        self.uprobe("uprobe_tls")?;
        self.uprobe("uretprobe_tls")?;
        let mut attached = Vec::new();
        for (id, f) in functions {
            let point = || UProbeAttachPoint {
                location: UProbeAttachLocation::Symbol(f),
                cookie: Some(ai_forensics_common::tls::cookie(*id, cap)),
            };
            // The return probe first: an entry without its return would
            // leave calls pending that never produce a record.
            let Ok(ret) =
                self.uprobe("uretprobe_tls")?
                    .attach(point(), file, UProbeScope::AllProcesses)
            else {
                continue;
            };
            if let Err(e) =
                self.uprobe("uprobe_tls")?
                    .attach(point(), file, UProbeScope::AllProcesses)
            {
                let _ = self.uprobe("uretprobe_tls")?.detach(ret);
                return Err(bpf_err(format!("uprobe {f} in {}", file.display()), e));
            }
            attached.push((*f).to_owned());
        }
        Ok(attached)
    }
}
