//! Contact names: sealed with the user's data key like bodies (AAD: the contact row),
//! opened for the views that show them.

use std::collections::{HashMap, HashSet};

use super::{MessageView, Records, aad};
use crate::{
    crypto::{Cleartext, CryptoError},
    error::Error,
    store::{self, entities::contact},
};

/// Longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

impl Records {
    /// Seals a contact name for its row.
    pub async fn seal_name(
        &self,
        user_id: &str,
        contact_id: &str,
        name: &str,
    ) -> Result<Vec<u8>, Error> {
        let aad = aad::contact_name(user_id, contact_id);
        Ok(self.keys.seal(user_id, &aad, name.as_bytes()).await?.0)
    }

    /// The contact's name; `None` when it has none (or its key was shredded).
    pub async fn name_of(&self, contact: &contact::Model) -> Result<Option<String>, Error> {
        let Some(ct) = contact.name_ct.as_deref() else {
            return Ok(None);
        };
        self.open_name(&contact.user_id, &contact.id, ct).await
    }

    /// A contact's sealed name, opened; `None` when its key was shredded.
    pub async fn open_name(
        &self,
        user_id: &str,
        contact_id: &str,
        ct: &[u8],
    ) -> Result<Option<String>, Error> {
        let aad = aad::contact_name(user_id, contact_id);
        Ok(match self.keys.open(user_id, &aad, ct).await? {
            Cleartext::Available(bytes) => Some(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| CryptoError::Malformed("contact name is not UTF-8"))?,
            ),
            Cleartext::Destroyed => None,
        })
    }

    /// The names of some of the user's contacts, by contact id (those with one).
    pub async fn names_of(
        &self,
        user_id: &str,
        contact_ids: Vec<String>,
    ) -> Result<HashMap<String, String>, Error> {
        let mut out = HashMap::new();
        if contact_ids.is_empty() {
            return Ok(out);
        }
        let contacts = store::contacts::find_many(self.store.conn(), user_id, contact_ids).await?;
        for c in contacts {
            if let Some(name) = self.name_of(&c).await? {
                out.insert(c.id, name);
            }
        }
        Ok(out)
    }

    /// Fills in `contact_name` of each view (one batched contact lookup).
    pub async fn name_views(&self, user_id: &str, views: &mut [MessageView]) -> Result<(), Error> {
        let ids: HashSet<&str> = views.iter().map(|v| v.row.contact_id.as_str()).collect();
        let ids = ids.into_iter().map(str::to_owned).collect();
        let names = self.names_of(user_id, ids).await?;
        for v in views {
            v.contact_name = names.get(&v.row.contact_id).cloned();
        }
        Ok(())
    }
}
