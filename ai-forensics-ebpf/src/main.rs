//! ai-forensics kernel programs.
//!
//! Hot path: raw tracepoints on `raw_syscalls:sys_enter`/`sys_exit` (kernel
//! 4.17+), which cost a fraction of classic tracepoints. Process lifecycle:
//! a raw tracepoint on `sched_process_fork` and classic tracepoints on
//! `sched_process_exec`/`sched_process_exit`. Records leave through one BPF
//! ring buffer (kernel 5.8+) so user space sees a single global order.
#![no_std]
#![no_main]

mod config;
mod emit;
mod filter;
mod maps;
mod probes;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that can reach this loop, so it is
    // never executed: it only satisfies the compiler.
    loop {}
}

/// Required for GPL-only helpers (bpf_probe_read_user_str, ...).
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
