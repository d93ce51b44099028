//! Wrapping data keys under a master key: AES-256-GCM, AAD = user id + version + KEK id.

use super::{Aad, Algorithm, CryptoError, DataKey, MasterKey, envelope};

/// Wraps `dek` for `(user_id, version)` under `master`.
pub fn wrap_dek(
    master: &MasterKey,
    user_id: &str,
    version: u32,
    dek: &DataKey,
) -> Result<Vec<u8>, CryptoError> {
    let aad = Aad::data_key(user_id, version, master.id());
    envelope::seal(Algorithm::Aes256Gcm, master.key(), 0, &aad, dek.as_bytes())
}

/// Unwraps a data key; fails if it was wrapped for another user, version or master key.
pub fn unwrap_dek(
    master: &MasterKey,
    user_id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<DataKey, CryptoError> {
    let aad = Aad::data_key(user_id, version, master.id());
    let plain = envelope::open(master.key(), &aad, wrapped)?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("wrapped key is not 32 bytes"))?;
    Ok(DataKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_binding() {
        let kek = MasterKey::new("k1", DataKey::generate().unwrap());
        let other_kek = MasterKey::new("k1", DataKey::generate().unwrap());
        let renamed_kek = MasterKey::new("k2", DataKey::from_bytes(*kek.key().as_bytes()));
        let dek = DataKey::generate().unwrap();
        let wrapped = wrap_dek(&kek, "alice", 1, &dek).unwrap();

        assert!(
            !wrapped.windows(32).any(|w| w == dek.as_bytes()),
            "DEK visible in wrapped form"
        );
        let back = unwrap_dek(&kek, "alice", 1, &wrapped).unwrap();
        assert_eq!(back.as_bytes(), dek.as_bytes());

        assert!(unwrap_dek(&kek, "bob", 1, &wrapped).is_err(), "other user");
        assert!(
            unwrap_dek(&kek, "alice", 2, &wrapped).is_err(),
            "other version"
        );
        assert!(
            unwrap_dek(&other_kek, "alice", 1, &wrapped).is_err(),
            "other KEK"
        );
        assert!(
            unwrap_dek(&renamed_kek, "alice", 1, &wrapped).is_err(),
            "other KEK id"
        );
    }
}
