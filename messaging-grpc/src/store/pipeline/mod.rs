//! The write pipeline: group commit for every durable write of the process.
//!
//! A request does its CPU work (validation, read-only lookups, encryption) on its own
//! task, then hands the pipeline a prepared write: either data of a set kind
//! ([`SetWrite`]: a new message, [`NewMessage`], the hot path of sends and inbound
//! messages; the dispatcher's SENDING mark, [`StartCreate`], and provider answer,
//! [`HandedOver`]; a provider's status report, [`ReportedStatus`]) — or a closure
//! that runs statements on a transaction (every other
//! write). One task owns the write connection; it takes every write pending (up to
//! [`MAX_BATCH`]) and runs them in ONE transaction: each set kind's writes together
//! as a set (one statement per table for all of them: [`super::message_batch`],
//! [`super::status_batch`]), then each closure inside its own savepoint, so a write
//! that fails is rolled back alone and its caller gets its own error. If a kind's set
//! statements fail, they are rolled back and its writes run one by one, each in its
//! own savepoint, so one bad write fails alone.
//! It commits once, and only then answers the callers. Writes of one batch are all
//! concurrent (none of their callers has been answered), so applying the messages
//! before the closures is one valid order of them. The commit is the
//! acknowledgement: nobody hears "done" before the fsync (SQLite keeps
//! `synchronous=FULL`), but one fsync now covers a whole batch instead of one write.
//!
//! Why one writer: SQLite has one write lock per file. A pool of writers fighting over
//! it through the busy handler gave seconds-long tails; one writer never waits for the
//! lock and batches exactly when load is high. PostgreSQL runs the same pipeline (one
//! per replica): batches cut its commit count the same way.
//!
//! Failure cases, each tested: a write that fails rolls back to its savepoint and fails
//! alone; a failed savepoint command or commit fails every caller of the batch
//! (nothing of it is committed); a write that panics is a failed write; after
//! [`WritePipeline::stop`] queued and new writes are refused, never left waiting.

mod jobs;
mod sets;

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use futures_util::FutureExt as _;

pub use jobs::Job;
use jobs::{TypedJob, run_jobs};
use sets::run_set;
pub use sets::{SetJob, SetWrite};

use super::{
    message_batch::{MessageOutcome, NewMessage},
    report_batch::ReportedStatus,
    status_batch::{HandedOver, StartCreate},
};

use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait as _,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Writes one batch may hold: enough to cover 64+ concurrent callers in one commit,
/// few enough that one batch never holds the write lock for long.
pub const MAX_BATCH: usize = 256;

/// Writes waiting for the writer before callers wait for room (backpressure).
const QUEUE: usize = 4096;

/// A boxed future borrowing the transaction.
pub type TxnFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// A transient storage error (the API answers UNAVAILABLE: safe to retry, and the
/// retry is idempotent where the request carries a key).
fn pipeline_error(why: &str) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("write pipeline: {why}")))
}

/// One queued write: data of a set kind, or a closure.
#[doc(hidden)]
pub enum Pending {
    Message(Box<SetJob<NewMessage>>),
    StartCreate(Box<SetJob<StartCreate>>),
    HandedOver(Box<SetJob<HandedOver>>),
    Reported(Box<SetJob<ReportedStatus>>),
    Job(Box<dyn Job>),
    /// Makes the writer panic outside any write's guard: how the tests kill it.
    Crash,
}

impl Pending {
    fn answer(self, batch_failed: Option<&str>) {
        match self {
            Self::Message(m) => m.answer(batch_failed),
            Self::StartCreate(m) => m.answer(batch_failed),
            Self::HandedOver(m) => m.answer(batch_failed),
            Self::Reported(m) => m.answer(batch_failed),
            Self::Job(j) => j.answer(batch_failed),
            Self::Crash => {}
        }
    }
}

/// A batch's writes, by kind.
#[derive(Default)]
struct Batch {
    messages: Vec<SetJob<NewMessage>>,
    starts: Vec<SetJob<StartCreate>>,
    handed: Vec<SetJob<HandedOver>>,
    reported: Vec<SetJob<ReportedStatus>>,
    jobs: Vec<Box<dyn Job>>,
}

impl Batch {
    fn push(&mut self, pending: Pending) {
        match pending {
            Pending::Message(m) => self.messages.push(*m),
            Pending::StartCreate(m) => self.starts.push(*m),
            Pending::HandedOver(m) => self.handed.push(*m),
            Pending::Reported(m) => self.reported.push(*m),
            Pending::Job(j) => self.jobs.push(j),
            Pending::Crash => panic!("the write pipeline's writer was told to crash (a test)"),
        }
    }

    fn answer(self, batch_failed: Option<&str>) {
        self.messages
            .into_iter()
            .for_each(|m| m.answer(batch_failed));
        self.starts.into_iter().for_each(|m| m.answer(batch_failed));
        self.handed.into_iter().for_each(|m| m.answer(batch_failed));
        self.reported
            .into_iter()
            .for_each(|m| m.answer(batch_failed));
        self.jobs.into_iter().for_each(|j| j.answer(batch_failed));
    }
}

/// Handle to the process's write pipeline; cheap to clone.
#[derive(Clone, Debug)]
pub struct WritePipeline {
    /// One queue per writer ("lane"); a user's writes always take the same one.
    lanes: Arc<[mpsc::Sender<Pending>]>,
    stop: CancellationToken,
    /// Cancelled when the writer task ended without being stopped (a panic outside a
    /// write's guard): every durable write would be refused from then on.
    died: CancellationToken,
    /// Sets that failed and were written one by one (also a metric).
    fallbacks: Arc<AtomicU64>,
}

impl WritePipeline {
    /// Starts one writer task per connection of `writers` (each a connection no one
    /// else writes through; SQLite: exactly one, the file's one writer). With several
    /// (PostgreSQL), writes are routed by user ([`Self::write_for`]): batches of
    /// different writers never hold the same user's rows, so they run in parallel
    /// instead of queueing behind one connection's round trips, and cannot deadlock
    /// over a user's rows. Writes not routed by user go to the first writer.
    pub fn start(writers: Vec<DatabaseConnection>) -> Self {
        assert!(!writers.is_empty(), "the write pipeline needs a writer");
        let (stop, died) = (CancellationToken::new(), CancellationToken::new());
        let fallbacks = Arc::new(AtomicU64::new(0));
        let mut lanes = Vec::with_capacity(writers.len());
        for writer in writers {
            let (jobs, rx) = mpsc::channel(QUEUE);
            lanes.push(jobs);
            let writer = tokio::spawn(run(writer, rx, stop.clone(), fallbacks.clone()));
            let (stopped, dead) = (stop.clone(), died.clone());
            tokio::spawn(async move {
                // A normal end is a stop or every handle dropped (nobody left to write);
                // a panic outside a write's guard is a death (of the whole pipeline: a
                // user whose lane is gone could not write).
                if let Err(e) = writer.await
                    && !stopped.is_cancelled()
                {
                    tracing::error!(error = %e, "the write pipeline's writer died; no write can commit");
                    dead.cancel();
                }
            });
        }
        Self {
            lanes: lanes.into(),
            stop,
            died,
            fallbacks,
        }
    }

    /// Kills the first writer as a bug would (a panic outside any write's guard), for
    /// the tests of what a dead writer does to the process. Never called otherwise.
    #[doc(hidden)]
    pub fn crash_writer(&self) {
        let _ = self.lanes[0].try_send(Pending::Crash);
    }

    /// How many sets failed and were written one by one since start.
    pub fn set_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Which writer takes `user_id`'s writes (0 for writes of no one user).
    pub fn writer_of(&self, user_id: Option<&str>) -> usize {
        let n = self.lanes.len();
        match user_id {
            Some(user) if n > 1 => {
                use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
                // A fixed hasher: the lane of a user must not change while it runs.
                let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user);
                usize::try_from(hash % n as u64).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// The number of writers.
    pub fn writers(&self) -> usize {
        self.lanes.len()
    }

    fn lane(&self, user_id: Option<&str>) -> &mpsc::Sender<Pending> {
        &self.lanes[self.writer_of(user_id)]
    }

    /// False once the writer ended without being stopped.
    pub fn is_alive(&self) -> bool {
        !self.died.is_cancelled()
    }

    /// Resolves when the writer ends without being stopped.
    pub async fn died(&self) {
        self.died.cancelled().await;
    }

    /// Runs `write` in the next batch of `user_id`'s writer (the first writer for
    /// `None`: writes of no one user) and returns its result once the batch
    /// committed. An `Err` from `write` rolls back its own changes only.
    pub async fn write<F, T, E>(&self, user_id: Option<&str>, write: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        self.write_keeping(user_id, write, Result::is_ok).await
    }

    /// Like [`Self::write`], but `keep` decides whether the write's changes stay: an
    /// `Ok` that means "nothing to do" (a lost insert race) rolls back its savepoint
    /// — on PostgreSQL a failed statement must be, before anything else can run.
    pub async fn write_keeping<F, T, E>(
        &self,
        user_id: Option<&str>,
        write: F,
        keep: fn(&Result<T, E>) -> bool,
    ) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            write: Some(write),
            keep,
            result: None,
            kept: false,
            reply,
        };
        let lane = self.lane(user_id);
        if lane.send(Pending::Job(Box::new(job))).await.is_err() {
            return Err(pipeline_error("stopped (shutting down)").into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(pipeline_error("stopped before answering").into()))
    }

    /// Writes a new message in the next batch (with the batch's other new messages,
    /// as a set) and returns its outcome once that batch committed.
    pub async fn write_message(&self, write: NewMessage) -> Result<MessageOutcome, DbErr> {
        self.write_set(write).await
    }

    /// Writes `write` in the next batch of its user's writer, as a set with the
    /// batch's other writes of its kind, and returns its outcome once that batch
    /// committed.
    pub async fn write_set<W: SetWrite>(&self, write: W) -> Result<W::Outcome, DbErr> {
        let (reply, answer) = oneshot::channel();
        let lane = self.lane(Some(write.user_id()));
        let job = SetJob {
            write,
            result: None,
            reply,
        };
        if lane.send(W::pending(job)).await.is_err() {
            return Err(pipeline_error("stopped (shutting down)"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(pipeline_error("stopped before answering")))
    }

    /// Stops the writer after the batch it is running: writes still queued are
    /// refused (their callers get UNAVAILABLE), new ones too. Call it once the
    /// servers have drained, so nothing is refused that a request still awaits.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// The writer: batch, run, commit, answer — until every handle is dropped.
async fn run(
    writer: DatabaseConnection,
    mut rx: mpsc::Receiver<Pending>,
    stop: CancellationToken,
    fallbacks: Arc<AtomicU64>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => 0,
            n = rx.recv_many(&mut batch, MAX_BATCH) => n,
        };
        if received == 0 {
            break;
        }
        let started = Instant::now();
        let size = batch.len();
        let mut kinds = Batch::default();
        for pending in batch.drain(..) {
            kinds.push(pending);
        }
        let failed = run_batch(&writer, &mut kinds, &fallbacks).await.err();
        let why = failed.as_ref().map(|e| {
            tracing::warn!(error = %e, writes = size, "write batch failed; none of it committed");
            "the batch did not commit"
        });
        kinds.answer(why);
        crate::metrics::write_committed(started.elapsed().as_secs_f64(), size);
    }
    // Stopped (or every handle dropped): refuse what is still queued, so no caller
    // waits forever and none hears "done" for a write that was not committed.
    rx.close();
    while let Ok(pending) = rx.try_recv() {
        pending.answer(Some("stopped (shutting down)"));
    }
}

/// Runs the batch's set writes kind by kind (each kind as one set), then every
/// closure in its own savepoint, in one transaction, and commits. An error means
/// nothing was committed. The writes of one batch are all concurrent (none of their
/// callers has been answered), so this order is one valid order of them.
async fn run_batch(
    writer: &DatabaseConnection,
    batch: &mut Batch,
    fallbacks: &AtomicU64,
) -> Result<(), DbErr> {
    // IMMEDIATE on SQLite: take the write lock at BEGIN (other processes' tools may
    // hold it briefly; the busy timeout covers that).
    let txn = writer
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    let ran = async {
        // SENDING marks first: their first statement share-locks the senders' number
        // rows on PostgreSQL, and a release locks that row before the outbox rows it
        // hurries. Taken before this batch holds any other row, that lock cannot
        // close a cycle through a release and another replica's batch.
        run_set(&txn, &mut batch.starts, fallbacks).await?;
        run_set(&txn, &mut batch.messages, fallbacks).await?;
        run_set(&txn, &mut batch.handed, fallbacks).await?;
        run_set(&txn, &mut batch.reported, fallbacks).await?;
        run_jobs(&txn, &mut batch.jobs).await
    }
    .await;
    match ran {
        Ok(()) => txn.commit().await,
        Err(err) => {
            txn.rollback().await.ok();
            Err(err)
        }
    }
}

/// `write`'s result, a panic in it turned into an error (rolled back like one).
async fn guarded<T>(write: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
    match AssertUnwindSafe(write).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!("a set write panicked; rolled back");
            Err(pipeline_error("the write failed"))
        }
    }
}

/// A savepoint command as a prepared statement: the connection keeps it in its
/// statement cache, where `execute_unprepared` would parse it anew two or three times
/// per write (measured at ~7 % of the writer's time).
async fn savepoint(txn: &DatabaseTransaction, sql: &str) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(())
}
