//! What free text from outside (Twilio's error messages, HTTP client errors) may keep
//! before it is stored in an error column or logged: phone numbers masked to their
//! last 4 digits, URLs cut to their scheme and host. Twilio echoes the number it
//! refused ("The 'To' number +33671234567 is not a valid phone number.") and reqwest
//! puts the full request URL (a media path, a `To=` query) into its errors; either
//! would put in clear at rest what the store keeps sealed.

/// What a secret prints as (configuration dumps, settings' `Debug`).
pub const REDACTED: &str = "[REDACTED]";

/// Fewest digits a run must have to count as a phone number (E.164 numbers have 7 to
/// 15; Twilio error codes have 5 and stay readable).
const MIN_NUMBER_DIGITS: usize = 7;
/// Digits a masked number keeps, as [`crate::phone::Masked`] does.
const KEPT_DIGITS: usize = 4;

/// `text` with numbers masked and URLs cut: what every provider or fetch error text
/// goes through before it is stored or logged.
pub fn external_text(text: &str) -> String {
    numbers(&urls(text))
}

/// Masks every run of at least 7 digits (separators ` `, `-`, `.`, `(`, `)` may join
/// groups, a `+` may lead) to all but its last 4 digits: `+*******0100`. Runs inside
/// other tokens (an id with a long digit run) are masked too: a false positive costs
/// readability, a false negative a number in clear.
pub fn numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_digit() || (c == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            out.push(c);
            i += 1;
            continue;
        }
        // The run: digits and separators, ending on its last digit.
        let start = i;
        let mut end = i + 1;
        let mut last_digit = if c.is_ascii_digit() { i } else { i + 1 };
        while end < chars.len() && (chars[end].is_ascii_digit() || is_separator(chars[end])) {
            if chars[end].is_ascii_digit() {
                last_digit = end;
            }
            end += 1;
        }
        let run = &chars[start..=last_digit];
        let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
        if digits >= MIN_NUMBER_DIGITS {
            let mut seen = 0;
            for &d in run {
                if d.is_ascii_digit() {
                    seen += 1;
                    out.push(if seen > digits - KEPT_DIGITS { d } else { '*' });
                } else {
                    out.push(d);
                }
            }
        } else {
            out.extend(run);
        }
        i = last_digit + 1;
    }
    out
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

/// Cuts every `http://` or `https://` URL to its scheme and host (`https://api.twilio.com/…`):
/// paths and queries name media and carry numbers; credentials before an `@` go too.
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let scheme_len = after.find("://").map_or(0, |p| p + 3);
        let url_end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '`'))
            .unwrap_or(after.len());
        let url = &after[..url_end];
        let authority_end = url[scheme_len..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |p| p + scheme_len);
        let authority = &url[scheme_len..authority_end];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        out.push_str(&url[..scheme_len]);
        out.push_str(host);
        if authority_end < url.len() || host.len() < authority.len() {
            out.push_str("/…");
        }
        rest = &after[url_end..];
    }
    out.push_str(rest);
    out
}

fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn twilio_messages_lose_their_numbers() {
        assert_eq!(
            external_text("The 'To' number +33671234567 is not a valid phone number."),
            "The 'To' number +*******4567 is not a valid phone number."
        );
        assert_eq!(
            numbers("'To' number (415) 555-0100 is not a valid mobile number"),
            "'To' number (***) ***-0100 is not a valid mobile number"
        );
        assert_eq!(numbers("code 21211, status 400"), "code 21211, status 400");
        assert_eq!(
            numbers("gave up after 12 attempts"),
            "gave up after 12 attempts"
        );
    }

    #[test]
    fn urls_keep_only_scheme_and_host() {
        assert_eq!(
            urls("error sending request for url (https://media.example.com/private/cat.png?x=1)"),
            "error sending request for url (https://media.example.com/…)"
        );
        assert_eq!(
            urls("GET http://user:pass@127.0.0.1:8080/a done"),
            "GET http://127.0.0.1:8080/… done"
        );
        assert_eq!(
            urls("see https://api.twilio.com"),
            "see https://api.twilio.com"
        );
        assert_eq!(
            external_text("https://api.twilio.com/2010-04-01/Messages.json?To=%2B14155550100"),
            "https://api.twilio.com/…"
        );
    }

    proptest! {
        #[test]
        fn no_number_survives(
            prefix in "[a-zA-Z ':,]{0,20}",
            n in "\\+?[1-9][0-9]{6,14}",
            suffix in "[a-zA-Z ':,.]{0,20}",
        ) {
            let text = format!("{prefix}{n}{suffix}");
            let masked = external_text(&text);
            let digits = n.trim_start_matches('+');
            prop_assert!(!masked.contains(digits), "{masked}");
            prop_assert!(masked.contains(&digits[digits.len() - 4..]));
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = external_text(&s);
        }
    }
}
