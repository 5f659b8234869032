//! Enforcement at syscall entry, before the call runs:
//!
//! * a frozen tree's members get SIGSTOP, a killed tree's SIGKILL, on their
//!   next syscall (children inherit the flags at fork, so none escapes);
//! * deny rules on literal open paths (exact or prefix match) send their
//!   signal from the tracepoint itself, without waiting for user space. The
//!   signal takes effect before the call returns to user mode (the call
//!   itself still runs). Every other spelling of the path is caught on the
//!   opened file's identity at the call's exit (`identity`).
use ai_forensics_common::{ObjDeny, ObjKey, deny, spec, target};
use aya_ebpf::{
    cty::c_void,
    helpers::generated::{bpf_probe_read_kernel, bpf_probe_read_user_str, bpf_send_signal},
};

use crate::maps::{DENY, SCRATCH, SPECS};

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;

/// Sends the tree-wide signal a frozen or killed entry calls for. Returns
/// true when the caller must not go on recording the call as usual.
#[inline(always)]
pub fn tree_signal(entry: u64) -> bool {
    if entry & target::KILLED != 0 {
        // SAFETY: helper with a plain integer argument.
        unsafe { bpf_send_signal(SIGKILL) };
        return false;
    }
    if entry & target::HELD != 0 {
        // Held at exec for identification, yet making a syscall: someone
        // resumed it before user space let it go.
        // SAFETY: as above.
        unsafe { bpf_send_signal(SIGKILL) };
        return false;
    }
    if entry & target::FROZEN != 0 {
        // SAFETY: as above.
        unsafe { bpf_send_signal(SIGSTOP) };
    }
    false
}

/// Compares the first `n` bytes at `a` and `b` (both 8-byte aligned, at
/// least `8 * WORDS` readable bytes) a word at a time: `WORDS` steps at
/// most, which keeps the verifier's work small.
#[inline(always)]
pub fn same<const WORDS: u32>(a: *const u64, b: *const u64, n: u32) -> bool {
    let mut w = 0u32;
    while w < WORDS {
        if w * 8 >= n {
            break;
        }
        let left = n - w * 8;
        let mask = if left >= 8 {
            u64::MAX
        } else {
            (1u64 << (left * 8)) - 1
        };
        // SAFETY: both point to at least 8 * WORDS readable, 8-aligned bytes.
        let (x, y) = unsafe { (*a.add(w as usize), *b.add(w as usize)) };
        if (x ^ y) & mask != 0 {
            return false;
        }
        w += 1;
    }
    true
}

/// The deny check at `sys_enter`, for calls whose spec has a `DENY_*`
/// flag: a subprogram of the syscall entry program (its loops get their own
/// verifier budget), so the calls of other syscalls pay one flag test, not
/// a second program on the tracepoint. The launched command's calls before
/// its execve are ai-forensics' own and never get here.
#[inline(never)]
pub fn deny_enter(regs: *const u64, nr: u32, pid_tgid: u64, entry: u64) {
    let Some(sp) = SPECS.get(nr) else { return };
    let class = if sp.flags & spec::DENY_EXEC != 0 {
        deny::CLASS_EXEC
    } else {
        deny::CLASS_OPEN
    };
    let idx = sp.str0_arg as usize;
    if idx >= 6 {
        return;
    }
    // One word, not the six arguments: this frame adds to the entry
    // program's, and older verifiers cap the two at 512 bytes.
    let ptr = super::syscalls::read_arg(regs, idx);
    check(class, ptr, pid_tgid, (entry & target::TREE_MASK) as u32, nr);
}

/// Checks the deny rules for the path argument of an exec or open.
#[inline(always)]
fn check(class: u32, ptr: u64, pid_tgid: u64, tree: u32, nr: u32) {
    if ptr == 0 {
        return;
    }
    let Some(s) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch; preemption is disabled while programs run.
    let buf = unsafe { (*s).payload.as_mut_ptr() };
    // SAFETY: reads at most PATH_MAX bytes of an untrusted user string into
    // the scratch payload, which is larger.
    let r = unsafe {
        bpf_probe_read_user_str(
            buf.cast::<c_void>(),
            deny::PATH_MAX as u32,
            ptr as *const c_void,
        )
    };
    if r <= 0 {
        return;
    }
    let len = (r as u32 - 1).min(deny::PATH_MAX as u32 - 1);
    // Where the last component starts. Kept in the scratch map rather than
    // in a register: the verifier does not follow values through map memory,
    // so the scan below does not multiply its states by every possible
    // position of the last '/'.
    // SAFETY: per-CPU scratch, see above.
    let base_slot = unsafe { &raw mut (*s).ev.blob_len };
    // SAFETY: as above.
    unsafe { base_slot.write_volatile(0) };
    let mut i = 0u32;
    while i < deny::PATH_MAX as u32 {
        if i >= len {
            break;
        }
        // SAFETY: i < PATH_MAX, inside the payload.
        if unsafe { *buf.add((i & 0xff) as usize) } == b'/' {
            // SAFETY: as above.
            unsafe { base_slot.write_volatile(i + 1) };
        }
        i += 1;
    }
    // SAFETY: as above.
    let base = unsafe { base_slot.read_volatile() }.min(len);
    // The last component, copied to an aligned spot for word compares.
    // SAFETY: BASE_AT + 64 is inside the payload; the source is the path
    // read above (base < PATH_MAX).
    let basebuf = unsafe { buf.add(BASE_AT) };
    // SAFETY: as above.
    unsafe {
        bpf_probe_read_kernel(
            basebuf.cast::<c_void>(),
            deny::PATTERN_MAX as u32,
            buf.add((base & 0xff) as usize).cast::<c_void>(),
        )
    };
    let base_len = len - base;
    let mut ri = 0u32;
    while ri < deny::MAX_RULES {
        let Some(rule) = DENY.get(ri) else { break };
        if rule.class == 0 {
            break;
        }
        let pat = rule.pattern.as_ptr().cast::<u64>();
        let hit = rule.class == class
            && match rule.kind {
                deny::EXACT => rule.len == len && same::<8>(buf.cast::<u64>(), pat, rule.len),
                deny::PREFIX => rule.len <= len && same::<8>(buf.cast::<u64>(), pat, rule.len),
                deny::BASENAME => {
                    base_len == rule.len && same::<8>(basebuf.cast::<u64>(), pat, rule.len)
                }
                _ => false,
            };
        if hit {
            // SAFETY: helper with a plain integer argument.
            unsafe { bpf_send_signal(rule.signal) };
            let d = ObjDeny {
                rule: rule.rule,
                signal: rule.signal,
                flags: 0,
                _pad: 0,
            };
            // The path read above, NUL-terminated in the scratch payload.
            super::identity::report(
                pid_tgid,
                u64::from(tree),
                nr,
                &d,
                deny::HOW_ENTRY_PATH,
                ObjKey::default(),
                super::identity::Source::Kernel(buf),
            );
            return;
        }
        ri += 1;
    }
}

/// Where the basename copy goes in the scratch payload (8-byte aligned).
const BASE_AT: usize = 512;
