//! Outbox jobs of scheduled messages: written with the message, due at its `send_at`.
//! The dispatcher's claim only takes due jobs, so the job simply waits in the table
//! (surviving restarts) until then.

use sea_orm::{ConnectionTrait, DbErr};

use super::{entities::outbox, owned};

/// Removes the jobs of the user's messages with these ids (a canceled or deleted
/// scheduled message must never be claimed).
pub async fn remove_for(
    db: &impl ConnectionTrait,
    user_id: &str,
    message_ids: Vec<String>,
) -> Result<(), DbErr> {
    use outbox::Column as C;
    owned::delete_in::<outbox::Entity>(db, C::UserId, user_id, C::MessageId, message_ids).await
}
