//! Singleton jobs on PostgreSQL: a pass runs on one replica at a time, and another
//! replica takes over once the holder releases it or dies (its connection ends).

use messaging_grpc::store::{Store, singleton::try_job};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_job_runs_on_one_replica_at_a_time_and_survives_its_holder() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let db = PgDatabase::create(&server).await;
    let a = Store::connect(&db.url).await.unwrap();
    a.migrate().await.unwrap();
    let b = Store::connect(&db.url).await.unwrap();

    let held = try_job(&a, "reconcile-statuses")
        .await
        .unwrap()
        .expect("first");
    assert!(try_job(&b, "reconcile-statuses").await.unwrap().is_none());
    // Other jobs are independent.
    let other = try_job(&b, "prune-parked")
        .await
        .unwrap()
        .expect("another job");
    held.release().await.unwrap();
    let taken = try_job(&b, "reconcile-statuses")
        .await
        .unwrap()
        .expect("after release");
    assert!(try_job(&a, "reconcile-statuses").await.unwrap().is_none());

    // The holder dies (its connection ends without releasing): the lock goes with it.
    let killed = a
        .conn()
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND state = 'idle in transaction'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(killed, 2, "the holder's two job transactions");
    wait_until("the dead holder's lock to end", 10, || async {
        try_job(&a, "reconcile-statuses").await.unwrap().is_some()
    })
    .await;
    drop((taken, other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_one_process_so_its_jobs_are_always_granted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let first = try_job(&store, "x").await.unwrap().expect("granted");
    let second = try_job(&store, "x").await.unwrap().expect("granted");
    // No transaction is held: writes go on.
    store.begin_write().await.unwrap().commit().await.unwrap();
    first.release().await.unwrap();
    second.release().await.unwrap();
}
