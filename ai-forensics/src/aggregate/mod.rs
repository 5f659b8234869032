//! Summaries: exact per-syscall statistics from the kernel, and activity
//! (files, memory, futex, network) from the event stream.
pub mod activity;
pub mod syscalls;
