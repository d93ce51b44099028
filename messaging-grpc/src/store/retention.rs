//! Queries of message retention: the oldest messages of every user, and removing a
//! batch of them with what hangs off them (media links, outbox jobs, media nobody
//! links any more). `_any`: retention applies to every user.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value, sea_query::Expr,
};

use super::entities::{conversation as conv, media, message, message_media, outbox};

/// Up to `limit` messages created before `before` whose status is not one of `keep`,
/// oldest first.
pub async fn oldest_any(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    keep: &[&str],
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::CreatedAt.lt(before))
        .filter(message::Column::Status.is_not_in(keep.iter().copied()))
        .order_by_asc(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Deletes messages by id with their media links and outbox jobs; returns the media
/// ids they linked (candidates for deletion once nothing else links them).
pub async fn delete_messages_any(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<Vec<String>, DbErr> {
    let linked: Vec<String> = message_media::Entity::find()
        .filter(message_media::Column::MessageId.is_in(ids.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|l| l.media_id)
        .collect();
    message_media::Entity::delete_many()
        .filter(message_media::Column::MessageId.is_in(ids.iter().cloned()))
        .exec(db)
        .await?;
    outbox::Entity::delete_many()
        .filter(outbox::Column::MessageId.is_in(ids.iter().cloned()))
        .exec(db)
        .await?;
    message::Entity::delete_many()
        .filter(message::Column::Id.is_in(ids.iter().cloned()))
        .exec(db)
        .await?;
    Ok(linked)
}

/// Deletes the media among `ids` that no message links any more; returns the storage
/// keys of their objects.
pub async fn delete_unlinked_media_any(
    db: &impl ConnectionTrait,
    ids: Vec<String>,
) -> Result<Vec<String>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let still_linked: Vec<String> = message_media::Entity::find()
        .filter(message_media::Column::MediaId.is_in(ids.clone()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|l| l.media_id)
        .collect();
    let orphans: Vec<String> = ids
        .into_iter()
        .filter(|id| !still_linked.contains(id))
        .collect();
    delete_media_any(db, orphans).await
}

/// Uploads never sent (no message links them) created before `before`, up to `limit`.
pub async fn stale_uploads_any(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT id FROM media m WHERE m.created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM message_media l WHERE l.media_id = m.id) ORDER BY m.created_at LIMIT $2"
        }
        _ => {
            "SELECT id FROM media m WHERE m.created_at < ? AND NOT EXISTS \
             (SELECT 1 FROM message_media l WHERE l.media_id = m.id) ORDER BY m.created_at LIMIT ?"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(before), Value::from(limit as i64)],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

/// Deletes media rows; returns the storage keys of their objects.
pub async fn delete_media_any(
    db: &impl ConnectionTrait,
    ids: Vec<String>,
) -> Result<Vec<String>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys = media::Entity::find()
        .filter(media::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|m| m.storage_key)
        .collect();
    media::Entity::delete_many()
        .filter(media::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(keys)
}

/// Points a conversation at its newest remaining message, or removes it when none
/// remains. Call while holding the conversation row.
pub async fn refresh_conversation(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<(), DbErr> {
    let newest = message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::ContactId.eq(contact_id))
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(1)
        .one(db)
        .await?;
    let scoped = |q: sea_orm::UpdateMany<conv::Entity>| {
        q.filter(conv::Column::UserId.eq(user_id))
            .filter(conv::Column::ContactId.eq(contact_id))
    };
    match newest {
        Some(m) => {
            scoped(conv::Entity::update_many())
                .col_expr(conv::Column::LastMessageId, Expr::value(m.id))
                .col_expr(conv::Column::LastMessageAt, Expr::value(m.created_at))
                .col_expr(conv::Column::OwnerE164, Expr::value(m.owner_e164))
                .col_expr(conv::Column::UpdatedAt, Expr::value(m.created_at))
                .exec(db)
                .await?;
        }
        None => super::conversations::delete(db, user_id, contact_id).await?,
    }
    Ok(())
}
