//! Twilio request signatures (`X-Twilio-Signature`), computed exactly as Twilio and
//! its helper libraries do:
//!
//! HMAC-SHA1 keyed with the auth token over the full URL Twilio called, followed by
//! every POST parameter sorted by name, each name+value concatenated (a repeated name
//! contributes each distinct value, sorted), base64-encoded. The URL is accepted with
//! its port removed or with the scheme's default port added, like the helper libraries
//! do, because Twilio is not consistent about it. For JSON bodies Twilio signs the URL
//! alone, which carries `bodySHA256` = hex SHA-256 of the body.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// What a request offers to be checked.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// `application/x-www-form-urlencoded` parameters, in any order.
    Form(&'a [(String, String)]),
    /// A raw (JSON) body, checked against the URL's `bodySHA256`.
    Body(&'a [u8]),
}

/// The string Twilio signs: URL then sorted parameters.
fn signing_input(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut s = String::with_capacity(
        url.len() + sorted.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
    );
    s.push_str(url);
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

fn mac(token: &[u8], url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(token).expect("HMAC accepts keys of any length");
    mac.update(signing_input(url, params).as_bytes());
    mac
}

/// The signature Twilio would send for `url` and `params` (for tests and the
/// `simulate` tooling).
pub fn compute(token: &[u8], url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(token, url, params).finalize().into_bytes())
}

/// Hex SHA-256 of a body, as Twilio puts it in `bodySHA256`.
pub fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Whether `signature` could be one at all: base64 of an HMAC-SHA1 (20 bytes). A request
/// whose signature cannot be is counted against the rate limit before its body is read.
pub fn is_well_formed(signature: &str) -> bool {
    STANDARD
        .decode(signature.trim())
        .is_ok_and(|mac| mac.len() == 20)
}

/// Checks `signature` for a request to `url` against any of `tokens` (several during
/// an auth token rotation). Constant-time in the signature bytes.
pub fn validate(tokens: &[&[u8]], url: &str, payload: Payload<'_>, signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    if given.is_empty() {
        return false;
    }
    let params: &[(String, String)] = match payload {
        Payload::Form(params) => params,
        Payload::Body(body) => {
            let Some(hash) = query_param(url, "bodySHA256") else {
                return false;
            };
            if !hash.eq_ignore_ascii_case(&body_sha256(body)) {
                return false;
            }
            &[]
        }
    };
    let variants = [without_port(url), with_default_port(url)];
    tokens.iter().any(|token| {
        variants
            .iter()
            .flatten()
            .any(|u| mac(token, u, params).verify_slice(&given).is_ok())
    })
}

/// First value of a query parameter, percent-decoded (a `#…` fragment is not part of
/// the query).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Splits `scheme://authority/rest` into its parts.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

/// `(host part with userinfo, port)` of an authority.
fn host_port(authority: &str) -> (&str, Option<&str>) {
    let at = authority.rfind('@').map_or(0, |i| i + 1);
    let hostport = &authority[at..];
    let colon = if hostport.starts_with('[') {
        hostport
            .find(']')
            .and_then(|i| hostport[i..].find(':').map(|j| at + i + j))
    } else {
        hostport.rfind(':').map(|i| at + i)
    };
    match colon {
        Some(i)
            if authority[i + 1..].bytes().all(|b| b.is_ascii_digit())
                && i + 1 < authority.len() =>
        {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    }
}

fn without_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split(url)?;
    let (host, _) = host_port(authority);
    Some(format!("{scheme}://{host}{rest}"))
}

fn with_default_port(url: &str) -> Option<String> {
    let (scheme, authority, rest) = split(url)?;
    match host_port(authority) {
        (_, Some(_)) => Some(url.to_owned()),
        (host, None) => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            Some(format!("{scheme}://{host}:{port}{rest}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    // Twilio's own test vectors (twilio-python tests/unit/test_request_validator.py).
    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn ok(url: &str, params: &[(String, String)], sig: &str) -> bool {
        validate(&[TOKEN], url, Payload::Form(params), sig)
    }

    #[test]
    fn twilio_reference_vectors() {
        let p = params();
        assert_eq!(compute(TOKEN, URL, &p), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(ok(URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(ok(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert_eq!(
            compute(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &p),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert!(
            ok(URL, &p, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            "default port added"
        );
        assert_eq!(
            compute(TOKEN, "http://mycompany.com:80/myapp.php?foo=1&bar=2", &p),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        assert!(ok(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p,
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
        assert_eq!(
            compute(TOKEN, "http://mycompany.com:1234/myapp.php?foo=1&bar=2", &p),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        );
        assert!(ok(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
    }

    #[test]
    fn repeated_names_contribute_each_distinct_value_sorted() {
        let p: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(compute(TOKEN, URL, &p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn json_body_with_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = body_sha256(body);
        assert_eq!(
            hash,
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let url = format!("{URL}&bodySHA256={hash}");
        assert_eq!(compute(TOKEN, &url, &[]), "a9nBmqA0ju/hNViExpshrM61xv4=");
        assert!(validate(
            &[TOKEN],
            &url,
            Payload::Body(body),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        assert!(
            !validate(
                &[TOKEN],
                &url,
                Payload::Body(b"{}"),
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            "altered body"
        );
        assert!(
            !validate(
                &[TOKEN],
                URL,
                Payload::Body(body),
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            "no bodySHA256"
        );
    }

    #[test]
    fn refuses_missing_wrong_and_malformed() {
        let p = params();
        for bad in [
            "",
            "   ",
            "not base64!",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8",
            "RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            "AAAA",
        ] {
            assert!(!ok(URL, &p, bad), "{bad:?}");
        }
        let mut altered = p.clone();
        altered[2].1 = "9999".into();
        assert!(
            !ok(URL, &altered, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            "altered parameter"
        );
        assert!(!ok(
            "https://evil.com/myapp.php?foo=1&bar=2",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate(
            &[b"54321"],
            URL,
            Payload::Form(&p),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn any_configured_token_validates() {
        let p = params();
        assert!(validate(
            &[b"new-token", TOKEN],
            URL,
            Payload::Form(&p),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn only_base64_of_twenty_bytes_is_well_formed() {
        assert!(is_well_formed("RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(is_well_formed(" RSOYDt4T1cUTdK1PDd93/VVr8B8= "));
        for bad in ["", "AAAA", "not base64!", "RSOYDt4T1cUTdK1PDd93/VVr8B8"] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_connection_override_fragment_is_signed_like_the_rest_of_the_url() {
        // Twilio's connection overrides (`#rc=…&rp=…`) are never sent in the request
        // line; a signature over the URL with them is checked against the URL with them.
        let p = params();
        let with = "https://mycompany.com/myapp.php?foo=1&bar=2#ct=2000&rt=6000&rc=3&rp=all";
        let sig = compute(TOKEN, with, &p);
        assert!(ok(with, &p, &sig));
        assert!(
            ok(
                "https://mycompany.com:443/myapp.php?foo=1&bar=2#ct=2000&rt=6000&rc=3&rp=all",
                &p,
                &sig
            ),
            "the port variants keep the fragment"
        );
        assert!(!ok(URL, &p, &sig), "the fragment is part of what is signed");
        assert!(!ok(&format!("{URL}#rc=5&rp=all"), &p, &sig));
        // A JSON body's bodySHA256 ends at the fragment.
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!("{URL}&bodySHA256={}#rc=3&rp=all", body_sha256(body));
        let sig = compute(TOKEN, &url, &[]);
        assert!(validate(&[TOKEN], &url, Payload::Body(body), &sig));
    }

    #[test]
    fn url_port_handling() {
        assert_eq!(
            without_port("https://a.com:8443/x?y=1").unwrap(),
            "https://a.com/x?y=1"
        );
        assert_eq!(
            with_default_port("https://a.com/x").unwrap(),
            "https://a.com:443/x"
        );
        assert_eq!(
            with_default_port("http://a.com").unwrap(),
            "http://a.com:80"
        );
        assert_eq!(
            without_port("http://[::1]:3003/w").unwrap(),
            "http://[::1]/w"
        );
        assert_eq!(
            with_default_port("http://[::1]/w").unwrap(),
            "http://[::1]:80/w"
        );
        assert_eq!(
            without_port("https://u:p@a.com:99/").unwrap(),
            "https://u:p@a.com/"
        );
    }

    proptest! {
        #[test]
        fn never_panics(url in ".{0,80}", sig in ".{0,40}", k in ".{0,10}", v in ".{0,10}") {
            let p = vec![(k, v)];
            let _ = validate(&[TOKEN], &url, Payload::Form(&p), &sig);
            let _ = validate(&[TOKEN], &url, Payload::Body(sig.as_bytes()), &sig);
        }

        #[test]
        fn signs_then_validates(k in "[A-Za-z]{1,8}", v in "\\PC{0,20}", port in proptest::option::of(1u16..65535)) {
            let url = match port { Some(p) => format!("https://h.example:{p}/webhook/sms"), None => "https://h.example/webhook/sms".into() };
            let p = vec![(k, v)];
            let sig = compute(TOKEN, &url, &p);
            prop_assert!(validate(&[TOKEN], &url, Payload::Form(&p), &sig));
        }
    }
}
