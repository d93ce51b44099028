//! `unroutable_inbound` and `parked_statuses`: what the ingest path keeps aside.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::{
    entities::{parked_status as parked, unroutable},
    now,
};

/// Records an inbound message nobody owns (once per SID). `_any`: such a message has
/// no user.
pub async fn record_unroutable_any(
    db: &impl ConnectionTrait,
    sid: &str,
    account_sid: &str,
    from: &str,
    to: &str,
    num_media: i32,
) -> Result<(), DbErr> {
    unroutable::Entity::insert(unroutable::ActiveModel {
        message_sid: Set(sid.to_owned()),
        account_sid: Set(account_sid.to_owned()),
        from_number: Set(from.to_owned()),
        to_number: Set(to.to_owned()),
        num_media: Set(num_media),
        received_at: Set(now()),
    })
    .on_conflict_do_nothing_on([unroutable::Column::MessageSid])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Unroutable inbound messages, newest first (operators). `_any`: they belong to
/// nobody, which is why they are here.
pub async fn unroutable_any(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<unroutable::Model>, DbErr> {
    use sea_orm::QuerySelect;
    unroutable::Entity::find()
        .order_by_desc(unroutable::Column::ReceivedAt)
        .limit(limit)
        .all(db)
        .await
}

/// Keeps a status for a SID not recorded yet (once per SID and status). `_any`: the
/// callback names only the SID; no message, so no user, carries it yet.
pub async fn park_any(
    db: &impl ConnectionTrait,
    sid: &str,
    status: &str,
    error_code: Option<i32>,
    error_message: Option<&str>,
) -> Result<(), DbErr> {
    parked::Entity::insert(parked::ActiveModel {
        message_sid: Set(sid.to_owned()),
        status: Set(status.to_owned()),
        error_code: Set(error_code),
        error_message: Set(error_message.map(str::to_owned)),
        received_at: Set(now()),
    })
    .on_conflict_do_nothing_on([parked::Column::MessageSid, parked::Column::Status])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The statuses parked for `sid`, oldest first. `_any`: a parked callback names only
/// a provider SID; the user is known once a message carries it.
pub async fn parked_for_any(
    db: &impl ConnectionTrait,
    sid: &str,
) -> Result<Vec<parked::Model>, DbErr> {
    parked::Entity::find()
        .filter(parked::Column::MessageSid.eq(sid))
        .order_by_asc(parked::Column::ReceivedAt)
        .all(db)
        .await
}

/// Removes the statuses of `sid` that were read and applied — only those: a status
/// parked after the read stays for the next pass instead of being lost.
/// `_any`: see [`parked_for_any`].
pub async fn unpark_any(
    db: &impl ConnectionTrait,
    sid: &str,
    statuses: Vec<String>,
) -> Result<(), DbErr> {
    parked::Entity::delete_many()
        .filter(parked::Column::MessageSid.eq(sid))
        .filter(parked::Column::Status.is_in(statuses))
        .exec(db)
        .await?;
    Ok(())
}

/// Drops parked statuses older than `before` (callbacks for messages not ours).
/// `_any`: parked rows carry no user.
pub async fn prune_parked_any(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(parked::Entity::delete_many()
        .filter(parked::Column::ReceivedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// Drops unroutable inbound records older than `before` (operators had their time
/// to look). `_any`: they carry no user.
pub async fn prune_unroutable_any(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(unroutable::Entity::delete_many()
        .filter(unroutable::Column::ReceivedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
