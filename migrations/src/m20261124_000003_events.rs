//! Events for resumable WatchEvents: a dense per-user sequence, assigned under the
//! user's counter row so cursors follow commit order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserEventSeq {
    Table,
    UserId,
    LastCursor,
    PrunedThrough,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    UserId,
    Cursor,
    Kind,
    MessageId,
    ContactId,
    Status,
    UnreadCount,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserEventSeq::Table)
                    .col(string(UserEventSeq::UserId).primary_key())
                    .col(big_integer(UserEventSeq::LastCursor).default(0))
                    .col(big_integer(UserEventSeq::PrunedThrough).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(string(Events::UserId))
                    .col(big_integer(Events::Cursor))
                    .col(string(Events::Kind))
                    .col(string_null(Events::MessageId))
                    .col(string_null(Events::ContactId))
                    .col(string_null(Events::Status))
                    .col(big_integer_null(Events::UnreadCount))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .primary_key(Index::create().col(Events::UserId).col(Events::Cursor))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_created")
                    .table(Events::Table)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserEventSeq::Table).to_owned())
            .await
    }
}
