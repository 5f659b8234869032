//! One hook family per file.
pub mod process;
pub mod syscalls;
