//! Reading credentials from a request: the `Authorization` header (`Basic`, `Plain`, `Bearer`,
//! `EmailKey`, up to three comma-separated, as auth-o-tron allows) and pluggable
//! [`CredentialSource`]s such as an API-key header or a cookie.
//!
//! Everything here borrows from the request headers and allocates nothing. Ambiguous input is
//! rejected before any decoding or provider call: two `Authorization` lines, a repeated scheme,
//! more than three credentials, empty or malformed parts, bytes that are not visible ASCII, and
//! anything over the size cap.

use std::fmt;

use http::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName};

/// Maximum number of credentials one request may carry (auth-o-tron's limit).
pub const MAX_CREDENTIALS: usize = 3;

/// Default cap on the size of a credential header, in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// How a credential was presented; providers declare the scheme they accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Basic base64(user:password)`; `Plain` is an alias.
    Basic,
    /// `Bearer <token>` (RFC 6750).
    Bearer,
    /// `EmailKey <email>:<key>` (ECMWF API keys).
    EmailKey,
    /// A scheme produced by a [`CredentialSource`], e.g. `Custom("ApiKey")`.
    Custom(&'static str),
}

impl Scheme {
    /// The scheme's name as it appears in `Authorization` and `WWW-Authenticate`.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Basic => "Basic",
            Scheme::Bearer => "Bearer",
            Scheme::EmailKey => "EmailKey",
            Scheme::Custom(name) => name,
        }
    }

    fn parse(name: &str) -> Option<Scheme> {
        if name.eq_ignore_ascii_case("basic") || name.eq_ignore_ascii_case("plain") {
            Some(Scheme::Basic)
        } else if name.eq_ignore_ascii_case("bearer") {
            Some(Scheme::Bearer)
        } else if name.eq_ignore_ascii_case("emailkey") {
            Some(Scheme::EmailKey)
        } else {
            None
        }
    }

    /// Whether `value` only uses the characters this scheme allows.
    fn accepts(&self, value: &str) -> bool {
        self.accepts_bytes(value.as_bytes())
    }

    /// [`accepts`](Self::accepts) on bytes; every byte it accepts is visible ASCII.
    fn accepts_bytes(&self, b: &[u8]) -> bool {
        match self {
            // RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
            Scheme::Bearer => {
                let body = &b[..b.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1)];
                !body.is_empty() && all_bytes(body, is_b64token_char)
            }
            Scheme::Basic => all_bytes(b, |c| {
                c.is_ascii_alphanumeric() | (c == b'+') | (c == b'/') | (c == b'=')
            }),
            Scheme::EmailKey | Scheme::Custom(_) => all_bytes(b, |c| c.is_ascii_graphic()),
        }
    }
}

/// `pred` holds for every byte. Deliberately without early exit, so the loop vectorises: tokens
/// are up to several KiB and this runs on every request that is not a cached lone bearer token.
#[inline]
fn all_bytes(bytes: &[u8], pred: impl Fn(u8) -> bool) -> bool {
    let mut bad = 0u8;
    for &c in bytes {
        bad |= u8::from(!pred(c));
    }
    bad == 0
}

/// A letter, digit or one of `-._~+/`. Written as two ranges (`c | 0x20` folds the letters;
/// `-./0-9` are contiguous) and three bytes: a quarter fewer instructions per byte than one
/// test per class, on every byte of every bearer token that is parsed.
#[inline(always)]
fn is_b64token_char(c: u8) -> bool {
    ((c | 0x20).wrapping_sub(b'a') < 26)
        | (c.wrapping_sub(b'-') < 13)
        | (c == b'+')
        | (c == b'_')
        | (c == b'~')
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One credential, borrowed from the request. `Debug` never shows the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    scheme: Scheme,
    secret: &'a str,
}

impl<'a> Credential<'a> {
    /// A credential of `scheme` whose secret part is `secret` (for example the base64 text of a
    /// Basic credential, or a bearer token).
    pub fn new(scheme: Scheme, secret: &'a str) -> Self {
        Credential { scheme, secret }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The secret part, exactly as presented.
    pub fn secret(&self) -> &'a str {
        self.secret
    }
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credential({} [redacted {} bytes])",
            self.scheme,
            self.secret.len()
        )
    }
}

/// Why a request's credentials were rejected before any provider saw them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Malformed {}

/// The credentials of one request, in the order they were presented (no allocation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    items: [Option<Credential<'a>>; MAX_CREDENTIALS],
    len: usize,
    unsupported: bool,
}

impl<'a> Credentials<'a> {
    /// The credentials, in order.
    pub fn iter(&self) -> impl Iterator<Item = Credential<'a>> + '_ {
        self.items[..self.len].iter().flatten().copied()
    }

    /// No credential of a supported scheme was presented.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some part used a scheme this crate does not know (e.g. `Digest`).
    pub fn had_unsupported(&self) -> bool {
        self.unsupported
    }

    /// Adds a credential, rejecting a repeated scheme or a fourth credential.
    pub fn push(&mut self, credential: Credential<'a>) -> Result<(), Malformed> {
        if self.iter().any(|c| c.scheme == credential.scheme) {
            return Err(Malformed("repeated credential scheme"));
        }
        if self.len == MAX_CREDENTIALS {
            return Err(Malformed("more than 3 credentials"));
        }
        self.items[self.len] = Some(credential);
        self.len += 1;
        Ok(())
    }

    /// Parses the `Authorization` header of `headers`.
    pub fn from_headers(headers: &'a HeaderMap, max_bytes: usize) -> Result<Self, Malformed> {
        let mut out = Credentials::default();
        let Some(value) = authorization(headers, max_bytes)? else {
            return Ok(out);
        };
        if let Some(token) = lone_bearer(value) {
            out.push(Credential::new(Scheme::Bearer, token))?;
            return Ok(out);
        }
        Self::parse(value)
    }

    /// The general parse of an `Authorization` value (any schemes, up to three, spaces).
    fn parse(value: &'a [u8]) -> Result<Self, Malformed> {
        let mut out = Credentials::default();
        // Non-ASCII fails here; control characters and tabs fail the per-part checks below
        // (which vectorise, unlike `HeaderValue::to_str`: this matters for kilobyte tokens).
        let text = std::str::from_utf8(value)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or(Malformed("Authorization header is not visible ASCII"))?;
        if text.trim_matches(' ').is_empty() {
            return Ok(out);
        }
        // One credential is the usual case: a vectorised test for a comma is cheaper than
        // `split` searching for one through a kilobyte token.
        let (mut one, mut many);
        let split: &mut dyn Iterator<Item = &str> = if all_bytes(text.as_bytes(), |c| c != b',') {
            one = std::iter::once(text);
            &mut one
        } else {
            many = text.split(',');
            &mut many
        };
        let mut parts = 0;
        for part in split {
            parts += 1;
            if parts > MAX_CREDENTIALS {
                return Err(Malformed("more than 3 credentials"));
            }
            let part = part.trim_matches(' ');
            let (name, secret) = part
                .split_once(' ')
                .ok_or(Malformed("credential without a scheme and a value"))?;
            let secret = secret.trim_start_matches(' ');
            if secret.is_empty() || !all_bytes(name.as_bytes(), |c| c.is_ascii_graphic()) {
                return Err(Malformed("credential must be `<scheme> <value>`"));
            }
            match Scheme::parse(name) {
                // No scheme admits a space, so `accepts` also rejects `<scheme> <a> <b>`.
                Some(scheme) => {
                    if !scheme.accepts(secret) {
                        return Err(Malformed(
                            "credential has characters its scheme does not allow",
                        ));
                    }
                    out.push(Credential::new(scheme, secret))?;
                }
                None if !all_bytes(secret.as_bytes(), |c| c.is_ascii_graphic()) => {
                    return Err(Malformed("credential must be `<scheme> <value>`"));
                }
                None => out.unsupported = true,
            }
        }
        Ok(out)
    }
}

/// The token of a header that is exactly `Bearer <b64token>` (any case of `Bearer`, one space),
/// the usual request. Its character test also proves the value ASCII, free of commas and of
/// spaces, so of the general parse's passes over a kilobyte token (UTF-8 and ASCII, commas,
/// scheme characters) two remain (UTF-8, which a `&str` needs, and the characters); anything
/// else (`None`) goes to the general parse, which gives the same answer for every header this
/// accepts.
fn lone_bearer(value: &[u8]) -> Option<&str> {
    let token = bearer_bytes(value)?;
    if !Scheme::Bearer.accepts_bytes(token) {
        return None;
    }
    std::str::from_utf8(token).ok()
}

/// What follows `Bearer ` (any case, one space), unchecked.
fn bearer_bytes(value: &[u8]) -> Option<&[u8]> {
    const PREFIX: &[u8] = b"bearer ";
    let (scheme, token) = value.split_at_checked(PREFIX.len())?;
    (scheme.eq_ignore_ascii_case(PREFIX) && !token.is_empty()).then_some(token)
}

/// The bytes after `Bearer ` when `headers` hold one `Authorization` line, within `max_bytes`,
/// that starts so, **without checking them**: only for looking up a digest in the cache, where
/// a hit proves the bytes are those of a credential [`Credentials::from_headers`] accepted
/// (a keyed 128-bit digest does not collide by chance or by design). That holds only while
/// `from_headers` is the one source of cached Bearer credentials: with a [`CredentialSource`]
/// configured (which may accept other bytes) the caller must not use this. A miss must parse.
pub(crate) fn unchecked_bearer(headers: &HeaderMap, max_bytes: usize) -> Option<&[u8]> {
    authorization(headers, max_bytes)
        .ok()
        .flatten()
        .and_then(bearer_bytes)
}

/// The value of the request's one `Authorization` line, if any: two lines, or one over
/// `max_bytes`, are refused.
fn authorization(headers: &HeaderMap, max_bytes: usize) -> Result<Option<&[u8]>, Malformed> {
    let mut lines = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err(Malformed("more than one Authorization header"));
    }
    if value.len() > max_bytes {
        return Err(Malformed("Authorization header too large"));
    }
    Ok(Some(value.as_bytes()))
}

/// A place other than `Authorization` where a credential may come from.
///
/// Sources run after the `Authorization` header is parsed; what they find counts against the
/// same limit of three credentials and the same rule of one credential per scheme.
pub trait CredentialSource: Send + Sync + 'static {
    /// Finds at most one credential in `headers`.
    fn extract<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, Malformed>;
}

/// A credential carried in a header of its own, e.g. `X-API-Key: <key>`.
#[derive(Clone, Debug)]
pub struct HeaderSource {
    name: HeaderName,
    scheme: Scheme,
    max_bytes: usize,
}

impl HeaderSource {
    /// Reads header `name` as a credential of `scheme`.
    pub fn new(name: HeaderName, scheme: Scheme) -> Self {
        HeaderSource {
            name,
            scheme,
            max_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

impl CredentialSource for HeaderSource {
    fn extract<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, Malformed> {
        let mut values = headers.get_all(&self.name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(Malformed("credential header repeated"));
        }
        if value.len() > self.max_bytes {
            return Err(Malformed("credential header too large"));
        }
        let text = value
            .to_str()
            .map_err(|_| Malformed("credential header is not visible ASCII"))?;
        if text.is_empty() || !self.scheme.accepts(text) {
            return Err(Malformed("credential header is empty or malformed"));
        }
        Ok(Some(Credential::new(self.scheme, text)))
    }
}

/// A credential carried in a cookie, e.g. `Cookie: session=<token>`.
#[derive(Clone, Debug)]
pub struct CookieSource {
    cookie: &'static str,
    scheme: Scheme,
}

impl CookieSource {
    /// Reads cookie `cookie` as a credential of `scheme`.
    pub fn new(cookie: &'static str, scheme: Scheme) -> Self {
        CookieSource { cookie, scheme }
    }
}

impl CredentialSource for CookieSource {
    fn extract<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, Malformed> {
        let mut found = None;
        for line in headers.get_all(COOKIE) {
            if line.len() > DEFAULT_MAX_HEADER_BYTES {
                return Err(Malformed("Cookie header too large"));
            }
            let Ok(text) = line.to_str() else { continue };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim_matches(' ').split_once('=') else {
                    continue;
                };
                if name == self.cookie {
                    if found.is_some() {
                        return Err(Malformed("credential cookie repeated"));
                    }
                    if value.is_empty() || !self.scheme.accepts(value) {
                        return Err(Malformed("credential cookie is malformed"));
                    }
                    found = Some(Credential::new(self.scheme, value));
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn b64token_chars_are_exactly_rfc_6750s() {
        const ALLOWED: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        for c in 0..=255u8 {
            assert_eq!(
                super::is_b64token_char(c),
                ALLOWED.contains(&c),
                "byte {c:#04x}"
            );
        }
    }

    fn parse(value: &'static str) -> Result<Vec<(Scheme, String)>, Malformed> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static(value));
        let leaked: &'static HeaderMap = Box::leak(Box::new(h));
        Credentials::from_headers(leaked, DEFAULT_MAX_HEADER_BYTES).map(|c| {
            c.iter()
                .map(|c| (c.scheme(), c.secret().to_owned()))
                .collect()
        })
    }

    /// The fast path answers exactly what the general parse answers, on every header it takes.
    #[test]
    fn a_lone_bearer_reads_as_the_general_parse_does() {
        let mut inputs: Vec<Vec<u8>> = [
            "Bearer abc",
            "bearer abc",
            "BEARER a.b-c_d~e+f/g==",
            "Bearer =",
            "Bearer ==a",
            "Bearer a=b",
            "Bearer  abc",
            "Bearer abc ",
            " Bearer abc",
            "Bearer a,b",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer\tabc",
            "Basic YTpi",
            "Bearer a b",
            "Bearer é",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Every byte after a valid prefix, and in the middle of a token.
        for c in 0..=255u8 {
            inputs.push([b"Bearer ".as_slice(), &[c]].concat());
            inputs.push([b"Bearer ab".as_slice(), &[c], b"cd"].concat());
            inputs.push([b"Bearer abc=".as_slice(), &[c]].concat());
        }
        let mut fast = 0;
        for input in &inputs {
            let general = Credentials::parse(input).map(|c| c.iter().collect::<Vec<_>>());
            if let Some(token) = lone_bearer(input) {
                fast += 1;
                assert_eq!(
                    general,
                    Ok(vec![Credential::new(Scheme::Bearer, token)]),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // Three of the named inputs; each of the 68 b64token characters alone and inside a
        // token; `abc==`.
        assert_eq!(fast, 3 + 68 + 68 + 1, "inputs the fast path took");
    }

    #[test]
    fn schemes_are_normalised() {
        assert_eq!(
            parse("bearer abc").unwrap(),
            vec![(Scheme::Bearer, "abc".into())]
        );
        assert_eq!(
            parse("PLAIN YTpi").unwrap(),
            vec![(Scheme::Basic, "YTpi".into())]
        );
        assert_eq!(
            parse("EmailKey a@b.c:k1").unwrap(),
            vec![(Scheme::EmailKey, "a@b.c:k1".into())]
        );
    }

    #[test]
    fn several_credentials_keep_their_order() {
        let got = parse("Bearer t, Basic YTpi ,EmailKey a@b:c").unwrap();
        let schemes: Vec<_> = got.iter().map(|c| c.0).collect();
        assert_eq!(schemes, [Scheme::Bearer, Scheme::Basic, Scheme::EmailKey]);
    }

    #[test]
    fn ambiguity_is_rejected() {
        for bad in [
            "Basic YTpi, Basic YTpi",
            "Basic YTpi, Plain YTpi",
            "Bearer a, bearer b",
            "Bearer a, Basic b, EmailKey x:y, Digest z",
            "Bearer",
            "Bearer a b",
            "Bearer a,",
            ", Bearer a",
            "Bearer\ta",
            "Bearer {\"payload\":1}",
            "Basic a:b",
            "Bearer bearer eyJ",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn empty_and_unsupported() {
        assert!(parse("   ").unwrap().is_empty());
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Digest abc"));
        let c = Credentials::from_headers(&h, 100).unwrap();
        assert!(c.is_empty() && c.had_unsupported());
    }

    #[test]
    fn two_header_lines_and_size_cap() {
        let mut h = HeaderMap::new();
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Basic YTpi"));
        assert!(Credentials::from_headers(&h, 100).is_err());
        let mut h = HeaderMap::new();
        let big = format!("Bearer {}", "a".repeat(9000));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&big).unwrap());
        assert_eq!(
            Credentials::from_headers(&h, DEFAULT_MAX_HEADER_BYTES).unwrap_err(),
            Malformed("Authorization header too large")
        );
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert!(Credentials::from_headers(&h, 100).is_err());
    }

    #[test]
    fn control_characters_are_rejected_anywhere() {
        // `HeaderValue` itself refuses other control bytes; a tab is the one that gets through.
        for bad in [
            &b"Bearer\tabc"[..],
            b"Bearer a\tb",
            b"Digest a\tb",
            b"Basic\t YTpi",
        ] {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_bytes(bad).unwrap());
            assert!(Credentials::from_headers(&h, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let c = Credential::new(Scheme::Bearer, "supersecret");
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    #[test]
    fn header_and_cookie_sources() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k-123"));
        h.insert(COOKIE, HeaderValue::from_static("a=1; session=tok.en; b=2"));
        let s = HeaderSource::new(
            HeaderName::from_static("x-api-key"),
            Scheme::Custom("ApiKey"),
        );
        assert_eq!(s.extract(&h).unwrap().unwrap().secret(), "k-123");
        let c = CookieSource::new("session", Scheme::Bearer);
        assert_eq!(c.extract(&h).unwrap().unwrap().secret(), "tok.en");
        h.append(COOKIE, HeaderValue::from_static("session=other"));
        assert!(c.extract(&h).is_err());
    }
}
