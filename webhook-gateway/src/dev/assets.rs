//! The console's page and its files, compiled into the binary (no build step, no
//! framework). The page's Content-Security-Policy allows its own scripts, styles and
//! fetches only — no inline script or style anywhere — plus `blob:` images (the
//! inbox shows MMS images it fetched with the bearer token).

use axum::{
    extract::Path,
    response::{IntoResponse, Response},
};
use hyper::header::{self, HeaderValue};

/// The page's policy: stricter than helmet's default for pages, as strict as the
/// gateway's `default-src 'none'` everywhere else but for what the page itself needs.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

const INDEX: &str = include_str!("static/index.html");

/// `(name, content type, contents)` of every file under `/dev/assets/`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("static/console.css"),
    ),
    (
        "main.js",
        "text/javascript; charset=utf-8",
        include_str!("static/main.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("static/api.js"),
    ),
    (
        "events.js",
        "text/javascript; charset=utf-8",
        include_str!("static/events.js"),
    ),
    (
        "inbox.js",
        "text/javascript; charset=utf-8",
        include_str!("static/inbox.js"),
    ),
    (
        "thread.js",
        "text/javascript; charset=utf-8",
        include_str!("static/thread.js"),
    ),
    (
        "phone.js",
        "text/javascript; charset=utf-8",
        include_str!("static/phone.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("static/dom.js"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("static/icon.svg")),
];

fn answer(content_type: &'static str, contents: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            ),
            // The binary is the version: a rebuilt console must not run stale scripts.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        contents,
    )
        .into_response()
}

/// `GET /dev`: the console page.
pub(super) async fn page() -> Response {
    answer("text/html; charset=utf-8", INDEX)
}

/// `GET /dev/assets/{file}`.
pub(super) async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, contents)) => answer(content_type, contents),
        None => crate::plain::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ` onclick=` and the like.
    fn has_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn nothing_inline_and_every_referenced_file_exists() {
        for (name, _, contents) in FILES.iter().chain([&("index.html", "", INDEX)]) {
            assert!(!contents.contains("<script>"), "{name}: inline script");
            assert!(!contents.contains("<style"), "{name}: inline style");
            assert!(!contents.contains(" style=\""), "{name}: style attribute");
            assert!(
                !has_handler_attribute(contents),
                "{name}: inline event handler"
            );
            assert!(
                !contents.contains("innerHTML"),
                "{name}: text only, never markup"
            );
            assert!(!contents.contains("eval("), "{name}");
        }
        // Each `./x.js` a module imports and each `/dev/assets/x` the page links is served.
        let all = FILES.iter().map(|(_, _, c)| *c).chain([INDEX]);
        for contents in all {
            for reference in contents.split(['"', '\'']).filter_map(|s| {
                s.strip_prefix("/dev/assets/")
                    .or_else(|| s.strip_prefix("./"))
            }) {
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == reference),
                    "{reference} is referenced but not served"
                );
            }
        }
    }
}
