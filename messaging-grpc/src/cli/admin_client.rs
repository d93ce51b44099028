//! The operator commands' connection to the running core's `MessagingAdmin`: with
//! `--token`, or on a dev setup an admin token minted from the HS256 secret.

use std::time::Duration;

use anyhow::Context;
use commpro_messaging_api::v1::messaging_admin_client::MessagingAdminClient;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::{Config, Mode, auth::Role, cli::run::dev_token};

/// A connected admin client and the credential every call carries.
pub struct AdminConnection {
    pub client: MessagingAdminClient<Channel>,
    auth: MetadataValue<Ascii>,
}

impl AdminConnection {
    /// Connects to MESSAGING_GRPC_ADDR.
    pub async fn connect(token: Option<String>) -> anyhow::Result<Self> {
        let config = Config::from_env(Mode::Dev)?;
        let token = match token {
            Some(t) => t,
            None => dev_token(&config, "operator", &[Role::Admin], 1)
                .context("no --token given and none can be minted here")?,
        };
        let url = format!("http://{}", config.grpc_addr);
        let channel = Channel::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await
            .with_context(|| format!("connecting to the core at {url} (is it running?)"))?;
        let auth = MetadataValue::try_from(format!("Bearer {token}"))
            .context("--token is not a valid header value")?;
        Ok(Self {
            client: MessagingAdminClient::new(channel),
            auth,
        })
    }

    /// A request with the credential and `timeout`.
    pub fn request<T>(&self, msg: T, timeout: Duration) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut()
            .insert("authorization", self.auth.clone());
        req.set_timeout(timeout);
        req
    }
}

/// A refused call as the operator reads it: the code and the core's message.
pub fn refused(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}
