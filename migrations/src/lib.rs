//! Schema migrations. The same migrations run on SQLite (embedded default) and
//! PostgreSQL (production); they are applied at start-up and by `messaging migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_core;
mod m20261124_000002_ingest;
mod m20261124_000003_events;
mod m20261124_000004_media;
mod m20261126_000001_key_operations;
mod m20261126_000002_audit;
mod m20261126_000003_retention_export;
mod m20261126_100001_delivery;
mod m20261126_100002_pacing_clocks;
mod m20261126_200001_scheduled;
mod m20261126_200002_search;
mod m20261126_200003_conversation_state;
mod m20261126_200004_contacts;
mod m20261126_200005_search_backfill;
mod m20261127_000001_sealed_contact_numbers;
mod m20261202_000001_unknown_outcomes;
mod m20261203_000001_search_pending;
mod m20261206_000001_lean_hot_indexes;

/// Every migration of the service, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_core::Migration),
            Box::new(m20261124_000002_ingest::Migration),
            Box::new(m20261124_000003_events::Migration),
            Box::new(m20261124_000004_media::Migration),
            Box::new(m20261126_000001_key_operations::Migration),
            Box::new(m20261126_000002_audit::Migration),
            Box::new(m20261126_000003_retention_export::Migration),
            Box::new(m20261126_100001_delivery::Migration),
            Box::new(m20261126_100002_pacing_clocks::Migration),
            Box::new(m20261126_200001_scheduled::Migration),
            Box::new(m20261126_200002_search::Migration),
            Box::new(m20261126_200003_conversation_state::Migration),
            Box::new(m20261126_200004_contacts::Migration),
            Box::new(m20261126_200005_search_backfill::Migration),
            Box::new(m20261127_000001_sealed_contact_numbers::Migration),
            Box::new(m20261202_000001_unknown_outcomes::Migration),
            Box::new(m20261203_000001_search_pending::Migration),
            Box::new(m20261206_000001_lean_hot_indexes::Migration),
        ]
    }
}
