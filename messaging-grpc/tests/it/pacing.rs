//! Pacing shared through PostgreSQL: pacers on two connections pools (two replicas) book
//! from the same clocks, never closer than the interval by the database's clock, and a
//! restarted pacer still sees the clocks.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use messaging_grpc::{
    dispatch::{Pacer, PacingConfig, Slot},
    store::{
        Store,
        pacing::{self, take_slot_any},
    },
};
use sea_orm::ConnectionTrait;

use crate::helpers::*;

const SENDER: &str = "+15005550006";

async fn replica(url: &str) -> Store {
    Store::connect(url).await.unwrap()
}

async fn migrated(server: &str) -> (PgDatabase, Store) {
    let db = PgDatabase::create(server).await;
    let store = replica(&db.url).await;
    store.migrate().await.unwrap();
    (db, store)
}

/// Books `n` slots of `sender` on `store` as fast as it is allowed, sleeping the waits
/// the database names; the instants (the database's clock) of the slots it got.
async fn book_n(
    store: Store,
    sender: &'static str,
    hold: Duration,
    n: usize,
) -> Vec<DateTime<Utc>> {
    let mut got = Vec::new();
    while got.len() < n {
        match take_slot_any(store.pacing_conn(), sender, hold, Duration::ZERO)
            .await
            .unwrap()
        {
            pacing::Slot::Booked(at) => got.push(at),
            pacing::Slot::Wait(wait) => tokio::time::sleep(wait).await,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_book_one_sender_closer_than_its_interval() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let (db, a) = migrated(&server).await;
    let b = replica(&db.url).await;
    let hold = Duration::from_millis(20);
    // Three bookers per replica race for the same sender's slots.
    let mut tasks = Vec::new();
    for store in [a.clone(), a, b.clone(), b] {
        for _ in 0..3 {
            tasks.push(tokio::spawn(book_n(store.clone(), SENDER, hold, 8)));
        }
    }
    let mut slots = Vec::new();
    for t in tasks {
        slots.extend(t.await.unwrap());
    }
    slots.sort();
    assert_eq!(slots.len(), 96);
    let hold = chrono::Duration::from_std(hold).unwrap();
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= hold,
            "two slots {} apart: {pair:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_clock_is_shared_and_segments_count() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let (db, a) = migrated(&server).await;
    let b = replica(&db.url).await;
    let config = PacingConfig {
        sender_sps: 1000.0,
        overrides: HashMap::from([("+15005550007".to_owned(), 0.001)]),
        // One segment holds the whole account for an hour: nothing else may go.
        account_sps: 1.0 / 3600.0,
    };
    let (pa, pb) = (
        Pacer::for_store(&a, config.clone()),
        Pacer::for_store(&b, config),
    );
    assert!(
        matches!(pa, Pacer::Shared(_)),
        "PostgreSQL shares its clocks"
    );
    assert_eq!(pa.try_acquire(SENDER, 1).await.unwrap(), Slot::Booked);
    let Slot::Wait(wait) = pb.try_acquire("+15005550008", 1).await.unwrap() else {
        panic!("another replica, another sender: the account is busy")
    };
    assert!(wait > Duration::from_secs(3000), "{wait:?}");
    assert!(
        pb.paced_out(Duration::ZERO, 10).await.unwrap().is_empty(),
        "the account clock is not a sender: claims skip no one for it"
    );

    // Segments count: 2 segments at 0.001/s hold that sender 2000 s, seen by both.
    let fresh = Pacer::for_store(
        &a,
        PacingConfig {
            sender_sps: 1000.0,
            overrides: HashMap::from([("+15005550007".to_owned(), 0.001)]),
            account_sps: 1000.0,
        },
    );
    // The account is still held by the first booking: free it by hand.
    a.conn()
        .execute_unprepared(
            "UPDATE pacing_clocks SET next_free = to_timestamp(0) WHERE key = 'account'",
        )
        .await
        .unwrap();
    assert_eq!(
        fresh.try_acquire("+15005550007", 2).await.unwrap(),
        Slot::Booked
    );
    let Slot::Wait(wait) = pb.try_acquire("+15005550007", 1).await.unwrap() else {
        panic!("the sender is busy for the other replica too")
    };
    assert!(
        wait > Duration::from_secs(1900) && wait <= Duration::from_secs(2000),
        "{wait:?}"
    );
    assert_eq!(
        pb.paced_out(Duration::from_secs(60), 10).await.unwrap(),
        ["+15005550007"]
    );
    let next = pb.next_free().await.unwrap().expect("a busy sender");
    assert!(next > Duration::from_secs(1900), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_keeps_the_clocks() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let (db, store) = migrated(&server).await;
    let config = PacingConfig {
        sender_sps: 1.0 / 3600.0,
        ..PacingConfig::default()
    };
    let pacer = Arc::new(Pacer::for_store(&store, config.clone()));
    assert_eq!(pacer.try_acquire(SENDER, 1).await.unwrap(), Slot::Booked);
    drop(pacer);
    store.close().await.unwrap();

    // A new process: a new pool, a new pacer; the sender's hour is still booked.
    let restarted = replica(&db.url).await;
    let pacer = Pacer::for_store(&restarted, config);
    let Slot::Wait(wait) = pacer.try_acquire(SENDER, 1).await.unwrap() else {
        panic!("a restart forgot the clock")
    };
    assert!(wait > Duration::from_secs(3000), "{wait:?}");
    assert_eq!(pacer.paced_out(Duration::ZERO, 10).await.unwrap(), [SENDER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_paces_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let config = PacingConfig {
        sender_sps: 1.0 / 3600.0,
        ..PacingConfig::default()
    };
    let pacer = Pacer::for_store(&store, config.clone());
    assert!(matches!(pacer, Pacer::Local(_)));
    assert_eq!(pacer.try_acquire(SENDER, 1).await.unwrap(), Slot::Booked);
    assert!(matches!(
        pacer.try_acquire(SENDER, 1).await.unwrap(),
        Slot::Wait(_)
    ));
    // One process, so its own memory: a second pacer (a restart) starts free.
    let again = Pacer::for_store(&store, config);
    assert_eq!(again.try_acquire(SENDER, 1).await.unwrap(), Slot::Booked);
}

/// Bookings commit without waiting for the WAL flush (the account row is locked until
/// the commit; a flush per booking capped every dispatcher at the disk's fsync rate);
/// everything else still waits for it.
#[tokio::test]
async fn bookings_do_not_wait_for_the_wal_flush_and_nothing_else_changes() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let (_db, store) = migrated(&server).await;
    let setting = |conn: &sea_orm::DatabaseConnection| {
        let conn = conn.clone();
        async move {
            let row = conn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    "SHOW synchronous_commit",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<String>("", "synchronous_commit").unwrap()
        }
    };
    assert_eq!(setting(store.pacing_conn()).await, "off");
    assert_eq!(setting(store.conn()).await, "on");
    let booked = take_slot_any(
        store.pacing_conn(),
        SENDER,
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(matches!(booked, pacing::Slot::Booked(_)), "{booked:?}");
}

/// A re-booking (a send whose slot went stale while its SENDING mark committed) moves the
/// sender's clock from now, waits while the sender is busy, and leaves the account's clock
/// as the first booking left it.
#[tokio::test]
async fn a_rebooking_moves_only_the_senders_clock() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let (_db, store) = migrated(&server).await;
    let conn = store.pacing_conn();
    let clocks = || async {
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT key, next_free FROM pacing_clocks",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "key").unwrap(),
                    r.try_get::<DateTime<Utc>>("", "next_free").unwrap(),
                )
            })
            .collect::<HashMap<_, _>>()
    };
    let hold = Duration::from_millis(300);
    let booked = take_slot_any(conn, SENDER, hold, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(matches!(booked, pacing::Slot::Booked(_)));
    let first = clocks().await;
    // The sender is busy for 300 ms: the re-booking waits.
    match pacing::rebook_sender_any(conn, SENDER, hold).await.unwrap() {
        pacing::Slot::Wait(w) => assert!(w <= hold, "{w:?}"),
        other => panic!("booked while the sender was busy: {other:?}"),
    }
    tokio::time::sleep(hold).await;
    let pacing::Slot::Booked(at) = pacing::rebook_sender_any(conn, SENDER, hold).await.unwrap()
    else {
        panic!("the sender was free");
    };
    let now = clocks().await;
    assert_eq!(now[SENDER], at + chrono::Duration::milliseconds(300));
    assert_eq!(
        now[pacing::ACCOUNT],
        first[pacing::ACCOUNT],
        "the account is charged once"
    );
}
