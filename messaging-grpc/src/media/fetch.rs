//! Downloading inbound media from Twilio without becoming an SSRF vector:
//! - only hosts on the allow-list (exact names, or `*.suffix`), for the first URL and
//!   for every redirect (Twilio answers media URLs with a redirect to its CDN);
//! - names are resolved by our own resolver, which refuses private, loopback and
//!   link-local addresses unless that exact host was allowed on purpose (so a
//!   wildcard name pointing at 169.254.169.254 is refused);
//! - a size cap enforced while streaming, and one deadline for the whole download, so
//!   a slow drip ends instead of holding a worker forever.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    Url,
    dns::{Name, Resolve, Resolving},
    redirect,
};
use secrecy::{ExposeSecret, SecretString};

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRule {
    /// This host only (may be an IP literal or `localhost`: allowed even if private).
    Exact(String),
    /// Any host ending in `.suffix` (public addresses only).
    Suffix(String),
}

impl HostRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() || s.contains('/') || s.contains(':') && !s.starts_with('[') {
            return Err(format!("`{s}` is not a host name"));
        }
        Ok(match s.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() => Self::Suffix(format!(".{suffix}")),
            _ => Self::Exact(s),
        })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => h == host,
            Self::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

/// Why a download did not produce a stored file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Refused for good (host not allowed, private address, too large, 4xx).
    #[error("refused: {0}")]
    Refused(String),
    /// Worth another attempt later (network, timeout, 5xx, 429).
    #[error("failed: {0}")]
    Retryable(String),
}

/// The downloader; cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    rules: Arc<Vec<HostRule>>,
    auth: Option<(String, SecretString)>,
    max_bytes: usize,
}

fn host_allowed(rules: &[HostRule], url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("scheme {} is not allowed", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or("URL without a host")?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if !rules.iter().any(|r| r.matches(&host)) {
        return Err(format!("host {host} is not in MEDIA_FETCH_ALLOWED_HOSTS"));
    }
    // An IP literal must be allowed by name (Exact): wildcards never cover addresses.
    if host.parse::<IpAddr>().is_ok() && !rules.contains(&HostRule::Exact(host.clone())) {
        return Err(format!("address {host} is not allowed"));
    }
    Ok(())
}

/// Private, loopback, link-local and other non-public addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let seg = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves names, refusing internal addresses unless the exact name was allowed.
struct GuardedResolver {
    rules: Arc<Vec<HostRule>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let exact = self.rules.contains(&HostRule::Exact(host.clone()));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| exact || !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

impl Fetcher {
    /// `auth`: the Twilio account's Basic credentials, sent to allowed hosts only
    /// (reqwest drops them on a redirect to another host).
    pub fn new(
        rules: Vec<HostRule>,
        auth: Option<(String, SecretString)>,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        let rules = Arc::new(rules);
        let redirect_rules = rules.clone();
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match host_allowed(&redirect_rules, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(format!("redirect refused: {why}")),
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver {
                rules: rules.clone(),
            }))
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            rules,
            auth,
            max_bytes,
        })
    }

    /// Downloads `url` (at most `max_bytes`).
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Refused(format!("not a URL: {e}")))?;
        host_allowed(&self.rules, &parsed).map_err(FetchError::Refused)?;
        let mut req = self.client.get(parsed);
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, Some(pass.expose_secret()));
        }
        let mut resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            let msg = format!("HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                FetchError::Retryable(msg)
            } else {
                FetchError::Refused(msg)
            });
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::Refused(format!(
                "larger than {} bytes",
                self.max_bytes
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::Refused(format!(
                    "larger than {} bytes",
                    self.max_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Best-effort DELETE of the provider's copy (MEDIA_DELETE_AFTER_COPY).
    pub async fn delete(&self, url: &str) -> Result<(), FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Refused(e.to_string()))?;
        host_allowed(&self.rules, &parsed).map_err(FetchError::Refused)?;
        let mut req = self.client.delete(parsed);
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, Some(pass.expose_secret()));
        }
        let resp = req.send().await.map_err(classify)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(FetchError::Retryable(format!("HTTP {}", resp.status())))
        }
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_redirect() || e.is_builder() {
        FetchError::Refused(e.to_string())
    } else {
        // Connect errors carry the resolver's refusal: look for it.
        let text = format!("{e:?}");
        if text.contains("internal addresses") {
            FetchError::Refused("resolves only to internal addresses".into())
        } else {
            FetchError::Retryable(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<HostRule> {
        list.iter().map(|r| HostRule::parse(r).unwrap()).collect()
    }

    #[test]
    fn allow_list() {
        let r = rules(&["api.twilio.com", "*.twiliocdn.com", "127.0.0.1"]);
        let ok = |u: &str| host_allowed(&r, &Url::parse(u).unwrap()).is_ok();
        assert!(ok(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
        ));
        assert!(ok("https://s3.twiliocdn.com/x.jpg"));
        assert!(
            ok("http://127.0.0.1:8080/a.png"),
            "an explicitly allowed address"
        );
        assert!(!ok("https://twiliocdn.com.evil.example/x"));
        assert!(!ok("https://evil.example/x"));
        assert!(!ok("http://10.0.0.1/x"));
        assert!(!ok("http://169.254.169.254/latest/meta-data/"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("ftp://api.twilio.com/x"));
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "54.172.60.1", "2600:1f18::1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
