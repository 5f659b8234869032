//! See `ai_forensics::fuzz::rules_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ai_forensics::fuzz::rules_parse(data));
