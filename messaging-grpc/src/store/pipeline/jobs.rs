//! Closures as writes: a write that is not of a set kind runs its own statements on the
//! batch's transaction, inside its own savepoint.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;
use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::oneshot;

use super::{TxnFuture, pipeline_error, savepoint};

/// One prepared write, type-erased: run it (result kept inside), then answer.
#[doc(hidden)]
pub trait Job: Send {
    /// Runs the write on `txn`; true when its changes are to be kept.
    fn run<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> TxnFuture<'a, bool>;
    /// Answers the caller: its own result, or `batch_failed` when the batch it was
    /// kept in did not commit.
    fn answer(self: Box<Self>, batch_failed: Option<&str>);
}

pub(super) struct TypedJob<F, T, E> {
    pub(super) write: Option<F>,
    pub(super) keep: fn(&Result<T, E>) -> bool,
    pub(super) result: Option<Result<T, E>>,
    pub(super) kept: bool,
    pub(super) reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for TypedJob<F, T, E>
where
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<DbErr> + Send + 'static,
{
    fn run<'a>(&'a mut self, txn: &'a DatabaseTransaction) -> TxnFuture<'a, bool> {
        Box::pin(async move {
            let Some(write) = self.write.take() else {
                return false;
            };
            let result = match AssertUnwindSafe(write(txn)).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!("a write panicked; rolled back alone");
                    Err(pipeline_error("the write failed").into())
                }
            };
            self.kept = (self.keep)(&result);
            self.result = Some(result);
            self.kept
        })
    }

    fn answer(self: Box<Self>, batch_failed: Option<&str>) {
        let result = match (self.result, batch_failed) {
            // Its changes were lost with the batch: the caller must not hear "done".
            (Some(_), Some(why)) if self.kept => Err(pipeline_error(why).into()),
            (Some(result), _) => result,
            (None, why) => Err(pipeline_error(why.unwrap_or("the write was not run")).into()),
        };
        // The caller may have gone (request cancelled): the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// Every closure of the batch, each in its own savepoint: one that fails is rolled back
/// alone.
pub(super) async fn run_jobs(
    txn: &DatabaseTransaction,
    batch: &mut [Box<dyn Job>],
) -> Result<(), DbErr> {
    for job in batch.iter_mut() {
        savepoint(txn, "SAVEPOINT w").await?;
        if job.run(txn).await {
            savepoint(txn, "RELEASE SAVEPOINT w").await?;
        } else {
            savepoint(txn, "ROLLBACK TO SAVEPOINT w").await?;
            savepoint(txn, "RELEASE SAVEPOINT w").await?;
        }
    }
    Ok(())
}
