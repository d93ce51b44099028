//! Gateway configuration (environment variables in docs/configuration.md).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hyper::header::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::SecretString;

use crate::{error::GatewayError, service_token::ServiceToken};

/// Everything the gateway needs.
pub struct GatewayConfig {
    /// Where the core's gRPC server listens (MESSAGING_CORE_URL).
    pub core_url: String,
    /// TLS to the core (an https:// MESSAGING_CORE_URL and GATEWAY_CORE_TLS_*).
    pub core_tls: Option<Arc<crate::core_tls::CoreTls>>,
    /// The URL Twilio calls, as configured on the number (GATEWAY_PUBLIC_URL). The
    /// signature is checked against it, never against X-Forwarded-* headers.
    pub public_url: String,
    /// The connection overrides on the URLs Twilio calls, without the `#`
    /// (GATEWAY_CONNECTION_OVERRIDES, e.g. `ct=2000&rt=6000&rc=3&rp=all`). Twilio never
    /// sends the fragment, so a signature is checked over the URL with it and without it.
    pub connection_overrides: Option<String>,
    /// Our Twilio account; webhooks from other accounts are refused.
    pub account_sid: String,
    /// Auth tokens that may sign webhooks: the current one first, then any still valid
    /// during a rotation.
    pub auth_tokens: Vec<SecretString>,
    /// How the gateway proves itself to the core (role `gateway`).
    pub service_token: Arc<ServiceToken>,
    /// Verifies the `GET /media/{token}` URLs the core signs (MEDIA_URL_SECRET);
    /// without it the route answers 404.
    pub media_url_secret: Option<SecretString>,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Requests per second allowed per source address (burst: twice as many).
    pub rate_limit_per_sec: u32,
    /// Deadline of a core call.
    pub core_timeout: Duration,
    /// Time a client gets to send headers, and then its body (for the REST API: the
    /// longest pause between two pieces of a body).
    pub read_timeout: Duration,
    /// Open connections served at once (GATEWAY_MAX_CONNECTIONS); past it, new ones
    /// wait in the listen backlog, so a flood of idle sockets cannot exhaust memory or
    /// file descriptors.
    pub max_connections: usize,
    /// Open connections one source (an IPv4 address, an IPv6 /64) may hold
    /// (GATEWAY_MAX_CONNECTIONS_PER_SOURCE); trusted proxies are not capped.
    pub max_connections_per_source: usize,
    /// Time a client gets to send a whole REST request body, however steadily it
    /// sends (GATEWAY_BODY_TIMEOUT_SECS); a webhook's whole body gets `read_timeout`.
    pub body_timeout: Duration,
    /// Open `/api/events` streams per user on this gateway
    /// (GATEWAY_MAX_EVENT_STREAMS_PER_USER).
    pub max_event_streams_per_user: usize,
    /// Browser origins allowed to call the REST API (GATEWAY_CORS_ALLOWED_ORIGINS).
    pub cors_allowed_origins: CorsOrigins,
    /// Load balancers whose X-Forwarded-For is believed (GATEWAY_TRUSTED_PROXIES).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where Prometheus scrapes the gateway (GATEWAY_METRICS_ADDR; `off`: nowhere).
    /// Never the public port.
    pub metrics_addr: Option<SocketAddr>,
}

/// Prints every setting but the secrets (auth tokens, service token, media URL secret).
impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REDACTED: &str = "[REDACTED]";
        f.debug_struct("GatewayConfig")
            .field("core_url", &self.core_url)
            .field("core_tls", &self.core_tls)
            .field("public_url", &self.public_url)
            .field("connection_overrides", &self.connection_overrides)
            .field("account_sid", &self.account_sid)
            .field("auth_tokens", &vec![REDACTED; self.auth_tokens.len()])
            .field("service_token", &self.service_token)
            .field(
                "media_url_secret",
                &self.media_url_secret.as_ref().map(|_| REDACTED),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("core_timeout", &self.core_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_source",
                &self.max_connections_per_source,
            )
            .field("body_timeout", &self.body_timeout)
            .field(
                "max_event_streams_per_user",
                &self.max_event_streams_per_user,
            )
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

/// Which web origins may call the REST API from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: browsers keep other sites' pages away (the default).
    None,
    /// `*`: any site (the API takes bearer tokens, never cookies).
    Any,
    /// These origins only.
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// `*`, or a comma list of origins such as `https://app.commpro.example`.
    fn parse(raw: Option<String>) -> Result<Self, GatewayError> {
        const VAR: &str = "GATEWAY_CORS_ALLOWED_ORIGINS";
        let Some(raw) = raw else {
            return Ok(Self::None);
        };
        if raw.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let Some((scheme, host)) = origin.split_once("://") else {
                return Err(err(VAR, format!("{origin}: expected scheme://host[:port]")));
            };
            if !matches!(scheme, "http" | "https")
                || host.is_empty()
                || host.contains(['/', '?', '#', ' '])
            {
                return Err(err(
                    VAR,
                    format!("{origin}: an origin is http(s)://host[:port], without a path"),
                ));
            }
            let value = HeaderValue::from_str(origin)
                .map_err(|_| err(VAR, format!("{origin}: not a valid header value")))?;
            list.push(value);
        }
        if list.is_empty() {
            return Ok(Self::None);
        }
        Ok(Self::List(list))
    }
}

/// A configuration problem, naming the variable.
fn err(var: &'static str, reason: impl Into<String>) -> GatewayError {
    GatewayError::Config {
        var,
        reason: reason.into(),
    }
}

/// How the gateway proves itself to the core, in order of preference for production:
/// its own private key (it can mint nothing but gateway tokens), a token issued by the
/// auth service (checked to outlive a day), or the shared HS256 secret (dev).
fn service_token(get: &impl Fn(&str) -> Option<String>) -> Result<ServiceToken, GatewayError> {
    let audience = get("JWT_AUDIENCE").unwrap_or_else(|| "commpro-messaging".into());
    match (
        get("GATEWAY_SERVICE_KEY_FILE"),
        get("GATEWAY_SERVICE_TOKEN"),
        get("JWT_HS256_SECRET"),
    ) {
        (Some(_), Some(_), _) => Err(err(
            "GATEWAY_SERVICE_KEY_FILE",
            "set either GATEWAY_SERVICE_KEY_FILE or GATEWAY_SERVICE_TOKEN, not both",
        )),
        (Some(path), None, _) => {
            const VAR: &str = "GATEWAY_SERVICE_KEY_FILE";
            let pem = std::fs::read(&path).map_err(|e| err(VAR, format!("reading {path}: {e}")))?;
            let algorithm = get("GATEWAY_SERVICE_KEY_ALGORITHM").unwrap_or_else(|| "EdDSA".into());
            let (key, algorithm) = match algorithm.as_str() {
                "EdDSA" => (EncodingKey::from_ed_pem(&pem), Algorithm::EdDSA),
                "ES256" => (EncodingKey::from_ec_pem(&pem), Algorithm::ES256),
                "ES384" => (EncodingKey::from_ec_pem(&pem), Algorithm::ES384),
                "RS256" => (EncodingKey::from_rsa_pem(&pem), Algorithm::RS256),
                "PS256" => (EncodingKey::from_rsa_pem(&pem), Algorithm::PS256),
                _ => {
                    return Err(err(
                        "GATEWAY_SERVICE_KEY_ALGORITHM",
                        "must be one of EdDSA ES256 ES384 RS256 PS256",
                    ));
                }
            };
            let key =
                key.map_err(|e| err(VAR, format!("reading the {algorithm:?} private key: {e}")))?;
            let token = ServiceToken::mint(key, algorithm, SERVICE_TOKEN_ISSUER, &audience);
            // A key of the wrong type for the algorithm only fails when signing: now.
            token
                .bearer()
                .map_err(|e| err(VAR, format!("signing with the key: {e}")))?;
            Ok(token)
        }
        (None, Some(token), _) => {
            ServiceToken::fixed(token).map_err(|reason| err("GATEWAY_SERVICE_TOKEN", reason))
        }
        (None, None, Some(secret)) => Ok(ServiceToken::mint_hs256(
            secret.as_bytes(),
            &get("JWT_ISSUER").unwrap_or_else(|| "commpro-auth".into()),
            &audience,
        )),
        (None, None, None) => Err(err(
            "GATEWAY_SERVICE_TOKEN",
            "is required (a JWT with role gateway), or GATEWAY_SERVICE_KEY_FILE (the gateway's private key) or JWT_HS256_SECRET to mint one",
        )),
    }
}

/// `iss` of the tokens the gateway mints with its own key; the core accepts them from
/// JWT_GATEWAY_PUBLIC_KEY_FILE with this issuer.
pub const SERVICE_TOKEN_ISSUER: &str = "webhook-gateway";

impl GatewayConfig {
    /// Reads the gateway's variables; `get` returns a trimmed, non-empty value.
    pub fn from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<Self, GatewayError> {
        let core_url = get("MESSAGING_CORE_URL").unwrap_or_else(|| "http://127.0.0.1:50051".into());
        let public_url =
            get("GATEWAY_PUBLIC_URL").unwrap_or_else(|| "http://127.0.0.1:3003".into());
        for (var, url) in [
            ("MESSAGING_CORE_URL", &core_url),
            ("GATEWAY_PUBLIC_URL", &public_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(var, "must be an http:// or https:// URL"));
            }
        }
        let connection_overrides = get("GATEWAY_CONNECTION_OVERRIDES")
            .map(|v| v.trim_start_matches('#').to_owned())
            .filter(|v| !v.is_empty());
        if connection_overrides
            .as_ref()
            .is_some_and(|v| v.contains(['#', ' ', '\t']))
        {
            return Err(err(
                "GATEWAY_CONNECTION_OVERRIDES",
                "expected the fragment of the Twilio URLs, such as ct=2000&rt=6000&rc=3&rp=all",
            ));
        }
        let account_sid =
            get("TWILIO_ACCOUNT_SID").ok_or_else(|| err("TWILIO_ACCOUNT_SID", "is required"))?;
        let auth_tokens: Vec<SecretString> = get("TWILIO_AUTH_TOKEN")
            .ok_or_else(|| {
                err(
                    "TWILIO_AUTH_TOKEN",
                    "is required (comma list during a rotation)",
                )
            })?
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()))
            .collect();
        let service_token = service_token(get)?;
        let number = |var: &'static str, default: u64, max: u64| -> Result<u64, GatewayError> {
            get(var).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| err(var, format!("must be a whole number from 1 to {max}")))
            })
        };
        let core_tls = crate::core_tls::core_tls(get, &core_url)?.map(Arc::new);
        Ok(Self {
            core_tls,
            core_url,
            public_url: public_url.trim_end_matches('/').to_owned(),
            connection_overrides,
            account_sid,
            auth_tokens,
            service_token: Arc::new(service_token),
            media_url_secret: get("MEDIA_URL_SECRET").map(SecretString::from),
            max_body_bytes: number("GATEWAY_MAX_BODY_BYTES", 64 * 1024, 16 * 1024 * 1024)? as usize,
            rate_limit_per_sec: number("GATEWAY_RATE_LIMIT_PER_SEC", 50, 1_000_000)? as u32,
            core_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(number("GATEWAY_READ_TIMEOUT_SECS", 10, 300)?),
            max_connections: number("GATEWAY_MAX_CONNECTIONS", 10_000, 1_000_000)? as usize,
            max_connections_per_source: number(
                "GATEWAY_MAX_CONNECTIONS_PER_SOURCE",
                256,
                1_000_000,
            )? as usize,
            body_timeout: Duration::from_secs(number("GATEWAY_BODY_TIMEOUT_SECS", 60, 3600)?),
            max_event_streams_per_user: number("GATEWAY_MAX_EVENT_STREAMS_PER_USER", 8, 10_000)?
                as usize,
            cors_allowed_origins: CorsOrigins::parse(get("GATEWAY_CORS_ALLOWED_ORIGINS"))?,
            trusted_proxies: crate::client_ip::parse_trusted(
                &get("GATEWAY_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|reason| err("GATEWAY_TRUSTED_PROXIES", reason))?,
            metrics_addr: match get("GATEWAY_METRICS_ADDR").as_deref() {
                Some("off") => None,
                v => Some(
                    v.unwrap_or("127.0.0.1:9465")
                        .parse()
                        .map_err(|_| err("GATEWAY_METRICS_ADDR", "must be host:port or off"))?,
                ),
            },
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, GatewayError> {
        Self::from_vars(&|k| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    }

    /// GATEWAY_HTTP_ADDR (default 127.0.0.1:3003).
    pub fn listen_addr() -> Result<SocketAddr, GatewayError> {
        std::env::var("GATEWAY_HTTP_ADDR")
            .unwrap_or_else(|_| "127.0.0.1:3003".into())
            .parse()
            .map_err(|_| err("GATEWAY_HTTP_ADDR", "must be host:port"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let secrets = [
            (
                "TWILIO_AUTH_TOKEN",
                "auth-token-one-0123456789,auth-token-two-0123456789",
            ),
            (
                "JWT_HS256_SECRET",
                "jwt-secret-0123456789abcdef0123456789abcdef",
            ),
            (
                "MEDIA_URL_SECRET",
                "media-url-secret-0123456789abcdef012345",
            ),
        ];
        let get = |k: &str| {
            secrets
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (k == "TWILIO_ACCOUNT_SID").then(|| "AC0000000001".to_owned()))
        };
        let config = GatewayConfig::from_vars(&get).unwrap();
        let printed = format!("{config:?}");
        for word in [
            "auth-token-one",
            "auth-token-two",
            "jwt-secret",
            "media-url-secret",
        ] {
            assert!(!printed.contains(word), "{word} in {printed}");
        }
        assert!(printed.contains("AC0000000001") && printed.contains("[REDACTED]"));
    }

    #[test]
    fn cors_origins() {
        assert_eq!(CorsOrigins::parse(None).unwrap(), CorsOrigins::None);
        assert_eq!(
            CorsOrigins::parse(Some("*".into())).unwrap(),
            CorsOrigins::Any
        );
        let list = CorsOrigins::parse(Some(
            "https://app.example.com, http://localhost:3000".into(),
        ))
        .unwrap();
        assert_eq!(
            list,
            CorsOrigins::List(vec![
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        for bad in ["app.example.com", "https://app.example.com/path", "ftp://x"] {
            let e = CorsOrigins::parse(Some(bad.into())).unwrap_err();
            assert!(
                matches!(
                    e,
                    GatewayError::Config {
                        var: "GATEWAY_CORS_ALLOWED_ORIGINS",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
