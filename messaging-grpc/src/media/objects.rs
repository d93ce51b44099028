//! Encrypted media objects through `object_store`: a local folder by default, any
//! S3-compatible store in production (`s3://bucket/prefix`), configured by the usual
//! `AWS_*` variables (docs/production.md and the configuration table).

use std::{sync::Arc, time::Duration};

use object_store::{
    ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, RetryConfig,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    local::LocalFileSystem,
    path::Path,
};

/// Time to connect to the S3 endpoint, unless `AWS_CONNECT_TIMEOUT` says otherwise.
const S3_CONNECT_TIMEOUT: &str = "5s";
/// Time of one S3 request, unless `AWS_TIMEOUT` says otherwise.
const S3_REQUEST_TIMEOUT: &str = "30s";
/// Retries of one failed S3 request, all within [`S3_RETRY_TIMEOUT`]: an unreachable
/// store answers UNAVAILABLE within seconds rather than after object_store's default
/// three minutes of retries.
const S3_MAX_RETRIES: usize = 3;
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The variables an `s3://` MEDIA_STORE is configured by (README table): endpoint
/// and region, static credentials, or the container / web-identity credentials of
/// ECS and EKS (none set: the instance's metadata service is asked).
pub const S3_VARIABLES: &[&str] = &[
    "AWS_ENDPOINT",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
    "AWS_CONNECT_TIMEOUT",
    "AWS_TIMEOUT",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];

/// Where media bytes (already encrypted) are kept.
#[derive(Clone, Debug)]
pub struct MediaObjects {
    store: Arc<dyn ObjectStore>,
}

impl MediaObjects {
    /// `spec`: a folder path, or an `s3://bucket[/prefix]` URL configured by the
    /// process environment's `AWS_*` variables.
    pub fn open(spec: &str) -> Result<Self, String> {
        let options = S3_VARIABLES
            .iter()
            .filter_map(|&k| std::env::var(k).ok().map(|v| (k.to_owned(), v)));
        Self::open_with(spec, options)
    }

    /// `spec`: a folder path, or an `s3://bucket[/prefix]` URL configured by `s3_options`.
    pub fn open_with(
        spec: &str,
        s3_options: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        if spec.starts_with("s3://") {
            return Self::open_s3(spec, s3_options);
        }
        std::fs::create_dir_all(spec).map_err(|e| format!("MEDIA_STORE: creating {spec}: {e}"))?;
        let local =
            LocalFileSystem::new_with_prefix(spec).map_err(|e| format!("MEDIA_STORE: {e}"))?;
        Ok(Self {
            store: Arc::new(local),
        })
    }

    /// An S3 store from `s3://bucket[/prefix]` and the `AWS_*` entries of `vars`
    /// (AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN, AWS_ALLOW_HTTP, AWS_VIRTUAL_HOSTED_STYLE_REQUEST, …).
    pub fn open_s3(
        spec: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, String> {
        let url = url::Url::parse(spec).map_err(|e| format!("MEDIA_STORE: {e}"))?;
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&url).map_err(|e| format!("MEDIA_STORE: {e}"))?;
        if scheme != ObjectStoreScheme::AmazonS3 {
            return Err(format!("MEDIA_STORE: {spec} is not an s3:// URL"));
        }
        let mut builder = AmazonS3Builder::new()
            .with_url(spec)
            .with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::ConnectTimeout),
                S3_CONNECT_TIMEOUT,
            )
            .with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout),
                S3_REQUEST_TIMEOUT,
            )
            .with_retry(RetryConfig {
                max_retries: S3_MAX_RETRIES,
                retry_timeout: S3_RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        for (key, value) in vars {
            if !key.starts_with("AWS_") {
                continue;
            }
            // Unknown ones (AWS_PROFILE, AWS_DEFAULT_REGION…) belong to other AWS tools.
            if let Ok(k) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(k, value);
            }
        }
        let store = builder.build().map_err(|e| format!("MEDIA_STORE: {e}"))?;
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::new(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Self { store })
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
