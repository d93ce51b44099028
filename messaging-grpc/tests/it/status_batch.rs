//! The dispatcher's SENDING marks and handed-over answers (`store::status_batch`), and
//! the provider's status reports (`store::report_batch`), written as sets on both
//! backends: inside one batch each write gets its own
//! answer (a lost lease, a released sender, a message that changed meanwhile), the
//! changed ones get consecutive event cursors, and when a set statement fails (a
//! provider SID another message holds) the batch is written one by one so only the bad
//! write fails. Batches are forced by holding the writer.

use std::time::Duration;

use messaging_grpc::store::{
    self, Store,
    outbox::Claimed,
    report_batch::ReportedStatus,
    status_batch::{HandedOver, StartCreate, Started},
};
use sea_orm::{ConnectionTrait as _, Statement};

use crate::message_batch::{committed, count, in_one_batch, in_one_set, open, send};

const OWN: &str = "+15005550006";
const LEASE: Duration = Duration::from_secs(30);

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

/// The provider reports `job`'s message (now SENT) as `status`.
fn reported(job: &Claimed, status: &str) -> ReportedStatus {
    ReportedStatus {
        user_id: job.user_id.clone(),
        message_id: job.message_id.clone(),
        expected: "sent".into(),
        status: status.into(),
        error_code: None,
        error_message: None,
        sent_at: None,
        delivered_at: None,
        event_kind: "message_status_changed",
    }
}

/// `n` sends of u1, marked SENDING and handed over (SENT, SIDs SM0…).
async fn sent_messages(store: &Store, n: usize) -> Vec<Claimed> {
    let jobs = claimed_sends(store, n).await;
    in_one_set(store, jobs.iter().map(start).collect()).await;
    let answers = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| handed(j, &format!("SM{i}")))
        .collect();
    in_one_set(store, answers).await;
    jobs
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

/// The message of the event with `cursor`.
async fn event_message(store: &Store, cursor: i64) -> String {
    let sql = format!("SELECT message_id FROM events WHERE cursor = {cursor}");
    let row = store
        .conn()
        .query_one_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

crate::backend_tests! {
    async fn each_mark_in_a_set_gets_its_own_answer(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = claimed_sends(store, 6).await;
        // jobs[1]: claimed by someone else since; jobs[3]: canceled meanwhile;
        // jobs[4]: a resend (already SENDING, stays so); jobs[5]: its lease ran out.
        let mut stolen = start(&jobs[1]);
        stolen.token = "another dispatcher's token".into();
        // A stale claim of jobs[0], in the same set as its current one.
        let mut stale = start(&jobs[0]);
        stale.token = "an earlier claim's token".into();
        let mut released = start(&jobs[2]);
        released.owner_e164 = "+15005550099".into();
        exec(store, format!("UPDATE messages SET status = 'canceled' WHERE id = '{}'", jobs[3].message_id)).await;
        exec(store, format!("UPDATE messages SET status = 'sending' WHERE id = '{}'", jobs[4].message_id)).await;
        exec(store, format!("UPDATE outbox SET claimed_until = next_attempt_at WHERE message_id = '{}'", jobs[5].message_id)).await;
        let mut resend = start(&jobs[4]);
        resend.from_queued = false;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        let fallbacks = store.set_fallbacks();
        let outcomes: Vec<Started> = in_one_set(store, vec![
            stale,
            start(&jobs[0]),
            stolen,
            released,
            start(&jobs[3]),
            resend,
            start(&jobs[5]),
        ])
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        assert_eq!(store.set_fallbacks(), fallbacks, "the marks were written as one set");
        assert_eq!(
            outcomes,
            [
                Started::LeaseLost,
                Started::Sending(Some(events_before + 1)),
                Started::LeaseLost,
                Started::Released,
                Started::Changed,
                Started::Sending(None),
                Started::LeaseLost,
            ]
        );
        assert_eq!(event_message(store, events_before + 1).await, jobs[0].message_id);
        assert_eq!(status_of(store, &jobs[0].message_id).await, "sending");
        assert_eq!(status_of(store, &jobs[1].message_id).await, "queued", "a lost lease changes nothing");
        assert_eq!(status_of(store, &jobs[2].message_id).await, "queued", "a released sender is not marked");
        assert_eq!(status_of(store, &jobs[3].message_id).await, "canceled");
        assert_eq!(status_of(store, &jobs[5].message_id).await, "queued", "an expired lease is not renewed");
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 1, "one event, the mark's");
        // The create's start is noted for the renewed jobs only.
        let started = |id: &str| format!("SELECT COUNT(*) FROM outbox WHERE create_started_at IS NOT NULL AND message_id = '{id}'");
        for (job, noted) in [(0, 1), (1, 0), (2, 1), (3, 1), (4, 1), (5, 0)] {
            assert_eq!(count(store, &started(&jobs[job].message_id)).await, noted, "job {job}");
        }
    }

    async fn answers_in_a_set_settle_each_message(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = claimed_sends(store, 4).await;
        let marks = in_one_set(store, jobs.iter().map(start).collect()).await;
        assert!(marks.iter().all(|m| matches!(m, Ok(Started::Sending(Some(_))))), "{marks:?}");
        // jobs[2] was adopted meanwhile (a callback recorded it as delivered).
        exec(store, format!("UPDATE messages SET status = 'delivered' WHERE id = '{}'", jobs[2].message_id)).await;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        // Read once: a second boundary between the write and the check is no mismatch.
        let (t30, t20) = (store::now() - chrono::Duration::seconds(30), store::now() - chrono::Duration::seconds(20));
        let mut first = handed(&jobs[0], "SM0");
        first.segments = Some(3);
        first.sent_at = t30;
        let mut second = handed(&jobs[1], "SM1");
        second.sent_at = t20;
        // jobs[3] answered twice (a double send): the first answer is the one kept.
        let fallbacks = store.set_fallbacks();
        let outcomes = in_one_set(store, vec![
            first,
            second,
            handed(&jobs[2], "SM2"),
            handed(&jobs[3], "SM3"),
            handed(&jobs[3], "SM3-again"),
        ])
        .await;
        assert_eq!(store.set_fallbacks(), fallbacks, "the answers were written as one set");
        let outcomes: Vec<Option<i64>> = outcomes.into_iter().map(Result::unwrap).collect();
        let (c0, c1, c3) = (events_before + 1, events_before + 2, events_before + 3);
        assert_eq!(outcomes, [Some(c0), Some(c1), None, Some(c3), None]);
        for (cursor, job) in [(c0, 0), (c1, 1), (c3, 3)] {
            assert_eq!(event_message(store, cursor).await, jobs[job].message_id, "cursor {cursor}");
        }
        let row = |id: String| async move { store::messages::find_any(store.conn(), &id).await.unwrap().unwrap() };
        let r0 = row(jobs[0].message_id.clone()).await;
        assert_eq!((r0.status.as_str(), r0.provider_sid.as_deref(), r0.segments), ("sent", Some("SM0"), 3));
        assert_eq!(r0.sent_at.map(|t| t.timestamp()), Some(t30.timestamp()));
        let r1 = row(jobs[1].message_id.clone()).await;
        assert_eq!((r1.status.as_str(), r1.provider_sid.as_deref(), r1.segments), ("sent", Some("SM1"), 1), "segments kept when not given");
        assert_eq!(r1.sent_at.map(|t| t.timestamp()), Some(t20.timestamp()));
        let r2 = row(jobs[2].message_id.clone()).await;
        assert_eq!((r2.status.as_str(), r2.provider_sid.as_deref()), ("delivered", None), "a message that changed is not overwritten");
        let r3 = row(jobs[3].message_id.clone()).await;
        assert_eq!(r3.provider_sid.as_deref(), Some("SM3"));
        // Every job is settled, the adopted one's too.
        assert_eq!(count(store, "SELECT COUNT(*) FROM outbox").await, 0);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 3);
    }

    async fn a_taken_sid_in_a_set_of_answers_fails_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = claimed_sends(store, 3).await;
        in_one_set(store, jobs.iter().map(start).collect()).await;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        let fallbacks = store.set_fallbacks();
        // jobs[1]'s SID is jobs[0]'s: the set's UPDATE fails on the unique SID, then
        // each answer is written alone.
        let outcomes = in_one_set(store, vec![
            handed(&jobs[0], "SM0"),
            handed(&jobs[1], "SM0"),
            handed(&jobs[2], "SM2"),
        ])
        .await;
        assert_eq!(store.set_fallbacks(), fallbacks + 1, "the set failed and was written one by one");
        assert_eq!(outcomes[0].as_ref().unwrap(), &Some(events_before + 1));
        assert!(outcomes[1].is_err(), "the taken SID fails alone: {:?}", outcomes[1]);
        assert_eq!(outcomes[2].as_ref().unwrap(), &Some(events_before + 2), "consecutive cursors");
        assert_eq!(status_of(store, &jobs[1].message_id).await, "sending");
        // Nothing half-written of the failed one: its job stays for the next attempt.
        let kept = format!("SELECT COUNT(*) FROM outbox WHERE message_id = '{}'", jobs[1].message_id);
        assert_eq!(count(store, "SELECT COUNT(*) FROM outbox").await, 1);
        assert_eq!(count(store, &kept).await, 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 2, "no event for the failed one");
        assert_eq!(count(store, "SELECT MAX(cursor) FROM events").await, events_before + 2, "no gap");
    }

    async fn reports_in_a_set_change_each_message_once(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = sent_messages(store, 4).await;
        // jobs[2] changed meanwhile (another report made it FAILED).
        exec(store, format!("UPDATE messages SET status = 'failed' WHERE id = '{}'", jobs[2].message_id)).await;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        let at = store::now() - chrono::Duration::seconds(5);
        let mut delivered = reported(&jobs[0], "delivered");
        delivered.delivered_at = Some(at);
        let mut undelivered = reported(&jobs[1], "undelivered");
        undelivered.error_code = Some(30003);
        undelivered.error_message = Some("Unreachable destination handset".into());
        let fallbacks = store.set_fallbacks();
        let outcomes: Vec<Option<i64>> = in_one_set(store, vec![
            delivered,
            undelivered,
            reported(&jobs[2], "delivered"),
            // jobs[0] reported twice in one batch: it changes once, by the first.
            reported(&jobs[0], "undelivered"),
            reported(&jobs[3], "delivered"),
        ])
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        assert_eq!(store.set_fallbacks(), fallbacks, "the reports were written as one set");
        let mut applied: Vec<i64> = outcomes.iter().flatten().copied().collect();
        applied.sort_unstable();
        assert_eq!(applied, [events_before + 1, events_before + 2, events_before + 3], "consecutive cursors");
        assert!(outcomes[0].is_some() && outcomes[1].is_some() && outcomes[4].is_some(), "{outcomes:?}");
        assert_eq!((outcomes[2], outcomes[3]), (None, None), "changed meanwhile / by the first report");
        for (i, job) in [0, 1, 4].into_iter().zip([0, 1, 3]) {
            let cursor = outcomes[i].unwrap();
            assert_eq!(event_message(store, cursor).await, jobs[job].message_id, "cursor {cursor}");
        }
        let row = |id: String| async move { store::messages::find_any(store.conn(), &id).await.unwrap().unwrap() };
        let r0 = row(jobs[0].message_id.clone()).await;
        assert_eq!((r0.status.as_str(), r0.provider_sid.as_deref()), ("delivered", Some("SM0")), "what was not reported is kept");
        assert_eq!(r0.delivered_at.map(|t| t.timestamp()), Some(at.timestamp()));
        assert!(r0.sent_at.is_some(), "a sent time not reported is kept");
        let r1 = row(jobs[1].message_id.clone()).await;
        assert_eq!(
            (r1.status.as_str(), r1.error_code, r1.error_message.as_deref()),
            ("undelivered", Some(30003), Some("Unreachable destination handset"))
        );
        assert_eq!(r1.delivered_at, None);
        assert_eq!(status_of(store, &jobs[2].message_id).await, "failed", "a message that changed is not overwritten");
        assert_eq!(status_of(store, &jobs[3].message_id).await, "delivered");
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 3);
    }

    async fn a_report_whose_write_fails_in_a_set_fails_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = sent_messages(store, 3).await;
        // A row the database refuses to change (as a constraint would): the set's
        // UPDATE fails, then each report is written alone.
        let bad = &jobs[1].message_id;
        refuse(store, "UPDATE ON messages", &format!("OLD.id = '{bad}'")).await;
        let events_before = count(store, "SELECT COUNT(*) FROM events").await;
        let fallbacks = store.set_fallbacks();
        let outcomes = in_one_set(store, vec![
            reported(&jobs[0], "delivered"),
            reported(&jobs[1], "delivered"),
            reported(&jobs[2], "delivered"),
        ])
        .await;
        assert_eq!(store.set_fallbacks(), fallbacks + 1, "the set failed and was written one by one");
        assert_eq!(outcomes[0].as_ref().unwrap(), &Some(events_before + 1));
        assert!(outcomes[1].is_err(), "the refused one fails alone: {:?}", outcomes[1]);
        assert_eq!(outcomes[2].as_ref().unwrap(), &Some(events_before + 2), "consecutive cursors");
        assert_eq!(status_of(store, &jobs[0].message_id).await, "delivered");
        assert_eq!(status_of(store, bad).await, "sent", "nothing half-written");
        assert_eq!(status_of(store, &jobs[2].message_id).await, "delivered");
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, events_before + 2, "no event for the failed one");
    }

    async fn status_metrics_count_what_committed_once_even_after_a_fallback(backend: Backend) {
        let Some(metrics) = status_metrics() else { return };
        let t = open(&backend).await;
        let store = &t.store;
        let jobs = sent_messages(store, 3).await;
        // The database refuses the event of one message: the set's UPDATE has changed
        // all three (and used to count them) before its event insert fails; then each
        // report is written alone, and two of them commit.
        let bad = &jobs[1].message_id;
        refuse(store, "INSERT ON events", &format!("NEW.message_id = '{bad}'")).await;
        let fallbacks = store.set_fallbacks();
        metrics.snapshot(); // counters from zero
        let outcomes = in_one_set(store, vec![
            reported(&jobs[0], "delivered"),
            reported(&jobs[1], "delivered"),
            reported(&jobs[2], "delivered"),
        ])
        .await;
        assert_eq!(store.set_fallbacks(), fallbacks + 1, "the set failed and was written one by one");
        assert!(outcomes[1].is_err(), "the refused one fails alone: {:?}", outcomes[1]);
        assert_eq!(status_of(store, bad).await, "sent");
        let (counted, samples) = recorded(metrics);
        assert!(
            samples.get("messaging_write_batch_size").is_some_and(|s| s.contains(&3.0)),
            "the three reports were one batch: {samples:?}"
        );
        assert_eq!(counted.get("messaging_status_changes_total{status=delivered}"), Some(&2), "{counted:?}");
        assert_eq!(
            counted.get("messaging_sends_final_total{error_code=,status=delivered}"),
            Some(&2),
            "{counted:?}"
        );
    }
}

/// Makes the database refuse `what` (`UPDATE ON messages`, …) of the rows matching
/// `when`, as a constraint would: a trigger raising an error, on either backend.
async fn refuse(store: &Store, what: &str, when: &str) {
    let sql = match store.backend() {
        sea_orm::DatabaseBackend::Postgres => vec![
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql".to_owned(),
            format!("CREATE TRIGGER refuse BEFORE {what} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION refuse()"),
        ],
        _ => vec![format!(
            "CREATE TRIGGER refuse BEFORE {what} WHEN {when} BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )],
    };
    for statement in sql {
        exec(store, statement).await;
    }
}

/// The process's metrics, recorded in memory. Only where each test has a process of its
/// own (nextest, as the README's test command and CI run them): under `cargo test` every
/// test of the binary shares one process, its counters and its one global recorder, so
/// the test is skipped there.
fn status_metrics() -> Option<&'static metrics_util::debugging::Snapshotter> {
    if std::env::var("NEXTEST_EXECUTION_MODE").as_deref() != Ok("process-per-test") {
        eprintln!("skipped: counts the process's metrics, so needs nextest's process per test");
        return None;
    }
    static SNAPSHOTTER: std::sync::OnceLock<metrics_util::debugging::Snapshotter> =
        std::sync::OnceLock::new();
    Some(SNAPSHOTTER.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other metrics recorder in this test process");
        snapshotter
    }))
}

type Counters = std::collections::HashMap<String, u64>;
type Samples = std::collections::HashMap<String, Vec<f64>>;

/// Counters (as `name{label=value,…}`, labels sorted) and histogram samples (by name)
/// recorded since the last snapshot.
fn recorded(snapshotter: &metrics_util::debugging::Snapshotter) -> (Counters, Samples) {
    use metrics_util::debugging::DebugValue;
    let (mut counters, mut samples) = (Counters::new(), Samples::new());
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        match value {
            DebugValue::Counter(n) => {
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                counters.insert(format!("{}{{{}}}", key.name(), labels.join(",")), n);
            }
            DebugValue::Histogram(values) => samples
                .entry(key.name().to_owned())
                .or_default()
                .extend(values.into_iter().map(|v| v.into_inner())),
            DebugValue::Gauge(_) => {}
        }
    }
    (counters, samples)
}

/// The ownership check is part of the SENDING write: a release in progress (its row
/// deleted, not yet committed) is waited for, and the mark then sees the number gone.
/// A plain read of the owner would see the committed row and mark SENDING for a number
/// its user no longer holds.
#[tokio::test]
async fn on_postgresql_a_release_in_progress_is_waited_for_then_seen() {
    use sea_orm::TransactionTrait as _;
    let Some(server) = crate::helpers::Backend::postgres() else {
        return;
    };
    let t = open(&server).await;
    let store = t.store.clone();
    let jobs = claimed_sends(&store, 1).await;
    let release = store.conn().begin().await.unwrap();
    assert!(
        store::numbers::release_any(&release, OWN)
            .await
            .unwrap()
            .is_some()
    );
    let mark = tokio::spawn({
        let (store, write) = (store.clone(), start(&jobs[0]));
        async move { store.write_set(write).await }
    });
    // Long enough for the mark to run its statements (it answers at once without the
    // lock); it must still be waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!mark.is_finished(), "the mark waits for the release to end");
    release.commit().await.unwrap();
    let started = tokio::time::timeout(Duration::from_secs(30), mark)
        .await
        .expect("the mark ends once the release committed")
        .unwrap()
        .unwrap();
    assert_eq!(started, Started::Released);
    assert_eq!(status_of(&store, &jobs[0].message_id).await, "queued");
}
