//! Contact numbers sealed at rest. A contact's number becomes a ciphertext bound to
//! its row (`number_ct`) plus a keyed blind index (`number_index`) that equality
//! lookups use; each message keeps its own sealed copy (`contact_number_ct`) for the
//! dispatcher and views. Sealing needs the users' keys, which a migration does not
//! have: existing rows keep their number in the old columns until the core's start-up
//! step seals them and empties those columns (domain/number_sealing.rs). The old
//! columns stay (emptied) so a SQLite table need not be rebuilt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Contacts {
    Table,
    UserId,
    E164,
    NumberCt,
    NumberIndex,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ContactNumberCt,
}

const OLD_UNIQUE: &str = "uq_contacts_user_e164";
const NEW_UNIQUE: &str = "uq_contacts_user_number_index";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes a single change per statement.
        for col in [
            blob_null(Contacts::NumberCt),
            blob_null(Contacts::NumberIndex),
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
        // Get-or-create and every lookup by number go through the blind index; the
        // emptied plaintext column can no longer be unique. NULLs (rows not sealed
        // yet) are distinct in a unique index on both backends.
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_UNIQUE)
                    .table(Contacts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_UNIQUE)
                    .table(Contacts::Table)
                    .col(Contacts::UserId)
                    .col(Contacts::NumberIndex)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(blob_null(Messages::ContactNumberCt))
                    .to_owned(),
            )
            .await
    }

    /// Only meaningful before the start-up step sealed anything: sealed rows have
    /// emptied plaintext columns, which this cannot bring back.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::ContactNumberCt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(NEW_UNIQUE)
                    .table(Contacts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_UNIQUE)
                    .table(Contacts::Table)
                    .col(Contacts::UserId)
                    .col(Contacts::E164)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for col in [Contacts::NumberIndex, Contacts::NumberCt] {
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
