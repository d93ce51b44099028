//! Blocked numbers. Blocking marks the number's contact (created if the number never
//! wrote); from then on its inbound messages are kept encrypted but flagged out of
//! conversations, unread counts and events (domain/write.rs), sends to it are refused
//! (send.rs), and scheduled messages to it are canceled when due (dispatch/scheduled.rs).

use chrono::{DateTime, Utc};

use super::{Messaging, conversations::MESSAGES_DEFAULT_PAGE};
use crate::{
    domain::{PageRequest, events},
    error::Error,
    phone::{Masked, parse_sender},
    store::{
        self,
        events::NewEvent,
        page_token::{Cursor, PageKind, Scope},
    },
};

const BLOCKED_MAX_PAGE: u64 = 200;

/// A blocked number.
pub struct Blocked {
    pub number: String,
    pub contact_id: String,
    pub blocked_at: DateTime<Utc>,
}

pub struct BlockedPage {
    pub blocked: Vec<Blocked>,
    pub next_page_token: String,
}

impl Messaging {
    /// Blocks `number` for the caller. Idempotent: blocking a blocked number returns it
    /// with its first `blocked_at`, announcing nothing.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn block_number(&self, user_id: &str, number: &str) -> Result<Blocked, Error> {
        let number = parse_sender("number", number)?;
        // Sealed before the write opens: the user's first key may be created here.
        let keys = self.records.keys().key_set(user_id, true).await?;
        let sealed = self.records.seal_number(&keys, user_id, &number)?;
        let txn = self.records.store().begin_write().await?;
        let contact = store::contacts::get_or_create(&txn, user_id, &sealed).await?;
        let blocked_at = Some(store::now());
        self.set_blocked(txn, user_id, &contact.id, &number, blocked_at)
            .await?;
        let contact = store::contacts::find(self.records.store().conn(), user_id, &contact.id)
            .await?
            .ok_or(Error::NotFound("number"))?;
        Ok(Blocked {
            blocked_at: contact.blocked_at.unwrap_or(contact.created_at),
            number,
            contact_id: contact.id,
        })
    }

    /// Unblocks `number`; returns `(number, contact id)`. A number the caller never
    /// had is NOT_FOUND; one not blocked (a retry) is left as it is.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn unblock_number(
        &self,
        user_id: &str,
        number: &str,
    ) -> Result<(String, String), Error> {
        let number = parse_sender("number", number)?;
        let db = self.records.store().conn();
        let lookup = self.records.number_lookup(user_id, &number).await?;
        let contact = store::contacts::find_by_number(db, user_id, &lookup)
            .await?
            .ok_or(Error::NotFound("number"))?;
        let txn = self.records.store().begin_write().await?;
        self.set_blocked(txn, user_id, &contact.id, &number, None)
            .await?;
        Ok((number, contact.id))
    }

    /// Blocks (`blocked_at`) or unblocks (`None`) the contact in `txn` and commits it;
    /// a change (not a retry) is announced as its event (`number_blocked`,
    /// `number_unblocked`) and logged.
    async fn set_blocked(
        &self,
        txn: sea_orm::DatabaseTransaction,
        user_id: &str,
        contact_id: &str,
        number: &str,
        blocked_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        let mut cursor = None;
        if store::contacts::set_blocked(&txn, user_id, contact_id, blocked_at).await? {
            let kind = match blocked_at {
                Some(_) => events::NUMBER_BLOCKED,
                None => events::NUMBER_UNBLOCKED,
            };
            let event = NewEvent {
                kind,
                contact_id: Some(contact_id),
                ..Default::default()
            };
            cursor = Some(events::append(&txn, user_id, event).await?);
        }
        txn.commit().await?;
        if let Some(cursor) = cursor {
            self.records.announce(user_id, cursor);
            match blocked_at {
                Some(_) => tracing::info!(number = %Masked(number), "number blocked"),
                None => tracing::info!(number = %Masked(number), "number unblocked"),
            }
        }
        Ok(())
    }

    /// The caller's blocked numbers, most recently blocked first.
    pub async fn list_blocked(
        &self,
        user_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<BlockedPage, Error> {
        let page = PageRequest::parse(
            Scope::new(PageKind::BlockedNumbers, &[user_id]),
            page_size,
            page_token,
            MESSAGES_DEFAULT_PAGE,
            BLOCKED_MAX_PAGE,
        )?;
        let db = self.records.store().conn();
        let rows =
            store::contacts::blocked_page(db, user_id, page.after.as_ref(), page.fetch()).await?;
        let (rows, next_page_token) = page.split(rows, |c| Cursor {
            at: c.blocked_at.unwrap_or(c.created_at),
            id: c.id.clone(),
        });
        let mut blocked = Vec::with_capacity(rows.len());
        for c in rows {
            blocked.push(Blocked {
                blocked_at: c.blocked_at.unwrap_or(c.created_at),
                // Empty once the user's keys were destroyed.
                number: self.records.contact_number(&c).await?.unwrap_or_default(),
                contact_id: c.id,
            });
        }
        Ok(BlockedPage {
            blocked,
            next_page_token,
        })
    }
}
