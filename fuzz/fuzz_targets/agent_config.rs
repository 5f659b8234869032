//! See `ai_forensics::fuzz::agent_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ai_forensics::fuzz::agent_config(data));
