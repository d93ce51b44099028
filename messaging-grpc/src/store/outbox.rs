//! `outbox`: send jobs written in the same transaction as their message, claimed by
//! dispatchers with a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement,
    UpdateMany, Value, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    entities::{message, outbox},
    now,
};

/// When a rescheduled job is due again.
#[derive(Clone, Copy, Debug)]
pub enum Due {
    /// At this time (a scheduled message's send time).
    At(DateTime<Utc>),
    /// This long from now, by the database's clock on PostgreSQL (a retry's delay).
    After(Duration),
}

/// A claimed job. `token` fences every outcome write: a dispatcher whose lease ran
/// out (and was claimed by another) can no longer change the job or its message.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub message_id: String,
    pub user_id: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub token: String,
    /// When the last create at the provider was started, if one was.
    pub create_started_at: Option<DateTime<Utc>>,
    /// How long before the claim that create started, by the clock that stamped it
    /// (PostgreSQL's on PostgreSQL: a replica's own clock would be off by its skew).
    pub create_age: Option<Duration>,
    /// When the claim was made, by this process's monotonic clock.
    pub claimed_at: std::time::Instant,
    /// Look-ups since that create that did not find it.
    pub empty_lookups: u32,
}

/// Claims up to `limit` due jobs for `lease`, skipping jobs from the senders in
/// `skip_senders` (paced out: they are not due). Leases are stamped with the
/// database's clock on PostgreSQL, so replicas with skewed clocks agree on when a
/// lease ends; SQLite is one process with one clock. On PostgreSQL the inner select
/// skips rows other dispatchers hold (`FOR UPDATE SKIP LOCKED`), so replicas never
/// claim the same job; on SQLite the single UPDATE runs under the write lock.
/// `_any`: the dispatcher serves every user.
pub async fn claim_any(
    db: &impl ConnectionTrait,
    lease: Duration,
    limit: u64,
    skip_senders: &[String],
) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let token = Uuid::new_v4().to_string();
    let skip = skip_clause(backend, skip_senders.len());
    let (sql, mut values): (String, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => (
            format!(
                "UPDATE outbox SET claimed_until = clock_timestamp() + $1 * interval '1 millisecond',                    claim_token = $2                  WHERE message_id IN (                   SELECT o.message_id FROM outbox o                    WHERE o.next_attempt_at <= clock_timestamp()                      AND (o.claimed_until IS NULL OR o.claimed_until < clock_timestamp()){skip}                    ORDER BY o.next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)                  RETURNING message_id, user_id, attempts, last_error, create_started_at, empty_lookups,                            extract(epoch FROM clock_timestamp() - create_started_at)::float8 AS create_age"
            ),
            vec![
                (lease.as_millis() as i64).into(),
                token.clone().into(),
                (limit as i64).into(),
            ],
        ),
        _ => {
            let at = super::now();
            let until = at + chrono::Duration::from_std(lease).unwrap_or_default();
            (
                format!(
                    "UPDATE outbox SET claimed_until = ?, claim_token = ?                      WHERE message_id IN (                       SELECT o.message_id FROM outbox o                        WHERE o.next_attempt_at <= ?                          AND (o.claimed_until IS NULL OR o.claimed_until < ?){skip}                        ORDER BY o.next_attempt_at LIMIT ?)                      RETURNING message_id, user_id, attempts, last_error, create_started_at, empty_lookups"
                ),
                vec![
                    until.into(),
                    token.clone().into(),
                    at.into(),
                    at.into(),
                    (limit as i64).into(),
                ],
            )
        }
    };
    // The skipped senders' placeholders come after the others (PostgreSQL numbers
    // them from $4, SQLite takes `?` in order — they sit before LIMIT, so insert).
    match backend {
        DatabaseBackend::Postgres => values.extend(skip_senders.iter().map(|s| s.clone().into())),
        _ => {
            let at = values.len() - 1;
            for (i, s) in skip_senders.iter().enumerate() {
                values.insert(at + i, s.clone().into());
            }
        }
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let claimed_at = std::time::Instant::now();
    let at = super::now();
    rows.iter()
        .map(|r| {
            let create_started_at: Option<DateTime<Utc>> = r.try_get("", "create_started_at")?;
            let create_age = match backend {
                DatabaseBackend::Postgres => r
                    .try_get::<Option<f64>>("", "create_age")?
                    .map(|secs| Duration::from_secs_f64(secs.max(0.0))),
                // One process, one clock: the stamp is ours.
                _ => create_started_at.map(|t| (at - t).to_std().unwrap_or_default()),
            };
            Ok(Claimed {
                message_id: r.try_get("", "message_id")?,
                user_id: r.try_get("", "user_id")?,
                attempts: r.try_get::<i32>("", "attempts")?.max(0) as u32,
                last_error: r.try_get("", "last_error")?,
                token: token.clone(),
                create_started_at,
                create_age,
                claimed_at,
                empty_lookups: r.try_get::<i32>("", "empty_lookups")?.max(0) as u32,
            })
        })
        .collect()
}

/// `AND the message's sender is not one of n skipped`, with placeholders.
fn skip_clause(backend: DatabaseBackend, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let marks: Vec<String> = match backend {
        DatabaseBackend::Postgres => (0..n).map(|i| format!("${}", i + 4)).collect(),
        _ => vec!["?".to_owned(); n],
    };
    format!(
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = o.message_id            AND m.owner_e164 IN ({}))",
        marks.join(", ")
    )
}

/// The lease of `job` is still ours: extends it by `lease` (from the database's clock
/// on PostgreSQL). False when it ran out or another dispatcher claimed the job.
pub async fn renew_held(
    db: &impl ConnectionTrait,
    job: &Claimed,
    lease: Duration,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let (sql, values): (String, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => {
            // clock_timestamp(): inside a batch transaction now() is the batch's start.
            (
                "UPDATE outbox SET claimed_until = clock_timestamp() + $1 * interval '1 millisecond' \
                 WHERE message_id = $2 AND claim_token = $3 AND claimed_until > clock_timestamp()"
                    .to_owned(),
                vec![
                    (lease.as_millis() as i64).into(),
                    job.message_id.clone().into(),
                    job.token.clone().into(),
                ],
            )
        }
        _ => {
            let at = super::now();
            let until = at + chrono::Duration::from_std(lease).unwrap_or_default();
            let values: Vec<Value> = vec![
                until.into(),
                job.message_id.clone().into(),
                job.token.clone().into(),
                at.into(),
            ];
            (
                "UPDATE outbox SET claimed_until = ? \
                 WHERE message_id = ? AND claim_token = ? AND claimed_until > ?"
                    .to_owned(),
                values,
            )
        }
    };
    let done = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A look-up for the job's unknown outcome found nothing: counted, and the job comes
/// back at `next_attempt_at` for the next look-up (not an attempt). False when the
/// claim is no longer ours.
pub async fn note_empty_lookup_held(
    db: &impl ConnectionTrait,
    job: &Claimed,
    next: Due,
) -> Result<bool, DbErr> {
    let update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::EmptyLookups,
            // (ExprTrait named here: imported, its `max` shadows `Ord::max` above.)
            sea_orm::sea_query::ExprTrait::add(Expr::col(outbox::Column::EmptyLookups), 1),
        )
        .col_expr(
            outbox::Column::NextAttemptAt,
            due_at(db.get_database_backend(), next),
        );
    let done = held(unclaim(update), job).exec(db).await?;
    Ok(done.rows_affected == 1)
}

/// Extends the lease of every job still held under one of `tokens` (the claims of a
/// live dispatcher: its heartbeat). A dead dispatcher stops renewing, so its claims
/// end within one lease and another replica takes the jobs over. Returns the jobs
/// renewed.
pub async fn renew_tokens_any(
    db: &impl ConnectionTrait,
    tokens: &[String],
    lease: Duration,
) -> Result<u64, DbErr> {
    if tokens.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let (sql, mut values): (String, Vec<Value>) = match backend {
        DatabaseBackend::Postgres => {
            let marks: Vec<String> = (0..tokens.len()).map(|i| format!("${}", i + 2)).collect();
            (
                // SKIP LOCKED: a row locked now is being written by its user's writer
                // (SENDING renews the lease itself; an outcome ends the claim). Waiting
                // for it could close a cycle with that writer's batch, which holds
                // that row and wants another this statement locked (the pipeline's
                // writers are routed by user; this write is no one user's), and a
                // lease lasts three beats, so one skipped beat costs nothing.
                format!(
                    "UPDATE outbox SET claimed_until = clock_timestamp() + $1 * interval '1 millisecond' \
                     WHERE message_id IN (SELECT message_id FROM outbox \
                     WHERE claim_token IN ({}) FOR UPDATE SKIP LOCKED)",
                    marks.join(", ")
                ),
                vec![(lease.as_millis() as i64).into()],
            )
        }
        _ => {
            let until = super::now() + chrono::Duration::from_std(lease).unwrap_or_default();
            let marks = vec!["?"; tokens.len()].join(", ");
            (
                format!("UPDATE outbox SET claimed_until = ? WHERE claim_token IN ({marks})"),
                vec![until.into()],
            )
        }
    };
    values.extend(tokens.iter().map(|t| t.clone().into()));
    let done = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(done.rows_affected())
}

/// Ends every claim (SQLite at start-up only: the file lock proves no other process
/// serves this database, so every claim is a dead process's and its jobs are due
/// now, not when the lease would have ended). Returns the jobs released.
pub async fn release_all_sqlite(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let done = unclaim(outbox::Entity::update_many())
        .filter(outbox::Column::ClaimToken.is_not_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
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

/// `due` as the value of `next_attempt_at`, by the clock claims compare with.
pub(super) fn due_at(backend: DatabaseBackend, due: Due) -> Expr {
    match (due, backend) {
        (Due::At(at), _) => Expr::value(at),
        // Claims compare due times with PostgreSQL's clock: a delay counted from this
        // replica's clock would fire early or late by its skew.
        (Due::After(delay), DatabaseBackend::Postgres) => Expr::cust_with_values(
            "clock_timestamp() + $1 * interval '1 millisecond'",
            [delay.as_millis() as i64],
        ),
        (Due::After(delay), _) => {
            Expr::value(now() + chrono::Duration::from_std(delay).unwrap_or_default())
        }
    }
}

/// Puts a held job back for a later attempt and releases the claim. False when the
/// claim is no longer ours (nothing changed).
pub async fn reschedule_held(
    db: &impl ConnectionTrait,
    job: &Claimed,
    attempts: u32,
    due: Due,
    last_error: Option<&str>,
) -> Result<bool, DbErr> {
    let update = outbox::Entity::update_many()
        .col_expr(outbox::Column::Attempts, Expr::value(attempts as i32));
    put_back(db, update, job, due, last_error).await
}

/// [`reschedule_held`] after the provider refused as busy (Twilio's 429): never
/// processed, so neither an attempt nor a create. The create stamps go back to what
/// they were at the claim: a resend after an unknown outcome whose create was refused
/// does not wait the settle time and two look-ups again for a create that never was
/// (the next attempt still looks up once, as every attempt after an unknown does).
pub async fn reschedule_busy_held(
    db: &impl ConnectionTrait,
    job: &Claimed,
    due: Due,
    last_error: Option<&str>,
) -> Result<bool, DbErr> {
    let update = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::CreateStartedAt,
            Expr::value(job.create_started_at),
        )
        .col_expr(
            outbox::Column::EmptyLookups,
            Expr::value(job.empty_lookups as i32),
        );
    put_back(db, update, job, due, last_error).await
}

/// `update` of a held job, which also puts it back: due at `due`, the claim let go,
/// `last_error` kept. False when the claim is no longer ours.
async fn put_back(
    db: &impl ConnectionTrait,
    update: UpdateMany<outbox::Entity>,
    job: &Claimed,
    due: Due,
    last_error: Option<&str>,
) -> Result<bool, DbErr> {
    let next = due_at(db.get_database_backend(), due);
    let update = unclaim(update.col_expr(outbox::Column::NextAttemptAt, next)).col_expr(
        outbox::Column::LastError,
        Expr::value(last_error.map(|e| truncate(e, 500))),
    );
    let done = held(update, job).exec(db).await?;
    Ok(done.rows_affected == 1)
}

/// Lets go of a held job without counting an attempt (its sender is paced out):
/// another claim takes it when it is due. False when the claim is no longer ours.
pub async fn release_held(db: &impl ConnectionTrait, job: &Claimed) -> Result<bool, DbErr> {
    let done = held(unclaim(outbox::Entity::update_many()), job)
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Removes a finished job that we hold. False when the claim is no longer ours.
pub async fn remove_held(db: &impl ConnectionTrait, job: &Claimed) -> Result<bool, DbErr> {
    let done = held(outbox::Entity::delete_many(), job).exec(db).await?;
    Ok(done.rows_affected == 1)
}

/// Removes a job whoever holds it: the provider's own answer (a status callback
/// adopting the message) settles it for good. `_any`: keyed by message id.
pub async fn remove_any(db: &impl ConnectionTrait, message_id: &str) -> Result<(), DbErr> {
    outbox::Entity::delete_by_id(message_id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Makes the jobs of the user's messages from `owner_e164` due now, so a released
/// number's queue is failed at once rather than at each job's next retry — but for
/// messages in the `scheduled` status, which keep their send time.
pub async fn hurry_sender(
    db: &impl ConnectionTrait,
    user_id: &str,
    owner_e164: &str,
    scheduled: &str,
) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Query;
    let of_sender = Query::select()
        .column(message::Column::Id)
        .from(message::Entity)
        .and_where(message::Column::UserId.eq(user_id))
        .and_where(message::Column::OwnerE164.eq(owner_e164))
        // A scheduled message waits for its time (and fails then if the number is
        // still not the user's): only what is due anyway is hurried.
        .and_where(message::Column::Status.ne(scheduled))
        .to_owned();
    // Due now by the clock claims compare with (PostgreSQL's on PostgreSQL).
    let due_now = due_at(db.get_database_backend(), Due::After(Duration::ZERO));
    let done = outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAt, due_now)
        .filter(outbox::Column::UserId.eq(user_id))
        .filter(outbox::Column::MessageId.in_subquery(of_sender))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// Jobs not finished yet, of every user (metrics, tests).
pub async fn pending_any(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    outbox::Entity::find().count(db).await
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `update`, also ending the claim: no lease, no token (the job is anyone's when due).
fn unclaim(update: UpdateMany<outbox::Entity>) -> UpdateMany<outbox::Entity> {
    update
        .col_expr(
            outbox::Column::ClaimedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::ClaimToken,
            Expr::value(Option::<String>::None),
        )
}

/// `query` on `job` only while its claim is ours: its token fences the write, so a
/// dispatcher whose lease ran out changes nothing.
fn held<Q: QueryFilter>(query: Q, job: &Claimed) -> Q {
    query
        .filter(outbox::Column::MessageId.eq(job.message_id.as_str()))
        .filter(outbox::Column::ClaimToken.eq(job.token.as_str()))
}
