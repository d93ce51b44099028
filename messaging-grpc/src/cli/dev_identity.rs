//! The local stack's Twilio identity, shared by `dev` (the gateway it starts) and
//! `messaging webhook …` (what it signs with).

use crate::{Config, dev_secrets::DevSecrets};

/// The Twilio account the dev gateway accepts when no TWILIO_ACCOUNT_SID is set.
pub const DEV_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// Reads a variable of the process environment (trimmed, non-empty).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Twilio account SID and webhook auth token of the local stack: the environment's
/// when set, otherwise the dev account and a token generated in the data folder (what
/// `messaging webhook …` signs with).
pub fn dev_twilio_identity(config: &Config) -> anyhow::Result<(String, String)> {
    let account = env("TWILIO_ACCOUNT_SID").unwrap_or_else(|| DEV_ACCOUNT_SID.to_owned());
    let token = match env("TWILIO_AUTH_TOKEN") {
        Some(t) => t.split(',').next().unwrap_or_default().trim().to_owned(),
        None => DevSecrets::new(&config.data_dir)
            .twilio_auth_token()
            .map_err(anyhow::Error::msg)?,
    };
    Ok((account, token))
}
