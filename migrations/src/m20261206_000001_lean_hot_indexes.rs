//! Fewer index entries per send. A message row was kept in nine B-trees and every
//! status change moved it in the status index; each entry is a seek and a page the
//! single writer dirties. Indexes that serve only a cold path become partial, so the
//! hot rows (a send moving QUEUED → SENDING → SENT → DELIVERED, an inbound message)
//! leave them alone:
//!
//! - `idx_messages_sent_updated` replaces `idx_messages_status_updated`: reconciliation
//!   looks only for SENT messages without news, so only SENT rows are kept (a send
//!   enters it once, at SENT, and leaves it at its final status, where the old index
//!   moved it at every change);
//! - `uq_messages_provider_sid` and `uq_messages_user_idempotency` keep only rows that
//!   have a SID or a key (NULLs never collide; `provider_sid = ?` and the idempotency
//!   look-up imply `IS NOT NULL`, so both databases still use them);
//! - `idx_messages_search_unindexed` replaces `idx_messages_search_indexed`: the
//!   backfill wants the few rows still to index, not a boolean of every row;
//! - `idx_conversations_recent` is dropped: every listing filters by folder since
//!   `idx_conversations_folder`, which answers it in the same range scan.
//!
//! Queries that need a partial index name its condition literally: a plan made
//! without the bound value (PostgreSQL's generic plan) cannot prove a partial index's
//! `WHERE` from a parameter.
//!
//! PostgreSQL: the first `DROP INDEX` takes an ACCESS EXCLUSIVE lock on `messages`
//! (reads wait too) until the transaction commits, across the four index builds. On a
//! large table run `messaging migrate` before rolling out the new version (a replica
//! starting would otherwise build them while the old ones stall on every read of
//! `messages`), in a quiet window.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "DROP INDEX IF EXISTS idx_messages_status_updated",
    "CREATE INDEX idx_messages_sent_updated ON messages (updated_at) WHERE status = 'sent'",
    "DROP INDEX IF EXISTS uq_messages_provider_sid",
    "CREATE UNIQUE INDEX uq_messages_provider_sid ON messages (provider_sid) \
     WHERE provider_sid IS NOT NULL",
    "DROP INDEX IF EXISTS uq_messages_user_idempotency",
    "CREATE UNIQUE INDEX uq_messages_user_idempotency ON messages (user_id, idempotency_key) \
     WHERE idempotency_key IS NOT NULL",
    "DROP INDEX IF EXISTS idx_messages_search_indexed",
    "CREATE INDEX idx_messages_search_unindexed ON messages (created_at) \
     WHERE search_indexed = false",
    "DROP INDEX IF EXISTS idx_conversations_recent",
];

const DOWN: &[&str] = &[
    "CREATE INDEX idx_conversations_recent ON conversations (user_id, last_message_at, contact_id)",
    "DROP INDEX IF EXISTS idx_messages_search_unindexed",
    "CREATE INDEX idx_messages_search_indexed ON messages (search_indexed)",
    "DROP INDEX IF EXISTS uq_messages_user_idempotency",
    "CREATE UNIQUE INDEX uq_messages_user_idempotency ON messages (user_id, idempotency_key)",
    "DROP INDEX IF EXISTS uq_messages_provider_sid",
    "CREATE UNIQUE INDEX uq_messages_provider_sid ON messages (provider_sid)",
    "DROP INDEX IF EXISTS idx_messages_sent_updated",
    "CREATE INDEX idx_messages_status_updated ON messages (status, updated_at)",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction with its record on SQLite too (the migrator's default there
    /// is none): all or nothing, so a crash between a `DROP` and its `CREATE` cannot
    /// leave a table without the index.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
