//! `messages`: one row per SMS/MMS, body sealed.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{entities::message, page_token::Cursor};

/// `messages.direction` values.
pub const OUTBOUND: &str = "outbound";
pub const INBOUND: &str = "inbound";

pub async fn insert(db: &impl ConnectionTrait, row: message::ActiveModel) -> Result<(), DbErr> {
    message::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find_by_id(id.to_owned())
        .filter(message::Column::UserId.eq(user_id))
        .one(db)
        .await
}

pub async fn find_many(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.is_in(ids))
        .all(db)
        .await
}

pub async fn find_by_provider_sid(
    db: &impl ConnectionTrait,
    user_id: &str,
    sid: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::ProviderSid.eq(sid))
        .one(db)
        .await
}

pub async fn find_by_idempotency_key(
    db: &impl ConnectionTrait,
    user_id: &str,
    key: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::IdempotencyKey.eq(key))
        .one(db)
        .await
}

/// A page of a conversation, newest first, strictly after `after` in that order.
pub async fn page(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let mut q = message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::ContactId.eq(contact_id));
    if let Some(c) = after {
        q = q.filter(older_than(c));
    }
    q.order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Sets `read_at` on one message if it is unset. Returns whether it changed.
pub async fn mark_read(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = message::Entity::update_many()
        .col_expr(message::Column::ReadAt, Expr::value(at))
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::ReadAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks the conversation's unread inbound messages read, all of them or those at or
/// before `up_to`. Already-read messages keep their first `read_at`, and nothing is
/// ever un-read, so an older horizon arriving late changes nothing. Returns how many
/// messages became read.
pub async fn mark_inbound_read_up_to(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    up_to: Option<&Cursor>,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut q = message::Entity::update_many()
        .col_expr(message::Column::ReadAt, Expr::value(at))
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::ContactId.eq(contact_id))
        .filter(message::Column::Direction.eq(INBOUND))
        .filter(message::Column::ReadAt.is_null());
    if let Some(c) = up_to {
        q = q.filter(
            Condition::any().add(older_than(c)).add(
                Condition::all()
                    .add(message::Column::CreatedAt.eq(c.at))
                    .add(message::Column::Id.eq(c.id.as_str())),
            ),
        );
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// `(created_at, id) < (c.at, c.id)`, spelled out because SQLite and PostgreSQL
/// differ in row-value support through the query builder.
fn older_than(c: &Cursor) -> Condition {
    Condition::any()
        .add(message::Column::CreatedAt.lt(c.at))
        .add(
            Condition::all()
                .add(message::Column::CreatedAt.eq(c.at))
                .add(message::Column::Id.lt(c.id.as_str())),
        )
}
