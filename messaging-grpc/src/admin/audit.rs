//! The audit log: what operators did, read back page by page.

use super::Admin;
use crate::{
    domain::PageRequest,
    error::Error,
    store::{
        self,
        entities::audit_event,
        page_token::{Cursor, PageKind, Scope},
    },
};

/// `audit_events.action` values.
pub mod actions {
    pub const ASSIGN_NUMBER: &str = "assign_number";
    pub const RELEASE_NUMBER: &str = "release_number";
    pub const ROTATE_MASTER_KEY: &str = "rotate_master_key";
    pub const ROTATE_USER_KEY: &str = "rotate_user_key";
    pub const SHRED_USER: &str = "shred_user";
    pub const EXPORT_USER: &str = "export_user";
}

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

pub struct AuditPage {
    pub events: Vec<audit_event::Model>,
    pub next_page_token: String,
}

impl Admin {
    /// The log, newest first, optionally of one action and/or target user.
    pub async fn list_audit_events(
        &self,
        action: &str,
        target_user_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<AuditPage, Error> {
        let page = PageRequest::parse(
            Scope::new(PageKind::AuditEvents, &[action, target_user_id]),
            page_size,
            page_token,
            DEFAULT_PAGE,
            MAX_PAGE,
        )?;
        let rows = store::audit::page_any(
            self.store().conn(),
            (!action.is_empty()).then_some(action),
            (!target_user_id.is_empty()).then_some(target_user_id),
            page.after.as_ref(),
            page.fetch(),
        )
        .await?;
        let (events, next_page_token) = page.split(rows, |e| Cursor {
            at: e.at,
            id: e.id.clone(),
        });
        Ok(AuditPage {
            events,
            next_page_token,
        })
    }
}
