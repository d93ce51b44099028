//! `phone_numbers`: which user owns which Twilio number.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{entities::phone_number as pn, now};

/// Outcome of an assignment.
#[derive(Debug)]
pub enum Assigned {
    /// Newly assigned, or already assigned to the same user (idempotent).
    Ok(pn::Model),
    /// The number belongs to someone else; it must be released first.
    HeldByOther,
}

/// Assigns a number to a user. `_any`: an operator action over every user's numbers.
pub async fn assign_any(
    db: &impl ConnectionTrait,
    e164: &str,
    user_id: &str,
) -> Result<Assigned, DbErr> {
    let row = pn::ActiveModel {
        e164: Set(e164.to_owned()),
        user_id: Set(user_id.to_owned()),
        created_at: Set(now()),
    };
    // Insert-or-nothing, then read: two concurrent assignments cannot both win.
    pn::Entity::insert(row)
        .on_conflict_do_nothing_on([pn::Column::E164])
        .exec_without_returning(db)
        .await?;
    let current = pn::Entity::find_by_id(e164.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("phone number vanished after insert".into()))?;
    Ok(if current.user_id == user_id {
        Assigned::Ok(current)
    } else {
        Assigned::HeldByOther
    })
}

/// Removes an assignment; `None` when the number was not assigned. `_any`: an
/// operator action on whichever user holds the number.
pub async fn release_any(
    db: &impl ConnectionTrait,
    e164: &str,
) -> Result<Option<pn::Model>, DbErr> {
    let Some(row) = pn::Entity::find_by_id(e164.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let res = pn::Entity::delete_by_id(e164.to_owned()).exec(db).await?;
    Ok((res.rows_affected == 1).then_some(row))
}

/// Whether `e164` is assigned to `user_id`.
pub async fn is_owned_by(
    db: &impl ConnectionTrait,
    e164: &str,
    user_id: &str,
) -> Result<bool, DbErr> {
    Ok(pn::Entity::find_by_id(e164.to_owned())
        .filter(pn::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .is_some())
}

/// The user owning `e164`, if any. `_any`: not user-scoped by nature, it is how an
/// inbound message finds its user.
pub async fn owner_of_any(db: &impl ConnectionTrait, e164: &str) -> Result<Option<String>, DbErr> {
    Ok(pn::Entity::find_by_id(e164.to_owned())
        .one(db)
        .await?
        .map(|n| n.user_id))
}

/// Numbers ordered by E.164 after `after`, optionally of one user. `_any`: with no
/// user it lists everyone's (operators).
pub async fn list_any(
    db: &impl ConnectionTrait,
    user_id: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<pn::Model>, DbErr> {
    let mut q = pn::Entity::find();
    if let Some(user) = user_id {
        q = q.filter(pn::Column::UserId.eq(user));
    }
    if let Some(after) = after {
        q = q.filter(pn::Column::E164.gt(after));
    }
    q.order_by_asc(pn::Column::E164).limit(limit).all(db).await
}

/// Takes back every number of `user_id` (crypto-shredding); returns them.
pub async fn release_all_of(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<String>, DbErr> {
    let numbers: Vec<String> = pn::Entity::find()
        .filter(pn::Column::UserId.eq(user_id))
        .order_by_asc(pn::Column::E164)
        .all(db)
        .await?
        .into_iter()
        .map(|n| n.e164)
        .collect();
    pn::Entity::delete_many()
        .filter(pn::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(numbers)
}
