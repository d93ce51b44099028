//! Scheduled messages coming due. Their outbox job was written with the message and
//! due at `send_at` (the claim only takes due jobs), so the dispatcher picks them up
//! like any retry; this turns SCHEDULED into QUEUED first, and from there the send is
//! the ordinary one (paced, validity counted from `send_at`).

use super::Outbox;
use crate::{
    domain::MessageStatus,
    error::Error,
    store::{self, messages::StatusChange},
};

impl Outbox {
    /// SCHEDULED → QUEUED, committed with its event; or CANCELED (job removed) when the
    /// user blocked the recipient meanwhile. Returns whether to go on and send it;
    /// false also when CancelScheduled or DeleteMessage got there first.
    pub async fn release_scheduled(&self, user_id: &str, id: &str) -> Result<bool, Error> {
        let records = self.records();
        let db = records.store().conn();
        let Some(row) = store::messages::find(db, user_id, id).await? else {
            return Ok(false);
        };
        let blocked = store::contacts::find(db, user_id, &row.contact_id)
            .await?
            .is_some_and(|c| c.blocked_at.is_some());
        let change = if blocked {
            StatusChange {
                status: Some(MessageStatus::Canceled.as_str().into()),
                error_message: Some("recipient blocked before the message was due".into()),
                ..Default::default()
            }
        } else {
            StatusChange {
                status: Some(MessageStatus::Queued.as_str().into()),
                ..Default::default()
            }
        };
        let scheduled = MessageStatus::Scheduled;
        let changed = records
            .change_status(user_id, id, scheduled, change, blocked)
            .await?;
        if changed {
            tracing::info!(message_id = %id, canceled = blocked, "scheduled message due");
        }
        Ok(changed && !blocked)
    }
}
