//! Gateway configuration (environment variables in the README's table).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hyper::header::HeaderValue;
use secrecy::SecretString;

use crate::{error::GatewayError, service_token::ServiceToken};

/// Everything the gateway needs.
pub struct GatewayConfig {
    /// Where the core's gRPC server listens (MESSAGING_CORE_URL).
    pub core_url: String,
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
    /// Browser origins allowed to call the REST API (GATEWAY_CORS_ALLOWED_ORIGINS).
    pub cors_allowed_origins: CorsOrigins,
    /// Load balancers whose X-Forwarded-For is believed (GATEWAY_TRUSTED_PROXIES).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where Prometheus scrapes the gateway (GATEWAY_METRICS_ADDR; `off`: nowhere).
    /// Never the public port.
    pub metrics_addr: Option<SocketAddr>,
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
        let service_token = match (get("GATEWAY_SERVICE_TOKEN"), get("JWT_HS256_SECRET")) {
            (Some(token), _) => ServiceToken::fixed(token),
            (None, Some(secret)) => ServiceToken::mint_hs256(
                secret.as_bytes(),
                &get("JWT_ISSUER").unwrap_or_else(|| "commpro-auth".into()),
                &get("JWT_AUDIENCE").unwrap_or_else(|| "commpro-messaging".into()),
            ),
            (None, None) => {
                return Err(err(
                    "GATEWAY_SERVICE_TOKEN",
                    "is required (a JWT with role gateway), or JWT_HS256_SECRET to mint one",
                ));
            }
        };
        let number = |var: &'static str, default: u64, max: u64| -> Result<u64, GatewayError> {
            get(var).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| err(var, format!("must be a whole number from 1 to {max}")))
            })
        };
        Ok(Self {
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
