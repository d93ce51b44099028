//! `events` and `user_event_seq`: the per-user, gap-free event log behind WatchEvents.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
    sea_query::{Expr, OnConflict, Query},
};

use super::{
    entities::{event, user_event_seq},
    now,
};

/// PostgreSQL channel that carries `"<cursor> <user id>"` wake-ups (never content).
pub const NOTIFY_CHANNEL: &str = "messaging_events";

/// An event to append.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub message_id: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub unread_count: Option<i64>,
    /// Whether the conversation is muted now, when the caller already read it (a
    /// message write has the row from its upsert); `None`: looked up here.
    pub muted: Option<bool>,
}

/// Appends an event inside the caller's transaction and returns its cursor. Call it
/// last in the transaction: bumping the user's counter row locks it until commit, so
/// a user's cursors are handed out in commit order and a reader that has seen cursor
/// n has seen everything before n. On PostgreSQL a NOTIFY (delivered at commit) wakes
/// the streams of every replica.
pub async fn append(
    db: &impl ConnectionTrait,
    user_id: &str,
    e: NewEvent<'_>,
) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let bump = match backend {
        DatabaseBackend::Postgres => {
            "INSERT INTO user_event_seq (user_id, last_cursor, pruned_through) VALUES ($1, 1, 0) \
             ON CONFLICT (user_id) DO UPDATE SET last_cursor = user_event_seq.last_cursor + 1 \
             RETURNING last_cursor"
        }
        _ => {
            "INSERT INTO user_event_seq (user_id, last_cursor, pruned_through) VALUES (?, 1, 0) \
             ON CONFLICT (user_id) DO UPDATE SET last_cursor = user_event_seq.last_cursor + 1 \
             RETURNING last_cursor"
        }
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            bump,
            [Value::from(user_id)],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("event counter".into()))?;
    let cursor: i64 = row.try_get("", "last_cursor")?;
    // Notification senders read this to stay quiet for muted conversations.
    let muted = match (e.muted, e.contact_id) {
        (Some(known), _) => known,
        (None, Some(contact_id)) => {
            super::conversations::is_muted(db, user_id, contact_id, now()).await?
        }
        (None, None) => false,
    };
    event::Entity::insert(event::ActiveModel {
        user_id: sea_orm::Set(user_id.to_owned()),
        cursor: sea_orm::Set(cursor),
        kind: sea_orm::Set(e.kind.to_owned()),
        message_id: sea_orm::Set(e.message_id.map(str::to_owned)),
        contact_id: sea_orm::Set(e.contact_id.map(str::to_owned)),
        status: sea_orm::Set(e.status.map(str::to_owned)),
        unread_count: sea_orm::Set(e.unread_count),
        created_at: sea_orm::Set(now()),
        muted: sea_orm::Set(muted),
    })
    .exec_without_returning(db)
    .await?;
    if backend == DatabaseBackend::Postgres {
        let payload = format!("{cursor} {user_id}");
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [Value::from(NOTIFY_CHANNEL), Value::from(payload)],
        ))
        .await?;
    }
    Ok(cursor)
}

/// The user's events after `cursor`, oldest first.
pub async fn after(
    db: &impl ConnectionTrait,
    user_id: &str,
    cursor: i64,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    event::Entity::find()
        .filter(event::Column::UserId.eq(user_id))
        .filter(event::Column::Cursor.gt(cursor))
        .order_by_asc(event::Column::Cursor)
        .limit(limit)
        .all(db)
        .await
}

/// `(last cursor handed out, last cursor pruned)` for the user; zeros if none yet.
pub async fn position(db: &impl ConnectionTrait, user_id: &str) -> Result<(i64, i64), DbErr> {
    Ok(user_event_seq::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .map_or((0, 0), |r| (r.last_cursor, r.pruned_through)))
}

/// Deletes events created before `before` for up to `max_users` users, remembering
/// per user how far it pruned, so a client resuming from a pruned cursor is told to
/// resync instead of missing events. Returns `(users, events deleted)`; call until no
/// user is left. Small batches keep each transaction short: only these users'
/// counter rows are locked, never everyone's (which would stall every write).
/// `_any`: retention applies to every user.
pub async fn prune_batch_any(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    max_users: u64,
) -> Result<(u64, u64), DbErr> {
    let backend = db.get_database_backend();
    let users: Vec<String> = event::Entity::find()
        .select_only()
        .column(event::Column::UserId)
        .distinct()
        .filter(event::Column::CreatedAt.lt(before))
        .limit(max_users)
        .into_tuple()
        .all(db)
        .await?;
    let users = if backend == DatabaseBackend::Postgres && !users.is_empty() {
        // Only the counters no writer holds now, locked in key order: the pipeline's
        // writers are routed by user and hold their batch's counter rows until they
        // commit, and this write is no one user's — waiting for one of them could close
        // a cycle with a writer that then wants a row locked here. A skipped user is
        // pruned by a later pass.
        let marks: Vec<String> = (1..=users.len()).map(|i| format!("${i}")).collect();
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT user_id FROM user_event_seq WHERE user_id IN ({}) \
                     ORDER BY user_id FOR UPDATE SKIP LOCKED",
                    marks.join(", ")
                ),
                users.iter().map(|u| Value::from(u.clone())),
            ))
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String>("", "user_id"))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        users
    };
    if users.is_empty() {
        return Ok((0, 0));
    }
    let marks = |from: usize| -> String {
        (0..users.len())
            .map(|i| match backend {
                DatabaseBackend::Postgres => format!("${}", i + from),
                _ => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (mark, delete) = match backend {
        DatabaseBackend::Postgres => (
            format!(
                "UPDATE user_event_seq SET pruned_through = COALESCE((SELECT MAX(e.cursor) FROM events e \
                 WHERE e.user_id = user_event_seq.user_id AND e.created_at < $1), pruned_through) \
                 WHERE user_id IN ({})",
                marks(2)
            ),
            format!(
                "DELETE FROM events WHERE created_at < $1 AND user_id IN ({})",
                marks(2)
            ),
        ),
        _ => (
            format!(
                "UPDATE user_event_seq SET pruned_through = COALESCE((SELECT MAX(e.cursor) FROM events e \
                 WHERE e.user_id = user_event_seq.user_id AND e.created_at < ?), pruned_through) \
                 WHERE user_id IN ({})",
                marks(1)
            ),
            format!(
                "DELETE FROM events WHERE created_at < ? AND user_id IN ({})",
                marks(1)
            ),
        ),
    };
    let values: Vec<Value> = std::iter::once(Value::from(before))
        .chain(users.iter().map(|u| Value::from(u.clone())))
        .collect();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        mark,
        values.clone(),
    ))
    .await?;
    let res = db
        .execute_raw(Statement::from_sql_and_values(backend, delete, values))
        .await?;
    Ok((users.len() as u64, res.rows_affected()))
}

/// Moves each user's event counter on by their count of new events; returns each
/// user's last cursor before this batch (the batch's events follow it).
pub(super) async fn bump_counters<'a>(
    db: &impl ConnectionTrait,
    per_user: &HashMap<&'a str, i64>,
) -> Result<HashMap<&'a str, i64>, DbErr> {
    let mut q = Query::insert();
    q.into_table(user_event_seq::Entity).columns([
        user_event_seq::Column::UserId,
        user_event_seq::Column::LastCursor,
        user_event_seq::Column::PrunedThrough,
    ]);
    // In user order: counter rows are locked in the order of the VALUES list, so
    // batches of two replicas over the same users lock them alike (no deadlock cycle).
    let mut users: Vec<(&&str, &i64)> = per_user.iter().collect();
    users.sort_unstable();
    for (user, n) in users {
        q.values_panic([(**user).into(), (*n).into(), 0i64.into()]);
    }
    q.on_conflict(
        OnConflict::column(user_event_seq::Column::UserId)
            .value(
                user_event_seq::Column::LastCursor,
                Expr::cust("user_event_seq.last_cursor + excluded.last_cursor"),
            )
            .to_owned(),
    )
    .returning(Query::returning().columns([
        user_event_seq::Column::UserId,
        user_event_seq::Column::LastCursor,
    ]));
    let mut before = HashMap::with_capacity(per_user.len());
    for row in super::message_batch::query(db, &q).await? {
        let user: String = row.try_get_by_index(0)?;
        let last: i64 = row.try_get_by_index(1)?;
        if let Some((user, n)) = per_user.get_key_value(user.as_str()) {
            before.insert(*user, last - n);
        }
    }
    Ok(before)
}

/// On PostgreSQL, one NOTIFY per event (delivered at commit) wakes every replica's
/// streams; SQLite is one process (the caller announces in-process after commit).
pub(super) async fn notify(db: &impl ConnectionTrait, notices: &[String]) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres || notices.is_empty() {
        return Ok(());
    }
    for chunk in notices.chunks(1_000) {
        let calls: Vec<String> = (0..chunk.len())
            .map(|n| format!("pg_notify($1, ${})", n + 2))
            .collect();
        let mut values = Vec::with_capacity(chunk.len() + 1);
        values.push(Value::from(NOTIFY_CHANNEL));
        values.extend(chunk.iter().map(|p| Value::from(p.as_str())));
        let sql = format!("SELECT {}", calls.join(", "));
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}
