#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pith_fuzz_harness::documents::docx(data));
