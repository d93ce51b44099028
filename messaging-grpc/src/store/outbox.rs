//! `outbox`: send jobs written in the same transaction as their message.

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use super::{entities::outbox, now};

/// Queues `message_id` for immediate dispatch.
pub async fn enqueue(db: &impl ConnectionTrait, message_id: &str) -> Result<(), DbErr> {
    outbox::Entity::insert(outbox::ActiveModel {
        message_id: Set(message_id.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now()),
        claimed_until: Set(None),
        last_error: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The job of a message, if still pending.
pub async fn find(
    db: &impl ConnectionTrait,
    message_id: &str,
) -> Result<Option<outbox::Model>, DbErr> {
    outbox::Entity::find_by_id(message_id.to_owned())
        .one(db)
        .await
}
