//! [`Outbox`]: the dispatcher's bookkeeping — claiming due jobs, loading a message
//! to send, and recording each outcome in one transaction with the job it settles.
//! It owns the wake-up signal senders use to skip the dispatcher's poll.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::Notify;

use crate::{
    crypto::Cleartext,
    domain::{
        Body, MessageStatus, Records, StatusReport, aad, events, provider_status::change_status_in,
    },
    error::Error,
    media::Media,
    provider::ProviderMessage,
    store::{
        self, TxnFuture,
        entities::message,
        messages::StatusChange,
        outbox::{Claimed, Due},
        status_batch::{HandedOver, StartCreate, Started},
    },
};

/// Twilio's "recipient unsubscribed" error: the contact replied STOP.
pub const TWILIO_UNSUBSCRIBED: i64 = 21610;

/// A message ready for dispatch, with its decrypted body.
pub struct DispatchItem {
    pub row: message::Model,
    pub body: Body,
    /// The recipient, decrypted; `None` once the user's keys were destroyed.
    pub to: Option<String>,
    pub opted_out: bool,
    /// Whether the sender was still the user's when loaded (the SENDING mark checks
    /// again, in its write).
    pub sender_owned: bool,
    /// The MediaUrl values to send: signed gateway URLs for our media, external URLs as given.
    pub media_urls: Vec<String>,
}

/// Outbox jobs and their outcomes; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    records: Records,
    media: Media,
    waker: Arc<Notify>,
}

impl Outbox {
    pub fn new(records: Records, media: Media) -> Self {
        Self {
            records,
            media,
            waker: Arc::new(Notify::new()),
        }
    }

    /// Wakes the dispatcher; whoever queues a message holds a clone.
    pub fn waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The heartbeat: extends the leases of the jobs we hold under `tokens`.
    pub async fn renew_tokens(&self, tokens: Vec<String>, lease: Duration) -> Result<u64, Error> {
        self.records
            .store()
            .write(move |txn| {
                Box::pin(async move {
                    Ok::<_, Error>(store::outbox::renew_tokens_any(txn, &tokens, lease).await?)
                })
            })
            .await
    }

    /// SQLite at start-up: a dead process's claims end now (see
    /// [`store::outbox::release_all_sqlite`]); nothing on PostgreSQL, where other
    /// replicas may hold live claims (theirs end by the heartbeat stopping).
    pub async fn release_dead_claims(&self) -> Result<u64, Error> {
        if self.records.store().backend() == sea_orm::DatabaseBackend::Postgres {
            return Ok(0);
        }
        self.records
            .store()
            .write(move |txn| {
                Box::pin(
                    async move { Ok::<_, Error>(store::outbox::release_all_sqlite(txn).await?) },
                )
            })
            .await
    }

    /// Claims due jobs for `lease`, skipping the senders in `paced_out`.
    pub async fn claim(
        &self,
        lease: Duration,
        limit: u64,
        paced_out: &[String],
    ) -> Result<Vec<Claimed>, Error> {
        let paced_out = paced_out.to_vec();
        self.records
            .store()
            .write(move |txn| {
                Box::pin(async move {
                    Ok::<_, Error>(store::outbox::claim_any(txn, lease, limit, &paced_out).await?)
                })
            })
            .await
    }

    /// A scheduled message's job claimed before its send time (its number was
    /// released and assigned again, say): back to wait for `at`, nothing sent.
    pub async fn wait_until(&self, job: &Claimed, at: DateTime<Utc>) -> Result<(), Error> {
        self.held_write(job, move |txn, claimed| {
            Box::pin(async move {
                let (attempts, error) = (claimed.attempts, claimed.last_error.as_deref());
                store::outbox::reschedule_held(txn, &claimed, attempts, Due::At(at), error).await
            })
        })
        .await
    }

    /// A look-up for an unknown outcome found nothing, too early to trust: the job
    /// comes back at `next` for another look-up (not counted as an attempt).
    pub async fn note_empty_lookup(&self, job: &Claimed, next: Due) -> Result<(), Error> {
        self.held_write(job, move |txn, claimed| {
            Box::pin(
                async move { store::outbox::note_empty_lookup_held(txn, &claimed, next).await },
            )
        })
        .await
    }

    /// Lets go of a job whose sender is paced out, without counting an attempt.
    pub async fn release(&self, job: &Claimed) -> Result<(), Error> {
        self.held_write(job, |txn, claimed| {
            Box::pin(async move { store::outbox::release_held(txn, &claimed).await })
        })
        .await
    }

    /// When the earliest unclaimed job is due (retries are scheduled in the future).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(store::outbox::next_due_any(self.records.store().conn(), store::now()).await?)
    }

    /// Loads a queued message for sending; `None` if it no longer exists.
    pub async fn load(&self, user_id: &str, id: &str) -> Result<Option<DispatchItem>, Error> {
        let db = self.records.store().conn();
        let Some((row, opted_out, sender_owned)) =
            store::messages::find_for_dispatch(db, user_id, id).await?
        else {
            return Ok(None);
        };
        let view = self.records.view(user_id, row).await?;
        let media_urls = self.media_urls_of(user_id, &view.row).await?;
        Ok(Some(DispatchItem {
            row: view.row,
            body: view.body,
            to: view.contact_number,
            opted_out,
            sender_owned,
            media_urls,
        }))
    }

    /// What Twilio fetches for each media item of an outbound message.
    async fn media_urls_of(
        &self,
        user_id: &str,
        row: &message::Model,
    ) -> Result<Vec<String>, Error> {
        if row.num_media == 0 {
            return Ok(Vec::new());
        }
        let db = self.records.store().conn();
        let mut urls = Vec::new();
        for link in store::media::links_any(db, vec![row.id.clone()]).await? {
            match (&link.media_id, &link.url_ct) {
                (Some(media_id), _) => {
                    urls.push(self.media.url(media_id));
                }
                (None, Some(ct)) => {
                    let aad = aad::link_url(user_id, &row.id, link.position);
                    if let Cleartext::Available(u) =
                        self.records.keys().open(user_id, &aad, ct).await?
                    {
                        urls.push(String::from_utf8_lossy(&u).into_owned());
                    }
                }
                (None, None) => {}
            }
        }
        Ok(urls)
    }

    /// QUEUED → SENDING, committed before the provider is called, with our lease
    /// renewed and the sender's ownership checked in the same transaction: from here
    /// on, a crash leaves an "outcome unknown" mark that forces reconciliation, and a
    /// number released (and given to someone else) while the message waited for its
    /// pacing slot is caught here, not before the wait.
    pub async fn mark_sending(
        &self,
        job: &Claimed,
        owner_e164: &str,
        lease: Duration,
    ) -> Result<Mark, Error> {
        self.start_create(job, owner_e164, lease, Some(MessageStatus::Queued))
            .await
    }

    /// For a SENDING message whose earlier create look-ups settled as not sent: our
    /// lease renewed, a new create noted as starting now, ownership checked — one
    /// transaction.
    pub async fn start_resend(
        &self,
        job: &Claimed,
        owner_e164: &str,
        lease: Duration,
    ) -> Result<Mark, Error> {
        self.start_create(job, owner_e164, lease, None).await
    }

    async fn start_create(
        &self,
        job: &Claimed,
        owner_e164: &str,
        lease: Duration,
        from_queued: Option<MessageStatus>,
    ) -> Result<Mark, Error> {
        // A set write: the batch's marks take a few statements in all (store/status_batch.rs).
        let started = self
            .records
            .store()
            .write_set(StartCreate {
                user_id: job.user_id.clone(),
                message_id: job.message_id.clone(),
                token: job.token.clone(),
                owner_e164: owner_e164.to_owned(),
                lease,
                from_queued: from_queued == Some(MessageStatus::Queued),
                event_kind: events::MESSAGE_STATUS_CHANGED,
            })
            .await?;
        Ok(match started {
            Started::Sending(event) => {
                self.announce(&job.user_id, event);
                Mark::Sending
            }
            Started::LeaseLost => {
                lease_lost(job);
                Mark::LeaseLost
            }
            Started::Released => Mark::Released,
            Started::Changed => Mark::Changed,
        })
    }

    /// The provider accepted the message: SENT with its SID, job done. Recorded even
    /// if our lease ran out meanwhile (the provider's answer is the truth), but only
    /// while the message is still SENDING without a SID.
    pub async fn record_handed_over(
        &self,
        job: &Claimed,
        from_status: MessageStatus,
        accepted: &ProviderMessage,
    ) -> Result<(), Error> {
        let (user_id, id) = (job.user_id.as_str(), job.message_id.as_str());
        // A set write with the batch's other answers (store/status_batch.rs).
        let event = self
            .records
            .store()
            .write_set(HandedOver {
                user_id: user_id.to_owned(),
                message_id: id.to_owned(),
                expected: from_status.as_str().to_owned(),
                status: MessageStatus::Sent.as_str().to_owned(),
                provider_sid: accepted.sid.clone(),
                segments: accepted.segments.and_then(|s| i32::try_from(s).ok()),
                sent_at: accepted.created_at.unwrap_or_else(store::now),
                event_kind: events::MESSAGE_STATUS_CHANGED,
            })
            .await?;
        if event.is_none() {
            // Adopted meanwhile (a status callback or a look-up recorded another SID):
            // this answer is a second message at the provider for one of ours.
            self.records
                .note_possible_duplicate(user_id, id, &accepted.sid)
                .await?;
            tracing::warn!(message_id = %id, "message changed while being handed over; provider answer not recorded");
            return Ok(());
        }
        self.announce(user_id, event);
        // The provider may already report a later state (console: sent; reconciliation:
        // delivered). Apply it through the same monotonic rules as callbacks — unless
        // SENT, just written, already outranks it (Twilio's create answers `queued` or
        // `accepted`): no later state could take it either, so no look-up is needed.
        let later = MessageStatus::from_twilio(&accepted.status)
            .is_none_or(|reported| MessageStatus::Sent.may_become(reported));
        if later {
            self.records
                .apply_provider_status(StatusReport {
                    sid: &accepted.sid,
                    status: &accepted.status,
                    error_code: accepted.error_code,
                    error_message: accepted.error_message.as_deref(),
                })
                .await?;
        }
        // Callbacks that overtook this transaction were parked: apply them now.
        self.records.apply_parked(&accepted.sid).await
    }

    /// The message will not be sent: FAILED with the reason kept. Twilio's 21610
    /// ("unsubscribed") also opts the contact out of this sender, so later sends from
    /// it are refused up front. Nothing changes when our lease is lost.
    pub async fn record_send_failed(
        &self,
        job: &Claimed,
        from_status: MessageStatus,
        code: Option<i64>,
        reason: &str,
    ) -> Result<(), Error> {
        let id = job.message_id.as_str();
        let change = StatusChange {
            status: Some(MessageStatus::Failed.as_str().into()),
            error_code: code.and_then(|c| i32::try_from(c).ok()),
            // Provider text may name a number: masked before it is stored.
            error_message: Some(
                crate::redact::external_text(reason)
                    .chars()
                    .take(500)
                    .collect(),
            ),
            ..Default::default()
        };
        let claimed = job.clone();
        let event = self
            .records
            .store()
            .write_for(&job.user_id, move |txn| {
                Box::pin(async move {
                    if !store::outbox::remove_held(txn, &claimed).await? {
                        return Ok::<_, Error>(Err(()));
                    }
                    let (user_id, id) = (claimed.user_id.as_str(), claimed.message_id.as_str());
                    if code == Some(TWILIO_UNSUBSCRIBED)
                        && let Some(row) = store::messages::find(txn, user_id, id).await?
                    {
                        let (owner, contact) = (&row.owner_e164, &row.contact_id);
                        store::opt_outs::set(txn, user_id, owner, contact, true).await?;
                    }
                    Ok(Ok(
                        change_status_in(txn, user_id, id, from_status, change).await?
                    ))
                })
            })
            .await?;
        if self.settle(job, event) {
            tracing::warn!(message_id = %id, code, "message failed");
        }
        Ok(())
    }

    /// Puts the job back until `delay` has passed (by the database's clock on
    /// PostgreSQL, which claims compare due times with). `requeue` turns SENDING back into
    /// QUEUED when the provider certainly did not get the message; otherwise the
    /// SENDING mark stays and the next attempt reconciles first. Nothing changes when
    /// our lease is lost.
    pub async fn retry_later(
        &self,
        job: &Claimed,
        requeue: bool,
        again: Again,
        delay: Duration,
        last_error: &str,
    ) -> Result<(), Error> {
        let (claimed, last_error) = (job.clone(), crate::redact::external_text(last_error));
        let event = self
            .records
            .store()
            .write_for(&job.user_id, move |txn| {
                Box::pin(async move {
                    let (error, due) = (Some(last_error.as_str()), Due::After(delay));
                    let held = match again {
                        Again::Attempt(attempts) => {
                            store::outbox::reschedule_held(txn, &claimed, attempts, due, error)
                                .await?
                        }
                        Again::Busy => {
                            store::outbox::reschedule_busy_held(txn, &claimed, due, error).await?
                        }
                    };
                    if !held {
                        return Ok::<_, Error>(Err(()));
                    }
                    if !requeue {
                        return Ok(Ok(None));
                    }
                    let change = StatusChange {
                        status: Some(MessageStatus::Queued.as_str().into()),
                        ..Default::default()
                    };
                    let (user_id, id) = (&claimed.user_id, &claimed.message_id);
                    let sending = MessageStatus::Sending;
                    Ok(Ok(
                        change_status_in(txn, user_id, id, sending, change).await?
                    ))
                })
            })
            .await?;
        self.settle(job, event);
        Ok(())
    }

    /// The current status of one of the user's messages, without decrypting anything.
    pub async fn status(&self, user_id: &str, id: &str) -> Result<Option<MessageStatus>, Error> {
        match store::messages::find(self.records.store().conn(), user_id, id).await? {
            Some(row) => Ok(Some(MessageStatus::parse(&row.status)?)),
            None => Ok(None),
        }
    }

    /// Drops a job whose message is gone or already settled.
    pub async fn drop_job(&self, job: &Claimed) -> Result<(), Error> {
        self.held_write(job, |txn, claimed| {
            Box::pin(async move { store::outbox::remove_held(txn, &claimed).await })
        })
        .await
    }

    /// SENT messages without news since `updated_before`, of every user
    /// (reconciliation asks the provider about each).
    pub async fn stuck(
        &self,
        updated_before: DateTime<Utc>,
        created_after: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<message::Model>, Error> {
        let db = self.records.store().conn();
        Ok(store::messages::sent_stuck_any(db, updated_before, created_after, limit).await?)
    }

    /// Notes that reconciliation looked at a message (it waits a while before the next look).
    pub async fn touch(&self, user_id: &str, id: &str) -> Result<(), Error> {
        let (user, id) = (user_id.to_owned(), id.to_owned());
        self.records
            .store()
            .write_for(user_id, move |txn| {
                Box::pin(async move {
                    Ok::<_, Error>(store::messages::touch(txn, &user, &id, store::now()).await?)
                })
            })
            .await
    }

    /// Runs `write` with the job on its user's writer; `write` answers whether our
    /// claim still held (false: the lease was lost and it changed nothing, logged).
    async fn held_write<F>(&self, job: &Claimed, write: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction, Claimed) -> TxnFuture<'c, Result<bool, DbErr>>
            + Send
            + 'static,
    {
        let claimed = job.clone();
        let held = self
            .records
            .store()
            .write_for(&job.user_id, move |txn| write(txn, claimed))
            .await?;
        if !held {
            lease_lost(job);
        }
        Ok(())
    }

    /// A held job's write is over: its event, if any, is announced and true returned;
    /// `Err`: our lease was lost and nothing changed (logged), false.
    fn settle(&self, job: &Claimed, event: Result<Option<i64>, ()>) -> bool {
        match event {
            Ok(event) => {
                self.announce(&job.user_id, event);
                true
            }
            Err(()) => {
                lease_lost(job);
                false
            }
        }
    }

    fn announce(&self, user_id: &str, event: Option<i64>) {
        if let Some(cursor) = event {
            self.records.announce(user_id, cursor);
        }
    }
}

/// What the write that starts a create found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// SENDING, lease renewed: call the provider.
    Sending,
    /// The lease ran out (another dispatcher may own the job): do nothing.
    LeaseLost,
    /// The message changed meanwhile (adopted, canceled): do nothing.
    Changed,
    /// The sender is no longer the user's: fail the message, do not send.
    Released,
}

/// What a job's next try counts as ([`Outbox::retry_later`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Again {
    /// The attempts made so far, this one included.
    Attempt(u32),
    /// The provider refused as busy (429): not an attempt, and no create started.
    Busy,
}

/// Another dispatcher owns the job now (our lease ran out): it decides, we stop.
fn lease_lost(job: &Claimed) {
    tracing::warn!(message_id = %job.message_id, "outbox lease lost; leaving the job to its new holder");
}
