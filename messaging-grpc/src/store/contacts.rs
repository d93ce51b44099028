//! `contacts`: the other parties of a user's conversations.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::{entities::contact, now, owned};

/// A contact number as the store sees it: never in clear.
#[derive(Clone)]
pub struct SealedNumber {
    /// Its blind index under each of the user's live keys: what an existing contact
    /// of this number matches (includes `index`).
    pub lookup: Vec<Vec<u8>>,
    /// The id a new contact gets: `ct` is bound to it.
    pub new_id: String,
    pub ct: Vec<u8>,
    /// Its blind index under the user's current key, stored with a new contact.
    pub index: Vec<u8>,
}

/// The user's contact for a number, created if new. Race-free: insert-or-nothing on
/// `unique(user_id, number_index)`, then read.
pub async fn get_or_create(
    db: &impl ConnectionTrait,
    user_id: &str,
    number: &SealedNumber,
) -> Result<contact::Model, DbErr> {
    if let Some(found) = find_by_number(db, user_id, &number.lookup).await? {
        return Ok(found);
    }
    let row = contact::ActiveModel {
        id: Set(number.new_id.clone()),
        user_id: Set(user_id.to_owned()),
        legacy_e164: Set(String::new()),
        opted_out: Set(false),
        created_at: Set(now()),
        name_ct: Set(None),
        blocked_at: Set(None),
        number_ct: Set(Some(number.ct.clone())),
        number_index: Set(Some(number.index.clone())),
    };
    contact::Entity::insert(row)
        .on_conflict_do_nothing_on([contact::Column::UserId, contact::Column::NumberIndex])
        .exec_without_returning(db)
        .await?;
    find_by_number(db, user_id, &number.lookup)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("contact vanished after insert".into()))
}

/// The user's contact whose number has one of these blind indexes (one per live key
/// version; at most one contact matches, as a number is indexed once).
pub async fn find_by_number(
    db: &impl ConnectionTrait,
    user_id: &str,
    lookup: &[Vec<u8>],
) -> Result<Option<contact::Model>, DbErr> {
    if lookup.is_empty() {
        return Ok(None);
    }
    contact::Entity::find()
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::NumberIndex.is_in(lookup.iter().cloned()))
        .one(db)
        .await
}

owned::lookups!(contact, "contact");

/// Sets (sealed) or removes the contact's name.
pub async fn set_name(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    name_ct: Option<Vec<u8>>,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    contact::Entity::update_many()
        .col_expr(contact::Column::NameCt, Expr::value(name_ct))
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::Id.eq(contact_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Blocks the contact's number (at `at`) or unblocks it (`None`). Returns whether it
/// changed: blocking a blocked number keeps its first `blocked_at`.
pub async fn set_blocked(
    db: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let mut q = contact::Entity::update_many()
        .col_expr(contact::Column::BlockedAt, Expr::value(at))
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::Id.eq(contact_id));
    q = match at {
        Some(_) => q.filter(contact::Column::BlockedAt.is_null()),
        None => q.filter(contact::Column::BlockedAt.is_not_null()),
    };
    Ok(q.exec(db).await?.rows_affected == 1)
}

/// A page of the user's blocked contacts, most recently blocked first.
pub async fn blocked_page(
    db: &impl ConnectionTrait,
    user_id: &str,
    after: Option<&super::page_token::Cursor>,
    limit: u64,
) -> Result<Vec<contact::Model>, DbErr> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let mut q = contact::Entity::find()
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::BlockedAt.is_not_null());
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(contact::Column::BlockedAt.lt(c.at))
                .add(
                    Condition::all()
                        .add(contact::Column::BlockedAt.eq(c.at))
                        .add(contact::Column::Id.lt(c.id.as_str())),
                ),
        );
    }
    q.order_by_desc(contact::Column::BlockedAt)
        .order_by_desc(contact::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Every contact of the user, in id order, `limit` at most: a search for a number
/// typed without its country code must open the sealed numbers to compare them.
pub async fn all_of(
    db: &impl ConnectionTrait,
    user_id: &str,
    limit: u64,
) -> Result<Vec<contact::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    contact::Entity::find()
        .filter(contact::Column::UserId.eq(user_id))
        .order_by_asc(contact::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
