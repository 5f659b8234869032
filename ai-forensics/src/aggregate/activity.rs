//! What the workload did, from the event stream: files (opens, bytes read
//! and written, bytes mapped), memory (heap break, mappings), futex waits,
//! and network endpoints. Pure: fed decoded syscalls and the fd tables.
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Value, json};

use crate::{
    decode::{Syscall, escape, flags, sockaddr},
    state::fds::FdTables,
    syscall::table,
};

/// Most distinct files and endpoints kept; the rest are summed under one key.
pub const MAX_KEYS: usize = 100_000;
/// Key under which overflowing files are summed.
pub const OTHER: &[u8] = b"(other files)";

/// Per-file counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Successful opens.
    pub opens: u64,
    /// Failed opens.
    pub open_errors: u64,
    /// Opens asking for write access.
    pub write_opens: u64,
    /// Read calls.
    pub reads: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
    /// Write calls.
    pub writes: u64,
    /// Bytes accepted by writes.
    pub bytes_written: u64,
    /// Bytes mapped with mmap.
    pub bytes_mapped: u64,
    /// First access.
    pub first_ns: u64,
    /// Last access.
    pub last_ns: u64,
}

/// Per-process memory counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Lowest program break seen (the heap's start).
    pub brk_start: Option<u64>,
    /// Highest program break seen.
    pub brk_max: u64,
    /// Current program break.
    pub brk_now: u64,
    /// Successful mmap calls.
    pub maps: u64,
    /// Bytes mapped in total.
    pub mapped_total: u64,
    /// Bytes unmapped in total.
    pub unmapped_total: u64,
    /// Largest mappings: (length, file, prot).
    pub largest: Vec<(u64, Option<Vec<u8>>, u64)>,
}

/// Futex counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FutexStats {
    /// futex calls.
    pub calls: u64,
    /// Wait operations.
    pub waits: u64,
    /// Time spent in wait operations.
    pub wait_ns: u64,
    /// Waits that timed out.
    pub timeouts: u64,
    /// Wake operations.
    pub wakes: u64,
}

/// Per-endpoint counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// connect calls.
    pub connects: u64,
    /// bind calls.
    pub binds: u64,
    /// Accepted connections (by peer).
    pub accepts: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// Everything derived from events.
#[derive(Debug, Default)]
pub struct Activity {
    /// By path (raw bytes).
    pub files: BTreeMap<Vec<u8>, FileStats>,
    /// By process id.
    pub memory: BTreeMap<u32, MemStats>,
    /// All futex calls.
    pub futex: FutexStats,
    /// By endpoint text.
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// Files or endpoints summed under the overflow key, and processes
    /// whose memory counters were dropped by the bound.
    pub overflowed: u64,
    /// Processes with memory counters that exited, oldest first, with the
    /// number of their exit: the first to be dropped when the table is full.
    exited: VecDeque<(u32, u64)>,
    /// Pids whose counters belong to an exited process, with the number of
    /// that exit (a queue entry for a pid reused since no longer matches).
    gone: HashMap<u32, u64>,
    /// Exits seen, to number them.
    exits: u64,
}

const LARGEST: usize = 5;
/// Processes with memory counters.
const MAX_MEMORY_PROCS: usize = 16_384;

impl Activity {
    fn file(&mut self, path: &[u8], ts: u64) -> &mut FileStats {
        let key = if self.files.len() >= MAX_KEYS && !self.files.contains_key(path) {
            self.overflowed += 1;
            OTHER.to_vec()
        } else {
            path.to_vec()
        };
        let f = self.files.entry(key).or_default();
        if f.first_ns == 0 {
            f.first_ns = ts;
        }
        f.last_ns = ts;
        f
    }

    /// The memory counters of `pid`. When the table is full the process
    /// that exited first makes room; with every process alive, the new one
    /// is not counted (`overflowed`).
    fn mem(&mut self, pid: u32) -> Option<&mut MemStats> {
        while self.memory.len() >= MAX_MEMORY_PROCS && !self.memory.contains_key(&pid) {
            let Some((old, n)) = self.exited.pop_front() else {
                self.overflowed += 1;
                return None;
            };
            if self.gone.get(&old) == Some(&n) {
                self.gone.remove(&old);
                self.memory.remove(&old);
                self.overflowed += 1;
            }
        }
        Some(self.memory.entry(pid).or_default())
    }

    /// The process table let `pid` go: so do its memory counters.
    pub fn forget(&mut self, pid: u32) {
        self.memory.remove(&pid);
        self.gone.remove(&pid);
    }

    /// A new process got `pid`: counters left by an exited process that had
    /// it are not carried over to it.
    pub fn born(&mut self, pid: u32) {
        if self.gone.remove(&pid).is_some() {
            self.memory.remove(&pid);
        }
    }

    /// A process exited: its memory counters stay for the summary, first in
    /// line to be dropped when the table is full.
    pub fn exited(&mut self, pid: u32) {
        if self.memory.contains_key(&pid) {
            self.exits += 1;
            self.gone.insert(pid, self.exits);
            self.exited.push_back((pid, self.exits));
            if self.exited.len() > MAX_MEMORY_PROCS
                && let Some((old, n)) = self.exited.pop_front()
                && self.gone.get(&old) == Some(&n)
            {
                // Past the queue's bound the oldest exit goes now.
                self.gone.remove(&old);
                self.memory.remove(&old);
                self.overflowed += 1;
            }
        }
    }

    fn endpoint(&mut self, ep: String) -> &mut EndpointStats {
        let key = if self.endpoints.len() >= MAX_KEYS && !self.endpoints.contains_key(&ep) {
            self.overflowed += 1;
            "(other endpoints)".to_owned()
        } else {
            ep
        };
        self.endpoints.entry(key).or_default()
    }

    /// Accounts one syscall. Call before the fd tables apply it (so `close`
    /// and friends still name their fd).
    pub fn apply(&mut self, s: &Syscall, fds: &FdTables) {
        if s.at_entry {
            return;
        }
        let Some(name) = table::name(s.nr) else {
            return;
        };
        let a = &s.args;
        let fd0 = i64::from(a[0] as u32 as i32);
        let ok = s.ret >= 0;
        match name {
            "open" | "openat" | "openat2" | "creat" => {
                if let Some(p) = s.str0.clone() {
                    let fl = match name {
                        "open" => a[1],
                        "openat" => a[2],
                        "creat" => libc::O_WRONLY as u64,
                        _ => 0,
                    };
                    let f = self.file(&p, s.ts_ns);
                    if ok {
                        f.opens += 1;
                        if flags::open_writes(fl) {
                            f.write_opens += 1;
                        }
                    } else {
                        f.open_errors += 1;
                    }
                }
            }
            "read" | "pread64" | "readv" | "preadv" | "preadv2" | "recvfrom" | "recvmsg" if ok => {
                self.io(fds, s, fd0, s.ret as u64, false);
            }
            "sendto" if ok && !s.blob.is_empty() => {
                // Unconnected datagram: the destination is the argument.
                match sockaddr::parse(&s.blob).and_then(|x| x.endpoint()) {
                    Some(ep) => self.endpoint(ep).bytes_sent += s.ret as u64,
                    None => self.io(fds, s, fd0, s.ret as u64, true),
                }
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendto" | "sendmsg"
                if ok =>
            {
                self.io(fds, s, fd0, s.ret as u64, true);
            }
            "connect" | "bind" => {
                if let Some(ep) = sockaddr::parse(&s.blob).and_then(|x| x.endpoint()) {
                    let e = self.endpoint(ep);
                    if name == "connect" {
                        e.connects += 1
                    } else {
                        e.binds += 1
                    }
                }
            }
            "accept" | "accept4" if ok => {
                if let Some(ep) = sockaddr::parse(&s.blob).and_then(|x| x.endpoint()) {
                    self.endpoint(ep).accepts += 1;
                }
            }
            "mmap" if ok => {
                let len = a[1];
                let file = if flags::map_anonymous(a[3]) {
                    None
                } else {
                    fds.get(s.tgid, i64::from(a[4] as u32 as i32))
                        .filter(|e| e.is_path)
                        .map(|e| e.name.clone())
                };
                if let Some(p) = &file {
                    self.file(p, s.ts_ns).bytes_mapped += len;
                }
                if let Some(m) = self.mem(s.tgid) {
                    m.maps += 1;
                    m.mapped_total += len;
                    m.largest.push((len, file, a[2]));
                    m.largest.sort_by_key(|x| std::cmp::Reverse(x.0));
                    m.largest.truncate(LARGEST);
                }
            }
            "munmap" if ok => {
                if let Some(m) = self.mem(s.tgid) {
                    m.unmapped_total += a[1];
                }
            }
            "brk" => {
                let now = s.ret as u64;
                if now != 0
                    && let Some(m) = self.mem(s.tgid)
                {
                    m.brk_start = Some(m.brk_start.map_or(now, |b| b.min(now)));
                    m.brk_max = m.brk_max.max(now);
                    m.brk_now = now;
                }
            }
            "futex" => {
                self.futex.calls += 1;
                if flags::futex_waits(a[1]) {
                    self.futex.waits += 1;
                    self.futex.wait_ns += s.duration_ns.unwrap_or(0);
                    if s.ret == -i64::from(libc::ETIMEDOUT) {
                        self.futex.timeouts += 1;
                    }
                } else if a[1] & 0x7f == 1 || a[1] & 0x7f == 10 {
                    self.futex.wakes += 1;
                }
            }
            _ => {}
        }
    }

    fn io(&mut self, fds: &FdTables, s: &Syscall, fd: i64, n: u64, write: bool) {
        let Some(e) = fds.get(s.tgid, fd) else {
            return;
        };
        if e.is_path {
            let name = e.name.clone();
            let f = self.file(&name, s.ts_ns);
            if write {
                f.writes += 1;
                f.bytes_written += n;
            } else {
                f.reads += 1;
                f.bytes_read += n;
            }
        } else if e.name.starts_with(b"socket:") {
            let ep = String::from_utf8_lossy(&e.name).into_owned();
            let st = self.endpoint(ep);
            if write {
                st.bytes_sent += n;
            } else {
                st.bytes_received += n;
            }
        }
    }

    /// Peak heap (break above its start) of a process.
    #[must_use]
    pub fn peak_heap(m: &MemStats) -> u64 {
        m.brk_start.map_or(0, |s| m.brk_max.saturating_sub(s))
    }

    /// JSON summary of the activity.
    #[must_use]
    pub fn json(&self, top: usize) -> Value {
        let mut files: Vec<(&Vec<u8>, &FileStats)> = self.files.iter().collect();
        files.sort_by(|a, b| {
            (b.1.bytes_read + b.1.bytes_written + b.1.bytes_mapped)
                .cmp(&(a.1.bytes_read + a.1.bytes_written + a.1.bytes_mapped))
                .then(b.1.opens.cmp(&a.1.opens))
        });
        let files: Vec<Value> = files
            .iter()
            .take(top)
            .map(|(p, f)| {
                json!({"path": escape::escape(p), "opens": f.opens, "open_errors": f.open_errors,
                       "reads": f.reads, "bytes_read": f.bytes_read, "writes": f.writes,
                       "bytes_written": f.bytes_written, "bytes_mapped": f.bytes_mapped,
                       "first_ns": f.first_ns, "last_ns": f.last_ns})
            })
            .collect();
        let memory: Vec<Value> = self
            .memory
            .iter()
            .map(|(pid, m)| {
                json!({"pid": pid, "peak_heap_bytes": Self::peak_heap(m), "maps": m.maps,
                       "mapped_bytes": m.mapped_total, "unmapped_bytes": m.unmapped_total,
                       "largest_maps": m.largest.iter().map(|(len, f, prot)| json!({
                           "length": len, "file": f.as_deref().map(escape::escape), "prot": flags::prot(*prot)
                       })).collect::<Vec<_>>()})
            })
            .collect();
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .map(|(k, e)| json!({"endpoint": k, "connects": e.connects, "binds": e.binds, "accepts": e.accepts,
                                 "bytes_sent": e.bytes_sent, "bytes_received": e.bytes_received}))
            .collect();
        json!({
            "files": files,
            "files_total": self.files.len(),
            "memory": memory,
            "futex": {"calls": self.futex.calls, "waits": self.futex.waits, "wait_ns": self.futex.wait_ns,
                      "timeouts": self.futex.timeouts, "wakes": self.futex.wakes},
            "endpoints": endpoints,
            "overflowed": self.overflowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Record, record, tests::syscall_bytes};

    fn sys(name: &str, ret: i64, args: [u64; 6], s0: &[u8]) -> Syscall {
        let nr = table::number(name).unwrap();
        let Record::Syscall(s) = record(&syscall_bytes(nr, ret, args, b"", s0, b"", 0)).unwrap()
        else {
            panic!()
        };
        s
    }

    /// Memory counters of exited processes make room for new ones, oldest
    /// exit first; with everyone alive the table stops growing and counts.
    #[test]
    fn memory_table_is_bounded() {
        let fds = FdTables::default();
        let mut a = Activity::default();
        let brk = |pid: u32| {
            let mut s = sys("brk", 0x5000, [0; 6], b"");
            s.tgid = pid;
            s.tid = pid;
            s
        };
        for pid in 1..=MAX_MEMORY_PROCS as u32 {
            a.apply(&brk(pid), &fds);
            a.exited(pid);
        }
        a.apply(&brk(1_000_000), &fds);
        assert_eq!(a.memory.len(), MAX_MEMORY_PROCS);
        assert!(!a.memory.contains_key(&1) && a.memory.contains_key(&2));
        assert!(a.memory.contains_key(&1_000_000));
        assert_eq!(a.overflowed, 1);
    }

    /// A pid reused by a new process starts from zero, and the old exit
    /// queued for it does not take the new process's counters.
    #[test]
    fn a_reused_pid_keeps_its_own_memory_counters() {
        let fds = FdTables::default();
        let mut a = Activity::default();
        let mmap = |pid: u32| {
            let mut s = sys("mmap", 0x7000, [0, 4096, 1, 2, 3, 0], b"");
            s.tgid = pid;
            s.tid = pid;
            s
        };
        a.apply(&mmap(7), &fds);
        a.apply(&mmap(7), &fds);
        a.exited(7);
        a.born(7);
        a.apply(&mmap(7), &fds);
        assert_eq!(a.memory[&7].maps, 1, "the old process's maps carried over");
        // Fill the table with exited processes: the live pid 7 stays.
        for pid in 100..100 + MAX_MEMORY_PROCS as u32 {
            a.apply(&mmap(pid), &fds);
            a.exited(pid);
        }
        assert_eq!(a.memory[&7].maps, 1);
        assert!(a.memory.len() <= MAX_MEMORY_PROCS);
    }

    #[test]
    fn files_memory_futex() {
        let mut fds = FdTables::default();
        let mut a = Activity::default();
        let open = sys(
            "openat",
            3,
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            b"/m/model.pt",
        );
        a.apply(&open, &fds);
        fds.apply(&open);
        a.apply(&sys("read", 4096, [3, 0, 4096, 0, 0, 0], b""), &fds);
        a.apply(&sys("read", 100, [3, 0, 4096, 0, 0, 0], b""), &fds);
        a.apply(&sys("mmap", 0x7000, [0, 8192, 1, 2, 3, 0], b""), &fds);
        let f = &a.files[&b"/m/model.pt".to_vec()];
        assert_eq!(
            (f.opens, f.reads, f.bytes_read, f.bytes_mapped),
            (1, 2, 4196, 8192)
        );
        a.apply(&sys("brk", 0x1000, [0, 0, 0, 0, 0, 0], b""), &fds);
        a.apply(&sys("brk", 0x5000, [0x5000, 0, 0, 0, 0, 0], b""), &fds);
        a.apply(&sys("brk", 0x3000, [0x3000, 0, 0, 0, 0, 0], b""), &fds);
        assert_eq!(Activity::peak_heap(&a.memory[&42]), 0x4000);
        a.apply(&sys("futex", 0, [0x10, 128, 0, 0, 0, 0], b""), &fds);
        a.apply(&sys("futex", 1, [0x10, 129, 1, 0, 0, 0], b""), &fds);
        assert_eq!(
            (a.futex.calls, a.futex.waits, a.futex.wakes, a.futex.wait_ns),
            (2, 1, 1, 250)
        );
        let j = a.json(10);
        assert_eq!(j["files"][0]["bytes_read"], 4196);
    }
}
