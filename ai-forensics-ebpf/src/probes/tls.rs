//! Plaintext of targets' TLS library calls, by uprobes on OpenSSL's
//! `SSL_write`/`SSL_read` (and their `_ex` variants) and GnuTLS's
//! `gnutls_record_send`/`gnutls_record_recv`, in shared libraries and in
//! executables that carry a static copy (node, bun).
//!
//! The entry probe remembers the buffer; the return probe knows how many
//! bytes went through and copies up to the capture limit (the attach
//! cookie's high half) out, in records of [`tls::CHUNK`] bytes. A record
//! that does not fit is counted lost like any other.
use ai_forensics_common::{TlsEvent, TlsPending, TlsScratch, drop, kind, tls};
use aya_ebpf::{
    EbpfContext as _,
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_attach_cookie, bpf_loop, bpf_probe_read_user},
    },
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};

use crate::{
    emit::{self, flush_loss, header, note_loss},
    filter,
    maps::{EVENTS, TLS_PENDING, TLS_SCRATCH},
};

#[uprobe]
pub fn uprobe_tls(ctx: ProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if filter::target_of((pid_tgid >> 32) as u32).is_none() {
        return 0;
    }
    // SAFETY: the context pointer comes from the kernel.
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let func = (cookie & 0xff) as u32;
    let p = TlsPending {
        conn: ctx.arg(0).unwrap_or(0),
        buf: ctx.arg(1).unwrap_or(0),
        out: if tls::is_ex(func) {
            ctx.arg(3).unwrap_or(0)
        } else {
            0
        },
        entry_ns: emit::now(),
        func,
        cap: (cookie >> 32) as u32,
    };
    // A full table (LRU) evicts the oldest call, never this one.
    let _ = TLS_PENDING.insert(pid_tgid as u32, p, 0);
    0
}

#[uretprobe]
pub fn uretprobe_tls(ctx: RetProbeContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(tree) = filter::target_of((pid_tgid >> 32) as u32) else {
        return 0;
    };
    let tid = pid_tgid as u32;
    // SAFETY: the value is copied out before the entry is removed.
    let Some(p) = (unsafe { TLS_PENDING.get(tid) }).copied() else {
        return 0;
    };
    let _ = TLS_PENDING.remove(tid);
    let raw: i64 = ctx.ret();
    let ret = if tls::returns_int(p.func) {
        i64::from(raw as i32)
    } else {
        raw
    };
    let total: u64 = if tls::is_ex(p.func) {
        if ret != 1 {
            return 0;
        }
        let mut n: u64 = 0;
        // SAFETY: reads the byte count the callee wrote to the caller's
        // (untrusted) out-pointer into a local.
        if unsafe { bpf_probe_read_user((&raw mut n).cast::<c_void>(), 8, p.out as *const c_void) }
            != 0
        {
            return 0;
        }
        n
    } else if ret > 0 {
        ret as u64
    } else {
        // Nothing went through (an error, or "want read/write" on a
        // non-blocking connection): no data, no record.
        return 0;
    };
    let cap = if u64::from(p.cap) < total {
        u64::from(p.cap)
    } else {
        total
    };
    let job = Chunk {
        pid_tgid,
        tree,
        _pad: 0,
        ts_ns: emit::now(),
        p,
        total,
        cap,
    };
    // One record per CHUNK bytes. `bpf_loop` (5.17+) has the verifier check
    // the body once; an open-coded loop is checked per iteration, which the
    // 6.1 verifier gives up on (a million instructions).
    // SAFETY: the callback is a BPF function of this object taking the
    // context below, which lives on this stack for the whole call.
    unsafe {
        bpf_loop(
            tls::MAX_CHUNKS,
            chunk as *const () as *mut c_void,
            (&raw const job).cast_mut().cast::<c_void>(),
            0,
        )
    };
    0
}

/// What the loop body needs.
#[repr(C)]
struct Chunk {
    pid_tgid: u64,
    tree: u32,
    _pad: u32,
    ts_ns: u64,
    p: TlsPending,
    total: u64,
    cap: u64,
}

/// The loop body: record `k` of the call (1 stops the loop).
extern "C" fn chunk(k: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Chunk` the return probe passed to `bpf_loop`.
    let c = unsafe { &*(ctx as *const Chunk) };
    let off = k * tls::CHUNK as u64;
    if off >= c.cap {
        return 1;
    }
    let left = c.cap - off;
    let len = if left < tls::CHUNK as u64 {
        left
    } else {
        tls::CHUNK as u64
    };
    let mut flags = 0;
    if off + len >= c.cap {
        flags = tls::LAST;
        if c.cap < c.total {
            flags |= tls::TRUNCATED;
        }
    }
    send(c, off, len, flags);
    0
}

#[inline(always)]
fn send(c: &Chunk, off: u64, len: u64, flags: u16) {
    let Some(s) = TLS_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot, preemption is disabled while programs run.
    let s: &mut TlsScratch = unsafe { &mut *s };
    // 1..=CHUNK, in a form the verifier can bound.
    let len = ((len.wrapping_sub(1)) & (tls::CHUNK as u64 - 1)) + 1;
    let mut flags = flags;
    // SAFETY: `len` <= CHUNK bytes fit in the scratch data area; the source
    // is the target's (untrusted) buffer, read by the helper.
    let r = unsafe {
        bpf_probe_read_user(
            s.data.as_mut_ptr().cast::<c_void>(),
            len as u32,
            (c.p.buf + off) as *const c_void,
        )
    };
    let len = if r == 0 {
        len
    } else {
        flags |= tls::READ_FAULT;
        0
    };
    s.ev = TlsEvent {
        hdr: header(kind::TLS, c.ts_ns, c.pid_tgid),
        conn: c.p.conn,
        entry_ns: c.p.entry_ns,
        total: c.total,
        offset: off as u32,
        len: len as u32,
        func: c.p.func as u16,
        flags,
        tree: c.tree,
    };
    if !flush_loss(c.pid_tgid) {
        note_loss(c.tree, c.ts_ns, drop::RINGBUF_FULL);
        return;
    }
    let size = (core::mem::size_of::<TlsEvent>() as u64 + (len & 0x1fff)) as usize;
    let size = if size > core::mem::size_of::<TlsScratch>() {
        core::mem::size_of::<TlsScratch>()
    } else {
        size
    };
    // SAFETY: size <= size_of::<TlsScratch>(), all of it initialised (a
    // map value, zero-filled at creation).
    let bytes = unsafe { core::slice::from_raw_parts((&raw const *s).cast::<u8>(), size) };
    if EVENTS.output::<[u8]>(bytes, 0).is_err() {
        note_loss(c.tree, c.ts_ns, drop::RINGBUF_FULL);
    }
}
