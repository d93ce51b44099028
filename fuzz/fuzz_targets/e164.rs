#![no_main]
//! Fuzz target `e164`: see `messaging_grpc::fuzz_support::e164` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| messaging_grpc::fuzz_support::e164(data));
