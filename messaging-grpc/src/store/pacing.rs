//! `pacing_clocks`: the pacing clocks every dispatcher replica shares on PostgreSQL.
//! One row per sending number and one for the account ([`ACCOUNT`]), each holding the
//! instant its next segment may go. A slot is booked only at the present, as the
//! in-process pacer does, and only when both the sender's and the account's clocks
//! allow it; one statement locks both rows (always in key order, so two bookers never
//! deadlock), reads the database's clock once it holds them, and advances both. Times
//! are the database's: replicas with skewed clocks agree, and a restart keeps them.
//!
//! PostgreSQL only: SQLite is one process and paces in memory.
//! `_any` on every function: the clocks belong to sending numbers and to the Twilio
//! account, shared by every user who sends from them, not to a user.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

/// The key of the account-wide clock: no sending number is spelled like it.
pub const ACCOUNT: &str = "account";

/// What a booking attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Booked at this instant (the database's clock): the segments may go now.
    Booked(DateTime<Utc>),
    /// Nothing booked: the sender or the account is busy for this long.
    Wait(Duration),
}

/// Books `sender`'s next slot now, holding the sender for `sender_hold` and the account
/// for `account_hold`, if both clocks are free; otherwise books nothing and says how
/// long to wait. `_any`: see the module.
pub async fn take_slot_any(
    db: &impl ConnectionTrait,
    sender: &str,
    sender_hold: Duration,
    account_hold: Duration,
) -> Result<Slot, DbErr> {
    // The first booking of a sender (or of the account) finds no row: create the
    // missing clocks as free, then book. Rows are never deleted, so once is enough.
    match book(db, sender, sender_hold, account_hold).await? {
        Some(slot) => Ok(slot),
        None => {
            create_clocks(db, sender).await?;
            book(db, sender, sender_hold, account_hold)
                .await?
                .ok_or_else(|| DbErr::Custom("pacing clocks missing after creation".into()))
        }
    }
}

/// One booking attempt; `None` when a clock row does not exist yet.
async fn book(
    db: &impl ConnectionTrait,
    sender: &str,
    sender_hold: Duration,
    account_hold: Duration,
) -> Result<Option<Slot>, DbErr> {
    // `clock_timestamp()` is read in `verdict`, after `clocks` has locked both rows:
    // `now()` would be the statement's start, stale by however long the lock took,
    // and a booking made with it could land closer than the interval to the previous.
    // The UPDATE runs only when both were free; under READ COMMITTED it updates the
    // newest row versions, the ones `clocks` locked and read.
    const SQL: &str = "WITH clocks AS ( \
            SELECT key, next_free FROM pacing_clocks \
            WHERE key IN ($1, $2) ORDER BY key FOR UPDATE \
        ), verdict AS ( \
            SELECT count(*) AS found, max(next_free) AS ready, clock_timestamp() AS at \
            FROM clocks \
        ), booked AS ( \
            UPDATE pacing_clocks c SET next_free = v.at + make_interval(secs => \
                CASE WHEN c.key = $1 THEN $3::float8 ELSE $4::float8 END) \
            FROM verdict v \
            WHERE c.key IN ($1, $2) AND v.found = 2 AND v.ready <= v.at \
            RETURNING c.key \
        ) \
        SELECT found, \
            extract(epoch FROM greatest(ready - at, interval '0'))::float8 AS wait_secs, at, \
            (SELECT count(*) FROM booked) AS booked \
        FROM verdict";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [
                sender.into(),
                ACCOUNT.into(),
                sender_hold.as_secs_f64().into(),
                account_hold.as_secs_f64().into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("pacing booking returned no row".into()))?;
    if row.try_get::<i64>("", "found")? < 2 {
        return Ok(None);
    }
    if row.try_get::<i64>("", "booked")? == 2 {
        return Ok(Some(Slot::Booked(row.try_get("", "at")?)));
    }
    let wait = row.try_get::<f64>("", "wait_secs")?;
    // Never "wait 0" for a slot we did not get (a clock exactly at the boundary).
    Ok(Some(Slot::Wait(
        Duration::from_secs_f64(wait.max(0.0)).max(Duration::from_micros(1)),
    )))
}

/// Books `sender`'s clock again now for `hold`, if it is free, leaving the account's
/// clock alone (a send whose first booking went stale; `dispatch::Pacer::rebook_sender`);
/// otherwise says how long to wait. `_any`: see the module.
pub async fn rebook_sender_any(
    db: &impl ConnectionTrait,
    sender: &str,
    hold: Duration,
) -> Result<Slot, DbErr> {
    // As in `book`: the clock is read after the row is locked.
    const SQL: &str = "WITH clock AS ( \
            SELECT next_free FROM pacing_clocks WHERE key = $1 FOR UPDATE \
        ), verdict AS ( \
            SELECT count(*) AS found, max(next_free) AS ready, clock_timestamp() AS at FROM clock \
        ), booked AS ( \
            UPDATE pacing_clocks c SET next_free = v.at + make_interval(secs => $2::float8) \
            FROM verdict v \
            WHERE c.key = $1 AND (v.ready IS NULL OR v.ready <= v.at) \
            RETURNING c.key \
        ) \
        SELECT found, extract(epoch FROM greatest(coalesce(ready, at) - at, interval '0'))::float8 AS wait_secs, \
            at, (SELECT count(*) FROM booked) AS booked \
        FROM verdict";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            [sender.into(), hold.as_secs_f64().into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("pacing re-booking returned no row".into()))?;
    // No clock row (never: a sender is booked before it is re-booked, and rows are not
    // deleted): nothing to wait for.
    if row.try_get::<i64>("", "booked")? == 1 || row.try_get::<i64>("", "found")? == 0 {
        return Ok(Slot::Booked(row.try_get("", "at")?));
    }
    let wait = row.try_get::<f64>("", "wait_secs")?;
    Ok(Slot::Wait(
        Duration::from_secs_f64(wait.max(0.0)).max(Duration::from_micros(1)),
    ))
}

/// Creates the clocks of `sender` and of the account, free, unless they exist.
async fn create_clocks(db: &impl ConnectionTrait, sender: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "INSERT INTO pacing_clocks (key, next_free) VALUES ($1, to_timestamp(0)), ($2, to_timestamp(0)) \
         ON CONFLICT (key) DO NOTHING",
        [sender.into(), ACCOUNT.into()],
    ))
    .await?;
    Ok(())
}

/// Senders whose next slot is more than `beyond` away, furthest first, at most `max`:
/// claims skip their jobs. `_any`: see the module.
pub async fn paced_out_any(
    db: &impl ConnectionTrait,
    beyond: Duration,
    max: u64,
) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT key FROM pacing_clocks \
             WHERE key <> $1 AND next_free > clock_timestamp() + make_interval(secs => $2::float8) \
             ORDER BY next_free DESC LIMIT $3",
            [
                ACCOUNT.into(),
                beyond.as_secs_f64().into(),
                i64::try_from(max).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String>("", "key"))
        .collect()
}

/// How long until the first busy sender is free again, if any is busy.
/// `_any`: see the module.
pub async fn next_free_any(db: &impl ConnectionTrait) -> Result<Option<Duration>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT extract(epoch FROM min(next_free) - clock_timestamp())::float8 AS secs \
             FROM pacing_clocks WHERE key <> $1 AND next_free > clock_timestamp()",
            [ACCOUNT.into()],
        ))
        .await?;
    let secs = row
        .map(|r| r.try_get::<Option<f64>>("", "secs"))
        .transpose()?
        .flatten();
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}
