//! The write pipeline's failure cases, on both backends: a failing write fails
//! alone, a batch that cannot commit fails every caller with nothing written, a
//! panicking write is a failed write, and a stopped pipeline answers every caller
//! (refusing what it did not commit). Batches are forced by holding the writer with
//! a first write that waits, so the others queue behind it and run as one batch.
//! On PostgreSQL the pipeline has several writers, routed by user: a held writer
//! holds its own users' writes only.

use std::{sync::Arc, time::Duration};

use messaging_grpc::store::Store;
use sea_orm::{ConnectionTrait as _, DbErr, Statement};
use tokio::sync::Semaphore;

use crate::helpers::{Backend, PgDatabase};

struct TestStore {
    store: Store,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

async fn open(backend: &Backend) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display()),
            None,
        ),
        Backend::Postgres(server) => {
            let pg = PgDatabase::create(server).await;
            (pg.url.clone(), Some(pg))
        }
    };
    let store = Store::connect(&url).await.unwrap();
    // A child whose parent must exist at COMMIT (deferred): a batch holding an
    // orphan passes every statement and fails at commit, like a full disk would.
    for sql in [
        "CREATE TABLE parent (id BIGINT PRIMARY KEY)",
        "CREATE TABLE child (id BIGINT PRIMARY KEY, parent_id BIGINT \
         REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    ] {
        store.conn().execute_unprepared(sql).await.unwrap();
    }
    TestStore {
        store,
        _dir: dir,
        _pg: pg,
    }
}

fn sql(store: &Store, sql: String) -> Statement {
    Statement::from_string(store.backend(), sql)
}

/// Inserts `parent(id)` through the pipeline.
async fn insert_parent(store: &Store, id: i64) -> Result<(), DbErr> {
    let stmt = sql(store, format!("INSERT INTO parent (id) VALUES ({id})"));
    store
        .write(move |txn| Box::pin(async move { txn.execute_raw(stmt).await.map(|_| ()) }))
        .await
}

async fn parents(store: &Store) -> Vec<i64> {
    let rows = store
        .conn()
        .query_all_raw(sql(store, "SELECT id FROM parent ORDER BY id".into()))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<i64>("", "id").unwrap())
        .collect()
}

/// Holds the writer until the returned semaphore gets a permit; returns once the
/// holding write is running.
async fn hold_writer(store: &Store) -> (Arc<Semaphore>, tokio::task::JoinHandle<()>) {
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(Semaphore::new(0));
    let (g, r, s) = (gate.clone(), running.clone(), store.clone());
    let holder = tokio::spawn(async move {
        let _ = s
            .write(move |_txn| {
                Box::pin(async move {
                    r.add_permits(1);
                    let _permit = g.acquire().await;
                    Ok::<_, DbErr>(())
                })
            })
            .await;
    });
    let _ = running.acquire().await.unwrap();
    (gate, holder)
}

/// Starts `n` writes from their own tasks and waits until they are queued.
async fn queue<F, Fut>(n: i64, start: F) -> Vec<tokio::task::JoinHandle<Fut::Output>>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(start(i))).collect();
    // Queued writes are only waiting for the held writer now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handles
}

crate::backend_tests! {
    async fn one_failing_write_fails_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = t.store.clone();
        insert_parent(&store, 5).await.unwrap();
        let (gate, holder) = hold_writer(&store).await;
        // Ten writes in one batch; id 5 exists already, so that one fails.
        let writes = queue(10, |i| {
            let s = store.clone();
            async move { (i, insert_parent(&s, i).await) }
        })
        .await;
        gate.add_permits(1);
        holder.await.unwrap();
        for w in writes {
            let (i, result) = w.await.unwrap();
            assert_eq!(result.is_err(), i == 5, "write {i}: {result:?}");
        }
        assert_eq!(parents(&store).await, (0..10).collect::<Vec<_>>());
    }

    async fn a_batch_that_cannot_commit_fails_every_caller(backend: Backend) {
        let t = open(&backend).await;
        let store = t.store.clone();
        let (gate, holder) = hold_writer(&store).await;
        let mut writes = queue(5, |i| {
            let s = store.clone();
            async move { insert_parent(&s, 100 + i).await }
        })
        .await;
        // The orphan: every statement passes, the commit does not.
        let s = store.clone();
        let orphan = sql(&store, "INSERT INTO child (id, parent_id) VALUES (1, 999)".into());
        writes.push(tokio::spawn(async move {
            s.write(move |txn| Box::pin(async move { txn.execute_raw(orphan).await.map(|_| ()) }))
                .await
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        gate.add_permits(1);
        holder.await.unwrap();
        for w in writes {
            let err = w.await.unwrap().expect_err("nothing of a failed batch is acknowledged");
            assert!(err.to_string().contains("did not commit"), "{err}");
        }
        assert!(parents(&store).await.is_empty(), "nothing half-written");
        // The pipeline goes on with the next batch.
        insert_parent(&store, 1).await.unwrap();
        assert_eq!(parents(&store).await, vec![1]);
    }

    async fn a_panicking_write_fails_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = t.store.clone();
        let (gate, holder) = hold_writer(&store).await;
        let mut writes = queue(3, |i| {
            let s = store.clone();
            async move { insert_parent(&s, i).await }
        })
        .await;
        let s = store.clone();
        let stmt = sql(&store, "INSERT INTO parent (id) VALUES (50)".into());
        writes.push(tokio::spawn(async move {
            s.write(move |txn| {
                Box::pin(async move {
                    txn.execute_raw(stmt).await?;
                    if std::hint::black_box(true) {
                        panic!("a bug in a write");
                    }
                    Ok::<_, DbErr>(())
                })
            })
            .await
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        gate.add_permits(1);
        holder.await.unwrap();
        let results: Vec<_> = futures_util::future::join_all(writes).await;
        let failed = results.iter().filter(|r| r.as_ref().unwrap().is_err()).count();
        assert_eq!(failed, 1, "only the panicking write fails");
        assert_eq!(parents(&store).await, vec![0, 1, 2], "its insert was rolled back");
    }

    async fn stopping_answers_every_caller(backend: Backend) {
        let t = open(&backend).await;
        let store = t.store.clone();
        let (gate, holder) = hold_writer(&store).await;
        let writes = queue(20, |i| {
            let s = store.clone();
            async move { (i, insert_parent(&s, i).await) }
        })
        .await;
        store.stop_writes();
        gate.add_permits(1);
        holder.await.unwrap();
        let stored = parents(&store).await;
        for w in writes {
            // Each caller hears back (none hangs), and "done" means stored.
            let (i, result) = tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("every caller is answered")
                .unwrap();
            assert_eq!(result.is_ok(), stored.contains(&i), "write {i}: {result:?}");
        }
        let refused = insert_parent(&store, 1000).await.expect_err("stopped");
        assert!(refused.to_string().contains("shutting down"), "{refused}");
    }
}

/// Holds the writer of `user`'s writes until the returned semaphore gets a permit (on
/// PostgreSQL each user's writes take one of several writers: holding the first would
/// not hold theirs).
pub(crate) async fn hold_writer_of(
    store: &Store,
    user: &str,
) -> (Arc<Semaphore>, tokio::task::JoinHandle<()>) {
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(Semaphore::new(0));
    let (g, r, s, user) = (
        gate.clone(),
        running.clone(),
        store.clone(),
        user.to_owned(),
    );
    let holder = tokio::spawn(async move {
        let _ = s
            .write_for(&user, move |_txn| {
                Box::pin(async move {
                    r.add_permits(1);
                    let _permit = g.acquire().await;
                    Ok::<_, DbErr>(())
                })
            })
            .await;
    });
    let _ = running.acquire().await.unwrap();
    (gate, holder)
}

async fn insert_parent_for(store: &Store, user: &str, id: i64) -> Result<(), DbErr> {
    let stmt = sql(store, format!("INSERT INTO parent (id) VALUES ({id})"));
    store
        .write_for(user, move |txn| {
            Box::pin(async move { txn.execute_raw(stmt).await.map(|_| ()) })
        })
        .await
}

#[tokio::test]
async fn sqlite_has_one_writer_for_everyone() {
    let t = open(&Backend::Sqlite).await;
    assert_eq!(t.store.writers(), 1);
    assert!((0..50).all(|i| t.store.writer_of(&format!("user-{i}")) == 0));
}

#[tokio::test]
async fn on_postgresql_a_held_writer_holds_only_its_own_users_writes() {
    let Some(server) = Backend::postgres() else {
        return;
    };
    let t = open(&server).await;
    let store = t.store.clone();
    assert_eq!(store.writers(), messaging_grpc::store::POSTGRES_WRITERS);
    let users: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
    let used: std::collections::HashSet<usize> = users.iter().map(|u| store.writer_of(u)).collect();
    assert_eq!(
        used.len(),
        store.writers(),
        "64 users spread over every writer"
    );
    let held = &users[0];
    let same = users[1..]
        .iter()
        .find(|u| store.writer_of(u) == store.writer_of(held))
        .unwrap();
    let other = users
        .iter()
        .find(|u| store.writer_of(u) != store.writer_of(held))
        .unwrap();
    // The same user always gets the same writer.
    assert_eq!(store.writer_of(held), store.writer_of(&held.clone()));

    let (gate, holder) = hold_writer_of(&store, held).await;
    // Another writer's user commits while the first writer is held...
    tokio::time::timeout(Duration::from_secs(30), insert_parent_for(&store, other, 1))
        .await
        .expect("a write on another writer is not held")
        .unwrap();
    assert_eq!(parents(&store).await, vec![1]);
    // ...a user of the held writer waits for it.
    let waiting = {
        let (s, u) = (store.clone(), same.clone());
        tokio::spawn(async move { insert_parent_for(&s, &u, 2).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a user's write waits for its own writer"
    );
    assert_eq!(parents(&store).await, vec![1]);
    gate.add_permits(1);
    holder.await.unwrap();
    waiting.await.unwrap().unwrap();
    assert_eq!(parents(&store).await, vec![1, 2]);
}

/// A writer that dies (a panic outside any write's guard) leaves a process that
/// could read but never commit: the server stops serving and `serve` ends with an
/// error, so the process exits non-zero and an orchestrator restarts it, instead of
/// staying ready while refusing every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_stops_the_server_with_an_error() {
    let app_store: Arc<std::sync::Mutex<Option<Store>>> = Arc::default();
    let captured = app_store.clone();
    let server = crate::helpers::TestServer::start_custom(
        &Backend::Sqlite,
        std::collections::HashMap::new(),
        move |app| *captured.lock().unwrap() = Some(app.outbox.records().store().clone()),
    )
    .await;
    server.assign("+15005550006", "alice").await;
    let mut alice = server.user("alice").await;
    alice
        .send("+15005550006", "+14155550100", "before")
        .await
        .expect("a send while the writer lives");
    let store = app_store.lock().unwrap().take().expect("the app's store");
    store.crash_writer_for_tests();
    let ended = server.exit(30).await;
    let error = ended.expect_err("serve ends with an error");
    assert!(
        error.to_string().contains("write pipeline"),
        "the error says why: {error:#}"
    );
    assert!(
        store.ping().await.is_err(),
        "readiness fails with a dead writer"
    );
}

/// A row another transaction holds (an operator's session, a stuck migration) fails
/// the write that waits on it after the writers' `lock_timeout` (5 s), retryable
/// (UNAVAILABLE), instead of stalling its writer's every later write; and the other
/// writers go on meanwhile.
#[tokio::test]
async fn on_postgresql_a_row_held_elsewhere_fails_its_write_after_the_lock_timeout() {
    use sea_orm::TransactionTrait as _;
    let Some(server) = Backend::postgres() else {
        return;
    };
    let t = open(&server).await;
    let store = t.store.clone();
    insert_parent(&store, 1).await.unwrap();
    let holder = store.conn().begin().await.unwrap();
    holder
        .execute_raw(sql(
            &store,
            "SELECT id FROM parent WHERE id = 1 FOR UPDATE".into(),
        ))
        .await
        .unwrap();
    let users: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
    let blocked_user = &users[0];
    let other = users
        .iter()
        .find(|u| store.writer_of(u) != store.writer_of(blocked_user))
        .unwrap();
    let blocked = tokio::spawn({
        let (store, user) = (store.clone(), blocked_user.clone());
        let stmt = sql(&store, "UPDATE parent SET id = id WHERE id = 1".into());
        async move {
            let started = std::time::Instant::now();
            let r = store
                .write_for(&user, move |txn| {
                    Box::pin(async move { txn.execute_raw(stmt).await.map(|_| ()) })
                })
                .await;
            (r, started.elapsed())
        }
    });
    // Another writer's user commits while the row is held.
    tokio::time::timeout(Duration::from_secs(4), insert_parent_for(&store, other, 2))
        .await
        .expect("a write on another writer is not held")
        .unwrap();
    let (result, took) = tokio::time::timeout(Duration::from_secs(30), blocked)
        .await
        .expect("the blocked write ends by itself")
        .unwrap();
    let err = result.expect_err("the blocked write fails");
    assert!(
        took >= Duration::from_secs(4),
        "after the lock timeout, not at once: {took:?}"
    );
    let status = tonic::Status::from(messaging_grpc::error::Error::from(err));
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    holder.rollback().await.unwrap();
    // The writer goes on: the same user's next write commits.
    insert_parent_for(&store, blocked_user, 3).await.unwrap();
    assert_eq!(parents(&store).await, [1, 2, 3]);
}
