//! Associated data that binds a ciphertext to the row and field it belongs to.

/// Domain separation prefix: ciphertexts of this service never verify elsewhere.
const DOMAIN: &[u8] = b"commpro.messaging.v1";

/// Associated data built from length-prefixed parts, so `("ab","c")` and `("a","bc")`
/// can never produce the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// AAD for a field of a row: a body copied to another message, another user or
    /// another column fails to decrypt.
    pub fn field(table: &str, field: &str, user_id: &str, row_id: &str) -> Self {
        Self::from_parts(&[
            DOMAIN,
            table.as_bytes(),
            field.as_bytes(),
            user_id.as_bytes(),
            row_id.as_bytes(),
        ])
    }

    /// AAD for a wrapped data key: bound to its user, version and master key id.
    pub fn data_key(user_id: &str, version: u32, master_key_id: &str) -> Self {
        Self::from_parts(&[
            DOMAIN,
            b"user_keys",
            user_id.as_bytes(),
            &version.to_be_bytes(),
            master_key_id.as_bytes(),
        ])
    }

    fn from_parts(parts: &[&[u8]]) -> Self {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
        for part in parts {
            // Parts are ids and short names; u32 lengths cannot overflow in practice.
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        Self(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous() {
        assert_ne!(
            Aad::field("m", "body", "ab", "c"),
            Aad::field("m", "body", "a", "bc")
        );
        assert_ne!(Aad::data_key("u", 1, "k"), Aad::data_key("u", 2, "k"));
    }
}
