//! Writes of a set kind: data the writer applies together with the batch's other writes
//! of its kind, one statement per table for all of them, with a one-by-one fallback.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::oneshot;

use super::{Pending, TxnFuture, guarded, pipeline_error, savepoint};
use crate::store::{
    message_batch::{self, MessageOutcome, NewMessage},
    report_batch::{self, ReportedStatus},
    status_batch::{self, HandedOver, StartCreate, Started},
};

/// A write the writer applies as data, together with the batch's other writes of its
/// kind: one statement per table for all of them ([`message_batch`] for new messages,
/// [`status_batch`] for the dispatcher's hot status changes), where a closure
/// would take its own statements (each a hop to SQLite's connection thread, or a round
/// trip to PostgreSQL) and its own savepoint.
pub trait SetWrite: Clone + Send + Sync + 'static {
    type Outcome: Send + 'static;
    /// The user whose rows it writes: it runs on that user's writer.
    fn user_id(&self) -> &str;
    /// Writes every one of `writes` in `txn`; the outcomes in their order. An error
    /// leaves `txn` to be rolled back to a savepoint by the writer, which then runs
    /// each write alone (a set of one), so one bad write fails alone.
    fn apply<'c>(
        txn: &'c DatabaseTransaction,
        writes: &'c [Self],
    ) -> TxnFuture<'c, Result<Vec<Self::Outcome>, DbErr>>;
    /// Its queued form (one [`Pending`] variant per set kind the writer knows).
    #[doc(hidden)]
    fn pending(job: SetJob<Self>) -> Pending;
    /// Called once the batch that wrote it committed, with its outcome: effects outside
    /// the database (metrics) that must count only what was committed — a set that
    /// fails and is written again one by one, or a batch that does not commit, would
    /// count twice or count nothing that happened.
    fn committed(&self, _outcome: &Self::Outcome) {}
}

impl SetWrite for NewMessage {
    type Outcome = MessageOutcome;
    fn user_id(&self) -> &str {
        &self.row.user_id
    }
    fn apply<'c>(
        txn: &'c DatabaseTransaction,
        writes: &'c [Self],
    ) -> TxnFuture<'c, Result<Vec<MessageOutcome>, DbErr>> {
        Box::pin(message_batch::apply(txn, writes))
    }
    fn pending(job: SetJob<Self>) -> Pending {
        Pending::Message(Box::new(job))
    }
}

impl SetWrite for StartCreate {
    type Outcome = Started;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn apply<'c>(
        txn: &'c DatabaseTransaction,
        writes: &'c [Self],
    ) -> TxnFuture<'c, Result<Vec<Started>, DbErr>> {
        Box::pin(status_batch::start_creates(txn, writes))
    }
    fn pending(job: SetJob<Self>) -> Pending {
        Pending::StartCreate(Box::new(job))
    }
    fn committed(&self, outcome: &Started) {
        if matches!(outcome, Started::Sending(Some(_))) {
            crate::metrics::status_changed("sending");
        }
    }
}

impl SetWrite for HandedOver {
    /// The event's cursor; `None` when the message had changed.
    type Outcome = Option<i64>;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn apply<'c>(
        txn: &'c DatabaseTransaction,
        writes: &'c [Self],
    ) -> TxnFuture<'c, Result<Vec<Option<i64>>, DbErr>> {
        Box::pin(status_batch::handed_over(txn, writes))
    }
    fn pending(job: SetJob<Self>) -> Pending {
        Pending::HandedOver(Box::new(job))
    }
    fn committed(&self, outcome: &Option<i64>) {
        if outcome.is_some() {
            crate::metrics::status_changed(&self.status);
            crate::metrics::final_status(&self.status, None);
        }
    }
}

impl SetWrite for ReportedStatus {
    /// The event's cursor; `None` when the message had changed.
    type Outcome = Option<i64>;
    fn user_id(&self) -> &str {
        &self.user_id
    }
    fn apply<'c>(
        txn: &'c DatabaseTransaction,
        writes: &'c [Self],
    ) -> TxnFuture<'c, Result<Vec<Option<i64>>, DbErr>> {
        Box::pin(report_batch::apply(txn, writes))
    }
    fn pending(job: SetJob<Self>) -> Pending {
        Pending::Reported(Box::new(job))
    }
    fn committed(&self, outcome: &Option<i64>) {
        if outcome.is_some() {
            crate::metrics::status_changed(&self.status);
            // Labelled with the report's own code, as its event is.
            crate::metrics::final_status(&self.status, self.error_code);
        }
    }
}

/// A write of a set kind waiting for the writer, and where its outcome goes.
#[doc(hidden)]
pub struct SetJob<W: SetWrite> {
    pub(super) write: W,
    pub(super) result: Option<Result<W::Outcome, DbErr>>,
    pub(super) reply: oneshot::Sender<Result<W::Outcome, DbErr>>,
}

impl<W: SetWrite> SetJob<W> {
    pub(super) fn answer(self, batch_failed: Option<&str>) {
        let result = match (self.result, batch_failed) {
            // Lost with the batch; a conflict may have been with a row of this batch too.
            (Some(Ok(_)), Some(why)) => Err(pipeline_error(why)),
            (Some(result), _) => {
                if let Ok(outcome) = &result {
                    self.write.committed(outcome);
                }
                result
            }
            (None, why) => Err(pipeline_error(why.unwrap_or("the write was not run"))),
        };
        let _ = self.reply.send(result);
    }
}

/// The writes of one kind as one set inside a savepoint; if that fails (or panics),
/// rolled back and run one by one, each in its own savepoint, so only a bad one
/// fails. An error here is a savepoint command failing: the batch cannot commit.
pub(super) async fn run_set<W: SetWrite>(
    txn: &DatabaseTransaction,
    jobs: &mut [SetJob<W>],
    fallbacks: &AtomicU64,
) -> Result<(), DbErr> {
    if jobs.is_empty() {
        return Ok(());
    }
    let writes: Vec<W> = jobs.iter().map(|m| m.write.clone()).collect();
    savepoint(txn, "SAVEPOINT w").await?;
    match guarded(W::apply(txn, &writes)).await {
        Ok(outcomes) if outcomes.len() == writes.len() => {
            savepoint(txn, "RELEASE SAVEPOINT w").await?;
            for (m, outcome) in jobs.iter_mut().zip(outcomes) {
                m.result = Some(Ok(outcome));
            }
            return Ok(());
        }
        Ok(_) => {
            tracing::error!(
                writes = writes.len(),
                "a set write answered for a different number of writes; writing each alone"
            );
            savepoint(txn, "ROLLBACK TO SAVEPOINT w").await?;
            savepoint(txn, "RELEASE SAVEPOINT w").await?;
        }
        Err(err) => {
            tracing::warn!(error = %err, writes = writes.len(), "set write failed; writing each alone");
            savepoint(txn, "ROLLBACK TO SAVEPOINT w").await?;
            savepoint(txn, "RELEASE SAVEPOINT w").await?;
        }
    }
    fallbacks.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("messaging_write_set_fallbacks_total").increment(1);
    for m in jobs.iter_mut() {
        savepoint(txn, "SAVEPOINT w").await?;
        let one = std::slice::from_ref(&m.write);
        match guarded(W::apply(txn, one)).await {
            Ok(mut outcome) if outcome.len() == 1 => {
                savepoint(txn, "RELEASE SAVEPOINT w").await?;
                m.result = outcome.pop().map(Ok);
            }
            Ok(_) => {
                savepoint(txn, "ROLLBACK TO SAVEPOINT w").await?;
                savepoint(txn, "RELEASE SAVEPOINT w").await?;
                m.result = Some(Err(pipeline_error("the write failed")));
            }
            Err(err) => {
                savepoint(txn, "ROLLBACK TO SAVEPOINT w").await?;
                savepoint(txn, "RELEASE SAVEPOINT w").await?;
                m.result = Some(Err(err));
            }
        }
    }
    Ok(())
}
