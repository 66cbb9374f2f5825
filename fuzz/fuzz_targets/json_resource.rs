#![no_main]
//! Fuzz target json_resource (to be written).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|_data: &[u8]| {});
