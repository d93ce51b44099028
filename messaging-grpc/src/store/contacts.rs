//! `contacts`: the other parties of a user's conversations.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{entities::contact, now, owned};

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

/// The user's contact with this id.
pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<Option<contact::Model>, DbErr> {
    owned::find::<contact::Entity>(db, user_id, id).await
}

/// Several of the user's contact rows at once (a page's worth).
pub async fn find_many(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<contact::Model>, DbErr> {
    owned::find_many::<contact::Entity>(db, user_id, ids).await
}
