//! Phone numbers: E.164 validation and masking for logs.

use std::fmt;

use crate::error::Error;

/// Checks `value` is E.164: `+`, a non-zero first digit, 7 to 15 digits in all.
/// Nothing is normalised: callers must send the canonical form, so one number has
/// one spelling in the store.
pub fn parse_e164(field: &'static str, value: &str) -> Result<String, Error> {
    let digits = value.strip_prefix('+').ok_or_else(|| {
        Error::invalid(
            field,
            "must be an E.164 number starting with + (e.g. +14155550100)",
        )
    })?;
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(
            field,
            "must be an E.164 number: + then 7 to 15 digits, no spaces, not starting with 0",
        ))
    }
}

/// Checks one of our own Twilio numbers: E.164, or a short code (5 or 6 digits, as
/// US and most carriers' short codes are). Inbound messages to a short code carry it
/// as `To`, and it sends as `From`.
pub fn parse_own_number(field: &'static str, value: &str) -> Result<String, Error> {
    if value.starts_with('+') {
        return parse_e164(field, value);
    }
    if (5..=6).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(value.to_owned());
    }
    Err(Error::invalid(
        field,
        "must be an E.164 number (+ then 7 to 15 digits) or a 5-6 digit short code",
    ))
}

/// Checks an inbound sender: E.164, or what carriers also deliver from — a short code
/// (3–8 digits) or an alphanumeric sender id (1–11 letters, digits, spaces).
pub fn parse_sender(field: &'static str, value: &str) -> Result<String, Error> {
    if value.starts_with('+') {
        return parse_e164(field, value);
    }
    let short_code = (3..=8).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && value.bytes().any(|b| b.is_ascii_alphabetic());
    if short_code || alphanumeric {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(
            field,
            "must be an E.164 number, a short code or an alphanumeric sender id",
        ))
    }
}

/// Displays a phone number with all but its last 4 digits hidden: `+*******0100`.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        let keep = chars.len().saturating_sub(4);
        for (i, c) in chars.iter().enumerate() {
            let shown = if i >= keep || *c == '+' { *c } else { '*' };
            write!(f, "{shown}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn own_numbers_are_e164_or_short_codes() {
        for ok in ["+14155550100", "12345", "898211"] {
            assert_eq!(super::parse_own_number("to", ok).ok().as_deref(), Some(ok));
        }
        for bad in ["1234", "1234567", "+1", "12a45", "", "+014155550100"] {
            assert!(super::parse_own_number("to", bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn accepts_e164() {
        for ok in [
            "+14155550100",
            "+33123456789",
            "+6834002",
            "+123456789012345",
        ] {
            assert_eq!(parse_e164("to", ok).unwrap(), ok);
        }
    }

    #[test]
    fn refuses_non_e164_naming_the_field() {
        for bad in [
            "",
            "+",
            "14155550100",
            "+0155550100",
            "+1 415 555 0100",
            "+1415555010a",
            "+1234567890123456",
            "+12345",
            "++14155550100",
            "+١٢٣٤٥٦٧٨",
        ] {
            let err = parse_e164("from", bad).unwrap_err().to_string();
            assert!(err.starts_with("from: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(Masked("+14155550100").to_string(), "+*******0100");
        assert_eq!(Masked("123").to_string(), "123");
    }

    proptest! {
        #[test]
        fn mask_never_shows_more_than_four_digits(n in "\\+[1-9][0-9]{6,14}") {
            let masked = Masked(&n).to_string();
            prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 4);
            prop_assert!(masked.ends_with(&n[n.len() - 4..]));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = parse_e164("to", &s);
        }
    }
}
