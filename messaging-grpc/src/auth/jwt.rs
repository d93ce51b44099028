//! JWT verification (HS256 in dev, RS256/ES256/EdDSA public key in production) and
//! token issuing for `messaging token`.

use std::time::Duration;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
    get_current_timestamp,
};
use serde::{Deserialize, Serialize};

use super::{Caller, Role};

/// Longest `sub` accepted; ids are stored in every row.
const MAX_SUB_LEN: usize = 128;

/// The claims we read after jsonwebtoken validated exp/nbf/iss/aud. Everything is
/// optional here so that a missing claim is reported by the validator by name rather
/// than as a parse failure; `aud` may be a string or an array, which serde ignores here.
#[derive(Debug, Deserialize)]
struct VerifiedClaims {
    sub: Option<String>,
    exp: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Registered and private claims of the tokens we issue.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Why a token was refused. Messages are safe to return to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization metadata (expected `authorization: Bearer <token>`)")]
    Missing,
    #[error("authorization must be `Bearer <token>`")]
    NotBearer,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token algorithm is not accepted")]
    BadAlgorithm,
    #[error("token audience is not accepted")]
    BadAudience,
    #[error("token issuer is not accepted")]
    BadIssuer,
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(String),
    #[error("token `sub` must be 1-128 printable characters")]
    BadSubject,
    #[error("token is malformed")]
    Malformed,
    #[error("token is too large (at most 8192 bytes)")]
    TooLarge,
}

/// Key material tokens are verified with. Exactly one algorithm is accepted.
pub enum VerifierKey {
    Hs256(Vec<u8>),
    /// A PEM public key; the algorithm must match its type (RS256/RS384/RS512/PS256,
    /// ES256/ES384, or EdDSA).
    PublicPem {
        pem: Vec<u8>,
        algorithm: Algorithm,
    },
}

/// Verifies bearer tokens into a [`Caller`].
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn new(key: VerifierKey, issuer: &str, audience: &str) -> Result<Self, String> {
        let (key, algorithm) = match key {
            VerifierKey::Hs256(secret) => {
                if secret.len() < 32 {
                    return Err("the HS256 secret must be at least 32 bytes".into());
                }
                (DecodingKey::from_secret(&secret), Algorithm::HS256)
            }
            VerifierKey::PublicPem { pem, algorithm } => {
                let key = match algorithm {
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => DecodingKey::from_rsa_pem(&pem),
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    other => return Err(format!("{other:?} is not a public-key algorithm")),
                }
                .map_err(|e| format!("reading the public key for {algorithm:?}: {e}"))?;
                (key, algorithm)
            }
        };
        // One algorithm only: a token cannot pick a weaker or confusable one (alg=none,
        // or HS256 signed with the public key as secret).
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self { key, validation })
    }

    /// Verifies `token` (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let data =
            decode::<VerifiedClaims>(token, &self.key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        AuthError::BadAlgorithm
                    }
                    ErrorKind::InvalidAudience => AuthError::BadAudience,
                    ErrorKind::InvalidIssuer => AuthError::BadIssuer,
                    ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
                    _ => AuthError::Malformed,
                }
            })?;
        let claims = data.claims;
        let sub = claims
            .sub
            .ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
        if sub.is_empty() || sub.chars().count() > MAX_SUB_LEN || sub.chars().any(char::is_control)
        {
            return Err(AuthError::BadSubject);
        }
        // Unknown roles are ignored: other CommPro services may define their own.
        let roles = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        Ok(Caller {
            user_id: sub,
            roles,
            // Required and validated above; absent only if the validator changes.
            expires_at: claims
                .exp
                .ok_or_else(|| AuthError::MissingClaim("exp".into()))?,
        })
    }
}

/// Issues HS256 tokens (dev and tests).
pub struct JwtIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl JwtIssuer {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn issue(&self, user_id: &str, roles: &[Role], ttl: Duration) -> Result<String, String> {
        let now = get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl.as_secs(),
            nbf: None,
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.key).map_err(|e| e.to_string())
    }
}
