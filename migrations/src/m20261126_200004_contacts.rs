//! Contact names (sealed like bodies) and blocked numbers; inbound messages from a
//! blocked number are kept, flagged, out of conversations and unread counts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    UserId,
    NameCt,
    BlockedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Blocked,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        for col in [
            blob_null(Contacts::NameCt),
            timestamp_with_time_zone_null(Contacts::BlockedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Contacts::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        // ListBlockedNumbers: the user's blocked contacts, most recent first.
        manager
            .create_index(
                Index::create()
                    .name("idx_contacts_blocked")
                    .table(Contacts::Table)
                    .col(Contacts::UserId)
                    .col(Contacts::BlockedAt)
                    .col(Contacts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(boolean(Messages::Blocked).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::Blocked)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_contacts_blocked")
                    .table(Contacts::Table)
                    .to_owned(),
            )
            .await?;
        for col in [Contacts::BlockedAt, Contacts::NameCt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Contacts::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
