//! Outbound delivery through a fake Twilio on loopback: the real dispatcher, real
//! HTTP, Twilio's wire format.

use std::{collections::HashMap, sync::Arc, time::Duration};

use commpro_messaging_api::v1::{self as pb, MessageStatus};
use messaging_grpc::provider::{Outgoing, ProviderMessage, SendError, SmsProvider};
use tonic::Code;
use twilio_fake::{FakeTwilio, Scripted};

use crate::{backend_tests, helpers::*};

/// The dispatcher's process: two on one PostgreSQL, a shutdown mid-send, corrupt
/// content, the console provider.
mod dispatchers;
/// A queued job besides Twilio's answer: STOP per sender number, a released number,
/// the validity window, expired claims, parked callbacks, a missing master key.
mod jobs;
/// Pace and throughput: senders paced apart, a backlog's drain, one request a message.
mod throughput;
/// Twilio's answers: sent, retried, refused, down, slow, and answers lost then
/// reconciled; the credentials requests are signed with.
mod twilio;

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const FROM2: &str = "+15005550009";

async fn setup(backend: &Backend, extra: &[(&'static str, &str)]) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    server.assign(FROM, "alice").await;
    (fake, server)
}

/// Hands the message to the real provider, then never returns: the process "dies"
/// between Twilio's answer and our write.
pub(crate) struct HangAfterSend {
    pub(crate) inner: Arc<dyn SmsProvider>,
    pub(crate) hung: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl SmsProvider for HangAfterSend {
    fn name(&self) -> &'static str {
        "hang-after-send"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let _ = self.inner.send(msg).await;
        self.hung.notify_one();
        std::future::pending().await
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, SendError> {
        self.inner.fetch(sid).await
    }

    async fn find(
        &self,
        from: &str,
        to: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError> {
        self.inner.find(from, to, since).await
    }
}
