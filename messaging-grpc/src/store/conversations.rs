//! `conversations`: the per-contact summary ListConversations reads in one range scan.
//!
//! Locking rule that keeps `unread_count` exact: every transaction that changes the
//! read state of messages first locks the conversation row ([`lock`]), and every
//! transaction that adds a message updates that row ([`record_message`]), so the two
//! serialise on it. On SQLite, write transactions are serialised anyway (IMMEDIATE).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{
    entities::{conversation as conv, message},
    messages::INBOUND,
};

/// Reads the conversation row and, on PostgreSQL, locks it until the transaction ends.
pub async fn lock(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Option<conv::Model>, DbErr> {
    scoped(user_id, contact_id).lock_exclusive().one(db).await
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Option<conv::Model>, DbErr> {
    scoped(user_id, contact_id).one(db).await
}

/// Lowers the unread count by `read` messages that just became read. Call only while
/// holding the row from [`lock`].
pub async fn subtract_unread(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    read: u64,
) -> Result<(), DbErr> {
    if read == 0 {
        return Ok(());
    }
    conv::Entity::update_many()
        .col_expr(
            conv::Column::UnreadCount,
            Expr::col(conv::Column::UnreadCount).sub(read as i64),
        )
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Archives or unarchives a conversation. Returns whether it changed (false when it
/// already was so, or there is no conversation).
pub async fn set_archived(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    archived: bool,
) -> Result<bool, DbErr> {
    let res = conv::Entity::update_many()
        .col_expr(conv::Column::Archived, Expr::value(archived))
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
        .filter(conv::Column::Archived.ne(archived))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Sets the mute state: muted until `until`, or until unmuted when `None`.
pub async fn set_muted(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    muted: bool,
    until: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    conv::Entity::update_many()
        .col_expr(conv::Column::Muted, Expr::value(muted))
        .col_expr(conv::Column::MutedUntil, Expr::value(until))
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether the conversation is muted at `at`.
pub async fn is_muted(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(find(db, user_id, contact_id)
        .await?
        .is_some_and(|c| muted_at(&c, at)))
}

/// Whether a conversation row is muted at `at` (an expired mute is not).
pub fn muted_at(c: &conv::Model, at: DateTime<Utc>) -> bool {
    c.muted && c.muted_until.is_none_or(|until| until > at)
}

/// Recomputes the conversation from its remaining messages after a deletion: the
/// newest shown message becomes the last one and unread inbound messages are
/// counted again; with none left, the conversation row goes. Returns the unread
/// count, `None` when the conversation is gone. Call while holding [`lock`].
pub async fn recompute(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Option<i64>, DbErr> {
    let shown = || {
        message::Entity::find()
            .filter(message::Column::UserId.eq(user_id))
            .filter(message::Column::ContactId.eq(contact_id))
            .filter(message::Column::Blocked.eq(false))
    };
    let Some(newest) = shown()
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .one(db)
        .await?
    else {
        delete(db, user_id, contact_id).await?;
        return Ok(None);
    };
    use sea_orm::PaginatorTrait as _;
    let unread = shown()
        .filter(message::Column::Direction.eq(INBOUND))
        .filter(message::Column::ReadAt.is_null())
        .count(db)
        .await? as i64;
    conv::Entity::update_many()
        .col_expr(conv::Column::LastMessageId, Expr::value(newest.id))
        .col_expr(conv::Column::LastMessageAt, Expr::value(newest.created_at))
        .col_expr(conv::Column::OwnerE164, Expr::value(newest.owner_e164))
        .col_expr(conv::Column::UpdatedAt, Expr::value(newest.created_at))
        .col_expr(conv::Column::UnreadCount, Expr::value(unread))
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
        .exec(db)
        .await?;
    Ok(Some(unread))
}

/// Removes the conversation row.
pub async fn delete(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<(), DbErr> {
    conv::Entity::delete_many()
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
        .exec(db)
        .await?;
    Ok(())
}

fn scoped(user_id: &str, contact_id: &str) -> sea_orm::Select<conv::Entity> {
    conv::Entity::find()
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
}
