//! Encrypted media objects through `object_store`: a local folder by default, any
//! S3-compatible store in production (`s3://bucket/prefix`, credentials from the usual
//! AWS_* variables).

use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path};

/// Where media bytes (already encrypted) are kept.
#[derive(Clone, Debug)]
pub struct MediaObjects {
    store: Arc<dyn ObjectStore>,
}

impl MediaObjects {
    /// `spec`: a folder path, or an `s3://bucket[/prefix]` URL.
    pub fn open(spec: &str) -> Result<Self, String> {
        if spec.starts_with("s3://") {
            let url = url::Url::parse(spec).map_err(|e| format!("MEDIA_STORE: {e}"))?;
            let (store, prefix) = object_store::parse_url_opts(
                &url,
                std::env::vars().filter(|(k, _)| k.starts_with("AWS_")),
            )
            .map_err(|e| format!("MEDIA_STORE: {e}"))?;
            let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                Arc::from(store)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            };
            return Ok(Self { store });
        }
        std::fs::create_dir_all(spec).map_err(|e| format!("MEDIA_STORE: creating {spec}: {e}"))?;
        let local =
            LocalFileSystem::new_with_prefix(spec).map_err(|e| format!("MEDIA_STORE: {e}"))?;
        Ok(Self {
            store: Arc::new(local),
        })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), object_store::Error> {
        self.store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await
            .map(drop)
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, object_store::Error> {
        Ok(self
            .store
            .get(&Path::from(key))
            .await?
            .bytes()
            .await?
            .to_vec())
    }
}
