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

/// PostgreSQL channel that carries the id of a user whose data keys were destroyed,
/// so every replica drops them from its key cache (never key material).
pub const REVOKE_CHANNEL: &str = "messaging_keys";

/// Data keys (not destroyed) wrapped under another master key than `active`, after
/// `after` in `(user_id, version)` order: one page of a master-key rotation. `_any`:
/// rotation rewraps every user's keys.
pub async fn wrapped_not_under_any(
    db: &impl ConnectionTrait,
    active: &str,
    after: Option<(&str, i32)>,
    limit: u64,
) -> Result<Vec<user_key::Model>, DbErr> {
    use sea_orm::{Condition, QuerySelect};
    let mut q = user_key::Entity::find()
        .filter(user_key::Column::WrappedDek.is_not_null())
        .filter(user_key::Column::MasterKeyId.ne(active));
    if let Some((user, version)) = after {
        q = q.filter(
            Condition::any().add(user_key::Column::UserId.gt(user)).add(
                Condition::all()
                    .add(user_key::Column::UserId.eq(user))
                    .add(user_key::Column::Version.gt(version)),
            ),
        );
    }
    q.order_by_asc(user_key::Column::UserId)
        .order_by_asc(user_key::Column::Version)
        .limit(limit)
        .all(db)
        .await
}

/// Replaces a wrapped key with the same key wrapped under `to_master`, only if it is
/// still wrapped under `from_master` and not destroyed (a concurrent rotation or
/// shredding wins). Returns whether it changed.
pub async fn rewrap(
    db: &impl ConnectionTrait,
    user_id: &str,
    version: i32,
    from_master: &str,
    to_master: &str,
    wrapped: Vec<u8>,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let res = user_key::Entity::update_many()
        .col_expr(user_key::Column::WrappedDek, Expr::value(wrapped))
        .col_expr(user_key::Column::MasterKeyId, Expr::value(to_master))
        .filter(user_key::Column::UserId.eq(user_id))
        .filter(user_key::Column::Version.eq(version))
        .filter(user_key::Column::MasterKeyId.eq(from_master))
        .filter(user_key::Column::WrappedDek.is_not_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// `(master key id, data keys wrapped under it)` for keys not destroyed, and the
/// number of destroyed key versions. `_any`: a count over every user.
pub async fn count_by_master_any(
    db: &impl ConnectionTrait,
) -> Result<(Vec<(String, i64)>, i64), DbErr> {
    use sea_orm::Statement;
    // Plain SQL both backends take: the query builder has no GROUP BY count helper.
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT master_key_id, COUNT(*) AS n FROM user_keys \
             WHERE wrapped_dek IS NOT NULL GROUP BY master_key_id ORDER BY master_key_id",
        ))
        .await?;
    let per_master = rows
        .iter()
        .map(|r| Ok((r.try_get("", "master_key_id")?, r.try_get("", "n")?)))
        .collect::<Result<Vec<(String, i64)>, DbErr>>()?;
    let destroyed = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM user_keys WHERE wrapped_dek IS NULL",
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    Ok((per_master, destroyed))
}

/// Destroys every key version of the user: the wrapped key is removed from its row
/// (set to NULL, so no key material is left), and the row stays as a tombstone that
/// says the version existed and was destroyed. When the user has no key yet, a
/// destroyed version 1 is recorded, so sends stay refused until a new key exists.
/// Returns how many versions this call destroyed.
pub async fn destroy_all(db: &impl ConnectionTrait, user_id: &str) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Expr;
    let at = now();
    let res = user_key::Entity::update_many()
        .col_expr(
            user_key::Column::WrappedDek,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(user_key::Column::DestroyedAt, Expr::value(at))
        .filter(user_key::Column::UserId.eq(user_id))
        .filter(user_key::Column::WrappedDek.is_not_null())
        .exec(db)
        .await?;
    if latest(db, user_id).await?.is_none() {
        user_key::Entity::insert(user_key::ActiveModel {
            user_id: Set(user_id.to_owned()),
            version: Set(1),
            wrapped_dek: Set(None),
            master_key_id: Set(String::new()),
            algorithm: Set(String::new()),
            created_at: Set(at),
            destroyed_at: Set(Some(at)),
        })
        .on_conflict_do_nothing_on([user_key::Column::UserId, user_key::Column::Version])
        .exec_without_returning(db)
        .await?;
    }
    Ok(res.rows_affected)
}

/// Wakes every replica's revocation listener for `user_id` (PostgreSQL; delivered at
/// commit, so no replica drops a key before the destruction is durable).
pub async fn notify_revoked(db: &impl ConnectionTrait, user_id: &str) -> Result<(), DbErr> {
    use sea_orm::{DatabaseBackend, Statement, Value};
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_notify($1, $2)",
            [Value::from(REVOKE_CHANNEL), Value::from(user_id)],
        ))
        .await?;
    }
    Ok(())
}
