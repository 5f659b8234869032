//! Every map of the programs. Sizes here are defaults: user space sets the
//! real ones (`TARGETS` to pid_max, `EVENTS` to `--ring-buffer`) at load.
use ai_forensics_common::{
    AI_MARKERS_MAX, AiMarker, DenyRule, GpuPending, Inflight, LossPending, MAX_SYSCALLS, MAX_TREES,
    ObjDeny, ObjKey, ProcKey, ProcStat, Scratch, Slot, SyscallSpec, SyscallStat, TlsPending,
    TlsScratch, UringPending, UringStat, deny, drop, uring,
};
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map]
pub static TARGETS: Array<u64> = Array::with_max_entries(1 << 22, 0);

#[map]
pub static INFLIGHT: HashMap<u32, Inflight> = HashMap::with_max_entries(65536, 0);

#[map]
pub static SLOT: PerCpuArray<Slot> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static STATS: PerCpuArray<SyscallStat> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);

#[map]
pub static PROC_STATS: PerCpuHashMap<ProcKey, ProcStat> = PerCpuHashMap::with_max_entries(1, 0);

#[map]
pub static SPECS: Array<SyscallSpec> = Array::with_max_entries(MAX_SYSCALLS, 0);

#[map]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(drop::COUNT, 0);

#[map]
pub static LOSS: PerCpuArray<LossPending> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static FORK_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static LOST_BY_TREE: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_TREES, 0);

#[map]
pub static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(64, 0);

#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static DENY: Array<DenyRule> = Array::with_max_entries(deny::MAX_RULES, 0);

#[map]
pub static DENY_FILES: HashMap<ObjKey, ObjDeny> = HashMap::with_max_entries(deny::MAX_FILES, 0);

#[map]
pub static DENY_EXES: HashMap<ObjKey, ObjDeny> = HashMap::with_max_entries(deny::MAX_EXES, 0);

#[map]
pub static EXE_SIZES: HashMap<u64, u32> = HashMap::with_max_entries(deny::MAX_EXES, 0);

#[map]
pub static EXE_CLEARED: LruHashMap<ObjKey, u32> = LruHashMap::with_max_entries(16384, 0);

#[map]
pub static AI_MARKERS: Array<AiMarker> = Array::with_max_entries(AI_MARKERS_MAX, 0);

#[map]
pub static GPU_PENDING: HashMap<u32, GpuPending> = HashMap::with_max_entries(16384, 0);

#[map]
pub static URING_STATS: PerCpuArray<UringStat> = PerCpuArray::with_max_entries(uring::OPS, 0);

/// Targets' io_uring requests in flight, by request address.
#[map]
pub static URING_PENDING: LruHashMap<u64, UringPending> = LruHashMap::with_max_entries(16384, 0);

/// Where a pending request is built (too big for the stack).
#[map]
pub static URING_SCRATCH: PerCpuArray<UringPending> = PerCpuArray::with_max_entries(1, 0);

/// Targets' TLS library calls in progress, by thread.
#[map]
pub static TLS_PENDING: LruHashMap<u32, TlsPending> = LruHashMap::with_max_entries(16384, 0);

/// Where a TLS record is built (too big for the stack).
#[map]
pub static TLS_SCRATCH: PerCpuArray<TlsScratch> = PerCpuArray::with_max_entries(1, 0);

/// Adds one to a drop counter.
#[inline(always)]
pub fn count_drop(cause: u32) {
    if let Some(p) = DROPS.get_ptr_mut(cause) {
        // SAFETY: per-CPU slot; programs run with preemption disabled, so
        // nothing else writes it concurrently.
        unsafe { *p += 1 };
    }
}
