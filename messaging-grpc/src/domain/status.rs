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
        }
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
            _ => return Err(CryptoError::Malformed("unknown status in store").into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(MessageStatus::parse(s.as_str()).unwrap(), s);
        }
        for d in [Direction::Outbound, Direction::Inbound] {
            assert_eq!(Direction::parse(d.as_str()).unwrap(), d);
        }
    }
}
