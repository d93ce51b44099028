//! How configuration prints: every field an operator may want to see in a start-up
//! dump or a panic message, and never a secret. Secrets print as `[REDACTED]`, database
//! URLs without their password.

use std::fmt;

use secrecy::ExposeSecret;

use super::{Config, JwtKeyConfig};

use crate::redact::REDACTED;

/// `url` with the password of its user-info (`postgres://user:pw@host/db`) and any
/// `password=` query parameter replaced by [`REDACTED`].
pub fn url_without_password(url: &str) -> String {
    let mut out = url.to_owned();
    // `scheme://user:password@host…`: the user-info ends at the last `@` before the path.
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, REDACTED);
        }
    }
    if let Some((base, query)) = out.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
}

impl fmt::Debug for JwtKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hs256(secret) => f
                .debug_struct("Hs256")
                .field("secret_len", &secret.expose_secret().len())
                .field("secret", &REDACTED)
                .finish(),
            Self::PublicKeyFile { path, algorithm } => f
                .debug_struct("PublicKeyFile")
                .field("path", path)
                .field("algorithm", algorithm)
                .finish(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("grpc_addr", &self.grpc_addr)
            .field("grpc_tls", &self.grpc_tls)
            .field("gateway_addr", &self.gateway_addr)
            .field("core_url", &self.core_url)
            .field("data_dir", &self.data_dir)
            .field("database_url", &url_without_password(&self.database_url))
            .field("master_keys", &self.master_keys)
            .field("cipher", &self.cipher)
            .field("key_cache_size", &self.key_cache_size)
            .field("jwt_key", &self.jwt_key)
            .field("jwt_gateway_key", &self.jwt_gateway_key)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("sms_provider", &self.sms_provider)
            .field("dispatch", &self.dispatch)
            .field("events", &self.events)
            .field("media", &self.media)
            .field("schedule", &self.schedule)
            .field("twilio_api_base", &self.twilio_api_base)
            .field("gateway_public_url", &self.gateway_public_url)
            .field("connection_overrides", &self.connection_overrides)
            .field("metrics_addr", &self.metrics_addr)
            .field("retention", &self.retention)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Mode;

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(
            url_without_password("postgres://app:s3cr3t-pw@db:5432/messaging"),
            "postgres://app:[REDACTED]@db:5432/messaging"
        );
        assert_eq!(
            url_without_password(
                "postgres://db/messaging?user=app&password=s3cr3t-pw&sslmode=require"
            ),
            "postgres://db/messaging?user=app&password=[REDACTED]&sslmode=require"
        );
        assert_eq!(
            url_without_password("sqlite://./data/messaging.db?mode=rwc"),
            "sqlite://./data/messaging.db?mode=rwc"
        );
    }

    /// Every secret the core is configured with, in one configuration: none of them
    /// may appear in its debug print, and what operators need to see still does.
    #[test]
    fn no_secret_in_the_debug_print_of_the_configuration() {
        let secrets = [
            (
                "JWT_HS256_SECRET",
                "jwt-secret-0123456789abcdef0123456789abcdef",
            ),
            ("TWILIO_AUTH_TOKEN", "twilio-auth-token-0123456789abcdef"),
            ("TWILIO_API_KEY_SECRET", "twilio-api-key-secret-0123456789"),
            (
                "MEDIA_URL_SECRET",
                "media-url-secret-0123456789abcdef0123456789",
            ),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-access-key-0123456789"),
            ("AWS_SESSION_TOKEN", "aws-session-token-0123456789abcdef"),
        ];
        let master = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let mut vars: HashMap<String, String> = secrets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.extend(
            [
                ("MESSAGING_MASTER_KEYS", master),
                (
                    "DATABASE_URL",
                    "postgres://app:db-password-0123456789@db/messaging",
                ),
                ("SMS_PROVIDER", "twilio"),
                ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
                ("TWILIO_API_KEY_SID", "SK00000000000000000000000000000001"),
                ("MEDIA_STORE", "s3://bucket/prefix"),
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let config = Config::from_vars(&vars, Mode::Serve).unwrap();
        let printed = format!("{config:?}");
        for (var, secret) in secrets {
            assert!(!printed.contains(secret), "{var} printed: {printed}");
        }
        assert!(
            !printed.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
            "master key printed"
        );
        assert!(
            !printed.contains("db-password-0123456789"),
            "database password printed"
        );
        for visible in [
            "postgres://app:[REDACTED]@db/messaging",
            "AC00000000000000000000000000000001",
            "s3://bucket/prefix",
            "k1",
        ] {
            assert!(
                printed.contains(visible),
                "{visible} missing from {printed}"
            );
        }
        // The pieces print safely on their own too.
        let media = format!("{:?}", config.media);
        assert!(!media.contains("media-url-secret") && !media.contains("aws-secret-access-key"));
        assert!(media.contains("AKIAEXAMPLE"), "{media}");
    }
}
