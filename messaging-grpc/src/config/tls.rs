//! TLS of the core's gRPC listener: the gateway sends users' bearer tokens over this
//! connection, so outside one machine it must not be plaintext. With
//! MESSAGING_GRPC_TLS_CERT and MESSAGING_GRPC_TLS_KEY the listener speaks TLS only
//! (rustls); with MESSAGING_GRPC_TLS_CLIENT_CA as well, every client must present a
//! certificate that CA signed (mutual TLS).

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::{ConfigError, err};

/// The listener's certificate chain and key (PEM), and the CA clients must be signed
/// by, if any. Prints without the key.
pub struct GrpcTls {
    cert_pem: Vec<u8>,
    key_pem: SecretBox<Vec<u8>>,
    client_ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl GrpcTls {
    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// The tonic server configuration.
    pub fn server_config(&self) -> ServerTlsConfig {
        // Both ring and aws-lc-rs are linked (sqlx, reqwest): rustls needs to be told.
        // Installing twice is refused harmlessly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let identity = Identity::from_pem(&self.cert_pem, self.key_pem.expose_secret());
        let config = ServerTlsConfig::new().identity(identity);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// Reads MESSAGING_GRPC_TLS_CERT / _KEY / _CLIENT_CA (PEM file paths). Both of the first
/// two or neither; a client CA needs them. Files are read now so a wrong path fails
/// at start-up, naming the variable.
pub(super) fn grpc_tls(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<GrpcTls>, ConfigError> {
    let cert = get("MESSAGING_GRPC_TLS_CERT");
    let key = get("MESSAGING_GRPC_TLS_KEY");
    let client_ca = get("MESSAGING_GRPC_TLS_CLIENT_CA");
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => {
            return match client_ca {
                Some(_) => Err(err(
                    "MESSAGING_GRPC_TLS_CLIENT_CA",
                    "needs MESSAGING_GRPC_TLS_CERT and MESSAGING_GRPC_TLS_KEY (the server's own certificate)",
                )),
                None => Ok(None),
            };
        }
        (Some(_), None) => {
            return Err(err(
                "MESSAGING_GRPC_TLS_KEY",
                "is required with MESSAGING_GRPC_TLS_CERT",
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "MESSAGING_GRPC_TLS_CERT",
                "is required with MESSAGING_GRPC_TLS_KEY",
            ));
        }
    };
    let cert_pem = read_pem("MESSAGING_GRPC_TLS_CERT", &cert, "CERTIFICATE")?;
    let key_pem = read_pem("MESSAGING_GRPC_TLS_KEY", &key, "PRIVATE KEY")?;
    let client_ca_pem = client_ca
        .map(|path| read_pem("MESSAGING_GRPC_TLS_CLIENT_CA", &path, "CERTIFICATE"))
        .transpose()?;
    Ok(Some(GrpcTls {
        cert_pem,
        key_pem: SecretBox::new(Box::new(key_pem)),
        client_ca_pem,
    }))
}

/// A PEM file's bytes; refused when it holds no `-----BEGIN …{label}-----` block (a
/// DER file or the wrong file is named here, not at the first handshake).
fn read_pem(var: &'static str, path: &str, label: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| err(var, format!("reading {path}: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let has_block = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")));
    if !has_block {
        return Err(err(var, format!("{path} holds no PEM {label}")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<GrpcTls>, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        grpc_tls(&|k| map.get(k).map(|v| (*v).to_owned()))
    }

    #[test]
    fn off_unless_configured_and_refuses_half_settings_by_name() {
        assert!(read(&[]).unwrap().is_none());
        let e = read(&[("MESSAGING_GRPC_TLS_CERT", "/x.pem")]).unwrap_err();
        assert_eq!(e.var, "MESSAGING_GRPC_TLS_KEY");
        let e = read(&[("MESSAGING_GRPC_TLS_CLIENT_CA", "/ca.pem")]).unwrap_err();
        assert_eq!(e.var, "MESSAGING_GRPC_TLS_CLIENT_CA");
        let e = read(&[
            ("MESSAGING_GRPC_TLS_CERT", "/nonexistent/cert.pem"),
            ("MESSAGING_GRPC_TLS_KEY", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "MESSAGING_GRPC_TLS_CERT");
    }

    #[test]
    fn a_file_without_a_pem_block_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("cert.der");
        std::fs::write(&not_pem, [0x30, 0x82, 0x01]).unwrap();
        let path = not_pem.display().to_string();
        let e = read(&[
            ("MESSAGING_GRPC_TLS_CERT", &path),
            ("MESSAGING_GRPC_TLS_KEY", &path),
        ])
        .unwrap_err();
        assert_eq!(e.var, "MESSAGING_GRPC_TLS_CERT");
        assert!(e.reason.contains("no PEM"), "{}", e.reason);
    }
}
