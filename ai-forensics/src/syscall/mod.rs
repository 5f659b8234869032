//! Syscall knowledge: numbers and names per architecture, argument
//! signatures, groups for selection.
pub mod groups;
pub mod signature;
pub mod table;

pub use groups::Selection;
