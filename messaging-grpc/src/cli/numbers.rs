//! `messaging numbers assign|list`: the MessagingAdmin calls an operator needs first,
//! without grpcurl. They go through the running core's gRPC API (so its rules and
//! events apply), with `--token` or, on a dev setup, an admin token minted from the
//! configured HS256 secret.

use std::time::Duration;

use anyhow::Context;
use commpro_messaging_api::v1::{self as pb, messaging_admin_client::MessagingAdminClient};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

use crate::{Config, Mode, auth::Role, cli::run::dev_token};

/// What to ask the core.
#[derive(clap::Subcommand)]
pub enum NumbersCommand {
    /// Give a number (E.164) to a user.
    Assign {
        #[arg(long)]
        number: String,
        #[arg(long)]
        user: String,
    },
    /// Numbers and their users.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
}

pub async fn run(command: NumbersCommand, token: Option<String>) -> anyhow::Result<()> {
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
    let mut admin = MessagingAdminClient::new(channel);
    let auth = MetadataValue::try_from(format!("Bearer {token}"))
        .context("--token is not a valid header value")?;
    match command {
        NumbersCommand::Assign { number, user } => {
            let assigned = admin
                .assign_number(request(
                    &auth,
                    pb::AssignNumberRequest {
                        number,
                        user_id: user,
                    },
                ))
                .await
                .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
                .into_inner();
            println!("{} assigned to {}", assigned.number, assigned.user_id);
        }
        NumbersCommand::List { user } => {
            let mut page_token = String::new();
            loop {
                let page = admin
                    .list_numbers(request(
                        &auth,
                        pb::ListNumbersRequest {
                            user_id: user.clone().unwrap_or_default(),
                            page_size: 1000,
                            page_token,
                        },
                    ))
                    .await
                    .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
                    .into_inner();
                for n in page.numbers {
                    println!("{}\t{}", n.number, n.user_id);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
    }
    Ok(())
}

fn request<T>(auth: &MetadataValue<tonic::metadata::Ascii>, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert("authorization", auth.clone());
    req.set_timeout(Duration::from_secs(10));
    req
}
