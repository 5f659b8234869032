//! One hook family per file.
pub mod enforce;
pub mod process;
pub mod syscalls;
