//! TLS from the gateway to the core: the connection carries users' bearer tokens and
//! the service token, so outside one machine it is encrypted. An `https://`
//! MESSAGING_CORE_URL turns it on (rustls); the core's certificate is checked against
//! GATEWAY_CORE_TLS_CA (or the system's roots without it), for the URL's host or
//! GATEWAY_CORE_TLS_DOMAIN; GATEWAY_CORE_TLS_CERT and GATEWAY_CORE_TLS_KEY give the
//! gateway a client certificate for a core that requires one (mutual TLS).

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::GatewayError;

/// The gateway's TLS settings for its core connection. Prints without the key.
pub struct CoreTls {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, SecretBox<Vec<u8>>)>,
    domain: Option<String>,
}

impl fmt::Debug for CoreTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreTls")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl CoreTls {
    /// The tonic client configuration.
    pub fn client_config(&self) -> ClientTlsConfig {
        // Both ring and aws-lc-rs are linked (sqlx, reqwest): rustls needs to be told.
        // Installing twice is refused harmlessly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key.expose_secret()));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

fn err(var: &'static str, reason: impl Into<String>) -> GatewayError {
    GatewayError::Config {
        var,
        reason: reason.into(),
    }
}

/// The TLS settings for `core_url`: `None` for `http://` (and then no TLS variable may
/// be set: a half-configured TLS must not silently fall back to plaintext).
pub(crate) fn core_tls(
    get: &impl Fn(&str) -> Option<String>,
    core_url: &str,
) -> Result<Option<CoreTls>, GatewayError> {
    const VARS: [&str; 4] = [
        "GATEWAY_CORE_TLS_CA",
        "GATEWAY_CORE_TLS_CERT",
        "GATEWAY_CORE_TLS_KEY",
        "GATEWAY_CORE_TLS_DOMAIN",
    ];
    if !core_url.starts_with("https://") {
        if let Some(var) = VARS.into_iter().find(|v| get(v).is_some()) {
            return Err(err(
                var,
                "needs an https:// MESSAGING_CORE_URL (TLS is used for https:// only)",
            ));
        }
        return Ok(None);
    }
    let read = |var: &'static str, path: String| {
        std::fs::read(&path).map_err(|e| err(var, format!("reading {path}: {e}")))
    };
    let ca_pem = get("GATEWAY_CORE_TLS_CA")
        .map(|p| read("GATEWAY_CORE_TLS_CA", p))
        .transpose()?;
    let identity = match (get("GATEWAY_CORE_TLS_CERT"), get("GATEWAY_CORE_TLS_KEY")) {
        (Some(c), Some(k)) => Some((
            read("GATEWAY_CORE_TLS_CERT", c)?,
            SecretBox::new(Box::new(read("GATEWAY_CORE_TLS_KEY", k)?)),
        )),
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "GATEWAY_CORE_TLS_KEY",
                "is required with GATEWAY_CORE_TLS_CERT",
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "GATEWAY_CORE_TLS_CERT",
                "is required with GATEWAY_CORE_TLS_KEY",
            ));
        }
    };
    Ok(Some(CoreTls {
        ca_pem,
        identity,
        domain: get("GATEWAY_CORE_TLS_DOMAIN"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(url: &str, vars: &[(&str, &str)]) -> Result<Option<CoreTls>, GatewayError> {
        core_tls(
            &|k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            },
            url,
        )
    }

    fn var_of(e: GatewayError) -> &'static str {
        match e {
            GatewayError::Config { var, .. } => var,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_settings_need_https_and_come_in_pairs() {
        assert!(read("http://core:50051", &[]).unwrap().is_none());
        assert!(read("https://core:50051", &[]).unwrap().is_some());
        let e = read("http://core:50051", &[("GATEWAY_CORE_TLS_CA", "/ca.pem")]).unwrap_err();
        assert_eq!(var_of(e), "GATEWAY_CORE_TLS_CA");
        let e = read("https://core:50051", &[("GATEWAY_CORE_TLS_CERT", "/c.pem")]).unwrap_err();
        assert_eq!(var_of(e), "GATEWAY_CORE_TLS_KEY");
        let e = read(
            "https://core:50051",
            &[("GATEWAY_CORE_TLS_CA", "/nonexistent.pem")],
        )
        .unwrap_err();
        assert_eq!(var_of(e), "GATEWAY_CORE_TLS_CA");
    }
}
