//! How many SMS segments a body takes: GSM-7 when every character is in the GSM 03.38
//! alphabet (160 septets alone, 153 per part when concatenated; extension characters
//! take two septets and are never split), UCS-2 otherwise (70 code units alone, 67 per
//! part; a surrogate pair is never split).

/// GSM 03.38 basic character set (without ESC), as published; the tests check the
/// fast lookup below against it.
#[cfg(test)]
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The non-ASCII part of the basic set (the ASCII part is matched directly).
const GSM7_BASIC_NON_ASCII: &str = "¤£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà";
/// GSM 03.38 extension table: each costs ESC + the character.
#[cfg(test)]
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentCount {
    pub encoding: Encoding,
    pub segments: u32,
}

pub fn count_segments(body: &str) -> SegmentCount {
    let costs: Option<Vec<usize>> = body.chars().map(gsm7_cost).collect();
    match costs {
        Some(costs) => SegmentCount {
            encoding: Encoding::Gsm7,
            segments: pack(&costs, 160, 153),
        },
        None => {
            let costs: Vec<usize> = body.chars().map(char::len_utf16).collect();
            SegmentCount {
                encoding: Encoding::Ucs2,
                segments: pack(&costs, 70, 67),
            }
        }
    }
}

/// Septets a character takes in GSM-7, `None` if it is not in the alphabet. A direct
/// match for ASCII (the common case) instead of scanning the alphabet per character.
fn gsm7_cost(c: char) -> Option<usize> {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        ' ' | '\n' | '\r' | '!' | '"' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '*' | '+'
        | ',' | '-' | '.' | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '_' => Some(1),
        '\u{000C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        c if c.is_ascii() => None,
        c => GSM7_BASIC_NON_ASCII.contains(c).then_some(1),
    }
}

/// Units fit in one segment of `single`, or are split into parts of `part` units
/// without splitting any indivisible item.
fn pack(costs: &[usize], single: usize, part: usize) -> u32 {
    let total: usize = costs.iter().sum();
    if total <= single {
        return 1;
    }
    let (mut segments, mut used) = (1u32, 0usize);
    for &cost in costs {
        if used + cost > part {
            segments += 1;
            used = 0;
        }
        used += cost;
    }
    segments
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn seg(s: &str) -> (Encoding, u32) {
        let c = count_segments(s);
        (c.encoding, c.segments)
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(seg(""), (Encoding::Gsm7, 1));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(seg("Hello from CommPro! @£$ äöü"), (Encoding::Gsm7, 1));
    }

    #[test]
    fn extension_chars_cost_two_and_do_not_split() {
        assert_eq!(seg(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(seg(&"€".repeat(81)), (Encoding::Gsm7, 2));
        // 152 septets then a 2-septet char: it moves to the next part.
        let s = format!("{}{}{}", "a".repeat(152), "{", "a".repeat(10));
        assert_eq!(seg(&s), (Encoding::Gsm7, 2));
        let s = format!("{}{}{}", "a".repeat(152), "{", "a".repeat(152));
        assert_eq!(seg(&s), (Encoding::Gsm7, 3));
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(seg(&"é✓".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(seg(&"✓".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(seg(&"✓".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(seg(&"✓".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(seg(&"✓".repeat(135)), (Encoding::Ucs2, 3));
        // Emoji are surrogate pairs: 35 fit in one segment, 36 do not.
        assert_eq!(seg(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(seg(&"😀".repeat(36)), (Encoding::Ucs2, 2));
    }

    /// The reference definition: the alphabet tables as published.
    fn reference_cost(c: char) -> Option<usize> {
        if GSM7_BASIC.contains(c) {
            Some(1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(2)
        } else {
            None
        }
    }

    #[test]
    fn fast_lookup_matches_the_alphabet_for_every_bmp_char() {
        for c in (0u32..0x1_0000).filter_map(char::from_u32) {
            assert_eq!(
                gsm7_cost(c),
                reference_cost(c),
                "{c:?} (U+{:04X})",
                c as u32
            );
        }
    }

    proptest! {
        #[test]
        fn segments_bounded_by_length(s in "\\PC{0,400}") {
            let c = count_segments(&s);
            let units: usize = s.chars().map(|c| c.len_utf16()).sum();
            prop_assert!(c.segments >= 1);
            // Never more parts than one per 33 UTF-16 units (worst case: surrogate pairs).
            prop_assert!((c.segments as usize) <= 1 + units * 2 / 67 + 1);
        }
    }
}
