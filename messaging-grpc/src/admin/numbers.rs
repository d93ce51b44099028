//! Number assignment and the unroutable inbound list.

use serde_json::json;

use super::{Admin, actions};
use crate::{
    domain::{MessageStatus, PageRequest},
    error::Error,
    phone::parse_own_number,
    store::{
        self,
        audit::NewAuditEvent,
        entities::phone_number,
        numbers::Assigned,
        page_token::{Cursor, PageKind, Scope},
    },
};

pub const NUMBERS_DEFAULT_PAGE: u64 = 100;
pub const NUMBERS_MAX_PAGE: u64 = 1000;
const MAX_USER_ID: usize = 128;

pub struct NumberPage {
    pub numbers: Vec<phone_number::Model>,
    pub next_page_token: String,
}

pub(super) fn parse_user_id(value: &str) -> Result<&str, Error> {
    if value.is_empty()
        || value.chars().count() > MAX_USER_ID
        || value.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "user_id",
            "must be 1-128 printable characters",
        ));
    }
    Ok(value)
}

impl Admin {
    /// Assigns a number; idempotent for the same user, refused while another user holds
    /// it, and refused for a shredded user until a new key exists (their inbound
    /// messages could not be stored). Audited in the same transaction.
    pub async fn assign_number(
        &self,
        actor: &str,
        number: &str,
        user_id: &str,
    ) -> Result<phone_number::Model, Error> {
        let number = parse_own_number("number", number)?;
        let user_id = parse_user_id(user_id)?;
        let txn = self.store().begin_write().await?;
        if store::user_keys::latest(&txn, user_id)
            .await?
            .is_some_and(|k| k.wrapped_dek.is_none())
        {
            return Err(Error::FailedPrecondition(
                "user_id: the user's data keys were destroyed; create a new key with RotateUserKey first"
                    .into(),
            ));
        }
        let row = match store::numbers::assign_any(&txn, &number, user_id).await? {
            Assigned::Ok(row) => row,
            Assigned::HeldByOther => {
                return Err(Error::FailedPrecondition(
                    "number: already assigned to another user; release it first".into(),
                ));
            }
        };
        store::audit::insert(
            &txn,
            NewAuditEvent {
                actor,
                action: actions::ASSIGN_NUMBER,
                target_user_id: Some(user_id),
                target: Some(&number),
                details: json!({}),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Releases a number. Its messages still queued or retrying will not go out from
    /// it: they are made due now, and the dispatcher fails each with a clear error
    /// (it re-checks ownership before every send). Audited in the same transaction.
    pub async fn release_number(
        &self,
        actor: &str,
        number: &str,
    ) -> Result<phone_number::Model, Error> {
        let number = parse_own_number("number", number)?;
        let txn = self.store().begin_write().await?;
        let released = store::numbers::release_any(&txn, &number)
            .await?
            .ok_or(Error::NotFound("number"))?;
        let queued = store::outbox::hurry_sender(
            &txn,
            &released.user_id,
            &number,
            MessageStatus::Scheduled.as_str(),
        )
        .await?;
        store::audit::insert(
            &txn,
            NewAuditEvent {
                actor,
                action: actions::RELEASE_NUMBER,
                target_user_id: Some(&released.user_id),
                target: Some(&number),
                details: json!({ "queued_messages": queued }),
            },
        )
        .await?;
        txn.commit().await?;
        if queued > 0 {
            tracing::info!(
                queued,
                "released number had queued messages; they will fail"
            );
        }
        Ok(released)
    }

    /// Inbound messages for numbers nobody owns (operators).
    pub async fn list_unroutable(
        &self,
        limit: u64,
    ) -> Result<Vec<crate::store::entities::unroutable::Model>, Error> {
        Ok(store::ingest::unroutable_any(self.store().conn(), limit).await?)
    }

    pub async fn list_numbers(
        &self,
        user_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<NumberPage, Error> {
        let user = if user_id.is_empty() {
            None
        } else {
            Some(parse_user_id(user_id)?)
        };
        let page = PageRequest::parse(
            Scope::new(PageKind::Numbers, &[user_id]),
            page_size,
            page_token,
            NUMBERS_DEFAULT_PAGE,
            NUMBERS_MAX_PAGE,
        )?;
        let after = page.after.as_ref().map(|c| c.id.as_str());
        let rows = store::numbers::list_any(self.store().conn(), user, after, page.fetch()).await?;
        let (numbers, next_page_token) = page.split(rows, |n| Cursor {
            at: n.created_at,
            id: n.e164.clone(),
        });
        Ok(NumberPage {
            numbers,
            next_page_token,
        })
    }
}
