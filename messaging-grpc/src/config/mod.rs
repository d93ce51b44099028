//! Typed configuration from environment variables, validated at start-up.
//!
//! Every variable has a working default for the local run (see docs/configuration.md).
//! `messaging dev` fills in missing secrets from the data folder, creating them on
//! first run; `messaging serve` refuses to start without real ones.

use std::{collections::HashMap, net::SocketAddr, num::NonZeroUsize, path::PathBuf, sync::Arc};

use jsonwebtoken::Algorithm as JwtAlgorithm;
use secrecy::{ExposeSecret, SecretBox};

mod delivery;
mod media;
mod redacted;
mod retention;
mod schedule;
mod tls;

pub use delivery::{EventSettings, ProviderConfig, TwilioCredentials};
pub use redacted::url_without_password;
pub use tls::GrpcTls;

use crate::{
    auth::{JwtVerifier, VerifierKey},
    crypto::{Algorithm, MasterKeyRing},
    dev_secrets::DevSecrets,
    dispatch::DispatchSettings,
};

/// How secrets that are not configured are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Generate and reuse dev secrets under MESSAGING_DATA_DIR.
    Dev,
    /// Require MESSAGING_MASTER_KEYS and a JWT key.
    Serve,
}

/// Where JWTs are verified from.
pub enum JwtKeyConfig {
    Hs256(SecretBox<Vec<u8>>),
    PublicKeyFile {
        path: PathBuf,
        algorithm: JwtAlgorithm,
    },
}

/// The whole configuration of the core (and of the gateway when run by `dev`).
pub struct Config {
    pub grpc_addr: SocketAddr,
    /// TLS (and optionally mutual TLS) on the gRPC listener (MESSAGING_GRPC_TLS_*).
    pub grpc_tls: Option<Arc<GrpcTls>>,
    pub gateway_addr: SocketAddr,
    pub core_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// PostgreSQL: the write pipeline's connections (DATABASE_WRITERS); SQLite has one.
    pub database_writers: usize,
    pub master_keys: Arc<MasterKeyRing>,
    pub cipher: Algorithm,
    pub key_cache_size: NonZeroUsize,
    pub jwt_key: JwtKeyConfig,
    /// The gateway's own public key (JWT_GATEWAY_PUBLIC_KEY_FILE): tokens it signs are
    /// accepted on MessagingIngest only, as the `gateway` role only.
    pub jwt_gateway_key: Option<JwtKeyConfig>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub sms_provider: ProviderConfig,
    pub dispatch: DispatchSettings,
    pub events: EventSettings,
    pub media: crate::media::MediaSettings,
    /// How far ahead SendSms/SendMms may schedule a message.
    pub schedule: crate::messaging::ScheduleSettings,
    pub twilio_api_base: String,
    pub gateway_public_url: String,
    /// GATEWAY_CONNECTION_OVERRIDES: Twilio connection overrides (`rc=3&rp=all`…)
    /// appended as the fragment of the StatusCallback URL, as on the webhook URLs.
    pub connection_overrides: Option<String>,
    /// Where Prometheus scrapes the core (MESSAGING_METRICS_ADDR; `off`: nowhere).
    pub metrics_addr: Option<SocketAddr>,
    /// Message retention (MESSAGE_RETENTION_DAYS and its tuning); None keeps forever.
    pub retention: Option<crate::retention::RetentionSettings>,
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// The fragment Twilio reads connection overrides from, without its `#`.
fn connection_overrides(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let value = raw
        .map(|v| v.trim_start_matches('#').to_owned())
        .filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.contains(['#', ' ', '\t'])) {
        return Err(err(
            "GATEWAY_CONNECTION_OVERRIDES",
            "expected the fragment of the Twilio URLs, such as ct=2000&rt=6000&rc=3&rp=all",
        ));
    }
    Ok(value)
}

/// A whole number from `min` to `max` in `var`, or `default` when unset.
pub(crate) fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| err(var, format!("must be a whole number from {min} to {max}"))),
    }
}

pub(crate) fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect(), mode)
    }

    /// Reads configuration from a map of variables (tests pass their own).
    pub fn from_vars(vars: &HashMap<String, String>, mode: Mode) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let addr = |k: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            get(k)
                .as_deref()
                .unwrap_or(default)
                .parse()
                .map_err(|_| err(k, "must be host:port, e.g. 127.0.0.1:50051"))
        };

        let data_dir = PathBuf::from(get("MESSAGING_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = get("DATABASE_URL").unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("messaging.db").display()
            )
        });
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        let dev = DevSecrets::new(&data_dir);

        let master_keys = match (get("MESSAGING_MASTER_KEYS"), mode) {
            (Some(spec), _) => {
                MasterKeyRing::parse(&spec).map_err(|e| err("MESSAGING_MASTER_KEYS", e))?
            }
            (None, Mode::Dev) => dev
                .master_keys()
                .map_err(|e| err("MESSAGING_MASTER_KEYS", e))?,
            (None, Mode::Serve) => {
                return Err(err(
                    "MESSAGING_MASTER_KEYS",
                    "is required (comma list of id:base64 32-byte keys; `messaging keys generate` makes one, `messaging dev` uses a generated dev key)",
                ));
            }
        };

        let jwt_key = match (get("JWT_HS256_SECRET"), get("JWT_PUBLIC_KEY_FILE"), mode) {
            (Some(_), Some(_), _) => {
                return Err(err(
                    "JWT_HS256_SECRET",
                    "set either JWT_HS256_SECRET or JWT_PUBLIC_KEY_FILE, not both",
                ));
            }
            (Some(secret), None, _) => {
                JwtKeyConfig::Hs256(SecretBox::new(Box::new(secret.into_bytes())))
            }
            (None, Some(path), _) => JwtKeyConfig::PublicKeyFile {
                path: path.into(),
                algorithm: public_key_algorithm(&get, "JWT_ALGORITHM", "RS256")?,
            },
            (None, None, Mode::Dev) => {
                JwtKeyConfig::Hs256(dev.jwt_secret().map_err(|e| err("JWT_HS256_SECRET", e))?)
            }
            (None, None, Mode::Serve) => {
                return Err(err(
                    "JWT_PUBLIC_KEY_FILE",
                    "is required (or JWT_HS256_SECRET for a shared secret)",
                ));
            }
        };

        let jwt_gateway_key = match get("JWT_GATEWAY_PUBLIC_KEY_FILE") {
            None => None,
            Some(path) => Some(JwtKeyConfig::PublicKeyFile {
                path: path.into(),
                algorithm: public_key_algorithm(&get, "JWT_GATEWAY_ALGORITHM", "EdDSA")?,
            }),
        };

        let sms_provider = delivery::provider(&get)?;
        let dispatch = delivery::dispatch(&get)?;
        delivery::check_lease(&dispatch, &sms_provider)?;

        let key_cache_size = get("MESSAGING_KEY_CACHE_SIZE")
            .map(|v| {
                v.parse::<NonZeroUsize>()
                    .map_err(|_| err("MESSAGING_KEY_CACHE_SIZE", "must be a positive integer"))
            })
            .transpose()?
            .unwrap_or(NonZeroUsize::new(10_000).expect("non-zero literal"));

        let media_settings = media::media(&get, mode, &data_dir, &sms_provider)?;
        let config = Self {
            grpc_addr: addr("MESSAGING_GRPC_ADDR", "127.0.0.1:50051")?,
            grpc_tls: tls::grpc_tls(&get)?.map(Arc::new),
            gateway_addr: addr("GATEWAY_HTTP_ADDR", "127.0.0.1:3003")?,
            core_url: get("MESSAGING_CORE_URL").unwrap_or_else(|| "http://127.0.0.1:50051".into()),
            data_dir,
            database_url,
            database_writers: number(
                &get,
                "DATABASE_WRITERS",
                crate::store::POSTGRES_WRITERS as u64,
                1,
                64,
            )? as usize,
            master_keys: Arc::new(master_keys),
            cipher: get("MESSAGING_CIPHER")
                .map(|v| v.parse().map_err(|e: String| err("MESSAGING_CIPHER", e)))
                .transpose()?
                .unwrap_or_default(),
            key_cache_size,
            jwt_key,
            jwt_gateway_key,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "commpro-auth".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "commpro-messaging".into()),
            sms_provider,
            dispatch,
            events: delivery::events(&get)?,
            media: media_settings,
            schedule: schedule::bounded_by_retention(
                &get,
                schedule::schedule(&get)?,
                retention::retention(&get)?.as_ref(),
            )?,
            twilio_api_base: get("TWILIO_API_BASE")
                .unwrap_or_else(|| "https://api.twilio.com".into()),
            gateway_public_url: get("GATEWAY_PUBLIC_URL")
                .unwrap_or_else(|| "http://127.0.0.1:3003".into()),
            connection_overrides: connection_overrides(get("GATEWAY_CONNECTION_OVERRIDES"))?,
            metrics_addr: match get("MESSAGING_METRICS_ADDR").as_deref() {
                Some("off") => None,
                _ => Some(addr("MESSAGING_METRICS_ADDR", "127.0.0.1:9464")?),
            },
            retention: retention::retention(&get)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (var, url) in [
            ("MESSAGING_CORE_URL", &self.core_url),
            ("TWILIO_API_BASE", &self.twilio_api_base),
            ("GATEWAY_PUBLIC_URL", &self.gateway_public_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(var, "must be an http:// or https:// URL"));
            }
        }
        // Fail now, not on the first request, if the JWT key is unusable.
        self.jwt_verifier()?;
        self.jwt_gateway_verifier()?;
        Ok(())
    }

    /// Whether user and admin tokens are checked with a shared secret: whoever holds
    /// it (every service that mints tokens, and the gateway) can mint an admin token.
    pub fn uses_shared_jwt_secret(&self) -> bool {
        matches!(self.jwt_key, JwtKeyConfig::Hs256(_))
    }

    /// The verifier of the gateway's self-minted tokens: its public key, issuer and
    /// subject `webhook-gateway`, our audience.
    pub fn jwt_gateway_verifier(&self) -> Result<Option<JwtVerifier>, ConfigError> {
        let Some(key) = &self.jwt_gateway_key else {
            return Ok(None);
        };
        let key = verifier_key(key, "JWT_GATEWAY_PUBLIC_KEY_FILE")?;
        JwtVerifier::new(key, GATEWAY_TOKEN_ISSUER, &self.jwt_audience)
            .map(Some)
            .map_err(|e| err("JWT_GATEWAY_PUBLIC_KEY_FILE", e))
    }

    /// The verifier for incoming tokens.
    pub fn jwt_verifier(&self) -> Result<JwtVerifier, ConfigError> {
        let var = match self.jwt_key {
            JwtKeyConfig::Hs256(_) => "JWT_HS256_SECRET",
            JwtKeyConfig::PublicKeyFile { .. } => "JWT_PUBLIC_KEY_FILE",
        };
        let key = verifier_key(&self.jwt_key, var)?;
        JwtVerifier::new(key, &self.jwt_issuer, &self.jwt_audience).map_err(|e| err(var, e))
    }
}

/// The `iss` of the tokens the gateway mints with its own private key.
pub const GATEWAY_TOKEN_ISSUER: &str = "webhook-gateway";

/// A public-key algorithm named in `var`.
fn public_key_algorithm(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<JwtAlgorithm, ConfigError> {
    Ok(match get(var).as_deref().unwrap_or(default) {
        "RS256" => JwtAlgorithm::RS256,
        "RS384" => JwtAlgorithm::RS384,
        "RS512" => JwtAlgorithm::RS512,
        "PS256" => JwtAlgorithm::PS256,
        "ES256" => JwtAlgorithm::ES256,
        "ES384" => JwtAlgorithm::ES384,
        "EdDSA" => JwtAlgorithm::EdDSA,
        _ => {
            return Err(err(
                var,
                "must be one of RS256 RS384 RS512 PS256 ES256 ES384 EdDSA",
            ));
        }
    })
}

/// The key material of `key`, reading a PEM file (named by `var` in errors).
fn verifier_key(key: &JwtKeyConfig, var: &'static str) -> Result<VerifierKey, ConfigError> {
    Ok(match key {
        JwtKeyConfig::Hs256(secret) => VerifierKey::Hs256(secret.expose_secret().clone()),
        JwtKeyConfig::PublicKeyFile { path, algorithm } => VerifierKey::PublicPem {
            pem: std::fs::read(path)
                .map_err(|e| err(var, format!("reading {}: {e}", path.display())))?,
            algorithm: *algorithm,
        },
    })
}
