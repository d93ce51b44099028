//! Messages not yet handed to Twilio keep their time and their owner: a number
//! released and assigned again does not make scheduled messages due (and a scheduled
//! job claimed early anyhow goes back to wait for its time), a number given
//! away while a message waits for its pacing slot does not send it, and retention
//! never deletes what is not sent yet.

use std::time::Duration;

use commpro_messaging_api::v1::{self as pb, MessageStatus};
use messaging_grpc::store::entities::{message, outbox};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use twilio_fake::FakeTwilio;

use crate::helpers::*;

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

async fn setup(extra: &[(&'static str, &str)]) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(&Backend::Sqlite, vars).await;
    server.assign(FROM, "alice").await;
    (fake, server)
}

/// A message from FROM to TO scheduled an hour ahead (whole seconds), and that time.
async fn schedule_in_an_hour(
    alice: &mut UserClient,
    body: &str,
) -> (pb::Message, chrono::DateTime<chrono::Utc>) {
    let in_an_hour = messaging_grpc::store::now() + chrono::Duration::hours(1);
    let m = alice
        .send_req(pb::SendSmsRequest {
            from: FROM.into(),
            to: TO.into(),
            body: body.into(),
            send_at: Some(prost_types::Timestamp {
                seconds: in_an_hour.timestamp(),
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    (m, in_an_hour)
}

async fn release(server: &TestServer) {
    server
        .admin()
        .await
        .call(
            |c, r| Box::pin(c.release_number(r)),
            pb::ReleaseNumberRequest {
                number: FROM.into(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_scheduled_message_keeps_its_time_when_its_number_is_released_and_assigned_again() {
    // Before: the release made every job of the number due now, and the dispatcher
    // released a scheduled message without looking at its send time — an hour early.
    let (fake, server) = setup(&[]).await;
    let mut alice = server.user("alice").await;
    let (m, in_an_hour) = schedule_in_an_hour(&mut alice, "in an hour").await;
    release(&server).await;
    server.assign(FROM, "alice").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alice.message(&m.contact_id, &m.id).await.status,
        MessageStatus::Scheduled as i32
    );
    assert!(
        fake.create_requests().is_empty(),
        "nothing sent before its time"
    );
    let store = server.store().await;
    let job = outbox::Entity::find_by_id(m.id.clone())
        .one(store.conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.next_attempt_at.timestamp(),
        in_an_hour.timestamp(),
        "the job waits for its time"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_scheduled_job_claimed_before_its_time_goes_back_to_wait() {
    // The dispatcher's own check, without the release path: however a scheduled job
    // became due early (an operator's SQL, a bug elsewhere), the worker looks at the
    // message's send time before it sends, and puts the job back to wait for it.
    let (fake, server) = setup(&[]).await;
    let mut alice = server.user("alice").await;
    let (m, in_an_hour) = schedule_in_an_hour(&mut alice, "in an hour, due now by mistake").await;
    let store = server.store().await;
    let mut job: outbox::ActiveModel = outbox::Entity::find_by_id(m.id.clone())
        .one(store.conn())
        .await
        .unwrap()
        .unwrap()
        .into();
    job.next_attempt_at = sea_orm::Set(messaging_grpc::store::now());
    sea_orm::ActiveModelTrait::update(job, store.conn())
        .await
        .unwrap();
    // The suite's poll (20 ms) finds it due.
    crate::helpers::wait_until("the early job to be put back", 10, || async {
        outbox::Entity::find_by_id(m.id.clone())
            .one(store.conn())
            .await
            .unwrap()
            .is_some_and(|j| j.next_attempt_at.timestamp() == in_an_hour.timestamp())
    })
    .await;
    assert!(
        fake.create_requests().is_empty(),
        "nothing sent before its time"
    );
    assert_eq!(
        alice.message(&m.contact_id, &m.id).await.status,
        MessageStatus::Scheduled as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn a_number_given_away_while_a_message_waits_for_its_slot_does_not_send_it() {
    // One message per 4 s from the number, waits slept through in the slot (the
    // setting under test). The second message waits for its slot while the number is
    // released and given to bob: before, ownership was checked before the wait only.
    let (fake, server) = setup(&[
        ("PACING_SENDER_SPS", "0.25"),
        ("PACING_MAX_WAIT_MS", "10000"),
    ])
    .await;
    let mut alice = server.user("alice").await;
    let first = alice.send(FROM, TO, "first").await.unwrap();
    let second = alice.send(FROM, TO, "second").await.unwrap();
    alice.wait_status(&first, MessageStatus::Sent, 10).await;
    release(&server).await;
    server.assign(FROM, "bob").await;
    let failed = alice.wait_status(&second, MessageStatus::Failed, 15).await;
    assert!(
        failed.error_message.contains("no longer assigned"),
        "{}",
        failed.error_message
    );
    assert_eq!(
        fake.create_requests().len(),
        1,
        "nothing went out from bob's number for alice"
    );
    server.stop().await;
}

#[tokio::test]
async fn retention_keeps_a_message_until_it_is_sent() {
    // Written long ago and scheduled: at its time it is released (QUEUED), but Twilio
    // is unreachable, so it waits for a retry with an old created_at. Before, retention
    // deleted it with its job: an acknowledged send lost.
    let (fake, server) = setup(&[
        ("MESSAGE_RETENTION_DAYS", "30"),
        ("MESSAGE_RETENTION_INTERVAL_MS", "100"),
        // Scheduling seconds ahead (the production minimum is a minute).
        ("SCHEDULE_MIN_LEAD_SECS", "1"),
    ])
    .await;
    fake.go_down();
    let mut alice = server.user("alice").await;
    let soon = messaging_grpc::store::now() + chrono::Duration::seconds(1);
    let m = alice
        .send_req(pb::SendSmsRequest {
            from: FROM.into(),
            to: TO.into(),
            body: "written long ago".into(),
            send_at: Some(prost_types::Timestamp {
                seconds: soon.timestamp() + 1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let store = server.store().await;
    message::Entity::update_many()
        .col_expr(
            message::Column::CreatedAt,
            Expr::value(messaging_grpc::store::now() - chrono::Duration::days(31)),
        )
        .filter(message::Column::Id.eq(m.id.clone()))
        .exec(store.conn())
        .await
        .unwrap();
    wait_until("released at its time, then retried", 10, || async {
        server
            .user("alice")
            .await
            .message(&m.contact_id, &m.id)
            .await
            .status
            == MessageStatus::Queued as i32
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // ten retention passes
    assert_eq!(
        outbox::Entity::find().count(store.conn()).await.unwrap(),
        1,
        "message and job kept"
    );
    fake.come_back().await.unwrap();
    // Not watched for SENT: retention (every 100 ms) may take it the moment it is final,
    // before a poll sees it. Twilio has it once; its deletion says it went final (only
    // final messages are deleted).
    wait_until("the message at Twilio", 20, || async {
        fake.created_count() == 1
    })
    .await;
    // Sent, it is as old as any: then retention takes it.
    wait_until("deleted by retention once sent", 20, || async {
        message::Entity::find_by_id(m.id.clone())
            .one(store.conn())
            .await
            .unwrap()
            .is_none()
    })
    .await;
    assert_eq!(fake.created_count(), 1, "sent once");
    server.stop().await;
}
