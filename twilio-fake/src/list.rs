//! `GET …/Messages.json` as Twilio's ListMessage does it (operation `ListMessage` in
//! `shared/twilio/twilio_api_v2010.json`):
//! - `To` / `From`: the recipient / sender, exactly.
//! - `DateSent` (that GMT day), `DateSent<` (on or before it), `DateSent>` (on or after
//!   it): compared with the GMT day of `date_sent`, so a message Twilio still holds
//!   queued (`date_sent: null`) matches none of them. `DateSent` also takes `<=day` and
//!   `>=day`. A time of day, if given, is dropped: Twilio filters by day.
//! - Order: newest `date_sent` first ("Results are sorted by the DateSent field, with
//!   the most recent messages appearing first", Twilio's Message resource docs). Twilio
//!   does not say where a null `date_sent` goes: here, first (the newest messages) or,
//!   with `FakeTwilio::list_unsent_last`, last; ties newest-created first.
//! - Paging: `PageSize` (default 50, at most 1000, over it Twilio's error 20007). Pages
//!   are relative, as Twilio's are: `next_page_uri` carries `PageToken=PA{sid}` (the last
//!   message of this page) and `previous_page_uri` `PageToken=PB{sid}` (the first); an
//!   unknown token is Twilio's error 21481. `Page` only numbers pages ("simply for
//!   client state"): without a `PageToken`, any `Page` reads the first page again.
//! - The answer's `uri`, `first_page_uri`, `next_page_uri` (null on the last page) and
//!   `previous_page_uri` (null on the first) are paths, like Twilio's, so a client that
//!   prefixes its base URL comes back to this fake; `page`, `page_size`, `start`, `end`
//!   as in Twilio's examples.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

use crate::FakeMessage;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// The filters a page URI carries on, in the order Twilio's example URIs have them.
const FILTERS: [&str; 5] = ["To", "From", "DateSent", "DateSent<", "DateSent>"];

/// A list request Twilio would refuse: 400 with this code and message.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub code: i64,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    On,
    OnOrBefore,
    OnOrAfter,
}

enum Token {
    /// `PA{sid}`: the messages after this one.
    After(String),
    /// `PB{sid}`: the messages before this one.
    Before(String),
}

pub(crate) struct Query {
    to: Option<String>,
    from: Option<String>,
    days: Vec<(Cmp, NaiveDate)>,
    page_size: usize,
    page: usize,
    token: Option<Token>,
    /// The filters as received, to carry on in page URIs.
    filters: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: &[(String, String)]) -> Result<Self, Invalid> {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let mut days = Vec::new();
        for (name, cmp) in [
            ("DateSent", Cmp::On),
            ("DateSent<", Cmp::OnOrBefore),
            ("DateSent>", Cmp::OnOrAfter),
        ] {
            let Some(raw) = get(name) else { continue };
            let (cmp, value) = match (cmp, raw) {
                (Cmp::On, v) if v.starts_with("<=") => (Cmp::OnOrBefore, &v[2..]),
                (Cmp::On, v) if v.starts_with(">=") => (Cmp::OnOrAfter, &v[2..]),
                (cmp, v) => (cmp, v),
            };
            let day = gmt_day(value).ok_or_else(|| Invalid {
                // Twilio documents no code for this; 20001 is its invalid-parameter one.
                code: 20001,
                message: format!("Invalid value for {name}: {raw}"),
            })?;
            days.push((cmp, day));
        }
        let page_size = match get("PageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > MAX_PAGE_SIZE => {
                    return Err(Invalid {
                        code: 20007,
                        message: "Page size too large. The maximum page size is 1000.".into(),
                    });
                }
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(Invalid {
                        code: 20001,
                        message: format!("Invalid value for PageSize: {v}"),
                    });
                }
            },
        };
        let page = match get("Page") {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| Invalid {
                code: 20001,
                message: format!("Invalid value for Page: {v}"),
            })?,
        };
        let token = match get("PageToken") {
            None => None,
            Some(t) => Some(if let Some(sid) = t.strip_prefix("PA") {
                Token::After(sid.to_owned())
            } else if let Some(sid) = t.strip_prefix("PB") {
                Token::Before(sid.to_owned())
            } else {
                return Err(invalid_token());
            }),
        };
        let filters = FILTERS
            .iter()
            .filter_map(|&name| get(name).map(|v| (name.to_owned(), v.to_owned())))
            .collect();
        Ok(Self {
            to: get("To").map(str::to_owned),
            from: get("From").map(str::to_owned),
            days,
            page_size,
            page,
            token,
            filters,
        })
    }

    fn matches(&self, m: &FakeMessage) -> bool {
        self.to.as_ref().is_none_or(|to| *to == m.to)
            && self.from.as_ref().is_none_or(|from| *from == m.from)
            && self.days.iter().all(|&(cmp, day)| {
                m.date_sent.is_some_and(|sent| {
                    let sent = sent.date_naive();
                    match cmp {
                        Cmp::On => sent == day,
                        Cmp::OnOrBefore => sent <= day,
                        Cmp::OnOrAfter => sent >= day,
                    }
                })
            })
    }

    /// A page URI with these filters.
    fn uri(&self, base: &str, page: usize, token: Option<String>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.filters {
            q.append_pair(k, v);
        }
        q.append_pair("PageSize", &self.page_size.to_string());
        q.append_pair("Page", &page.to_string());
        if let Some(t) = token {
            q.append_pair("PageToken", &t);
        }
        format!("{base}?{}", q.finish())
    }

    fn token_string(&self) -> Option<String> {
        self.token.as_ref().map(|t| match t {
            Token::After(sid) => format!("PA{sid}"),
            Token::Before(sid) => format!("PB{sid}"),
        })
    }
}

fn invalid_token() -> Invalid {
    Invalid {
        code: 21481,
        message: "Invalid PageToken".into(),
    }
}

/// The GMT day of a `DateSent` value: `YYYY-MM-DD`, or a date-time (RFC 3339,
/// `YYYY-MM-DD HH:MM:SS[.fff]` in GMT, RFC 2822).
fn gmt_day(v: &str) -> Option<NaiveDate> {
    let v = v.trim();
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc).date_naive())
        })
        .or_else(|| {
            NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.date())
        })
        .or_else(|| {
            DateTime::parse_from_rfc2822(v)
                .ok()
                .map(|t| t.with_timezone(&Utc).date_naive())
        })
}

/// Sorted descending, newest first: unsent (null `date_sent`) first or last, then by
/// `date_sent`, then by creation (time, then order).
type Key = (bool, Option<DateTime<Utc>>, DateTime<Utc>, usize);

/// One page of `messages` (all of the account's, in creation order) for `q`.
pub(crate) fn page(
    messages: &[FakeMessage],
    unsent_last: bool,
    account_sid: &str,
    q: &Query,
) -> Result<Value, Invalid> {
    let key = |index: usize, m: &FakeMessage| -> Key {
        (
            m.date_sent.is_none() != unsent_last,
            m.date_sent,
            m.created_at,
            index,
        )
    };
    let base = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    // The list trails the creates: a message shows only once its lag is over.
    let now = Utc::now();
    let mut found: Vec<(Key, &FakeMessage)> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.listed_at <= now && q.matches(m))
        .map(|(i, m)| (key(i, m), m))
        .collect();
    found.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
    // Where the token's message sits now, whether or not it is among the filtered.
    let cursor = |sid: &str| {
        messages
            .iter()
            .enumerate()
            .find(|(_, m)| m.sid == sid)
            .map(|(i, m)| key(i, m))
            .ok_or_else(invalid_token)
    };
    let (start, end) = match &q.token {
        None => (0, q.page_size.min(found.len())),
        Some(Token::After(sid)) => {
            let c = cursor(sid)?;
            let start = found.partition_point(|(k, _)| *k >= c);
            (start, (start + q.page_size).min(found.len()))
        }
        Some(Token::Before(sid)) => {
            let c = cursor(sid)?;
            let end = found.partition_point(|(k, _)| *k > c);
            (end.saturating_sub(q.page_size), end)
        }
    };
    let this = &found[start..end];
    let next = match this.last() {
        Some((_, last)) if end < found.len() => {
            Some(q.uri(&base, q.page + 1, Some(format!("PA{}", last.sid))))
        }
        _ => None,
    };
    let previous = match this.first() {
        Some((_, first)) if start > 0 => Some(q.uri(
            &base,
            q.page.saturating_sub(1),
            Some(format!("PB{}", first.sid)),
        )),
        _ => None,
    };
    let first_index = q.page * q.page_size;
    Ok(json!({
        "end": first_index + this.len().saturating_sub(1),
        "first_page_uri": q.uri(&base, 0, None),
        "messages": this.iter().map(|(_, m)| m.to_json()).collect::<Vec<_>>(),
        "next_page_uri": next,
        "page": q.page,
        "page_size": q.page_size,
        "previous_page_uri": previous,
        "start": first_index,
        "uri": q.uri(&base, q.page, q.token_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_sent_values() {
        let day = NaiveDate::from_ymd_opt(2019, 6, 19);
        assert_eq!(gmt_day("2019-06-19"), day);
        assert_eq!(gmt_day("2019-06-19 22:05:25.000"), day);
        assert_eq!(gmt_day("Wed, 19 Jun 2019 22:04:00 +0000"), day);
        assert_eq!(
            gmt_day("2019-06-19T23:30:00-02:00"),
            NaiveDate::from_ymd_opt(2019, 6, 20)
        );
        assert_eq!(gmt_day("yesterday"), None);
    }

    fn query(pairs: &[(&str, &str)]) -> Result<Query, Invalid> {
        let q: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Query::parse(&q)
    }

    #[test]
    fn refusals() {
        let code = |pairs: &[(&str, &str)]| query(pairs).err().map(|e| e.code);
        assert_eq!(code(&[("PageSize", "1001")]), Some(20007));
        assert_eq!(code(&[("PageSize", "0")]), Some(20001));
        assert_eq!(code(&[("DateSent>", "soon")]), Some(20001));
        assert_eq!(code(&[("PageToken", "XX1")]), Some(21481));
        assert_eq!(code(&[("PageSize", "1000"), ("Page", "3")]), None);
    }

    #[test]
    fn date_sent_inequalities_in_the_value() {
        let q = query(&[("DateSent", "<=2020-01-02")]).ok();
        assert_eq!(
            q.map(|q| q.days),
            Some(vec![(
                Cmp::OnOrBefore,
                NaiveDate::from_ymd_opt(2020, 1, 2).unwrap_or_default()
            )])
        );
    }
}
