//! Writing a new message — sent or received — in one transaction with everything
//! that must change with it: its contact, media links, search terms, conversation,
//! outbox job (due now, or at `send_at` for a scheduled send), opt-out state and
//! event. A message received from a blocked number (`row.blocked`) is kept with its
//! media and opt-out effect, but changes neither the conversation nor the events.
//! Sends and inbound messages share this skeleton so the conversation and unread
//! counts can never drift between the two paths.

use sea_orm::{ActiveModelTrait as _, DatabaseTransaction, IntoActiveModel as _};

use super::{Direction, MessageStatus, Records, events};
use crate::{
    error::Error,
    store::{
        self,
        entities::{media, message, message_media},
        events::NewEvent,
    },
};

/// A prepared message: encrypted, validated, with its id. `row.contact_id` is filled
/// in by [`Records::write_message`] (the contact is found or created in the same
/// transaction).
#[derive(Clone)]
pub struct MessageWrite {
    pub row: message::Model,
    /// New media rows to insert with it (inbound media still to be copied).
    pub new_media: Vec<media::Model>,
    pub links: Vec<message_media::Model>,
    /// 1 for an inbound message, 0 for ours.
    pub unread_delta: i64,
    /// Also queue an outbox job (our sends).
    pub enqueue: bool,
    /// Also set the contact's opt-out of this message's own number (STOP / START).
    pub opt_out: Option<bool>,
    pub event_kind: &'static str,
    /// The body's blind-index terms ([`Records::index_terms`]).
    pub search_terms: Vec<Vec<u8>>,
    /// Bring the conversation back from the archive (a new inbound message).
    pub unarchive: bool,
    /// The contact's number, sealed ([`Records::seal_contact`]).
    pub contact: store::contacts::SealedNumber,
}

/// Runs of a message write that lost a deadlock before its error is returned.
const WRITE_ATTEMPTS: u32 = 3;

/// What [`Records::write_message`] did.
pub enum Written {
    /// Committed; the row as stored (contact id filled in).
    Committed(Box<message::Model>),
    /// A unique key (idempotency key, provider SID) is taken: a concurrent request
    /// for the same message committed first. Nothing was written.
    Conflict,
}

impl Records {
    /// Writes `w` in the write pipeline and returns once it committed, then wakes
    /// the user's event streams.
    ///
    /// On PostgreSQL a write chosen as a deadlock victim (two replicas' batches waiting
    /// on each other's rows) was rolled back alone; it is run again, with the same ids.
    pub async fn write_message(&self, w: MessageWrite) -> Result<Written, Error> {
        let mut attempt = 1;
        let written = loop {
            let this = w.clone();
            let result = self
                .store
                .write_keeping(
                    move |txn| Box::pin(write_in(txn, this)),
                    // A lost insert race leaves nothing of this write.
                    |r| matches!(r, Ok((Written::Committed(_), _))),
                )
                .await;
            match result {
                Err(Error::Unavailable(e))
                    if attempt < WRITE_ATTEMPTS && store::is_lock_conflict(&e) =>
                {
                    tracing::warn!(
                        attempt,
                        "message write lost a lock conflict; running it again"
                    );
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let (written, announced) = written;
        if let (Written::Committed(row), Some(cursor)) = (&written, announced) {
            self.announce(&row.user_id, cursor);
        }
        Ok(written)
    }
}

/// The statements of [`Records::write_message`], run in `txn`; the cursor of the
/// event to announce after commit, if one was appended.
async fn write_in(
    txn: &DatabaseTransaction,
    w: MessageWrite,
) -> Result<(Written, Option<i64>), Error> {
    let mut row = w.row;
    let user_id = row.user_id.clone();
    let contact = store::contacts::get_or_create(txn, &user_id, &w.contact).await?;
    row.contact_id = contact.id.clone();
    if let Err(err) = store::messages::insert(txn, active(row.clone())).await {
        if store::is_unique_violation(&err) {
            return Ok((Written::Conflict, None));
        }
        return Err(err.into());
    }
    for media in w.new_media {
        store::media::insert(txn, media).await?;
    }
    store::media::link_any(txn, w.links).await?;
    store::search::insert(txn, &user_id, &row.id, w.search_terms).await?;
    if w.enqueue {
        match row.send_at {
            // Due later: the dispatcher's claim only takes due jobs.
            Some(at) => store::scheduled::enqueue_at(txn, &user_id, &row.id, at).await?,
            None => store::outbox::enqueue(txn, &user_id, &row.id).await?,
        }
    }
    if row.blocked {
        // Kept for the record; not shown, not counted, not announced.
        if let Some(opted_out) = w.opt_out {
            let owner = &row.owner_e164;
            store::opt_outs::set(txn, &user_id, owner, &contact.id, opted_out).await?;
        }
        return Ok((Written::Committed(Box::new(row)), None));
    }
    let unarchived = w.unarchive
        && store::conversations::set_archived(txn, &user_id, &contact.id, false).await?;
    let conversation = store::conversations::record_message(
        txn,
        store::conversations::MessageWritten {
            user_id: &user_id,
            contact_id: &contact.id,
            owner_e164: &row.owner_e164,
            message_id: &row.id,
            at: row.created_at,
            unread_delta: w.unread_delta,
        },
    )
    .await?;
    if let Some(opted_out) = w.opt_out {
        let owner = &row.owner_e164;
        store::opt_outs::set(txn, &user_id, owner, &contact.id, opted_out).await?;
    }
    let muted = Some(store::conversations::muted_at(&conversation, store::now()));
    if unarchived {
        let back = NewEvent {
            kind: events::CONVERSATION_UNARCHIVED,
            contact_id: Some(&contact.id),
            muted,
            ..Default::default()
        };
        events::append(txn, &user_id, back).await?;
    }
    let status = MessageStatus::parse(&row.status)?;
    let event = NewEvent {
        kind: w.event_kind,
        message_id: Some(&row.id),
        contact_id: Some(&contact.id),
        status: Some(status.as_str()),
        unread_count: Some(conversation.unread_count),
        muted,
    };
    let cursor = events::append(txn, &user_id, event).await?;
    Ok((Written::Committed(Box::new(row)), Some(cursor)))
}

/// A new message row: outbound ones start QUEUED, inbound ones RECEIVED; the
/// caller sets the sealed body and what else it knows with struct-update syntax.
/// `contact_number_ct` is the contact's number sealed for this row
/// ([`super::SealedContact::message_ct`]).
/// `contact_id` is filled in by [`Records::write_message`].
pub fn new_row(
    id: String,
    user_id: &str,
    direction: Direction,
    owner_e164: &str,
    contact_number_ct: Vec<u8>,
) -> message::Model {
    let now = store::now();
    let status = match direction {
        Direction::Outbound => MessageStatus::Queued,
        Direction::Inbound => MessageStatus::Received,
    };
    message::Model {
        id,
        user_id: user_id.to_owned(),
        contact_id: String::new(),
        direction: direction.as_str().to_owned(),
        owner_e164: owner_e164.to_owned(),
        legacy_contact_e164: String::new(),
        body_ct: Vec::new(),
        key_version: 0,
        status: status.as_str().to_owned(),
        provider_sid: None,
        idempotency_key: None,
        error_code: None,
        error_message: None,
        segments: 1,
        num_media: 0,
        created_at: now,
        updated_at: now,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        send_at: None,
        blocked: false,
        // Indexed in the transaction that writes it (blocked ones are never indexed).
        search_indexed: true,
        contact_number_ct: Some(contact_number_ct),
    }
}

/// A full row as an insertable active model (every column set).
fn active(row: message::Model) -> message::ActiveModel {
    row.into_active_model().reset_all()
}
