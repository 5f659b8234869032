//! io_uring: what a target submits to a ring never passes a syscall
//! tracepoint, so its operations are seen here, on the io_uring
//! tracepoints (classic tracepoints; field offsets from tracefs at load).
//!
//! * `io_uring:io_uring_submit_req` (in the submitter's context, or its
//!   ring's polling thread, a thread of the same process): counts the
//!   opcode, and remembers the request by address with what it names, read
//!   from the prepared request (BTF offsets): an open's path as the kernel
//!   copied it, a connect's socket address from the submitter's memory.
//! * `io_uring:io_uring_complete`: the result. An open that installed a
//!   descriptor gets the same identity check as an open syscall's exit
//!   (signal before the process can use it); events mode records the
//!   operation.
use ai_forensics_common::{UringEvent, config as cfg, deny, drop, kind, uring};
use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user},
    },
    programs::TracePointContext,
};

use crate::{
    config,
    emit::{self, flush_loss, header, note_loss},
    filter,
    maps::{EVENTS, URING_PENDING, URING_SCRATCH, URING_STATS},
};

#[inline(always)]
fn kread<T: Copy + Default>(base: *const u8, off: u32) -> T {
    let mut v = T::default();
    // SAFETY: copies size_of::<T>() bytes of kernel memory into the local
    // (zero on a fault); base is a kernel pointer.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast::<c_void>(),
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(off as usize).cast::<c_void>(),
        )
    };
    v
}

// Written without aya's `#[tracepoint]` macro: a classic tracepoint program
// must return 1 so that other perf listeners still get the event.
#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/io_uring/io_uring_submit_req")]
pub extern "C" fn tracepoint_io_uring_submit_req(ctx: *mut c_void) -> u32 {
    submit(&TracePointContext::new(ctx));
    1
}

#[unsafe(no_mangle)]
#[unsafe(link_section = "tracepoint/io_uring/io_uring_complete")]
pub extern "C" fn tracepoint_io_uring_complete(ctx: *mut c_void) -> u32 {
    complete(&TracePointContext::new(ctx));
    1
}

#[inline(always)]
fn submit(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(entry) = filter::target_entry((pid_tgid >> 32) as u32) else {
        return;
    };
    let o = config::get().uring;
    // SAFETY: offsets from this kernel's tracepoint format.
    let req: u64 = unsafe { ctx.read_at(o.submit_req as usize) }.unwrap_or(0);
    // SAFETY: as above.
    let opcode: u8 = unsafe { ctx.read_at(o.submit_opcode as usize) }.unwrap_or(0);
    // SAFETY: as above.
    let sq_thread: u8 = unsafe { ctx.read_at(o.submit_sq_thread as usize) }.unwrap_or(0);
    let opcode = u32::from(opcode);
    if let Some(st) = URING_STATS.get_ptr_mut(opcode) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        unsafe { (*st).count += 1 };
    }
    if req == 0 {
        return;
    }
    let Some(p) = URING_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: the per-CPU scratch slot is this program's alone while it runs.
    let p = unsafe { &mut *p };
    p.ts_ns = emit::now();
    p.pid_tgid = pid_tgid;
    p.entry = entry;
    p.opcode = opcode;
    p.flags = if sq_thread != 0 { uring::SQ_THREAD } else { 0 };
    p.str_len = 0;
    let cmd = (req as *const u8).wrapping_add(o.kiocb_cmd as usize);
    if (opcode == uring::OP_OPENAT || opcode == uring::OP_OPENAT2) && o.open_filename != 0 {
        let slot: u32 = kread(cmd, o.open_slot);
        if slot != 0 {
            p.flags |= uring::FIXED;
        }
        let filename: u64 = kread(cmd, o.open_filename);
        let name: u64 = kread(filename as *const u8, o.filename_name);
        if name != 0 {
            // SAFETY: copies at most STR_MAX bytes of a kernel string into
            // the scratch slot.
            let r = unsafe {
                bpf_probe_read_kernel_str(
                    p.str.as_mut_ptr().cast::<c_void>(),
                    uring::STR_MAX as u32,
                    name as *const c_void,
                )
            };
            if r > 0 {
                p.str_len = r as u32 - 1;
                p.flags |= uring::STR_PATH;
            }
        }
    } else if opcode == uring::OP_CONNECT && o.connect_addr != 0 {
        let addr: u64 = kread(cmd, o.connect_addr);
        let len: i32 = kread(cmd, o.connect_addr_len);
        let n = (len.clamp(0, 128) as u32) & 0xff;
        if addr != 0 && n > 0 {
            // SAFETY: copies n (at most 128) bytes of the submitter's
            // untrusted memory into the scratch slot; zero on a fault.
            let r = unsafe {
                bpf_probe_read_user(
                    p.str.as_mut_ptr().cast::<c_void>(),
                    n,
                    addr as *const c_void,
                )
            };
            if r == 0 {
                p.str_len = n;
                p.flags |= uring::STR_ADDR;
            }
        }
    }
    // From map memory: the value is too big to copy through the stack.
    let value: &ai_forensics_common::UringPending = p;
    let _ = URING_PENDING.insert(req, value, 0);
}

#[inline(always)]
fn complete(ctx: &TracePointContext) {
    let o = config::get().uring;
    // SAFETY: offsets from this kernel's tracepoint format.
    let req: u64 = unsafe { ctx.read_at(o.complete_req as usize) }.unwrap_or(0);
    let Some(pending) = URING_PENDING.get_ptr(req) else {
        return;
    };
    // SAFETY: offsets from this kernel's tracepoint format.
    let res: i32 = unsafe { ctx.read_at(o.complete_res as usize) }.unwrap_or(0);
    // SAFETY: as above.
    let user_data: u64 = unsafe { ctx.read_at(o.complete_user_data as usize) }.unwrap_or(0);
    // SAFETY: the entry stays valid until removed below; map memory.
    let pd = unsafe { &*pending };
    let (opcode, flags, pid_tgid, entry, ts) =
        (pd.opcode, pd.flags, pd.pid_tgid, pd.entry, pd.ts_ns);
    if res < 0
        && let Some(st) = URING_STATS.get_ptr_mut(opcode)
    {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        unsafe { (*st).errors += 1 };
    }
    let c = config::get();
    let now_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // An open that installed a descriptor in the submitter's table (the
    // completion runs in the submitter or one of its io threads, which
    // share it): the same check as an open syscall's exit.
    if (opcode == uring::OP_OPENAT || opcode == uring::OP_OPENAT2)
        && res >= 0
        && flags & uring::FIXED == 0
        && now_tgid == (pid_tgid >> 32) as u32
        && c.flags & (cfg::DENY_FILES | cfg::DENY_EXES | cfg::AI_MARK) != 0
        && let Some(file) = super::identity::file_of(res as u64)
    {
        super::identity::opened_file(
            file,
            c.uring.openat_nr,
            pid_tgid,
            entry,
            deny::HOW_URING_FILE,
            super::identity::Source::Kernel(pd.str.as_ptr()),
        );
    }
    if c.flags & cfg::EVENTS != 0 {
        record(pd, res, user_data, opcode, flags, pid_tgid, entry, ts);
    }
    let _ = URING_PENDING.remove(req);
}

#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "inlined: the values are in registers"
)]
fn record(
    pd: &ai_forensics_common::UringPending,
    res: i32,
    user_data: u64,
    opcode: u32,
    flags: u32,
    pid_tgid: u64,
    entry: u64,
    ts: u64,
) {
    let ts_ns = emit::now();
    let tree = (entry & ai_forensics_common::target::TREE_MASK) as u32;
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    let Some(mut e) = EVENTS.reserve::<UringEvent>(0) else {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    };
    let p = e.as_mut_ptr();
    // SAFETY: p points to a reserved UringEvent; every field is written
    // before submit; the string is copied from map memory.
    unsafe {
        (*p).hdr = header(kind::URING, ts_ns, pid_tgid);
        (*p).opcode = opcode;
        (*p).res = res;
        (*p).flags = flags;
        (*p).user_data = user_data;
        (*p).duration_ns = ts_ns.saturating_sub(ts);
        (*p).tree = tree;
        (*p)._pad = 0;
        let n = pd.str_len.min(uring::STR_MAX as u32);
        (*p).str_len = n;
        bpf_probe_read_kernel(
            (&raw mut (*p).str).cast::<c_void>(),
            uring::STR_MAX as u32,
            pd.str.as_ptr().cast::<c_void>(),
        );
    }
    e.submit(0);
}
