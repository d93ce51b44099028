//! Logging set-up (to stderr, so stdout stays clean for scripts). Log lines never carry bodies, keys, tokens or full phone numbers:
//! code logs ids and `phone::Masked` numbers only.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt};

/// Initialises the global subscriber once; `RUST_LOG` overrides the default `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,sea_orm=warn,h2=warn,hyper=warn,tower=warn")
    });
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
