//! Claims between replicas on PostgreSQL: a live dispatcher keeps its claim however
//! long its send takes (the heartbeat renews the 10 s lease), and a dead one's claim
//! is taken over within one lease — production lease, measured.

use std::{sync::Arc, time::Duration};

use commpro_messaging_api::v1::MessageStatus;
use tokio::time::Instant;
use twilio_fake::FakeTwilio;

use crate::{delivery::HangAfterSend, helpers::*};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
/// The production lease (OUTBOX_LEASE_SECS default).
const LEASE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_dispatchers_claim_outlives_its_lease_and_a_dead_ones_is_taken_over() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let fake = FakeTwilio::start().await.unwrap();
    let hung = Arc::new(tokio::sync::Notify::new());
    let signal = hung.clone();
    let mut first = TestServer::start_custom(&backend, twilio_vars(&fake), move |app| {
        app.provider = Arc::new(HangAfterSend {
            inner: app.provider.clone(),
            hung: signal,
        });
    })
    .await;
    first.assign(FROM, "alice").await;
    let mut alice = first.user("alice").await;
    let m = alice
        .send(FROM, TO, "held by a slow replica")
        .await
        .unwrap();
    // Twilio has the message; the first replica's send hangs, its claim held.
    tokio::time::timeout(Duration::from_secs(10), hung.notified())
        .await
        .expect("send reached Twilio");
    let second = first.sibling(|_| {}).await;
    let mut alice = second.user("alice").await;

    // Past the lease, the live replica still holds it: the second never took it over
    // (it would have looked Twilio up and adopted the message as SENT).
    tokio::time::sleep(LEASE + Duration::from_secs(3)).await;
    assert_eq!(
        alice.message(&m.contact_id, &m.id).await.status,
        MessageStatus::Sending as i32
    );

    // The first replica dies mid-send (its heartbeat stops, nothing is released):
    // the second takes the job over within a lease and adopts Twilio's record.
    first.halt().await;
    let died = Instant::now();
    let sent = alice.wait_status(&m, MessageStatus::Sent, 25).await;
    let took = died.elapsed();
    eprintln!(
        "taken over {:.1} s after the holder died",
        took.as_secs_f64()
    );
    assert!(
        took <= LEASE + Duration::from_secs(5),
        "taken over after {took:?}"
    );
    assert_eq!(fake.created_count(), 1, "adopted, not sent again");
    assert_eq!(sent.provider_sid, fake.messages()[0].sid);
    second.stop().await;
}

/// The heartbeat renews what it can without waiting: a job whose row a writer holds
/// (its user's writer is marking or settling it) is skipped this beat, so a beat never
/// waits on, or closes a deadlock with, a writer's batch.
#[tokio::test]
async fn a_heartbeat_skips_a_job_a_writer_holds_instead_of_waiting() {
    use messaging_grpc::store::{Store, outbox};
    use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let db = PgDatabase::create(&server).await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let sql = |s: &str| Statement::from_string(store.backend(), s.to_owned());
    store
        .conn()
        .execute_raw(sql(
            "INSERT INTO outbox (message_id, user_id, attempts, next_attempt_at, claimed_until, claim_token, empty_lookups) \
             VALUES ('m1', 'u', 0, now(), now(), 'beat', 0), ('m2', 'u', 0, now(), now(), 'beat', 0)",
        ))
        .await
        .unwrap();
    // A writer holds m1's row in its open batch.
    let batch = store.conn().begin().await.unwrap();
    batch
        .execute_raw(sql(
            "SELECT 1 FROM outbox WHERE message_id = 'm1' FOR UPDATE",
        ))
        .await
        .unwrap();
    let renewed = tokio::time::timeout(
        Duration::from_secs(3),
        outbox::renew_tokens_any(store.conn(), &["beat".to_owned()], LEASE),
    )
    .await
    .expect("the beat does not wait for the held row")
    .unwrap();
    assert_eq!(renewed, 1, "m2 renewed, m1 skipped");
    batch.rollback().await.unwrap();
    let renewed = outbox::renew_tokens_any(store.conn(), &["beat".to_owned()], LEASE)
        .await
        .unwrap();
    assert_eq!(renewed, 2, "the next beat renews both");
}
