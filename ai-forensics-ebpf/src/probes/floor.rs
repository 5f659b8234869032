//! Empty programs on the syscall raw tracepoints: the cost floor of any
//! raw-tracepoint tracer, measured by the benchmarks (`ai-forensics
//! bench-floor`). Never attached by a tracing session.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn floor_enter(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn floor_exit(_ctx: RawTracePointContext) -> i32 {
    0
}
