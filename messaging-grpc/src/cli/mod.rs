//! The `messaging` binary's subcommands that are more than a few lines.

pub mod health;
pub mod numbers;
pub mod run;
pub mod simulate;
