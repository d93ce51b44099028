//! `duplicate_sends`: provider SIDs of a second provider message for one of ours (a
//! double send). The message keeps its first SID; this keeps the other for operators.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};

/// Records `sid` as a second provider message for `message_id`; false when it was
/// recorded already (a callback and a look-up can both report it).
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_id: &str,
    sid: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let table = Alias::new("duplicate_sends");
    let q = Query::insert()
        .into_table(table)
        .columns([
            Alias::new("provider_sid"),
            Alias::new("message_id"),
            Alias::new("user_id"),
            Alias::new("seen_at"),
        ])
        .values_panic([sid.into(), message_id.into(), user_id.into(), at.into()])
        .on_conflict(
            OnConflict::column(Alias::new("provider_sid"))
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    let done = db.execute(&q).await?;
    Ok(done.rows_affected() == 1)
}

/// The second SIDs kept for `message_id`, oldest first (tests, operators).
pub async fn for_message_any(
    db: &impl ConnectionTrait,
    message_id: &str,
) -> Result<Vec<String>, DbErr> {
    let q = Query::select()
        .column(Alias::new("provider_sid"))
        .from(Alias::new("duplicate_sends"))
        .and_where(Expr::col(Alias::new("message_id")).eq(message_id))
        .order_by(Alias::new("seen_at"), sea_orm::Order::Asc)
        .to_owned();
    let rows = db.query_all(&q).await?;
    rows.iter().map(|r| r.try_get("", "provider_sid")).collect()
}
