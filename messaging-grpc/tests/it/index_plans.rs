//! The cold queries that need a partial index stay on it (migration
//! `m20261206_000001_lean_hot_indexes`): each names the index's condition literally,
//! because a plan made without the bound value cannot prove a partial index's `WHERE`,
//! and a regression (the condition bound again) would silently scan every message. The
//! plans are read from each database's planner on the query as the store builds it,
//! with its own bound values: SQLite's `EXPLAIN QUERY PLAN` (the plan made before any
//! re-prepare on bind, which a bound condition would take off the index: this half
//! fails then) and PostgreSQL's plan with sequential scans off, so it shows whether the
//! index can be used at all, whatever the (empty) table's statistics say. (PostgreSQL's
//! `EXPLAIN` of a statement with parameters plans with their values, as a custom plan
//! does; 15 has no `EXPLAIN (GENERIC_PLAN)`, so a bound condition passes there.)

use chrono::{Duration, Utc};
use messaging_grpc::store;
use sea_orm::{ConnectionTrait as _, DbBackend, Statement, TransactionTrait as _};

use crate::{
    backend_tests,
    message_batch::{TestStore, open},
};

/// The plan of `query` (as built, values bound) in `db`'s planner, as one text.
async fn plan(db: &TestStore, query: impl sea_orm::QueryTrait) -> String {
    let conn = db.store.conn();
    let backend = conn.get_database_backend();
    let built = query.build(backend);
    let (explain, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        _ => ("EXPLAIN ", "QUERY PLAN"),
    };
    let statement = Statement::from_sql_and_values(
        backend,
        format!("{explain}{}", built.sql),
        built.values.map(|v| v.0).unwrap_or_default(),
    );
    let txn = conn.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    // A real read first: SQLite's EXPLAIN does not check the schema cookie, so on a
    // pool connection opened before the migrations it would plan with the schema that
    // connection last loaded (the old indexes); a read reloads it, as any query would.
    txn.query_all_raw(Statement::from_string(
        backend,
        "SELECT COUNT(*) FROM messages",
    ))
    .await
    .unwrap();
    let rows = txn.query_all_raw(statement).await.unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", column).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

backend_tests! {
    async fn the_cold_queries_stay_on_their_partial_indexes(backend: Backend) {
        let db = open(&backend).await;
        let now = Utc::now();
        let stuck = plan(&db, store::messages::sent_stuck(now, now - Duration::days(7), 100)).await;
        assert!(stuck.contains("idx_messages_sent_updated"), "reconciliation's query: {stuck}");
        let unindexed = plan(&db, store::search::unindexed(500)).await;
        assert!(
            unindexed.contains("idx_messages_search_unindexed"),
            "the search backfill's query: {unindexed}"
        );
    }
}
