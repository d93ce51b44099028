//! Pacing shared by every dispatcher replica on PostgreSQL: one row per sending number,
//! plus one for the whole account, holding the instant its next segment may go. The
//! database advances the clocks atomically with its own clock, so N replicas together
//! keep the configured rates, and a restart keeps them. SQLite (one process) keeps its
//! clocks in memory and never writes this table; it is created there too so that both
//! backends have the same schema.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PacingClocks {
    Table,
    Key,
    NextFree,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No index on next_free: one row per sending number is a small table, and an
        // index on the column every send updates would cost each update its HOT path.
        manager
            .create_table(
                Table::create()
                    .table(PacingClocks::Table)
                    .col(string(PacingClocks::Key).primary_key())
                    .col(timestamp_with_time_zone(PacingClocks::NextFree))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PacingClocks::Table).to_owned())
            .await
    }
}
