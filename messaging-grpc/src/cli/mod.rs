//! The `messaging` binary's subcommands that are more than a few lines.

pub mod admin_client;
pub mod dev_console;
pub mod dev_identity;
pub mod export;
pub mod health;
pub mod keys;
pub mod numbers;
pub mod run;
pub mod simulate;
