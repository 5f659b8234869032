//! Library target so that `ai-forensics/build.rs` can depend on this crate
//! (and be rebuilt when it changes); the programs live in the binary target.
#![no_std]
