//! Turning an [`AuthError`] into a response: 401 with `WWW-Authenticate`, 403, 503, a JSON body
//! `{"error": "..."}`; for gRPC requests (`content-type: application/grpc...`) a trailers-only
//! response with the matching `grpc-status`. Customisable through [`Reject`].

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::credentials::Scheme;
use crate::error::{AuthError, Forbidden};

/// The `WWW-Authenticate` values of an authenticator, built once from its providers: each
/// scheme and realm in configuration order (`Basic realm="a", Bearer realm="b"`), deduplicated,
/// with RFC 6750 `error=` attributes on Bearer challenges when a credential was presented.
#[derive(Clone, Debug)]
pub struct Challenges {
    bare: HeaderValue,
    invalid_request: HeaderValue,
    invalid_token: HeaderValue,
    parts: Vec<(Scheme, String)>,
}

/// Escapes a value for an HTTP quoted-string.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Challenges {
    pub(crate) fn new<'a>(providers: impl Iterator<Item = (Scheme, &'a str)>) -> Self {
        let mut parts: Vec<(Scheme, String)> = Vec::new();
        for (scheme, realm) in providers {
            // A realm that cannot be sent in a header is left out rather than breaking the header.
            if realm.is_empty() || realm.bytes().any(|b| !(b == b' ' || b.is_ascii_graphic())) {
                continue;
            }
            if !parts.iter().any(|(s, r)| *s == scheme && r == realm) {
                parts.push((scheme, realm.to_owned()));
            }
        }
        Challenges {
            bare: Self::render(&parts, None, None),
            invalid_request: Self::render(&parts, Some("invalid_request"), None),
            invalid_token: Self::render(&parts, Some("invalid_token"), None),
            parts,
        }
    }

    fn render(parts: &[(Scheme, String)], error: Option<&str>, scope: Option<&str>) -> HeaderValue {
        if parts.is_empty() {
            let mut attrs = Vec::new();
            if let Some(e) = error {
                attrs.push(format!("error=\"{e}\""));
            }
            if let Some(s) = scope {
                attrs.push(format!("scope={}", quote(s)));
            }
            let v = if attrs.is_empty() {
                "Bearer".to_owned()
            } else {
                format!("Bearer {}", attrs.join(", "))
            };
            return HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("Bearer"));
        }
        let mut out = Vec::with_capacity(parts.len());
        for (scheme, realm) in parts {
            let mut c = format!("{scheme} realm={}", quote(realm));
            match scheme {
                Scheme::Basic => c.push_str(", charset=\"UTF-8\""),
                Scheme::Bearer => {
                    if let Some(e) = error {
                        c.push_str(&format!(", error=\"{e}\""));
                    }
                    if let Some(s) = scope {
                        c.push_str(&format!(", scope={}", quote(s)));
                    }
                }
                _ => {}
            }
            out.push(c);
        }
        HeaderValue::from_str(&out.join(", ")).unwrap_or(HeaderValue::from_static("Bearer"))
    }

    /// The challenge for `error`, or `None` when the rejection carries none (403 for roles,
    /// 503).
    pub fn for_error(&self, error: &AuthError) -> Option<HeaderValue> {
        match error {
            AuthError::Missing => Some(self.bare.clone()),
            AuthError::Malformed(_) => Some(self.invalid_request.clone()),
            AuthError::Invalid => Some(self.invalid_token.clone()),
            AuthError::Forbidden(Forbidden::Scope(s)) => Some(Self::render(
                &self.parts,
                Some("insufficient_scope"),
                Some(s),
            )),
            AuthError::Forbidden(_) | AuthError::Unavailable => None,
        }
    }
}

/// Challenges without realms, for guards that run without an authenticator at hand:
/// `Bearer` and `Bearer error="insufficient_scope", scope="..."`.
pub(crate) fn realmless() -> &'static Challenges {
    static CHALLENGES: std::sync::LazyLock<Challenges> =
        std::sync::LazyLock::new(|| Challenges::new(std::iter::empty()));
    &CHALLENGES
}

/// One rejection, as handed to a [`Reject`] strategy.
#[derive(Debug)]
pub struct Rejection<'a> {
    /// Why the request is rejected.
    pub error: &'a AuthError,
    /// The challenge to send, if any.
    pub challenge: Option<HeaderValue>,
    /// Whether the request is gRPC.
    pub grpc: bool,
}

impl Rejection<'_> {
    /// The default response: JSON for HTTP, a trailers-only status for gRPC.
    pub fn default_response(&self) -> Response<Bytes> {
        let mut res = if self.grpc {
            let mut res = Response::new(Bytes::new());
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert(
                "grpc-status",
                HeaderValue::from(u16::from(self.error.grpc_code())),
            );
            if let Ok(msg) = HeaderValue::from_str(&percent_encode(&self.error.to_string())) {
                h.insert("grpc-message", msg);
            }
            res
        } else {
            let body = serde_json::json!({ "error": self.error.to_string() }).to_string();
            let mut res = Response::new(Bytes::from(body));
            *res.status_mut() = self.error.status();
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        };
        let h = res.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = &self.challenge {
            h.insert(WWW_AUTHENTICATE, c.clone());
        }
        res.extensions_mut().insert(self.error.clone());
        res
    }
}

/// gRPC's percent-encoding of `grpc-message`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a request is gRPC, by its `content-type`.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Builds rejection responses. Implemented for closures `Fn(&Rejection<'_>) -> Response<Bytes>`.
pub trait Reject: Clone + Send + Sync + 'static {
    /// The response for `rejection`.
    fn reject(&self, rejection: &Rejection<'_>) -> Response<Bytes>;
}

/// The default rejections (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultReject;

impl Reject for DefaultReject {
    fn reject(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        rejection.default_response()
    }
}

impl<F> Reject for F
where
    F: Fn(&Rejection<'_>) -> Response<Bytes> + Clone + Send + Sync + 'static,
{
    fn reject(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        self(rejection)
    }
}

/// RFC 6750 mode: malformed credentials get `400 Bad Request` instead of 401. Not for the
/// sidecar (nginx turns a 400 from `auth_request` into a 500).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rfc6750Reject;

impl Reject for Rfc6750Reject {
    fn reject(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        let mut res = rejection.default_response();
        if matches!(rejection.error, AuthError::Malformed(_)) && !rejection.grpc {
            *res.status_mut() = StatusCode::BAD_REQUEST;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_list_schemes_and_realms_in_order() {
        let c = Challenges::new(
            [
                (Scheme::Basic, "local"),
                (Scheme::Bearer, "ecmwf"),
                (Scheme::Bearer, "ecmwf"),
                (Scheme::Bearer, "efas"),
            ]
            .into_iter(),
        );
        assert_eq!(
            c.for_error(&AuthError::Missing).unwrap(),
            r#"Basic realm="local", charset="UTF-8", Bearer realm="ecmwf", Bearer realm="efas""#
        );
        assert_eq!(
            c.for_error(&AuthError::Invalid).unwrap(),
            r#"Basic realm="local", charset="UTF-8", Bearer realm="ecmwf", error="invalid_token", Bearer realm="efas", error="invalid_token""#
        );
    }

    #[test]
    fn realms_are_escaped_or_dropped() {
        let c = Challenges::new(
            [(Scheme::Bearer, r#"a"b\c"#), (Scheme::Basic, "bad\nrealm")].into_iter(),
        );
        assert_eq!(
            c.for_error(&AuthError::Missing).unwrap(),
            r#"Bearer realm="a\"b\\c""#
        );
        let none = Challenges::new(std::iter::empty());
        assert_eq!(none.for_error(&AuthError::Missing).unwrap(), "Bearer");
    }

    #[test]
    fn bodies_are_json_and_grpc_gets_a_status() {
        let e = AuthError::Malformed("bad \"quote\"");
        let r = Rejection {
            error: &e,
            challenge: None,
            grpc: false,
        }
        .default_response();
        assert_eq!(r.status(), 401);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "Malformed credentials: bad \"quote\"");
        let r = Rejection {
            error: &AuthError::Unavailable,
            challenge: None,
            grpc: true,
        }
        .default_response();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["grpc-status"], "14");
    }
}
