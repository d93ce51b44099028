//! `media` and `message_media`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Statement, Value, sea_query::Expr,
};

use super::entities::{media, message_media};
use super::owned;

/// `media.status` values.
pub const READY: &str = "ready";
pub const PENDING: &str = "pending";
pub const FAILED: &str = "failed";
/// The owner's data keys were destroyed: the object is gone, the row stays listed.
pub const DESTROYED: &str = "destroyed";

pub async fn insert(db: &impl ConnectionTrait, row: media::Model) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _};
    media::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The user's media with this id.
pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<Option<media::Model>, DbErr> {
    owned::find::<media::Entity>(db, user_id, id).await
}

/// Several of the user's media rows at once (a page's worth).
pub async fn find_many(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<media::Model>, DbErr> {
    owned::find_many::<media::Entity>(db, user_id, ids).await
}

/// Links media to a message, in order.
pub async fn link(db: &impl ConnectionTrait, rows: Vec<message_media::Model>) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.into_iter().map(|r| message_media::ActiveModel {
        message_id: Set(r.message_id),
        position: Set(r.position),
        media_id: Set(r.media_id),
        url_ct: Set(r.url_ct),
    });
    message_media::Entity::insert_many(models)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The media links of some messages. `_any`: link rows carry no user id (they hang
/// off a message), so callers pass ids of messages they already read scoped to a user.
pub async fn links_any(
    db: &impl ConnectionTrait,
    message_ids: Vec<String>,
) -> Result<Vec<message_media::Model>, DbErr> {
    message_media::Entity::find()
        .filter(message_media::Column::MessageId.is_in(message_ids))
        .order_by_asc(message_media::Column::MessageId)
        .order_by_asc(message_media::Column::Position)
        .all(db)
        .await
}

/// Claims up to `limit` pending downloads until `lease_until` (the same row cannot
/// be claimed again before then). `_any`: the copier serves every user.
pub async fn claim_pending_any(
    db: &impl ConnectionTrait,
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, String)>, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => (
            "UPDATE media SET next_attempt_at = $1 WHERE id IN (\
               SELECT id FROM media WHERE status = 'pending' AND next_attempt_at <= $2 \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id, user_id",
            vec![lease_until.into(), at.into(), (limit as i64).into()],
        ),
        _ => (
            "UPDATE media SET next_attempt_at = ? WHERE id IN (\
               SELECT id FROM media WHERE status = 'pending' AND next_attempt_at <= ? \
               ORDER BY next_attempt_at LIMIT ?) RETURNING id, user_id",
            vec![lease_until.into(), at.into(), (limit as i64).into()],
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "user_id")?)))
        .collect()
}

/// Marks a download done.
pub async fn mark_ready(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    content_type: &str,
    size: i64,
    storage_key: &str,
) -> Result<(), DbErr> {
    media::Entity::update_many()
        .col_expr(media::Column::Status, Expr::value(READY))
        .col_expr(media::Column::ContentType, Expr::value(content_type))
        .col_expr(media::Column::SizeBytes, Expr::value(size))
        .col_expr(media::Column::StorageKey, Expr::value(storage_key))
        .col_expr(
            media::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(media::Column::UserId.eq(user_id))
        .filter(media::Column::Id.eq(id))
        // A copy finishing after its owner was shredded must not revive the row.
        .filter(media::Column::Status.ne(DESTROYED))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed download: retried at `next` or, when `give_up`, failed for good.
pub async fn mark_attempt_failed(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    attempts: i32,
    next: DateTime<Utc>,
    give_up: bool,
    error: &str,
) -> Result<(), DbErr> {
    media::Entity::update_many()
        .col_expr(
            media::Column::Status,
            Expr::value(if give_up { FAILED } else { PENDING }),
        )
        .col_expr(media::Column::Attempts, Expr::value(attempts))
        .col_expr(media::Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            media::Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .filter(media::Column::UserId.eq(user_id))
        .filter(media::Column::Id.eq(id))
        .filter(media::Column::Status.ne(DESTROYED))
        .exec(db)
        .await?;
    Ok(())
}

/// A media item by id, whoever owns it: only for the gateway's signed URLs, whose
/// token already names the item.
pub async fn find_any(db: &impl ConnectionTrait, id: &str) -> Result<Option<media::Model>, DbErr> {
    media::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Marks every media item of the user destroyed (crypto-shredding): no storage key,
/// no sealed source URL, no copy left to attempt. Returns the storage keys whose
/// objects the caller deletes after commit, and how many items were marked.
pub async fn destroy_all_of(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<(Vec<String>, u64), DbErr> {
    let keys = media::Entity::find()
        .filter(media::Column::UserId.eq(user_id))
        .filter(media::Column::StorageKey.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|m| m.storage_key)
        .collect();
    let res = media::Entity::update_many()
        .col_expr(media::Column::Status, Expr::value(DESTROYED))
        .col_expr(
            media::Column::StorageKey,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            media::Column::SourceUrlCt,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .filter(media::Column::UserId.eq(user_id))
        .filter(media::Column::Status.ne(DESTROYED))
        .exec(db)
        .await?;
    Ok((keys, res.rows_affected))
}
