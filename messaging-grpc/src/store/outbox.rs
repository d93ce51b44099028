//! `outbox`: send jobs written in the same transaction as their message, claimed by
//! dispatchers with a lease.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    QueryFilter, Statement, Value, sea_query::Expr,
};

use super::{entities::outbox, now};

/// Queues `message_id` for immediate dispatch.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_id: &str,
) -> Result<(), DbErr> {
    outbox::Entity::insert(outbox::ActiveModel {
        message_id: Set(message_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now()),
        claimed_until: Set(None),
        last_error: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The job of a message, if still pending. `_any`: jobs are keyed by message id;
/// callers name a message they already hold.
pub async fn find_any(
    db: &impl ConnectionTrait,
    message_id: &str,
) -> Result<Option<outbox::Model>, DbErr> {
    outbox::Entity::find_by_id(message_id.to_owned())
        .one(db)
        .await
}

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub message_id: String,
    pub user_id: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Claims up to `limit` due jobs until `lease_until`. On PostgreSQL the inner select
/// skips rows other dispatchers hold (`FOR UPDATE SKIP LOCKED`), so replicas never
/// claim the same job; on SQLite the single UPDATE runs under the write lock.
/// `_any`: the dispatcher serves every user.
pub async fn claim_any(
    db: &impl ConnectionTrait,
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => (
            "UPDATE outbox SET claimed_until = $1 WHERE message_id IN (\
               SELECT message_id FROM outbox \
               WHERE next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING message_id, user_id, attempts, last_error",
            vec![lease_until.into(), at.into(), (limit as i64).into()],
        ),
        _ => (
            "UPDATE outbox SET claimed_until = ? WHERE message_id IN (\
               SELECT message_id FROM outbox \
               WHERE next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) \
               ORDER BY next_attempt_at LIMIT ?) \
             RETURNING message_id, user_id, attempts, last_error",
            vec![
                lease_until.into(),
                at.into(),
                at.into(),
                (limit as i64).into(),
            ],
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                message_id: r.try_get("", "message_id")?,
                user_id: r.try_get("", "user_id")?,
                attempts: r.try_get::<i32>("", "attempts")?.max(0) as u32,
                last_error: r.try_get("", "last_error")?,
            })
        })
        .collect()
}

/// The earliest `next_attempt_at` among jobs nobody holds a lease on (`idx_outbox_due`).
/// `_any`: the dispatcher serves every user.
pub async fn next_due_any(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let next = outbox::Entity::find()
        .filter(
            Condition::any()
                .add(outbox::Column::ClaimedUntil.is_null())
                .add(outbox::Column::ClaimedUntil.lt(now)),
        )
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(1)
        .one(db)
        .await?;
    Ok(next.map(|j| j.next_attempt_at))
}

/// Puts a job back for a later attempt and releases the claim. `_any`: keyed by the
/// message id of a job the dispatcher claimed.
pub async fn reschedule_any(
    db: &impl ConnectionTrait,
    message_id: &str,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<&str>,
) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Attempts, Expr::value(attempts as i32))
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(
            outbox::Column::ClaimedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::LastError,
            Expr::value(last_error.map(|e| truncate(e, 500))),
        )
        .filter(outbox::Column::MessageId.eq(message_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes a finished job. `_any`: keyed by the message id of a claimed job.
pub async fn remove_any(db: &impl ConnectionTrait, message_id: &str) -> Result<(), DbErr> {
    outbox::Entity::delete_by_id(message_id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Jobs not finished yet, of every user (metrics, tests).
pub async fn pending_any(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    outbox::Entity::find().count(db).await
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
