//! Opt-out / opt-in keywords, as Twilio's default handling recognises them: the whole
//! body is the keyword, any case, surrounding spaces and punctuation ignored.

/// What an inbound body asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
}

const OPT_OUT: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: &[&str] = &["START", "UNSTOP", "YES"];

pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
    if word.len() > 11 {
        return None;
    }
    let word = word.to_ascii_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_whole_body_keywords_only() {
        for b in [
            "STOP",
            "stop",
            " Stop. ",
            "unsubscribe",
            "CANCEL",
            "end",
            "Quit!",
            "STOPALL",
        ] {
            assert_eq!(keyword(b), Some(Keyword::OptOut), "{b:?}");
        }
        for b in ["START", "unstop", "yes"] {
            assert_eq!(keyword(b), Some(Keyword::OptIn), "{b:?}");
        }
        for b in ["please stop", "STOP IT", "", "stopp", "the end", "ＳＴＯＰ"] {
            assert_eq!(keyword(b), None, "{b:?}");
        }
    }
}
