//! When a send's outcome is unknown (no answer, a timeout, a crash after SENDING),
//! the dispatcher must not resend until a look-up at Twilio can be trusted: Twilio
//! may still be creating the message, and its list shows a new message only after a
//! lag. The outbox row keeps when the last create was started and how many look-ups
//! since found nothing. `duplicate_sends` keeps the SID of a second provider message
//! for one of ours (a double send that slipped through), so operators can see it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    CreateStartedAt,
    EmptyLookups,
}

#[derive(DeriveIden)]
enum DuplicateSends {
    Table,
    ProviderSid,
    MessageId,
    UserId,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        for col in [
            timestamp_with_time_zone_null(Outbox::CreateStartedAt),
            integer(Outbox::EmptyLookups).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(DuplicateSends::Table)
                    .col(string(DuplicateSends::ProviderSid).primary_key())
                    .col(string(DuplicateSends::MessageId))
                    .col(string(DuplicateSends::UserId))
                    .col(timestamp_with_time_zone(DuplicateSends::SeenAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DuplicateSends::Table).to_owned())
            .await?;
        for col in [Outbox::EmptyLookups, Outbox::CreateStartedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
