//! `search_pending`: a new message's search terms as one row, until the indexer moves
//! them into `search_terms`. Writing a message's terms straight into the blind index
//! dirtied one index page per word at random (the terms are keyed hashes), which was
//! about half of what a send cost the writer; one appended row per message, moved in
//! bulk and sorted later, shares pages between messages instead. Searches read both.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SearchPending {
    Table,
    MessageId,
    UserId,
    Terms,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No index beyond the key: the indexer keeps the table to a few seconds of
        // messages, and a search reads its user's rows by scanning it.
        manager
            .create_table(
                Table::create()
                    .table(SearchPending::Table)
                    .col(string(SearchPending::MessageId).primary_key())
                    .col(string(SearchPending::UserId))
                    .col(binary(SearchPending::Terms))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The messages whose terms were still pending go back to the backfill, which
        // indexes them again from their bodies: no message becomes unsearchable.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE messages SET search_indexed = false \
                 WHERE id IN (SELECT message_id FROM search_pending)",
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SearchPending::Table).to_owned())
            .await
    }
}
