//! Words as the search index sees them: case-, accent- and width-folded (Unicode
//! compatibility decomposition, combining marks dropped, lower case), split at
//! anything that is not a letter or a digit. Bodies (when indexed) and queries (when
//! searched) go through the same folding, so "Crème BRÛLÉE" finds "creme brulee".

use std::collections::HashSet;

use unicode_normalization::{UnicodeNormalization as _, char::is_combining_mark};

/// Longest word kept; longer ones are cut, the same way on both sides.
const MAX_WORD_CHARS: usize = 40;

/// The distinct folded words of `text`, in first-seen order.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut word = String::new();
    let mut len = 0;
    let mut flush = |word: &mut String, len: &mut usize| {
        if !word.is_empty() && seen.insert(word.clone()) {
            out.push(std::mem::take(word));
        }
        word.clear();
        *len = 0;
    };
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            if len < MAX_WORD_CHARS {
                word.extend(c.to_lowercase());
                len += 1;
            }
        } else {
            flush(&mut word, &mut len);
        }
    }
    flush(&mut word, &mut len);
    out
}

/// A query that looks like a phone number — `+` or not, then 7 to 15 digits with
/// spaces, dots, dashes or parentheses between them — as `(had a plus, digits)`.
pub fn phone_number(query: &str) -> Option<(bool, String)> {
    let query = query.trim();
    let (plus, rest) = match query.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, query),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (7..=15).contains(&digits.len()).then_some((plus, digits))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn folds_case_accents_and_width() {
        assert_eq!(
            words("Crème BRÛLÉE, s'il vous plaît!"),
            ["creme", "brulee", "s", "il", "vous", "plait"]
        );
        assert_eq!(words("ＦＵＬＬ width ﬁsh"), ["full", "width", "fish"]);
        assert_eq!(words("İstanbul ÇAY naïve"), ["istanbul", "cay", "naive"]);
        assert_eq!(
            words("call 415-555-0100 now"),
            ["call", "415", "555", "0100", "now"]
        );
        assert_eq!(words("again again AGAIN"), ["again"], "distinct");
        assert_eq!(words("  ...  "), Vec::<String>::new());
        assert_eq!(words(&"a".repeat(100))[0].len(), MAX_WORD_CHARS);
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(
            phone_number("+1 (415) 555-0100"),
            Some((true, "14155550100".into()))
        );
        assert_eq!(
            phone_number("415.555.0100"),
            Some((false, "4155550100".into()))
        );
        assert_eq!(phone_number("pizza"), None);
        assert_eq!(phone_number("12345"), None, "too short");
        assert_eq!(phone_number("call 4155550100"), None);
    }

    proptest! {
        #[test]
        fn folding_is_idempotent(s in "\\PC{0,80}") {
            for w in words(&s) {
                prop_assert_eq!(words(&w), vec![w.clone()]);
            }
        }
    }
}
