//! The dispatcher's SENDING marks and handed-over answers written as sets
//! (`store::status_batch`), on both backends: inside one batch each write gets its own
//! answer (a lost lease, a released sender, a message that changed meanwhile), the
//! changed ones get consecutive event cursors, and when a set statement fails (a
//! provider SID another message holds) the batch is written one by one so only the bad
//! write fails. Batches are forced by holding the writer.

use std::time::Duration;

use messaging_grpc::store::{
    self, Store,
    outbox::Claimed,
    pipeline::IntoPending,
    status_batch::{HandedOver, StartCreate, Started},
};
use sea_orm::{ConnectionTrait as _, DbErr, Statement};

use crate::message_batch::{committed, count, hold_writer, in_one_batch, open, send};

const OWN: &str = "+15005550006";
const LEASE: Duration = Duration::from_secs(30);

/// Writes every one of `writes` in ONE batch (queued behind a held writer).
async fn in_one_set<W: IntoPending>(
    store: &Store,
    writes: Vec<W>,
) -> Vec<Result<W::Outcome, DbErr>> {
    let (gate, holder) = hold_writer(store).await;
    let mut handles = Vec::new();
    for w in writes {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.write_set(w).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.add_permits(1);
    holder.await.unwrap();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// `n` queued sends of u1 from OWN, claimed; the jobs in the order of their messages.
async fn claimed_sends(store: &Store, n: usize) -> Vec<Claimed> {
    store::numbers::assign_any(store.conn(), OWN, "u1")
        .await
        .unwrap();
    let writes = (0..n)
        .map(|i| send("u1", OWN, &format!("contact {i}")))
        .collect();
    let ids: Vec<String> = in_one_batch(store, writes)
        .await
        .iter()
        .map(|o| committed(o).0.id.clone())
        .collect();
    let mut jobs = store::outbox::claim_any(store.conn(), LEASE, 100, &[])
        .await
        .unwrap();
    jobs.sort_by_key(|j| ids.iter().position(|id| *id == j.message_id));
    assert_eq!(jobs.len(), n);
    jobs
}

fn start(job: &Claimed) -> StartCreate {
    StartCreate {
        user_id: job.user_id.clone(),
        message_id: job.message_id.clone(),
        token: job.token.clone(),
        owner_e164: OWN.into(),
        lease: LEASE,
        from_queued: true,
        event_kind: "message_status_changed",
    }
}

fn handed(job: &Claimed, sid: &str) -> HandedOver {
    HandedOver {
        user_id: job.user_id.clone(),
        message_id: job.message_id.clone(),
        expected: "sending".into(),
        status: "sent".into(),
        provider_sid: sid.into(),
        segments: None,
        sent_at: store::now(),
        event_kind: "message_status_changed",
    }
}

async fn status_of(store: &Store, id: &str) -> String {
    store::messages::find_any(store.conn(), id)
        .await
        .unwrap()
        .unwrap()
        .status
}

async fn exec(store: &Store, sql: String) {
    store
        .conn()
        .execute_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap();
}

crate::backend_tests! {
    async fn each_mark_in_a_set_gets_its_own_answer(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = claimed_sends(store, 5).await;
        // jobs[1]: claimed by someone else since; jobs[3]: canceled meanwhile;
        // jobs[4]: a resend (already SENDING, stays so).
        let mut stolen = start(&jobs[1]);
        stolen.token = "another dispatcher's token".into();
        let mut released = start(&jobs[2]);
        released.owner_e164 = "+15005550099".into();
        exec(store, format!("UPDATE messages SET status = 'canceled' WHERE id = '{}'", jobs[3].message_id)).await;
        exec(store, format!("UPDATE messages SET status = 'sending' WHERE id = '{}'", jobs[4].message_id)).await;
        let mut resend = start(&jobs[4]);
        resend.from_queued = false;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        let outcomes: Vec<Started> = in_one_set(store, vec![start(&jobs[0]), stolen, released, start(&jobs[3]), resend])
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            outcomes,
            [
                Started::Sending(Some(events_before + 1)),
                Started::LeaseLost,
                Started::Released,
                Started::Changed,
                Started::Sending(None),
            ]
        );
        assert_eq!(status_of(store, &jobs[0].message_id).await, "sending");
        assert_eq!(status_of(store, &jobs[1].message_id).await, "queued", "a lost lease changes nothing");
        assert_eq!(status_of(store, &jobs[2].message_id).await, "queued", "a released sender is not marked");
        assert_eq!(status_of(store, &jobs[3].message_id).await, "canceled");
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 1, "one event, the mark's");
        // The create's start is noted for the renewed jobs only.
        let started = format!(
            "SELECT COUNT(*) FROM outbox WHERE create_started_at IS NOT NULL AND message_id IN ('{}', '{}', '{}', '{}')",
            jobs[0].message_id, jobs[2].message_id, jobs[3].message_id, jobs[4].message_id
        );
        assert_eq!(count(store, &started).await, 4);
        let untouched = format!("SELECT COUNT(*) FROM outbox WHERE create_started_at IS NULL AND message_id = '{}'", jobs[1].message_id);
        assert_eq!(count(store, &untouched).await, 1);
    }

    async fn answers_in_a_set_settle_each_message_and_a_taken_sid_fails_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = claimed_sends(store, 4).await;
        let marks = in_one_set(store, jobs.iter().map(start).collect()).await;
        assert!(marks.iter().all(|m| matches!(m, Ok(Started::Sending(Some(_))))), "{marks:?}");
        // jobs[2] was adopted meanwhile (a callback recorded it as delivered).
        exec(store, format!("UPDATE messages SET status = 'delivered' WHERE id = '{}'", jobs[2].message_id)).await;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        // jobs[1]'s SID is jobs[0]'s: the set's UPDATE fails on the unique SID, then
        // each answer is written alone.
        let outcomes = in_one_set(store, vec![
            handed(&jobs[0], "SM0"),
            handed(&jobs[1], "SM0"),
            handed(&jobs[2], "SM2"),
            handed(&jobs[3], "SM3"),
        ])
        .await;
        assert_eq!(outcomes[0].as_ref().unwrap(), &Some(events_before + 1));
        assert!(outcomes[1].is_err(), "the taken SID fails alone: {:?}", outcomes[1]);
        assert_eq!(outcomes[2].as_ref().unwrap(), &None, "a message that changed is not overwritten");
        assert_eq!(outcomes[3].as_ref().unwrap(), &Some(events_before + 2), "consecutive cursors");
        for (job, status, sid) in [(&jobs[0], "sent", Some("SM0")), (&jobs[1], "sending", None), (&jobs[2], "delivered", None), (&jobs[3], "sent", Some("SM3"))] {
            let row = store::messages::find_any(store.conn(), &job.message_id).await.unwrap().unwrap();
            assert_eq!((row.status.as_str(), row.provider_sid.as_deref()), (status, sid));
        }
        // Nothing half-written of the failed one: its job stays for the next attempt;
        // the others' jobs are settled (the adopted one's too).
        assert_eq!(count(store, "SELECT COUNT(*) FROM outbox").await, 1);
        let kept = format!("SELECT COUNT(*) FROM outbox WHERE message_id = '{}'", jobs[1].message_id);
        assert_eq!(count(store, &kept).await, 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 2, "no event for the failed or the changed");
        assert_eq!(count(store, "SELECT MAX(cursor) FROM events").await, events_before + 2, "no gap");
    }
}
