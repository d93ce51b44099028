//! `messaging keys rotate | rotate-user | shred | status`: the MessagingAdmin key
//! calls for operators without grpcurl, through the running core (so every replica's
//! rules, caches and the audit log apply). `keys generate` needs no core.

use std::time::Duration;

use commpro_messaging_api::v1 as pb;

use super::admin_client::{AdminConnection, refused};
use crate::crypto::{DataKey, MasterKey, MasterKeyRing};

/// What to ask the core.
#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Print a new random master key entry (`id:base64`) for MESSAGING_MASTER_KEYS.
    Generate {
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Data keys per master key id (an old id at 0 can leave MESSAGING_MASTER_KEYS).
    Status,
    /// Rewrap every data key under the active (first) master key; safe to run again.
    Rotate {
        /// Rewrap at most this many keys per call (0: all).
        #[arg(long, default_value_t = 0)]
        max_keys: u32,
    },
    /// Start a new data-key version for a user's new messages (also how a shredded
    /// user gets a key again).
    RotateUser {
        #[arg(long)]
        user: String,
    },
    /// Destroy a user's data keys: their content becomes unreadable for good.
    Shred {
        #[arg(long)]
        user: String,
        /// Repeat the user id to confirm; shredding cannot be undone.
        #[arg(long)]
        confirm: Option<String>,
    },
}

/// Rotation of many keys may take a while; the other calls are quick.
const LONG: Duration = Duration::from_secs(600);
const SHORT: Duration = Duration::from_secs(30);

pub async fn run(command: KeysCommand, token: Option<String>) -> anyhow::Result<()> {
    if let KeysCommand::Shred { user, confirm } = &command
        && confirm.as_deref() != Some(user.as_str())
    {
        anyhow::bail!(
            "shredding destroys {user}'s data keys and cannot be undone; repeat the user id to confirm: --confirm {user}"
        );
    }
    let mut conn = match &command {
        KeysCommand::Generate { id } => return generate(id),
        _ => AdminConnection::connect(token).await?,
    };
    match command {
        KeysCommand::Generate { .. } => {} // answered above, without a core
        KeysCommand::Status => {
            let status = conn
                .client
                .key_status(conn.request(pb::KeyStatusRequest {}, SHORT))
                .await
                .map_err(refused)?
                .into_inner();
            println!("master key\tdata keys\tstate");
            for m in &status.master_keys {
                println!("{}\t{}\t{}", m.master_key_id, m.data_keys, state(m));
            }
            println!(
                "destroyed data-key versions: {}",
                status.destroyed_data_keys
            );
        }
        KeysCommand::Rotate { max_keys } => {
            let r = conn
                .client
                .rotate_master_key(conn.request(pb::RotateMasterKeyRequest { max_keys }, LONG))
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "rewrapped {} data keys under {} ({} skipped)",
                r.rewrapped, r.active_master_key_id, r.skipped
            );
            if r.remaining.is_empty() {
                println!("no data key depends on an older master key");
            }
            for m in &r.remaining {
                println!(
                    "still under {}: {} data keys{}",
                    m.master_key_id,
                    m.data_keys,
                    if m.configured {
                        ""
                    } else {
                        " (not configured here)"
                    }
                );
            }
        }
        KeysCommand::RotateUser { user } => {
            let r = conn
                .client
                .rotate_user_key(conn.request(pb::RotateUserKeyRequest { user_id: user }, SHORT))
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "{} now seals with data-key version {}",
                r.user_id, r.key_version
            );
        }
        KeysCommand::Shred { user, confirm } => {
            let r = conn
                .client
                .shred_user(conn.request(
                    pb::ShredUserRequest {
                        user_id: user,
                        confirm_user_id: confirm.unwrap_or_default(),
                    },
                    SHORT,
                ))
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "{}: {} key versions destroyed; {} messages and {} media unreadable ({} objects deleted); numbers released: {}",
                r.user_id,
                r.destroyed_key_versions,
                r.messages,
                r.media,
                r.media_objects_deleted,
                if r.released_numbers.is_empty() {
                    "none".to_owned()
                } else {
                    r.released_numbers.join(", ")
                }
            );
        }
    }
    Ok(())
}

fn state(m: &pb::MasterKeyCount) -> &'static str {
    match (m.active, m.configured, m.data_keys) {
        (true, _, _) => "active",
        (false, true, 0) => "unused: can be removed from MESSAGING_MASTER_KEYS",
        (false, true, _) => "still needed: run `messaging keys rotate`",
        (false, false, _) => "NOT CONFIGURED: add it back to MESSAGING_MASTER_KEYS",
    }
}

/// Prints a new master key entry, its id checked as MESSAGING_MASTER_KEYS will.
fn generate(id: &str) -> anyhow::Result<()> {
    let key = MasterKey::new(id, DataKey::generate()?);
    MasterKeyRing::parse(&key.to_config_entry()).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
    println!("{}", key.to_config_entry().as_str());
    Ok(())
}
