//! Media settings.

use std::{path::Path, time::Duration};

use super::{ConfigError, Mode, ProviderConfig, err, number};
use crate::{
    dev_secrets::DevSecrets,
    media::{HostRule, MediaSettings},
};

/// Twilio's media hosts: the API (which redirects) and its CDN.
const DEFAULT_ALLOWED_HOSTS: &str =
    "api.twilio.com,*.twiliocdn.com,*.twilio.com,s3-external-1.amazonaws.com";

pub(super) fn media(
    get: &impl Fn(&str) -> Option<String>,
    mode: Mode,
    data_dir: &Path,
    provider: &ProviderConfig,
) -> Result<MediaSettings, ConfigError> {
    let url_secret = match (get("MEDIA_URL_SECRET"), mode, provider) {
        (Some(s), _, _) if s.len() >= 32 => s.into_bytes(),
        (Some(_), _, _) => return Err(err("MEDIA_URL_SECRET", "must be at least 32 characters")),
        (None, Mode::Dev, _) => DevSecrets::new(data_dir)
            .media_url_secret()
            .map_err(|e| err("MEDIA_URL_SECRET", e))?,
        (None, Mode::Serve, ProviderConfig::Twilio(_)) => {
            return Err(err(
                "MEDIA_URL_SECRET",
                "is required with SMS_PROVIDER=twilio (shared with the gateway; 32+ characters)",
            ));
        }
        // The console provider hands media URLs to nobody: a per-process secret will do.
        (None, Mode::Serve, ProviderConfig::Console) => {
            let mut b = [0u8; 32];
            crate::crypto::random_bytes(&mut b)
                .map_err(|e| err("MEDIA_URL_SECRET", e.to_string()))?;
            b.to_vec()
        }
    };
    // The local stack also accepts media from this machine, so an inbound MMS can be
    // simulated with a file served locally.
    let default_hosts = match mode {
        Mode::Dev => format!("{DEFAULT_ALLOWED_HOSTS},127.0.0.1,[::1]"),
        Mode::Serve => DEFAULT_ALLOWED_HOSTS.to_owned(),
    };
    let allowed_hosts = get("MEDIA_FETCH_ALLOWED_HOSTS")
        .unwrap_or(default_hosts)
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(HostRule::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("MEDIA_FETCH_ALLOWED_HOSTS", e))?;
    Ok(MediaSettings {
        store: get("MEDIA_STORE").unwrap_or_else(|| data_dir.join("media").display().to_string()),
        s3_options: crate::media::S3_VARIABLES
            .iter()
            .filter_map(|&k| get(k).map(|v| (k.to_owned(), v)))
            .collect(),
        url_secret,
        url_ttl: Duration::from_secs(number(get, "MEDIA_URL_TTL_SECS", 86_400, 1, 7 * 86_400)?),
        allowed_hosts,
        fetch_timeout: Duration::from_secs(number(get, "MEDIA_FETCH_TIMEOUT_SECS", 30, 1, 600)?),
        fetch_max_attempts: number(get, "MEDIA_FETCH_MAX_ATTEMPTS", 5, 1, 100)? as u32,
        delete_after_copy: matches!(
            get("MEDIA_DELETE_AFTER_COPY").as_deref(),
            Some("true" | "1" | "on")
        ),
    })
}
