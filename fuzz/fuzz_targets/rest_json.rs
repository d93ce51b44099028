#![no_main]
//! Fuzz target `rest_json`: see `webhook_gateway::fuzz_support::rest_json` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| webhook_gateway::fuzz_support::rest_json(data));
