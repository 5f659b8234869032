//! One hook family per file.
pub mod enforce;
pub mod floor;
pub mod gpu;
pub mod identity;
pub mod lsm;
pub mod process;
pub mod syscalls;
pub mod tls;
pub mod uring;
