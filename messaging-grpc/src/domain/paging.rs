//! Page sizes and tokens shared by the listing operations.

use crate::{
    error::Error,
    store::page_token::{self, Cursor, PageKind},
};

/// A validated page request: size clamped, token decoded.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub size: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// `size` 0 means the default; above `max` is clamped to `max` (as Google's API
    /// guidelines advise), never an error.
    pub fn parse(
        kind: PageKind,
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
            page_token::decode(kind, token).map_err(|why| Error::invalid("page_token", why))?;
        Ok(Self { size, after })
    }
}

/// Fetch one row more than the page to know whether another page follows; returns the
/// page and the token of the next one (empty when none).
pub fn split_page<T>(
    kind: PageKind,
    mut rows: Vec<T>,
    size: u64,
    cursor_of: impl Fn(&T) -> Cursor,
) -> (Vec<T>, String) {
    if rows.len() as u64 > size {
        rows.truncate(size as usize);
        let token = rows
            .last()
            .map(|r| page_token::encode(kind, &cursor_of(r)))
            .unwrap_or_default();
        (rows, token)
    } else {
        (rows, String::new())
    }
}
