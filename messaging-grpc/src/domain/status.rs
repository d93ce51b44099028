//! Message status and direction as stored (lower-case strings).

use crate::{crypto::CryptoError, error::Error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => crate::store::messages::OUTBOUND,
            Self::Inbound => crate::store::messages::INBOUND,
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            crate::store::messages::OUTBOUND => Ok(Self::Outbound),
            crate::store::messages::INBOUND => Ok(Self::Inbound),
            _ => Err(CryptoError::Malformed("unknown direction in store").into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Received,
    /// Sent with `send_at`: waiting for its time, then QUEUED.
    Scheduled,
    /// A scheduled message that will never be sent (canceled, or its recipient blocked).
    Canceled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Received => "received",
            Self::Scheduled => "scheduled",
            Self::Canceled => "canceled",
        }
    }

    /// Maps every status Twilio documents for a message (its `message_enum_status`).
    /// `None` for a value Twilio may add later: callers keep such callbacks aside.
    pub fn from_twilio(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" | "scheduled" | "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            // `read` (WhatsApp) comes after delivered and says nothing more for SMS.
            "delivered" | "read" => Self::Delivered,
            // Not every part arrived: the recipient does not have the whole message.
            "partially_delivered" | "undelivered" => Self::Undelivered,
            "failed" | "canceled" => Self::Failed,
            "receiving" | "received" => Self::Received,
            _ => return None,
        })
    }

    /// Position in the lifecycle: queued < sending < sent < delivered, with the
    /// terminal states (delivered, undelivered, failed, received) all at the top, so
    /// nothing moves a message out of a terminal state and nothing moves it back.
    pub fn rank(self) -> u8 {
        match self {
            // Before the provider's lifecycle: only the dispatcher and CancelScheduled
            // move a message out of it, never a provider report.
            Self::Scheduled => 0,
            Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent => 3,
            Self::Delivered
            | Self::Undelivered
            | Self::Failed
            | Self::Received
            | Self::Canceled => 4,
        }
    }

    /// Whether `next` may replace `self` (callbacks arrive in any order).
    pub fn may_become(self, next: Self) -> bool {
        next.rank() > self.rank()
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" => Self::Failed,
            "received" => Self::Received,
            "scheduled" => Self::Scheduled,
            "canceled" => Self::Canceled,
            _ => return Err(CryptoError::Malformed("unknown status in store").into()),
        })
    }
}

/// Prefix of the error of a message failed because its send outcome could not be
/// confirmed; operators find such messages by it, and a later word from the provider
/// (a status callback carrying our id) corrects it.
pub const OUTCOME_UNKNOWN: &str = "outcome unknown";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_only_moves_forward() {
        use MessageStatus::*;
        assert!(
            Queued.may_become(Sending) && Sending.may_become(Sent) && Sent.may_become(Delivered)
        );
        assert!(Sent.may_become(Undelivered) && Queued.may_become(Failed));
        assert!(
            !Delivered.may_become(Sent),
            "an older callback changes nothing"
        );
        assert!(!Sent.may_become(Sent));
        for terminal in [Delivered, Undelivered, Failed] {
            for other in [Queued, Sending, Sent, Delivered, Undelivered, Failed] {
                assert!(!terminal.may_become(other), "{terminal:?} -> {other:?}");
            }
        }
    }

    #[test]
    fn strings_round_trip() {
        use MessageStatus::*;
        for s in [
            Queued,
            Sending,
            Sent,
            Delivered,
            Undelivered,
            Failed,
            Received,
            Scheduled,
            Canceled,
        ] {
            assert_eq!(MessageStatus::parse(s.as_str()).unwrap(), s);
        }
        for twilio in [
            "queued",
            "sending",
            "sent",
            "failed",
            "delivered",
            "undelivered",
            "receiving",
            "received",
            "accepted",
            "scheduled",
            "read",
            "partially_delivered",
            "canceled",
        ] {
            assert!(
                MessageStatus::from_twilio(twilio).is_some(),
                "{twilio} unmapped"
            );
        }
        assert_eq!(MessageStatus::from_twilio("brand_new"), None);
        for d in [Direction::Outbound, Direction::Inbound] {
            assert_eq!(Direction::parse(d.as_str()).unwrap(), d);
        }
    }
}
