//! Metric labels stay bounded whatever callers send: made-up gRPC methods under a
//! real service (refused by the interceptor before the router knows the method) and
//! made-up HTTP methods on the gateway's API each share one label.

use std::collections::HashSet;

use commpro_messaging_api::v1 as pb;
use tokio::net::TcpListener;

use crate::{gateway::gateway_on, helpers::*};

/// Distinct label sets of `metric` in a Prometheus text rendering.
fn series(text: &str, metric: &str) -> HashSet<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| l.split_once('}').map(|(labels, _)| labels.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_grow_the_label_sets() {
    let metrics = commpro_telemetry::metrics::recorder().unwrap();
    let server = TestServer::start(&Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_on(listener, &format!("http://{}", server.addr), &[]).await;

    // 300 made-up methods under a real service, without a token (refused by the
    // interceptor) and with one (unimplemented).
    let channel = server.channel().await;
    let token = server.token("alice");
    for i in 0..300 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let path = format!("/commpro.messaging.v1.MessagingService/MadeUp{i}");
        let mut req = tonic::Request::new(pb::ListConversationsRequest::default());
        if i % 2 == 0 {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let codec = tonic_prost::ProstCodec::<
            pb::ListConversationsRequest,
            pb::ListConversationsResponse,
        >::default();
        let answer = grpc
            .unary(req, path.parse().unwrap(), codec)
            .await
            .unwrap_err();
        assert!(
            matches!(
                answer.code(),
                tonic::Code::Unauthenticated | tonic::Code::Unimplemented
            ),
            "{answer:?}"
        );
    }
    // One real call, so the known label is there too.
    server
        .user("alice")
        .await
        .list(10, "")
        .await
        .expect("a real call");

    // 300 made-up HTTP methods on the gateway's API.
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        gw.http
            .request(
                method,
                format!("http://{}/api/messages/conversations", gw.addr),
            )
            .send()
            .await
            .unwrap();
    }

    let text = metrics.render();
    let core = series(&text, "messaging_grpc_requests_total");
    let methods: HashSet<&str> = core
        .iter()
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        methods.len() <= 3,
        "made-up methods became {} labels: {methods:?}",
        methods.len()
    );
    assert!(methods.contains("unknown"), "{methods:?}");
    assert!(
        methods.contains("commpro.messaging.v1.MessagingService/ListConversations"),
        "{methods:?}"
    );
    let gateway = series(&text, "gateway_http_requests_total");
    assert!(
        gateway.len() <= 4,
        "made-up HTTP methods became {} series: {gateway:?}",
        gateway.len()
    );
    server.stop().await;
}
