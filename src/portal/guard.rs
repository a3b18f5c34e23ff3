//! What protects every portal request: the security headers of every answer, the Fetch
//! Metadata and `Origin` check of every POST, the constant-time form-token comparison, and the
//! two embedded static files (no inline script or style, so the CSP can forbid both).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::Portal;

const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Adds the security headers to every answer; pages (anything not already given a cache
/// policy) are never stored.
pub(crate) async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        // `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null` on
        // the portal's own form POSTs, which the origin check must refuse.
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Whether a POST may come from this browser context: refused when `Sec-Fetch-Site` says
/// another site made it, or when `Origin` is present and is not the portal's (its
/// `public_origin`, else `http://` + the `Host` header). Requests with neither header (scripts, old browsers) pass:
/// the form token still guards them.
pub(crate) fn same_origin(portal: &Portal, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site != b"same-origin" && site != b"none" {
            return false;
        }
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    match &portal.settings.public_origin {
        Some(own) => origin == own,
        // Without a public origin the portal is plain HTTP on the `Host` it was reached by:
        // scheme and authority must both match (an `https://` page of the same host is
        // another origin).
        None => headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| origin.strip_prefix("http://") == Some(host)),
    }
}

/// Constant-time comparison of a submitted form token with the session's.
pub(crate) fn csrf_matches(submitted: Option<&str>, expected: &str) -> bool {
    submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `static/portal.css`.
pub(crate) async fn stylesheet() -> Response {
    asset(include_str!("static/portal.css"), "text/css; charset=utf-8")
}

/// `static/portal.js`: the copy button, nothing else.
pub(crate) async fn script() -> Response {
    asset(
        include_str!("static/portal.js"),
        "text/javascript; charset=utf-8",
    )
}
