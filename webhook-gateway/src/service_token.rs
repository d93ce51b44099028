//! The gateway's own credential towards the core: a JWT with role `gateway`, either
//! given (GATEWAY_SERVICE_TOKEN, issued by CommPro's auth service) or minted here with
//! a signing key (the shared HS256 secret in dev, or the gateway's own private key,
//! GATEWAY_SERVICE_KEY_FILE) and renewed before it expires.
//!
//! A given token cannot be renewed here, so its lifetime is checked: the gateway
//! refuses to start with one that expires within [`MIN_FIXED_VALIDITY`], and reports
//! not ready during the last [`NOT_READY_BEFORE_EXPIRY`] of it, so the replica is
//! taken out of the load balancer (and restarted with a new token) before webhooks
//! start failing.

use std::{
    fmt,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Lifetime of a minted token.
const LIFETIME: Duration = Duration::from_secs(300);
/// A given token must be valid at least this long when the gateway starts.
pub const MIN_FIXED_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// A given token this close to its expiry makes `/readyz` answer 503.
pub const NOT_READY_BEFORE_EXPIRY: Duration = Duration::from_secs(3600);
/// The `sub` of minted tokens.
const SUBJECT: &str = "webhook-gateway";

/// The bearer token the gateway sends the core.
pub enum ServiceToken {
    /// Issued elsewhere (GATEWAY_SERVICE_TOKEN), sent as it is until `exp`.
    Fixed { token: SecretString, exp: u64 },
    /// Minted here, cached until a minute before expiry.
    Minted {
        key: EncodingKey,
        algorithm: Algorithm,
        issuer: String,
        audience: String,
        cache: Mutex<Option<(String, u64)>>,
    },
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { exp, .. } => f
                .debug_struct("Fixed")
                .field("token", &"[REDACTED]")
                .field("exp", exp)
                .finish(),
            Self::Minted {
                algorithm,
                issuer,
                audience,
                ..
            } => f
                .debug_struct("Minted")
                .field("key", &"[REDACTED]")
                .field("algorithm", algorithm)
                .field("issuer", issuer)
                .field("audience", audience)
                .finish(),
        }
    }
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

/// The only claim read from a given token (its signature is the core's business).
#[derive(Deserialize)]
struct Expiry {
    exp: Option<u64>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `exp` of a JWT, read without verifying it.
fn expiry_of(token: &str) -> Result<u64, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("is not a JWT (header.payload.signature)")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "is not a JWT: its payload is not base64url")?;
    let claims: Expiry =
        serde_json::from_slice(&bytes).map_err(|_| "is not a JWT: its payload is not JSON")?;
    claims
        .exp
        .ok_or_else(|| "has no `exp` claim: a service token must expire".to_owned())
}

impl ServiceToken {
    /// A token issued elsewhere, refused when it expires within [`MIN_FIXED_VALIDITY`]
    /// of `now` (Unix seconds) or has no expiry at all.
    pub fn fixed_at(token: String, now: u64) -> Result<Self, String> {
        let exp = expiry_of(&token)?;
        let min = MIN_FIXED_VALIDITY.as_secs();
        if exp < now + min {
            let left = exp.saturating_sub(now);
            return Err(format!(
                "expires in {}h{:02}m; a token that cannot be renewed here must be valid for more than {}h \
                 (issue a new one, or give the gateway a signing key: GATEWAY_SERVICE_KEY_FILE)",
                left / 3600,
                left % 3600 / 60,
                min / 3600,
            ));
        }
        Ok(Self::Fixed {
            token: SecretString::from(token),
            exp,
        })
    }

    /// [`ServiceToken::fixed_at`] now.
    pub fn fixed(token: String) -> Result<Self, String> {
        Self::fixed_at(token, now())
    }

    /// Tokens minted with `secret` for `issuer` and `audience`, role `gateway`.
    pub fn mint_hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::mint(
            EncodingKey::from_secret(secret),
            Algorithm::HS256,
            issuer,
            audience,
        )
    }

    /// Tokens minted with a key of `algorithm` (the gateway's own private key).
    pub fn mint(key: EncodingKey, algorithm: Algorithm, issuer: &str, audience: &str) -> Self {
        Self::Minted {
            key,
            algorithm,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            cache: Mutex::new(None),
        }
    }

    /// Whether the credential still works well beyond `now`: a given token not in
    /// its last [`NOT_READY_BEFORE_EXPIRY`]; minted tokens always (they are renewed).
    pub fn usable_at(&self, now: u64) -> bool {
        match self {
            Self::Fixed { exp, .. } => now + NOT_READY_BEFORE_EXPIRY.as_secs() < *exp,
            Self::Minted { .. } => true,
        }
    }

    /// [`ServiceToken::usable_at`] now.
    pub fn usable(&self) -> bool {
        self.usable_at(now())
    }

    /// The bearer token to send now.
    pub fn bearer(&self) -> Result<String, jsonwebtoken::errors::Error> {
        match self {
            Self::Fixed { token, .. } => Ok(token.expose_secret().to_owned()),
            Self::Minted {
                key,
                algorithm,
                issuer,
                audience,
                cache,
            } => {
                let now = now();
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                // Renew a minute before expiry so a token never expires in flight.
                if let Some((token, exp)) = cache.as_ref()
                    && *exp > now + 60
                {
                    return Ok(token.clone());
                }
                let exp = now + LIFETIME.as_secs();
                let claims = Claims {
                    sub: SUBJECT,
                    iss: issuer,
                    aud: audience,
                    iat: now,
                    exp,
                    roles: ["gateway"],
                };
                let token = encode(&Header::new(*algorithm), &claims, key)?;
                *cache = Some((token.clone(), exp));
                Ok(token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_expiring_at(exp: Option<u64>) -> String {
        let claims = match exp {
            Some(exp) => serde_json::json!({"sub": "webhook-gateway", "exp": exp}),
            None => serde_json::json!({"sub": "webhook-gateway"}),
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"issued-elsewhere-secret-0123456789abcdef"),
        )
        .unwrap()
    }

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 24 * 3600;

    #[test]
    fn a_given_token_must_outlive_a_day() {
        for (exp, why) in [
            (Some(NOW + DAY - 60), "a minute short of a day"),
            (Some(NOW - 10), "already expired"),
            (None, "never expires"),
        ] {
            let err = ServiceToken::fixed_at(token_expiring_at(exp), NOW).unwrap_err();
            assert!(err.contains("exp"), "{why}: {err}");
        }
        assert!(ServiceToken::fixed_at("not-a-jwt".into(), NOW).is_err());
        let ok = ServiceToken::fixed_at(token_expiring_at(Some(NOW + 2 * DAY)), NOW).unwrap();
        assert_eq!(ok.bearer().unwrap(), token_expiring_at(Some(NOW + 2 * DAY)));
    }

    #[test]
    fn a_given_token_is_not_ready_in_its_last_hour() {
        let exp = NOW + 2 * DAY;
        let token = ServiceToken::fixed_at(token_expiring_at(Some(exp)), NOW).unwrap();
        assert!(token.usable_at(NOW));
        assert!(token.usable_at(exp - 3601));
        assert!(!token.usable_at(exp - 3600), "an hour before expiry");
        assert!(!token.usable_at(exp + 1), "expired");
        let minted = ServiceToken::mint_hs256(b"0123456789abcdef0123456789abcdef", "i", "a");
        assert!(minted.usable_at(exp + DAY), "minted tokens are renewed");
    }

    #[test]
    fn debug_never_prints_the_token_or_the_key() {
        let raw = token_expiring_at(Some(NOW + 2 * DAY));
        let fixed = ServiceToken::fixed_at(raw.clone(), NOW).unwrap();
        assert!(!format!("{fixed:?}").contains(&raw));
        let minted = ServiceToken::mint_hs256(b"0123456789abcdef0123456789abcdef", "i", "a");
        let printed = format!("{minted:?}");
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(printed.contains("[REDACTED]"));
    }
}
