//! Field ciphertexts: `header || nonce || ciphertext+tag`.
//!
//! Header (6 bytes): format version (1), algorithm id, key version (u32 big-endian).
//! The header is authenticated together with the caller's AAD, so changing the
//! algorithm or key version byte makes the ciphertext fail, never decrypt to garbage.

use aes_gcm::{
    Aes256Gcm,
    aead::{Aead, KeyInit, Payload},
};
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::Zeroizing;

use super::{Aad, Algorithm, CryptoError, DataKey, random_bytes};

const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 6;
const TAG_LEN: usize = 16;
/// Far above any field we store (bodies are ≤ 1600 chars, media are chunked elsewhere);
/// refuses absurd inputs before allocating.
const MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

/// What the header of a ciphertext says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub algorithm: Algorithm,
    pub key_version: u32,
}

impl Header {
    /// Reads and checks the header without decrypting (to pick the key version).
    pub fn parse(ciphertext: &[u8]) -> Result<Self, CryptoError> {
        if ciphertext.len() < HEADER_LEN {
            return Err(CryptoError::Malformed("shorter than its header"));
        }
        if ciphertext[0] != FORMAT_V1 {
            return Err(CryptoError::Malformed("unknown format version"));
        }
        let algorithm =
            Algorithm::from_id(ciphertext[1]).ok_or(CryptoError::Malformed("unknown algorithm"))?;
        let key_version =
            u32::from_be_bytes([ciphertext[2], ciphertext[3], ciphertext[4], ciphertext[5]]);
        if ciphertext.len() < HEADER_LEN + algorithm.nonce_len() + TAG_LEN {
            return Err(CryptoError::Malformed("truncated"));
        }
        Ok(Self {
            algorithm,
            key_version,
        })
    }

    fn encode(self) -> [u8; HEADER_LEN] {
        let v = self.key_version.to_be_bytes();
        [FORMAT_V1, self.algorithm.id(), v[0], v[1], v[2], v[3]]
    }
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(
    algorithm: Algorithm,
    key: &DataKey,
    key_version: u32,
    aad: &Aad,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptoError::TooLarge);
    }
    let header = Header {
        algorithm,
        key_version,
    }
    .encode();
    let mut nonce = [0u8; 24];
    let nonce = &mut nonce[..algorithm.nonce_len()];
    random_bytes(nonce)?;
    let full_aad = [header.as_slice(), aad.as_bytes()].concat();
    let payload = Payload {
        msg: plaintext,
        aad: &full_aad,
    };

    let sealed = match algorithm {
        Algorithm::Aes256Gcm => cipher::<Aes256Gcm>(key)?.encrypt(nonce_from(nonce)?, payload),
        Algorithm::XChaCha20Poly1305 => {
            cipher::<XChaCha20Poly1305>(key)?.encrypt(nonce_from(nonce)?, payload)
        }
    }
    .map_err(|_| CryptoError::TooLarge)?;

    let mut out = Vec::with_capacity(HEADER_LEN + nonce.len() + sealed.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a ciphertext made by [`seal`] with the same key and AAD. The caller picks the
/// key from [`Header::parse`]'s key version.
pub fn open(
    key: &DataKey,
    aad: &Aad,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let header = Header::parse(ciphertext)?;
    let (header_bytes, rest) = ciphertext.split_at(HEADER_LEN);
    let (nonce, sealed) = rest.split_at(header.algorithm.nonce_len());
    let full_aad = [header_bytes, aad.as_bytes()].concat();
    let payload = Payload {
        msg: sealed,
        aad: &full_aad,
    };

    let opened = match header.algorithm {
        Algorithm::Aes256Gcm => cipher::<Aes256Gcm>(key)?.decrypt(nonce_from(nonce)?, payload),
        Algorithm::XChaCha20Poly1305 => {
            cipher::<XChaCha20Poly1305>(key)?.decrypt(nonce_from(nonce)?, payload)
        }
    };
    opened
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Authentication)
}

fn cipher<C: KeyInit>(key: &DataKey) -> Result<C, CryptoError> {
    C::new_from_slice(key.as_bytes()).map_err(|_| CryptoError::Malformed("bad key length"))
}

fn nonce_from<'a, N>(bytes: &'a [u8]) -> Result<&'a N, CryptoError>
where
    &'a N: TryFrom<&'a [u8]>,
{
    <&N>::try_from(bytes).map_err(|_| CryptoError::Malformed("bad nonce length"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALGS: [Algorithm; 2] = [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305];

    fn aad() -> Aad {
        Aad::field("messages", "body", "user-1", "msg-1")
    }

    #[test]
    fn header_names_algorithm_and_version() {
        let key = DataKey::generate().unwrap();
        for alg in ALGS {
            let ct = seal(alg, &key, 7, &aad(), b"hi").unwrap();
            assert_eq!(
                Header::parse(&ct).unwrap(),
                Header {
                    algorithm: alg,
                    key_version: 7
                }
            );
            assert_eq!(ct.len(), HEADER_LEN + alg.nonce_len() + 2 + TAG_LEN);
        }
    }

    #[test]
    fn wrong_key_fails() {
        let (k1, k2) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
        for alg in ALGS {
            let ct = seal(alg, &k1, 1, &aad(), b"secret").unwrap();
            assert!(matches!(
                open(&k2, &aad(), &ct),
                Err(CryptoError::Authentication)
            ));
        }
    }

    #[test]
    fn aad_swap_fails() {
        let key = DataKey::generate().unwrap();
        let other_row = Aad::field("messages", "body", "user-1", "msg-2");
        let other_user = Aad::field("messages", "body", "user-2", "msg-1");
        let other_field = Aad::field("messages", "media_url", "user-1", "msg-1");
        for alg in ALGS {
            let ct = seal(alg, &key, 1, &aad(), b"secret").unwrap();
            for wrong in [&other_row, &other_user, &other_field] {
                assert!(matches!(
                    open(&key, wrong, &ct),
                    Err(CryptoError::Authentication)
                ));
            }
        }
    }

    #[test]
    fn header_tamper_fails() {
        let key = DataKey::generate().unwrap();
        let mut ct = seal(Algorithm::Aes256Gcm, &key, 1, &aad(), b"secret").unwrap();
        ct[5] = 2; // claim key version 2
        assert!(matches!(
            open(&key, &aad(), &ct),
            Err(CryptoError::Authentication)
        ));
        ct[5] = 1;
        ct[1] = 2; // claim the other algorithm: nonce length no longer matches the tag
        assert!(open(&key, &aad(), &ct).is_err());
        ct[1] = 9;
        assert!(matches!(
            open(&key, &aad(), &ct),
            Err(CryptoError::Malformed(_))
        ));
        ct[1] = 1;
        ct[0] = 2;
        assert!(matches!(
            open(&key, &aad(), &ct),
            Err(CryptoError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_inputs_are_malformed_not_panics() {
        let key = DataKey::generate().unwrap();
        let ct = seal(Algorithm::XChaCha20Poly1305, &key, 1, &aad(), b"").unwrap();
        for len in 0..ct.len() {
            assert!(
                open(&key, &aad(), &ct[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        assert_eq!(open(&key, &aad(), &ct).unwrap().as_slice(), b"");
    }

    #[test]
    fn nonces_are_fresh() {
        let key = DataKey::generate().unwrap();
        let a = seal(Algorithm::Aes256Gcm, &key, 1, &aad(), b"same").unwrap();
        let b = seal(Algorithm::Aes256Gcm, &key, 1, &aad(), b"same").unwrap();
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn round_trip(plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
                      version in any::<u32>(), xchacha in any::<bool>()) {
            let alg = if xchacha { Algorithm::XChaCha20Poly1305 } else { Algorithm::Aes256Gcm };
            let key = DataKey::generate().unwrap();
            let ct = seal(alg, &key, version, &aad(), &plaintext).unwrap();
            prop_assert_eq!(Header::parse(&ct).unwrap().key_version, version);
            let opened = open(&key, &aad(), &ct).unwrap();
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }

        #[test]
        fn any_bit_flip_fails(plaintext in proptest::collection::vec(any::<u8>(), 0..256),
                              pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = DataKey::generate().unwrap();
            let mut ct = seal(Algorithm::Aes256Gcm, &key, 1, &aad(), &plaintext).unwrap();
            let i = pos.index(ct.len());
            ct[i] ^= 1 << bit;
            prop_assert!(open(&key, &aad(), &ct).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let key = DataKey::generate().unwrap();
            let _ = Header::parse(&bytes);
            prop_assert!(open(&key, &aad(), &bytes).is_err());
        }
    }
}
