//! Scheduled sends: the window `send_at` must fall in, and CancelScheduled. Storing a
//! scheduled message is SendSms/SendMms with `send_at` (send.rs); handing it to the
//! dispatcher when due is the outbox's (dispatch/scheduled.rs).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Messaging;
use crate::{
    domain::{MessageStatus, MessageView, require},
    error::Error,
    store::{self, messages::StatusChange},
};

/// How far ahead a message may be scheduled (README: SCHEDULE_MIN_LEAD_SECS,
/// SCHEDULE_MAX_LEAD_SECS).
#[derive(Clone, Copy, Debug)]
pub struct ScheduleSettings {
    pub min_lead: Duration,
    pub max_lead: Duration,
}

impl Default for ScheduleSettings {
    /// One minute to 35 days, as Twilio's own scheduling allows at most 35 days.
    fn default() -> Self {
        Self {
            min_lead: Duration::from_secs(60),
            max_lead: Duration::from_secs(35 * 24 * 3600),
        }
    }
}

impl ScheduleSettings {
    /// Refuses a `send_at` outside the window, naming the field.
    pub fn check(&self, send_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Error> {
        let ahead = send_at - now;
        let min = chrono::Duration::from_std(self.min_lead).unwrap_or(chrono::Duration::MAX);
        let max = chrono::Duration::from_std(self.max_lead).unwrap_or(chrono::Duration::MAX);
        if ahead < chrono::Duration::zero() {
            return Err(Error::invalid("send_at", "is in the past"));
        }
        if ahead < min {
            return Err(Error::invalid(
                "send_at",
                format!("must be at least {} s ahead", self.min_lead.as_secs()),
            ));
        }
        if ahead > max {
            return Err(Error::invalid(
                "send_at",
                format!(
                    "must be at most {} days ahead",
                    self.max_lead.as_secs().div_ceil(86_400)
                ),
            ));
        }
        Ok(())
    }
}

impl Messaging {
    /// Cancels a scheduled message that is not due yet: CANCELED, its outbox job gone,
    /// in one transaction. A retry returns the canceled message; a message already
    /// handed to the dispatcher (QUEUED or later) is FAILED_PRECONDITION.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn cancel_scheduled(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> Result<MessageView, Error> {
        let id = require("message_id", message_id)?;
        let db = self.records.store().conn();
        let row = store::messages::find(db, user_id, id)
            .await?
            .ok_or(Error::NotFound("message_id"))?;
        if MessageStatus::parse(&row.status)? == MessageStatus::Scheduled {
            let change = StatusChange {
                status: Some(MessageStatus::Canceled.as_str().to_owned()),
                ..Default::default()
            };
            let scheduled = MessageStatus::Scheduled;
            let records = &self.records;
            if records
                .change_status(user_id, id, scheduled, change, true)
                .await?
            {
                tracing::info!(message_id = %id, "scheduled message canceled");
            }
        }
        // Read again: the dispatcher may have taken it between our read and our write.
        let row = store::messages::find(db, user_id, id)
            .await?
            .ok_or(Error::NotFound("message_id"))?;
        match MessageStatus::parse(&row.status)? {
            MessageStatus::Canceled => {}
            _ if row.send_at.is_none() => {
                return Err(Error::FailedPrecondition(
                    "message_id: was not scheduled (no send_at); only a scheduled message can be canceled"
                        .into(),
                ));
            }
            other => {
                return Err(Error::FailedPrecondition(format!(
                    "message_id: is already being sent (status {}); it can no longer be canceled",
                    other.as_str()
                )));
            }
        }
        let mut view = [self.records.view(user_id, row).await?];
        self.records.name_views(user_id, &mut view).await?;
        let [view] = view;
        Ok(view)
    }
}
