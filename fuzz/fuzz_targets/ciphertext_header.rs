#![no_main]
//! Fuzz target `ciphertext_header`: see `messaging_grpc::fuzz_support::ciphertext` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| messaging_grpc::fuzz_support::ciphertext(data));
