//! See `ai_forensics::fuzz::analyser_verdicts`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ai_forensics::fuzz::analyser_verdicts(data));
