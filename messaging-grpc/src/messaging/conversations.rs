//! ListConversations and GetConversation.

use chrono::{DateTime, Utc};

use super::Messaging;
use crate::{
    domain::{MessageView, PageRequest, require},
    error::Error,
    store::{
        self,
        page_token::{Cursor, PageKind, Scope},
        pages::{ConversationRow, Which},
    },
};

pub const CONVERSATIONS_DEFAULT_PAGE: u64 = 20;
pub const CONVERSATIONS_MAX_PAGE: u64 = 100;
pub const MESSAGES_DEFAULT_PAGE: u64 = 50;
pub const MESSAGES_MAX_PAGE: u64 = 200;

/// One row of ListConversations.
pub struct ConversationSummary {
    pub contact_id: String,
    pub contact_number: String,
    pub owner_number: String,
    pub last_message: MessageView,
    pub unread_count: u64,
    pub updated_at: DateTime<Utc>,
    pub archived: bool,
    /// Muted now (an expired mute is not).
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
    pub contact_name: Option<String>,
}

pub struct ConversationPage {
    pub conversations: Vec<ConversationSummary>,
    pub next_page_token: String,
}

pub struct MessagePage {
    pub contact_id: String,
    pub contact_number: String,
    pub contact_name: Option<String>,
    pub messages: Vec<MessageView>,
    pub next_page_token: String,
}

impl Messaging {
    /// The caller's conversations, most recently active first: one range scan of the
    /// conversations index joined with each row's last message and contact (one query). `archived` lists the
    /// archive instead of the inbox.
    pub async fn list_conversations(
        &self,
        user_id: &str,
        page_size: u32,
        page_token: &str,
        archived: bool,
    ) -> Result<ConversationPage, Error> {
        let listing = if archived { "archive" } else { "inbox" };
        let page = PageRequest::parse(
            Scope::new(PageKind::Conversations, &[user_id, listing]),
            page_size,
            page_token,
            CONVERSATIONS_DEFAULT_PAGE,
            CONVERSATIONS_MAX_PAGE,
        )?;
        let which = Which::Listing {
            archived,
            after: page.after.as_ref(),
            limit: page.fetch(),
        };
        let rows = store::pages::conversations(self.records.store(), user_id, which).await?;
        let (rows, next_page_token) = page.split(rows, |c| Cursor {
            at: c.conversation.last_message_at,
            id: c.conversation.contact_id.clone(),
        });
        Ok(ConversationPage {
            conversations: self.summaries(user_id, rows).await?,
            next_page_token,
        })
    }

    /// One conversation as ListConversations shows it; NOT_FOUND without one.
    pub async fn conversation(
        &self,
        user_id: &str,
        contact_id: &str,
    ) -> Result<ConversationSummary, Error> {
        let rows =
            store::pages::conversations(self.records.store(), user_id, Which::One { contact_id })
                .await?;
        self.summaries(user_id, rows)
            .await?
            .pop()
            .ok_or(Error::NotFound("contact_id"))
    }

    /// Conversation rows with their last message (decrypted), contact and name.
    async fn summaries(
        &self,
        user_id: &str,
        rows: Vec<ConversationRow>,
    ) -> Result<Vec<ConversationSummary>, Error> {
        let mut convs = Vec::with_capacity(rows.len());
        let mut last = Vec::with_capacity(rows.len());
        for row in rows {
            convs.push((row.conversation, row.contact));
            last.push(row.last_message);
        }
        // Every last message together, so their media come in one batched lookup
        // (a page costs the same few queries whatever its size).
        let views = self.records.views(user_id, last).await?;
        let now = store::now();
        let mut conversations = Vec::with_capacity(convs.len());
        for ((conv, contact), mut last_message) in convs.into_iter().zip(views) {
            let contact_name = self.records.name_of(&contact).await?;
            last_message.contact_name = contact_name.clone();
            let muted = store::conversations::muted_at(&conv, now);
            conversations.push(ConversationSummary {
                contact_id: conv.contact_id,
                contact_number: self
                    .records
                    .contact_number(&contact)
                    .await?
                    .unwrap_or_default(),
                owner_number: conv.owner_e164,
                last_message,
                unread_count: conv.unread_count.max(0) as u64,
                updated_at: conv.updated_at,
                archived: conv.archived,
                muted,
                muted_until: conv.muted_until.filter(|_| muted),
                contact_name,
            });
        }
        Ok(conversations)
    }

    /// One conversation's messages, newest first, decrypted. Another user's contact id
    /// is NOT_FOUND, exactly like an unknown one.
    pub async fn get_conversation(
        &self,
        user_id: &str,
        contact_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<MessagePage, Error> {
        let page = PageRequest::parse(
            Scope::new(PageKind::Messages, &[user_id, contact_id]),
            page_size,
            page_token,
            MESSAGES_DEFAULT_PAGE,
            MESSAGES_MAX_PAGE,
        )?;
        let contact_id = require("contact_id", contact_id)?;
        let (contact, rows) = store::pages::conversation_messages(
            self.records.store(),
            user_id,
            contact_id,
            page.after.as_ref(),
            page.fetch(),
        )
        .await?
        .ok_or(Error::NotFound("contact_id"))?;
        let (rows, next_page_token) = page.split(rows, |m| Cursor {
            at: m.created_at,
            id: m.id.clone(),
        });
        let contact_name = self.records.name_of(&contact).await?;
        let contact_number = self.records.contact_number(&contact).await?;
        let mut messages = self.records.views(user_id, rows).await?;
        for m in &mut messages {
            m.contact_name = contact_name.clone();
        }
        Ok(MessagePage {
            contact_id: contact.id,
            // Empty once the user's keys were destroyed.
            contact_number: contact_number.unwrap_or_default(),
            contact_name,
            messages,
            next_page_token,
        })
    }
}
