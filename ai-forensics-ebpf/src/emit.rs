//! Writing records to the ring buffer, with loss accounting.
//!
//! A failed reserve is never silent: it is counted in `DROPS`, per tree in
//! `LOST_BY_TREE`, and remembered per CPU in `LOSS`. The next record that
//! makes it out of that CPU is preceded by a `LOST` marker carrying the count
//! and time span, so a reader knows exactly where the stream has a gap.
use ai_forensics_common::{
    ARGV_MAX_ARGS, BLOB_MAX, Header, LostEvent, NO_ARG, STR_MAX, SyscallEvent, SyscallSpec, drop,
    ev, kind, spec,
};
use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_comm, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        generated::{self as raw, bpf_probe_read_user, bpf_probe_read_user_str},
    },
};

use crate::maps::{EVENTS, LOSS, LOST_BY_TREE, SCRATCH, STATS, count_drop};

/// A record header for the current task.
#[inline(always)]
pub fn header(kind: u32, ts_ns: u64, pid_tgid: u64) -> Header {
    Header {
        kind,
        // SAFETY: helper without arguments.
        cpu: unsafe { bpf_get_smp_processor_id() },
        ts_ns,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
    }
}

/// Bytes waiting in the ring buffer at which a syscall record wakes the
/// reader. Below it the reader is not woken (it polls every few
/// milliseconds): a wake-up is an inter-processor interrupt, which costs the
/// traced process microseconds per record on a virtual machine.
const WAKE_BYTES: u64 = 256 << 10;

/// Submit flags for a syscall record of `size` bytes: a wake-up only from
/// the record that takes the waiting data across [`WAKE_BYTES`] (once per
/// crossing, not for every record after it), none otherwise.
#[inline(always)]
fn wake_flags(size: u64) -> u64 {
    use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
    // The reservation of this record is already counted in the waiting data.
    let avail = EVENTS.query(u64::from(BPF_RB_AVAIL_DATA));
    if avail >= WAKE_BYTES && avail < WAKE_BYTES + size + 8 {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

/// Monotonic clock, as `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

/// Writes the pending `LOST` marker of this CPU, if any. Returns false when a
/// marker is pending and could not be written: the caller's record then
/// joins the gap, so the gap stays one contiguous span.
#[inline(always)]
pub fn flush_loss(pid_tgid: u64) -> bool {
    let Some(p) = LOSS.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: per-CPU slot, preemption is disabled while programs run.
    let pending = unsafe { &mut *p };
    if pending.count == 0 {
        return true;
    }
    match EVENTS.reserve::<LostEvent>(0) {
        Some(mut e) => {
            e.write(LostEvent {
                hdr: header(kind::LOST, now(), pid_tgid),
                count: pending.count,
                first_ts_ns: pending.first_ts_ns,
                last_ts_ns: pending.last_ts_ns,
            });
            e.submit(0);
            pending.count = 0;
            true
        }
        None => false,
    }
}

/// Counts one record lost for `tree` at time `ts_ns`.
#[inline(always)]
pub fn note_loss(tree: u32, ts_ns: u64, cause: u32) {
    count_drop(cause);
    if let Some(p) = LOSS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        let pending = unsafe { &mut *p };
        if pending.count == 0 {
            pending.first_ts_ns = ts_ns;
        }
        pending.count += 1;
        pending.last_ts_ns = ts_ns;
    }
    if let Some(p) = LOST_BY_TREE.get_ptr_mut(tree) {
        // SAFETY: per-CPU slot, as above.
        unsafe { *p += 1 };
    }
}

/// Fields of a syscall record that do not come from user memory.
pub struct Call {
    pub kind: u32,
    pub pid_tgid: u64,
    pub nr: u32,
    pub tree: u32,
    pub ts_ns: u64,
    pub ret: i64,
    pub duration_ns: u64,
}

/// A syscall record was lost: counted like any record, and against its
/// syscall, so "calls = records received + records lost" holds per syscall.
#[inline(always)]
fn note_syscall_loss(call: &Call) {
    note_loss(call.tree, call.ts_ns, loss_cause(call));
    if call.tree != 0
        && let Some(st) = STATS.get_ptr_mut(call.nr)
    {
        // SAFETY: per-CPU slot, preemption is disabled while programs run.
        unsafe { (*st).lost += 1 };
    }
}

/// Watch-mode records (tree 0) are counted apart from target records.
#[inline(always)]
fn loss_cause(call: &Call) -> u32 {
    if call.tree == 0 {
        drop::WATCH_RINGBUF_FULL
    } else {
        drop::RINGBUF_FULL
    }
}

#[inline(always)]
fn comm() -> [u8; 16] {
    bpf_get_current_comm().unwrap_or([0; 16])
}

/// Streams a syscall record without payload, written field by field into
/// the reserved ring-buffer space (no copy, no zeroing; the thread name goes
/// straight from the helper into the record).
#[inline(always)]
pub fn syscall_plain(call: &Call, args: &[u64; 6]) {
    if !flush_loss(call.pid_tgid) {
        note_syscall_loss(call);
        return;
    }
    match EVENTS.reserve::<SyscallEvent>(0) {
        Some(mut e) => {
            let p = e.as_mut_ptr();
            // SAFETY: `p` points to reserved, writable ring-buffer memory of
            // the record's size; every field is written before submit.
            unsafe {
                (&raw mut (*p).hdr).write(header(call.kind, call.ts_ns, call.pid_tgid));
                (&raw mut (*p).nr).write(call.nr);
                (&raw mut (*p).tree).write(call.tree);
                (&raw mut (*p).ret).write(call.ret);
                (&raw mut (*p).duration_ns).write(call.duration_ns);
                (&raw mut (*p).args).write(*args);
                if raw::bpf_get_current_comm((&raw mut (*p).comm).cast::<c_void>(), 16) != 0 {
                    (&raw mut (*p).comm).write([0; 16]);
                }
                (&raw mut (*p).flags).write(0);
                (&raw mut (*p).blob_len).write(0);
                (&raw mut (*p).str0_len).write(0);
                (&raw mut (*p).str1_len).write(0);
            }
            e.submit(wake_flags(size_of::<SyscallEvent>() as u64));
        }
        None => note_syscall_loss(call),
    }
}

/// Reads a NUL-terminated user string to `dst` (at most `room` bytes with the
/// NUL). Returns the length without the NUL, whether it was cut, and
/// whether anything was read.
#[inline(always)]
fn read_str(dst: *mut u8, room: u32, src: u64, flags: &mut u32) -> (u32, bool, bool) {
    if src == 0 || room == 0 {
        return (0, false, false);
    }
    // SAFETY: dst has `room` writable bytes (the caller bounds the offset);
    // src is an untrusted user pointer, which the helper reads safely.
    let r = unsafe { bpf_probe_read_user_str(dst.cast::<c_void>(), room, src as *const c_void) };
    if r <= 0 {
        *flags |= ev::READ_FAULT;
        return (0, false, false);
    }
    let mut n = r as u32;
    if n > room {
        n = room;
    }
    // n counts the NUL; a string that filled the room was cut.
    (n - 1, n == room, true)
}

#[inline(always)]
fn arg_of(args: &[u64; 6], i: u8) -> u64 {
    let i = i as usize;
    if i < 6 { args[i] } else { 0 }
}

/// Streams a syscall record with its payload: blob, then str0, then str1 (or
/// argv). Built in the per-CPU scratch area, then copied out with its real
/// size, so a short path costs a short record.
#[inline(always)]
/// `EXIT`: built at the call's exit, where a returned descriptor's path can
/// be resolved (`spec::RESOLVE`); the entry program has no such code (and
/// no such stack).
pub fn syscall_payload<const EXIT: bool>(call: &Call, args: &[u64; 6], sp: &SyscallSpec) {
    let Some(s) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot, preemption is disabled while programs run.
    let s = unsafe { &mut *s };
    s.ev.hdr = header(call.kind, call.ts_ns, call.pid_tgid);
    s.ev.nr = call.nr;
    s.ev.tree = call.tree;
    s.ev.ret = call.ret;
    s.ev.duration_ns = call.duration_ns;
    s.ev.args = *args;
    s.ev.comm = comm();
    let mut flags = 0u32;
    let base = s.payload.as_mut_ptr();

    // Blob: a socket address, clone_args, the fds pipe() wrote...
    let mut blob_len: u64 = 0;
    let blob_wanted = sp.flags & spec::BLOB_ON_SUCCESS == 0 || call.ret >= 0;
    if sp.blob_arg != NO_ARG && blob_wanted {
        let mut ptr = arg_of(&s.ev.args, sp.blob_arg);
        let mut len = u64::from(sp.blob_len_max);
        if sp.flags & spec::BLOB_MSGHDR != 0 {
            // struct msghdr { void *msg_name; socklen_t msg_namelen; ... }
            let mut hdr = [0u64; 2];
            // SAFETY: reads 16 bytes from an untrusted user pointer into a local.
            let r = unsafe {
                bpf_probe_read_user(hdr.as_mut_ptr().cast::<c_void>(), 16, ptr as *const c_void)
            };
            if r != 0 {
                flags |= ev::READ_FAULT;
                hdr = [0, 0];
            }
            ptr = hdr[0];
            let want = hdr[1] & 0xffff_ffff;
            if want > len {
                flags |= ev::BLOB_TRUNC;
            } else {
                len = want;
            }
        } else if sp.blob_len_arg != NO_ARG {
            let v = arg_of(&s.ev.args, sp.blob_len_arg);
            let want = if sp.flags & spec::BLOB_LEN_PTR != 0 {
                let mut l: u32 = 0;
                // SAFETY: reads 4 bytes from an untrusted user pointer into a local.
                let r = unsafe {
                    bpf_probe_read_user((&raw mut l).cast::<c_void>(), 4, v as *const c_void)
                };
                if r != 0 {
                    flags |= ev::READ_FAULT;
                }
                u64::from(l)
            } else {
                v
            };
            if want > len {
                flags |= ev::BLOB_TRUNC;
            } else {
                len = want;
            }
        }
        if len > BLOB_MAX as u64 {
            len = BLOB_MAX as u64;
            flags |= ev::BLOB_TRUNC;
        }
        if ptr != 0 && len > 0 {
            // SAFETY: len <= BLOB_MAX bytes fit at the start of the payload.
            let r = unsafe {
                bpf_probe_read_user(base.cast::<c_void>(), len as u32, ptr as *const c_void)
            };
            if r == 0 {
                blob_len = len;
            } else {
                flags |= ev::READ_FAULT;
            }
        }
    }
    // Through map memory, which the verifier does not follow: older
    // verifiers (6.1) lose the bounds of `blob_len` across the branches
    // above (umin > umax) and then refuse `base + off0` as a pointer.
    let slot = &raw mut s.ev.blob_len;
    // SAFETY: a u32 field of the per-CPU scratch map value.
    unsafe { slot.write_volatile(blob_len as u32) };
    // SAFETY: as above.
    let off0 = u64::from(unsafe { slot.read_volatile() }) & 0xff;

    // str0: the primary path.
    let mut len0: u64 = 0;
    if sp.str0_arg != NO_ARG {
        // SAFETY: off0 < 256 and STR_MAX bytes from there fit in the payload.
        let dst = unsafe { base.add(off0 as usize) };
        let (n, cut, ok) = read_str(
            dst,
            STR_MAX as u32,
            arg_of(&s.ev.args, sp.str0_arg),
            &mut flags,
        );
        len0 = u64::from(n);
        if cut {
            flags |= ev::STR0_TRUNC;
        }
        if ok {
            flags |= ev::STR0_PRESENT;
        }
    }
    let off1 = (off0 + len0) & 0x1fff;

    // str1: a second path, or argv joined with NULs.
    let mut len1: u64 = 0;
    if sp.argv_arg != NO_ARG {
        flags |= ev::STR1_ARGV | ev::STR1_PRESENT;
        let argv = arg_of(&s.ev.args, sp.argv_arg);
        let mut i: u32 = 0;
        while i < ARGV_MAX_ARGS {
            let mut p: u64 = 0;
            // SAFETY: reads one pointer of the untrusted argv array into a local.
            let r = unsafe {
                bpf_probe_read_user(
                    (&raw mut p).cast::<c_void>(),
                    8,
                    (argv + u64::from(i) * 8) as *const c_void,
                )
            };
            if r != 0 {
                flags |= ev::READ_FAULT;
                break;
            }
            if p == 0 {
                break;
            }
            let used = len1 & 0x1fff;
            if used >= STR_MAX as u64 {
                flags |= ev::STR1_TRUNC;
                break;
            }
            let room = (STR_MAX as u64 - used) as u32;
            // SAFETY: off1 <= 8191 and used < STR_MAX, so `room` bytes from
            // there stay inside the payload (PAYLOAD_MAX is 16384).
            let dst = unsafe { base.add(((off1 & 0x1fff) + (used & 0xfff)) as usize) };
            // SAFETY: the pointer was read from argv: untrusted, read by the helper.
            let r =
                unsafe { bpf_probe_read_user_str(dst.cast::<c_void>(), room, p as *const c_void) };
            if r <= 0 {
                flags |= ev::READ_FAULT;
                break;
            }
            let mut n = r as u64;
            if n > u64::from(room) {
                n = u64::from(room);
            }
            len1 = used + n; // keeps the NUL as separator
            if n == u64::from(room) {
                flags |= ev::STR1_TRUNC;
                break;
            }
            i += 1;
        }
        if i == ARGV_MAX_ARGS {
            flags |= ev::STR1_TRUNC;
        }
    } else if EXIT && sp.flags & spec::RESOLVE != 0 && call.ret >= 0 {
        if let Some(file) = crate::probes::identity::file_of(call.ret as u64) {
            // SAFETY: off1 <= 4352 (blob and str0) and the path is < 4096
            // bytes: it ends before the walk area at the payload's end.
            let dst = unsafe { base.add((off1 & 0x1fff) as usize) };
            let slot = &raw mut s.ev.str1_len;
            len1 = u64::from(crate::probes::identity::resolve(file, base, dst, slot));
            if len1 > 0 {
                flags |= ev::STR1_PRESENT | ev::STR1_RESOLVED;
            }
        }
    } else if sp.str1_arg != NO_ARG {
        // SAFETY: off1 <= 8191 and STR_MAX bytes from there fit in the payload.
        let dst = unsafe { base.add(off1 as usize) };
        let (n, cut, ok) = read_str(
            dst,
            STR_MAX as u32,
            arg_of(&s.ev.args, sp.str1_arg),
            &mut flags,
        );
        len1 = u64::from(n);
        if cut {
            flags |= ev::STR1_TRUNC;
        }
        if ok {
            flags |= ev::STR1_PRESENT;
        }
    }
    let len1 = len1 & 0x1fff;

    s.ev.flags = flags;
    s.ev.blob_len = blob_len as u32;
    s.ev.str0_len = len0 as u32;
    s.ev.str1_len = len1 as u32;

    if !flush_loss(call.pid_tgid) {
        note_syscall_loss(call);
        return;
    }
    let size = (core::mem::size_of::<SyscallEvent>() as u64 + ((off1 + len1) & 0x3fff)) as usize;
    // SAFETY: size <= 128 + 16383 < size_of::<Scratch>(), all initialised
    // (the payload area is a map value, zero-filled at creation).
    let bytes = unsafe { core::slice::from_raw_parts((&raw const *s).cast::<u8>(), size) };
    if EVENTS
        .output::<[u8]>(bytes, wake_flags(size as u64))
        .is_err()
    {
        note_syscall_loss(call);
    }
}
