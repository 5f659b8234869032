//! Prevention in the kernel's security hooks (BPF LSM), where the kernel
//! runs the BPF LSM (`bpf` in `/sys/kernel/security/lsm`, loaded only
//! then): an open of a denied file and an exec of a denied executable fail
//! with `EPERM` before they happen, whatever path, descriptor or io_uring
//! request reached the object, and nothing can change the object between
//! the check and the use (the hook sees the `struct file` being opened).
//! The process lives; user space applies the rule's action to its tree.
use ai_forensics_common::{config as cfg, deny, target};
use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::lsm, programs::LsmContext};

use super::identity::{Source, applies, identity, ptr, report};
use crate::{
    config, filter,
    maps::{DENY_EXES, DENY_FILES},
};

const EPERM: i32 = 1;

#[lsm(hook = "file_open")]
pub fn lsm_file_open(ctx: LsmContext) -> i32 {
    // A refusal by an earlier LSM stands.
    let prev: i32 = ctx.arg(1);
    if prev != 0 {
        return prev;
    }
    let c = config::get();
    if c.flags & cfg::DENY_FILES == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(entry) = filter::target_entry((pid_tgid >> 32) as u32) else {
        return 0;
    };
    let file: *const u8 = ctx.arg(0);
    let (key, _) = identity(file);
    // SAFETY: the value is copied out before the map can change.
    let Some(d) = (unsafe { DENY_FILES.get(key) }).copied() else {
        return 0;
    };
    if !applies(&d, entry) {
        return 0;
    }
    let name = ptr(file, c.off.file_dentry);
    report(
        pid_tgid,
        entry,
        c.uring.openat_nr,
        &d,
        deny::HOW_LSM_FILE,
        key,
        Source::Kernel(ptr(name, c.off.dentry_name)),
    );
    -EPERM
}

#[lsm(hook = "bprm_check_security")]
pub fn lsm_bprm_check(ctx: LsmContext) -> i32 {
    let prev: i32 = ctx.arg(1);
    if prev != 0 {
        return prev;
    }
    let c = config::get();
    if c.flags & cfg::DENY_EXES == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(entry) = filter::target_entry((pid_tgid >> 32) as u32) else {
        return 0;
    };
    if entry & (target::LAUNCH_EXEC | target::AWAIT_EXEC) != 0 {
        // The launched command's own image is the user's choice (counting
        // at exit marks it only after its execve returns).
        return 0;
    }
    let bprm: *const u8 = ctx.arg(0);
    let file = ptr(bprm, c.off.bprm_file);
    if file.is_null() {
        return 0;
    }
    let (key, _) = identity(file);
    // SAFETY: the value is copied out before the map can change.
    let Some(d) = (unsafe { DENY_EXES.get(key) }).copied() else {
        return 0;
    };
    if !applies(&d, entry) {
        return 0;
    }
    report(
        pid_tgid,
        entry,
        c.execve_nr,
        &d,
        deny::HOW_LSM_EXEC,
        key,
        Source::Kernel(ptr(bprm, c.off.bprm_filename)),
    );
    -EPERM
}
