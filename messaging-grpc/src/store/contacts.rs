//! `contacts`: the other parties of a user's conversations.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{entities::contact, now};

/// The user's contact for `e164`, created if new. Race-free: insert-or-nothing on
/// `unique(user_id, e164)`, then read.
pub async fn get_or_create(
    db: &impl ConnectionTrait,
    user_id: &str,
    e164: &str,
) -> Result<contact::Model, DbErr> {
    if let Some(found) = find_by_number(db, user_id, e164).await? {
        return Ok(found);
    }
    let row = contact::ActiveModel {
        id: Set(Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        e164: Set(e164.to_owned()),
        opted_out: Set(false),
        created_at: Set(now()),
    };
    contact::Entity::insert(row)
        .on_conflict_do_nothing_on([contact::Column::UserId, contact::Column::E164])
        .exec_without_returning(db)
        .await?;
    find_by_number(db, user_id, e164)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("contact vanished after insert".into()))
}

pub async fn find_by_number(
    db: &impl ConnectionTrait,
    user_id: &str,
    e164: &str,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::E164.eq(e164))
        .one(db)
        .await
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find_by_id(contact_id.to_owned())
        .filter(contact::Column::UserId.eq(user_id))
        .one(db)
        .await
}

/// Several of the user's contacts at once (for a page of conversations).
pub async fn find_many(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<contact::Model>, DbErr> {
    // Primary-key lookups, with the user scope enforced on the rows: with `user_id = ?` in
    // the query, PostgreSQL without fresh statistics scans every row of the user through
    // a (user_id, …) index instead of fetching these few rows by key, which grows with
    // the size of the mailbox.
    let rows = contact::Entity::find()
        .filter(contact::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().filter(|r| r.user_id == user_id).collect())
}

/// Records that the contact opted out (STOP, or Twilio error 21610) or back in.
pub async fn set_opted_out(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    opted_out: bool,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    contact::Entity::update_many()
        .col_expr(contact::Column::OptedOut, Expr::value(opted_out))
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::Id.eq(contact_id))
        .exec(db)
        .await?;
    Ok(())
}
