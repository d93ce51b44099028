#![no_main]
//! Fuzz target `webhook_form`: see `webhook_gateway::fuzz_support::webhook` for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| webhook_gateway::fuzz_support::webhook(data));
