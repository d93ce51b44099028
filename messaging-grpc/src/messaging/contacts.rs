//! SetContactName: the name is sealed with the user's data key like a body, and shown
//! as `contact_name` on conversations and messages.

use super::Messaging;
use crate::{
    domain::{MAX_NAME_CHARS, events, require},
    error::Error,
    store::{self, entities::contact, events::NewEvent},
};

/// A contact with its name and number opened.
pub struct ContactView {
    pub contact: contact::Model,
    pub name: Option<String>,
    /// `None` once the user's keys were destroyed.
    pub number: Option<String>,
}

impl Messaging {
    /// Names a contact; an empty name removes it.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn set_contact_name(
        &self,
        user_id: &str,
        contact_id: &str,
        name: &str,
    ) -> Result<ContactView, Error> {
        let contact_id = require("contact_id", contact_id)?;
        let name = name.trim();
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Error::invalid(
                "name",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        let db = self.records.store().conn();
        let contact = store::contacts::find(db, user_id, contact_id)
            .await?
            .ok_or(Error::NotFound("contact_id"))?;
        let sealed = match name {
            "" => None,
            name => Some(self.records.seal_name(user_id, &contact.id, name).await?),
        };
        let (user, contact_id) = (user_id.to_owned(), contact.id.clone());
        let cursor = self
            .records
            .store()
            .write_for(user_id, move |txn| {
                Box::pin(async move {
                    store::contacts::set_name(txn, &user, &contact_id, sealed).await?;
                    let event = NewEvent {
                        kind: events::CONTACT_UPDATED,
                        contact_id: Some(&contact_id),
                        ..Default::default()
                    };
                    events::append(txn, &user, event).await
                })
            })
            .await?;
        self.records.announce(user_id, cursor);
        let contact = store::contacts::find(db, user_id, &contact.id)
            .await?
            .ok_or(Error::NotFound("contact_id"))?;
        let name = self.records.name_of(&contact).await?;
        let number = self.records.contact_number(&contact).await?;
        Ok(ContactView {
            contact,
            name,
            number,
        })
    }
}
