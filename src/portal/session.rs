//! Portal sessions: the cookie (an opaque random id), its server-side record in the token
//! store (under the id's SHA-256), the idle and absolute timeouts, a new id at every login.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::Portal;
use crate::Principal;
use crate::token::StoreError;
use crate::token::store::{Session, SessionKey};

/// Cookie name over plain HTTP.
const COOKIE_NAME: &str = "aot_portal";
/// Cookie name over HTTPS: the `__Host-` prefix pins it to this host and path `/`, `Secure`.
const HOST_COOKIE_NAME: &str = "__Host-aot_portal";

/// Touching a session costs a write; once a minute is precise enough for a 30-minute timeout.
/// Shorter idle timeouts are touched every quarter of the timeout (else a 1-minute timeout
/// would end sessions in use).
const TOUCH_EVERY: i64 = 60;

/// Live sessions kept per user: logging in again deletes the oldest beyond this.
pub(crate) const MAX_SESSIONS_PER_USER: u32 = 20;

/// 32 random bytes, base64url: session ids, form tokens, nonces, OIDC `state`s.
pub(crate) fn random_value() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `s` looks like a [`random_value`] (before it is stored or looked up).
pub(crate) fn is_random_value(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the store's `UNIQUE` create-nonce column holds for a form's `nonce`: bound to the
/// session's form token, so a nonce seen or guessed by someone else spends nothing of theirs
/// (a replay of one's own form still finds its row).
pub(crate) fn bound_nonce(csrf: &str, nonce: &str) -> String {
    let mut h = Sha256::new();
    h.update(csrf.as_bytes());
    h.update([0]);
    h.update(nonce.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// The store key of a session id or `state`.
pub(crate) fn key_of(value: &str) -> SessionKey {
    Sha256::digest(value.as_bytes()).into()
}

/// The logged-in session of a request.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) key: SessionKey,
    pub(crate) session: Session,
}

/// Cookie names of the login binding (see [`login_binding`]).
const BINDING_NAME: &str = "aot_portal_oidc";
const HOST_BINDING_NAME: &str = "__Host-aot_portal_oidc";

fn cookie_name(portal: &Portal) -> &'static str {
    if portal.https() {
        HOST_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

fn binding_name(portal: &Portal) -> &'static str {
    if portal.https() {
        HOST_BINDING_NAME
    } else {
        BINDING_NAME
    }
}

/// The session id in the request's cookie, if any.
fn cookie_value<'h>(portal: &Portal, headers: &'h HeaderMap) -> Option<&'h str> {
    named_cookie(headers, cookie_name(portal))
}

/// The OpenID Connect `state` this browser started, from its binding cookie.
pub(crate) fn login_state<'h>(portal: &Portal, headers: &'h HeaderMap) -> Option<&'h str> {
    named_cookie(headers, binding_name(portal))
}

/// `Set-Cookie` binding an OpenID Connect login to the browser that started it (`state`), so
/// a callback URL sent to someone else logs nobody in (login CSRF). `SameSite=Lax`: the IdP's
/// redirect back is a cross-site top-level navigation, which `Strict` cookies miss.
/// `max_age` `None` clears it.
pub(crate) fn login_binding(portal: &Portal, state: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map_or(Age::Gone, Age::Secs);
    cookie(portal, binding_name(portal), state, "Lax", age)
}

fn named_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| is_random_value(v))
}

/// The store key of the request's session cookie (valid or not), for logout and rotation.
pub(crate) fn presented_key(portal: &Portal, headers: &HeaderMap) -> Option<SessionKey> {
    cookie_value(portal, headers).map(key_of)
}

/// The request's live session, its idle timeout pushed forward (at most once a minute), its
/// roles and attributes re-augmented.
pub(crate) async fn current(
    portal: &Portal,
    headers: &HeaderMap,
) -> Result<Option<Current>, StoreError> {
    let Some(key) = presented_key(portal, headers) else {
        return Ok(None);
    };
    let store = portal.sessions()?;
    let now = crate::token::last_used_now();
    let Some(mut session) = store.session(&key, now).await? else {
        return Ok(None);
    };
    let every = TOUCH_EVERY.min(secs(portal.settings.session_idle) / 4);
    if now - session.last_seen_at >= every {
        let idle_until = now
            .saturating_add(secs(portal.settings.session_idle))
            .min(session.expires_at);
        store.touch_session(&key, now, idle_until).await?;
        session.last_seen_at = now;
        session.idle_until = idle_until;
    }
    // Roles and attributes as the realm's augmenters say now, not at login: a role removed
    // from the directory ends administrator rights in open sessions too.
    let mut base = crate::User::new(session.username.clone(), session.realm.clone())
        .with_roles(session.token_roles.clone());
    base.attributes = session.token_attributes.clone();
    let fresh = portal.authenticator.augment_user(base).await;
    session.roles = fresh.roles;
    session.attributes = fresh.attributes;
    Ok(Some(Current { key, session }))
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Logs `principal` in: a new session (a new id even if the browser had one, which is
/// deleted: no session fixation) and its `Set-Cookie`.
pub(crate) async fn start(
    portal: &Portal,
    headers: &HeaderMap,
    principal: &Principal,
) -> Result<HeaderValue, StoreError> {
    let store = portal.sessions()?;
    if let Some(old) = presented_key(portal, headers) {
        store.delete_session(&old).await?;
    }
    let id = random_value()?;
    let now = crate::token::last_used_now();
    let expires_at = now.saturating_add(secs(portal.settings.session_max));
    let user = principal.user();
    let (token_roles, token_attributes) = principal.unaugmented();
    let session = Session {
        username: user.username.clone(),
        realm: user.realm.clone(),
        roles: user.roles.clone(),
        attributes: user.attributes.clone(),
        token_roles: token_roles.to_vec(),
        token_attributes: token_attributes.clone(),
        csrf: random_value()?,
        created_at: now,
        last_seen_at: now,
        idle_until: now
            .saturating_add(secs(portal.settings.session_idle))
            .min(expires_at),
        expires_at,
    };
    store.create_session(&key_of(&id), &session).await?;
    store
        .trim_sessions(&session.username, &session.realm, MAX_SESSIONS_PER_USER)
        .await?;
    // A session cookie (no Max-Age): closing the browser forgets it; the server ends the
    // session at its timeouts anyway.
    Ok(set_cookie(portal, &id, Age::Browser))
}

/// How long a browser keeps a cookie.
#[derive(Clone, Copy)]
enum Age {
    /// Until the browser closes (no `Max-Age`).
    Browser,
    /// This many seconds.
    Secs(i64),
    /// Delete it now (`Max-Age=0`).
    Gone,
}

/// `Set-Cookie` for the session id `value`.
fn set_cookie(portal: &Portal, value: &str, age: Age) -> HeaderValue {
    cookie(portal, cookie_name(portal), value, "Strict", age)
}

fn cookie(portal: &Portal, name: &str, value: &str, same_site: &str, age: Age) -> HeaderValue {
    let secure = if portal.https() { "; Secure" } else { "" };
    let age = match age {
        Age::Browser => String::new(),
        Age::Secs(n) => format!("; Max-Age={n}"),
        Age::Gone => "; Max-Age=0".to_owned(),
    };
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}{age}{secure}");
    // Name and value are ASCII by construction.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie(portal: &Portal) -> HeaderValue {
    set_cookie(portal, "", Age::Gone)
}
