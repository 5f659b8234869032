//! Process lifecycle: following target trees in the kernel.
//!
//! * `sched_process_fork` (raw tracepoint, `TP_PROTO(struct task_struct
//!   *parent, struct task_struct *child)`): a new process of a target joins
//!   its tree before it runs a single instruction. The child's pid/tgid are
//!   read at offsets user space takes from the kernel's BTF.
//! * `sched:sched_process_exec` (classic tracepoint): the new program's path.
//! * `sched:sched_process_exit` (classic tracepoint): a target task is gone;
//!   when the whole thread group is dead the TGID leaves `TARGETS`, so a
//!   recycled PID is never traced by mistake. Orphans stay targets: membership
//!   is keyed by TGID, not by parentage.
//!
//! Classic tracepoint programs return 1: a 0 would make the kernel drop the
//! record for every perf listener on the same tracepoint (perf, other tools).
use ai_forensics_common::{
    ExecEvent, ExitEvent, ForkEvent, STR_MAX, config as cfg, drop, kind, target,
};
use aya_ebpf::{
    EbpfContext as _,
    cty::c_void,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str},
    },
    macros::raw_tracepoint,
    programs::{RawTracePointContext, TracePointContext},
};

use crate::{
    config,
    emit::{self, flush_loss, header, note_loss},
    filter,
    maps::{EVENTS, FORK_SEQ, INFLIGHT, SLOT, TARGETS, count_drop},
};

#[inline(always)]
fn read_i32(base: *const u8, off: u32) -> i32 {
    let mut v: i32 = 0;
    // SAFETY: base is a kernel pointer handed to the tracepoint; the helper
    // reads 4 bytes at the given offset into a local.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast::<c_void>(),
            4,
            base.add(off as usize).cast::<c_void>(),
        );
    }
    v
}

/// A generation for a process forked now: this CPU's next sequence number
/// and the CPU's number ([`target::fork_generation`]).
#[inline(always)]
fn next_generation() -> u32 {
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(seq) = FORK_SEQ.get_ptr_mut(0) else {
        return target::fork_generation(1, cpu);
    };
    // SAFETY: this CPU's slot; preemption is disabled while programs run.
    let seq = unsafe { &mut *seq };
    *seq = target::next_seq(*seq);
    target::fork_generation(*seq, cpu)
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn raw_tracepoint_sched_process_fork(ctx: RawTracePointContext) -> i32 {
    sched_process_fork(&ctx);
    0
}

#[inline(always)]
fn sched_process_fork(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let Some(tree) = filter::target_of(tgid) else {
        return;
    };
    let c = config::get();
    let child: *const u8 = ctx.arg(1);
    let child_tid = read_i32(child, c.task_pid_off) as u32;
    let child_tgid = read_i32(child, c.task_tgid_off) as u32;
    let ts_ns = emit::now();
    let mut child_gen = 0;
    if c.flags & cfg::ALL != 0 {
        // Everything is traced: the table only holds generations, for
        // per-process counts.
        if c.flags & cfg::PER_PROC != 0 && child_tgid != tgid && child_tgid < c.pid_max {
            child_gen = next_generation();
            let v = filter::target_value(tgid) & target::AI;
            let _ = TARGETS.set(
                child_tgid,
                v | (u64::from(child_gen) << target::GEN_SHIFT),
                0,
            );
        }
    } else if child_tgid != tgid {
        if child_tgid < c.pid_max {
            // The parent's tree and flags, the child's own generation.
            child_gen = next_generation();
            let v = filter::target_value(tgid) & target::INHERITED;
            let _ = TARGETS.set(
                child_tgid,
                v | (u64::from(child_gen) << target::GEN_SHIFT),
                0,
            );
        } else {
            count_drop(drop::TARGETS_RANGE);
        }
    }
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    match EVENTS.reserve::<ForkEvent>(0) {
        Some(mut e) => {
            e.write(ForkEvent {
                hdr: header(kind::PROC_FORK, ts_ns, pid_tgid),
                child_tid,
                child_tgid,
                tree,
                child_gen,
                comm: bpf_get_current_comm().unwrap_or([0; 16]),
            });
            e.submit(0);
        }
        None => note_loss(tree, ts_ns, drop::RINGBUF_FULL),
    }
}

// name: sched_process_exec
// field:__data_loc char[] filename;  offset:8;  size:4;
// field:pid_t pid;                   offset:12; size:4;
// field:pid_t old_pid;               offset:16; size:4;
//
// Written without aya's `#[tracepoint]` macro, whose wrapper returns 0: a
// classic tracepoint program that returns 0 suppresses the event for every
// perf listener on it (perf stat/record/trace, other tools' perf events).
#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/sched/sched_process_exec")]
pub extern "C" fn tracepoint_sched_process_exec(ctx: *mut c_void) -> u32 {
    sched_process_exec(&TracePointContext::new(ctx));
    1
}

#[inline(always)]
fn sched_process_exec(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let (kind, tree) = match filter::target_of(tgid) {
        Some(tree) => (kind::PROC_EXEC, tree),
        None if config::has(cfg::WATCH_EXEC) && tgid != config::get().self_tgid => {
            (kind::WATCH_EXEC, 0)
        }
        None => return,
    };
    let ts_ns = emit::now();
    let cause = if tree == 0 {
        drop::WATCH_RINGBUF_FULL
    } else {
        drop::RINGBUF_FULL
    };
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, cause);
        return;
    }
    let Some(mut e) = EVENTS.reserve::<ExecEvent>(0) else {
        note_loss(tree, ts_ns, cause);
        return;
    };
    // SAFETY: the record layout is fixed by the tracepoint format above.
    let loc: u32 = unsafe { ctx.read_at(8) }.unwrap_or(0);
    // SAFETY: as above.
    let old_pid: i32 = unsafe { ctx.read_at(16) }.unwrap_or(0);
    let p = e.as_mut_ptr();
    // SAFETY: p points to a reserved ExecEvent; every field is written
    // before submit, the filename through the helper.
    unsafe {
        (*p).hdr = header(kind, ts_ns, pid_tgid);
        (*p).old_tid = old_pid as u32;
        (*p).tree = tree;
        (*p).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let src = ctx.as_ptr().cast::<u8>().add((loc & 0xffff) as usize);
        let r = bpf_probe_read_kernel_str(
            (&raw mut (*p).filename).cast::<c_void>(),
            STR_MAX as u32,
            src.cast::<c_void>(),
        );
        let n = if r > 0 { r as u32 - 1 } else { 0 };
        (*p).filename_len = n;
        (*p).truncated = u32::from(r as u32 >= STR_MAX as u32);
    }
    e.submit(0);
}

// name: sched_process_exit
// field:char comm[16];      offset:8;  size:16;
// field:pid_t pid;          offset:24; size:4;
// field:int prio;           offset:28; size:4;
// field:bool group_dead;    offset:32; size:1;  (kernel 6.16+; user space
//                                               passes the offset, 0 if absent)
// (No `#[tracepoint]` macro: see sched_process_exec.)
#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/sched/sched_process_exit")]
pub extern "C" fn tracepoint_sched_process_exit(ctx: *mut c_void) -> u32 {
    sched_process_exit(&TracePointContext::new(ctx));
    1
}

#[inline(always)]
fn sched_process_exit(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let tid = pid_tgid as u32;
    let Some(entry) = filter::target_entry(tgid) else {
        return;
    };
    let tree = (entry & target::TREE_MASK) as u32;
    let c = config::get();
    if c.flags & cfg::EXIT_COUNT != 0 {
        super::syscalls::count_exiting(pid_tgid, entry);
    }
    let _ = INFLIGHT.remove(tid);
    if let Some(slot) = SLOT.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; see `syscalls::remember`.
        let slot = unsafe { &mut *slot };
        if slot.tid == tid {
            slot.live = 0;
        }
    }
    let group_dead = if c.exit_group_dead_off != 0 {
        // SAFETY: the offset was read from this kernel's tracepoint format.
        unsafe { ctx.read_at::<u8>(c.exit_group_dead_off as usize) }.unwrap_or(0) != 0
    } else {
        // Older kernels: the leader's exit stands for the group's.
        tid == tgid
    };
    if group_dead && (c.flags & cfg::ALL == 0 || c.flags & cfg::PER_PROC != 0) {
        let _ = TARGETS.set(tgid, 0, 0);
    }
    let ts_ns = emit::now();
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    match EVENTS.reserve::<ExitEvent>(0) {
        Some(mut e) => {
            e.write(ExitEvent {
                hdr: header(kind::PROC_EXIT, ts_ns, pid_tgid),
                tree,
                group_dead: u32::from(group_dead),
                comm: bpf_get_current_comm().unwrap_or([0; 16]),
            });
            e.submit(0);
        }
        None => note_loss(tree, ts_ns, drop::RINGBUF_FULL),
    }
}
