//! Checks that loading BPF programs can work before trying.
use std::fs;

use crate::error::{Error, Result};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capabilities of this process (the `CapEff` mask).
fn effective_caps() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// Fails with a one-line reason unless this process may load and attach
/// tracing programs (CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON).
pub fn check() -> Result<()> {
    let caps = effective_caps().unwrap_or(0);
    if has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON)) {
        return Ok(());
    }
    Err(Error::env(
        "permission denied: ai-forensics must run as root (or with CAP_BPF and CAP_PERFMON) to load eBPF programs",
    ))
}

/// Raises RLIMIT_MEMLOCK for kernels that still charge BPF maps to it
/// (before 5.11); harmless on newer ones.
pub fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid pointer to a local.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const rlim) };
    if rc != 0 {
        tracing::debug!(
            "setrlimit(RLIMIT_MEMLOCK): {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_mask() {
        let s = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let c = parse_cap_eff(s).unwrap();
        assert!(has(c, CAP_BPF) && has(c, CAP_PERFMON) && has(c, CAP_SYS_ADMIN));
        assert_eq!(parse_cap_eff("CapEff:\t0000000000000000\n"), Some(0));
        assert_eq!(parse_cap_eff("nothing"), None);
    }
}
