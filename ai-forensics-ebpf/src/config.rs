//! The read-only configuration global, set by user space at load time.
//!
//! It lives in `.rodata`, which the loader freezes, so the verifier knows the
//! values and prunes the branches a run does not use.
use ai_forensics_common::{Config, Offsets, UringOffsets};

#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    flags: 0,
    self_tgid: 0,
    pid_max: 0,
    exit_group_dead_off: 0,
    task_pid_off: 0,
    task_tgid_off: 0,
    execve_nr: 0,
    execveat_nr: 0,
    off: Offsets::NONE,
    uring: UringOffsets::NONE,
};

/// The configuration (a volatile read so the compiler does not fold the
/// placeholder values above).
#[inline(always)]
pub fn get() -> Config {
    // SAFETY: CONFIG is a plain static that is never written by this program.
    unsafe { core::ptr::read_volatile(&raw const CONFIG) }
}

/// One flag of the configuration.
#[inline(always)]
pub fn has(flag: u32) -> bool {
    get().flags & flag != 0
}
