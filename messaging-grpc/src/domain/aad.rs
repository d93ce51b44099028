//! Additional authenticated data of every sealed field: binds a ciphertext to its
//! table, field, user and row, so a value moved to another row fails to decrypt.
//! One place, because the writer and every reader must build the same AAD.

use crate::crypto::Aad;

/// A message body.
pub fn body(user_id: &str, message_id: &str) -> Aad {
    Aad::field("messages", "body", user_id, message_id)
}

/// The bytes of a stored media object.
pub fn media_bytes(user_id: &str, media_id: &str) -> Aad {
    Aad::field("media", "bytes", user_id, media_id)
}

/// The name a user gave a contact.
pub fn contact_name(user_id: &str, contact_id: &str) -> Aad {
    Aad::field("contacts", "name", user_id, contact_id)
}

/// A contact's phone number, on its contact row.
pub fn contact_number(user_id: &str, contact_id: &str) -> Aad {
    Aad::field("contacts", "number", user_id, contact_id)
}

/// The contact's phone number as each message keeps it (the dispatcher sends to it).
pub fn message_contact_number(user_id: &str, message_id: &str) -> Aad {
    Aad::field("messages", "contact_number", user_id, message_id)
}

/// The Twilio URL an inbound media item is copied from.
pub fn media_source_url(user_id: &str, media_id: &str) -> Aad {
    Aad::field("media", "source_url", user_id, media_id)
}

/// An external https media URL of an outbound MMS, kept per message and position.
pub fn link_url(user_id: &str, message_id: &str, position: i32) -> Aad {
    Aad::field(
        "message_media",
        "url",
        user_id,
        &format!("{message_id}/{position}"),
    )
}
