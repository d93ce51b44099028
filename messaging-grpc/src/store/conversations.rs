//! `conversations`: the per-contact summary ListConversations reads in one range scan.
//!
//! Locking rule that keeps `unread_count` exact: every transaction that changes the
//! read state of messages first locks the conversation row ([`lock`]), and every
//! transaction that adds a message updates that row ([`record_message`]), so the two
//! serialise on it. On SQLite, write transactions are serialised anyway (IMMEDIATE).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{entities::conversation as conv, page_token::Cursor};

/// What a new message changes in its conversation.
pub struct MessageWritten<'a> {
    pub user_id: &'a str,
    pub contact_id: &'a str,
    pub owner_e164: &'a str,
    pub message_id: &'a str,
    pub at: DateTime<Utc>,
    /// 1 for an unread inbound message, 0 otherwise.
    pub unread_delta: i64,
}

/// Upserts the conversation for a new message. The last message only moves forward in
/// time, so writes committed out of order (clock skew between replicas) keep the newest.
pub async fn record_message(db: &impl ConnectionTrait, m: MessageWritten<'_>) -> Result<(), DbErr> {
    let row = conv::ActiveModel {
        user_id: Set(m.user_id.to_owned()),
        contact_id: Set(m.contact_id.to_owned()),
        owner_e164: Set(m.owner_e164.to_owned()),
        last_message_id: Set(m.message_id.to_owned()),
        last_message_at: Set(m.at),
        unread_count: Set(m.unread_delta),
        updated_at: Set(m.at),
    };
    let newer = "excluded.last_message_at >= conversations.last_message_at";
    let pick = |col: &str| {
        Expr::cust(format!(
            "CASE WHEN {newer} THEN excluded.{col} ELSE conversations.{col} END"
        ))
    };
    conv::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([conv::Column::UserId, conv::Column::ContactId])
                .values([
                    (conv::Column::OwnerE164, pick("owner_e164")),
                    (conv::Column::LastMessageId, pick("last_message_id")),
                    (conv::Column::LastMessageAt, pick("last_message_at")),
                    (
                        conv::Column::UnreadCount,
                        Expr::cust("conversations.unread_count + excluded.unread_count"),
                    ),
                    (conv::Column::UpdatedAt, pick("updated_at")),
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

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

/// A page of conversations, most recently active first.
pub async fn page(
    db: &impl ConnectionTrait,
    user_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<conv::Model>, DbErr> {
    let mut q = conv::Entity::find().filter(conv::Column::UserId.eq(user_id));
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(conv::Column::LastMessageAt.lt(c.at))
                .add(
                    Condition::all()
                        .add(conv::Column::LastMessageAt.eq(c.at))
                        .add(conv::Column::ContactId.lt(c.id.as_str())),
                ),
        );
    }
    q.order_by_desc(conv::Column::LastMessageAt)
        .order_by_desc(conv::Column::ContactId)
        .limit(limit)
        .all(db)
        .await
}

fn scoped(user_id: &str, contact_id: &str) -> sea_orm::Select<conv::Entity> {
    conv::Entity::find()
        .filter(conv::Column::UserId.eq(user_id))
        .filter(conv::Column::ContactId.eq(contact_id))
}
