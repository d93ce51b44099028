//! `search_terms`: the blind index of message bodies (keyed hashes of words, never
//! words), and the search over it.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    entities::{message, search_term},
    messages::older_than,
    page_token::Cursor,
};

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
    if message_ids.is_empty() {
        return Ok(());
    }
    search_term::Entity::delete_many()
        .filter(search_term::Column::UserId.eq(user_id))
        .filter(search_term::Column::MessageId.is_in(message_ids))
        .exec(db)
        .await?;
    Ok(())
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
    message::Entity::find()
        .filter(message::Column::SearchIndexed.eq(false))
        .order_by_asc(message::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
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
