//! State kept from the record stream: fd tables and the process table.
pub mod fds;
pub mod procs;
