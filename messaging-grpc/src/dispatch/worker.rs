//! One claimed job, from load to recorded outcome. Every outcome is written through
//! the claim (`job.token`): once our lease is lost, nothing we do changes the job,
//! and the provider is never called without a freshly renewed lease.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{
    Again, DispatchItem, Inner, Mark, Slot, TWILIO_UNSUBSCRIBED, in_flight::Open, reconcile,
};
use crate::{
    domain::{Body, MessageStatus, OUTCOME_UNKNOWN},
    error::Error,
    phone::Masked,
    provider::{Outgoing, SendError},
    retry::random_jitter,
    store::{
        self,
        outbox::{Claimed, Due},
    },
};

/// A job's place among the sends in flight: its dispatcher slot, and from its
/// admission (before its pacing slot and SENDING mark) its open create under the
/// provider's ceiling. Both are given back as
/// soon as the provider answered, or when the job ends without a call.
struct Place<'a> {
    slot: Option<OwnedSemaphorePermit>,
    open: Option<Open<'a>>,
}

impl Place<'_> {
    fn release(&mut self) {
        self.open.take();
        self.slot.take();
    }
}

pub(super) async fn process(
    inner: &Inner,
    job: Claimed,
    shutdown: &CancellationToken,
    slot: OwnedSemaphorePermit,
) {
    let mut place = Place {
        slot: Some(slot),
        open: None,
    };
    let handled = handle(inner, &job, shutdown, &mut place).await;
    place.release();
    if let Err(e) = handled {
        match e {
            // A corrupt row will never decrypt: fail it instead of retrying forever.
            Error::Integrity(_) => {
                // Fail it from whatever state it is in (QUEUED, or SENDING after an
                // earlier attempt), so the job is never dropped with the status left behind.
                let d = &inner.outbox;
                let r = match d.status(&job.user_id, &job.message_id).await {
                    Ok(Some(status)) => {
                        let why = "stored content failed its integrity check";
                        d.record_send_failed(&job, status, None, why).await
                    }
                    Ok(None) => d.drop_job(&job).await,
                    Err(e) => Err(e),
                };
                tracing::error!(message_id = %job.message_id, error = ?r.err(), "message content failed its integrity check");
            }
            // Anything else (database hiccup, a master key missing from config): the
            // claim expires and the job comes back.
            e => {
                tracing::warn!(message_id = %job.message_id, error = %e, "dispatch attempt failed; will retry after the lease")
            }
        }
    }
}

async fn handle<'a>(
    inner: &'a Inner,
    job: &Claimed,
    shutdown: &CancellationToken,
    place: &mut Place<'a>,
) -> Result<(), Error> {
    let d = &inner.outbox;
    let (user, id) = (job.user_id.as_str(), job.message_id.as_str());
    let Some(mut item) = d.load(user, id).await? else {
        return d.drop_job(job).await;
    };
    let mut status = MessageStatus::parse(&item.row.status)?;
    if status == MessageStatus::Scheduled {
        // Claimed before its time (its job was made due early): it waits for it.
        if let Some(at) = item.row.send_at
            && at > store::now()
        {
            return d.wait_until(job, at).await;
        }
        // Due: QUEUED (committed), then sent like any other message.
        if !d.release_scheduled(user, id).await? {
            return Ok(());
        }
        status = MessageStatus::Queued;
        item.row.status = status.as_str().to_owned();
    }
    let validity_left = validity_left(inner, &item);
    match status {
        MessageStatus::Queued => {}
        MessageStatus::Sending => {
            // The look-up takes room under the provider's ceiling too (the account's
            // every request counts at Twilio): outside it, look-ups were refused over
            // and over while a backlog's creates kept the limit full. The room is kept
            // for the resend's create, if one follows.
            let Some(open) = admitted(inner, job, shutdown).await? else {
                return Ok(());
            };
            place.open = Some(open);
            // An earlier attempt may have reached the provider: never resend blindly.
            match reconcile::find_handed_over(inner, &item).await {
                Ok(Some(found)) => {
                    tracing::info!(message_id = %id, sid = %found.sid, "unknown outcome reconciled: provider has it");
                    return d
                        .record_handed_over(job, MessageStatus::Sending, &found)
                        .await;
                }
                Ok(None) => {
                    // A status callback may have adopted it while we looked.
                    if d.status(user, id).await? != Some(MessageStatus::Sending) {
                        return Ok(());
                    }
                    if let Some(next) = lookup_not_trusted_yet(inner, job, &item) {
                        tracing::info!(message_id = %id, looked = job.empty_lookups + 1, "unknown outcome: provider does not list it yet; looking again before any resend");
                        return d.note_empty_lookup(job, next).await;
                    }
                    tracing::info!(message_id = %id, "unknown outcome reconciled: provider does not have it; sending")
                }
                // Lookups keep failing (e.g. a key that may create but not list): the
                // outcome stays unknown, but only until the validity window closes —
                // then Twilio would not deliver it anyway.
                Err(e) if validity_left.is_none() => {
                    let reason = format!(
                        "{OUTCOME_UNKNOWN}: no answer to the send, and Twilio could not be asked within the validity window ({e})"
                    );
                    return d.record_send_failed(job, status, None, &reason).await;
                }
                // Twilio refused the look-up for the account's open requests: never
                // processed, so not an attempt either; looked up again soon.
                Err(SendError::Busy {
                    reason,
                    retry_after,
                }) => {
                    // Counted while this look-up is still open, as a create's refusal.
                    inner.in_flight.refused();
                    let reason = format!("reconciliation refused: {reason}");
                    return retry_busy(inner, job, false, &reason, retry_after).await;
                }
                Err(e) => {
                    let reason = format!("reconciliation failed: {e}");
                    return retry(inner, job, status, false, &reason, None).await;
                }
            }
        }
        _ => return d.drop_job(job).await,
    }

    if let Some(reason) = refusal(inner, job, &item).await? {
        return d.record_send_failed(job, status, reason.0, &reason.1).await;
    }
    let Some(validity_left) = validity_left else {
        return expire(inner, job, status).await;
    };
    // Room under the provider's concurrency ceiling (learnt from its 429s; none
    // before one came), taken before the pacing slot: a wait here would make the slot
    // stale, and a stale slot is booked again after the mark.
    if place.open.is_none() {
        let Some(open) = admitted(inner, job, shutdown).await? else {
            return Ok(());
        };
        place.open = Some(open);
    }
    let Some(booked_at) = paced(inner, job, &item, validity_left, shutdown).await? else {
        return Ok(());
    };
    // Right before the call: the lease must still be ours, renewed for the call.
    let lease = inner.settings.lease;
    let owner = &item.row.owner_e164;
    let mark = match status {
        MessageStatus::Queued => d.mark_sending(job, owner, lease).await?,
        _ => d.start_resend(job, owner, lease).await?,
    };
    match mark {
        Mark::Sending => {}
        // Lease lost or message changed: whoever has it owns it now.
        Mark::LeaseLost | Mark::Changed => return Ok(()),
        Mark::Released => {
            place.release(); // no create: the room goes to the next job
            let why = format!(
                "from: {} is no longer assigned to this user (released)",
                Masked(owner)
            );
            return d.record_send_failed(job, status, None, &why).await;
        }
    }
    let Body::Text(body) = &item.body else {
        // refusal() fails destroyed content; never panic in the dispatcher over it.
        return Err(Error::Internal(anyhow::anyhow!(
            "destroyed content reached send"
        )));
    };
    let segments = u32::try_from(item.row.segments).unwrap_or(1);
    let mut validity_left = validity_left;
    if booked_at.elapsed() > inner.pacer.config().slot_good_for(owner, segments) {
        // The mark waited behind other writes: the slot is stale (see slot_good_for).
        crate::metrics::slot_rebooked();
        rebook(inner, owner, segments).await?;
        let Some(left) = self::validity_left(inner, &item) else {
            // Marked SENDING but never sent: expired, not an unknown outcome.
            place.release();
            return expire(inner, job, MessageStatus::Sending).await;
        };
        validity_left = left;
    }
    // After an unknown outcome the message stays SENDING whatever this attempt says.
    let after_unknown = status == MessageStatus::Sending;
    send(inner, job, &item, body, validity_left, after_unknown, place).await
}

/// Books `sender`'s clock again at the present (the account's slot stays the one first
/// booked), after the SENDING mark, sleeping through
/// any wait: the message is ours and marked, and the claim filter keeps few of one
/// sender's jobs in hand, so the wait is about one interval. Not cut short by shutdown:
/// the shutdown grace bounds it, and a send abandoned here would cost a reconcile.
async fn rebook(inner: &Inner, sender: &str, segments: u32) -> Result<(), Error> {
    loop {
        match inner.pacer.rebook_sender(sender, segments).await? {
            Slot::Booked => return Ok(()),
            Slot::Wait(wait) => tokio::time::sleep(wait).await,
        }
    }
}

/// Room under the provider's concurrency ceiling for one request; `None` when the
/// dispatcher stopped while waiting for it (the job is let go).
async fn admitted<'a>(
    inner: &'a Inner,
    job: &Claimed,
    shutdown: &CancellationToken,
) -> Result<Option<Open<'a>>, Error> {
    tokio::select! {
        open = inner.in_flight.admit() => Ok(Some(open)),
        () = shutdown.cancelled() => {
            inner.outbox.release(job).await?;
            Ok(None)
        }
    }
}

/// Look-ups an unknown outcome needs before a resend: a create still running at the
/// provider, or listed only after its lag, is missed by one early look.
const TRUSTED_LOOKUPS: u32 = 2;

/// When an empty look-up for `job` cannot be trusted yet, when the next one is due.
/// It can be trusted once it is the [`TRUSTED_LOOKUPS`]th empty look-up and the
/// settle time has passed since the create started (past the provider's own
/// processing and its list lag). The create's age is measured by the clock that
/// stamped its start (PostgreSQL's on PostgreSQL) plus the time since the claim, so a
/// replica whose clock runs ahead cannot cut the settle time short and resend early.
fn lookup_not_trusted_yet(inner: &Inner, job: &Claimed, item: &DispatchItem) -> Option<Due> {
    let settle = inner.settings.unknown_settle;
    let age = match job.create_age {
        Some(age) => age + job.claimed_at.elapsed(),
        // Rows marked SENDING before create times were kept: the mark is the start.
        None => (Utc::now() - item.row.updated_at)
            .to_std()
            .unwrap_or_default(),
    };
    if job.empty_lookups + 1 >= TRUSTED_LOOKUPS && age >= settle {
        return None;
    }
    // The next look at the settle time, and never sooner than a gap after this one
    // (two looks in one instant are one look).
    let gap = (settle / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
    Some(Due::After(settle.saturating_sub(age).max(gap)))
}

/// What is left of the message's validity window; `None` once it is over.
fn validity_left(inner: &Inner, item: &DispatchItem) -> Option<Duration> {
    // A scheduled message's window opens at its send time, not when it was written.
    let valid_from = item.row.send_at.unwrap_or(item.row.created_at);
    let age = (Utc::now() - valid_from).to_std().unwrap_or_default();
    inner
        .settings
        .validity
        .checked_sub(age)
        .filter(|l| !l.is_zero())
}

/// Why the message must not be sent at all, with the error code to keep.
async fn refusal(
    inner: &Inner,
    job: &Claimed,
    item: &DispatchItem,
) -> Result<Option<(Option<i64>, String)>, Error> {
    if item.body == Body::Destroyed || item.to.is_none() {
        return Ok(Some((None, "content destroyed before it was sent".into())));
    }
    if item.opted_out {
        let why = "recipient has opted out of this number (replied STOP)";
        return Ok(Some((Some(TWILIO_UNSUBSCRIBED), why.into())));
    }
    if !item.sender_owned {
        let why = format!(
            "from: {} is no longer assigned to this user (released)",
            Masked(&item.row.owner_e164)
        );
        return Ok(Some((None, why)));
    }
    if !inner.settings.retry.may_retry(job.attempts) {
        let reason = format!(
            "gave up after {} attempts: {}",
            job.attempts,
            job.last_error.as_deref().unwrap_or("no answer")
        );
        return Ok(Some((None, reason)));
    }
    Ok(None)
}

/// Takes the sender's next pacing slot. A short wait is slept through; a longer one
/// releases the job (its sender is skipped by claims until due), so a paced-out
/// sender never holds a dispatcher slot. The instant it booked; `None` when the job
/// was let go.
async fn paced(
    inner: &Inner,
    job: &Claimed,
    item: &DispatchItem,
    validity_left: Duration,
    shutdown: &CancellationToken,
) -> Result<Option<Instant>, Error> {
    let segments = u32::try_from(item.row.segments).unwrap_or(1);
    loop {
        let wait = match inner
            .pacer
            .try_acquire(&item.row.owner_e164, segments)
            .await?
        {
            Slot::Booked => return Ok(Some(Instant::now())),
            Slot::Wait(wait) => wait,
        };
        if wait >= validity_left {
            let status = MessageStatus::parse(&item.row.status)?;
            expire(inner, job, status).await?;
            return Ok(None);
        }
        if wait > inner.settings.max_inline_wait {
            inner.outbox.release(job).await?;
            return Ok(None);
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {
                inner.outbox.release(job).await?;
                return Ok(None);
            }
        }
    }
}

async fn send(
    inner: &Inner,
    job: &Claimed,
    item: &DispatchItem,
    body: &str,
    validity_left: Duration,
    after_unknown: bool,
    place: &mut Place<'_>,
) -> Result<(), Error> {
    let d = &inner.outbox;
    let Some(to) = item.to.as_deref() else {
        // Checked before sending (refusal above); a destroyed recipient never gets here.
        return Err(Error::Internal(anyhow::anyhow!(
            "recipient destroyed before it was sent"
        )));
    };
    let out = Outgoing {
        message_id: &job.message_id,
        from: &item.row.owner_e164,
        to,
        body,
        media_urls: &item.media_urls,
        validity_left: Some(validity_left),
    };
    let started = Instant::now();
    let answer = inner.provider.send(&out).await;
    match &answer {
        // Answers time a create; a timeout or an instant refusal would skew the sizing.
        Ok(_) | Err(SendError::Permanent { .. }) => {
            inner.in_flight.observe(started.elapsed());
            inner.in_flight.answered();
        }
        // Counted while this create is still open: the others are what Twilio took.
        Err(SendError::Busy { .. }) => inner.in_flight.refused(),
        Err(SendError::Retryable { .. } | SendError::Unknown { .. }) => {}
    }
    // The create is over: its place goes to the next job while the answer is written.
    // A slot held through that write too spanned the call plus two write batches
    // (~0.2 s at 2,000 msg/s), so the cap of 1,000 held a 300 ms Twilio under 2,000
    // msg/s. Jobs writing answers stay bounded: each needed a SENDING mark, a write
    // of the same writer, to start its call.
    place.release();
    match answer {
        Ok(accepted) => {
            tracing::info!(message_id = %job.message_id, sid = %accepted.sid, to = %Masked(out.to), "handed to provider");
            d.record_handed_over(job, MessageStatus::Sending, &accepted)
                .await
        }
        Err(SendError::Permanent { code, message }) => {
            d.record_send_failed(job, MessageStatus::Sending, code, &message)
                .await
        }
        Err(SendError::Busy {
            reason,
            retry_after,
        }) => {
            // After an unknown outcome it stays SENDING, as below. The ceiling above
            // keeps such refusals to a few per burst.
            retry_busy(inner, job, !after_unknown, &reason, retry_after).await
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            // Refused before anything was created (refused connection, 401/403)
            // — but an earlier attempt's outcome is still unknown: stays SENDING, so
            // the next attempt looks the provider up again before it sends.
            let certainly_not_sent = !after_unknown;
            retry(
                inner,
                job,
                MessageStatus::Sending,
                certainly_not_sent,
                &reason,
                retry_after,
            )
            .await
        }
        Err(SendError::Unknown { reason }) => {
            retry(inner, job, MessageStatus::Sending, false, &reason, None).await
        }
    }
}

/// Schedules the next attempt. `certainly_not_sent`: the provider refused before
/// creating anything (429, connection refused), so the message goes back to QUEUED;
/// otherwise it stays SENDING and the next attempt reconciles first.
async fn retry(
    inner: &Inner,
    job: &Claimed,
    status: MessageStatus,
    certainly_not_sent: bool,
    reason: &str,
    retry_after: Option<Duration>,
) -> Result<(), Error> {
    let attempts = job.attempts + 1;
    let policy = inner.settings.retry;
    if certainly_not_sent && !policy.may_retry(attempts) {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        return inner
            .outbox
            .record_send_failed(job, status, None, &reason)
            .await;
    }
    let delay = policy.delay(attempts, retry_after, random_jitter());
    let masked = crate::redact::external_text(reason);
    tracing::info!(message_id = %job.message_id, attempts, delay_ms = delay.as_millis() as u64, reason = %masked, "will retry");
    let requeue = certainly_not_sent && status == MessageStatus::Sending;
    inner
        .outbox
        .retry_later(job, requeue, Again::Attempt(attempts), delay, reason)
        .await
}

/// Puts the job back after the provider refused it for the account's open requests
/// (Twilio's 429): never processed, in Twilio's words, so not an attempt (the validity
/// window bounds how long it may go on); due again after the schedule's first step
/// or Twilio's Retry-After. `requeue`: SENDING goes back to QUEUED. Nothing of the
/// refused create is kept (`Again::Busy`: its create stamps go back to the claim's).
/// The delay does not grow with repeated refusals: the ceiling on open creates
/// (`in_flight`) is what backs off, and a limit frees as soon as creates answer.
async fn retry_busy(
    inner: &Inner,
    job: &Claimed,
    requeue: bool,
    reason: &str,
    retry_after: Option<Duration>,
) -> Result<(), Error> {
    let delay = inner.settings.retry.delay(1, retry_after, random_jitter());
    let masked = crate::redact::external_text(reason);
    tracing::info!(message_id = %job.message_id, delay_ms = delay.as_millis() as u64, reason = %masked, "provider busy; will retry");
    inner
        .outbox
        .retry_later(job, requeue, Again::Busy, delay, reason)
        .await
}

async fn expire(inner: &Inner, job: &Claimed, status: MessageStatus) -> Result<(), Error> {
    let secs = inner.settings.validity.as_secs();
    let reason = format!("not sent within its validity window of {secs} s");
    inner
        .outbox
        .record_send_failed(job, status, None, &reason)
        .await
}
