//! Page sizes and tokens shared by the listing operations.

use crate::{
    error::Error,
    store::page_token::{self, Cursor, Scope},
};

/// A validated page request: size clamped, token decoded against its listing.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub size: u64,
    pub after: Option<Cursor>,
    /// The listing this request pages: the next page's token is issued for it.
    scope: Scope,
}

impl PageRequest {
    /// `size` 0 means the default; above `max` is clamped to `max` (as Google's API
    /// guidelines advise), never an error. A token issued for another scope (caller,
    /// listing, conversation, query) is refused with `page_token` named.
    pub fn parse(
        scope: Scope,
        size: u32,
        token: &str,
        default: u64,
        max: u64,
    ) -> Result<Self, Error> {
        let size = match u64::from(size) {
            0 => default,
            n => n.min(max),
        };
        let after =
            page_token::decode(&scope, token).map_err(|why| Error::invalid("page_token", why))?;
        Ok(Self { size, after, scope })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> u64 {
        self.size + 1
    }

    /// Cuts the fetched rows to the page and returns the next page's token (empty when
    /// none follows).
    pub fn split<T>(&self, mut rows: Vec<T>, cursor_of: impl Fn(&T) -> Cursor) -> (Vec<T>, String) {
        if rows.len() as u64 > self.size {
            rows.truncate(self.size as usize);
            let token = rows
                .last()
                .map(|r| page_token::encode(&self.scope, &cursor_of(r)))
                .unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }
}
