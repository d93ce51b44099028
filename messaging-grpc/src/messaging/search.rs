//! SearchMessages over the blind index: the query is folded into words exactly as
//! bodies were when indexed, each word becomes its keyed hashes, and the store finds
//! the messages holding all of them. Neither the query nor a body is ever stored or
//! logged in clear.

use super::{
    Messaging,
    conversations::{MESSAGES_DEFAULT_PAGE, MESSAGES_MAX_PAGE},
};
use crate::{
    domain::{MessageView, PageRequest, words},
    error::Error,
    store::{
        self,
        page_token::{Cursor, PageKind, Scope},
        search::SearchQuery,
    },
};

/// Longest query, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Most words of a query (each is one more set of terms to match).
const MAX_QUERY_WORDS: usize = 10;
/// Most contacts opened by a search for a number without its country code: a suffix
/// cannot be looked up in the blind index, so numbers are compared decrypted.
const MAX_SCANNED_CONTACTS: u64 = 10_000;

/// One page of search results, newest first.
pub struct SearchPage {
    pub messages: Vec<MessageView>,
    pub next_page_token: String,
}

impl Messaging {
    /// The caller's messages holding every word of `query` (and, when the query looks
    /// like a phone number, the messages of the conversations with that number),
    /// optionally within one conversation.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn search_messages(
        &self,
        user_id: &str,
        query: &str,
        contact_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<SearchPage, Error> {
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::invalid("query", "is required"));
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::invalid(
                "query",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let words = words::words(query);
        if words.is_empty() {
            return Err(Error::invalid("query", "has no words (letters or digits)"));
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err(Error::invalid(
                "query",
                format!("must have at most {MAX_QUERY_WORDS} words"),
            ));
        }
        let page = PageRequest::parse(
            Scope::new(PageKind::Search, &[user_id, contact_id, query]),
            page_size,
            page_token,
            MESSAGES_DEFAULT_PAGE,
            MESSAGES_MAX_PAGE,
        )?;
        let db = self.records.store().conn();
        let within = match contact_id {
            "" => None,
            id => Some(
                store::contacts::find(db, user_id, id)
                    .await?
                    .ok_or(Error::NotFound("contact_id"))?
                    .id,
            ),
        };
        let by_number = match words::phone_number(query) {
            Some((plus, digits)) => self.contacts_by_digits(user_id, &digits, plus).await?,
            None => Vec::new(),
        };
        // No key left (shredded user): no body can match any more.
        let terms = self
            .records
            .query_terms(user_id, &words)
            .await?
            .unwrap_or_default();
        let rows = store::search::search(
            db,
            SearchQuery {
                user_id,
                words: &terms,
                contact_ids: &by_number,
                within: within.as_deref(),
                after: page.after.as_ref(),
                limit: page.fetch(),
            },
        )
        .await?;
        let (rows, next_page_token) = page.split(rows, |m| Cursor {
            at: m.created_at,
            id: m.id.clone(),
        });
        let mut messages = self.records.views(user_id, rows).await?;
        self.records.name_views(user_id, &mut messages).await?;
        Ok(SearchPage {
            messages,
            next_page_token,
        })
    }

    /// The ids of the caller's contacts whose number is `+digits` (`exact`: one blind
    /// index lookup) or ends with `digits` (typed without its country code: the sealed
    /// numbers are opened and compared, at most [`MAX_SCANNED_CONTACTS`] of them).
    async fn contacts_by_digits(
        &self,
        user_id: &str,
        digits: &str,
        exact: bool,
    ) -> Result<Vec<String>, Error> {
        let db = self.records.store().conn();
        if exact {
            let lookup = self
                .records
                .number_lookup(user_id, &format!("+{digits}"))
                .await?;
            let found = store::contacts::find_by_number(db, user_id, &lookup).await?;
            return Ok(found.into_iter().map(|c| c.id).collect());
        }
        let mut ids = Vec::new();
        for c in store::contacts::all_of(db, user_id, MAX_SCANNED_CONTACTS).await? {
            if let Some(number) = self.records.contact_number(&c).await?
                && number.ends_with(digits)
            {
                ids.push(c.id);
            }
        }
        Ok(ids)
    }
}
