//! Phone numbers in what the gateway logs. A request path can carry one
//! (`/api/blocked-numbers/%2B14155550100`), and request lines are logged at INFO: every
//! run of digits long enough to be a number or part of one is masked to its last
//! four digits, whether written plainly, after `+` or after `%2B`.

/// Runs of at least this many digits are masked (short codes are 3-8 digits; 5 keeps
/// small counters and versions such as `v1` readable).
const MASK_FROM: usize = 5;
/// Digits of a number shown.
const SHOWN: usize = 4;

/// `text` with every run of [`MASK_FROM`] or more ASCII digits masked to `*` but for
/// its last four.
pub(crate) fn mask_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&text[start..i]);
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let run = &text[start..i];
        // `%2B14155550100`: the `2` of the escape is not part of the number.
        if run.len() >= MASK_FROM {
            out.extend(std::iter::repeat_n('*', run.len() - SHOWN));
            out.push_str(&run[run.len() - SHOWN..]);
        } else {
            out.push_str(run);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_paths_are_masked() {
        assert_eq!(
            mask_numbers("/api/blocked-numbers/%2B14155550100"),
            "/api/blocked-numbers/%2B*******0100"
        );
        assert_eq!(
            mask_numbers("/api/blocked-numbers/+33123456789"),
            "/api/blocked-numbers/+*******6789"
        );
        assert_eq!(mask_numbers("/api/x/89821"), "/api/x/*9821");
        assert_eq!(mask_numbers("/api/messages/send"), "/api/messages/send");
        assert_eq!(mask_numbers("/api/v1/1234"), "/api/v1/1234");
        // An id with long digit runs is masked too: better a shorter id than a number.
        let id = "/api/messages/0193a4b2-1234-7abc-8def-0123456789ab/read";
        assert!(!mask_numbers(id).contains("0123456789"));
    }

    proptest::proptest! {
        #[test]
        fn no_number_survives(n in "[1-9][0-9]{6,14}", before in "[a-z/%+]{0,8}", after in "[a-z/]{0,8}") {
            // `before` and `after` hold no digits, so the whole masked text is known: only
            // the last four digits survive. (Asserting that the leading digits do not occur
            // anywhere was wrong: `6930693` masks to `***0693`, which contains `693`.)
            let masked = mask_numbers(&format!("{before}{n}{after}"));
            let stars = "*".repeat(n.len() - SHOWN);
            let expected = format!("{before}{stars}{}{after}", &n[n.len() - SHOWN..]);
            proptest::prop_assert_eq!(masked, expected);
        }
    }
}
