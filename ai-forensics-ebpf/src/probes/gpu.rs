//! CUDA runtime and driver calls of targets, by uprobes on libcudart and
//! libcuda (attached by user space with the function id as cookie).
//!
//! Allocations (`cudaMalloc(void **p, size_t n)`, `cuMemAlloc_v2(CUdeviceptr
//! *p, size_t n)`) are recorded at return, when the device pointer has been
//! written; every other call at entry.
use ai_forensics_common::{GpuEvent, GpuPending, drop, kind};
use aya_ebpf::{
    EbpfContext as _,
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_attach_cookie, bpf_probe_read_user},
    },
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};

use crate::{
    emit::{self, flush_loss, header, note_loss},
    filter,
    maps::{EVENTS, GPU_PENDING},
};

/// Function ids (user space's `ai::gpu::FUNCTIONS`).
const CUDA_MALLOC: u64 = 0;
const CUDA_FREE: u64 = 1;
const CUDA_MEMCPY: u64 = 2;
const CUDA_MEMCPY_ASYNC: u64 = 3;
const CU_MEM_ALLOC: u64 = 5;
const CU_MEM_FREE: u64 = 6;
const CU_MEMCPY_HTOD: u64 = 8;
const CU_MEMCPY_DTOH: u64 = 9;

#[inline(always)]
fn send(pid_tgid: u64, tree: u32, func: u32, size: u64, ptr: u64, ret: i64) {
    let ts_ns = emit::now();
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    match EVENTS.reserve::<GpuEvent>(0) {
        Some(mut e) => {
            e.write(GpuEvent {
                hdr: header(kind::GPU, ts_ns, pid_tgid),
                func,
                _pad: 0,
                size,
                ptr,
                ret,
            });
            e.submit(0);
        }
        None => note_loss(tree, ts_ns, drop::RINGBUF_FULL),
    }
}

#[uprobe]
pub fn uprobe_cuda(ctx: ProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(tree) = filter::target_of((pid_tgid >> 32) as u32) else {
        return 0;
    };
    // SAFETY: the context pointer comes from the kernel.
    let func = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let a0: u64 = ctx.arg(0).unwrap_or(0);
    let a1: u64 = ctx.arg(1).unwrap_or(0);
    let a2: u64 = ctx.arg(2).unwrap_or(0);
    match func {
        CUDA_MALLOC | CU_MEM_ALLOC => {
            let tid = pid_tgid as u32;
            let p = GpuPending {
                out_ptr: a0,
                size: a1,
                func: func as u32,
                _pad: 0,
            };
            if GPU_PENDING.insert(tid, p, 0).is_err() {
                send(pid_tgid, tree, func as u32, a1, 0, 0);
            }
        }
        CUDA_FREE | CU_MEM_FREE => send(pid_tgid, tree, func as u32, 0, a0, 0),
        CUDA_MEMCPY | CUDA_MEMCPY_ASYNC | CU_MEMCPY_HTOD | CU_MEMCPY_DTOH => {
            send(pid_tgid, tree, func as u32, a2, 0, 0)
        }
        _ => send(pid_tgid, tree, func as u32, 0, 0, 0),
    }
    0
}

#[uretprobe]
pub fn uretprobe_cuda(ctx: RetProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(tree) = filter::target_of((pid_tgid >> 32) as u32) else {
        return 0;
    };
    let tid = pid_tgid as u32;
    // SAFETY: the value is copied out before the entry is removed.
    let Some(p) = (unsafe { GPU_PENDING.get(tid) }).copied() else {
        return 0;
    };
    let _ = GPU_PENDING.remove(tid);
    let ret: i64 = ctx.ret();
    let mut dev: u64 = 0;
    // SAFETY: reads the device pointer the callee wrote to the caller's
    // (untrusted) out-pointer into a local.
    unsafe {
        bpf_probe_read_user(
            (&raw mut dev).cast::<c_void>(),
            8,
            p.out_ptr as *const c_void,
        )
    };
    send(pid_tgid, tree, p.func, p.size, dev, ret as i32 as i64);
    0
}
