//! Finding a user's rows by id: one generic pair of lookups for every table whose
//! rows belong to a user (contacts, messages, media), so the user scope is enforced
//! the same way everywhere.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entities::{contact, media, message};

/// A table whose rows carry their owner's user id.
pub trait UserOwned: EntityTrait {
    const ID: Self::Column;
    const USER_ID: Self::Column;
    fn owner(row: &Self::Model) -> &str;
}

/// The user's row with this id; another user's id is simply not found.
pub async fn find<E: UserOwned>(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<Option<E::Model>, DbErr> {
    E::find()
        .filter(E::ID.eq(id))
        .filter(E::USER_ID.eq(user_id))
        .one(db)
        .await
}

/// Deletes the user's rows of `table` whose `by` column is one of `values` (a message's
/// dependants by message id, say); others' rows stay. Nothing to delete, no statement.
pub async fn delete_in<E: EntityTrait>(
    db: &impl ConnectionTrait,
    user: E::Column,
    user_id: &str,
    by: E::Column,
    values: Vec<String>,
) -> Result<(), DbErr> {
    if values.is_empty() {
        return Ok(());
    }
    E::delete_many()
        .filter(user.eq(user_id))
        .filter(by.is_in(values))
        .exec(db)
        .await?;
    Ok(())
}

/// Several of the user's rows at once (a page's worth); others' ids are left out.
pub async fn find_many<E: UserOwned>(
    db: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<Vec<E::Model>, DbErr> {
    // Primary-key lookups, with the user scope enforced on the rows: with `user_id = ?` in
    // the query, PostgreSQL without fresh statistics scans every row of the user through
    // a (user_id, …) index instead of fetching these few rows by key, which grows with
    // the size of the mailbox.
    let rows = E::find().filter(E::ID.is_in(ids)).all(db).await?;
    Ok(rows
        .into_iter()
        .filter(|r| E::owner(r) == user_id)
        .collect())
}

/// The user's row whose `column` is `value` (a unique column of the user's rows, such
/// as a message's provider SID or idempotency key); another user's is not found.
pub async fn find_by<E: UserOwned>(
    db: &impl ConnectionTrait,
    user_id: &str,
    column: E::Column,
    value: &str,
) -> Result<Option<E::Model>, DbErr> {
    E::find()
        .filter(E::USER_ID.eq(user_id))
        .filter(column.eq(value))
        .one(db)
        .await
}

/// A table module's `find` and `find_many` (the user's row by id; several at once), over
/// [`find`] and [`find_many`] for `$module::Entity`, so each module names its own.
macro_rules! lookups {
    ($module:ident, $what:literal) => {
        #[doc = concat!("The user's ", $what, " with this id.")]
        pub async fn find(
            db: &impl sea_orm::ConnectionTrait,
            user_id: &str,
            id: &str,
        ) -> Result<Option<$module::Model>, sea_orm::DbErr> {
            super::owned::find::<$module::Entity>(db, user_id, id).await
        }

        #[doc = concat!("Several of the user's ", $what, " rows at once (a page's worth).")]
        pub async fn find_many(
            db: &impl sea_orm::ConnectionTrait,
            user_id: &str,
            ids: Vec<String>,
        ) -> Result<Vec<$module::Model>, sea_orm::DbErr> {
            super::owned::find_many::<$module::Entity>(db, user_id, ids).await
        }
    };
}

pub(super) use lookups;

impl UserOwned for contact::Entity {
    const ID: contact::Column = contact::Column::Id;
    const USER_ID: contact::Column = contact::Column::UserId;
    fn owner(row: &contact::Model) -> &str {
        &row.user_id
    }
}

impl UserOwned for message::Entity {
    const ID: message::Column = message::Column::Id;
    const USER_ID: message::Column = message::Column::UserId;
    fn owner(row: &message::Model) -> &str {
        &row.user_id
    }
}

impl UserOwned for media::Entity {
    const ID: media::Column = media::Column::Id;
    const USER_ID: media::Column = media::Column::UserId;
    fn owner(row: &media::Model) -> &str {
        &row.user_id
    }
}
