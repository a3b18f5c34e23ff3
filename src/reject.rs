//! Turning an [`AuthError`] into a response: 401 with `WWW-Authenticate`, 403, 503, a JSON body
//! `{"error": "..."}`; for gRPC requests (`content-type: application/grpc...`) a trailers-only
//! response with the matching `grpc-status`. Customisable through [`Reject`].

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::error::AuthError;

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
            let mut res = Response::new(Bytes::from(json_body(self.error)));
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

/// The JSON body of an HTTP rejection: `{"error": "<message>"}`.
pub(crate) fn json_body(error: &AuthError) -> String {
    serde_json::json!({ "error": error.to_string() }).to_string()
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
