//! `media` and `message_media`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Statement, Value, sea_query::Expr,
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

owned::lookups!(media, "media");

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

/// A claimed download: `attempt` numbers the claim and fences its outcome writes (a
/// copier whose lease ran out, and was claimed again, can no longer change the row).
#[derive(Clone, Debug)]
pub struct ClaimedMedia {
    pub id: String,
    pub user_id: String,
    pub attempt: i32,
}

/// Claims up to `limit` pending downloads until `lease_until` (the same row cannot
/// be claimed again before then), counting the attempt. `_any`: the copier serves
/// every user.
pub async fn claim_pending_any(
    db: &impl ConnectionTrait,
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<ClaimedMedia>, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => (
            "UPDATE media SET next_attempt_at = $1, attempts = attempts + 1 WHERE id IN (\
               SELECT id FROM media WHERE status = 'pending' AND next_attempt_at <= $2 \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, user_id, attempts",
            vec![lease_until.into(), at.into(), (limit as i64).into()],
        ),
        _ => (
            "UPDATE media SET next_attempt_at = ?, attempts = attempts + 1 WHERE id IN (\
               SELECT id FROM media WHERE status = 'pending' AND next_attempt_at <= ? \
               ORDER BY next_attempt_at LIMIT ?) RETURNING id, user_id, attempts",
            vec![lease_until.into(), at.into(), (limit as i64).into()],
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ClaimedMedia {
                id: r.try_get("", "id")?,
                user_id: r.try_get("", "user_id")?,
                attempt: r.try_get("", "attempts")?,
            })
        })
        .collect()
}

/// Marks a claimed download done; false when the claim is no longer ours.
pub async fn mark_ready(
    db: &impl ConnectionTrait,
    claim: &ClaimedMedia,
    content_type: &str,
    size: i64,
    storage_key: &str,
) -> Result<bool, DbErr> {
    let done = media::Entity::update_many()
        .col_expr(media::Column::Status, Expr::value(READY))
        .col_expr(media::Column::ContentType, Expr::value(content_type))
        .col_expr(media::Column::SizeBytes, Expr::value(size))
        .col_expr(media::Column::StorageKey, Expr::value(storage_key))
        .col_expr(
            media::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(held(claim))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Records a failed claimed download: retried at `next` or, when `give_up`, failed
/// for good. False when the claim is no longer ours (nothing changed).
pub async fn mark_attempt_failed(
    db: &impl ConnectionTrait,
    claim: &ClaimedMedia,
    next: DateTime<Utc>,
    give_up: bool,
    error: &str,
) -> Result<bool, DbErr> {
    let done = media::Entity::update_many()
        .col_expr(
            media::Column::Status,
            Expr::value(if give_up { FAILED } else { PENDING }),
        )
        .col_expr(media::Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            media::Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .filter(held(claim))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// The row is still pending under this very claim.
fn held(claim: &ClaimedMedia) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(media::Column::UserId.eq(claim.user_id.as_str()))
        .add(media::Column::Id.eq(claim.id.as_str()))
        .add(media::Column::Status.eq(PENDING))
        .add(media::Column::Attempts.eq(claim.attempt))
}

/// A media item by id, whoever owns it, only if it is `direction` (outbound) and
/// linked from at least one of its owner's messages of that direction: what the
/// gateway's signed URLs may serve (the token named it; an inbound photo or an upload
/// never sent is never served to Twilio).
pub async fn find_attached_any(
    db: &impl ConnectionTrait,
    id: &str,
    direction: &str,
) -> Result<Option<media::Model>, DbErr> {
    use super::entities::message;
    let Some(row) = media::Entity::find_by_id(id.to_owned())
        .filter(media::Column::Direction.eq(direction))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let linked: Vec<String> = message_media::Entity::find()
        .filter(message_media::Column::MediaId.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.message_id)
        .collect();
    if linked.is_empty() {
        return Ok(None);
    }
    let sent = message::Entity::find()
        .filter(message::Column::Id.is_in(linked))
        .filter(message::Column::UserId.eq(row.user_id.as_str()))
        .filter(message::Column::Direction.eq(direction))
        .one(db)
        .await?;
    Ok(sent.map(|_| row))
}

/// Of the media linked from these messages, the user's that no other message links
/// (one upload may go out with several messages): what deleting the messages frees.
/// `_any` on the links for the reason of [`links_any`]; the media rows are scoped.
pub async fn freed_by(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_ids: Vec<String>,
) -> Result<Vec<media::Model>, DbErr> {
    use std::collections::HashSet;
    let linked: HashSet<String> = links_any(db, message_ids.clone())
        .await?
        .into_iter()
        .filter_map(|l| l.media_id)
        .collect();
    if linked.is_empty() {
        return Ok(Vec::new());
    }
    let still_used: HashSet<String> = message_media::Entity::find()
        .filter(message_media::Column::MediaId.is_in(linked.iter().cloned()))
        .filter(message_media::Column::MessageId.is_not_in(message_ids))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|l| l.media_id)
        .collect();
    let freed = linked.difference(&still_used).cloned().collect();
    find_many(db, user_id, freed).await
}

/// Removes the media links of messages. `_any`: links carry no user id; callers pass
/// ids of the user's messages they are deleting.
pub async fn unlink_any(db: &impl ConnectionTrait, message_ids: Vec<String>) -> Result<(), DbErr> {
    if message_ids.is_empty() {
        return Ok(());
    }
    message_media::Entity::delete_many()
        .filter(message_media::Column::MessageId.is_in(message_ids))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the user's media rows with these ids (their objects are deleted after commit).
pub async fn delete(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<(), DbErr> {
    owned::delete_in::<media::Entity>(db, media::Column::UserId, user_id, media::Column::Id, ids)
        .await
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
