//! The read-only configuration global, set by user space at load time.
//!
//! It lives in `.rodata`, which the loader freezes, so the verifier knows the
//! values and prunes the branches a run does not use.
use ai_forensics_common::{CallNrs, Config, Offsets, UringOffsets};

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
    nr: CallNrs::NONE,
    off: Offsets::NONE,
    uring: UringOffsets::NONE,
};

/// The configuration. The pointer to it goes through `black_box`, so
/// the compiler cannot fold the placeholder values above, yet only the
/// fields a program uses are loaded (a volatile read of the whole struct
/// would load all of it, 49 words, at every call). The verifier still
/// knows the frozen values and prunes the branches a run does not use.
#[inline(always)]
pub fn get() -> &'static Config {
    let p = core::hint::black_box(&raw const CONFIG);
    // SAFETY: p points to CONFIG, a static that this program never writes.
    unsafe { &*p }
}

/// One flag of the configuration.
#[inline(always)]
pub fn has(flag: u32) -> bool {
    get().flags & flag != 0
}
