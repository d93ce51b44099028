//! Archive and mute: per-conversation state the user sets. Each change is one
//! transaction with its event; setting what is already set changes nothing and
//! announces nothing (retries are harmless).

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use super::{ConversationSummary, Messaging};
use crate::{
    domain::{events, require},
    error::Error,
    store::{self, events::NewEvent},
};

impl Messaging {
    /// Archives (`true`) or unarchives a conversation. A new inbound message
    /// unarchives it too (domain/write.rs).
    #[tracing::instrument(skip_all, fields(user_id = %user_id, archived))]
    pub async fn set_archived(
        &self,
        user_id: &str,
        contact_id: &str,
        archived: bool,
    ) -> Result<ConversationSummary, Error> {
        let contact_id = require("contact_id", contact_id)?;
        let (user, contact) = (user_id.to_owned(), contact_id.to_owned());
        self.records
            .write_announced(user_id, move |txn| {
                Box::pin(archive_in(txn, user, contact, archived))
            })
            .await?;
        self.conversation(user_id, contact_id).await
    }

    /// Mutes a conversation until `until` (or until unmuted when `None`): its events
    /// then carry `muted`. Unread counts are not affected.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn mute(
        &self,
        user_id: &str,
        contact_id: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<ConversationSummary, Error> {
        let contact_id = require("contact_id", contact_id)?;
        let now = store::now();
        // The precision PostgreSQL keeps, so a repeated request reads as unchanged.
        let until = until.map(|t| chrono::SubsecRound::trunc_subsecs(t, 6));
        if until.is_some_and(|t| t <= now) {
            return Err(Error::invalid("until", "must be in the future"));
        }
        self.change_mute(user_id, contact_id, true, until).await
    }

    /// Unmutes a conversation.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn unmute(
        &self,
        user_id: &str,
        contact_id: &str,
    ) -> Result<ConversationSummary, Error> {
        let contact_id = require("contact_id", contact_id)?;
        self.change_mute(user_id, contact_id, false, None).await
    }

    async fn change_mute(
        &self,
        user_id: &str,
        contact_id: &str,
        muted: bool,
        until: Option<DateTime<Utc>>,
    ) -> Result<ConversationSummary, Error> {
        let (user, contact) = (user_id.to_owned(), contact_id.to_owned());
        self.records
            .write_announced(user_id, move |txn| {
                Box::pin(mute_in(txn, user, contact, muted, until))
            })
            .await?;
        self.conversation(user_id, contact_id).await
    }
}

/// SetArchived's statements: the cursor of its event, if anything changed.
async fn archive_in(
    txn: &DatabaseTransaction,
    user_id: String,
    contact_id: String,
    archived: bool,
) -> Result<Option<i64>, Error> {
    let (user_id, contact_id) = (user_id.as_str(), contact_id.as_str());
    if store::conversations::lock(txn, user_id, contact_id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("contact_id"));
    }
    if !store::conversations::set_archived(txn, user_id, contact_id, archived).await? {
        return Ok(None);
    }
    let kind = if archived {
        events::CONVERSATION_ARCHIVED
    } else {
        events::CONVERSATION_UNARCHIVED
    };
    let event = NewEvent {
        kind,
        contact_id: Some(contact_id),
        ..Default::default()
    };
    Ok(Some(events::append(txn, user_id, event).await?))
}

/// Mute's and Unmute's statements: the cursor of the event, if anything changed.
async fn mute_in(
    txn: &DatabaseTransaction,
    user_id: String,
    contact_id: String,
    muted: bool,
    until: Option<DateTime<Utc>>,
) -> Result<Option<i64>, Error> {
    let (user_id, contact_id) = (user_id.as_str(), contact_id.as_str());
    let Some(conv) = store::conversations::lock(txn, user_id, contact_id).await? else {
        return Err(Error::NotFound("contact_id"));
    };
    let now = store::now();
    let unchanged = if muted {
        store::conversations::muted_at(&conv, now) && conv.muted_until == until
    } else {
        !store::conversations::muted_at(&conv, now)
    };
    if unchanged {
        return Ok(None);
    }
    store::conversations::set_muted(txn, user_id, contact_id, muted, until).await?;
    let event = NewEvent {
        kind: if muted {
            events::CONVERSATION_MUTED
        } else {
            events::CONVERSATION_UNMUTED
        },
        contact_id: Some(contact_id),
        ..Default::default()
    };
    Ok(Some(events::append(txn, user_id, event).await?))
}
