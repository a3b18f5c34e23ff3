//! Path rules and the original request they are decided on.
//!
//! A proxy asks about a request it is about to forward; the rule decision must be made on the
//! target exactly as the app will receive it. nginx's `proxy_pass http://app;` and Caddy hand the
//! app the client's raw target, while a router may read `/admin/../public`, `/admin/%2e%2e/x`,
//! `//admin` or `/admin;x` as `/admin`. So by default a target that a router could read two ways
//! is refused (403) instead of normalised ([`PathMode::Reject`]); see [`Ambiguous`] for the list
//! and `../README.md` for the reasons. Every rule that matches must allow: rules narrow access,
//! they never open it, so no rule can shadow another.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ConfigError;
use crate::Principal;
use crate::error::Forbidden;
use crate::guard::Requirement;

/// One path rule (ours): requests whose original path starts with `path` (on a segment
/// boundary), whose method is in `methods` (all methods when empty) and whose host is `host`
/// (any host when unset) must meet every listed requirement. Every matching rule must allow.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RuleConfig {
    /// Path prefix, e.g. `/admin` (matches `/admin` and `/admin/...`, not `/administrator`).
    pub path: String,
    /// Only for this host (from `X-Forwarded-Host`; case-insensitive, port ignored). When the
    /// proxy sends no host, host rules apply anyway (the stricter choice).
    #[serde(default)]
    pub host: Option<String>,
    /// Methods, e.g. `[POST, DELETE]`; empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Every one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// At least one of these roles.
    #[serde(default)]
    pub any_roles: Vec<String>,
    /// Attributes with exactly these values.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Scopes per service (provider name).
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
}

/// What to do with an original target that a router could read two ways
/// (`server.ambiguous_paths`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathMode {
    /// Refuse it with 403 (the default).
    #[default]
    Reject,
    /// Decide on a normalised form (`%XX` decoded, `.`/`..` resolved, `//` merged, `;params`
    /// cut). **Unsafe** when the proxy forwards the raw target (nginx `proxy_pass` without a URI
    /// part, Caddy): the app may route `/public/..%2fadmin` to `/admin` after the rule said
    /// `/public`. Only for proxies that normalise what they forward (Traefik with
    /// `sanitizePath`, Envoy with `normalize_path`).
    Normalize,
}

/// Why an original target was refused: each is a form that proxies and routers disagree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ambiguous {
    /// Not origin-form: empty, `*`, absolute-form, or not starting with `/`.
    NotOriginForm,
    /// A `.` or `..` segment, literal or percent-encoded in any case.
    DotSegment,
    /// An empty segment (`//`).
    EmptySegment,
    /// `%2F` or `%5C`: a separator to some routers, a character to others.
    EncodedSeparator,
    /// A raw `\`, a separator on Windows and to some routers.
    Backslash,
    /// `;` or `%3B` in the path: servlet containers cut path parameters, others do not.
    PathParameter,
    /// A control byte, space or NUL, raw or encoded.
    ControlByte,
    /// Bytes outside ASCII, or escapes that do not decode to UTF-8 (`%c0%ae`).
    NotUtf8,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// `%25` followed by hex: one more decoding yields a new escape (`%252e`).
    DoubleEncoding,
    /// `%3F` or `%23` in the path: nginx's `$uri` holds a decoded `?` or `#`.
    EncodedDelimiter,
    /// A raw `#`: a fragment is never sent by a browser; nginx forwards it raw.
    Fragment,
    /// A segment ending in `.`, or starting or ending with a space (`/admin.`, `/admin%20`,
    /// `/%20admin`): trimmed by some matchers and by Windows.
    TrailingDotOrSpace,
}

impl Ambiguous {
    /// The reason, for the audit line.
    pub fn reason(self) -> &'static str {
        match self {
            Ambiguous::NotOriginForm => "original URI is not origin-form",
            Ambiguous::DotSegment => "original URI has a dot segment",
            Ambiguous::EmptySegment => "original URI has an empty segment",
            Ambiguous::EncodedSeparator => "original URI has an encoded slash or backslash",
            Ambiguous::Backslash => "original URI has a backslash",
            Ambiguous::PathParameter => "original URI has a path parameter",
            Ambiguous::ControlByte => "original URI has a control byte",
            Ambiguous::NotUtf8 => "original URI is not UTF-8",
            Ambiguous::MalformedEscape => "original URI has a malformed escape",
            Ambiguous::DoubleEncoding => "original URI is double-encoded",
            Ambiguous::EncodedDelimiter => "original URI has an encoded ? or #",
            Ambiguous::Fragment => "original URI has a fragment",
            Ambiguous::TrailingDotOrSpace => {
                "original URI has a segment ending in a dot or with a space at either end"
            }
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Checks that `target` (an original request target) has exactly one reading, and returns its
/// decoded path (query dropped) for matching.
pub fn strict_path(target: &str) -> Result<String, Ambiguous> {
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(Ambiguous::NotOriginForm);
    }
    for &b in bytes {
        match b {
            0..=0x20 | 0x7f => return Err(Ambiguous::ControlByte),
            0x80.. => return Err(Ambiguous::NotUtf8),
            b'#' => return Err(Ambiguous::Fragment),
            _ => {}
        }
    }
    let path = target.split('?').next().unwrap_or("");
    let mut out = Vec::with_capacity(path.len());
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() {
            if segments.peek().is_none() {
                out.push(b'/');
                break;
            }
            return Err(Ambiguous::EmptySegment);
        }
        out.push(b'/');
        let start = out.len();
        let s = seg.as_bytes();
        let mut i = 0;
        while i < s.len() {
            let b = match s[i] {
                b'%' => {
                    let (Some(h), Some(l)) = (
                        s.get(i + 1).copied().and_then(hex),
                        s.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(Ambiguous::MalformedEscape);
                    };
                    i += 3;
                    match h * 16 + l {
                        0..=0x1f | 0x7f => return Err(Ambiguous::ControlByte),
                        b'/' | b'\\' => return Err(Ambiguous::EncodedSeparator),
                        b';' => return Err(Ambiguous::PathParameter),
                        b'?' | b'#' => return Err(Ambiguous::EncodedDelimiter),
                        d => d,
                    }
                }
                b'\\' => return Err(Ambiguous::Backslash),
                b';' => return Err(Ambiguous::PathParameter),
                b => {
                    i += 1;
                    b
                }
            };
            out.push(b);
        }
        let decoded = &out[start..];
        if decoded == b"." || decoded == b".." {
            return Err(Ambiguous::DotSegment);
        }
        if matches!(decoded.last(), Some(b'.' | b' ')) || decoded.first() == Some(&b' ') {
            return Err(Ambiguous::TrailingDotOrSpace);
        }
        // Any `%` left after decoding came from `%25`; followed by two hex digits (raw or
        // themselves encoded, as in `%25%32%65`), one more decoding makes a new escape.
        if decoded
            .windows(3)
            .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some())
        {
            return Err(Ambiguous::DoubleEncoding);
        }
    }
    String::from_utf8(out).map_err(|_| Ambiguous::NotUtf8)
}

/// The path of a request target as a lenient router sees it: query and fragment dropped,
/// `%XX` decoded, `;params` cut from segments, empty and `.` segments removed, `..` resolved.
/// Used only with [`PathMode::Normalize`].
pub fn normalize_path(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            decoded.push(h * 16 + l);
            i += 3;
            continue;
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let decoded = String::from_utf8_lossy(&decoded).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A host name without port or trailing dot, lower-cased.
fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = if h.starts_with('[') {
        h.split(']')
            .next()
            .map(|x| format!("{x}]"))
            .unwrap_or_default()
    } else {
        h.rsplit_once(':').map_or(h, |(a, _)| a).to_owned()
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// A compiled path rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Lower-cased decoded prefix without a trailing `/` (`""` for `/`).
    prefix: String,
    host: Option<String>,
    methods: Vec<Method>,
    requirement: Requirement,
}

impl Rule {
    /// Compiles `rules[i]`.
    pub fn compile(r: &RuleConfig, i: usize) -> Result<Self, ConfigError> {
        let methods = r
            .methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    ConfigError::key(
                        format!("rules[{i}].methods"),
                        format!("{m:?} is not an HTTP method"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let mut all = Vec::new();
        if !r.roles.is_empty() {
            all.push(Requirement::all_roles(r.roles.clone()));
        }
        if !r.any_roles.is_empty() {
            all.push(Requirement::any_role(r.any_roles.clone()));
        }
        for (k, v) in &r.attributes {
            all.push(Requirement::attribute_eq(k.clone(), v.clone()));
        }
        for (service, scopes) in &r.scopes {
            for s in scopes {
                all.push(Requirement::scope(service.clone(), s.clone()));
            }
        }
        if all.is_empty() {
            return Err(ConfigError::key(
                format!("rules[{i}]"),
                "requires nothing; add roles, any_roles, attributes or scopes",
            ));
        }
        // A rule path that the strict check refuses could never match a target it accepts:
        // decide on its normalised form and let `Rules::warnings` say so.
        let prefix = strict_path(&r.path).unwrap_or_else(|_| normalize_path(&r.path));
        Ok(Rule {
            prefix: prefix.trim_end_matches('/').to_ascii_lowercase(),
            host: r.host.as_deref().map(normalize_host),
            methods,
            requirement: Requirement::All(all),
        })
    }

    /// Whether this rule applies to `method` on `path` (decoded and case-folded by the caller;
    /// a format suffix counts, `/admin.json` is `/admin` to Rails and old Spring) at `host`
    /// (lower-cased, without port or trailing dot; `None` when the proxy did not say, which
    /// lets host rules apply).
    pub fn applies(&self, method: &Method, path: &str, host: Option<&str>) -> bool {
        let host_ok = match (&self.host, host) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        host_ok && self.matches(method, path)
    }

    /// Whether this rule applies to `method` on `path`, any host. HEAD is GET to every router,
    /// so a rule on GET covers HEAD.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        let p = path.as_bytes();
        let n = self.prefix.len();
        let on_boundary = n == 0
            || (p.len() >= n
                && p[..n].eq_ignore_ascii_case(self.prefix.as_bytes())
                && (p.len() == n || p[n] == b'/' || p[n] == b'.'));
        on_boundary
            && (self.methods.is_empty()
                || self.methods.contains(method)
                || (*method == Method::HEAD && self.methods.contains(&Method::GET)))
    }
}

/// Why a decision request was denied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// A matching rule's requirement was not met.
    Requirement(Forbidden),
    /// The original target has more than one reading.
    Ambiguous(Ambiguous),
    /// Rules are configured but the proxy named no original URI.
    NoOriginalUri,
    /// Method rules are configured but the proxy named no original method.
    NoOriginalMethod,
    /// The original request headers are unusable (conflicting families, not ASCII).
    BadOriginal(&'static str),
}

impl Denial {
    /// The reason, for the audit line.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Requirement(Forbidden::Role) => "missing role",
            Denial::Requirement(Forbidden::Attribute) => "missing attribute",
            Denial::Requirement(Forbidden::Scope(_)) => "missing scope",
            Denial::Ambiguous(a) => a.reason(),
            Denial::NoOriginalUri => "no X-Original-URI or X-Forwarded-Uri",
            Denial::NoOriginalMethod => "no X-Original-Method or X-Forwarded-Method",
            Denial::BadOriginal(why) => why,
        }
    }

    /// What the 403 says: the missing scope for scope rules, else a role.
    pub fn forbidden(&self) -> Forbidden {
        match self {
            Denial::Requirement(f) => f.clone(),
            _ => Forbidden::Role,
        }
    }
}

/// The decision for one request: what was asked about, and whether it is denied. Borrows from
/// the request's headers: the audit line needs no copy of them.
#[derive(Debug)]
pub struct Decision<'h> {
    /// The original method.
    pub method: Method,
    /// The original target as sent by the proxy (for the audit line).
    pub target: Option<&'h str>,
    /// The forwarded host, when it is one plain host (for the audit line).
    pub host: Option<&'h str>,
    /// `Some` when denied.
    pub denial: Option<Denial>,
}

/// The compiled rules of a configuration.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    mode: PathMode,
    methods_matter: bool,
    warnings: Vec<String>,
}

impl Rules {
    /// Compiles `rules` under `mode`.
    pub fn compile(rules: &[RuleConfig], mode: PathMode) -> Result<Self, ConfigError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::compile(r, i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut warnings = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            // Rule paths are written as text: `/café` is `/caf%C3%A9` on the wire.
            let encoded: String = r
                .path
                .bytes()
                .map(|b| {
                    if b.is_ascii() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            if r.path.contains(['*', '{', '}']) || r.path.ends_with("/**") {
                warnings.push(format!(
                    "rules[{i}].path {:?} is a literal prefix, not a pattern: `*`, `{{` and `}}` match only themselves",
                    r.path
                ));
            }
            if r.host.as_deref().is_some_and(|h| h.contains('*')) {
                warnings.push(format!(
                    "rules[{i}].host {:?} is a literal host name, not a pattern",
                    r.host.as_deref().unwrap_or_default()
                ));
            }
            if mode == PathMode::Reject
                && let Err(why) = strict_path(&encoded)
            {
                warnings.push(format!(
                    "rules[{i}].path {:?} can never apply: every request for it is refused first ({})",
                    r.path,
                    why.reason()
                ));
            }
            if let Some(h) = &r.host
                && (h.is_empty() || h.bytes().any(|b| b == b'/' || b.is_ascii_whitespace()))
            {
                warnings.push(format!(
                    "rules[{i}].host {h:?} can never apply: it is not a host name"
                ));
            }
            let same = |q: &RuleConfig| {
                let c = |x: &RuleConfig| {
                    (
                        normalize_path(&x.path).to_ascii_lowercase(),
                        x.host.as_deref().map(normalize_host),
                        {
                            let mut m: Vec<_> =
                                x.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
                            m.sort();
                            m
                        },
                    )
                };
                c(q) == c(r)
            };
            if let Some(j) = rules[..i].iter().position(same) {
                warnings.push(format!(
                    "rules[{i}] matches exactly what rules[{j}] matches; both apply (every matching rule must allow), merge them"
                ));
            }
        }
        Ok(Rules {
            methods_matter: rules.iter().any(|r| !r.methods.is_empty()),
            rules: compiled,
            mode,
            warnings,
        })
    }

    /// Whether any rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules that can never apply, and similar mistakes, for `--check` and the startup log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Decides the request described by `headers` (sent by the proxy) for `principal`.
    /// `own` is the decision request's own method, reported when the proxy names none.
    pub fn decide<'h>(
        &self,
        headers: &'h HeaderMap,
        own: &Method,
        principal: &Principal,
    ) -> Decision<'h> {
        let seen = Proxied::gather(headers);
        let (method, target) = match original(&seen) {
            Ok(x) => x,
            Err(why) => {
                return Decision {
                    method: own.clone(),
                    target: None,
                    host: None,
                    denial: Some(Denial::BadOriginal(why)),
                };
            }
        };
        let host = forwarded_host(&seen);
        let denial = self.check(method.as_ref(), target, host, headers, &seen, principal);
        Decision {
            method: method.unwrap_or_else(|| own.clone()),
            target,
            host,
            denial,
        }
    }

    fn check(
        &self,
        method: Option<&Method>,
        target: Option<&str>,
        host: Option<&str>,
        headers: &HeaderMap,
        seen: &Proxied<'_>,
        principal: &Principal,
    ) -> Option<Denial> {
        if self.rules.is_empty() {
            return None;
        }
        let Some(target) = target else {
            warn_misconfigured(Denial::NoOriginalUri.reason());
            return Some(Denial::NoOriginalUri);
        };
        // The decision request's own method is the proxy's (nginx's subrequest is a GET), not
        // the client's: method rules cannot be decided without the original one.
        let method = match method {
            Some(m) => m,
            None if self.methods_matter => {
                warn_misconfigured(Denial::NoOriginalMethod.reason());
                return Some(Denial::NoOriginalMethod);
            }
            None => &Method::GET,
        };
        let path = match self.mode {
            PathMode::Reject => match strict_path(target) {
                Ok(p) => p,
                Err(why) => return Some(Denial::Ambiguous(why)),
            },
            PathMode::Normalize => normalize_path(target),
        };
        let path = fold_case(path);
        // Normalised once per decision, not once per host rule.
        let host = host
            .filter(|_| self.rules.iter().any(|r| r.host.is_some()))
            .map(normalize_host);
        let host = host.as_deref();
        let overrides = method_overrides(headers, seen, target);
        self.rules
            .iter()
            .filter(|r| {
                r.applies(method, &path, host)
                    || overrides.iter().any(|m| r.applies(m, &path, host))
            })
            .find_map(|r| r.requirement.check(principal).err())
            .map(Denial::Requirement)
    }
}

/// Lower-cases ASCII and the few non-ASCII letters that Unicode-aware case-insensitive
/// matchers (Java's `equalsIgnoreCase`, JavaScript's `/iu`) equate with ASCII ones:
/// `ı`, `İ`, `ſ` and the Kelvin sign.
fn fold_case(mut path: String) -> String {
    if path.is_ascii() {
        path.make_ascii_lowercase();
        return path;
    }
    path.chars()
        .map(|c| match c {
            '\u{131}' | '\u{130}' => 'i',
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The host the proxy names, when it names exactly one plain `name[:digits]` or
/// `[v6][:digits]`. A list (several proxies appending), two header lines, a second port
/// (`admin.example.org:80:80`, which some apps cut at the first `:`) or anything else count as
/// no host, so host rules apply.
fn forwarded_host<'h>(seen: &Proxied<'h>) -> Option<&'h str> {
    let Slot::One(v) = seen.host else {
        return None;
    };
    let host = v.to_str().ok()?.trim();
    let (name_ok, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ok = !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':')?),
        };
        (ok, port)
    } else {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        (ok, port)
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (name_ok && port_ok).then_some(host)
}

/// Methods the client asked the app to use instead of the request's own (frameworks that
/// honour `X-HTTP-Method-Override` and friends, or a `_method` query parameter, route a POST as
/// DELETE): a rule on any of them applies too. Proxies pass the client's headers to the
/// decision request. A `_method` in a form body cannot be seen here.
fn method_overrides(headers: &HeaderMap, seen: &Proxied<'_>, target: &str) -> Vec<Method> {
    const OVERRIDES: [HeaderName; 3] = [
        HeaderName::from_static("x-http-method-override"),
        HeaderName::from_static("x-http-method"),
        HeaderName::from_static("x-method-override"),
    ];
    let mut out = Vec::new();
    for name in OVERRIDES.iter().filter(|_| seen.overrides) {
        for v in headers.get_all(name) {
            for m in v.as_bytes().split(|b| *b == b',') {
                let m = m.trim_ascii().to_ascii_uppercase();
                if let Ok(m) = Method::from_bytes(&m) {
                    out.push(m);
                }
            }
        }
    }
    if let Some((_, query)) = target.split_once('?') {
        // Frameworks decode the query before they read `_method`: so must we
        // (`%5Fmethod=DEL%45TE` is `_method=DELETE` to Express and Laravel).
        for pair in query.split(['&', ';']) {
            if let Some((k, v)) = pair.split_once('=')
                && query_decode(k).eq_ignore_ascii_case(b"_method")
                && let Ok(m) = Method::from_bytes(&query_decode(v).to_ascii_uppercase())
            {
                out.push(m);
            }
        }
    }
    out
}

/// `%XX` decoded and `+` as a space, as form and query parsers read a query component.
fn query_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) =>
            {
                out.push(h * 16 + l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The request the proxy is asking about: method and target from `X-Original-*` (nginx) or
/// `X-Forwarded-*` (Caddy, Traefik), each `None` when the proxy names none.
///
/// Proxies pass the client's own headers along, so a client can send the family its proxy does
/// not set. When both families are present and disagree, the answer is `Err`: deny rather than
/// guess which one the proxy wrote. Two values of one header are refused the same way.
fn original<'h>(seen: &Proxied<'h>) -> Result<(Option<Method>, Option<&'h str>), &'static str> {
    let get = |slot: Slot<'h>| -> Result<Option<&'h str>, &'static str> {
        match slot {
            Slot::None => Ok(None),
            Slot::Many => Err("original request header sent twice"),
            Slot::One(v) => v
                .to_str()
                .map(Some)
                .map_err(|_| "original request header is not ASCII"),
        }
    };
    let pick = |a: Slot<'h>, b: Slot<'h>| -> Result<Option<&'h str>, &'static str> {
        match (get(a)?, get(b)?) {
            (Some(x), Some(y)) if x != y => Err("X-Original-* and X-Forwarded-* disagree"),
            (x, y) => Ok(x.or(y)),
        }
    };
    let method = match pick(seen.original_method, seen.forwarded_method)? {
        // Routers differ on method case; a rule on GET must cover `get`.
        Some(m) => Some(
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| "original method is not a method")?,
        ),
        None => None,
    };
    Ok((method, pick(seen.original_uri, seen.forwarded_uri)?))
}

/// One header as a decision reads it: absent, once, or more than once.
#[derive(Clone, Copy, Debug, Default)]
enum Slot<'h> {
    #[default]
    None,
    One(&'h HeaderValue),
    Many,
}

impl<'h> Slot<'h> {
    fn add(&mut self, v: &'h HeaderValue) {
        *self = match self {
            Slot::None => Slot::One(v),
            _ => Slot::Many,
        };
    }
}

/// The headers a decision reads, gathered in one pass over the request's headers: cheaper on
/// the hit path than a hash lookup for each of eight names.
#[derive(Debug, Default)]
struct Proxied<'h> {
    original_method: Slot<'h>,
    forwarded_method: Slot<'h>,
    original_uri: Slot<'h>,
    forwarded_uri: Slot<'h>,
    host: Slot<'h>,
    overrides: bool,
}

impl<'h> Proxied<'h> {
    fn gather(headers: &'h HeaderMap) -> Self {
        let mut p = Proxied::default();
        for (name, v) in headers {
            match name.as_str() {
                "x-original-method" => p.original_method.add(v),
                "x-forwarded-method" => p.forwarded_method.add(v),
                "x-original-uri" => p.original_uri.add(v),
                "x-forwarded-uri" => p.forwarded_uri.add(v),
                "x-forwarded-host" => p.host.add(v),
                "x-http-method-override" | "x-http-method" | "x-method-override" => {
                    p.overrides = true;
                }
                _ => {}
            }
        }
        p
    }
}

/// Logs a proxy that names no original URI or method, at most once every 10 s per process:
/// the misconfiguration concerns every request, the log must not flood.
fn warn_misconfigured(what: &'static str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last.saturating_add(10)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            event_name = "auth.proxy.misconfigured",
            suppressed = SUPPRESSED.swap(0, Ordering::Relaxed),
            missing = what,
            "rules are configured but the proxy does not name the original request: every \
             decision is denied; set `proxy_set_header X-Original-URI $request_uri;` and \
             `proxy_set_header X-Original-Method $request_method;` (nginx) or use forward_auth \
             (Caddy, Traefik)"
        );
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_two_readings_are_refused() {
        use Ambiguous::*;
        for (target, why) in [
            ("/admin/../public", DotSegment),
            ("/admin/%2e%2e/public", DotSegment),
            ("/admin/%2E%2E/public", DotSegment),
            ("/admin/.%2e/public", DotSegment),
            ("/admin/%2e./public", DotSegment),
            ("/admin/./x", DotSegment),
            ("/admin/..", DotSegment),
            ("/admin/..%2fpublic", EncodedSeparator),
            ("/public/..%2Fadmin", EncodedSeparator),
            ("/admin%5cx", EncodedSeparator),
            ("/public\\..\\admin", Backslash),
            ("//admin", EmptySegment),
            ("/a//b", EmptySegment),
            ("/admin;x", PathParameter),
            ("/admin/..;/public", PathParameter),
            ("/admin%3bx", PathParameter),
            ("/admin%00", ControlByte),
            ("/admin%0d%0aX-Injected:%20yes", ControlByte),
            ("/admin\tx", ControlByte),
            ("/admin x", ControlByte),
            ("/adm%c0%aein", NotUtf8),
            ("/admin%ff", NotUtf8),
            ("/adminé", NotUtf8),
            ("/bad%zz", MalformedEscape),
            ("/end%4", MalformedEscape),
            ("/end%", MalformedEscape),
            ("/%252e%252e/admin", DoubleEncoding),
            ("/admin%3fx", EncodedDelimiter),
            ("/admin%23x", EncodedDelimiter),
            ("/admin#frag", Fragment),
            ("/admin.", TrailingDotOrSpace),
            ("/admin%20", TrailingDotOrSpace),
            ("/admin%2e", TrailingDotOrSpace),
            ("/%20admin", TrailingDotOrSpace),
            ("/public/%25%32%65%25%32%65/admin", DoubleEncoding),
            ("/%25%36%31dmin", DoubleEncoding),
            ("/%2561dmin", DoubleEncoding),
            ("*", NotOriginForm),
            ("http://h/admin", NotOriginForm),
            ("admin", NotOriginForm),
            ("", NotOriginForm),
        ] {
            assert_eq!(strict_path(target), Err(why), "{target:?}");
        }
    }

    #[test]
    fn plain_targets_pass_decoded_with_the_query_dropped() {
        for (target, path) in [
            ("/", "/"),
            ("/admin", "/admin"),
            ("/admin/", "/admin/"),
            ("/%61dmin", "/admin"),
            ("/a/b?x=/../y", "/a/b"),
            ("/a?x=%2f..%2f", "/a"),
            ("/my%20file.txt", "/my file.txt"),
            ("/.well-known/jwks.json", "/.well-known/jwks.json"),
            ("/caf%C3%A9", "/café"),
            ("/100%25", "/100%"),
            ("/100%25x", "/100%x"),
            ("/100%254", "/100%4"),
        ] {
            assert_eq!(strict_path(target).as_deref(), Ok(path), "{target:?}");
        }
    }

    fn rule(path: &str, methods: &[&str]) -> RuleConfig {
        RuleConfig {
            path: path.into(),
            host: None,
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            roles: vec!["admin".into()],
            any_roles: vec![],
            attributes: Default::default(),
            scopes: Default::default(),
        }
    }

    #[test]
    fn rules_match_on_segment_boundaries_any_case_and_head_as_get() {
        let r = Rule::compile(&rule("/admin/", &["get"]), 0).unwrap();
        assert!(r.matches(&Method::GET, "/admin"));
        assert!(r.matches(&Method::GET, "/admin/users"));
        assert!(r.matches(&Method::GET, "/ADMIN/users"));
        assert!(r.matches(&Method::HEAD, "/admin"));
        assert!(!r.matches(&Method::GET, "/administrator"));
        assert!(!r.matches(&Method::POST, "/admin"));
        let head_only = Rule::compile(&rule("/x", &["HEAD"]), 0).unwrap();
        assert!(!head_only.matches(&Method::GET, "/x"));
        assert!(r.matches(&Method::GET, "/admin.json"));
        assert!(!r.matches(&Method::GET, "/admins"));
        let root = Rule::compile(&rule("/", &[]), 0).unwrap();
        assert!(root.matches(&Method::DELETE, "/anything"));
        let empty = RuleConfig {
            roles: vec![],
            ..rule("/x", &[])
        };
        let e = Rule::compile(&empty, 3).unwrap_err().to_string();
        assert!(e.contains("rules[3]"), "{e}");
    }

    #[test]
    fn rules_that_can_never_apply_are_reported() {
        let rules = Rules::compile(
            &[
                rule("/admin/../x", &[]),
                rule("/reports", &["GET"]),
                rule("/Reports/", &["get"]),
                rule("/ok", &[]),
            ],
            PathMode::Reject,
        )
        .unwrap();
        let w = rules.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("rules[0].path") && w[0].contains("never apply"));
        assert!(w[1].starts_with("rules[2] matches exactly what rules[1]"));
    }

    #[test]
    fn unicode_case_twins_of_ascii_letters_fold() {
        assert_eq!(fold_case("/Adm\u{131}n".into()), "/admin");
        assert_eq!(fold_case("/ADM\u{130}N".into()), "/admin");
        assert_eq!(fold_case("/report\u{17f}".into()), "/reports");
        assert_eq!(fold_case("/\u{212a}ey".into()), "/key");
        assert_eq!(fold_case("/café".into()), "/café");
    }

    #[test]
    fn only_one_plain_host_counts() {
        let host = |v: &[&str]| {
            let mut h = HeaderMap::new();
            for x in v {
                h.append("x-forwarded-host", x.parse().unwrap());
            }
            forwarded_host(&Proxied::gather(&h)).map(str::to_owned)
        };
        assert_eq!(
            host(&["admin.example.org"]).as_deref(),
            Some("admin.example.org")
        );
        assert_eq!(
            host(&["admin.example.org:8443"]).as_deref(),
            Some("admin.example.org:8443")
        );
        assert_eq!(host(&["[::1]:80"]).as_deref(), Some("[::1]:80"));
        for bad in [
            "admin.example.org:80:80",
            "a.example, admin.example.org",
            "admin.example.org:",
            "admin.example.org:x",
            "[::1]x",
            "",
            "a b",
        ] {
            assert_eq!(host(&[bad]), None, "{bad:?}");
        }
        assert_eq!(host(&["a.example", "b.example"]), None);
    }

    #[test]
    fn patterns_and_non_ascii_rule_paths_are_reported_correctly() {
        let rules = Rules::compile(
            &[rule("/admin/*", &[]), rule("/café", &[])],
            PathMode::Reject,
        )
        .unwrap();
        let w = rules.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("literal prefix"), "{w:?}");
    }

    #[test]
    fn normalising_resolves_like_a_lenient_router() {
        for (raw, want) in [
            ("/admin?x=/public", "/admin"),
            ("//admin", "/admin"),
            ("/public/../admin", "/admin"),
            ("/%61dmin/", "/admin"),
            ("/%2fadmin", "/admin"),
            ("/admin;jsessionid=1/x", "/admin/x"),
            ("/a/./b", "/a/b"),
            ("/../../etc", "/etc"),
            ("", "/"),
            ("/bad%zz", "/bad%zz"),
            ("/end%4", "/end%4"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }
}
