//! A webhook's parameters as Twilio would send them, and nothing else.
//!
//! Twilio's signature is an HMAC over the URL followed by every name and value joined
//! with no separator, so the boundaries between parameters are not signed: a valid
//! form can be re-split into another valid-looking one (`…MessageSid=SMx&NumMedia=0`
//! becomes `…MessageSid=SMxNumMedia0`, same signature). What keeps a re-split form
//! from being taken for another message is refusing anything Twilio never sends:
//! a repeated name, a SID that is not Twilio's exact format, `SmsSid`/`SmsMessageSid`
//! that differ from `MessageSid`, a status outside Twilio's set. Each refusal is a 400
//! naming the parameter; it is only ever reached after the signature checked out.

use std::collections::HashMap;

use hyper::StatusCode;

use crate::error::GatewayError;

/// The statuses Twilio reports for a message (its Message resource's `status`).
pub(crate) const TWILIO_STATUSES: &[&str] = &[
    "accepted",
    "scheduled",
    "canceled",
    "queued",
    "sending",
    "sent",
    "failed",
    "delivered",
    "undelivered",
    "receiving",
    "received",
    "read",
    "partially_delivered",
];

/// A form's parameters by name, each sent once.
pub(crate) struct Params<'a> {
    by_name: HashMap<&'a str, &'a str>,
}

impl<'a> Params<'a> {
    /// Refuses a form that names a parameter twice (Twilio never does).
    pub(crate) fn new(form: &'a [(String, String)]) -> Result<Self, GatewayError> {
        let mut by_name = HashMap::with_capacity(form.len());
        for (name, value) in form {
            if by_name.insert(name.as_str(), value.as_str()).is_some() {
                return Err(bad(name, "is repeated; Twilio sends each parameter once"));
            }
        }
        Ok(Self { by_name })
    }

    /// The value of `name`, if sent.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.by_name.get(name).copied()
    }

    /// The names sent.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.by_name.keys().copied()
    }

    /// The non-empty value of `name`; missing or empty: 400.
    pub(crate) fn required(&self, name: &str) -> Result<&'a str, GatewayError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing(name))
    }

    /// `MessageSid`, in Twilio's format (`SM`/`MM` + 32 hex digits), with `SmsSid` and
    /// `SmsMessageSid` (older names Twilio still sends) equal to it when present.
    pub(crate) fn message_sid(&self) -> Result<&'a str, GatewayError> {
        let sid = self.required("MessageSid")?;
        if !is_sid(sid, &["SM", "MM"]) {
            return Err(bad(
                "MessageSid",
                "must be SM or MM followed by 32 hexadecimal digits",
            ));
        }
        for alias in ["SmsSid", "SmsMessageSid"] {
            if self.get(alias).is_some_and(|v| v != sid) {
                return Err(bad(alias, "differs from MessageSid"));
            }
        }
        Ok(sid)
    }

    /// `AccountSid`, in Twilio's format (`AC` + 32 hex digits).
    pub(crate) fn account_sid(&self) -> Result<&'a str, GatewayError> {
        let sid = self.required("AccountSid")?;
        if !is_sid(sid, &["AC"]) {
            return Err(bad(
                "AccountSid",
                "must be AC followed by 32 hexadecimal digits",
            ));
        }
        Ok(sid)
    }

    /// `MessageStatus` (or, from older callbacks, `SmsStatus` alone), one of Twilio's,
    /// with `SmsStatus` equal to it when both are sent.
    pub(crate) fn status(&self) -> Result<&'a str, GatewayError> {
        let (name, status) = match self.get("MessageStatus") {
            Some(_) => ("MessageStatus", self.required("MessageStatus")?),
            None if self.get("SmsStatus").is_some() => ("SmsStatus", self.required("SmsStatus")?),
            None => return Err(missing("MessageStatus")),
        };
        if !TWILIO_STATUSES.contains(&status) {
            return Err(bad(
                name,
                format!(
                    "is not one of Twilio's statuses ({})",
                    TWILIO_STATUSES.join(", ")
                ),
            ));
        }
        if self.get("SmsStatus").is_some_and(|v| v != status) {
            return Err(bad("SmsStatus", "differs from MessageStatus"));
        }
        Ok(status)
    }

    /// An optional whole number of at most `max`; anything else: 400 naming it.
    pub(crate) fn number(&self, name: &str, max: u64) -> Result<Option<u64>, GatewayError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        raw.parse::<u64>()
            .ok()
            .filter(|n| *n <= max && !raw.starts_with('+'))
            .map(Some)
            .ok_or_else(|| bad(name, format!("must be a whole number from 0 to {max}")))
    }
}

/// `value` is one of `prefixes` followed by exactly 32 hexadecimal digits.
pub(crate) fn is_sid(value: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        value
            .strip_prefix(p)
            .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// A required parameter Twilio always sends is missing: 400.
fn missing(name: &str) -> GatewayError {
    GatewayError::Refused {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_argument",
        message: format!("missing parameter {name}"),
        field: Some(name.to_owned()),
    }
}

/// A 400 naming the parameter `name`.
pub(crate) fn bad(name: &str, why: impl std::fmt::Display) -> GatewayError {
    GatewayError::Refused {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_argument",
        message: format!("{name}: {why}"),
        field: Some(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_formats() {
        let hex = "0123456789abcdef0123456789ABCDEF";
        assert!(is_sid(&format!("SM{hex}"), &["SM", "MM"]));
        assert!(is_sid(&format!("MM{hex}"), &["SM", "MM"]));
        assert!(!is_sid(&format!("AC{hex}"), &["SM", "MM"]));
        assert!(!is_sid(&format!("SM{hex}0"), &["SM"]), "too long");
        assert!(!is_sid("SM0123", &["SM"]), "too short");
        assert!(
            !is_sid(&format!("SM{}", "g".repeat(32)), &["SM"]),
            "not hex"
        );
        assert!(!is_sid(&format!("SM{hex}NumMedia0"), &["SM"]), "re-split");
    }

    #[test]
    fn numbers() {
        let form = vec![
            ("A".to_owned(), "3".to_owned()),
            ("B".to_owned(), "+3".to_owned()),
            ("C".to_owned(), "11".to_owned()),
        ];
        let p = Params::new(&form).unwrap();
        assert_eq!(p.number("A", 10).unwrap(), Some(3));
        assert_eq!(p.number("Z", 10).unwrap(), None);
        assert!(p.number("B", 10).is_err());
        assert!(p.number("C", 10).is_err());
    }
}
