//! `user_keys`: wrapped data keys per user and version (the seed's EncryptionKeys).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    TryInsertResult,
};

use super::{entities::user_key, now};

/// The user's newest key version, destroyed or not.
pub async fn latest(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Option<user_key::Model>, DbErr> {
    user_key::Entity::find()
        .filter(user_key::Column::UserId.eq(user_id))
        .order_by_desc(user_key::Column::Version)
        .one(db)
        .await
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
    version: u32,
) -> Result<Option<user_key::Model>, DbErr> {
    user_key::Entity::find_by_id((user_id.to_owned(), version as i32))
        .one(db)
        .await
}

/// A wrapped key to store.
pub struct NewKey<'a> {
    pub user_id: &'a str,
    pub version: u32,
    pub wrapped_dek: Vec<u8>,
    pub master_key_id: &'a str,
    pub algorithm: &'a str,
}

/// Inserts a key version unless one exists already (a concurrent creator won; the
/// caller re-reads and uses that one). Returns whether this insert won.
pub async fn insert_if_absent(db: &impl ConnectionTrait, k: NewKey<'_>) -> Result<bool, DbErr> {
    let res = user_key::Entity::insert(user_key::ActiveModel {
        user_id: Set(k.user_id.to_owned()),
        version: Set(k.version as i32),
        wrapped_dek: Set(Some(k.wrapped_dek)),
        master_key_id: Set(k.master_key_id.to_owned()),
        algorithm: Set(k.algorithm.to_owned()),
        created_at: Set(now()),
        destroyed_at: Set(None),
    })
    .on_conflict_do_nothing_on([user_key::Column::UserId, user_key::Column::Version])
    .exec_without_returning(db)
    .await?;
    Ok(matches!(res, TryInsertResult::Inserted(1)))
}

/// Every key version of the user, destroyed or not, oldest first.
pub async fn all_of(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<user_key::Model>, DbErr> {
    user_key::Entity::find()
        .filter(user_key::Column::UserId.eq(user_id))
        .order_by_asc(user_key::Column::Version)
        .all(db)
        .await
}
