//! Ingest support: inbound messages nobody could receive, and status callbacks that
//! arrived before their message recorded its provider SID.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UnroutableInbound {
    Table,
    MessageSid,
    AccountSid,
    FromNumber,
    ToNumber,
    NumMedia,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum ParkedStatuses {
    Table,
    MessageSid,
    Status,
    ErrorCode,
    ErrorMessage,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UnroutableInbound::Table)
                    .col(string(UnroutableInbound::MessageSid).primary_key())
                    .col(string(UnroutableInbound::AccountSid))
                    .col(string(UnroutableInbound::FromNumber))
                    .col(string(UnroutableInbound::ToNumber))
                    .col(integer(UnroutableInbound::NumMedia).default(0))
                    .col(timestamp_with_time_zone(UnroutableInbound::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParkedStatuses::Table)
                    .col(string(ParkedStatuses::MessageSid))
                    .col(string(ParkedStatuses::Status))
                    .col(integer_null(ParkedStatuses::ErrorCode))
                    .col(string_null(ParkedStatuses::ErrorMessage))
                    .col(timestamp_with_time_zone(ParkedStatuses::ReceivedAt))
                    .primary_key(
                        Index::create()
                            .col(ParkedStatuses::MessageSid)
                            .col(ParkedStatuses::Status),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ParkedStatuses::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UnroutableInbound::Table).to_owned())
            .await
    }
}
