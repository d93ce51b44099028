//! Outbox jobs of scheduled messages: written with the message, due at its `send_at`.
//! The dispatcher's claim only takes due jobs, so the job simply waits in the table
//! (surviving restarts) until then.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

use super::entities::outbox;

/// Removes the jobs of the user's messages with these ids (a canceled or deleted
/// scheduled message must never be claimed).
pub async fn remove_for(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_ids: Vec<String>,
) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait as _, QueryFilter as _};
    if message_ids.is_empty() {
        return Ok(());
    }
    outbox::Entity::delete_many()
        .filter(outbox::Column::UserId.eq(user_id))
        .filter(outbox::Column::MessageId.is_in(message_ids))
        .exec(db)
        .await?;
    Ok(())
}
