//! Dev secrets kept in the data folder: a master key and an HS256 JWT secret, created
//! on first use (mode 0600) and reused, so `messaging dev` and `messaging token` agree.

use std::{
    fs,
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::SecretBox;
use zeroize::Zeroizing;

use crate::crypto::{DataKey, MasterKey, MasterKeyRing, random_bytes};

const DIR: &str = "dev-secrets";

/// Access to `<data dir>/dev-secrets/`.
pub struct DevSecrets {
    dir: PathBuf,
}

impl DevSecrets {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(DIR),
        }
    }

    /// The dev master key ring (one key, id `dev1`).
    pub fn master_keys(&self) -> Result<MasterKeyRing, String> {
        let entry = self.read_or_create("master.key", || {
            let key = DataKey::generate().map_err(|e| e.to_string())?;
            Ok(MasterKey::new("dev1", key).to_config_entry())
        })?;
        MasterKeyRing::parse(entry.trim())
            .map_err(|e| format!("{}: {e}", self.path("master.key").display()))
    }

    /// The dev HS256 secret (32 random bytes, base64 in the file; the secret is the text).
    pub fn jwt_secret(&self) -> Result<SecretBox<Vec<u8>>, String> {
        let text = self.read_or_create("jwt.secret", || {
            let mut bytes = Zeroizing::new([0u8; 32]);
            random_bytes(bytes.as_mut()).map_err(|e| e.to_string())?;
            Ok(Zeroizing::new(STANDARD.encode(bytes.as_ref())))
        })?;
        Ok(SecretBox::new(Box::new(text.trim().as_bytes().to_vec())))
    }

    /// The Twilio auth token the dev gateway checks webhook signatures with (and
    /// `messaging webhook …` signs with), when TWILIO_AUTH_TOKEN is not set.
    pub fn twilio_auth_token(&self) -> Result<String, String> {
        let text = self.read_or_create("twilio-auth-token", || {
            let mut bytes = Zeroizing::new([0u8; 16]);
            random_bytes(bytes.as_mut()).map_err(|e| e.to_string())?;
            Ok(Zeroizing::new(
                bytes.iter().map(|b| format!("{b:02x}")).collect(),
            ))
        })?;
        Ok(text.trim().to_owned())
    }

    /// The secret that signs media URLs (shared by the dev core and gateway).
    pub fn media_url_secret(&self) -> Result<Vec<u8>, String> {
        let text = self.read_or_create("media-url.secret", || {
            let mut bytes = Zeroizing::new([0u8; 32]);
            random_bytes(bytes.as_mut()).map_err(|e| e.to_string())?;
            Ok(Zeroizing::new(STANDARD.encode(bytes.as_ref())))
        })?;
        Ok(text.trim().as_bytes().to_vec())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read_or_create(
        &self,
        name: &str,
        make: impl FnOnce() -> Result<Zeroizing<String>, String>,
    ) -> Result<Zeroizing<String>, String> {
        let path = self.path(name);
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(Zeroizing::new(text)),
            Ok(_) => {
                return Err(format!(
                    "{} is empty; delete it to regenerate",
                    path.display()
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let value = make()?;
        // create_new: if another process created it meanwhile, use theirs.
        match open_private(&path) {
            Ok(mut file) => {
                file.write_all(value.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok(value)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => fs::read_to_string(&path)
                .map(Zeroizing::new)
                .map_err(|e| format!("reading {}: {e}", path.display())),
            Err(e) => Err(format!("creating {}: {e}", path.display())),
        }
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = DevSecrets::new(dir.path());
        let k1 = a.master_keys().unwrap();
        let s1 = a.jwt_secret().unwrap();
        let b = DevSecrets::new(dir.path());
        assert_eq!(
            b.master_keys().unwrap().active().key().as_bytes(),
            k1.active().key().as_bytes()
        );
        assert_eq!(b.jwt_secret().unwrap().expose_secret(), s1.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(DIR).join("jwt.secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
