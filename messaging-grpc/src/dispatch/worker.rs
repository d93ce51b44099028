//! One claimed job, from load to recorded outcome.

use std::time::Instant;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{DispatchItem, Inner, TWILIO_UNSUBSCRIBED, reconcile};
use crate::{
    domain::{Body, MessageStatus},
    error::Error,
    phone::Masked,
    provider::{Outgoing, SendError},
    retry::random_jitter,
    store::{self, outbox::Claimed},
};

pub(super) async fn process(inner: &Inner, job: Claimed, shutdown: &CancellationToken) {
    if let Err(e) = handle(inner, &job, shutdown).await {
        match e {
            // A corrupt row will never decrypt: fail it instead of retrying forever.
            Error::Integrity(_) => {
                // Fail it from whatever state it is in (QUEUED, or SENDING after an
                // earlier attempt), so the job is never dropped with the status left behind.
                let d = &inner.outbox;
                let r = match d.status(&job.user_id, &job.message_id).await {
                    Ok(Some(status)) => {
                        d.record_send_failed(
                            &job.user_id,
                            &job.message_id,
                            status,
                            None,
                            "stored content failed its integrity check",
                        )
                        .await
                    }
                    Ok(None) => d.drop_job(&job.message_id).await,
                    Err(e) => Err(e),
                };
                tracing::error!(message_id = %job.message_id, error = ?r.err(), "message content failed its integrity check");
            }
            // Anything else (database hiccup): the claim expires and the job comes back.
            e => {
                tracing::warn!(message_id = %job.message_id, error = %e, "dispatch attempt failed; will retry after the lease")
            }
        }
    }
}

async fn handle(inner: &Inner, job: &Claimed, shutdown: &CancellationToken) -> Result<(), Error> {
    let d = &inner.outbox;
    let (user, id) = (job.user_id.as_str(), job.message_id.as_str());
    let Some(item) = d.load(user, id).await? else {
        return d.drop_job(id).await;
    };
    let mut status = MessageStatus::parse(&item.row.status)?;
    if status == MessageStatus::Scheduled {
        // Due: QUEUED (committed), then sent like any other message.
        if !d.release_scheduled(user, id).await? {
            return Ok(());
        }
        status = MessageStatus::Queued;
    }
    match status {
        MessageStatus::Queued => {}
        MessageStatus::Sending => {
            // An earlier attempt may have reached the provider: never resend blindly.
            match reconcile::find_handed_over(inner, &item).await {
                Ok(Some(found)) => {
                    tracing::info!(message_id = %id, sid = %found.sid, "unknown outcome reconciled: provider has it");
                    return d
                        .record_handed_over(user, id, MessageStatus::Sending, &found)
                        .await;
                }
                Ok(None) => {
                    tracing::info!(message_id = %id, "unknown outcome reconciled: provider does not have it; sending")
                }
                Err(e) => {
                    return retry(
                        inner,
                        job,
                        status,
                        false,
                        &format!("reconciliation failed: {e}"),
                        None,
                    )
                    .await;
                }
            }
        }
        // Settled already (a duplicate job, or a callback overtook us).
        _ => return d.drop_job(id).await,
    }

    let Body::Text(body) = &item.body else {
        return d
            .record_send_failed(
                user,
                id,
                status,
                None,
                "content destroyed before it was sent",
            )
            .await;
    };
    if item.opted_out {
        return d
            .record_send_failed(
                user,
                id,
                status,
                Some(TWILIO_UNSUBSCRIBED),
                "recipient has opted out (replied STOP)",
            )
            .await;
    }
    if !inner.settings.retry.may_retry(job.attempts) {
        let reason = format!(
            "gave up after {} attempts: {}",
            job.attempts,
            job.last_error.as_deref().unwrap_or("no answer")
        );
        return d.record_send_failed(user, id, status, None, &reason).await;
    }
    let validity = inner.settings.validity;
    // A scheduled message's window opens at its send time, not when it was written.
    let valid_from = item.row.send_at.unwrap_or(item.row.created_at);
    let age = (Utc::now() - valid_from).to_std().unwrap_or_default();
    let Some(validity_left) = validity.checked_sub(age).filter(|l| !l.is_zero()) else {
        return expire(inner, job, status).await;
    };

    // Pace by segments; a wait too long to hold in memory goes back to the table.
    let segments = u32::try_from(item.row.segments).unwrap_or(1);
    let deadline = Instant::now() + inner.settings.max_inline_wait.min(validity_left);
    loop {
        let now = Instant::now();
        let Err(wait) = inner.pacer.try_acquire(&item.row.owner_e164, segments, now) else {
            break;
        };
        if wait >= validity_left {
            return expire(inner, job, status).await;
        }
        if now + wait > deadline {
            let next = store::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return d
                .retry_later(user, id, false, job.attempts, next, "paced")
                .await;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {
                return d.retry_later(user, id, false, job.attempts, store::now(), "shutdown before sending").await;
            }
        }
    }

    if status == MessageStatus::Queued && !d.mark_sending(user, id).await? {
        return Ok(()); // changed under us; whoever changed it owns it now
    }
    send(inner, job, &item, body, validity_left).await
}

async fn send(
    inner: &Inner,
    job: &Claimed,
    item: &DispatchItem,
    body: &str,
    validity_left: std::time::Duration,
) -> Result<(), Error> {
    let d = &inner.outbox;
    let (user, id) = (job.user_id.as_str(), job.message_id.as_str());
    let out = Outgoing {
        message_id: id,
        from: &item.row.owner_e164,
        to: &item.row.contact_e164,
        body,
        media_urls: &item.media_urls,
        validity_left: Some(validity_left),
    };
    match inner.provider.send(&out).await {
        Ok(accepted) => {
            tracing::info!(message_id = %id, sid = %accepted.sid, to = %Masked(out.to), "handed to provider");
            d.record_handed_over(user, id, MessageStatus::Sending, &accepted)
                .await
        }
        Err(SendError::Permanent { code, message }) => {
            d.record_send_failed(user, id, MessageStatus::Sending, code, &message)
                .await
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => {
            retry(
                inner,
                job,
                MessageStatus::Sending,
                true,
                &reason,
                retry_after,
            )
            .await
        }
        Err(SendError::Unknown { reason }) => {
            // Keep SENDING: the next attempt looks the message up before resending.
            retry(inner, job, MessageStatus::Sending, false, &reason, None).await
        }
    }
}

async fn retry(
    inner: &Inner,
    job: &Claimed,
    status: MessageStatus,
    certainly_not_sent: bool,
    reason: &str,
    retry_after: Option<std::time::Duration>,
) -> Result<(), Error> {
    let attempts = job.attempts + 1;
    let policy = inner.settings.retry;
    if certainly_not_sent && !policy.may_retry(attempts) {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        return inner
            .outbox
            .record_send_failed(&job.user_id, &job.message_id, status, None, &reason)
            .await;
    }
    let delay = policy.delay(attempts, retry_after, random_jitter());
    tracing::info!(message_id = %job.message_id, attempts, delay_ms = delay.as_millis() as u64, reason, "will retry");
    let next = store::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    inner
        .outbox
        .retry_later(
            &job.user_id,
            &job.message_id,
            certainly_not_sent && status == MessageStatus::Sending,
            attempts,
            next,
            reason,
        )
        .await
}

async fn expire(inner: &Inner, job: &Claimed, status: MessageStatus) -> Result<(), Error> {
    let secs = inner.settings.validity.as_secs();
    let reason = format!("not sent within its validity window of {secs} s");
    inner
        .outbox
        .record_send_failed(&job.user_id, &job.message_id, status, None, &reason)
        .await
}
