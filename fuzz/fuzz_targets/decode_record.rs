//! See `ai_forensics::fuzz::decode_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ai_forensics::fuzz::decode_record(data));
