#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| townhall_fuzz::media_bodies(data));
