//! Provider and dispatcher settings.

use std::{collections::HashMap, time::Duration};

use secrecy::SecretString;

use super::{ConfigError, err, number};
use crate::{
    dispatch::{DispatchSettings, PacingConfig},
    retry::RetryPolicy,
    twilio::TwilioAuth,
};

/// Which provider hands messages to carriers.
#[derive(Clone, Debug)]
pub enum ProviderConfig {
    /// Prints a masked line instead of sending (local runs).
    Console,
    Twilio(TwilioCredentials),
}

/// Twilio account and the credentials REST calls use.
#[derive(Clone, Debug)]
pub struct TwilioCredentials {
    pub account_sid: String,
    /// The first token of TWILIO_AUTH_TOKEN (the gateway also accepts the others' signatures).
    pub auth_token: SecretString,
    /// An API key (SK…) and its secret, used for REST calls instead of the auth token.
    pub api_key: Option<(String, SecretString)>,
    pub timeout: Duration,
}

impl TwilioCredentials {
    /// The Basic credentials for Twilio's REST API and its media URLs: the API key
    /// when one is configured, otherwise the account SID and auth token.
    pub fn basic_auth(&self) -> (String, SecretString) {
        match &self.api_key {
            Some((sid, secret)) => (sid.clone(), secret.clone()),
            None => (self.account_sid.clone(), self.auth_token.clone()),
        }
    }

    /// What the REST client needs: the account the API calls name, and who signs in.
    pub fn twilio_auth(&self) -> TwilioAuth {
        let (username, password) = self.basic_auth();
        TwilioAuth {
            account_sid: self.account_sid.clone(),
            username,
            password,
        }
    }
}

pub(super) fn provider(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    match get("SMS_PROVIDER").as_deref().unwrap_or("console") {
        "console" => Ok(ProviderConfig::Console),
        "twilio" => {
            let account_sid = get("TWILIO_ACCOUNT_SID")
                .filter(|s| {
                    s.len() == 34
                        && s.starts_with("AC")
                        && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
                })
                .ok_or_else(|| {
                    err(
                        "TWILIO_ACCOUNT_SID",
                        "is required with SMS_PROVIDER=twilio: AC + 32 hex characters",
                    )
                })?;
            // During a rotation the gateway checks signatures against every listed
            // token; our requests authenticate with the first (the current one).
            let auth_token = get("TWILIO_AUTH_TOKEN")
                .as_deref()
                .and_then(|list| list.split(',').map(str::trim).find(|t| !t.is_empty()))
                .map(|t| SecretString::from(t.to_owned()))
                .ok_or_else(|| err("TWILIO_AUTH_TOKEN", "is required with SMS_PROVIDER=twilio"))?;
            let api_key = match (get("TWILIO_API_KEY_SID"), get("TWILIO_API_KEY_SECRET")) {
                (Some(sid), Some(secret)) if sid.starts_with("SK") => {
                    Some((sid, SecretString::from(secret)))
                }
                (Some(_), Some(_)) => return Err(err("TWILIO_API_KEY_SID", "must start with SK")),
                (None, None) => None,
                _ => {
                    return Err(err(
                        "TWILIO_API_KEY_SID",
                        "TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET go together",
                    ));
                }
            };
            let timeout = Duration::from_secs(number(get, "TWILIO_TIMEOUT_SECS", 15, 1, 120)?);
            Ok(ProviderConfig::Twilio(TwilioCredentials {
                account_sid,
                auth_token,
                api_key,
                timeout,
            }))
        }
        _ => Err(err("SMS_PROVIDER", "must be console or twilio")),
    }
}

pub(super) fn dispatch(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<DispatchSettings, ConfigError> {
    let d = DispatchSettings::default();
    let secs = |var, default: Duration, min, max| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(number(
            get,
            var,
            default.as_secs(),
            min,
            max,
        )?))
    };
    let millis = |var, default: Duration, min, max| -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(number(
            get,
            var,
            default.as_millis() as u64,
            min,
            max,
        )?))
    };
    let settings = DispatchSettings {
        enabled: match get("OUTBOX_DISPATCHER").as_deref().unwrap_or("on") {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => return Err(err("OUTBOX_DISPATCHER", "must be on or off")),
        },
        retry: RetryPolicy {
            base: millis("OUTBOX_RETRY_BASE_MS", d.retry.base, 1, 3_600_000)?,
            max_delay: secs("OUTBOX_RETRY_MAX_SECS", d.retry.max_delay, 1, 86_400)?,
            max_attempts: number(
                get,
                "OUTBOX_MAX_ATTEMPTS",
                u64::from(d.retry.max_attempts),
                1,
                100,
            )? as u32,
        },
        pacing: PacingConfig {
            sender_sps: rate(get, "PACING_SENDER_SPS", d.pacing.sender_sps)?,
            overrides: overrides(get("PACING_SENDER_OVERRIDES"))?,
            account_sps: rate(get, "PACING_ACCOUNT_SPS", d.pacing.account_sps)?,
        },
        // At least 3 s: the heartbeat renews every third of it (one beat may be late).
        lease: secs("OUTBOX_LEASE_SECS", d.lease, 3, 3600)?,
        poll_interval: millis("OUTBOX_POLL_MS", d.poll_interval, 10, 60_000)?,
        max_in_flight: match get("OUTBOX_CONCURRENCY") {
            // Renamed: a fixed count was the wrong knob (in flight is sized by latency).
            Some(_) => {
                return Err(err(
                    "OUTBOX_CONCURRENCY",
                    "was replaced by OUTBOX_MAX_IN_FLIGHT (the cap; sends in flight follow pacing × Twilio's latency)",
                ));
            }
            None => number(
                get,
                "OUTBOX_MAX_IN_FLIGHT",
                d.max_in_flight as u64,
                1,
                10_000,
            )? as usize,
        },
        unknown_settle: secs("OUTBOX_UNKNOWN_SETTLE_SECS", d.unknown_settle, 1, 3_600)?,
        validity: secs("MESSAGE_VALIDITY_SECS", d.validity, 1, 36_000)?,
        max_inline_wait: Duration::from_millis(number(
            get,
            "PACING_MAX_WAIT_MS",
            d.max_inline_wait.as_millis() as u64,
            0,
            10_000,
        )?),
        reconcile_after: secs("RECONCILE_AFTER_SECS", d.reconcile_after, 1, 86_400)?,
        reconcile_interval: millis("RECONCILE_INTERVAL_MS", d.reconcile_interval, 10, 3_600_000)?,
        reconcile_max_age: d.reconcile_max_age,
        shutdown_grace: millis("OUTBOX_SHUTDOWN_GRACE_MS", d.shutdown_grace, 0, 600_000)?,
    };
    Ok(settings)
}

/// An unknown outcome is settled by look-ups only once the create we stopped waiting
/// for cannot still be running at Twilio. (The lease need not outlive a send any more:
/// the heartbeat renews it while the dispatcher lives.)
pub(super) fn check_lease(
    settings: &DispatchSettings,
    provider: &ProviderConfig,
) -> Result<(), ConfigError> {
    let call = match provider {
        ProviderConfig::Console => Duration::from_secs(1),
        ProviderConfig::Twilio(t) => t.timeout,
    };
    // A create we stopped waiting for may still finish at Twilio: a look-up is
    // trusted only past our timeout (the default, 60 s, adds Twilio's list lag).
    let settle_needed = call + Duration::from_secs(1);
    if settings.unknown_settle < settle_needed {
        return Err(err(
            "OUTBOX_UNKNOWN_SETTLE_SECS",
            format!(
                "must be at least {} s (TWILIO_TIMEOUT_SECS + 1 s: a create may finish after we stop waiting)",
                settle_needed.as_secs_f64().ceil()
            ),
        ));
    }
    Ok(())
}

fn rate(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => parse_rate(&v)
            .ok_or_else(|| err(var, "must be a positive number of segments per second")),
    }
}

fn parse_rate(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 100_000.0)
}

/// `+15005550006:100,+15005550007:10`
fn overrides(spec: Option<String>) -> Result<HashMap<String, f64>, ConfigError> {
    let var = "PACING_SENDER_OVERRIDES";
    let mut out = HashMap::new();
    for entry in spec
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (number, r) = entry
            .rsplit_once(':')
            .ok_or_else(|| err(var, format!("`{entry}` is not number:rate")))?;
        let number = crate::phone::parse_e164("number", number.trim())
            .map_err(|e| err(var, e.to_string()))?;
        let r = parse_rate(r)
            .ok_or_else(|| err(var, format!("`{entry}`: rate must be a positive number")))?;
        out.insert(number, r);
    }
    Ok(out)
}

/// WatchEvents and event retention.
#[derive(Clone, Debug)]
pub struct EventSettings {
    /// Events older than this are pruned; a cursor older than that must resync.
    pub retention: Duration,
    pub prune_interval: Duration,
    /// Wake-ups a stream may fall behind before catching up from the table.
    pub broadcast_capacity: usize,
    pub watch: crate::messaging::WatchSettings,
}

pub(super) fn events(get: &impl Fn(&str) -> Option<String>) -> Result<EventSettings, ConfigError> {
    let defaults = crate::messaging::WatchSettings::default();
    Ok(EventSettings {
        retention: Duration::from_secs(number(
            get,
            "EVENT_RETENTION_SECS",
            7 * 86_400,
            1,
            366 * 86_400,
        )?),
        prune_interval: Duration::from_millis(number(
            get,
            "EVENT_PRUNE_INTERVAL_MS",
            3_600_000,
            10,
            86_400_000,
        )?),
        broadcast_capacity: number(get, "EVENT_BROADCAST_CAPACITY", 1024, 1, 1_000_000)? as usize,
        watch: crate::messaging::WatchSettings {
            keepalive: Duration::from_millis(number(
                get,
                "WATCH_KEEPALIVE_MS",
                15_000,
                10,
                3_600_000,
            )?),
            max_per_user: number(
                get,
                "MESSAGING_MAX_WATCH_STREAMS_PER_USER",
                defaults.max_per_user as u64,
                1,
                100_000,
            )? as usize,
            ..defaults
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn the_old_fixed_concurrency_is_refused_by_name() {
        let e = dispatch(&with(&[("OUTBOX_CONCURRENCY", "8")])).unwrap_err();
        assert_eq!(e.var, "OUTBOX_CONCURRENCY");
        assert!(e.reason.contains("OUTBOX_MAX_IN_FLIGHT"), "{}", e.reason);
        let d = dispatch(&with(&[("OUTBOX_MAX_IN_FLIGHT", "1500")])).unwrap();
        assert_eq!(d.max_in_flight, 1500);
        assert_eq!(dispatch(&with(&[])).unwrap().max_in_flight, 1000);
    }

    #[test]
    fn a_settle_time_shorter_than_twilios_timeout_is_refused() {
        let d = dispatch(&with(&[("OUTBOX_UNKNOWN_SETTLE_SECS", "10")])).unwrap();
        let twilio = |secs| {
            provider(&with(&[
                ("SMS_PROVIDER", "twilio"),
                ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
                ("TWILIO_AUTH_TOKEN", "token-0123456789abcdef0123456789ab"),
                ("TWILIO_TIMEOUT_SECS", secs),
            ]))
            .unwrap()
        };
        let e = check_lease(&d, &twilio("15")).unwrap_err();
        assert_eq!(e.var, "OUTBOX_UNKNOWN_SETTLE_SECS");
        assert!(e.reason.contains("16 s"), "{}", e.reason);
        check_lease(&d, &twilio("9")).unwrap();
        check_lease(&dispatch(&with(&[])).unwrap(), &twilio("15")).unwrap();
    }
}
