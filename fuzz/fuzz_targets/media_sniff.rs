#![no_main]
//! Fuzz target `media_sniff`: see `messaging_grpc::fuzz_support::media_sniff` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| messaging_grpc::fuzz_support::media_sniff(data));
