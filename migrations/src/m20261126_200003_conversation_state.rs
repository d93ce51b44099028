//! Archive and mute: per-conversation flags, and the mute state recorded on each
//! event (what notification senders read).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    UserId,
    Archived,
    Muted,
    MutedUntil,
    LastMessageAt,
    ContactId,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Muted,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        for col in [
            boolean(Conversations::Archived).default(false).to_owned(),
            boolean(Conversations::Muted).default(false).to_owned(),
            timestamp_with_time_zone_null(Conversations::MutedUntil),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        // ListConversations (inbox or archive) stays one range scan.
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_folder")
                    .table(Conversations::Table)
                    .col(Conversations::UserId)
                    .col(Conversations::Archived)
                    .col(Conversations::LastMessageAt)
                    .col(Conversations::ContactId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(boolean(Events::Muted).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::Muted)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_conversations_folder")
                    .table(Conversations::Table)
                    .to_owned(),
            )
            .await?;
        for col in [
            Conversations::MutedUntil,
            Conversations::Muted,
            Conversations::Archived,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
