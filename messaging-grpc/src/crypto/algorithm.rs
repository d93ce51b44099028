//! The AEAD algorithms a ciphertext header can name.

use std::{fmt, str::FromStr};

/// AEAD used to seal a field. The id is written into every ciphertext header, so ids
/// must never be reused for another algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// AES-256-GCM with a 96-bit random nonce (default).
    #[default]
    Aes256Gcm,
    /// XChaCha20-Poly1305 with a 192-bit random nonce.
    XChaCha20Poly1305,
}

impl Algorithm {
    pub const fn id(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::XChaCha20Poly1305 => 2,
        }
    }

    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::XChaCha20Poly1305),
            _ => None,
        }
    }

    pub const fn nonce_len(self) -> usize {
        match self {
            Self::Aes256Gcm => 12,
            Self::XChaCha20Poly1305 => 24,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "aes-256-gcm" | "aes256gcm" => Ok(Self::Aes256Gcm),
            "xchacha20-poly1305" | "xchacha20poly1305" => Ok(Self::XChaCha20Poly1305),
            other => Err(format!(
                "unknown cipher `{other}` (expected aes-256-gcm or xchacha20-poly1305)"
            )),
        }
    }
}
