//! [`Challenges`]: the `WWW-Authenticate` values of an authenticator, built once from its
//! providers and picked per rejection.
//!
//! Apart from [`crate::reject`] so the pipeline, which builds them, does not depend on the
//! response code, which sends them.

use http::header::HeaderValue;

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
            AuthError::Forbidden(_) | AuthError::Unavailable | AuthError::NoAuthLayer => None,
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
}
