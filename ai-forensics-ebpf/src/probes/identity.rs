//! Decisions on kernel objects, not on the strings a process passes.
//!
//! * At the open family's exit (open, openat, openat2, creat,
//!   open_by_handle_at, pidfd_getfd: every call that returns a new
//!   descriptor of a file), the new descriptor's `struct file` is read from
//!   the fd table and its (device, inode) looked up in `DENY_FILES`. A
//!   relative path, `..`, `//`, `/proc/self/root`, a symlink, a directory fd,
//!   a hard link or a bind mount all reach the same inode. The signal is
//!   sent before the call returns to user space, so the process never runs
//!   an instruction holding the descriptor.
//! * The same file's name (its dentry, as the kernel resolved it) flags the
//!   process an AI workload when it is an ML runtime or model file
//!   (`AI_MARKERS`); children forked later inherit the flag.
//! * At `sched_process_exec`, the new image's (device, inode) is looked up
//!   in `DENY_EXES`: a renamed, linked or symlinked shell is the same inode.
//!   A new image whose size is that of a denied binary and that user space
//!   has not compared yet (`EXE_SIZES`, `EXE_CLEARED`) is stopped before
//!   its first instruction and held (`target::HELD`) until user space has
//!   compared its content: a copy, or a memfd filled with a shell's bytes,
//!   is then killed.
//!
//! Every offset comes from the running kernel's BTF (`Config::off`).
use ai_forensics_common::{
    AI_MARKER_MAX, AI_MARKERS_MAX, DeniedEvent, HeldEvent, MarkEvent, ObjDeny, ObjKey,
    config as cfg, deny, drop, kind, spec, target,
};
use aya_ebpf::{
    cty::c_void,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{
            bpf_get_current_comm, bpf_get_current_task, bpf_get_smp_processor_id,
            bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user_str,
            bpf_send_signal,
        },
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};

use crate::{
    config,
    emit::{self, flush_loss, header, note_loss},
    filter,
    maps::{
        AI_MARKERS, DENY_EXES, DENY_FILES, EVENTS, EXE_CLEARED, EXE_SIZES, SCRATCH, SPECS, TARGETS,
    },
};

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;

/// Reads a `T` at `base + off` from kernel memory (zero on a fault).
#[inline(always)]
pub fn read<T: Copy + Default>(base: *const u8, off: u32) -> T {
    let mut v = T::default();
    // SAFETY: the helper copies size_of::<T>() bytes of kernel memory into
    // the local, or zeroes it on a fault; base is a kernel pointer.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut v).cast::<c_void>(),
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(off as usize).cast::<c_void>(),
        );
    }
    v
}

#[inline(always)]
pub fn ptr(base: *const u8, off: u32) -> *const u8 {
    read::<u64>(base, off) as *const u8
}

/// The `struct file` behind descriptor `fd` of the current process.
#[inline(always)]
pub fn file_of(fd: u64) -> Option<*const u8> {
    let o = config::get().off;
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let files = ptr(task, o.task_files);
    if files.is_null() {
        return None;
    }
    let fdt = ptr(files, o.files_fdt);
    if fdt.is_null() {
        return None;
    }
    let max: u32 = read(fdt, o.fdt_max_fds);
    if fd >= u64::from(max) {
        return None;
    }
    let fds = ptr(fdt, o.fdt_fd);
    if fds.is_null() {
        return None;
    }
    let file = ptr(fds, (fd as u32).wrapping_mul(8));
    (!file.is_null()).then_some(file)
}

/// Deepest path the walk below follows (components, mount crossings included).
const WALK_MAX: u32 = 40;
/// Where the walk builds the path, right to left, in the scratch payload:
/// 4096 bytes plus room for one more component, at its end.
const WALK_AT: usize = ai_forensics_common::PAYLOAD_MAX - 4096 - 256;

/// Writes the absolute path of `file` (from its dentry up through its
/// mounts to the root of the mount tree) to `dst`, at most 4095 bytes;
/// returns its length, 0 when it could not be walked. `base` is the scratch
/// payload.
///
/// Where the next component goes is kept in `slot` (map memory) rather than
/// in a register: the verifier does not follow values through map memory,
/// so the iterations do not multiply its states by every possible position.
#[inline(never)]
pub fn resolve(file: *const u8, base: *mut u8, dst: *mut u8, slot: *mut u32) -> u32 {
    let o = config::get().off;
    let mut dentry = ptr(file, o.file_dentry);
    let mut vfsmnt = ptr(file, o.file_mnt);
    let mut mount = vfsmnt.wrapping_sub(o.mount_mnt as usize);
    // SAFETY: WALK_AT + 4096 + 256 == PAYLOAD_MAX: inside the payload.
    let tmp = unsafe { base.add(WALK_AT) };
    // SAFETY: slot is a u32 of the scratch map value.
    unsafe { slot.write_volatile(4096) };
    let mut i = 0u32;
    while i < WALK_MAX {
        i += 1;
        // SAFETY: as above.
        let mut pos = unsafe { slot.read_volatile() } & 0x1fff;
        let root = ptr(vfsmnt, o.vfsmount_root);
        if dentry == root {
            let parent = ptr(mount, o.mount_parent);
            if parent.is_null() || parent == mount {
                break;
            }
            dentry = ptr(mount, o.mount_mountpoint);
            mount = parent;
            vfsmnt = mount.wrapping_add(o.mount_mnt as usize);
            continue;
        }
        let up = ptr(dentry, o.dentry_parent);
        if up.is_null() || up == dentry {
            break;
        }
        let name = ptr(dentry, o.dentry_name);
        let len: u32 = read::<u32>(dentry, o.dentry_len) & 0xff;
        if len + 1 > pos || pos > 4096 {
            return 0;
        }
        pos -= len;
        // SAFETY: pos < 4096 and len < 256: the copy stays in the walk area.
        unsafe {
            bpf_probe_read_kernel(
                tmp.add((pos & 0xfff) as usize).cast::<c_void>(),
                len,
                name.cast::<c_void>(),
            );
        }
        pos -= 1;
        // SAFETY: as above.
        unsafe { *tmp.add((pos & 0xfff) as usize) = b'/' };
        // SAFETY: as above.
        unsafe { slot.write_volatile(pos) };
        dentry = up;
    }
    // SAFETY: as above.
    let pos = unsafe { slot.read_volatile() } & 0x1fff;
    if pos >= 4096 {
        // The root itself.
        // SAFETY: dst has room for one byte.
        unsafe { *dst = b'/' };
        return 1;
    }
    let n = (4096 - pos) & 0xfff;
    // SAFETY: copies n < 4096 bytes of the walk area to dst (str1's slot,
    // which ends before the walk area).
    unsafe {
        bpf_probe_read_kernel(
            dst.cast::<c_void>(),
            n,
            tmp.add((pos & 0xfff) as usize).cast::<c_void>(),
        );
    }
    n
}

/// (identity, size) of the inode of `file`.
#[inline(always)]
pub fn identity(file: *const u8) -> (ObjKey, u64) {
    let o = config::get().off;
    let inode = ptr(file, o.file_inode);
    let sb = ptr(inode, o.inode_sb);
    let dev: u32 = read(sb, o.sb_dev);
    (
        ObjKey {
            dev: u64::from(dev),
            ino: read(inode, o.inode_ino),
        },
        read(inode, o.inode_size),
    )
}

/// Whether a deny entry applies to a process with target entry `entry`.
#[inline(always)]
pub fn applies(d: &ObjDeny, entry: u64) -> bool {
    deny::applies(d.flags, entry)
}

/// An open-family call returned descriptor `fd` (called from `sys_exit`
/// for targets, when identity rules or AI markers are loaded).
#[inline(never)]
pub fn opened(regs: *const u64, nr: u32, fd: i64, pid_tgid: u64, entry: u64) {
    let Some(sp) = SPECS.get(nr) else { return };
    if sp.flags & spec::FD_OPEN == 0 {
        return;
    }
    let str0 = sp.str0_arg;
    let Some(file) = file_of(fd as u64) else {
        return;
    };
    let mut path_ptr = 0u64;
    if (str0 as usize) < 6 {
        let args = super::syscalls::read_args(regs);
        if let Some(p) = args.get(str0 as usize) {
            path_ptr = *p;
        }
    }
    opened_file(
        file,
        nr,
        pid_tgid,
        entry,
        deny::HOW_EXIT_FILE,
        Source::User(path_ptr),
    );
}

/// A target got `file` from an open (a syscall's exit, an io_uring open's
/// completion): AI marking, re-arming cleared executables, and the deny
/// check by identity (signal before the process can use it).
#[inline(always)]
pub fn opened_file(file: *const u8, nr: u32, pid_tgid: u64, entry: u64, how: u32, src: Source) {
    let c = config::get();
    if c.flags & cfg::AI_MARK != 0 && entry & target::AI != target::AI {
        mark(file, pid_tgid, entry);
    }
    if c.flags & (cfg::DENY_FILES | cfg::DENY_EXES) == 0 {
        return;
    }
    let (key, _) = identity(file);
    if c.flags & cfg::DENY_EXES != 0 && EXE_CLEARED.get_ptr(key).is_some() {
        // A cleared executable opened again may be rewritten: compare it
        // again at its next exec.
        let _ = EXE_CLEARED.remove(key);
    }
    if c.flags & cfg::DENY_FILES == 0 {
        return;
    }
    // SAFETY: the value is copied out before the map can change.
    let Some(d) = (unsafe { DENY_FILES.get(key) }).copied() else {
        return;
    };
    if !applies(&d, entry) {
        return;
    }
    // SAFETY: helper with a plain integer argument.
    unsafe { bpf_send_signal(d.signal) };
    report(pid_tgid, entry, nr, &d, how, key, src);
}

/// Where the reported path comes from.
pub enum Source {
    /// A user pointer (the path argument), 0 for none.
    User(u64),
    /// A kernel string (the exec'd file's name).
    Kernel(*const u8),
}

/// Records a denial: the rule, how it was enforced, the object's identity
/// (zero for a path match) and the path.
#[inline(always)]
pub fn report(pid_tgid: u64, entry: u64, nr: u32, d: &ObjDeny, how: u32, key: ObjKey, src: Source) {
    let ts_ns = emit::now();
    let tree = (entry & target::TREE_MASK) as u32;
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    let Some(mut e) = EVENTS.reserve::<DeniedEvent>(0) else {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    };
    let p = e.as_mut_ptr();
    // SAFETY: p points to a reserved DeniedEvent; every field is written
    // before submit; the path through the helpers (zero length on a fault).
    unsafe {
        // Field by field, straight into the record: this is inlined into
        // frames that share the 512-byte stack with their callers.
        (*p).hdr.kind = kind::DENIED;
        (*p).hdr.cpu = bpf_get_smp_processor_id();
        (*p).hdr.ts_ns = ts_ns;
        (*p).hdr.tgid = (pid_tgid >> 32) as u32;
        (*p).hdr.tid = pid_tgid as u32;
        (*p).nr = nr;
        (*p).rule = d.rule;
        (*p).signal = d.signal;
        (*p).tree = tree;
        (*p).how = how;
        let comm = (&raw mut (*p).comm).cast::<u64>();
        if bpf_get_current_comm(comm.cast::<c_void>(), 16) != 0 {
            // Two words, not a 16-byte fill, which would be a memset call
            // (one more stack frame).
            comm.write_volatile(0);
            comm.add(1).write_volatile(0);
        }
        // Volatile: two zero stores would otherwise become a memset call.
        (&raw mut (*p).dev).write_volatile(key.dev);
        (&raw mut (*p).ino).write_volatile(key.ino);
        let dst = (&raw mut (*p).path).cast::<c_void>();
        let r = match src {
            Source::User(0) => 0,
            Source::User(u) => {
                bpf_probe_read_user_str(dst, deny::PATH_MAX as u32, u as *const c_void)
            }
            Source::Kernel(k) => {
                bpf_probe_read_kernel_str(dst, deny::PATH_MAX as u32, k.cast::<c_void>())
            }
        };
        (*p).path_len = if r > 0 { r as u32 - 1 } else { 0 };
    }
    e.submit(0);
}

/// Where the name and its suffix copy go in the scratch payload.
const NAME_AT: usize = 0;
const NAME_MAX: u32 = 64;
const TAIL_AT: usize = 128;

/// Flags the process an AI workload when `file`'s name is an AI marker.
#[inline(always)]
fn mark(file: *const u8, pid_tgid: u64, entry: u64) {
    let o = config::get().off;
    let dentry = ptr(file, o.file_dentry);
    let name = ptr(dentry, o.dentry_name);
    let len: u32 = read(dentry, o.dentry_len);
    if name.is_null() || len == 0 || len >= NAME_MAX {
        return;
    }
    let Some(s) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch; preemption is disabled while programs run.
    let buf = unsafe { (*s).payload.as_mut_ptr() };
    // SAFETY: reads at most NAME_MAX bytes of a kernel string into the
    // scratch payload, which is larger; the rest of the 64 bytes is zeroed
    // so word compares past the name see zeros.
    unsafe {
        core::ptr::write_bytes(buf.add(NAME_AT), 0, NAME_MAX as usize);
        bpf_probe_read_kernel_str(
            buf.add(NAME_AT).cast::<c_void>(),
            NAME_MAX,
            name.cast::<c_void>(),
        );
    }
    let mut i = 0u32;
    while i < AI_MARKERS_MAX {
        let Some(m) = AI_MARKERS.get(i) else { break };
        if m.kind == 0 {
            break;
        }
        let plen = m.len;
        if plen == 0 || plen > AI_MARKER_MAX as u32 || plen > len {
            i += 1;
            continue;
        }
        let at = if m.kind == 1 { 0 } else { len - plen };
        // SAFETY: at + AI_MARKER_MAX < NAME_MAX + AI_MARKER_MAX, inside the
        // payload; the copy lands at an aligned spot for word compares.
        let tail = unsafe { buf.add(TAIL_AT) };
        // SAFETY: as above.
        unsafe {
            bpf_probe_read_kernel(
                tail.cast::<c_void>(),
                AI_MARKER_MAX as u32,
                buf.add(NAME_AT + (at & 63) as usize).cast::<c_void>(),
            );
        }
        if super::enforce::same::<3>(tail.cast::<u64>(), m.pattern.as_ptr().cast::<u64>(), plen) {
            let flag = u64::from(m.flag) << 16 & target::AI;
            let tgid = (pid_tgid >> 32) as u32;
            let v = filter::target_value(tgid);
            if v & flag == 0 {
                let _ = TARGETS.set(tgid, v | flag, 0);
                mark_event(pid_tgid, entry, m.flag, i, buf, len);
            }
            return;
        }
        i += 1;
    }
}

#[inline(always)]
fn mark_event(pid_tgid: u64, entry: u64, flag: u32, marker: u32, name: *const u8, len: u32) {
    let ts_ns = emit::now();
    let tree = (entry & target::TREE_MASK) as u32;
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    }
    let Some(mut e) = EVENTS.reserve::<MarkEvent>(0) else {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        return;
    };
    let p = e.as_mut_ptr();
    // SAFETY: p points to a reserved MarkEvent; every field is written
    // before submit; the name is copied from the scratch payload.
    unsafe {
        (*p).hdr = header(kind::AI_MARK, ts_ns, pid_tgid);
        (*p).tree = tree;
        (*p).flag = flag;
        (*p).marker = marker;
        (*p).name_len = len;
        bpf_probe_read_kernel(
            (&raw mut (*p).name).cast::<c_void>(),
            64,
            name.cast::<c_void>(),
        );
    }
    e.submit(0);
}

/// `sched_process_exec` as a raw tracepoint: `TP_PROTO(struct task_struct
/// *p, pid_t old_pid, struct linux_binprm *bprm)`. Attached only when
/// executables are denied by identity. The hook runs in the new image's
/// context before it returns to user space, so a signal sent here lands
/// before its first instruction.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn raw_tracepoint_sched_process_exec_deny(ctx: RawTracePointContext) -> i32 {
    exec_check(&ctx);
    0
}

#[inline(always)]
fn exec_check(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let Some(entry) = filter::target_entry(tgid) else {
        return;
    };
    if entry & (target::LAUNCH_EXEC | target::AWAIT_EXEC) != 0 {
        // The launched command's own image is the user's choice (counting
        // at exit marks it only after its execve returns).
        let _ = TARGETS.set(
            tgid,
            filter::target_value(tgid) & !(target::LAUNCH_EXEC | target::AWAIT_EXEC),
            0,
        );
        return;
    }
    let o = config::get().off;
    let bprm: *const u8 = ctx.arg(2);
    let file = ptr(bprm, o.bprm_file);
    if file.is_null() {
        return;
    }
    let (key, size) = identity(file);
    // SAFETY: the value is copied out before the map can change.
    if let Some(d) = unsafe { DENY_EXES.get(key) }.copied() {
        if applies(&d, entry) {
            // SAFETY: helper with a plain integer argument.
            unsafe { bpf_send_signal(d.signal) };
            let filename: *const u8 = ptr(bprm, o.bprm_filename);
            report(
                pid_tgid,
                entry,
                config::get().execve_nr,
                &d,
                deny::HOW_EXEC_IMAGE,
                key,
                Source::Kernel(filename),
            );
        }
        return;
    }
    // SAFETY: the value is copied out before the map can change.
    let Some(flags) = unsafe { EXE_SIZES.get(size) }.copied() else {
        return;
    };
    if !applies(
        &ObjDeny {
            flags,
            ..ObjDeny::default()
        },
        entry,
    ) || EXE_CLEARED.get_ptr(key).is_some()
    {
        return;
    }
    // Held: stopped before its first instruction; a syscall made before
    // user space lets it go (someone else sent SIGCONT) kills it.
    let _ = TARGETS.set(tgid, filter::target_value(tgid) | target::HELD, 0);
    // SAFETY: helper with a plain integer argument.
    unsafe { bpf_send_signal(SIGSTOP) };
    let ts_ns = emit::now();
    let tree = (entry & target::TREE_MASK) as u32;
    if !flush_loss(pid_tgid) {
        note_loss(tree, ts_ns, drop::RINGBUF_FULL);
        // Nobody will let it go: fail closed.
        // SAFETY: as above.
        unsafe { bpf_send_signal(SIGKILL) };
        return;
    }
    match EVENTS.reserve::<HeldEvent>(0) {
        Some(mut e) => {
            e.write(HeldEvent {
                hdr: header(kind::EXEC_HELD, ts_ns, pid_tgid),
                tree,
                _pad: 0,
                obj: key,
                size,
            });
            e.submit(0);
        }
        None => {
            note_loss(tree, ts_ns, drop::RINGBUF_FULL);
            // SAFETY: as above.
            unsafe { bpf_send_signal(SIGKILL) };
        }
    }
}
