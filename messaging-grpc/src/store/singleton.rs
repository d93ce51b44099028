//! Singleton jobs across replicas: a pass of a periodic job (reconciliation, parked
//! callback cleanup) runs on one replica at a time. On PostgreSQL the pass holds a
//! transaction-level advisory lock ([`super::try_lock_job`]) on a transaction that
//! writes nothing, for as long as the pass runs; the other replicas skip that round,
//! and when the holder dies its connection ends and so does the lock, so another
//! replica takes over at its next round. SQLite is one process: always granted, and no
//! transaction is held (it would block the single writer).

use sea_orm::{DatabaseBackend, DatabaseTransaction, DbErr, TransactionTrait};

use super::Store;

/// Held while this replica runs the job; [`JobLease::release`] (or dropping it) ends it.
#[must_use = "the job is only exclusive while the lease is held"]
pub struct JobLease {
    txn: Option<DatabaseTransaction>,
}

impl JobLease {
    pub async fn release(self) -> Result<(), DbErr> {
        match self.txn {
            Some(txn) => txn.rollback().await,
            None => Ok(()),
        }
    }
}

/// The lease of `job`, or `None` when another replica runs it now.
pub async fn try_job(store: &Store, job: &str) -> Result<Option<JobLease>, DbErr> {
    if store.backend() != DatabaseBackend::Postgres {
        return Ok(Some(JobLease { txn: None }));
    }
    let txn = store.conn().begin().await?;
    if super::try_lock_job(&txn, job).await? {
        Ok(Some(JobLease { txn: Some(txn) }))
    } else {
        txn.rollback().await?;
        Ok(None)
    }
}
