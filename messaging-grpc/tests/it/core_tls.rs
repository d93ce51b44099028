//! TLS between the gateway and the core, with a CA generated in the test: the core's
//! listener speaks TLS only (a plaintext client gets nothing), with mutual TLS a
//! client without a certificate from the configured CA is refused, and the gateway
//! configured with the CA (and its client certificate) serves the REST API and
//! webhooks through it.

use std::{collections::HashMap, path::Path, time::Duration};

use commpro_messaging_api::v1 as pb;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::{gateway::gateway_on, helpers::*};

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all
/// written as PEM files into `dir`; the paths by name.
fn pki(dir: &Path) -> HashMap<&'static str, String> {
    // This process's own TLS clients, as the binaries do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "commpro test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert, client_key) = leaf(vec!["webhook-gateway".into()]);
    // A second CA the core does not trust, with a client certificate of its own.
    let rogue_key = KeyPair::generate().unwrap();
    let mut rogue = CertificateParams::new(Vec::<String>::new()).unwrap();
    rogue.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let rogue_issuer = Issuer::new(rogue, rogue_key);
    let rogue_client_key = KeyPair::generate().unwrap();
    let rogue_client = CertificateParams::new(vec!["intruder".into()])
        .unwrap()
        .signed_by(&rogue_client_key, &rogue_issuer)
        .unwrap();
    let files = [
        ("ca", ca_cert.pem()),
        ("server_cert", server_cert),
        ("server_key", server_key),
        ("client_cert", client_cert),
        ("client_key", client_key),
        ("rogue_cert", rogue_client.pem()),
        ("rogue_key", rogue_client_key.serialize_pem()),
    ];
    files
        .into_iter()
        .map(|(name, pem)| {
            let path = dir.join(format!("{name}.pem"));
            std::fs::write(&path, pem).unwrap();
            (name, path.display().to_string())
        })
        .collect()
}

/// A health check over `channel`: whether the core answered.
async fn answers(channel: Channel) -> bool {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = health.check(tonic_health::pb::HealthCheckRequest::default());
    matches!(
        tokio::time::timeout(Duration::from_secs(5), check).await,
        Ok(Ok(_))
    )
}

async fn tls_channel(
    port: u16,
    files: &HashMap<&str, String>,
    client: Option<(&str, &str)>,
) -> Option<Channel> {
    let ca = std::fs::read(&files["ca"]).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = client {
        let (cert, key) = (
            std::fs::read(&files[cert]).unwrap(),
            std::fs::read(&files[key]).unwrap(),
        );
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_between_gateway_and_core() {
    let certs = tempfile::tempdir().unwrap();
    let files = pki(certs.path());
    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([
            ("MESSAGING_GRPC_TLS_CERT", files["server_cert"].clone()),
            ("MESSAGING_GRPC_TLS_KEY", files["server_key"].clone()),
            ("MESSAGING_GRPC_TLS_CLIENT_CA", files["ca"].clone()),
        ]),
    )
    .await;
    let port = server.addr.port();

    // Plaintext gets no answer.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    assert!(!answers(plain).await, "the core answered plaintext gRPC");
    // TLS without a client certificate, or with one from another CA: refused.
    let anonymous = tls_channel(port, &files, None).await;
    assert!(
        match anonymous {
            Some(c) => !answers(c).await,
            None => true,
        },
        "a client without a certificate was served"
    );
    let rogue = tls_channel(port, &files, Some(("rogue_cert", "rogue_key"))).await;
    assert!(
        match rogue {
            Some(c) => !answers(c).await,
            None => true,
        },
        "a client certificate from an untrusted CA was accepted"
    );
    // The gateway's certificate from the configured CA: served.
    let trusted = tls_channel(port, &files, Some(("client_cert", "client_key")))
        .await
        .expect("a TLS connection with the gateway's certificate");
    assert!(answers(trusted.clone()).await);
    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(trusted);
    admin
        .assign_number(authed(
            pb::AssignNumberRequest {
                number: "+15005550006".into(),
                user_id: "alice".into(),
            },
            &server.admin_token(),
        ))
        .await
        .unwrap();

    // The gateway over TLS with its client certificate: REST and webhooks work.
    let core_url = format!("https://localhost:{port}");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_on(
        listener,
        &core_url,
        &[
            ("GATEWAY_CORE_TLS_CA", &files["ca"]),
            ("GATEWAY_CORE_TLS_CERT", &files["client_cert"]),
            ("GATEWAY_CORE_TLS_KEY", &files["client_key"]),
        ],
    )
    .await;
    let form = crate::gateway::inbound_form(
        "SM0123456789abcdef0123456789abcd01",
        "+14155550100",
        "+15005550006",
        "over TLS",
    );
    let (status, _, body) = gw.post("/webhook/sms", &form).await;
    assert_eq!(status, 200, "{body}");
    let resp = gw
        .http
        .get(format!("http://{}/api/messages/conversations", gw.addr))
        .bearer_auth(server.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("over TLS"));

    // A gateway without the client certificate is refused by the core: 503, not stored.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let anonymous_gw = gateway_on(
        listener,
        &core_url,
        &[("GATEWAY_CORE_TLS_CA", &files["ca"])],
    )
    .await;
    let form = crate::gateway::inbound_form(
        "SM0123456789abcdef0123456789abcd02",
        "+14155550100",
        "+15005550006",
        "without a certificate",
    );
    let (status, _, _) = anonymous_gw.post("/webhook/sms", &form).await;
    assert_ne!(
        status, 200,
        "a gateway without a client certificate reached the core"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_without_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let files = pki(certs.path());
    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([
            ("MESSAGING_GRPC_TLS_CERT", files["server_cert"].clone()),
            ("MESSAGING_GRPC_TLS_KEY", files["server_key"].clone()),
        ]),
    )
    .await;
    let port = server.addr.port();
    let channel = tls_channel(port, &files, None).await.expect("TLS connects");
    assert!(answers(channel).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_on(
        listener,
        &format!("https://localhost:{port}"),
        &[("GATEWAY_CORE_TLS_CA", &files["ca"])],
    )
    .await;
    let resp = gw
        .http
        .get(format!("http://{}/api/messages/conversations", gw.addr))
        .bearer_auth(server.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;
}
