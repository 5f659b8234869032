//! Who is traced: processes from `/proc`, launched commands, selectors and
//! discovery of AI workloads.
pub mod discover;
pub mod launch;
pub mod procfs;
pub mod select;
