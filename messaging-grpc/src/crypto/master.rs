//! Master keys (KEKs) from configuration: `id:base64(32 bytes)` entries, first active.

use std::{collections::HashMap, fmt};

use base64::{Engine, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

use super::{CryptoError, DataKey};

/// One key-encryption key.
pub struct MasterKey {
    id: String,
    key: DataKey,
}

impl MasterKey {
    pub fn new(id: impl Into<String>, key: DataKey) -> Self {
        Self { id: id.into(), key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn key(&self) -> &DataKey {
        &self.key
    }

    /// `id:base64` form, as MESSAGING_MASTER_KEYS takes it.
    pub fn to_config_entry(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}:{}",
            self.id,
            STANDARD.encode(self.key.as_bytes())
        ))
    }
}

/// The configured master keys. New data keys are wrapped under the active (first) one;
/// the others still unwrap data keys wrapped before a rotation.
pub struct MasterKeyRing {
    active: String,
    keys: HashMap<String, MasterKey>,
}

impl fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("MasterKeyRing")
            .field("active", &self.active)
            .field("ids", &ids)
            .finish()
    }
}

impl MasterKeyRing {
    /// Parses `id:base64,id:base64,…`. The message never contains key material.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut ordered = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                return Err(format!("entry {} is empty", i + 1));
            }
            let (id, b64) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {} is not `id:base64`", i + 1))?;
            if id.is_empty()
                || id.len() > 32
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "entry {}: key id must be 1-32 characters of A-Z a-z 0-9 - _",
                    i + 1
                ));
            }
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| format!("key `{id}` is not valid base64"))?,
            );
            let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                format!(
                    "key `{id}` must decode to exactly 32 bytes, got {}",
                    bytes.len()
                )
            })?;
            ordered.push(MasterKey::new(id, DataKey::from_bytes(bytes)));
        }
        Self::from_keys(ordered)
    }

    /// Builds a ring from keys, the first one active.
    pub fn from_keys(keys: Vec<MasterKey>) -> Result<Self, String> {
        let active = keys
            .first()
            .ok_or("at least one master key is required")?
            .id
            .clone();
        let mut map = HashMap::new();
        for key in keys {
            let id = key.id.clone();
            if map.insert(id.clone(), key).is_some() {
                return Err(format!("master key id `{id}` appears twice"));
            }
        }
        Ok(Self { active, keys: map })
    }

    pub fn active(&self) -> &MasterKey {
        // `from_keys` guarantees the active id is in the map.
        &self.keys[&self.active]
    }

    /// Every configured master key id.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn get(&self, id: &str) -> Result<&MasterKey, CryptoError> {
        self.keys
            .get(id)
            .ok_or_else(|| CryptoError::UnknownMasterKey(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, byte: u8) -> String {
        format!("{id}:{}", STANDARD.encode([byte; 32]))
    }

    #[test]
    fn first_entry_is_active_and_all_unwrap() {
        let ring = MasterKeyRing::parse(&format!("{},{}", entry("k2", 2), entry("k1", 1))).unwrap();
        assert_eq!(ring.active().id(), "k2");
        assert!(ring.get("k1").is_ok());
        assert!(matches!(
            ring.get("k3"),
            Err(CryptoError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason_and_no_key_material() {
        let short = format!("k:{}", STANDARD.encode([7u8; 16]));
        for (spec, needle) in [
            ("", "empty"),
            ("nocolon", "id:base64"),
            ("k:!!!", "base64"),
            (short.as_str(), "32 bytes"),
            (&format!("{},{}", entry("a", 1), entry("a", 2)), "twice"),
            (&format!("bad id:{}", STANDARD.encode([1u8; 32])), "key id"),
        ] {
            let err = MasterKeyRing::parse(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?} -> {err}");
            assert!(!err.contains(&STANDARD.encode([7u8; 16])));
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = MasterKeyRing::parse(&entry("k1", 9)).unwrap();
        let shown = format!("{ring:?}");
        assert!(shown.contains("k1") && !shown.contains(&STANDARD.encode([9u8; 32])));
    }
}
