//! Ring-buffer bytes to owned records. Pure: no I/O, no kernel.
//!
//! Every read is bounds-checked and unaligned-safe; a short or unknown
//! record is an error value, never a panic (the bytes cross a trust
//! boundary: strings in them come from the traced processes).
pub mod args;
pub mod escape;
pub mod flags;
pub mod sockaddr;
pub mod uring;

use ai_forensics_common::{
    ExecEvent, ExitEvent, ForkEvent, Header, LostEvent, SyscallEvent, UNTIMED, ev, kind,
};

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or the fixed part of the record.
    #[error("record of {len} bytes is too short for kind {kind}")]
    Short {
        /// Record kind (0 when even the header is missing).
        kind: u32,
        /// Bytes available.
        len: usize,
    },
    /// A kind this version does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    /// Payload lengths that do not fit the record.
    #[error("payload lengths exceed the record")]
    BadPayload,
}

/// A completed (or entry-side) syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// Recorded at entry (execve arguments, exit_group) rather than at exit.
    pub at_entry: bool,
    /// Monotonic time of entry.
    pub ts_ns: u64,
    /// CPU that wrote the record.
    pub cpu: u32,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// Syscall number.
    pub nr: u32,
    /// Target tree.
    pub tree: u32,
    /// Raw return value (0 for entry records).
    pub ret: i64,
    /// Duration, when timed.
    pub duration_ns: Option<u64>,
    /// Raw arguments.
    pub args: [u64; 6],
    /// Thread name.
    pub comm: Vec<u8>,
    /// `ev` flags.
    pub flags: u32,
    /// Binary argument read from user memory.
    pub blob: Vec<u8>,
    /// First string (path).
    pub str0: Option<Vec<u8>>,
    /// Second string (path or NUL-separated argv).
    pub str1: Option<Vec<u8>>,
}

impl Syscall {
    /// The errno when the call failed.
    #[must_use]
    pub fn errno(&self) -> Option<i64> {
        (!self.at_entry && (-4095..0).contains(&self.ret)).then(|| -self.ret)
    }

    /// argv strings when `str1` holds an argv.
    #[must_use]
    pub fn argv(&self) -> Option<Vec<&[u8]>> {
        if self.flags & ev::STR1_ARGV == 0 {
            return None;
        }
        let s = self.str1.as_deref().unwrap_or_default();
        let mut v: Vec<&[u8]> = s.split(|b| *b == 0).collect();
        if s.last() == Some(&0) || s.is_empty() {
            v.pop();
        }
        Some(v)
    }
}

/// A gap: records lost on one CPU between two times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// When the marker was written.
    pub ts_ns: u64,
    /// CPU of the gap.
    pub cpu: u32,
    /// Task that wrote the marker.
    pub tgid: u32,
    /// Thread that wrote the marker.
    pub tid: u32,
    /// Records lost.
    pub count: u64,
    /// First lost record's time.
    pub first_ts_ns: u64,
    /// Last lost record's time.
    pub last_ts_ns: u64,
}

/// A target created a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// Time.
    pub ts_ns: u64,
    /// Parent process.
    pub tgid: u32,
    /// Parent thread.
    pub tid: u32,
    /// New thread id.
    pub child_tid: u32,
    /// New task's process id.
    pub child_tgid: u32,
    /// Tree.
    pub tree: u32,
    /// The new process's generation (0 for a thread).
    pub child_gen: u32,
    /// Parent name.
    pub comm: Vec<u8>,
}

impl Fork {
    /// A new thread rather than a new process.
    #[must_use]
    pub fn is_thread(&self) -> bool {
        self.child_tgid == self.tgid
    }
}

/// A program was executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    /// Time.
    pub ts_ns: u64,
    /// Process id.
    pub tgid: u32,
    /// Thread id (after exec).
    pub tid: u32,
    /// Thread id before exec.
    pub old_tid: u32,
    /// Tree (0 for watch-mode records).
    pub tree: u32,
    /// New name.
    pub comm: Vec<u8>,
    /// Executed file.
    pub filename: Vec<u8>,
    /// `filename` was cut.
    pub truncated: bool,
}

/// A task exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Time.
    pub ts_ns: u64,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// Last thread of the process.
    pub group_dead: bool,
    /// Name.
    pub comm: Vec<u8>,
}

/// A deny rule stopped a syscall at entry (in the kernel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// When the signal was sent.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Syscall number.
    pub nr: u32,
    /// Rule number.
    pub rule: u32,
    /// Signal sent.
    pub signal: u32,
    /// Tree.
    pub tree: u32,
    /// Thread name.
    pub comm: Vec<u8>,
    /// The path as the process passed it (or the exec'd file's name).
    pub path: Vec<u8>,
    /// How it was enforced (`deny::HOW_*`).
    pub how: u32,
    /// The object's identity (zero for a path match at entry).
    pub obj: ai_forensics_common::ObjKey,
    /// For a held image denied by content: the denied executable it is a
    /// copy of (user space's finding, not the kernel's).
    pub copy_of: Option<Vec<u8>>,
    /// When user space decided (prevention through seccomp; 0 when the
    /// kernel decided alone, at `ts_ns`).
    pub decided_ns: u64,
}

/// The kernel flagged a process an AI workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Time.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// `policy::rules::ai_bits`.
    pub bits: u8,
    /// The file name that did it (last component).
    pub name: Vec<u8>,
}

/// A new image held at exec for identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldExec {
    /// Time.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// The image's identity.
    pub obj: ai_forensics_common::ObjKey,
    /// Its size.
    pub size: u64,
}

/// A CUDA call seen by a uprobe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuCall {
    /// Time.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Function id (`ai::gpu::FUNCTIONS`).
    pub func: u32,
    /// Bytes.
    pub size: u64,
    /// Device pointer.
    pub ptr: u64,
    /// Return value.
    pub ret: i64,
}

/// Plaintext of one TLS library call, or one piece of it (a call's data
/// comes in records of up to `tls::CHUNK` bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsChunk {
    /// Time the call returned.
    pub ts_ns: u64,
    /// Process.
    pub tgid: u32,
    /// Thread.
    pub tid: u32,
    /// Tree.
    pub tree: u32,
    /// The connection object's address in the process.
    pub conn: u64,
    /// Time the call was entered.
    pub entry_ns: u64,
    /// Bytes the call transferred.
    pub total: u64,
    /// Offset of `data` in the call's data.
    pub offset: u32,
    /// Function id (`ai_forensics_common::tls`).
    pub func: u16,
    /// `ai_forensics_common::tls` flags.
    pub flags: u16,
    /// The plaintext (untrusted).
    pub data: Vec<u8>,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A CUDA call.
    Gpu(GpuCall),
    /// TLS plaintext.
    Tls(TlsChunk),
    /// An io_uring operation completed.
    Uring(uring::Uring),
    /// An in-kernel deny rule fired.
    Denied(Denied),
    /// A process became an AI workload.
    Mark(Mark),
    /// A new image is held at exec.
    Held(HeldExec),
    /// A traced syscall.
    Syscall(Syscall),
    /// A gap in the stream.
    Lost(Lost),
    /// A target created a task.
    Fork(Fork),
    /// A target executed a program.
    Exec(Exec),
    /// A target task exited.
    Exit(Exit),
    /// Any process executed a program (watch mode).
    WatchExec(Exec),
    /// A non-target opened a file (discover mode).
    WatchOpen(Syscall),
}

impl Record {
    /// Monotonic timestamp.
    #[must_use]
    pub fn ts_ns(&self) -> u64 {
        match self {
            Self::Syscall(s) | Self::WatchOpen(s) => s.ts_ns,
            Self::Lost(l) => l.ts_ns,
            Self::Fork(f) => f.ts_ns,
            Self::Exec(e) | Self::WatchExec(e) => e.ts_ns,
            Self::Exit(e) => e.ts_ns,
            Self::Denied(d) => d.ts_ns,
            Self::Mark(m) => m.ts_ns,
            Self::Held(h) => h.ts_ns,
            Self::Gpu(g) => g.ts_ns,
            Self::Tls(t) => t.ts_ns,
            Self::Uring(u) => u.ts_ns,
        }
    }
}

fn read<T: Copy>(bytes: &[u8], kind: u32) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
        });
    }
    // SAFETY: the length was checked; read_unaligned copes with any
    // alignment, and T is a plain-old-data wire type valid for every bit
    // pattern.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Bytes up to the first NUL.
#[must_use]
pub fn cstr(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    bytes[..end].to_vec()
}

/// Decodes one ring-buffer record.
pub fn record(bytes: &[u8]) -> Result<Record, DecodeError> {
    let hdr: Header = read(bytes, 0)?;
    match hdr.kind {
        kind::SYSCALL | kind::SYSCALL_ENTER | kind::WATCH_OPEN => {
            let s = syscall(bytes, &hdr)?;
            Ok(if hdr.kind == kind::WATCH_OPEN {
                Record::WatchOpen(s)
            } else {
                Record::Syscall(s)
            })
        }
        kind::LOST => {
            let l: LostEvent = read(bytes, hdr.kind)?;
            Ok(Record::Lost(Lost {
                ts_ns: hdr.ts_ns,
                cpu: hdr.cpu,
                tgid: hdr.tgid,
                tid: hdr.tid,
                count: l.count,
                first_ts_ns: l.first_ts_ns,
                last_ts_ns: l.last_ts_ns,
            }))
        }
        kind::PROC_FORK => {
            let f: ForkEvent = read(bytes, hdr.kind)?;
            Ok(Record::Fork(Fork {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                child_tid: f.child_tid,
                child_tgid: f.child_tgid,
                tree: f.tree,
                child_gen: f.child_gen,
                comm: cstr(&f.comm),
            }))
        }
        kind::PROC_EXEC | kind::WATCH_EXEC => {
            let e: ExecEvent = read(bytes, hdr.kind)?;
            let n = (e.filename_len as usize).min(e.filename.len());
            let exec = Exec {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                old_tid: e.old_tid,
                tree: e.tree,
                comm: cstr(&e.comm),
                filename: e.filename[..n].to_vec(),
                truncated: e.truncated != 0,
            };
            Ok(if hdr.kind == kind::WATCH_EXEC {
                Record::WatchExec(exec)
            } else {
                Record::Exec(exec)
            })
        }
        kind::PROC_EXIT => {
            let e: ExitEvent = read(bytes, hdr.kind)?;
            Ok(Record::Exit(Exit {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                tree: e.tree,
                group_dead: e.group_dead != 0,
                comm: cstr(&e.comm),
            }))
        }
        kind::GPU => {
            let g: ai_forensics_common::GpuEvent = read(bytes, hdr.kind)?;
            Ok(Record::Gpu(GpuCall {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                func: g.func,
                size: g.size,
                ptr: g.ptr,
                ret: g.ret,
            }))
        }
        kind::DENIED => {
            let d: ai_forensics_common::DeniedEvent = read(bytes, hdr.kind)?;
            let n = (d.path_len as usize).min(d.path.len());
            Ok(Record::Denied(Denied {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                nr: d.nr,
                rule: d.rule,
                signal: d.signal,
                tree: d.tree,
                comm: cstr(&d.comm),
                path: d.path[..n].to_vec(),
                how: d.how,
                obj: ai_forensics_common::ObjKey {
                    dev: d.dev,
                    ino: d.ino,
                },
                copy_of: None,
                decided_ns: 0,
            }))
        }
        kind::AI_MARK => {
            let m: ai_forensics_common::MarkEvent = read(bytes, hdr.kind)?;
            let n = (m.name_len as usize).min(m.name.len());
            Ok(Record::Mark(Mark {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                tree: m.tree,
                bits: (m.flag & 3) as u8,
                name: cstr(&m.name[..n]),
            }))
        }
        kind::EXEC_HELD => {
            let h: ai_forensics_common::HeldEvent = read(bytes, hdr.kind)?;
            Ok(Record::Held(HeldExec {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                tree: h.tree,
                obj: h.obj,
                size: h.size,
            }))
        }
        kind::URING => {
            let u: ai_forensics_common::UringEvent = read(bytes, hdr.kind)?;
            let n = (u.str_len as usize).min(u.str.len());
            Ok(Record::Uring(uring::Uring {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                tree: u.tree,
                opcode: u.opcode,
                res: u.res,
                flags: u.flags,
                user_data: u.user_data,
                duration_ns: u.duration_ns,
                str: u.str[..n].to_vec(),
            }))
        }
        kind::TLS => {
            let t: ai_forensics_common::TlsEvent = read(bytes, hdr.kind)?;
            let data = &bytes[size_of::<ai_forensics_common::TlsEvent>()..];
            let n = (t.len as usize).min(data.len());
            Ok(Record::Tls(TlsChunk {
                ts_ns: hdr.ts_ns,
                tgid: hdr.tgid,
                tid: hdr.tid,
                tree: t.tree,
                conn: t.conn,
                entry_ns: t.entry_ns,
                total: t.total,
                offset: t.offset,
                func: t.func,
                flags: t.flags,
                data: data[..n].to_vec(),
            }))
        }
        k => Err(DecodeError::UnknownKind(k)),
    }
}

fn syscall(bytes: &[u8], hdr: &Header) -> Result<Syscall, DecodeError> {
    let e: SyscallEvent = read(bytes, hdr.kind)?;
    let payload = &bytes[size_of::<SyscallEvent>()..];
    let (bl, l0, l1) = (
        e.blob_len as usize,
        e.str0_len as usize,
        e.str1_len as usize,
    );
    let total = bl
        .checked_add(l0)
        .and_then(|t| t.checked_add(l1))
        .ok_or(DecodeError::BadPayload)?;
    if total > payload.len() {
        return Err(DecodeError::BadPayload);
    }
    let blob = payload[..bl].to_vec();
    let s0 = &payload[bl..bl + l0];
    let s1 = &payload[bl + l0..bl + l0 + l1];
    let has_str0 = l0 > 0 || e.flags & (ev::STR0_TRUNC | ev::STR0_PRESENT) != 0;
    let has_str1 = l1 > 0 || e.flags & (ev::STR1_TRUNC | ev::STR1_ARGV | ev::STR1_PRESENT) != 0;
    Ok(Syscall {
        at_entry: hdr.kind == kind::SYSCALL_ENTER,
        ts_ns: hdr.ts_ns,
        cpu: hdr.cpu,
        tgid: hdr.tgid,
        tid: hdr.tid,
        nr: e.nr,
        tree: e.tree,
        ret: e.ret,
        duration_ns: (e.duration_ns != UNTIMED).then_some(e.duration_ns),
        args: e.args,
        comm: cstr(&e.comm),
        flags: e.flags,
        blob,
        str0: has_str0.then(|| s0.to_vec()),
        str1: has_str1.then(|| s1.to_vec()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a plain wire struct; viewing it as bytes is sound.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    pub(crate) fn syscall_bytes(
        nr: u32,
        ret: i64,
        args: [u64; 6],
        blob: &[u8],
        s0: &[u8],
        s1: &[u8],
        flags: u32,
    ) -> Vec<u8> {
        let e = SyscallEvent {
            hdr: Header {
                kind: kind::SYSCALL,
                cpu: 1,
                ts_ns: 1000,
                tgid: 42,
                tid: 43,
            },
            nr,
            tree: 1,
            ret,
            duration_ns: 250,
            args,
            comm: *b"python3\0\0\0\0\0\0\0\0\0",
            flags,
            blob_len: blob.len() as u32,
            str0_len: s0.len() as u32,
            str1_len: s1.len() as u32,
        };
        let mut b = bytes_of(&e);
        b.extend_from_slice(blob);
        b.extend_from_slice(s0);
        b.extend_from_slice(s1);
        b
    }

    #[test]
    fn syscall_with_payload() {
        let b = syscall_bytes(257, 3, [0; 6], b"", b"/tmp/x", b"", 0);
        let Record::Syscall(s) = record(&b).unwrap() else {
            panic!()
        };
        assert_eq!(s.str0.as_deref(), Some(&b"/tmp/x"[..]));
        assert_eq!(s.str1, None);
        assert_eq!(
            (s.tgid, s.tid, s.nr, s.ret, s.duration_ns),
            (42, 43, 257, 3, Some(250))
        );
        assert_eq!(s.comm, b"python3");
        assert_eq!(s.errno(), None);
    }

    #[test]
    fn errors_and_argv() {
        let b = syscall_bytes(
            59,
            -2,
            [0; 6],
            b"",
            b"/bin/sh",
            b"sh\0-c\0echo hi\0",
            ev::STR1_ARGV,
        );
        let Record::Syscall(s) = record(&b).unwrap() else {
            panic!()
        };
        assert_eq!(s.errno(), Some(2));
        assert_eq!(s.argv().unwrap(), vec![&b"sh"[..], b"-c", b"echo hi"]);
    }

    #[test]
    fn truncated_and_garbage_input() {
        assert_eq!(record(&[]), Err(DecodeError::Short { kind: 0, len: 0 }));
        let b = syscall_bytes(0, 0, [0; 6], b"", b"", b"", 0);
        assert!(matches!(record(&b[..100]), Err(DecodeError::Short { .. })));
        let mut bad = syscall_bytes(0, 0, [0; 6], b"", b"abc", b"", 0);
        bad.truncate(bad.len() - 1);
        assert_eq!(record(&bad), Err(DecodeError::BadPayload));
        let mut unknown = b.clone();
        unknown[0] = 99;
        assert_eq!(record(&unknown), Err(DecodeError::UnknownKind(99)));
        // Lengths that overflow when added.
        let mut huge = SyscallEvent::default();
        huge.hdr.kind = kind::SYSCALL;
        huge.blob_len = u32::MAX;
        huge.str0_len = u32::MAX;
        assert_eq!(record(&bytes_of(&huge)), Err(DecodeError::BadPayload));
    }

    #[test]
    fn lifecycle_records() {
        let f = ForkEvent {
            hdr: Header {
                kind: kind::PROC_FORK,
                cpu: 0,
                ts_ns: 5,
                tgid: 10,
                tid: 10,
            },
            child_tid: 11,
            child_tgid: 11,
            tree: 1,
            child_gen: 7,
            comm: *b"bash\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let Record::Fork(r) = record(&bytes_of(&f)).unwrap() else {
            panic!()
        };
        assert!(!r.is_thread());
        assert_eq!(r.child_gen, 7);
        assert_eq!(r.comm, b"bash");
        let l = LostEvent {
            hdr: Header {
                kind: kind::LOST,
                cpu: 1,
                ts_ns: 9,
                tgid: 1,
                tid: 1,
            },
            count: 7,
            first_ts_ns: 3,
            last_ts_ns: 8,
        };
        assert!(matches!(
            record(&bytes_of(&l)).unwrap(),
            Record::Lost(Lost { count: 7, .. })
        ));
    }
}
