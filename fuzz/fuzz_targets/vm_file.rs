//! Fuzz target: `segexpand_engine::fuzzing::vm` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| segexpand_engine::fuzzing::vm(data));
