//! Wire types shared by the ai-forensics eBPF programs and user space.
//!
//! Everything here is `#[repr(C)]`, `Copy`, fixed-size and free of implicit
//! padding, so the kernel side can write it into maps and the ring buffer and
//! user space can read it back with `read_unaligned`. Layouts are checked at
//! compile time at the bottom of this file.
//!
//! Event kinds and drop causes are stable numbers: records outlive releases,
//! so a number is never reused for another meaning.
#![no_std]

/// Names of the maps, used by both sides.
pub mod maps {
    /// `RingBuf`: every streamed record, in one global order.
    pub const EVENTS: &str = "EVENTS";
    /// `Array<u64>` indexed by TGID: non-zero when the process is a target.
    pub const TARGETS: &str = "TARGETS";
    /// `HashMap<u32 tid, Inflight>`: syscalls entered and not yet returned
    /// whose thread was switched out in between (see [`Slot`](crate::Slot)).
    pub const INFLIGHT: &str = "INFLIGHT";
    /// `PerCpuArray<Slot>`: the syscall the thread running on this CPU is in.
    pub const SLOT: &str = "SLOT";
    /// `PerCpuArray<SyscallStat>` indexed by syscall number.
    pub const STATS: &str = "STATS";
    /// `PerCpuHashMap<ProcKey, ProcStat>`: per-thread counts (opt-in).
    pub const PROC_STATS: &str = "PROC_STATS";
    /// `Array<SyscallSpec>` indexed by syscall number: what to capture.
    pub const SPECS: &str = "SPECS";
    /// `PerCpuArray<u64>` indexed by [`drop`](crate::drop) cause.
    pub const DROPS: &str = "DROPS";
    /// `PerCpuArray<LossPending>`: events lost since the last one delivered.
    pub const LOSS: &str = "LOSS";
    /// `PerCpuArray<u64>` indexed by tree id: events lost per target tree.
    pub const LOST_BY_TREE: &str = "LOST_BY_TREE";
    /// `HashMap<u64 cgroup id, u32 tree>`: cgroups whose members are targets.
    pub const CGROUPS: &str = "CGROUPS";
    /// `PerCpuArray<Scratch>`: room to build variable-sized records.
    pub const SCRATCH: &str = "SCRATCH";
    /// `Array<DenyRule>`: in-kernel deny rules.
    pub const DENY: &str = "DENY";
    /// `PerCpuArray<u32>`: each CPU's fork sequence number, for the
    /// generations of forked processes ([`target::fork_generation`]).
    ///
    /// [`target::fork_generation`]: crate::target::fork_generation
    pub const FORK_SEQ: &str = "FORK_SEQ";
    /// `HashMap<ObjKey, ObjDeny>`: files denied by identity (device and
    /// inode), checked on the descriptor the open family returns.
    pub const DENY_FILES: &str = "DENY_FILES";
    /// `HashMap<ObjKey, ObjDeny>`: executables denied by identity, checked
    /// on the new image at exec.
    pub const DENY_EXES: &str = "DENY_EXES";
    /// `HashMap<u64 size, u32>`: sizes of denied executables; a new image of
    /// one of these sizes that is not known yet is held until user space has
    /// compared its content.
    pub const EXE_SIZES: &str = "EXE_SIZES";
    /// `LruHashMap<ObjKey, u32>`: executables user space compared and let go.
    pub const EXE_CLEARED: &str = "EXE_CLEARED";
    /// `Array<AiMarker>`: file names that make a process an AI workload.
    pub const AI_MARKERS: &str = "AI_MARKERS";
    /// Per-CPU io_uring operation counts by opcode.
    pub const URING_STATS: &str = "URING_STATS";
    /// `LruHashMap<u32 tid, TlsPending>`: TLS library calls in progress.
    pub const TLS_PENDING: &str = "TLS_PENDING";
}

/// Name of the read-only configuration global in the eBPF object.
pub const CONFIG_GLOBAL: &str = "CONFIG";

/// Size of the syscall-number-indexed tables (x86_64 and aarch64 both stay below it).
pub const MAX_SYSCALLS: u32 = 512;
/// Latency histogram buckets: four per power of two, from 1 ns up; the last
/// bucket takes everything above about 4.3 s.
pub const HIST_BUCKETS: usize = 128;
/// Longest string (path, joined argv) captured from user memory, NUL included.
pub const STR_MAX: usize = 4096;
/// Largest binary argument (socket address, clone_args, pipe fds) captured.
pub const BLOB_MAX: usize = 128;
/// Most execve arguments captured.
pub const ARGV_MAX_ARGS: u32 = 32;
/// Size of the per-CPU scratch payload area.
pub const PAYLOAD_MAX: usize = 16384;
/// Most distinct target trees (tree ids are 1..MAX_TREES).
pub const MAX_TREES: u32 = 256;
/// Marker for "no argument" in a [`SyscallSpec`].
pub const NO_ARG: u8 = 0xff;
/// `duration_ns` of a syscall whose entry was not seen.
pub const UNTIMED: u64 = u64::MAX;

/// Record kinds on the ring buffer (stable numbers, grouped in ranges).
pub mod kind {
    /// A completed syscall ([`SyscallEvent`](crate::SyscallEvent) + payload).
    pub const SYSCALL: u32 = 1;
    /// Recorded at syscall entry: execve arguments, exit_group.
    pub const SYSCALL_ENTER: u32 = 2;
    /// Events were lost just before this point ([`LostEvent`](crate::LostEvent)).
    pub const LOST: u32 = 16;
    /// A target created a task ([`ForkEvent`](crate::ForkEvent)).
    pub const PROC_FORK: u32 = 32;
    /// A target executed a program ([`ExecEvent`](crate::ExecEvent)).
    pub const PROC_EXEC: u32 = 33;
    /// A target task exited ([`ExitEvent`](crate::ExitEvent)).
    pub const PROC_EXIT: u32 = 34;
    /// A deny rule stopped a syscall at entry ([`DeniedEvent`](crate::DeniedEvent)).
    pub const DENIED: u32 = 48;
    /// A CUDA call seen by a uprobe ([`GpuEvent`](crate::GpuEvent)).
    pub const GPU: u32 = 50;
    /// A process opened a file whose name marks it an AI workload
    /// ([`MarkEvent`](crate::MarkEvent)).
    pub const AI_MARK: u32 = 51;
    /// A new image was held at exec for user space to identify
    /// ([`HeldEvent`](crate::HeldEvent)).
    pub const EXEC_HELD: u32 = 52;
    /// An io_uring operation of a target completed
    /// ([`UringEvent`](crate::UringEvent)).
    pub const URING: u32 = 53;
    /// Plaintext a target passed through a TLS library call
    /// ([`TlsEvent`](crate::TlsEvent) + data).
    pub const TLS: u32 = 54;
    /// Any process executed a program (watch mode: `--comm`, `--exe`, `--discover`).
    pub const WATCH_EXEC: u32 = 40;
    /// A non-target opened a file (discover mode; [`SyscallEvent`](crate::SyscallEvent) + path).
    pub const WATCH_OPEN: u32 = 41;
}

/// Causes of loss counted in the `DROPS` map (stable indices).
pub mod drop {
    /// The ring buffer was full: a record was not delivered.
    pub const RINGBUF_FULL: u32 = 0;
    /// The in-flight table was full: a syscall could not be timed or decoded.
    pub const INFLIGHT_FULL: u32 = 1;
    /// The per-thread statistics table was full.
    pub const PROC_STATS_FULL: u32 = 2;
    /// A new process had a PID beyond the target table.
    pub const TARGETS_RANGE: u32 = 3;
    /// Watch-mode records lost because the ring buffer was full.
    pub const WATCH_RINGBUF_FULL: u32 = 4;
    /// Number of slots.
    pub const COUNT: u32 = 8;
}

/// Flags in [`Config::flags`].
pub mod config {
    /// Every process except ai-forensics itself is a target.
    pub const ALL: u32 = 1 << 0;
    /// Time every syscall (enter/exit pairing) for latency statistics.
    pub const TIMING: u32 = 1 << 1;
    /// Keep per-thread syscall counts in `PROC_STATS`.
    pub const PER_PROC: u32 = 1 << 2;
    /// Processes in a cgroup listed in `CGROUPS` become targets.
    pub const CGROUP: u32 = 1 << 3;
    /// Report execs of every process (for `--comm`/`--exe`/`--discover`).
    pub const WATCH_EXEC: u32 = 1 << 4;
    /// Report files opened by every process (for `--discover`).
    pub const WATCH_OPEN: u32 = 1 << 5;
    /// Stream events for the syscalls flagged in `SPECS`.
    pub const EVENTS: u32 = 1 << 6;
    /// Check the `DENY` rules at exec/open entry.
    pub const DENY: u32 = 1 << 7;
    /// Files are denied by identity at the open family's exit.
    pub const DENY_FILES: u32 = 1 << 8;
    /// Executables are denied by identity at exec.
    pub const DENY_EXES: u32 = 1 << 9;
    /// Processes that open an AI marker file are flagged AI workloads.
    pub const AI_MARK: u32 = 1 << 10;
    /// The io_uring tracepoints are attached: count targets' operations.
    pub const URING: u32 = 1 << 11;
    /// Count mode with one syscall program: every call is counted at its
    /// exit (number from the saved registers, error from the return value);
    /// `sys_enter` is not attached; `exit`/`exit_group` are counted when the
    /// task exits.
    pub const EXIT_COUNT: u32 = 1 << 12;
}

/// Flags in [`SyscallSpec::flags`].
pub mod spec {
    /// Stream a record when this syscall returns.
    pub const EVENT: u32 = 1 << 0;
    /// Stream a record at entry (execve's arguments, exit_group).
    pub const ENTER_EVENT: u32 = 1 << 1;
    /// `blob_len_arg` is a pointer to the length (accept's `socklen_t *`), read at exit.
    pub const BLOB_LEN_PTR: u32 = 1 << 2;
    /// The syscall never returns on success (exit, exit_group).
    pub const NO_RETURN: u32 = 1 << 3;
    /// Capture the blob only when the call succeeded (output buffers).
    pub const BLOB_ON_SUCCESS: u32 = 1 << 4;
    /// Report successful calls of non-targets in watch mode (the open family).
    pub const WATCH: u32 = 1 << 5;
    /// Check the exec deny rules against `str0_arg` at entry.
    pub const DENY_EXEC: u32 = 1 << 6;
    /// Check the open deny rules against `str0_arg` at entry.
    pub const DENY_OPEN: u32 = 1 << 7;
    /// The call returns a new descriptor of a file (the open family,
    /// open_by_handle_at, pidfd_getfd): identity checks run at its exit.
    pub const FD_OPEN: u32 = 1 << 8;
    /// `blob_arg` points to a `struct msghdr`: the blob is the socket
    /// address its `msg_name` points to (`msg_namelen` bytes).
    pub const BLOB_MSGHDR: u32 = 1 << 9;
    /// A successful call returns a descriptor whose path the kernel
    /// resolved: `str1` is that path, walked from its dentry and mount up
    /// to the root (the open family, with identity checks loaded).
    pub const RESOLVE: u32 = 1 << 10;
}

/// Flags in [`SyscallEvent::flags`].
pub mod ev {
    /// `str0` was cut at [`STR_MAX`](crate::STR_MAX).
    pub const STR0_TRUNC: u32 = 1 << 0;
    /// `str1` was cut at [`STR_MAX`](crate::STR_MAX) or argv had more than [`ARGV_MAX_ARGS`](crate::ARGV_MAX_ARGS).
    pub const STR1_TRUNC: u32 = 1 << 1;
    /// Reading a string or blob from user memory failed.
    pub const READ_FAULT: u32 = 1 << 2;
    /// `str1` holds NUL-separated argv strings.
    pub const STR1_ARGV: u32 = 1 << 3;
    /// The blob was cut at [`BLOB_MAX`](crate::BLOB_MAX).
    pub const BLOB_TRUNC: u32 = 1 << 4;
    /// `str0` was read (it may be empty).
    pub const STR0_PRESENT: u32 = 1 << 5;
    /// `str1` was read (it may be empty).
    pub const STR1_PRESENT: u32 = 1 << 6;
    /// `str1` is the path the kernel resolved for the returned descriptor.
    pub const STR1_RESOLVED: u32 = 1 << 7;
}

/// Load-time configuration, a read-only global in the eBPF object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// [`config`] flags.
    pub flags: u32,
    /// TGID of ai-forensics itself: never traced.
    pub self_tgid: u32,
    /// Size of the `TARGETS` table (the kernel's pid_max).
    pub pid_max: u32,
    /// Offset of `group_dead` in the `sched_process_exit` record, 0 if absent.
    pub exit_group_dead_off: u32,
    /// Offset of `pid` in `struct task_struct`.
    pub task_pid_off: u32,
    /// Offset of `tgid` in `struct task_struct`.
    pub task_tgid_off: u32,
    /// Number of execve on this architecture.
    pub execve_nr: u32,
    /// Number of execveat on this architecture.
    pub execveat_nr: u32,
    /// Numbers of the calls that count mode at exit treats specially.
    pub nr: CallNrs,
    /// Kernel structure offsets from BTF (0 when not needed).
    pub off: Offsets,
    /// Where the io_uring tracepoints and requests keep what is read.
    pub uring: UringOffsets,
}

/// Syscall numbers on this architecture (`u32::MAX` where it has none) of
/// the calls that do not return normally: `exit` and `exit_group` never
/// reach the exit hook, `rt_sigreturn` clears the saved number, and a new
/// task's first return from the fork family is the parent's call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallNrs {
    pub exit: u32,
    pub exit_group: u32,
    pub rt_sigreturn: u32,
    pub clone: u32,
    pub clone3: u32,
    pub fork: u32,
    pub vfork: u32,
    pub _pad: u32,
}

impl CallNrs {
    /// None known.
    pub const NONE: Self = Self {
        exit: u32::MAX,
        exit_group: u32::MAX,
        rt_sigreturn: u32::MAX,
        clone: u32::MAX,
        clone3: u32::MAX,
        fork: u32::MAX,
        vfork: u32::MAX,
        _pad: 0,
    };

    /// Whether `nr` is one of the fork family.
    #[inline(always)]
    #[must_use]
    pub const fn is_fork(&self, nr: u64) -> bool {
        nr == self.clone as u64
            || nr == self.clone3 as u64
            || nr == self.fork as u64
            || nr == self.vfork as u64
    }
}

/// Byte offsets for the io_uring tracepoints: the tracepoint fields from
/// tracefs, the request fields from BTF (0: not available, not read).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringOffsets {
    /// `io_uring_submit_req`: `req`.
    pub submit_req: u32,
    /// `io_uring_submit_req`: `opcode`.
    pub submit_opcode: u32,
    /// `io_uring_submit_req`: `sq_thread`.
    pub submit_sq_thread: u32,
    /// `io_uring_complete`: `req`.
    pub complete_req: u32,
    /// `io_uring_complete`: `user_data`.
    pub complete_user_data: u32,
    /// `io_uring_complete`: `res`.
    pub complete_res: u32,
    /// `io_open.file_slot` (within the request's command area).
    pub open_slot: u32,
    /// `io_open.filename`.
    pub open_filename: u32,
    /// `filename.name`.
    pub filename_name: u32,
    /// `io_connect.addr`.
    pub connect_addr: u32,
    /// `io_connect.addr_len`.
    pub connect_addr_len: u32,
    /// `io_kiocb.cmd`: the command area's offset in the request.
    pub kiocb_cmd: u32,
    /// The native `openat` number (the record's syscall for a denial).
    pub openat_nr: u32,
}

impl UringOffsets {
    /// All zero (io_uring not traced).
    pub const NONE: Self = Self {
        submit_req: 0,
        submit_opcode: 0,
        submit_sq_thread: 0,
        complete_req: 0,
        complete_user_data: 0,
        complete_res: 0,
        open_slot: 0,
        open_filename: 0,
        filename_name: 0,
        connect_addr: 0,
        connect_addr_len: 0,
        kiocb_cmd: 0,
        openat_nr: 0,
    };
}

/// Byte offsets of the kernel structure fields the identity checks read,
/// taken from the running kernel's BTF at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `task_struct.files`.
    pub task_files: u32,
    /// `files_struct.fdt`.
    pub files_fdt: u32,
    /// `fdtable.max_fds`.
    pub fdt_max_fds: u32,
    /// `fdtable.fd`.
    pub fdt_fd: u32,
    /// `file.f_inode`.
    pub file_inode: u32,
    /// `file.f_path` + `path.dentry`.
    pub file_dentry: u32,
    /// `inode.i_ino`.
    pub inode_ino: u32,
    /// `inode.i_sb`.
    pub inode_sb: u32,
    /// `inode.i_size`.
    pub inode_size: u32,
    /// `super_block.s_dev`.
    pub sb_dev: u32,
    /// `dentry.d_name` + `qstr.name`.
    pub dentry_name: u32,
    /// `dentry.d_name` + `qstr.len`.
    pub dentry_len: u32,
    /// `linux_binprm.file`.
    pub bprm_file: u32,
    /// `linux_binprm.filename`.
    pub bprm_filename: u32,
    /// `file.f_path` + `path.mnt`.
    pub file_mnt: u32,
    /// `dentry.d_parent`.
    pub dentry_parent: u32,
    /// `vfsmount.mnt_root`.
    pub vfsmount_root: u32,
    /// `mount.mnt` (the `vfsmount` inside a `struct mount`).
    pub mount_mnt: u32,
    /// `mount.mnt_parent`.
    pub mount_parent: u32,
    /// `mount.mnt_mountpoint`.
    pub mount_mountpoint: u32,
}

impl Offsets {
    /// All zero (no identity checks).
    pub const NONE: Self = Self {
        task_files: 0,
        files_fdt: 0,
        fdt_max_fds: 0,
        fdt_fd: 0,
        file_inode: 0,
        file_dentry: 0,
        inode_ino: 0,
        inode_sb: 0,
        inode_size: 0,
        sb_dev: 0,
        dentry_name: 0,
        dentry_len: 0,
        bprm_file: 0,
        bprm_filename: 0,
        file_mnt: 0,
        dentry_parent: 0,
        vfsmount_root: 0,
        mount_mnt: 0,
        mount_parent: 0,
        mount_mountpoint: 0,
    };
}

/// Flags of a `TARGETS` value: the tree id in bits 0-15, per-process flags
/// above it, the generation in the top bits.
pub mod target {
    /// The tree id.
    pub const TREE_MASK: u64 = 0xffff;
    /// The process (or the one it was forked from) opened a file of an ML
    /// runtime or model format (torch, TensorFlow, ONNX, safetensors...).
    pub const AI_ML: u64 = 1 << 16;
    /// The process (or its parent) opened an LLM runtime or a GGUF model.
    pub const AI_LLM: u64 = 1 << 17;
    /// Either AI flag.
    pub const AI: u64 = AI_ML | AI_LLM;
    /// The process's new image is held at exec until user space has
    /// identified it: any syscall it makes meanwhile kills it.
    pub const HELD: u64 = 1 << 18;
    /// The launched command entered execve: its first successful exec is
    /// the user's choice, exempt from exec deny rules.
    pub const LAUNCH_EXEC: u64 = 1 << 19;
    /// Flags a forked child takes from its parent.
    pub const INHERITED: u64 = TREE_MASK | AI | FROZEN | KILLED;
    /// Launched and not yet executing the workload: ignore its syscalls
    /// until it calls execve (those before are ai-forensics' own set-up).
    pub const AWAIT_EXEC: u64 = 1 << 32;
    /// The tree is stopped: any member entering a syscall gets SIGSTOP
    /// (children inherit the flag at fork, so none escapes).
    pub const FROZEN: u64 = 1 << 33;
    /// The tree is being killed: any member entering a syscall gets SIGKILL.
    pub const KILLED: u64 = 1 << 34;
    /// Where a process's generation sits in its entry (bits 35-63).
    pub const GEN_SHIFT: u32 = 35;
    /// Largest per-CPU fork sequence number; the sequence runs 1..=SEQ_MAX
    /// and starts over at 1.
    pub const SEQ_MAX: u32 = (1 << 22) - 1;
    /// Set in the generations user space gives the processes it adds
    /// (launched, attached, matched), never in the kernel's.
    pub const USER_GEN: u32 = 1 << 28;

    /// The generation in a target entry: non-zero for processes the kernel
    /// added at fork ([`fork_generation`]) and for those user space added
    /// ([`user_generation`]), 0 for processes of a watched cgroup the kernel
    /// took in at their first syscall. Per-process counts are keyed by pid
    /// and generation, so a pid reused during a run starts from zero.
    #[must_use]
    pub const fn generation(entry: u64) -> u32 {
        (entry >> GEN_SHIFT) as u32
    }

    /// The CPU's fork sequence number after `seq`: never 0.
    #[must_use]
    pub const fn next_seq(seq: u32) -> u32 {
        if seq >= SEQ_MAX || seq == 0 {
            1
        } else {
            seq + 1
        }
    }

    /// A fork's generation: the forking CPU's sequence number (22 bits)
    /// above the CPU's number (6 bits). Every fork of a run gets its own
    /// until a CPU has forked 4,194,303 times (or on machines with more
    /// than 64 CPUs, where CPUs 64 apart share the low bits).
    #[must_use]
    pub const fn fork_generation(seq: u32, cpu: u32) -> u32 {
        ((seq & SEQ_MAX) << 6) | (cpu & 63)
    }

    /// The generation of the `n`-th process user space adds (from 0).
    #[must_use]
    pub const fn user_generation(n: u32) -> u32 {
        USER_GEN | (n & (USER_GEN - 1))
    }
}

/// In-kernel deny rules: checked at syscall entry, before the call runs.
pub mod deny {
    /// How a denial was enforced ([`DeniedEvent::how`](crate::DeniedEvent)):
    /// the path argument matched at syscall entry; the signal was sent
    /// before the call ran, but the call still runs.
    pub const HOW_ENTRY_PATH: u32 = 1;
    /// The opened file's identity matched at the open's exit: the process
    /// is killed before the call returns, so it never uses the descriptor.
    pub const HOW_EXIT_FILE: u32 = 2;
    /// The new image's identity matched at exec: it never runs an
    /// instruction.
    pub const HOW_EXEC_IMAGE: u32 = 3;
    /// A new image held at exec had a denied executable's content (user
    /// space compared it while the kernel held it before its first
    /// instruction).
    pub const HOW_EXEC_CONTENT: u32 = 4;
    /// User space refused an open of a denied file through seccomp user
    /// notification (`run`): the call never ran.
    pub const HOW_SECCOMP_FILE: u32 = 5;
    /// User space refused an exec of a denied executable (by identity)
    /// through seccomp user notification: the call never ran.
    pub const HOW_SECCOMP_EXEC: u32 = 6;
    /// As [`HOW_SECCOMP_EXEC`], for an image with a denied executable's
    /// content (a copy).
    pub const HOW_SECCOMP_CONTENT: u32 = 7;
    /// The file an io_uring open installed matched by identity at the
    /// operation's completion: the process is killed before it can use the
    /// descriptor, but the open ran.
    pub const HOW_URING_FILE: u32 = 8;
    /// The BPF LSM refused an open of a denied file (`file_open`): the
    /// call failed with EPERM and never ran.
    pub const HOW_LSM_FILE: u32 = 9;
    /// The BPF LSM refused an exec of a denied executable
    /// (`bprm_check_security`): the exec failed with EPERM.
    pub const HOW_LSM_EXEC: u32 = 10;
    /// [`ObjDeny::flags`]: only for processes flagged AI_ML.
    pub const ONLY_AI_ML: u32 = 1 << 0;
    /// [`ObjDeny::flags`]: only for processes flagged AI_LLM.
    pub const ONLY_AI_LLM: u32 = 1 << 1;

    /// Whether a denial with `ONLY_*` flags `flags` applies to a process
    /// whose target entry is `entry` (the kernel and user space decide it
    /// alike).
    #[inline(always)]
    #[must_use]
    pub const fn applies(flags: u32, entry: u64) -> bool {
        let need = flags & (ONLY_AI_ML | ONLY_AI_LLM);
        if need == 0 {
            return true;
        }
        let mut have = 0;
        if entry & crate::target::AI_ML != 0 {
            have |= ONLY_AI_ML;
        }
        if entry & crate::target::AI_LLM != 0 {
            have |= ONLY_AI_LLM;
        }
        need & have != 0
    }
    /// Most file identities denied at once.
    pub const MAX_FILES: u32 = 16384;
    /// Most executable identities denied at once.
    pub const MAX_EXES: u32 = 4096;
    /// The rule applies to execve/execveat paths.
    pub const CLASS_EXEC: u32 = 1;
    /// The rule applies to the open family's paths.
    pub const CLASS_OPEN: u32 = 2;
    /// The path equals the pattern.
    pub const EXACT: u32 = 1;
    /// The path starts with the pattern.
    pub const PREFIX: u32 = 2;
    /// The path's last component equals the pattern.
    pub const BASENAME: u32 = 3;
    /// Longest pattern.
    pub const PATTERN_MAX: usize = 64;
    /// Most rules.
    pub const MAX_RULES: u32 = 32;
    /// Bytes of the path compared (paths are read up to this length).
    pub const PATH_MAX: usize = 256;
}

/// One in-kernel deny rule.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenyRule {
    /// [`deny`] class (exec or open); 0 ends the table.
    pub class: u32,
    /// [`deny`] match kind.
    pub kind: u32,
    /// Pattern length.
    pub len: u32,
    /// Signal to send (SIGKILL or SIGSTOP).
    pub signal: u32,
    /// Rule number (user space's index, reported back).
    pub rule: u32,
    /// Padding.
    pub _pad: u32,
    /// Pattern bytes.
    pub pattern: [u8; deny::PATTERN_MAX],
}

/// A deny rule fired at syscall entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeniedEvent {
    /// Record header (`ts_ns`: when the signal was sent).
    pub hdr: Header,
    /// Syscall number.
    pub nr: u32,
    /// Rule number.
    pub rule: u32,
    /// Signal sent.
    pub signal: u32,
    /// Tree.
    pub tree: u32,
    /// Bytes of `path`.
    pub path_len: u32,
    /// How it was enforced ([`deny`] `HOW_*`).
    pub how: u32,
    /// Thread name.
    pub comm: [u8; 16],
    /// Device of the object (kernel encoding), 0 for a path match.
    pub dev: u64,
    /// Inode of the object, 0 for a path match.
    pub ino: u64,
    /// The path as the process passed it (or the new image's name).
    pub path: [u8; deny::PATH_MAX],
}

/// Identity of a file: the device of its superblock (kernel encoding,
/// major << 20 | minor) and its inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    /// `inode->i_sb->s_dev`.
    pub dev: u64,
    /// `inode->i_ino`.
    pub ino: u64,
}

/// What to do when a process opens or executes a denied object.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjDeny {
    /// Rule number.
    pub rule: u32,
    /// Signal (SIGKILL or SIGSTOP).
    pub signal: u32,
    /// [`deny`] `ONLY_*` flags.
    pub flags: u32,
    /// Padding.
    pub _pad: u32,
}

/// A file name that makes the process opening it an AI workload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AiMarker {
    /// 0 ends the table; 1: the name starts with `pattern`; 2: it ends with it.
    pub kind: u32,
    /// Bytes of `pattern`.
    pub len: u32,
    /// The [`target`] flag it sets (AI_ML or AI_LLM, as u32 >> 16).
    pub flag: u32,
    /// Padding.
    pub _pad: u32,
    /// Pattern bytes.
    pub pattern: [u8; AI_MARKER_MAX],
}

/// Longest AI marker pattern.
pub const AI_MARKER_MAX: usize = 24;
/// Most AI markers.
pub const AI_MARKERS_MAX: u32 = 24;

/// A process was flagged an AI workload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkEvent {
    /// Record header.
    pub hdr: Header,
    /// Tree.
    pub tree: u32,
    /// The flag set (AI_ML or AI_LLM, >> 16).
    pub flag: u32,
    /// Marker index.
    pub marker: u32,
    /// Bytes of `name`.
    pub name_len: u32,
    /// The file name (last component, as the kernel knows it).
    pub name: [u8; 64],
}

/// A new image held at exec until user space identifies it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldEvent {
    /// Record header.
    pub hdr: Header,
    /// Tree.
    pub tree: u32,
    /// Padding.
    pub _pad: u32,
    /// Identity of the image.
    pub obj: ObjKey,
    /// Its size.
    pub size: u64,
}

/// io_uring record details.
pub mod uring {
    /// Opcodes counted (the kernel's `IORING_OP_*` below this).
    pub const OPS: u32 = 64;
    /// Bytes of path or address a record carries.
    pub const STR_MAX: usize = 256;
    /// `IORING_OP_CONNECT`.
    pub const OP_CONNECT: u32 = 16;
    /// `IORING_OP_OPENAT`.
    pub const OP_OPENAT: u32 = 18;
    /// `IORING_OP_OPENAT2`.
    pub const OP_OPENAT2: u32 = 28;
    /// Submitted by the ring's kernel polling thread (`SQPOLL`).
    pub const SQ_THREAD: u32 = 1 << 0;
    /// An open into the ring's fixed-file table (no descriptor).
    pub const FIXED: u32 = 1 << 1;
    /// `str` holds the path an open named (as the kernel copied it).
    pub const STR_PATH: u32 = 1 << 2;
    /// `str` holds the socket address a connect named.
    pub const STR_ADDR: u32 = 1 << 3;
}

/// Per-opcode io_uring counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringStat {
    /// Operations submitted.
    pub count: u64,
    /// Completions with an error.
    pub errors: u64,
}

/// A submitted io_uring request of a target, until its completion.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringPending {
    /// Submission time.
    pub ts_ns: u64,
    /// Submitter.
    pub pid_tgid: u64,
    /// The submitter's target entry.
    pub entry: u64,
    /// `IORING_OP_*`.
    pub opcode: u32,
    /// [`uring`] flags.
    pub flags: u32,
    /// Bytes in `str`.
    pub str_len: u32,
    /// Padding.
    pub _pad: u32,
    /// Path or socket address.
    pub str: [u8; uring::STR_MAX],
}

/// A target's io_uring operation, at its completion.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UringEvent {
    /// Record header (the submitter; the completion time).
    pub hdr: Header,
    /// `IORING_OP_*`.
    pub opcode: u32,
    /// The completion's result (a descriptor, a byte count, -errno).
    pub res: i32,
    /// [`uring`] flags.
    pub flags: u32,
    /// Bytes in `str`.
    pub str_len: u32,
    /// The submitter's `user_data`.
    pub user_data: u64,
    /// Submission to completion.
    pub duration_ns: u64,
    /// Tree.
    pub tree: u32,
    /// Padding.
    pub _pad: u32,
    /// Path or socket address.
    pub str: [u8; uring::STR_MAX],
}

/// Common header of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// A [`kind`] number.
    pub kind: u32,
    /// CPU the record was written on.
    pub cpu: u32,
    /// `CLOCK_MONOTONIC` nanoseconds (syscall entry for syscall records).
    pub ts_ns: u64,
    /// Process id (kernel TGID).
    pub tgid: u32,
    /// Thread id (kernel PID).
    pub tid: u32,
}

/// A syscall record. A payload follows it on the wire: the blob
/// (`blob_len` bytes), then `str0` (`str0_len` bytes), then `str1`
/// (`str1_len` bytes). Strings carry no NUL.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallEvent {
    /// Record header.
    pub hdr: Header,
    /// Syscall number (architecture's own numbering).
    pub nr: u32,
    /// Target tree id.
    pub tree: u32,
    /// Return value (raw; -4095..-1 are errors).
    pub ret: i64,
    /// Time from entry to exit, or [`UNTIMED`].
    pub duration_ns: u64,
    /// Raw arguments.
    pub args: [u64; 6],
    /// Thread name at the time of the call.
    pub comm: [u8; 16],
    /// [`ev`] flags.
    pub flags: u32,
    /// Bytes of blob in the payload.
    pub blob_len: u32,
    /// Bytes of the first string in the payload.
    pub str0_len: u32,
    /// Bytes of the second string in the payload.
    pub str1_len: u32,
}

/// What to capture for one syscall number; written by user space.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallSpec {
    /// [`spec`] flags; 0 means "count only".
    pub flags: u32,
    /// Argument holding a path (`str0`), or [`NO_ARG`].
    pub str0_arg: u8,
    /// Argument holding a second path (`str1`), or [`NO_ARG`].
    pub str1_arg: u8,
    /// Argument pointing to a binary structure, or [`NO_ARG`].
    pub blob_arg: u8,
    /// Argument holding the blob's length (or a pointer to it), or [`NO_ARG`] for `blob_len_max`.
    pub blob_len_arg: u8,
    /// Upper bound (and default) of the blob length.
    pub blob_len_max: u16,
    /// Argument holding an argv array (`str1`, NUL-separated), or [`NO_ARG`].
    pub argv_arg: u8,
    /// Padding.
    pub _pad: u8,
}

impl SyscallSpec {
    /// Count only: nothing streamed.
    pub const NONE: Self = Self {
        flags: 0,
        str0_arg: NO_ARG,
        str1_arg: NO_ARG,
        blob_arg: NO_ARG,
        blob_len_arg: NO_ARG,
        blob_len_max: 0,
        argv_arg: NO_ARG,
        _pad: 0,
    };
}

/// A syscall between entry and exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inflight {
    /// Entry time.
    pub ts_ns: u64,
    /// Syscall number.
    pub nr: u32,
    /// Target tree id.
    pub tree: u32,
    /// Raw arguments (only filled when the syscall is streamed).
    pub args: [u64; 6],
}

/// The syscall the thread running on a CPU is in, between entry and exit.
///
/// A per-CPU slot instead of a hash map keyed by thread: entry and exit of a
/// call that does not block run on the same CPU with no other thread in
/// between, so most calls never touch a hash map. When the thread is switched
/// out inside the call, `sched_switch` moves its slot into `INFLIGHT`, where
/// the exit finds it, on whatever CPU it runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Thread in the call.
    pub tid: u32,
    /// Non-zero while the call is in progress.
    pub live: u32,
    /// What entry saved.
    pub inf: Inflight,
}

/// Per-syscall statistics (per CPU; user space sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallStat {
    /// Calls entered.
    pub count: u64,
    /// Calls that returned an error (-4095..-1).
    pub errors: u64,
    /// Calls timed from entry to exit.
    pub timed: u64,
    /// Sum of timed durations.
    pub total_ns: u64,
    /// Shortest timed duration (0 when none).
    pub min_ns: u64,
    /// Longest timed duration.
    pub max_ns: u64,
    /// Records of this syscall that could not be streamed (ring buffer full).
    pub lost: u64,
    /// Latency histogram, see [`hist_bucket`].
    pub hist: [u64; HIST_BUCKETS],
}

impl Default for SyscallStat {
    fn default() -> Self {
        Self {
            count: 0,
            errors: 0,
            timed: 0,
            total_ns: 0,
            min_ns: 0,
            max_ns: 0,
            lost: 0,
            hist: [0; HIST_BUCKETS],
        }
    }
}

/// Key of the per-thread statistics.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// Syscall number.
    pub nr: u32,
    /// Generation of the process ([`target::generation`]): tells apart
    /// processes that had the same pid during the run.
    pub generation: u32,
}

/// Per-thread, per-syscall statistics (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Calls entered.
    pub count: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Sum of timed durations.
    pub total_ns: u64,
}

/// Loss not yet reported in the stream (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossPending {
    /// Records lost.
    pub count: u64,
    /// Time of the first lost record.
    pub first_ts_ns: u64,
    /// Time of the last lost record.
    pub last_ts_ns: u64,
}

/// Marks a gap: `count` records were lost on `hdr.cpu` between the two times.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LostEvent {
    /// Record header (`tgid`/`tid` are those of the task that found the gap).
    pub hdr: Header,
    /// Records lost.
    pub count: u64,
    /// Time of the first lost record.
    pub first_ts_ns: u64,
    /// Time of the last lost record.
    pub last_ts_ns: u64,
}

/// A target created a task (`hdr` is the parent thread).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    /// Record header.
    pub hdr: Header,
    /// Thread id of the new task.
    pub child_tid: u32,
    /// Process id of the new task (equals `hdr.tgid` for a thread).
    pub child_tgid: u32,
    /// Target tree id.
    pub tree: u32,
    /// Generation given to a new process ([`target::generation`]; 0 for a
    /// thread, or when everything is traced).
    pub child_gen: u32,
    /// Name of the parent thread.
    pub comm: [u8; 16],
}

/// A task executed a program (`hdr` is the task after exec).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// Record header.
    pub hdr: Header,
    /// Thread id before exec (differs when a non-leader thread executed).
    pub old_tid: u32,
    /// Target tree id (0 for watch-mode records of non-targets).
    pub tree: u32,
    /// New task name.
    pub comm: [u8; 16],
    /// Bytes of `filename` used.
    pub filename_len: u32,
    /// Non-zero when `filename` was cut.
    pub truncated: u32,
    /// Executed file as given to exec.
    pub filename: [u8; STR_MAX],
}

/// A target task exited.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    /// Record header.
    pub hdr: Header,
    /// Target tree id.
    pub tree: u32,
    /// Non-zero when this was the last thread of the process.
    pub group_dead: u32,
    /// Task name.
    pub comm: [u8; 16],
}

/// A CUDA runtime or driver call of a target, seen by a uprobe.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuEvent {
    /// Record header.
    pub hdr: Header,
    /// Function id (user space's table; the uprobe's attach cookie).
    pub func: u32,
    /// Padding.
    pub _pad: u32,
    /// Bytes (allocated, copied).
    pub size: u64,
    /// Device pointer (allocated, freed).
    pub ptr: u64,
    /// Return value (allocations; 0 for calls recorded at entry).
    pub ret: i64,
}

/// An allocation call between its entry and its return.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuPending {
    /// Where the callee writes the device pointer.
    pub out_ptr: u64,
    /// Requested bytes.
    pub size: u64,
    /// Function id.
    pub func: u32,
    /// Padding.
    pub _pad: u32,
}

/// TLS plaintext capture: the library functions watched by uprobes, and
/// the layout of the attach cookie.
pub mod tls {
    /// `int SSL_write(SSL *, const void *buf, int num)`.
    pub const SSL_WRITE: u32 = 0;
    /// `int SSL_read(SSL *, void *buf, int num)`.
    pub const SSL_READ: u32 = 1;
    /// `int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written)`.
    pub const SSL_WRITE_EX: u32 = 2;
    /// `int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes)`.
    pub const SSL_READ_EX: u32 = 3;
    /// `ssize_t gnutls_record_send(gnutls_session_t, const void *data, size_t)`.
    pub const GNUTLS_SEND: u32 = 4;
    /// `ssize_t gnutls_record_recv(gnutls_session_t, void *data, size_t)`.
    pub const GNUTLS_RECV: u32 = 5;
    /// Number of functions.
    pub const FUNCTIONS: u32 = 6;

    /// Whether the function receives (odd ids) rather than sends.
    #[inline(always)]
    #[must_use]
    pub const fn is_read(func: u32) -> bool {
        func & 1 == 1
    }

    /// Whether the byte count is written through the fourth argument.
    #[inline(always)]
    #[must_use]
    pub const fn is_ex(func: u32) -> bool {
        func == SSL_WRITE_EX || func == SSL_READ_EX
    }

    /// Whether the function returns a C `int` (OpenSSL) rather than `ssize_t`.
    #[inline(always)]
    #[must_use]
    pub const fn returns_int(func: u32) -> bool {
        func < GNUTLS_SEND
    }

    /// Bytes of plaintext in one record; a call's data is split into
    /// records of at most this size.
    pub const CHUNK: usize = 4096;
    /// Most records one call is split into.
    pub const MAX_CHUNKS: u32 = 16;
    /// Most bytes captured per call (`MAX_CHUNKS * CHUNK`).
    pub const MAX_CAPTURE: u32 = MAX_CHUNKS * CHUNK as u32;

    /// The attach cookie: function id in the low byte, capture limit per
    /// call (bytes) in the high 32 bits.
    #[inline(always)]
    #[must_use]
    pub const fn cookie(func: u32, cap: u32) -> u64 {
        ((cap as u64) << 32) | func as u64
    }

    /// More of the call's data was transferred than captured.
    pub const TRUNCATED: u16 = 1 << 0;
    /// Reading the buffer failed.
    pub const READ_FAULT: u16 = 1 << 1;
    /// The last record of the call.
    pub const LAST: u16 = 1 << 2;
}

/// A TLS library call between its entry and its return.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsPending {
    /// The connection object (`SSL *`, `gnutls_session_t`).
    pub conn: u64,
    /// The plaintext buffer.
    pub buf: u64,
    /// Where the `_ex` variants write the byte count (0 otherwise).
    pub out: u64,
    /// When the call was entered.
    pub entry_ns: u64,
    /// Function id ([`tls`]).
    pub func: u32,
    /// Capture limit for this call.
    pub cap: u32,
}

/// One record of plaintext a TLS library call sent or received, followed by
/// `len` bytes of data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsEvent {
    /// Record header (its time is the call's return).
    pub hdr: Header,
    /// The connection object (`SSL *`, `gnutls_session_t`).
    pub conn: u64,
    /// When the call was entered.
    pub entry_ns: u64,
    /// Bytes the call transferred (all records of the call).
    pub total: u64,
    /// Offset of this record's data in the call's data.
    pub offset: u32,
    /// Bytes of data following.
    pub len: u32,
    /// Function id ([`tls`]).
    pub func: u16,
    /// [`tls`] flags.
    pub flags: u16,
    /// Target tree id.
    pub tree: u32,
}

/// Per-CPU room to build a [`TlsEvent`] and its data.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TlsScratch {
    /// The fixed part.
    pub ev: TlsEvent,
    /// The data.
    pub data: [u8; tls::CHUNK],
}

/// Per-CPU room to build a syscall record and its payload.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Scratch {
    /// The fixed part.
    pub ev: SyscallEvent,
    /// Blob, then str0, then str1.
    pub payload: [u8; PAYLOAD_MAX],
}

/// Histogram bucket of a duration: four buckets per power of two.
#[inline(always)]
#[must_use]
pub fn hist_bucket(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let log = 63 - ns.leading_zeros() as u64; // >= 2
    let sub = (ns >> (log - 2)) & 3;
    let b = (log * 4 + sub) as usize - 4;
    if b >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        b
    }
}

/// Lowest duration that falls in bucket `b` (inverse of [`hist_bucket`]).
#[must_use]
pub fn hist_bucket_floor(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let b = b as u64 + 4;
    let log = b / 4;
    let sub = b % 4;
    (1u64 << log) | (sub << (log - 2))
}

const _: () = assert!(core::mem::size_of::<Header>() == 24);
const _: () = assert!(core::mem::size_of::<SyscallEvent>() == 128);
const _: () = assert!(core::mem::size_of::<SyscallSpec>() == 12);
const _: () = assert!(core::mem::size_of::<Inflight>() == 64);
const _: () = assert!(core::mem::size_of::<Slot>() == 72);
const _: () = assert!(core::mem::size_of::<SyscallStat>() == 56 + 8 * HIST_BUCKETS);

const _: () = assert!(core::mem::size_of::<ProcKey>() == 16);
const _: () = assert!(core::mem::size_of::<ProcStat>() == 24);
const _: () = assert!(core::mem::size_of::<LostEvent>() == 48);
const _: () = assert!(core::mem::size_of::<ForkEvent>() == 56);
const _: () = assert!(core::mem::size_of::<ExecEvent>() == 56 + STR_MAX);
const _: () = assert!(core::mem::size_of::<ExitEvent>() == 48);
const _: () = assert!(core::mem::size_of::<Config>() == 32 + 32 + 80 + 52);
const _: () = assert!(core::mem::size_of::<ObjKey>() == 16);
const _: () = assert!(core::mem::size_of::<UringPending>() == 40 + uring::STR_MAX);
const _: () = assert!(core::mem::size_of::<UringEvent>() == 64 + uring::STR_MAX);
const _: () = assert!(core::mem::size_of::<ObjDeny>() == 16);
const _: () = assert!(core::mem::size_of::<AiMarker>() == 16 + AI_MARKER_MAX);
const _: () = assert!(core::mem::size_of::<MarkEvent>() == 40 + 64);
const _: () = assert!(core::mem::size_of::<HeldEvent>() == 56);
const _: () = assert!(core::mem::size_of::<Scratch>() == 128 + PAYLOAD_MAX);
const _: () = assert!(core::mem::size_of::<DenyRule>() == 24 + deny::PATTERN_MAX);
const _: () = assert!(core::mem::size_of::<GpuEvent>() == 56);
const _: () = assert!(core::mem::size_of::<GpuPending>() == 24);
const _: () = assert!(core::mem::size_of::<TlsPending>() == 40);
const _: () = assert!(core::mem::size_of::<TlsEvent>() == 64);
const _: () = assert!(core::mem::size_of::<TlsScratch>() == 64 + tls::CHUNK);
const _: () = assert!(core::mem::size_of::<DeniedEvent>() == 80 + deny::PATH_MAX);
// The payload layout needs room for a full blob and two full strings.
const _: () = assert!(PAYLOAD_MAX >= 256 + 2 * STR_MAX + STR_MAX);

#[cfg(feature = "user")]
mod pod {
    use super::{
        Config, ExecEvent, ExitEvent, ForkEvent, Header, Inflight, LossPending, LostEvent, ProcKey,
        ProcStat, SyscallEvent, SyscallSpec, SyscallStat,
    };

    // Each type below is repr(C), Copy, has no implicit padding (sizes are
    // asserted above) and every bit pattern is a valid value.
    // SAFETY: see above.
    unsafe impl aya::Pod for Config {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Header {}
    // SAFETY: see above.
    unsafe impl aya::Pod for SyscallEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for SyscallSpec {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Inflight {}
    // SAFETY: see above.
    unsafe impl aya::Pod for SyscallStat {}
    // SAFETY: see above.
    unsafe impl aya::Pod for ProcKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for ProcStat {}
    // SAFETY: see above.
    unsafe impl aya::Pod for LossPending {}
    // SAFETY: see above.
    unsafe impl aya::Pod for LostEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for ForkEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for ExecEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for ExitEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::DenyRule {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::DeniedEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::GpuEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::GpuPending {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::ObjKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::ObjDeny {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::AiMarker {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::MarkEvent {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::HeldEvent {}
    // SAFETY: repr(C), integers and byte arrays only.
    unsafe impl aya::Pod for super::UringStat {}
    // SAFETY: repr(C), integers and byte arrays only.
    unsafe impl aya::Pod for super::UringPending {}
    // SAFETY: repr(C), integers and byte arrays only.
    unsafe impl aya::Pod for super::UringEvent {}
    // SAFETY: repr(C), integers only, no implicit padding (size asserted).
    unsafe impl aya::Pod for super::TlsPending {}
    // SAFETY: repr(C), integers only, no implicit padding (size asserted).
    unsafe impl aya::Pod for super::TlsEvent {}
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn hist_buckets_are_monotonic_and_invert() {
        let mut last = 0;
        for ns in [
            0u64,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            100,
            1000,
            4096,
            1 << 20,
            1 << 31,
            u64::MAX,
        ] {
            let b = hist_bucket(ns);
            assert!(b >= last, "bucket of {ns} went down");
            last = b;
            if b < HIST_BUCKETS - 1 {
                assert!(hist_bucket_floor(b) <= ns);
                assert!(hist_bucket_floor(b + 1) > ns, "ns {ns} b {b}");
            }
        }
        for b in 0..HIST_BUCKETS - 1 {
            assert_eq!(hist_bucket(hist_bucket_floor(b)), b);
        }
    }

    #[test]
    fn fork_generations_are_unique_per_cpu_and_fit_the_entry() {
        use super::target::{
            AWAIT_EXEC, FROZEN, GEN_SHIFT, KILLED, SEQ_MAX, USER_GEN, fork_generation, generation,
            next_seq, user_generation,
        };
        let mut seen = std::collections::HashSet::new();
        for cpu in 0..4 {
            let mut seq = 0;
            for _ in 0..10_000 {
                seq = next_seq(seq);
                let g = fork_generation(seq, cpu);
                assert_ne!(g, 0);
                assert!(seen.insert(g), "generation {g} given twice");
            }
        }
        // User space's own never meet the kernel's.
        for n in [0, 1, 77, USER_GEN - 1, USER_GEN, u32::MAX] {
            let g = user_generation(n);
            assert!(!seen.contains(&g));
            assert_ne!(g & USER_GEN, 0);
        }
        assert_eq!(fork_generation(SEQ_MAX, 63) & USER_GEN, 0);
        let gens = [
            fork_generation(1, 0),
            fork_generation(SEQ_MAX, 63),
            fork_generation(SEQ_MAX, 255),
            fork_generation(12_345, 7),
            user_generation(0),
            user_generation(u32::MAX),
        ];
        for g in gens {
            assert_ne!(g, 0);
            assert!(g < 1 << (64 - GEN_SHIFT));
            let entry = 7 | AWAIT_EXEC | FROZEN | KILLED | (u64::from(g) << GEN_SHIFT);
            assert_eq!(generation(entry), g);
            assert_eq!(entry & 0xffff_ffff, 7);
            assert_eq!(
                entry & (AWAIT_EXEC | FROZEN | KILLED),
                AWAIT_EXEC | FROZEN | KILLED
            );
        }
        // The sequence wraps to 1, never to 0.
        assert_eq!(next_seq(SEQ_MAX), 1);
        assert_eq!(next_seq(0), 1);
        assert_eq!(next_seq(41), 42);
        assert_eq!(generation(5), 0);
    }
}
