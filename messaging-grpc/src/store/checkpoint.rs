//! SQLite's WAL checkpoints, off the writer.
//!
//! In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint
//! copies them back into the database file and fsyncs it. By default the connection
//! whose commit crosses 1,000 WAL pages runs the checkpoint inside that commit — here
//! always the write pipeline's one writer, so every batch behind it waited. Measured
//! under 64 concurrent senders (BENCHMARKS.md, "Store engine, second steps"): without
//! checkpoints in the writer, sends/s rose by about a quarter.
//!
//! So a task of its own, on a connection of its own (SQLite runs each connection's
//! statements on that connection's thread: the copy uses the other core), runs a
//! PASSIVE checkpoint every [`PERIOD`] while the WAL holds pages. PASSIVE never waits
//! for a lock and never blocks the writer or a reader; it copies what no open read
//! still needs. The writer keeps a high `wal_autocheckpoint` ([`WRITER_AUTOCHECKPOINT_PAGES`])
//! as the safety net: if this task stops or falls behind, the writer checkpoints itself
//! at that size, and `journal_size_limit` truncates the file after a reset. Both are
//! PASSIVE: a read that keeps an old snapshot open holds the WAL from resetting (as it
//! did before this task), which the `messaging_sqlite_wal_pages` gauge shows.

use std::time::Duration;

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbErr, Statement};
use tokio_util::sync::CancellationToken;

/// How often the checkpointer looks at the WAL.
pub const PERIOD: Duration = Duration::from_millis(200);

/// WAL pages at which the writer checkpoints by itself (the checkpointer normally
/// keeps the WAL far below this): 64 MiB of 4 KiB pages.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// What one checkpoint did (`PRAGMA wal_checkpoint`'s answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Pages in the WAL.
    pub log: i64,
    /// Of those, pages now copied into the database file.
    pub checkpointed: i64,
}

/// Runs one PASSIVE checkpoint on `conn` (never waits, never blocks others).
pub async fn passive(conn: &DatabaseConnection) -> Result<Checkpoint, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("wal_checkpoint answered no row".into()))?;
    Ok(Checkpoint {
        log: row.try_get_by_index(1)?,
        checkpointed: row.try_get_by_index(2)?,
    })
}

/// Checkpoints every [`PERIOD`] until `stop`; a failed pass is logged and retried
/// (the writer's own autocheckpoint covers a checkpointer that cannot run).
pub async fn run(conn: DatabaseConnection, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match passive(&conn).await {
            Ok(done) => {
                failing = false;
                // -1: the writer was checkpointing itself at that moment (busy).
                if done.log >= 0 {
                    crate::metrics::wal_checkpoint(done.log, done.checkpointed);
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; the writer will checkpoint by itself");
            }
            Err(_) => {}
        }
    }
    conn.close().await.ok();
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::Store;

    /// The database file only grows through checkpoints (a commit appends to the WAL),
    /// and the writer's own threshold (64 MiB) is far above what this writes: a file
    /// that grew shows the checkpointer copied the commit, off the writer.
    #[tokio::test]
    async fn the_checkpointer_copies_commits_into_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("m.db");
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .write(|txn| {
                Box::pin(async move {
                    txn.execute_unprepared("CREATE TABLE filler(b BLOB)").await?;
                    txn.execute_unprepared(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                         INSERT INTO filler SELECT randomblob(4000) FROM n",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .await
            .unwrap_or_else(|e: DbErr| panic!("{e}"));
        let filled = std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            filled > 2_000_000,
            "the commit is in the WAL ({filled} bytes)"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if size > 3_000_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the database file is still {size} bytes 10 s after the commit"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        store.close().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
