//! Status changes of a message: the compare-and-set every status write goes
//! through, and provider reports (callbacks, reconciliation, the send's own answer)
//! applied monotonically. Shared by the outbox and ingest.

use sea_orm::ConnectionTrait;

use super::{MessageStatus, Records, events};
use crate::{
    error::Error,
    store::{self, events::NewEvent, messages::StatusChange, report_batch::ReportedStatus},
};

/// What a status report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    Applied,
    /// Older than, or equal to, what we have: nothing changed.
    Ignored,
    /// No message carries this SID (yet).
    UnknownSid,
    /// Kept until a message records this SID (a callback that overtook our send).
    Parked,
    /// Twilio sent a status value this service does not know.
    UnknownStatus,
}

/// What one attempt to adopt a SID found.
enum Adopt {
    Adopted,
    /// Not in a state a callback may adopt (or gone): nothing changed.
    NotAdoptable,
    /// Changed between our read and our write: read again.
    Changed,
}

/// A status report about a provider SID.
#[derive(Clone, Debug)]
pub struct StatusReport<'a> {
    pub sid: &'a str,
    pub status: &'a str,
    pub error_code: Option<i64>,
    pub error_message: Option<&'a str>,
}

/// Changes a message's status if it still is `expected`, and records the status
/// event, inside `txn` (its last statements). Returns the event cursor, or `None`
/// when the message had changed meanwhile.
pub async fn change_status_in(
    txn: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    expected: MessageStatus,
    change: StatusChange,
) -> Result<Option<i64>, Error> {
    let status = change.status.clone();
    let Some(contact_id) =
        store::messages::change_status(txn, user_id, id, expected.as_str(), change, store::now())
            .await?
    else {
        return Ok(None);
    };
    let contact_id = Some(contact_id);
    let event = NewEvent {
        kind: events::MESSAGE_STATUS_CHANGED,
        message_id: Some(id),
        contact_id: contact_id.as_deref(),
        status: status.as_deref(),
        unread_count: None,
        muted: None,
    };
    Ok(Some(events::append(txn, user_id, event).await?))
}

impl Records {
    /// Changes a message's status if it still is `expected` — with its event, and
    /// when `unschedule` its scheduled job removed, in one pipeline write — then
    /// announces it. False when the message had changed meanwhile.
    pub async fn change_status(
        &self,
        user_id: &str,
        id: &str,
        expected: MessageStatus,
        change: StatusChange,
        unschedule: bool,
    ) -> Result<bool, Error> {
        let (user, message_id) = (user_id.to_owned(), id.to_owned());
        let event = self
            .store
            .write_for(user_id, move |txn| {
                Box::pin(async move {
                    let event = change_status_in(txn, &user, &message_id, expected, change).await?;
                    if event.is_some() && unschedule {
                        store::scheduled::remove_for(txn, &user, vec![message_id]).await?;
                    }
                    Ok::<_, Error>(event)
                })
            })
            .await?;
        if let Some(cursor) = event {
            self.announce(user_id, cursor);
        }
        Ok(event.is_some())
    }

    /// Applies a provider status if it moves the message forward. Reports may arrive
    /// late, twice or out of order; only a newer state changes anything.
    pub async fn apply_provider_status(
        &self,
        report: StatusReport<'_>,
    ) -> Result<StatusOutcome, Error> {
        let Some(next) = MessageStatus::from_twilio(report.status) else {
            return Ok(StatusOutcome::UnknownStatus);
        };
        let db = self.store.conn();
        // Retry on a concurrent change: re-read and decide again.
        for _ in 0..5 {
            let Some(row) = store::messages::find_by_provider_sid_any(db, report.sid).await? else {
                return Ok(StatusOutcome::UnknownSid);
            };
            let current = MessageStatus::parse(&row.status)?;
            if !current.may_become(next) {
                return Ok(StatusOutcome::Ignored);
            }
            let now = store::now();
            // As a set with the batch's other reports (`store::report_batch`): under a
            // send load every message's DELIVERED report comes through here.
            let reported = ReportedStatus {
                user_id: row.user_id.clone(),
                message_id: row.id.clone(),
                expected: current.as_str().to_owned(),
                status: next.as_str().to_owned(),
                error_code: report.error_code.and_then(|c| i32::try_from(c).ok()),
                error_message: report.error_message.map(str::to_owned),
                sent_at: (next.rank() >= MessageStatus::Sent.rank() && row.sent_at.is_none())
                    .then_some(now),
                delivered_at: (next == MessageStatus::Delivered).then_some(now),
                event_kind: events::MESSAGE_STATUS_CHANGED,
            };
            let event = self.store.write_set(reported).await?;
            if let Some(cursor) = event {
                self.announce(&row.user_id, cursor);
                tracing::info!(message_id = %row.id, from = current.as_str(), to = next.as_str(), "status applied");
                return Ok(StatusOutcome::Applied);
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "status of {} kept changing under us",
            report.sid
        )))
    }

    /// Applies and removes the statuses parked for `sid` (callbacks that overtook the
    /// transaction recording the SID).
    pub async fn apply_parked(&self, sid: &str) -> Result<(), Error> {
        // A status this version does not know stays parked (kept aside), unapplied.
        let parked: Vec<_> = store::ingest::parked_for_any(self.store.conn(), sid)
            .await?
            .into_iter()
            .filter(|p| MessageStatus::from_twilio(&p.status).is_some())
            .collect();
        if parked.is_empty() {
            return Ok(());
        }
        for p in &parked {
            let report = StatusReport {
                sid,
                status: &p.status,
                error_code: p.error_code.map(i64::from),
                error_message: p.error_message.as_deref(),
            };
            self.apply_provider_status(report).await?;
        }
        let applied = parked.into_iter().map(|p| p.status).collect();
        let sid = sid.to_owned();
        self.store
            .write(move |txn| {
                Box::pin(async move {
                    Ok::<_, Error>(store::ingest::unpark_any(txn, &sid, applied).await?)
                })
            })
            .await?;
        Ok(())
    }

    /// Records `sid` on our message `id` if it has no SID yet and is not final
    /// (SENDING or QUEUED: Twilio took it but its answer never reached us) — SENT, job
    /// done. `false` when the message is not in that state (nothing changed); a
    /// message with another SID keeps it, and `sid` is kept as a duplicate send.
    pub async fn adopt_sid(&self, id: &str, sid: &str) -> Result<bool, Error> {
        // The dispatcher may be changing the message meanwhile (QUEUED ⇄ SENDING on a
        // refused attempt): a lost compare-and-set reads again and decides again.
        for _ in 0..5 {
            match self.try_adopt_sid(id, sid).await? {
                Adopt::Adopted => return Ok(true),
                Adopt::NotAdoptable => return Ok(false),
                Adopt::Changed => continue,
            }
        }
        Ok(false)
    }

    async fn try_adopt_sid(&self, id: &str, sid: &str) -> Result<Adopt, Error> {
        let Some(row) = store::messages::find_any(self.store.conn(), id).await? else {
            return Ok(Adopt::NotAdoptable);
        };
        if let Some(ours) = &row.provider_sid {
            if ours != sid {
                self.record_duplicate(&row.user_id, id, sid).await?;
            }
            return Ok(Adopt::NotAdoptable);
        }
        // Any state before the provider's answer: SENDING (answer lost) or QUEUED (an
        // attempt after the lost one was refused and put it back). The callback is the
        // provider's word that it has the message: it must never be sent again.
        // Also FAILED as "outcome unknown" (never confirmed within the validity
        // window): the provider had it after all, and its callback corrects us.
        let current = MessageStatus::parse(&row.status)?;
        let unconfirmed = current == MessageStatus::Failed
            && row
                .error_message
                .as_deref()
                .is_some_and(|e| e.starts_with(super::OUTCOME_UNKNOWN));
        if !(matches!(current, MessageStatus::Sending | MessageStatus::Queued) || unconfirmed) {
            return Ok(Adopt::NotAdoptable);
        }
        let change = StatusChange {
            status: Some(MessageStatus::Sent.as_str().to_owned()),
            provider_sid: Some(sid.to_owned()),
            sent_at: Some(store::now()),
            // The "outcome unknown" reason no longer holds.
            error_message: unconfirmed.then(String::new),
            ..Default::default()
        };
        let (user_id, id) = (row.user_id.clone(), id.to_owned());
        let event = self
            .store
            .write_for(&row.user_id, move |txn| {
                Box::pin(async move {
                    let event = change_status_in(txn, &user_id, &id, current, change).await?;
                    if event.is_some() {
                        store::outbox::remove_any(txn, &id).await?;
                    }
                    Ok::<_, Error>(event)
                })
            })
            .await?;
        let Some(cursor) = event else {
            return Ok(Adopt::Changed);
        };
        self.announce(&row.user_id, cursor);
        Ok(Adopt::Adopted)
    }

    /// A provider answer for `id` could not be recorded because the message changed:
    /// if it now carries another SID, `sid` is a second provider message for it.
    pub async fn note_possible_duplicate(
        &self,
        user_id: &str,
        id: &str,
        sid: &str,
    ) -> Result<(), Error> {
        let row = store::messages::find(self.store.conn(), user_id, id).await?;
        if let Some(row) = row
            && row.provider_sid.as_deref().is_some_and(|ours| ours != sid)
        {
            self.record_duplicate(user_id, id, sid).await?;
        }
        Ok(())
    }

    /// Keeps the SID of a second provider message for one of ours and counts it
    /// (`messaging_duplicate_sends_total`): a double send reached the provider.
    async fn record_duplicate(&self, user_id: &str, id: &str, sid: &str) -> Result<(), Error> {
        let (user, message_id, second) = (user_id.to_owned(), id.to_owned(), sid.to_owned());
        let new = self
            .store
            .write_for(user_id, move |txn| {
                Box::pin(async move {
                    let at = store::now();
                    Ok::<_, Error>(
                        store::duplicate_sends::record(txn, &user, &message_id, &second, at)
                            .await?,
                    )
                })
            })
            .await?;
        if new {
            metrics::counter!("messaging_duplicate_sends_total").increment(1);
            tracing::error!(message_id = %id, sid = %sid, "a second provider message exists for one of ours (double send); its SID is kept in duplicate_sends");
        }
        Ok(())
    }

    /// Whether one of our messages already carries this provider SID.
    pub async fn sid_is_recorded(&self, sid: &str) -> Result<bool, Error> {
        let found = store::messages::find_by_provider_sid_any(self.store.conn(), sid).await?;
        Ok(found.is_some())
    }
}
