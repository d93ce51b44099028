//! `messaging numbers assign|list`: the MessagingAdmin calls an operator needs first,
//! without grpcurl. They go through the running core's gRPC API (so its rules and
//! events apply), with `--token` or, on a dev setup, an admin token minted from the
//! configured HS256 secret.

use std::time::Duration;

use commpro_messaging_api::v1 as pb;

use super::admin_client::{AdminConnection, refused};

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

const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(command: NumbersCommand, token: Option<String>) -> anyhow::Result<()> {
    let mut conn = AdminConnection::connect(token).await?;
    match command {
        NumbersCommand::Assign { number, user } => {
            let req = conn.request(
                pb::AssignNumberRequest {
                    number,
                    user_id: user,
                },
                TIMEOUT,
            );
            let assigned = conn
                .client
                .assign_number(req)
                .await
                .map_err(refused)?
                .into_inner();
            println!("{} assigned to {}", assigned.number, assigned.user_id);
        }
        NumbersCommand::List { user } => {
            let mut page_token = String::new();
            loop {
                let req = conn.request(
                    pb::ListNumbersRequest {
                        user_id: user.clone().unwrap_or_default(),
                        page_size: 1000,
                        page_token,
                    },
                    TIMEOUT,
                );
                let page = conn
                    .client
                    .list_numbers(req)
                    .await
                    .map_err(refused)?
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
