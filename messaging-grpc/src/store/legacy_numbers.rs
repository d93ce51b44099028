//! Rows from before contact numbers were sealed: their number is still in clear in
//! `contacts.e164` / `messages.contact_e164`. The core's start-up step
//! (domain/number_sealing.rs) walks them in id order, in batches, and seals each one.
//! Every function here is `_any`: the step runs once for the whole database, not for
//! a user; each write is still scoped to the row's user.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::entities::{contact, message};

/// Contacts not sealed yet, after `after` in id order.
pub async fn contacts_any(
    db: &impl ConnectionTrait,
    after: &str,
    limit: u64,
) -> Result<Vec<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::NumberCt.is_null())
        .filter(contact::Column::Id.gt(after))
        .order_by_asc(contact::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Stores a contact's sealed number and index and empties its plaintext column, unless
/// another replica sealed it first. `index` is None when the number was erased (its
/// user was already shredded).
pub async fn seal_contact(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    ct: Vec<u8>,
    index: Option<Vec<u8>>,
) -> Result<(), DbErr> {
    contact::Entity::update_many()
        .col_expr(contact::Column::NumberCt, Expr::value(ct))
        .col_expr(contact::Column::NumberIndex, Expr::value(index))
        .col_expr(contact::Column::LegacyE164, Expr::value(""))
        .filter(contact::Column::UserId.eq(user_id))
        .filter(contact::Column::Id.eq(id))
        .filter(contact::Column::NumberCt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Messages whose contact number is not sealed yet, after `after` in id order.
pub async fn messages_any(
    db: &impl ConnectionTrait,
    after: &str,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::ContactNumberCt.is_null())
        .filter(message::Column::Id.gt(after))
        .order_by_asc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Stores a message's sealed contact number and empties its plaintext column, unless
/// another replica sealed it first.
pub async fn seal_message(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    ct: Vec<u8>,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::ContactNumberCt, Expr::value(ct))
        .col_expr(message::Column::LegacyContactE164, Expr::value(""))
        .filter(message::Column::UserId.eq(user_id))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::ContactNumberCt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// After sealing: SQLite keeps overwritten values in free pages and in its WAL until
/// they are reused, so the file is rewritten (VACUUM) and the WAL emptied; then no old
/// number is left in any file. PostgreSQL keeps old row versions until vacuumed, and
/// `VACUUM FULL` locks the tables: the README tells operators to run it in a quiet hour.
pub async fn compact_any(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        db.execute_unprepared("VACUUM").await?;
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await?;
    }
    Ok(())
}
