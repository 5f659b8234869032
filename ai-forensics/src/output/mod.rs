//! Writing what was recorded: JSON Lines, strace-like text, tables.
pub mod clock;
pub mod json;
pub mod schema;
pub mod table;
pub mod text;
