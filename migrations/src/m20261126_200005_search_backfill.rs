//! Which messages are in the search index. Rows from before the index existed read
//! false and are indexed in the background (their bodies need the user's key, so a
//! migration cannot do it); every message written since is indexed in its own
//! transaction and stored true.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    SearchIndexed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(boolean(Messages::SearchIndexed).default(false))
                    .to_owned(),
            )
            .await?;
        // The backfill finds what is left without scanning every message.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_search_indexed")
                    .table(Messages::Table)
                    .col(Messages::SearchIndexed)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_search_indexed")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::SearchIndexed)
                    .to_owned(),
            )
            .await
    }
}
