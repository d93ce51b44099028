//! Multi-row statements kept under the databases' limit of bound values.

/// Bound values one statement may carry: under SQLite's 32,766 and PostgreSQL's
/// 65,535, so a batch's rows are split into statements of at most this many values.
pub const MAX_VALUES: usize = 30_000;

/// `items` in runs small enough for one statement of `columns` values per row.
pub fn chunks<T>(items: Vec<T>, columns: usize) -> Vec<Vec<T>> {
    let per = (MAX_VALUES / columns.max(1)).max(1);
    let mut out = Vec::with_capacity(items.len().div_ceil(per));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(per).collect());
    }
    out
}
