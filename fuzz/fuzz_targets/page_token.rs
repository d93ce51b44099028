#![no_main]
//! Fuzz target `page_token`: see `messaging_grpc::fuzz_support::page_token` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| messaging_grpc::fuzz_support::page_token(data));
