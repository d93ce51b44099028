//! MMS media: encrypted objects in the media store, their metadata, and which
//! message carries which media (one upload may go out with several messages).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Media {
    Table,
    Id,
    UserId,
    Direction,
    Status,
    ContentType,
    SizeBytes,
    StorageKey,
    SourceUrlCt,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MessageMedia {
    Table,
    MessageId,
    Position,
    MediaId,
    UrlCt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Media::Table)
                    .col(string(Media::Id).primary_key())
                    .col(string(Media::UserId))
                    .col(string(Media::Direction))
                    .col(string(Media::Status))
                    .col(string(Media::ContentType))
                    .col(big_integer(Media::SizeBytes).default(0))
                    .col(string_null(Media::StorageKey))
                    .col(blob_null(Media::SourceUrlCt))
                    .col(integer(Media::Attempts).default(0))
                    .col(timestamp_with_time_zone(Media::NextAttemptAt))
                    .col(string_null(Media::LastError))
                    .col(timestamp_with_time_zone(Media::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // The inbound download job claims pending media by due time.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_pending")
                    .table(Media::Table)
                    .col(Media::Status)
                    .col(Media::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageMedia::Table)
                    .col(string(MessageMedia::MessageId))
                    .col(integer(MessageMedia::Position))
                    .col(string_null(MessageMedia::MediaId))
                    .col(blob_null(MessageMedia::UrlCt))
                    .primary_key(
                        Index::create()
                            .col(MessageMedia::MessageId)
                            .col(MessageMedia::Position),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageMedia::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Media::Table).to_owned())
            .await
    }
}
