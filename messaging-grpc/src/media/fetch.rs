//! Downloading inbound media from Twilio without becoming an SSRF vector:
//! - only hosts on the allow-list (exact names, or `*.suffix`), for the first URL and
//!   for every redirect (Twilio answers media URLs with a redirect to its CDN);
//! - every name is resolved by our own resolver, which refuses private, loopback and
//!   link-local addresses whether the name was allowed exactly or by a wildcard (a
//!   name's DNS answer is not the operator's to vouch for, `localhost` included). An
//!   internal address is reached only when that literal address is on the list (the
//!   local stack and tests allow `127.0.0.1`);
//! - a size cap enforced while streaming, and one deadline for the whole download, so
//!   a slow drip ends instead of holding a worker forever;
//! - no proxy from the environment (`HTTPS_PROXY` would make the proxy resolve the
//!   name, bypassing our resolver's check);
//! - Twilio's Basic credentials only to Twilio's own hosts ([`TWILIO_CREDENTIAL_HOSTS`]
//!   and the configured API base), only over https (plain http only to a loopback host
//!   allowed by exact name, for local runs): another allowed host (a shared CDN or
//!   storage host) gets the request without them.

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

pub use super::addresses::is_internal;

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostRule {
    /// This host only. An IP literal is reached even if internal (the operator named
    /// that address); a name is resolved and filtered like any other.
    Exact(String),
    /// Any host ending in `.suffix` (public addresses only).
    Suffix(String),
}

impl HostRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        // An IPv6 literal, bracketed or not, is kept in the form URLs are compared in
        // (`::1`), so `[::1]` matches `http://[::1]:8080/`.
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Self::Exact(ip.to_string()));
        }
        if s.is_empty() || s.contains(['/', ':', '[', ']']) {
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

/// The hosts Twilio's Basic credentials may be sent to: its REST API (which answers
/// media URLs) and its own media domains. Not the shared storage hosts Twilio
/// redirects to, whose URLs are pre-signed.
pub const TWILIO_CREDENTIAL_HOSTS: &[&str] = &["api.twilio.com", "*.twilio.com", "*.twiliocdn.com"];

/// Basic credentials and the hosts they may go to.
#[derive(Clone)]
pub struct FetchCredentials {
    pub user: String,
    pub password: SecretString,
    /// Only these hosts get the credentials (and only over https, or loopback http
    /// allowed by exact name).
    pub hosts: Vec<HostRule>,
}

impl FetchCredentials {
    /// `user`/`password` for Twilio's hosts plus the host of `api_base` (TWILIO_API_BASE:
    /// a fake in tests, a regional or proxied API in some deployments).
    pub fn twilio(user: String, password: SecretString, api_base: &str) -> Self {
        let mut hosts: Vec<HostRule> = TWILIO_CREDENTIAL_HOSTS
            .iter()
            .filter_map(|h| HostRule::parse(h).ok())
            .collect();
        if let Some(host) = Url::parse(api_base).ok().and_then(|u| url_host(&u).ok())
            && let Ok(rule) = HostRule::parse(&host)
        {
            hosts.push(rule);
        }
        Self {
            user,
            password,
            hosts,
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
    auth: Option<FetchCredentials>,
    max_bytes: usize,
}

fn host_allowed(rules: &[HostRule], url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("scheme {} is not allowed", url.scheme()));
    }
    let host = url_host(url)?;
    if !rules.iter().any(|r| r.matches(&host)) {
        return Err(format!("host {host} is not in MEDIA_FETCH_ALLOWED_HOSTS"));
    }
    // An IP literal must be allowed by name (Exact): wildcards never cover addresses.
    if host.parse::<IpAddr>().is_ok() && !rules.contains(&HostRule::Exact(host.clone())) {
        return Err(format!("address {host} is not allowed"));
    }
    Ok(())
}

/// The URL's host as allow-list entries hold it: lower-case names, addresses in their
/// canonical form without brackets.
fn url_host(url: &Url) -> Result<String, String> {
    Ok(match url.host().ok_or("URL without a host")? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

/// Whether Twilio's credentials go with a request to `url`: only to one of `hosts`,
/// and never over plain http, except to this machine when it was allowed by exact
/// name (the local stack and tests serve media on loopback).
fn send_credentials(hosts: &[HostRule], rules: &[HostRule], url: &Url) -> Result<bool, String> {
    let host = url_host(url)?;
    if !hosts.iter().any(|h| h.matches(&host)) {
        return Ok(false);
    }
    credentials_allowed(rules, url).map(|()| true)
}

/// Twilio's credentials never go over plain http, except to this machine when it was
/// allowed by exact name (the local stack and tests serve media on loopback).
fn credentials_allowed(rules: &[HostRule], url: &Url) -> Result<(), String> {
    if url.scheme() == "https" {
        return Ok(());
    }
    let host = url_host(url)?;
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback && rules.contains(&HostRule::Exact(host)) {
        return Ok(());
    }
    Err("http:// media URLs are refused: Twilio credentials are only sent over https".into())
}

/// Resolves names, refusing internal addresses for every name, exact or wildcard: an
/// allowed name whose DNS answer moves to 10.0.0.5 or 169.254.169.254 must not take
/// the download there (`localhost` included: allow `127.0.0.1` itself for that). Only
/// URLs with a literal address on the allow-list reach an internal address, and
/// those never come through here.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                addrs.into_iter().filter(|a| !is_internal(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

impl Fetcher {
    /// `auth`: the Twilio account's Basic credentials, sent to its hosts only
    /// (reqwest drops them on a redirect to another host).
    pub fn new(
        rules: Vec<HostRule>,
        auth: Option<FetchCredentials>,
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
            .dns_resolver(Arc::new(GuardedResolver))
            // A proxy would resolve the name itself, past the resolver's check.
            .no_proxy()
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
        let req = self.authorized(self.client.get(parsed.clone()), &parsed)?;
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

    /// `req` with the Basic credentials, when there are any and `url` may carry them.
    fn authorized(
        &self,
        req: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, FetchError> {
        let Some(auth) = &self.auth else {
            return Ok(req);
        };
        if send_credentials(&auth.hosts, &self.rules, url).map_err(FetchError::Refused)? {
            Ok(req.basic_auth(&auth.user, Some(auth.password.expose_secret())))
        } else {
            Ok(req)
        }
    }

    /// Best-effort DELETE of the provider's copy (MEDIA_DELETE_AFTER_COPY).
    pub async fn delete(&self, url: &str) -> Result<(), FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::Refused(e.to_string()))?;
        host_allowed(&self.rules, &parsed).map_err(FetchError::Refused)?;
        let req = self.authorized(self.client.delete(parsed.clone()), &parsed)?;
        let resp = req.send().await.map_err(classify)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(FetchError::Retryable(format!("HTTP {}", resp.status())))
        }
    }
}

/// The error's text without its URL (a media path is as private as the image): what
/// `media.last_error` and the logs get.
fn classify(e: reqwest::Error) -> FetchError {
    // Connect errors carry the resolver's refusal in their source chain: look for it.
    let internal = format!("{e:?}").contains("internal addresses");
    let refused = e.is_redirect() || e.is_builder();
    let text = crate::redact::external_text(&e.without_url().to_string());
    if internal {
        FetchError::Refused("resolves only to internal addresses".into())
    } else if refused {
        FetchError::Refused(text)
    } else {
        FetchError::Retryable(text)
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
    fn ipv6_allow_list_entries_match_urls() {
        for entry in ["[::1]", "::1", "[0:0:0:0:0:0:0:1]"] {
            let r = rules(&[entry]);
            assert_eq!(r, [HostRule::Exact("::1".into())], "{entry}");
            let ok = |u: &str| host_allowed(&r, &Url::parse(u).unwrap()).is_ok();
            assert!(ok("http://[::1]:8080/a.png"), "{entry}");
            assert!(!ok("http://[::2]:8080/a.png"), "{entry}");
        }
        assert!(HostRule::parse("[not-an-address]").is_err());
        assert!(HostRule::parse("host:80").is_err());
    }

    #[test]
    fn credentials_only_over_https_or_to_an_allowed_loopback_host() {
        let r = rules(&[
            "api.twilio.com",
            "127.0.0.1",
            "[::1]",
            "localhost",
            "10.0.0.5",
        ]);
        let ok = |u: &str| credentials_allowed(&r, &Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://api.twilio.com/x"));
        assert!(!ok("http://api.twilio.com/x"), "plain http to Twilio");
        assert!(ok("http://127.0.0.1:3999/x"));
        assert!(ok("http://[::1]:3999/x"));
        assert!(ok("http://localhost:3999/x"));
        assert!(!ok("http://10.0.0.5/x"), "allowed but not loopback");
        assert!(
            !ok("http://127.0.0.2/x"),
            "loopback but not allowed by name"
        );
    }

    #[tokio::test]
    async fn plain_http_with_credentials_is_refused_before_any_request() {
        let fetcher = Fetcher::new(
            rules(&["api.twilio.com"]),
            Some(FetchCredentials::twilio(
                "AC1".into(),
                SecretString::from("secret"),
                "https://api.twilio.com",
            )),
            1024,
            Duration::from_secs(1),
        )
        .unwrap();
        let err = fetcher
            .fetch("http://api.twilio.com/x.jpg")
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Refused(ref why) if why.contains("https")),
            "{err}"
        );
    }

    /// The proxy variables would send the request to the proxy, which resolves the name
    /// itself: the resolver's check never runs. The variables cannot be set in this
    /// process (they are global, and `unsafe` to set), so the test runs itself again
    /// as a child process with them set and checks the child never used the proxy.
    #[test]
    fn proxy_variables_are_ignored() {
        const CHILD: &str = "MEDIA_FETCH_PROXY_TEST_URL";
        if let Ok(url) = std::env::var(CHILD) {
            let fetched = tokio::runtime::Runtime::new().unwrap().block_on(async {
                let fetcher =
                    Fetcher::new(rules(&["127.0.0.1"]), None, 1024, Duration::from_secs(5))
                        .unwrap();
                fetcher.fetch(&url).await
            });
            assert_eq!(fetched.unwrap(), b"direct");
            return;
        }
        use std::{
            io::{Read, Write},
            net::TcpListener,
            sync::atomic::{AtomicUsize, Ordering},
        };
        // The "proxy" counts connections and answers nothing useful.
        let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let proxied = Arc::new(AtomicUsize::new(0));
        let count = proxied.clone();
        std::thread::spawn(move || {
            for conn in proxy.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        // The media server answers one request directly.
        let media = TcpListener::bind("127.0.0.1:0").unwrap();
        let media_addr = media.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut conn in media.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ndirect",
                );
            }
        });
        let proxy_url = format!("http://{proxy_addr}");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "media::fetch::tests::proxy_variables_are_ignored",
                "--nocapture",
            ])
            .env(CHILD, format!("http://{media_addr}/a.png"))
            .env("HTTP_PROXY", &proxy_url)
            .env("HTTPS_PROXY", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("https_proxy", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .status()
            .unwrap();
        assert!(status.success(), "the child's fetch failed");
        assert_eq!(proxied.load(Ordering::SeqCst), 0, "the proxy was used");
    }
}
