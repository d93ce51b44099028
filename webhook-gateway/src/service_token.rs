//! The gateway's own credential towards the core: a JWT with role `gateway`, either
//! given (GATEWAY_SERVICE_TOKEN, issued by CommPro's auth service) or minted here with
//! the shared HS256 secret and renewed before it expires.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

const LIFETIME: Duration = Duration::from_secs(300);

/// The bearer token the gateway sends the core.
pub enum ServiceToken {
    /// Issued elsewhere (GATEWAY_SERVICE_TOKEN), sent as it is.
    Fixed(SecretString),
    /// Minted here with the shared HS256 secret, cached until a minute before expiry.
    Minted {
        key: EncodingKey,
        issuer: String,
        audience: String,
        cache: Mutex<Option<(String, u64)>>,
    },
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    roles: [&'a str; 1],
}

impl ServiceToken {
    /// A token issued elsewhere.
    pub fn fixed(token: String) -> Self {
        Self::Fixed(SecretString::from(token))
    }

    /// Tokens minted with `secret` for `issuer` and `audience`, role `gateway`.
    pub fn mint_hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::Minted {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            cache: Mutex::new(None),
        }
    }

    /// The bearer token to send now.
    pub fn bearer(&self) -> Result<String, jsonwebtoken::errors::Error> {
        match self {
            Self::Fixed(t) => Ok(t.expose_secret().to_owned()),
            Self::Minted {
                key,
                issuer,
                audience,
                cache,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                // Renew a minute before expiry so a token never expires in flight.
                if let Some((token, exp)) = cache.as_ref()
                    && *exp > now + 60
                {
                    return Ok(token.clone());
                }
                let exp = now + LIFETIME.as_secs();
                let claims = Claims {
                    sub: "webhook-gateway",
                    iss: issuer,
                    aud: audience,
                    iat: now,
                    exp,
                    roles: ["gateway"],
                };
                let token = encode(&Header::new(Algorithm::HS256), &claims, key)?;
                *cache = Some((token.clone(), exp));
                Ok(token)
            }
        }
    }
}
