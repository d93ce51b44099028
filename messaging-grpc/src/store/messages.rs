//! `messages`: one row per SMS/MMS, body sealed.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait as _, sea_query::Expr,
};

use super::{entities::message, owned, page_token::Cursor};

/// `messages.direction` values.
pub const OUTBOUND: &str = "outbound";
pub const INBOUND: &str = "inbound";

pub async fn insert(db: &impl ConnectionTrait, row: message::ActiveModel) -> Result<(), DbErr> {
    message::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

owned::lookups!(message, "message");

pub async fn find_by_provider_sid(
    db: &impl ConnectionTrait,
    user_id: &str,
    sid: &str,
) -> Result<Option<message::Model>, DbErr> {
    owned::find_by::<message::Entity>(db, user_id, message::Column::ProviderSid, sid).await
}

pub async fn find_by_idempotency_key(
    db: &impl ConnectionTrait,
    user_id: &str,
    key: &str,
) -> Result<Option<message::Model>, DbErr> {
    owned::find_by::<message::Entity>(db, user_id, message::Column::IdempotencyKey, key).await
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
/// before `up_to` (never those received from a blocked number: they were not counted). Already-read messages keep their first `read_at`, and nothing is
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
        .filter(message::Column::ReadAt.is_null())
        .filter(message::Column::Blocked.eq(false));
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
pub(super) fn older_than(c: &Cursor) -> Condition {
    Condition::any()
        .add(message::Column::CreatedAt.lt(c.at))
        .add(
            Condition::all()
                .add(message::Column::CreatedAt.eq(c.at))
                .add(message::Column::Id.lt(c.id.as_str())),
        )
}

/// A message by id, whoever owns it. `_any`: only for ids from our own signed
/// StatusCallback URLs, which name a message but no user.
pub async fn find_any(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find_by_id(id.to_owned()).one(db).await
}

/// One of the user's messages as the dispatcher loads it to send: the row, whether its
/// contact opted out of its sender (STOP), and whether its sender is still the user's
/// — in one query, where three reads were three hops to a reader's thread per send.
pub async fn find_for_dispatch(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<Option<(message::Model, bool, bool)>, DbErr> {
    let q = message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(id))
        .expr_as(
            Expr::cust(
                "EXISTS (SELECT 1 FROM opt_outs o WHERE o.user_id = messages.user_id \
                 AND o.owner_e164 = messages.owner_e164 AND o.contact_id = messages.contact_id)",
            ),
            "opted_out",
        )
        .expr_as(
            Expr::cust(
                "EXISTS (SELECT 1 FROM phone_numbers p WHERE p.e164 = messages.owner_e164 \
                 AND p.user_id = messages.user_id)",
            ),
            "sender_owned",
        );
    let backend = db.get_database_backend();
    let Some(row) = db.query_one_raw(q.build(backend)).await? else {
        return Ok(None);
    };
    let model = <message::Model as sea_orm::FromQueryResult>::from_query_result(&row, "")?;
    Ok(Some((
        model,
        row.try_get::<bool>("", "opted_out")?,
        row.try_get::<bool>("", "sender_owned")?,
    )))
}

/// The message with a provider SID, whoever owns it. Not user-scoped on purpose:
/// provider callbacks and reconciliation know the SID, not the user.
pub async fn find_by_provider_sid_any(
    db: &impl ConnectionTrait,
    sid: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::ProviderSid.eq(sid))
        .one(db)
        .await
}

/// Fields a status change may set; `None` leaves a column as it is.
#[derive(Clone, Debug, Default)]
pub struct StatusChange {
    pub status: Option<String>,
    pub provider_sid: Option<String>,
    pub segments: Option<i32>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Applies `change` if the message still has status `expected` (optimistic
/// concurrency: a concurrent change makes this return `None` instead of overwriting);
/// the message's contact id when it changed.
pub async fn change_status(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    expected: &str,
    change: StatusChange,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    // Every status write goes through here, so this is where status metrics are counted.
    let counted = change.status.clone().map(|s| (s, change.error_code));
    let mut q =
        message::Entity::update_many().col_expr(message::Column::UpdatedAt, Expr::value(at));
    if let Some(v) = change.status {
        q = q.col_expr(message::Column::Status, Expr::value(v));
    }
    if let Some(v) = change.provider_sid {
        q = q.col_expr(message::Column::ProviderSid, Expr::value(v));
    }
    if let Some(v) = change.segments {
        q = q.col_expr(message::Column::Segments, Expr::value(v));
    }
    if let Some(v) = change.error_code {
        q = q.col_expr(message::Column::ErrorCode, Expr::value(v));
    }
    if let Some(v) = change.error_message {
        q = q.col_expr(message::Column::ErrorMessage, Expr::value(v));
    }
    if let Some(v) = change.sent_at {
        q = q.col_expr(message::Column::SentAt, Expr::value(v));
    }
    if let Some(v) = change.delivered_at {
        q = q.col_expr(message::Column::DeliveredAt, Expr::value(v));
    }
    let mut update = q
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::Status.eq(expected))
        .into_query();
    // The contact comes back with the change (its event names it): one statement where
    // a second read of the row was another round trip in the writer's batch.
    update.returning_col(message::Column::ContactId);
    let row = db.query_one(&update).await?;
    let contact_id = row
        .map(|r| r.try_get::<String>("", "contact_id"))
        .transpose()?;
    if contact_id.is_some()
        && let Some((status, error_code)) = counted
    {
        crate::metrics::status_changed(&status);
        crate::metrics::final_status(&status, error_code);
    }
    Ok(contact_id)
}

/// Marks a message as looked at now, so the reconciliation job waits a full period
/// before asking about it again.
pub async fn touch(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::UpdatedAt, Expr::value(at))
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Outbound messages handed to the provider (SENT) without a final status, untouched
/// since `updated_before` and created after `created_after`, oldest update first.
/// `_any`: cross-user on purpose, reconciliation is a system job.
pub async fn sent_stuck_any(
    db: &impl ConnectionTrait,
    updated_before: DateTime<Utc>,
    created_after: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    sent_stuck(updated_before, created_after, limit)
        .all(db)
        .await
}

/// [`sent_stuck_any`]'s query (its plan is tested: it must stay on the partial
/// `idx_messages_sent_updated`).
pub fn sent_stuck(
    updated_before: DateTime<Utc>,
    created_after: DateTime<Utc>,
    limit: u64,
) -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        // Literal, as the partial `idx_messages_sent_updated`'s condition: a bound
        // status leaves the index to plans made with the value (PostgreSQL's generic
        // plan cannot use it; SQLite's plan before its re-prepare on bind does not).
        .filter(Expr::cust("status = 'sent'"))
        .filter(message::Column::UpdatedAt.lt(updated_before))
        .filter(message::Column::CreatedAt.gt(created_after))
        .filter(message::Column::Direction.eq(OUTBOUND))
        .filter(message::Column::ProviderSid.is_not_null())
        .order_by_asc(message::Column::UpdatedAt)
        .limit(limit)
}

/// `(id, status)` of every message of a conversation, blocked ones included.
pub async fn ids_in_conversation(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Vec<(String, String)>, DbErr> {
    message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .column(message::Column::Status)
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::ContactId.eq(contact_id))
        .into_tuple()
        .all(db)
        .await
}

/// Deletes the user's messages with these ids unless their status is one of `keep`
/// (checked in the same statement, so a message the dispatcher just picked up is
/// kept). Returns how many rows went.
pub async fn delete_unless(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
    keep: &[&str],
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let res = message::Entity::delete_many()
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.is_in(ids))
        .filter(message::Column::Status.is_not_in(keep.iter().copied()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// How many messages the user has.
pub async fn count_of(db: &impl ConnectionTrait, user_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    message::Entity::find()
        .filter(message::Column::UserId.eq(user_id))
        .count(db)
        .await
}

/// A page of all the user's messages, newest first, strictly after `after` in that
/// order (`idx_messages_user_created`).
pub async fn page_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let mut q = message::Entity::find().filter(message::Column::UserId.eq(user_id));
    if let Some(c) = after {
        q = q.filter(older_than(c));
    }
    q.order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
