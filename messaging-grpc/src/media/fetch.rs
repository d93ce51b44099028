//! Downloading inbound media from Twilio without becoming an SSRF vector:
//! - only hosts on the allow-list (exact names, or `*.suffix`), for the first URL and
//!   for every redirect (Twilio answers media URLs with a redirect to its CDN);
//! - names are resolved by our own resolver, which refuses private, loopback and
//!   link-local addresses unless that exact host was allowed on purpose (so a
//!   wildcard name pointing at 169.254.169.254 is refused);
//! - a size cap enforced while streaming, and one deadline for the whole download, so
//!   a slow drip ends instead of holding a worker forever;
//! - no proxy from the environment (`HTTPS_PROXY` would make the proxy resolve the
//!   name, bypassing our resolver's check), and Twilio's Basic credentials only over
//!   https (plain http only to a loopback host allowed by exact name, for local runs).

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
    /// This host only (may be an IP literal or `localhost`: allowed even if private).
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
        let Some((user, pass)) = &self.auth else {
            return Ok(req);
        };
        credentials_allowed(&self.rules, url).map_err(FetchError::Refused)?;
        Ok(req.basic_auth(user, Some(pass.expose_secret())))
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
            Some(("AC1".into(), SecretString::from("secret"))),
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
