//! The domain side of outbound delivery: what the dispatcher reads and records.
//! Each recording step is one transaction with the outbox row it settles.

use chrono::{DateTime, Utc};

use super::{Body, MessageStatus, Messaging, StatusReport, events};
use crate::{
    error::Error,
    provider::ProviderMessage,
    store::{self, entities::message, events::NewEvent, messages::StatusChange},
};

/// Twilio's "recipient unsubscribed" error: the contact replied STOP.
pub const TWILIO_UNSUBSCRIBED: i64 = 21610;

/// A message ready for dispatch, with its decrypted body.
pub struct DispatchItem {
    pub row: message::Model,
    pub body: Body,
    pub opted_out: bool,
    /// The MediaUrl values to send: signed gateway URLs for our media, external URLs as given.
    pub media_urls: Vec<String>,
}

impl Messaging {
    /// Loads a queued message for the dispatcher; `None` if it no longer exists.
    pub async fn dispatch_load(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<DispatchItem>, Error> {
        let db = self.store.conn();
        let Some(row) = store::messages::find(db, user_id, id).await? else {
            return Ok(None);
        };
        let opted_out = store::contacts::find(db, user_id, &row.contact_id)
            .await?
            .is_some_and(|c| c.opted_out);
        let view = self.view(user_id, row).await?;
        let media_urls = self.media_urls_of(user_id, &view.row).await?;
        Ok(Some(DispatchItem {
            row: view.row,
            body: view.body,
            opted_out,
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
        let mut urls = Vec::new();
        for link in store::media::links(self.store.conn(), vec![row.id.clone()]).await? {
            match (&link.media_id, &link.url_ct) {
                (Some(media_id), _) => urls.push(self.media_url(media_id)?),
                (None, Some(ct)) => {
                    let aad = super::media::link_url_aad(user_id, &row.id, link.position);
                    if let crate::crypto::Cleartext::Available(u) =
                        self.keys.open(user_id, &aad, ct).await?
                    {
                        urls.push(String::from_utf8_lossy(&u).into_owned());
                    }
                }
                (None, None) => {}
            }
        }
        Ok(urls)
    }

    /// QUEUED → SENDING, committed before the provider is called: from here on, a
    /// crash leaves an "outcome unknown" mark that forces reconciliation.
    pub async fn mark_sending(&self, user_id: &str, id: &str) -> Result<bool, Error> {
        let change = StatusChange {
            status: Some(MessageStatus::Sending.as_str().into()),
            ..Default::default()
        };
        let txn = self.store.begin_write().await?;
        let event = self
            .change_status_in(&txn, user_id, id, MessageStatus::Queued, change)
            .await?;
        txn.commit().await?;
        if let Some(cursor) = event {
            self.announce(user_id, cursor);
        }
        Ok(event.is_some())
    }

    /// Changes a message's status if it still is `expected`, and records the status
    /// event, inside `txn` (its last statements). Returns the event cursor, or `None`
    /// when the message had changed meanwhile.
    pub(super) async fn change_status_in(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        user_id: &str,
        id: &str,
        expected: MessageStatus,
        change: StatusChange,
    ) -> Result<Option<i64>, Error> {
        let status = change.status.clone();
        if !store::messages::change_status(
            txn,
            user_id,
            id,
            expected.as_str(),
            change,
            store::now(),
        )
        .await?
        {
            return Ok(None);
        }
        let contact_id = store::messages::find(txn, user_id, id)
            .await?
            .map(|m| m.contact_id);
        let event = NewEvent {
            kind: events::MESSAGE_STATUS_CHANGED,
            message_id: Some(id),
            contact_id: contact_id.as_deref(),
            status: status.as_deref(),
            unread_count: None,
        };
        Ok(Some(self.record_event(txn, user_id, event).await?))
    }

    /// The provider accepted the message: SENT with its SID, job done.
    pub async fn record_handed_over(
        &self,
        user_id: &str,
        id: &str,
        from_status: MessageStatus,
        accepted: &ProviderMessage,
    ) -> Result<(), Error> {
        let now = store::now();
        let change = StatusChange {
            status: Some(MessageStatus::Sent.as_str().into()),
            provider_sid: Some(accepted.sid.clone()),
            segments: accepted.segments.and_then(|s| i32::try_from(s).ok()),
            sent_at: Some(accepted.created_at.unwrap_or(now)),
            ..Default::default()
        };
        let txn = self.store.begin_write().await?;
        store::outbox::remove(&txn, id).await?;
        let event = self
            .change_status_in(&txn, user_id, id, from_status, change)
            .await?;
        txn.commit().await?;
        let Some(cursor) = event else {
            tracing::warn!(message_id = %id, "message changed while being handed over; provider answer not recorded");
            return Ok(());
        };
        self.announce(user_id, cursor);
        // The provider may already report a later state (console: sent; reconciliation:
        // delivered). Apply it through the same monotonic rules as callbacks.
        self.apply_provider_status(StatusReport {
            sid: &accepted.sid,
            status: &accepted.status,
            error_code: accepted.error_code,
            error_message: accepted.error_message.as_deref(),
        })
        .await?;
        // Callbacks that overtook this transaction were parked: apply them now.
        self.apply_parked(&accepted.sid).await?;
        Ok(())
    }

    /// The message will not be sent: FAILED with the reason kept; a 21610 also marks
    /// the contact opted out so later sends are refused up front.
    pub async fn record_send_failed(
        &self,
        user_id: &str,
        id: &str,
        from_status: MessageStatus,
        code: Option<i64>,
        reason: &str,
    ) -> Result<(), Error> {
        let change = StatusChange {
            status: Some(MessageStatus::Failed.as_str().into()),
            error_code: code.and_then(|c| i32::try_from(c).ok()),
            error_message: Some(reason.chars().take(500).collect()),
            ..Default::default()
        };
        let txn = self.store.begin_write().await?;
        store::outbox::remove(&txn, id).await?;
        if code == Some(TWILIO_UNSUBSCRIBED)
            && let Some(row) = store::messages::find(&txn, user_id, id).await?
        {
            store::contacts::set_opted_out(&txn, user_id, &row.contact_id, true).await?;
        }
        let event = self
            .change_status_in(&txn, user_id, id, from_status, change)
            .await?;
        txn.commit().await?;
        if let Some(cursor) = event {
            self.announce(user_id, cursor);
        }
        tracing::warn!(message_id = %id, code, "message failed");
        Ok(())
    }

    /// Puts the job back for `next_attempt_at`. `requeue` turns SENDING back into
    /// QUEUED when the provider certainly did not get the message; otherwise the
    /// SENDING mark stays and the next attempt reconciles first.
    pub async fn retry_later(
        &self,
        user_id: &str,
        id: &str,
        requeue: bool,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        last_error: &str,
    ) -> Result<(), Error> {
        let txn = self.store.begin_write().await?;
        store::outbox::reschedule(&txn, id, attempts, next_attempt_at, Some(last_error)).await?;
        let mut event = None;
        if requeue {
            let change = StatusChange {
                status: Some(MessageStatus::Queued.as_str().into()),
                ..Default::default()
            };
            event = self
                .change_status_in(&txn, user_id, id, MessageStatus::Sending, change)
                .await?;
        }
        txn.commit().await?;
        if let Some(cursor) = event {
            self.announce(user_id, cursor);
        }
        Ok(())
    }

    /// The current status of one of the user's messages, without decrypting anything.
    pub async fn message_status(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<MessageStatus>, Error> {
        match store::messages::find(self.store.conn(), user_id, id).await? {
            Some(row) => Ok(Some(MessageStatus::parse(&row.status)?)),
            None => Ok(None),
        }
    }

    /// Drops a job whose message is gone or already settled.
    pub async fn drop_job(&self, id: &str) -> Result<(), Error> {
        Ok(store::outbox::remove(self.store.conn(), id).await?)
    }
}

impl Messaging {
    /// Claims due outbox jobs for a dispatcher.
    pub async fn claim_jobs(
        &self,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<store::outbox::Claimed>, Error> {
        Ok(store::outbox::claim(self.store.conn(), at, lease_until, limit).await?)
    }

    /// Whether one of our messages already carries this provider SID.
    pub async fn sid_is_recorded(&self, sid: &str) -> Result<bool, Error> {
        Ok(
            store::messages::find_by_provider_sid_any(self.store.conn(), sid)
                .await?
                .is_some(),
        )
    }

    /// SENT messages without news since `updated_before` (reconciliation).
    pub async fn stuck_messages(
        &self,
        updated_before: DateTime<Utc>,
        created_after: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<message::Model>, Error> {
        let statuses = [MessageStatus::Sent.as_str()];
        Ok(store::messages::stuck(
            self.store.conn(),
            &statuses,
            updated_before,
            created_after,
            limit,
        )
        .await?)
    }

    pub async fn touch_message(&self, user_id: &str, id: &str) -> Result<(), Error> {
        Ok(store::messages::touch(self.store.conn(), user_id, id, store::now()).await?)
    }
}
