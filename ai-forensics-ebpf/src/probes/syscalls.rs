//! `raw_syscalls:sys_enter` / `sys_exit` raw tracepoints (kernel 4.17+).
//!
//! ```text
//! TP_PROTO(struct pt_regs *regs, long id)   // sys_enter
//! TP_PROTO(struct pt_regs *regs, long ret)  // sys_exit
//! ```
//!
//! Count mode without timing (`EXIT_COUNT`) attaches only `sys_exit`: each
//! call is counted as it returns (`count_at_exit`), `exit`/`exit_group`
//! as the task exits (`count_exiting`).
//!
//! Otherwise entry counts the call and, when it must be timed or streamed,
//! remembers it in `INFLIGHT` keyed by thread id. Exit counts errors and
//! latency and streams the record with the arguments saved at entry and the
//! strings and structures read from user memory at exit.
use ai_forensics_common::{
    Config, Inflight, MAX_SYSCALLS, NO_ARG, ProcKey, ProcStat, Slot, SyscallSpec, config as cfg,
    drop, hist_bucket, kind, spec, target,
};
use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs},
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};

use crate::{
    config,
    emit::{self, Call},
    filter,
    maps::{INFLIGHT, PROC_STATS, SLOT, SPECS, STATS, TARGETS, count_drop},
};

/// Index (in u64 words) and count of the syscall argument registers in
/// `struct pt_regs`, and of the syscall number at exit.
#[cfg(bpf_target_arch = "x86_64")]
mod regs {
    // r15 r14 r13 r12 bp bx r11 [r10 r9 r8 ax cx dx si di] orig_ax
    pub const FIRST: usize = 7;
    pub const WORDS: usize = 8;
    pub const NR_WORD: usize = 15;
    /// The saved number after `rt_sigreturn` (orig_ax = -1).
    pub const NO_NR: u64 = u64::MAX;
    #[inline(always)]
    pub fn args(w: &[u64; WORDS]) -> [u64; 6] {
        // di, si, dx, r10, r8, r9
        [w[7], w[6], w[5], w[0], w[2], w[1]]
    }
    /// The word of argument `i` (< 6).
    pub const ARG_WORD: [usize; 6] = [7, 6, 5, 0, 2, 1];
}

#[cfg(bpf_target_arch = "aarch64")]
mod regs {
    // regs[0..31], sp, pc, pstate, orig_x0, syscallno (s32)
    pub const FIRST: usize = 0;
    pub const WORDS: usize = 8;
    pub const NR_WORD: usize = 36;
    /// The saved number after `rt_sigreturn` (syscallno = ~0, masked).
    pub const NO_NR: u64 = 0xffff_ffff;
    #[inline(always)]
    pub fn args(w: &[u64; WORDS]) -> [u64; 6] {
        [w[0], w[1], w[2], w[3], w[4], w[5]]
    }
    /// The word of argument `i` (< 6).
    pub const ARG_WORD: [usize; 6] = [0, 1, 2, 3, 4, 5];
}

/// The six syscall arguments from the saved user registers.
#[inline(always)]
pub fn read_args(regs: *const u64) -> [u64; 6] {
    // Not zeroed first: the helper writes every byte (zeros on failure), and
    // zeroing costs a byte loop in BPF.
    let mut w = core::mem::MaybeUninit::<[u64; regs::WORDS]>::uninit();
    // SAFETY: regs is the kernel's pt_regs of the current task; the helper
    // copies WORDS words of it into the local array, or zeroes it.
    let w = unsafe {
        bpf_probe_read_kernel(
            w.as_mut_ptr().cast::<c_void>(),
            (regs::WORDS * 8) as u32,
            regs.add(regs::FIRST).cast::<c_void>(),
        );
        w.assume_init()
    };
    regs::args(&w)
}

/// Syscall argument `i` (< 6) alone: one word read, for callers whose
/// stack is tight.
#[inline(always)]
pub fn read_arg(regs: *const u64, i: usize) -> u64 {
    let Some(word) = regs::ARG_WORD.get(i) else {
        return 0;
    };
    let mut v: u64 = 0;
    // SAFETY: reads one word of the current task's pt_regs into a local.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast::<c_void>(),
            8,
            regs.add(regs::FIRST + *word).cast::<c_void>(),
        );
    }
    v
}

/// The syscall number at exit, for calls whose entry was not recorded.
#[inline(always)]
fn read_nr(regs: *const u64) -> u64 {
    let mut nr: u64 = u64::MAX;
    // SAFETY: reads one word of the current task's pt_regs into a local.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut nr).cast::<c_void>(),
            8,
            regs.add(regs::NR_WORD).cast::<c_void>(),
        );
    }
    #[cfg(bpf_target_arch = "aarch64")]
    {
        nr &= 0xffff_ffff;
    }
    nr
}

#[inline(always)]
fn spec_of(nr: u32) -> SyscallSpec {
    SPECS.get(nr).copied().unwrap_or(SyscallSpec::NONE)
}

#[inline(always)]
fn has_payload(sp: &SyscallSpec) -> bool {
    sp.str0_arg != NO_ARG || sp.str1_arg != NO_ARG || sp.blob_arg != NO_ARG || sp.argv_arg != NO_ARG
}

#[inline(always)]
fn stream<const EXIT: bool>(call: &Call, args: &[u64; 6], sp: &SyscallSpec) {
    if has_payload(sp) {
        emit::syscall_payload::<EXIT>(call, args, sp);
    } else {
        emit::syscall_plain(call, args);
    }
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn raw_tracepoint_sys_enter(ctx: RawTracePointContext) -> i32 {
    sys_enter(&ctx);
    0
}

#[inline(always)]
fn sys_enter(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let Some(entry) = filter::target_entry(tgid) else {
        return;
    };
    let tree = (entry & target::TREE_MASK) as u32;
    let id: i64 = ctx.arg(1);
    if id < 0 || id >= i64::from(MAX_SYSCALLS) {
        return;
    }
    let nr = id as u32;
    if entry & target::AWAIT_EXEC != 0 {
        // A launched command before its exec: these calls are ai-forensics'
        // own set-up. The workload starts with execve.
        let c = config::get();
        if nr != c.execve_nr && nr != c.execveat_nr {
            return;
        }
        let _ = TARGETS.set(tgid, (entry & !target::AWAIT_EXEC) | target::LAUNCH_EXEC, 0);
    }
    if entry & (target::FROZEN | target::KILLED | target::HELD) != 0 {
        super::enforce::tree_signal(entry);
    }
    if let Some(st) = STATS.get_ptr_mut(nr) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        unsafe { (*st).count += 1 };
    }
    let c = config::get();
    if c.flags & cfg::PER_PROC != 0 {
        proc_count(pid_tgid, nr, target::generation(entry), false);
    }
    let sp = if c.flags & cfg::EVENTS != 0 {
        spec_of(nr)
    } else {
        SyscallSpec::NONE
    };
    if c.flags & cfg::DENY != 0 && sp.flags & (spec::DENY_EXEC | spec::DENY_OPEN) != 0 {
        super::enforce::deny_enter(ctx.arg(0), nr, pid_tgid, entry);
    }
    let streamed = sp.flags & (spec::EVENT | spec::ENTER_EVENT) != 0;
    if !streamed && c.flags & cfg::TIMING == 0 {
        return;
    }
    let ts_ns = emit::now();
    let regs: *const u64 = ctx.arg(0);
    let args = if streamed { read_args(regs) } else { [0; 6] };
    if sp.flags & spec::ENTER_EVENT != 0 {
        let call = Call {
            kind: kind::SYSCALL_ENTER,
            pid_tgid,
            nr,
            tree,
            ts_ns,
            ret: 0,
            duration_ns: 0,
        };
        stream::<false>(&call, &args, &sp);
    }
    if sp.flags & spec::NO_RETURN != 0 {
        return;
    }
    let inf = Inflight {
        ts_ns,
        nr,
        tree,
        args,
    };
    remember(pid_tgid as u32, inf);
}

/// Keeps what entry saw in this CPU's slot. A slot still live for another
/// thread (its exit was never seen here, and no switch moved it) goes to
/// `INFLIGHT` first.
#[inline(always)]
fn remember(tid: u32, inf: Inflight) {
    let Some(slot) = SLOT.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot; programs on the syscall tracepoints and
    // sched_switch do not preempt each other on one CPU.
    let slot = unsafe { &mut *slot };
    if slot.live != 0 && slot.tid != tid {
        spill(slot);
    }
    slot.tid = tid;
    slot.inf = inf;
    slot.live = 1;
}

/// Moves a live slot into `INFLIGHT`.
#[inline(always)]
pub fn spill(slot: &mut Slot) {
    if INFLIGHT.insert(slot.tid, slot.inf, 0).is_err() {
        count_drop(drop::INFLIGHT_FULL);
    }
    slot.live = 0;
}

/// What entry saved for thread `tid`: from this CPU's slot when the call did
/// not block, else from `INFLIGHT`.
#[inline(always)]
fn recall(tid: u32) -> Option<Inflight> {
    if let Some(slot) = SLOT.get_ptr_mut(0) {
        // SAFETY: as in `remember`.
        let slot = unsafe { &mut *slot };
        if slot.live != 0 && slot.tid == tid {
            slot.live = 0;
            return Some(slot.inf);
        }
    }
    // SAFETY: the value is copied out before the entry is removed.
    let inf = unsafe { INFLIGHT.get(tid) }.copied();
    if inf.is_some() {
        let _ = INFLIGHT.remove(tid);
    }
    inf
}

/// A context switch: the thread leaving this CPU takes its call with it.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn raw_tracepoint_sched_switch(_ctx: RawTracePointContext) -> i32 {
    if let Some(slot) = SLOT.get_ptr_mut(0) {
        // SAFETY: as in `remember`.
        let slot = unsafe { &mut *slot };
        if slot.live != 0 {
            spill(slot);
        }
    }
    0
}

/// One call of `nr` by the thread, and whether it failed, in its counts.
#[inline(always)]
fn proc_count(pid_tgid: u64, nr: u32, generation: u32, err: bool) {
    let key = ProcKey {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        nr,
        generation,
    };
    if let Some(p) = PROC_STATS.get_ptr_mut(key) {
        // SAFETY: per-CPU value, preemption is disabled while programs run.
        let p = unsafe { &mut *p };
        p.count += 1;
        if err {
            p.errors += 1;
        }
    } else {
        let v = ProcStat {
            count: 1,
            errors: u64::from(err),
            total_ns: 0,
        };
        if PROC_STATS.insert(key, v, 0).is_err() {
            count_drop(drop::PROC_STATS_FULL);
        }
    }
}

/// Counts a failed call whose entry was not remembered.
#[inline(always)]
fn count_error(nr: u64, pid_tgid: u64, flags: u32, generation: u32) {
    if nr >= u64::from(MAX_SYSCALLS) {
        return;
    }
    let nr = nr as u32;
    if let Some(st) = STATS.get_ptr_mut(nr) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        unsafe { (*st).errors += 1 };
    }
    if flags & cfg::PER_PROC != 0 {
        let key = ProcKey {
            tgid: (pid_tgid >> 32) as u32,
            tid: pid_tgid as u32,
            nr,
            generation,
        };
        if let Some(p) = PROC_STATS.get_ptr_mut(key) {
            // SAFETY: per-CPU value, preemption is disabled while programs run.
            unsafe { (*p).errors += 1 };
        }
    }
}

#[inline(always)]
fn is_error(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_tracepoint_sys_exit(ctx: RawTracePointContext) -> i32 {
    sys_exit(&ctx);
    0
}

#[inline(always)]
fn sys_exit(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let Some(entry) = filter::target_entry(tgid) else {
        if config::has(cfg::WATCH_OPEN) {
            watch_open(ctx, pid_tgid);
        }
        return;
    };
    let c = config::get();
    if c.flags & cfg::EXIT_COUNT != 0 {
        count_at_exit(ctx, pid_tgid, entry, c);
        return;
    }
    if entry & target::AWAIT_EXEC != 0 {
        return;
    }
    let tree = (entry & target::TREE_MASK) as u32;
    let ret: i64 = ctx.arg(1);
    let tid = pid_tgid as u32;
    let identity = c.flags & (cfg::DENY_FILES | cfg::AI_MARK) != 0;
    if c.flags & (cfg::TIMING | cfg::EVENTS) == 0 {
        // Cheapest mode: nothing was remembered at entry; only errors are
        // left to count, and only they need the syscall number (and, with
        // identity rules, successful calls that may have opened a file).
        if is_error(ret) {
            count_error(
                read_nr(ctx.arg(0)),
                pid_tgid,
                c.flags,
                target::generation(entry),
            );
        } else if identity && ret >= 0 {
            let regs: *const u64 = ctx.arg(0);
            let nr = read_nr(regs);
            if nr < u64::from(MAX_SYSCALLS) && spec_of(nr as u32).flags & spec::FD_OPEN != 0 {
                super::identity::opened(regs, nr as u32, ret, pid_tgid, entry);
            }
        }
        return;
    }
    if c.flags & cfg::TIMING == 0 {
        // Events without timing: entry remembered only the streamed calls.
        // The others are counted here without a look for what entry saved
        // (a hash lookup per call).
        let regs: *const u64 = ctx.arg(0);
        let nr = read_nr(regs);
        if nr >= u64::from(MAX_SYSCALLS) {
            return;
        }
        let sp = spec_of(nr as u32);
        if sp.flags & (spec::EVENT | spec::ENTER_EVENT) == 0 {
            if is_error(ret) {
                count_error(nr, pid_tgid, c.flags, target::generation(entry));
            } else if identity && ret >= 0 && sp.flags & spec::FD_OPEN != 0 {
                super::identity::opened(regs, nr as u32, ret, pid_tgid, entry);
            }
            return;
        }
    }
    let (nr, ts_ns, args, timed) = match recall(tid) {
        Some(i) => (u64::from(i.nr), i.ts_ns, i.args, true),
        None => (read_nr(ctx.arg(0)), 0, [0; 6], false),
    };
    if nr >= u64::from(MAX_SYSCALLS) {
        return;
    }
    let nr = nr as u32;
    let err = is_error(ret);
    if identity && ret >= 0 && spec_of(nr).flags & spec::FD_OPEN != 0 {
        super::identity::opened(ctx.arg(0), nr, ret, pid_tgid, entry);
    }
    let duration_ns = if timed {
        emit::now().saturating_sub(ts_ns)
    } else {
        ai_forensics_common::UNTIMED
    };
    if let Some(st) = STATS.get_ptr_mut(nr) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        let st = unsafe { &mut *st };
        if err {
            st.errors += 1;
        }
        if timed {
            st.timed += 1;
            st.total_ns += duration_ns;
            if st.min_ns == 0 || duration_ns < st.min_ns {
                st.min_ns = duration_ns.max(1);
            }
            if duration_ns > st.max_ns {
                st.max_ns = duration_ns;
            }
            let b = hist_bucket(duration_ns);
            if let Some(h) = st.hist.get_mut(b) {
                *h += 1;
            }
        }
    }
    if c.flags & cfg::PER_PROC != 0 {
        let key = ai_forensics_common::ProcKey {
            tgid,
            tid,
            nr,
            generation: target::generation(entry),
        };
        if let Some(p) = PROC_STATS.get_ptr_mut(key) {
            // SAFETY: per-CPU value, preemption is disabled while programs run.
            let p = unsafe { &mut *p };
            if err {
                p.errors += 1;
            }
            if timed {
                p.total_ns += duration_ns;
            }
        }
    }
    if c.flags & cfg::EVENTS == 0 || !timed {
        return;
    }
    let sp = spec_of(nr);
    if sp.flags & spec::EVENT == 0 {
        return;
    }
    let call = Call {
        kind: kind::SYSCALL,
        pid_tgid,
        nr,
        tree,
        ts_ns,
        ret,
        duration_ns,
    };
    if sp.flags & spec::ENTER_EVENT != 0 {
        // execve: the old image (and the strings in it) is gone at exit; the
        // entry record carried them.
        emit::syscall_plain(&call, &args);
    } else {
        stream::<true>(&call, &args, &sp);
    }
}

/// The current task's saved syscall number, loaded directly from its
/// registers through a BTF pointer (cheaper than a probe read; the loader
/// verifies the kernel allows it before it sets `EXIT_COUNT`).
#[inline(always)]
fn current_nr() -> u64 {
    // SAFETY: helpers on the current task; the verifier checks the BTF
    // pointer types. The saved registers stay valid while the task runs.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const u64;
    if regs.is_null() {
        return u64::MAX - 1;
    }
    // SAFETY: a pt_regs of the current task; NR_WORD is inside it. The
    // verifier turns the load into a fault-safe one.
    let nr = unsafe { core::ptr::read_volatile(regs.add(regs::NR_WORD)) };
    #[cfg(bpf_target_arch = "aarch64")]
    let nr = nr & 0xffff_ffff;
    nr
}

/// Count mode with one syscall program: the call is counted as it returns,
/// its number read from the saved registers. What entry used to do for the
/// launched command (its set-up is not counted until it calls execve) and
/// for frozen or killed trees happens here instead.
#[inline(always)]
fn count_at_exit(ctx: &RawTracePointContext, pid_tgid: u64, entry: u64, c: &Config) {
    let ret: i64 = ctx.arg(1);
    let mut nr = current_nr();
    if nr == regs::NO_NR {
        // rt_sigreturn restores the interrupted registers and clears the
        // saved number: the only call that returns without one.
        nr = u64::from(c.nr.rt_sigreturn);
    } else if ret == 0 && c.nr.is_fork(nr) {
        // A new task's first return from fork or clone (to the parent the
        // call returns the child's id): one call, counted in the parent.
        return;
    }
    if nr >= u64::from(MAX_SYSCALLS) {
        return;
    }
    let nr = nr as u32;
    let exec = nr == c.execve_nr || nr == c.execveat_nr;
    if entry & target::AWAIT_EXEC != 0 {
        // A launched command before its exec: ai-forensics' own set-up.
        // The workload starts with execve (counted, whatever it returns).
        if !exec {
            return;
        }
        let tgid = (pid_tgid >> 32) as u32;
        let _ = TARGETS.set(tgid, (entry & !target::AWAIT_EXEC) | target::LAUNCH_EXEC, 0);
    }
    // An image held at its exec is let go by user space before it may make
    // a call; its own execve returning is not one.
    let held = if exec { 0 } else { target::HELD };
    if entry & (target::FROZEN | target::KILLED | held) != 0 {
        super::enforce::tree_signal(entry & !(target::HELD & !held));
    }
    count_call(
        nr,
        pid_tgid,
        c.flags,
        target::generation(entry),
        is_error(ret),
    );
    if c.flags & (cfg::DENY_FILES | cfg::AI_MARK) != 0
        && ret >= 0
        && spec_of(nr).flags & spec::FD_OPEN != 0
    {
        super::identity::opened(ctx.arg(0), nr, ret, pid_tgid, entry);
    }
}

/// Count mode at exit: `exit` and `exit_group` never return, so a task that
/// leaves through one of them is counted as it exits (the number is still
/// in its saved registers; a task killed by a signal has another there).
#[inline(always)]
pub fn count_exiting(pid_tgid: u64, entry: u64) {
    let c = config::get();
    if entry & target::AWAIT_EXEC != 0 {
        return;
    }
    let nr = current_nr();
    if nr != u64::from(c.nr.exit) && nr != u64::from(c.nr.exit_group) {
        return;
    }
    count_call(
        nr as u32,
        pid_tgid,
        c.flags,
        target::generation(entry),
        false,
    );
}

/// One call of `nr`, and whether it failed, in the totals and (when kept)
/// the thread's counts.
#[inline(always)]
fn count_call(nr: u32, pid_tgid: u64, flags: u32, generation: u32, err: bool) {
    if let Some(st) = STATS.get_ptr_mut(nr) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        let st = unsafe { &mut *st };
        st.count += 1;
        if err {
            st.errors += 1;
        }
    }
    if flags & cfg::PER_PROC != 0 {
        proc_count(pid_tgid, nr, generation, err);
    }
}

/// Discover mode: a file opened by a process that is not a target. Only
/// syscalls flagged `WATCH` in `SPECS` (the open family) are reported, and
/// only when they succeeded.
#[inline(always)]
fn watch_open(ctx: &RawTracePointContext, pid_tgid: u64) {
    if (pid_tgid >> 32) as u32 == config::get().self_tgid {
        return;
    }
    let ret: i64 = ctx.arg(1);
    if ret < 0 {
        return;
    }
    let regs: *const u64 = ctx.arg(0);
    let nr = read_nr(regs);
    if nr >= u64::from(MAX_SYSCALLS) {
        return;
    }
    let nr = nr as u32;
    let sp = spec_of(nr);
    if sp.flags & spec::WATCH == 0 {
        return;
    }
    let args = read_args(regs);
    let call = Call {
        kind: kind::WATCH_OPEN,
        pid_tgid,
        nr,
        tree: 0,
        ts_ns: emit::now(),
        ret,
        duration_ns: 0,
    };
    let only_path = SyscallSpec {
        flags: sp.flags,
        str0_arg: sp.str0_arg,
        ..SyscallSpec::NONE
    };
    emit::syscall_payload::<false>(&call, &args, &only_path);
}
