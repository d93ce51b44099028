//! JWT verification (HS256 in dev, RS256/ES256/EdDSA public key in production) and
//! token issuing for `messaging token`.

use std::{num::NonZeroUsize, sync::Mutex, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
    get_current_timestamp,
};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Caller, Role};

/// Verified tokens remembered (by SHA-256 of the token, never the token itself). A
/// client sends the same token on every call until it renews it, so this many covers
/// thousands of concurrent clients.
const VERIFIED_CACHE: usize = 4096;
/// Refused tokens remembered (by SHA-256), so a token sent again and again is refused
/// without another signature check. Bounded: a flood of distinct tokens only evicts
/// older refusals (each of those still costs one check, never memory).
const REFUSED_CACHE: usize = 8192;
/// How long a refusal is remembered. Every remembered reason is final for that exact
/// token (a bad signature, claim or format stays bad; an expired token stays
/// expired); the bound only keeps the memory fresh. "Not valid yet" is never
/// remembered: it changes with time.
const REFUSED_TTL_SECS: u64 = 600;
/// Seconds of clock skew allowed on `exp` and `nbf`, here and in the validator.
const LEEWAY: u64 = 30;

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
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
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
///
/// A token that verified is remembered until its `exp`: a public-key signature check
/// costs 239 µs (RS256) to 390 µs (ES256) here (BENCHMARKS.md), which every call would
/// otherwise pay again for the same token. A hit needs the exact same token (compared
/// by SHA-256), which only the key could have signed; its expiry is checked again on
/// every hit, with the same leeway as the validator.
///
/// A token that was refused is remembered too (its digest, the reason and when), so a
/// client — or an attacker — repeating a bad token costs a hash and a map look-up,
/// not a signature check each time (BENCHMARKS.md: "refused repeat token").
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    verified: Mutex<LruCache<[u8; 32], Caller>>,
    refused: Mutex<LruCache<[u8; 32], (AuthError, u64)>>,
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
        validation.leeway = LEEWAY;
        Ok(Self {
            key,
            validation,
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(VERIFIED_CACHE).expect("non-zero"),
            )),
            refused: Mutex::new(LruCache::new(
                NonZeroUsize::new(REFUSED_CACHE).expect("non-zero"),
            )),
        })
    }

    /// Verifies `token` (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_at(token, get_current_timestamp())
    }

    /// [`Self::verify`] with the cache's clock given (the validator keeps its own).
    fn verify_at(&self, token: &str, now: u64) -> Result<Caller, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            // A poisoned lock only means a panic elsewhere mid-update; the LRU is intact.
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(caller) = verified.get(&digest) {
                if now <= caller.expires_at.saturating_add(LEEWAY) {
                    return Ok(caller.clone());
                }
                verified.pop(&digest);
                return Err(AuthError::Expired);
            }
        }
        if let Some(reason) = self.remembered_refusal(&digest, now) {
            return Err(reason);
        }
        match self.verify_signature(token) {
            Ok(caller) => {
                self.verified
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put(digest, caller.clone());
                Ok(caller)
            }
            Err(reason) => {
                if reason != AuthError::NotYetValid {
                    self.refused
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .put(digest, (reason.clone(), now));
                }
                Err(reason)
            }
        }
    }

    /// The reason `digest`'s token was refused, if that was recent enough to trust.
    fn remembered_refusal(&self, digest: &[u8; 32], now: u64) -> Option<AuthError> {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match refused.get(digest) {
            Some((reason, at)) if now.saturating_sub(*at) <= REFUSED_TTL_SECS => {
                Some(reason.clone())
            }
            Some(_) => {
                refused.pop(digest);
                None
            }
            None => None,
        }
    }

    /// The full check (signature and claims) without the memory of verified tokens:
    /// what a token's first call pays (benchmarks measure it through this).
    pub fn verify_signature(&self, token: &str) -> Result<Caller, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(VerifierKey::Hs256(SECRET.to_vec()), "iss", "aud").unwrap()
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let v = verifier();
        let token = JwtIssuer::hs256(SECRET, "iss", "aud")
            .issue("alice", &[Role::Admin], Duration::from_secs(60))
            .unwrap();
        let first = v.verify(&token).unwrap();
        let now = get_current_timestamp();
        assert_eq!(v.verify_at(&token, now).unwrap(), first, "served again");
        assert_eq!(
            v.verify_at(&token, first.expires_at + LEEWAY).unwrap(),
            first,
            "within the leeway"
        );
        assert!(matches!(
            v.verify_at(&token, first.expires_at + LEEWAY + 1),
            Err(AuthError::Expired)
        ));
    }

    /// A token the verifier's key did not sign, sent again: the case a flood of bad
    /// tokens is made of (the bench measures it with ES256 and RS256 keys).
    #[test]
    fn a_refused_token_is_refused_again_without_a_signature_check() {
        let v = verifier();
        let other = JwtIssuer::hs256(b"another secret, also 32 bytes long!", "iss", "aud")
            .issue("alice", &[], Duration::from_secs(60))
            .unwrap();
        let now = get_current_timestamp();
        assert_eq!(v.verify_at(&other, now), Err(AuthError::BadSignature));
        let digest: [u8; 32] = Sha256::digest(other.as_bytes()).into();
        assert_eq!(
            v.remembered_refusal(&digest, now),
            Some(AuthError::BadSignature),
            "the refusal is remembered"
        );
        assert_eq!(v.verify_at(&other, now + 1), Err(AuthError::BadSignature));
        // Forgotten after its time; checked again (and refused again) then.
        assert_eq!(
            v.remembered_refusal(&digest, now + REFUSED_TTL_SECS + 1),
            None
        );
        // A good token is unaffected by the memory of refusals.
        let good = JwtIssuer::hs256(SECRET, "iss", "aud")
            .issue("alice", &[], Duration::from_secs(60))
            .unwrap();
        assert!(v.verify_at(&good, now).is_ok());
    }

    #[test]
    fn not_yet_valid_is_never_remembered() {
        let v = verifier();
        let now = get_current_timestamp();
        let claims = Claims {
            sub: "alice".into(),
            iss: "iss".into(),
            aud: "aud".into(),
            exp: now + 3600,
            iat: now,
            nbf: Some(now + 600),
            roles: Vec::new(),
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(v.verify_at(&token, now), Err(AuthError::NotYetValid));
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(v.remembered_refusal(&digest, now), None);
    }

    #[test]
    fn refusals_are_bounded() {
        let v = verifier();
        let now = get_current_timestamp();
        for i in 0..REFUSED_CACHE + 100 {
            let _ = v.verify_at(&format!("garbage-{i}"), now);
        }
        assert_eq!(
            v.refused.lock().unwrap().len(),
            REFUSED_CACHE,
            "memory stays bounded under a flood of distinct tokens"
        );
    }

    #[test]
    fn only_the_exact_token_is_remembered() {
        let v = verifier();
        let token = JwtIssuer::hs256(SECRET, "iss", "aud")
            .issue("alice", &[], Duration::from_secs(60))
            .unwrap();
        v.verify(&token).unwrap();
        // Same claims, signature changed: checked (and refused), not served from memory.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(v.verify(&forged).is_err());
        let other = JwtIssuer::hs256(b"another secret, also 32 bytes long!", "iss", "aud")
            .issue("alice", &[], Duration::from_secs(60))
            .unwrap();
        assert!(matches!(v.verify(&other), Err(AuthError::BadSignature)));
    }
}
