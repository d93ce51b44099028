//! `search_terms`: the blind index of message bodies (keyed hashes of words, never
//! words), and the search over it.
//!
//! A new message's terms are first written as ONE row of `search_pending` (appended,
//! in the transaction that writes the message), and the indexer ([`index_pending`])
//! moves them into `search_terms` in bulk, sorted. Written straight into the index,
//! each word dirtied a page of it at random — about half of what a send cost the
//! writer (BENCHMARKS.md, "Store engine, second steps"); sorted in bulk, messages with
//! common words share pages. A search reads both, so a message is found as soon as it
//! is committed, indexed or not.

use sea_orm::{
    ActiveModelTrait as _,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    FromQueryResult as _, IntoActiveModel as _, QueryFilter, QueryOrder, QuerySelect, Statement,
    Value,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    chunks::chunks,
    entities::{message, search_pending, search_term},
    messages::older_than,
    owned,
    page_token::Cursor,
};

/// Bytes of one term (a keyed hash cut short; the crypto layer makes them, and the
/// domain layer checks the two lengths agree).
pub const TERM_LEN: usize = 16;

/// A message's terms as its `search_pending` row: the terms end to end.
pub fn pending(user_id: &str, message_id: &str, terms: &[Vec<u8>]) -> search_pending::Model {
    debug_assert!(
        terms.iter().all(|t| t.len() == TERM_LEN),
        "a term is {TERM_LEN} bytes"
    );
    search_pending::Model {
        message_id: message_id.to_owned(),
        user_id: user_id.to_owned(),
        terms: terms.concat(),
    }
}

/// Moves up to `limit` messages' pending terms into the index (oldest first), sorted
/// so that messages sharing words write the same index pages; returns how many
/// messages it moved. Runs as one write (its caller's transaction): the terms are in
/// exactly one of the two tables at any commit.
pub async fn index_pending(db: &impl ConnectionTrait, limit: u64) -> Result<usize, DbErr> {
    // Taken out first (DELETE … RETURNING), so only rows that still exist get terms: a
    // message deleted meanwhile (its pending row gone with it) leaves none behind. On
    // PostgreSQL, rows a concurrent delete holds are skipped, never waited for inside
    // the pipeline's batch.
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "DELETE FROM search_pending WHERE message_id IN \
             (SELECT message_id FROM search_pending ORDER BY message_id LIMIT $1 \
              FOR UPDATE SKIP LOCKED) \
             RETURNING message_id, user_id, terms"
        }
        _ => {
            "DELETE FROM search_pending WHERE message_id IN \
             (SELECT message_id FROM search_pending ORDER BY message_id LIMIT ?) \
             RETURNING message_id, user_id, terms"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::BigInt(Some(
                i64::try_from(limit).unwrap_or(i64::MAX),
            ))],
        ))
        .await?
        .iter()
        .map(|row| search_pending::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut terms: Vec<search_term::Model> = rows
        .iter()
        .flat_map(|r| {
            r.terms.chunks_exact(TERM_LEN).map(|t| search_term::Model {
                user_id: r.user_id.clone(),
                term: t.to_vec(),
                message_id: r.message_id.clone(),
            })
        })
        .collect();
    terms.sort_by(|a, b| {
        (&a.user_id, &a.term, &a.message_id).cmp(&(&b.user_id, &b.term, &b.message_id))
    });
    // Two words with one 128-bit term are the same term: keep one row.
    terms.dedup();
    let terms: Vec<_> = terms
        .into_iter()
        .map(|t| t.into_active_model().reset_all())
        .collect();
    for chunk in chunks(terms, 3) {
        search_term::Entity::insert_many(chunk)
            .on_conflict_do_nothing()
            .exec_without_returning(db)
            .await?;
    }
    Ok(rows.len())
}

/// The user's messages still in `search_pending` that hold a term of every word.
async fn pending_matches(
    db: &impl ConnectionTrait,
    user_id: &str,
    words: &[Vec<Vec<u8>>],
) -> Result<Vec<String>, DbErr> {
    let rows = search_pending::Entity::find()
        .filter(search_pending::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            let has = |term: &Vec<u8>| r.terms.chunks_exact(TERM_LEN).any(|t| t == term.as_slice());
            words
                .iter()
                .all(|alternatives| alternatives.iter().any(has))
        })
        .map(|r| r.message_id)
        .collect())
}

/// Indexes a message under `terms` (in the transaction that writes the message).
pub async fn insert(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_id: &str,
    terms: Vec<Vec<u8>>,
) -> Result<(), DbErr> {
    if terms.is_empty() {
        return Ok(());
    }
    let rows = terms.into_iter().map(|term| search_term::ActiveModel {
        user_id: Set(user_id.to_owned()),
        term: Set(term),
        message_id: Set(message_id.to_owned()),
    });
    // Two words with one 128-bit term would be the same term: keep one row.
    search_term::Entity::insert_many(rows)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Removes the terms of the user's messages with these ids.
pub async fn delete_for(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_ids: Vec<String>,
) -> Result<(), DbErr> {
    use {search_pending::Column as P, search_term::Column as T};
    let ids = message_ids.clone();
    owned::delete_in::<search_pending::Entity>(db, P::UserId, user_id, P::MessageId, ids).await?;
    owned::delete_in::<search_term::Entity>(db, T::UserId, user_id, T::MessageId, message_ids).await
}

/// A search over one user's messages.
pub struct SearchQuery<'a> {
    pub user_id: &'a str,
    /// Per query word, the terms it may be stored as (one per key version). A message
    /// matches when it has a term of every word.
    pub words: &'a [Vec<Vec<u8>>],
    /// Contacts whose number the query looks like: their messages match too.
    pub contact_ids: &'a [String],
    /// Only this conversation.
    pub within: Option<&'a str>,
    pub after: Option<&'a Cursor>,
    pub limit: u64,
}

/// Matching messages, newest first. Messages from blocked numbers never match (they
/// are not shown anywhere, and are not indexed either).
pub async fn search(
    db: &impl ConnectionTrait,
    q: SearchQuery<'_>,
) -> Result<Vec<message::Model>, DbErr> {
    let mut matches = Condition::any();
    if !q.words.is_empty() {
        // A message is indexed under one key version, so it holds at most one term
        // per word: "every word" is "as many distinct matching terms as words".
        let terms: Vec<Vec<u8>> = q.words.iter().flatten().cloned().collect();
        let with_all_words = Query::select()
            .column(search_term::Column::MessageId)
            .from(search_term::Entity)
            .and_where(search_term::Column::UserId.eq(q.user_id))
            .and_where(search_term::Column::Term.is_in(terms))
            .group_by_col(search_term::Column::MessageId)
            .and_having(
                Expr::col(search_term::Column::Term)
                    .count_distinct()
                    .eq(q.words.len() as i64),
            )
            .to_owned();
        matches = matches.add(message::Column::Id.in_subquery(with_all_words));
        let pending = pending_matches(db, q.user_id, q.words).await?;
        if !pending.is_empty() {
            matches = matches.add(message::Column::Id.is_in(pending));
        }
    }
    if !q.contact_ids.is_empty() {
        matches = matches.add(message::Column::ContactId.is_in(q.contact_ids.iter().cloned()));
    }
    if matches.is_empty() {
        return Ok(Vec::new());
    }
    let mut select = message::Entity::find()
        .filter(message::Column::UserId.eq(q.user_id))
        .filter(message::Column::Blocked.eq(false))
        .filter(matches);
    if let Some(contact_id) = q.within {
        select = select.filter(message::Column::ContactId.eq(contact_id));
    }
    if let Some(c) = q.after {
        select = select.filter(older_than(c));
    }
    select
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(q.limit)
        .all(db)
        .await
}

/// Messages not in the index yet (stored before it existed), of every user, oldest
/// first. `_any`: the backfill is a system job over every user.
pub async fn unindexed_any(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    unindexed(limit).all(db).await
}

/// [`unindexed_any`]'s query (its plan is tested: it must stay on the partial
/// `idx_messages_search_unindexed`).
pub fn unindexed(limit: u64) -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        // Literal, as `idx_messages_search_unindexed`'s condition: a bound `false`
        // leaves the index to plans made with the value (PostgreSQL's generic plan
        // cannot use it; SQLite's plan before its re-prepare on bind does not).
        .filter(Expr::cust("search_indexed = false"))
        .order_by_asc(message::Column::CreatedAt)
        .limit(limit)
}

/// Records that the user's message is in the index.
pub async fn mark_indexed(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_id: &str,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::SearchIndexed, Expr::value(true))
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(message_id))
        .exec(db)
        .await?;
    Ok(())
}
