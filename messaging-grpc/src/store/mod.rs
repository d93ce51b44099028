//! Persistence on SeaORM: SQLite (embedded default) or PostgreSQL.
//!
//! Every function that reads or writes user data takes the user id: there is no
//! "find by id" that could cross tenants. Functions take `&impl ConnectionTrait` so the
//! domain layer can compose them inside one transaction.

pub mod audit;
pub mod checkpoint;
mod chunks;
pub mod contacts;
pub mod conversations;
pub mod duplicate_sends;
pub mod entities;
pub mod events;
pub mod ingest;
pub mod legacy_numbers;
pub mod media;
pub mod message_batch;
pub mod messages;
pub mod numbers;
pub mod opt_outs;
pub mod outbox;
mod owned;
pub mod pacing;
pub mod page_token;
pub mod pages;
pub mod pipeline;
pub mod process_lock;
pub mod report_batch;
pub mod retention;
pub mod scheduled;
pub mod search;
pub mod singleton;
pub mod sqlite_reads;
pub mod status_batch;
pub mod user_keys;

use std::{path::Path, sync::Arc, time::Duration};

use tokio_util::sync::{CancellationToken, DropGuard};

use chrono::{DateTime, SubsecRound, Utc};
use messaging_migrations::{Migrator, MigratorTrait};
pub use pipeline::TxnFuture;
use pipeline::WritePipeline;
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

/// Handle to the database; cheap to clone. Reads go through a pool of connections
/// ([`Self::conn`]); durable writes through the process's one write pipeline
/// ([`Self::write`]), which owns its own connection.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    pipeline: WritePipeline,
    /// SQLite: stops the WAL checkpointer ([`checkpoint`]) when the last handle goes
    /// or the writes stop.
    checkpointer: Option<Arc<DropGuard>>,
    /// PostgreSQL: the pacing clocks' own connections ([`Self::pacing_conn`]).
    pacing: Option<DatabaseConnection>,
    /// SQLite (a file): the page reads' own connections ([`sqlite_reads`]).
    sqlite_reads: Option<sqlite_reads::SqliteReads>,
}

impl Store {
    /// Connects to `sqlite://path` or `postgres://…`. For SQLite the file and its folder
    /// are created, WAL is on and commits are fsynced (`synchronous=FULL`): a message we
    /// acknowledged survives a power cut. PostgreSQL gets [`POSTGRES_WRITERS`] writers.
    pub async fn connect(url: &str) -> Result<Self, DbErr> {
        Self::connect_with_writers(url, POSTGRES_WRITERS).await
    }

    /// [`Self::connect`] with `postgres_writers` write connections on PostgreSQL
    /// (`DATABASE_WRITERS`; at least 1). SQLite always has one: the file has one
    /// write lock.
    pub async fn connect_with_writers(url: &str, postgres_writers: usize) -> Result<Self, DbErr> {
        let db = Database::connect(options(url, 8, 32, READER)?).await?;
        // The pipeline's own connections: on SQLite the one writer of the file, so
        // group commit never waits for the write lock.
        // Its page cache holds the pages of the indexes a batch touches at random
        // (search terms, blind-indexed contacts) instead of reading them again.
        let sqlite = url.starts_with("sqlite:");
        let count = if sqlite { 1 } else { postgres_writers.max(1) };
        let mut writers = Vec::with_capacity(count);
        for _ in 0..count {
            let mut writer = options(url, 1, 1, WRITER)?;
            if !sqlite {
                // One blocked row (an operator's open transaction, a stuck replica) must
                // not stall every write of this replica: a statement waiting longer than
                // this for a lock fails its write, whose caller gets UNAVAILABLE and retries.
                writer
                    .map_sqlx_postgres_opts(|o| o.options([("lock_timeout", WRITER_LOCK_TIMEOUT)]));
            }
            writers.push(Database::connect(writer).await?);
        }
        let checkpointer = if url.starts_with("sqlite:") {
            let conn = Database::connect(options(url, 1, 1, READER)?).await?;
            let stop = CancellationToken::new();
            tokio::spawn(checkpoint::run(conn, stop.clone()));
            Some(Arc::new(stop.drop_guard()))
        } else {
            None
        };
        let pacing = if sqlite {
            None
        } else {
            let mut opts = options(url, 1, PACING_CONNECTIONS, READER)?;
            // A booking locks the account's clock row until it commits: with the
            // commit waiting for its WAL flush, every dispatcher's bookings queued
            // behind one fsync each (measured: ~160 sends/s at most, whatever else
            // ran). A clock is not a write we acknowledge to anyone: losing the last
            // few bookings in a database crash only lets those senders go a slot
            // early once, so these connections commit without waiting for the flush.
            opts.map_sqlx_postgres_opts(|o| o.options([("synchronous_commit", "off")]));
            Some(Database::connect(opts).await?)
        };
        let sqlite_reads = match sqlite_path(url) {
            Some(path) => Some(sqlite_reads::SqliteReads::open(path)?),
            None => None,
        };
        Ok(Self {
            db,
            pipeline: WritePipeline::start(writers),
            checkpointer,
            pacing,
            sqlite_reads,
        })
    }

    /// Runs `write` in the write pipeline's next batch and returns once that batch
    /// committed (see [`pipeline`]): an `Err` rolls back this write only.
    pub async fn write<F, T, E>(&self, write: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        self.pipeline.write(None, write).await
    }

    /// [`Self::write`] for a write of `user_id`'s rows: on PostgreSQL it runs on that
    /// user's writer, in parallel with other users' (see [`pipeline`]). Any write may
    /// use either; this one only spreads the load.
    pub async fn write_for<F, T, E>(&self, user_id: &str, write: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<DbErr> + Send + 'static,
    {
        self.pipeline.write(Some(user_id), write).await
    }

    /// Which of the pipeline's writers takes `user_id`'s writes, of [`Self::writers`].
    pub fn writer_of(&self, user_id: &str) -> usize {
        self.pipeline.writer_of(Some(user_id))
    }

    /// The write pipeline's writers (SQLite: 1).
    pub fn writers(&self) -> usize {
        self.pipeline.writers()
    }

    /// Writes a new message in the write pipeline's next batch, as a set with the
    /// batch's other new messages ([`message_batch`]); returns once it committed.
    pub async fn write_message(
        &self,
        write: message_batch::NewMessage,
    ) -> Result<message_batch::MessageOutcome, DbErr> {
        self.pipeline.write_message(write).await
    }

    /// Writes `write` in its user's writer's next batch, as a set with the batch's
    /// other writes of its kind ([`status_batch`]: the dispatcher's SENDING marks and
    /// handed-over answers); returns its outcome once it committed.
    pub async fn write_set<W: pipeline::SetWrite>(&self, write: W) -> Result<W::Outcome, DbErr> {
        self.pipeline.write_set(write).await
    }

    /// Kills the write pipeline's first writer as a bug would, for the tests of a dead
    /// writer (`pipeline::a_dead_writer_stops_the_server_with_an_error`).
    #[doc(hidden)]
    pub fn crash_writer_for_tests(&self) {
        self.pipeline.crash_writer();
    }

    /// How many of the pipeline's sets failed and were written one by one since start
    /// (`messaging_write_set_fallbacks_total`): a set statement that fails on valid
    /// writes shows here, not only in the time it costs.
    pub fn set_fallbacks(&self) -> u64 {
        self.pipeline.set_fallbacks()
    }

    /// Stops the write pipeline (shutdown, after the servers drained): queued and
    /// later writes are refused with UNAVAILABLE.
    pub fn stop_writes(&self) {
        self.pipeline.stop();
        self.stop_checkpointer();
    }

    fn stop_checkpointer(&self) {
        if let Some(guard) = &self.checkpointer {
            guard.token().cancel();
        }
    }
}

/// Write connections per replica on PostgreSQL (`DATABASE_WRITERS`): the pipeline's
/// writers, writes routed by user (see [`pipeline`]). One connection spends most of a
/// batch waiting for round trips; four kept a two-core machine's PostgreSQL busy.
pub const POSTGRES_WRITERS: usize = 4;

/// PostgreSQL: connections that book pacing slots (one booking per send, each a short
/// statement; more than the dispatcher sends at once would only queue on the row locks).
const PACING_CONNECTIONS: u32 = 4;

/// PostgreSQL's `lock_timeout` on the write pipeline's connections.
const WRITER_LOCK_TIMEOUT: &str = "5s";

/// SQLite reads the first 64 MiB of the file through a memory map (no copy out of the
/// OS page cache per page read: the profile of a send load showed the writer spending
/// ~10 % of its time in `pread` copies). Mapped pages count in the process's RSS: with
/// 1 GiB the core's peak RSS reached 200 MB under the loader, with 64 MiB 139 MB
/// (the 150 MB target), at the same send rate.
const SQLITE_MMAP_BYTES: u64 = 64 << 20;

/// What the WAL file is truncated back to after a checkpoint reset it.
const SQLITE_WAL_LIMIT_BYTES: u64 = 64 << 20;

/// Per-connection SQLite settings that differ between the writer, the readers and
/// the checkpointer.
#[derive(Clone, Copy)]
struct SqliteTuning {
    /// `cache_size` in KiB.
    cache_kib: u32,
    /// `temp_store=MEMORY`: the statement sub-journal (the pages a savepoint may roll
    /// back to) in memory instead of a temporary file.
    temp_in_memory: bool,
    /// `wal_autocheckpoint` in pages (0: this connection never checkpoints itself).
    autocheckpoint_pages: u32,
}

/// The write pipeline's connection: a larger cache (16 MiB: with 32 MiB and a 1 GiB
/// map sends were no faster), and a checkpoint of its own only when the checkpointer
/// fell far behind.
///
/// Its sub-journal is in memory: every set of a batch and every other write runs in a
/// savepoint of the batch's transaction (so one bad write fails alone), and SQLite
/// copies each page a savepoint first changes into that journal. In a temporary file
/// (`/var/tmp/etilqs_*`, the default) that was half of the writer's `pwrite` calls
/// under a send load (strace: 13.9 k of 27.5 k in 4 s), for a journal never read
/// unless a savepoint rolls back; in memory it is a copy of at most a batch's pages.
const WRITER: SqliteTuning = SqliteTuning {
    cache_kib: 16 * 1024,
    temp_in_memory: true,
    autocheckpoint_pages: checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
};

/// A reader (or the checkpointer): SQLite's default cache (with the memory map a
/// miss is cheap), and never a checkpoint in a read.
const READER: SqliteTuning = SqliteTuning {
    cache_kib: 2000,
    temp_in_memory: false,
    autocheckpoint_pages: 0,
};

/// Pool options for `url`: `sqlite_max` / `postgres_max` connections.
fn options(
    url: &str,
    sqlite_max: u32,
    postgres_max: u32,
    tuning: SqliteTuning,
) -> Result<ConnectOptions, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        if let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(Path::to_path_buf))
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&parent).map_err(|e| {
                DbErr::Custom(format!(
                    "creating database folder {}: {e}",
                    parent.display()
                ))
            })?;
        }
        opts.max_connections(sqlite_max)
            .map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                    .pragma("cache_size", format!("-{}", tuning.cache_kib))
                    // Checkpoints run on their own connection ([`checkpoint`]); this is
                    // the writer's fallback, and the readers never start one.
                    .pragma(
                        "wal_autocheckpoint",
                        tuning.autocheckpoint_pages.to_string(),
                    )
                    .pragma("journal_size_limit", SQLITE_WAL_LIMIT_BYTES.to_string())
                    .pragma(
                        "temp_store",
                        if tuning.temp_in_memory {
                            "MEMORY"
                        } else {
                            "DEFAULT"
                        },
                    )
            });
    } else {
        opts.max_connections(postgres_max);
    }
    Ok(opts)
}

impl Store {
    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.db, None).await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// SQLite's page readers (`None` on PostgreSQL and for an in-memory SQLite).
    pub fn sqlite_reads(&self) -> Option<&sqlite_reads::SqliteReads> {
        self.sqlite_reads.as_ref()
    }

    /// Where the pacing clocks are booked (`store::pacing`): on PostgreSQL connections
    /// that commit without waiting for the WAL flush (see `connect_with_writers`);
    /// the read pool otherwise.
    pub fn pacing_conn(&self) -> &DatabaseConnection {
        self.pacing.as_ref().unwrap_or(&self.db)
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at
    /// BEGIN (IMMEDIATE): a deferred transaction that reads first and writes later can
    /// fail with SQLITE_BUSY when two of them race, whatever the busy timeout.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        self.db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
    }

    /// Checks the database answers (readiness).
    /// The database answers and the write pipeline runs (a replica that can read but
    /// not write is not ready).
    pub async fn ping(&self) -> Result<(), DbErr> {
        if !self.pipeline.is_alive() {
            return Err(DbErr::Custom("the write pipeline's writer ended".into()));
        }
        self.db.ping().await
    }

    /// Resolves when the write pipeline's writer ends without being stopped.
    pub async fn writer_died(&self) {
        self.pipeline.died().await;
    }

    /// Connections of the pool: `(open, idle, max)` (metrics).
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        // Each getter panics on the other backend: pick by backend first.
        match self.backend() {
            DatabaseBackend::Postgres => {
                let p = self.db.get_postgres_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
            _ => {
                let p = self.db.get_sqlite_connection_pool();
                (p.size(), p.num_idle(), p.options().get_max_connections())
            }
        }
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.pipeline.stop();
        self.stop_checkpointer();
        let pacing = match self.pacing {
            Some(pacing) => pacing.close().await,
            None => Ok(()),
        };
        // Both pools closed whatever the first answered.
        self.db.close().await.and(pacing)
    }
}

/// The file behind a `sqlite:` URL, if it names one.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// Current time truncated to microseconds, the precision PostgreSQL keeps: a value read
/// back equals the value written, which keyset pagination relies on.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Takes the cluster-wide lock of a singleton job for the rest of `txn`: on
/// PostgreSQL a transaction-level advisory lock, so with several replicas only one
/// runs the job at a time (the others skip it; a crashed holder's lock ends with
/// its connection). SQLite is one process: always true.
pub async fn try_lock_job(txn: &DatabaseTransaction, job: &str) -> Result<bool, DbErr> {
    use sea_orm::{ConnectionTrait as _, Statement};
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(true);
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked",
            [job.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

/// True when PostgreSQL chose this statement's transaction as the victim of a
/// deadlock or a serialization failure (SQLSTATE 40P01 / 40001): on PostgreSQL each
/// replica's write pipeline holds several users' rows until its batch commits, so two
/// replicas' batches can wait on each other. The write was rolled back to its
/// savepoint; running it again is safe.
pub fn is_lock_conflict(err: &DbErr) -> bool {
    use std::ops::Deref as _;
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
    | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))
    | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    matches!(e.deref(), sea_orm::sqlx::Error::Database(db)
        if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

/// True when the error is a unique-constraint violation (a lost insert race).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite file gets its page readers, and they read what the pipeline committed
    /// (in-memory SQLite, which no second connection can see, keeps the pool).
    #[tokio::test]
    async fn a_sqlite_file_reads_its_pages_on_its_own_threads() {
        use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};
        use sqlite_reads::RowAt as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        numbers::assign_any(store.conn(), "+15005550006", "u1")
            .await
            .unwrap();
        let q = Query::select()
            .column(Alias::new("user_id"))
            .from(Alias::new("phone_numbers"))
            .and_where(Expr::col(Alias::new("e164")).eq("+15005550006"))
            .to_owned();
        let readers = store.sqlite_reads().expect("a file has page readers");
        let owners = readers.rows(&q, |row| row.cell::<String>(0)).await.unwrap();
        assert_eq!(owners, ["u1"]);
        let memory = Store::connect("sqlite::memory:").await.unwrap();
        assert!(memory.sqlite_reads().is_none());
        store.close().await.unwrap();
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/m.db?mode=rwc"),
            Some(Path::new("data/m.db"))
        );
        assert_eq!(sqlite_path("sqlite:m.db"), Some(Path::new("m.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    /// The bundled SQLite carries the options `.cargo/config.toml` sets: without QPSG
    /// every statement with a `LIMIT ?` is re-parsed on each run.
    #[tokio::test]
    async fn sqlite_is_built_for_speed() {
        use sea_orm::ConnectionTrait as _;
        let db = Database::connect("sqlite::memory:").await.unwrap();
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .unwrap();
        let options: Vec<String> = rows
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect();
        for wanted in ["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "SQLite lacks {wanted}: build through cargo in this workspace (LIBSQLITE3_FLAGS \
                 in .cargo/config.toml); it has {options:?}"
            );
        }
    }
}
