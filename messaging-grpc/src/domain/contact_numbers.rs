//! Contact numbers at rest: sealed like bodies (bound to their row), found through a
//! keyed blind index, opened for views and for the dispatcher. Our own Twilio numbers
//! (`phone_numbers`, `owner_e164`) stay in clear: they are ours, not personal data.

use uuid::Uuid;

use super::{Records, aad};
use crate::{
    crypto::{Aad, Cleartext, CryptoError, KeySet},
    error::Error,
    store::{
        contacts::SealedNumber,
        entities::{contact, message},
    },
};

/// A message's contact number, sealed twice: for the contact row (found or created in
/// the message's write) and for the message row itself.
pub struct SealedContact {
    pub contact: SealedNumber,
    /// For `messages.contact_number_ct`.
    pub message_ct: Vec<u8>,
}

/// The blind indexes a lookup of `e164` matches under `keys`: one per live version.
pub fn lookup_of(keys: &KeySet, e164: &str) -> Vec<Vec<u8>> {
    keys.number_keys().iter().map(|k| k.index(e164)).collect()
}

impl Records {
    /// The blind indexes a lookup of `e164` matches: one per live key version of the
    /// user. Empty when the user has no key (never had one, or shredded): nothing matches.
    pub async fn number_lookup(&self, user_id: &str, e164: &str) -> Result<Vec<Vec<u8>>, Error> {
        Ok(lookup_of(&self.keys.key_set(user_id, false).await?, e164))
    }

    /// `e164` sealed for a contact row that may be created with it: the id it would get,
    /// the ciphertext bound to that id, its index under the current key, and the lookup.
    pub fn seal_number(
        &self,
        keys: &KeySet,
        user_id: &str,
        e164: &str,
    ) -> Result<SealedNumber, Error> {
        let new_id = Uuid::now_v7().to_string();
        let aad = aad::contact_number(user_id, &new_id);
        let (ct, _) = keys.seal(&aad, e164.as_bytes())?;
        let index = keys.number_key()?.index(e164);
        // The current key is one of the live ones, so the lookup holds `index`.
        let lookup = lookup_of(keys, e164);
        Ok(SealedNumber {
            lookup,
            new_id,
            ct,
            index,
        })
    }

    /// The contact number of a new message `message_id`, sealed for both rows.
    pub fn seal_contact(
        &self,
        keys: &KeySet,
        user_id: &str,
        message_id: &str,
        e164: &str,
    ) -> Result<SealedContact, Error> {
        let aad = aad::message_contact_number(user_id, message_id);
        let (message_ct, _) = keys.seal(&aad, e164.as_bytes())?;
        Ok(SealedContact {
            contact: self.seal_number(keys, user_id, e164)?,
            message_ct,
        })
    }

    /// A contact's number; `None` once the user's keys were destroyed (shredding).
    pub async fn contact_number(&self, c: &contact::Model) -> Result<Option<String>, Error> {
        let aad = aad::contact_number(&c.user_id, &c.id);
        self.open_number(&c.user_id, &aad, c.number_ct.as_deref())
            .await
    }

    /// The contact number a message was sent to or received from; `None` once destroyed.
    pub async fn message_contact_number(
        &self,
        row: &message::Model,
    ) -> Result<Option<String>, Error> {
        let aad = aad::message_contact_number(&row.user_id, &row.id);
        self.open_number(&row.user_id, &aad, row.contact_number_ct.as_deref())
            .await
    }

    async fn open_number(
        &self,
        user_id: &str,
        aad: &Aad,
        ct: Option<&[u8]>,
    ) -> Result<Option<String>, Error> {
        // NULL: a row the start-up step has not sealed yet, which cannot be read while
        // the service runs (the step finishes before it serves). Empty: erased because
        // its user was already shredded when it was sealed.
        let ct = ct.ok_or(CryptoError::Malformed("contact number not sealed yet"))?;
        if ct.is_empty() {
            return Ok(None);
        }
        Ok(match self.keys.open(user_id, aad, ct).await? {
            Cleartext::Available(bytes) => Some(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| CryptoError::Malformed("contact number is not UTF-8"))?,
            ),
            Cleartext::Destroyed => None,
        })
    }
}
