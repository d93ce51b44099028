//! Writing a new message — sent or received — in one transaction with everything
//! that must change with it: its contact, media links, search terms, conversation,
//! outbox job (due now, or at `send_at` for a scheduled send), opt-out state and
//! event. A message received from a blocked number (`row.blocked`) is kept with its
//! media and opt-out effect, but changes neither the conversation nor the events.
//! Sends and inbound messages share this skeleton so the conversation and unread
//! counts can never drift between the two paths.

use super::{Direction, MessageStatus, Records};
use crate::{
    error::Error,
    store::{
        self,
        entities::message,
        message_batch::{MessageOutcome, Refusal},
    },
};

/// A prepared message: encrypted, validated, with its id; written as data by the
/// write pipeline, with the batch's other new messages ([`store::message_batch`]).
pub use crate::store::message_batch::NewMessage as MessageWrite;

/// Runs of a message write that lost a deadlock before its error is returned.
const WRITE_ATTEMPTS: u32 = 3;

/// What [`Records::write_message`] did.
pub enum Written {
    /// Committed; the row as stored (contact id filled in) and the contact's sealed
    /// name, if it has one.
    Committed(Box<message::Model>, Option<Vec<u8>>),
    /// A send the writer refused (number not the caller's, opted out, blocked).
    Refused(Refusal),
    /// A unique key (idempotency key, provider SID) is taken: a concurrent request
    /// for the same message committed first. Nothing was written.
    Conflict,
}

impl Written {
    /// What to answer when a write's conflict names a row the caller then cannot
    /// find: the row it lost to was deleted in between (DeleteMessage, retention), so
    /// the unique key is free again and a retry writes anew — UNAVAILABLE, not an
    /// internal error.
    pub fn lost_race(what: &str) -> Error {
        Error::Unavailable(sea_orm::DbErr::Custom(format!(
            "{what}: the row it conflicted with is gone; retry"
        )))
    }
}

impl Records {
    /// Writes `w` in the write pipeline and returns once it committed, then wakes
    /// the user's event streams.
    ///
    /// On PostgreSQL a write chosen as a deadlock victim (two replicas' batches waiting
    /// on each other's rows) was rolled back alone; it is run again, with the same ids.
    pub async fn write_message(&self, w: MessageWrite) -> Result<Written, Error> {
        let mut attempt = 1;
        let outcome = loop {
            match self.store.write_message(w.clone()).await {
                Err(e) if attempt < WRITE_ATTEMPTS && store::is_lock_conflict(&e) => {
                    tracing::warn!(
                        attempt,
                        "message write lost a lock conflict; running it again"
                    );
                    attempt += 1;
                }
                other => break other?,
            }
        };
        Ok(match outcome {
            MessageOutcome::Committed {
                row,
                cursor,
                contact_name_ct,
            } => {
                if let Some(cursor) = cursor {
                    self.announce(&row.user_id, cursor);
                }
                Written::Committed(row, contact_name_ct)
            }
            MessageOutcome::Refused(why) => Written::Refused(why),
            MessageOutcome::Conflict => Written::Conflict,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller whose write lost to a row that is gone again must retry, not give up.
    #[test]
    fn a_lost_race_is_retryable() {
        let status = tonic::Status::from(Written::lost_race("send"));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            !status.message().contains("conflicted"),
            "{}",
            status.message()
        );
    }
}
