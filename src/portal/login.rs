//! Logging in and out: username and password (any `plain`-kind provider, a realm choice when
//! there are several) and API keys (`ecmwf-api`, `efas-api`), each turned into the header the
//! API would see and run through the [`Authenticator`](crate::Authenticator), so augmenters,
//! realms and the cache apply. Failed attempts are limited per username and per client
//! address; unknown user and wrong password get one message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::pages::{self, LoginOptions};
use super::{Form, Portal, Shared, client, guard, session};
use crate::credentials::Scheme;
use crate::error::AuthError;
use crate::{Principal, REALM_HEADER, Scopes};

/// Default limit of failed logins per minute, per username and per client address.
pub const DEFAULT_LOGIN_ATTEMPTS_PER_MINUTE: u32 = 5;

/// The one message for a refused username and password.
pub(crate) const WRONG_PASSWORD: &str = "Wrong username or password.";
/// The one message for a refused API key (an API token included).
pub(crate) const WRONG_KEY: &str = "Wrong API key.";

const WINDOW: Duration = Duration::from_secs(60);

/// How many more failures a username alone may take than a (username, client) pair: a light
/// attack from many addresses does not lock the real user out, a heavy one still stops.
const PER_USER_FACTOR: u32 = 10;

/// Attempts per key (`pair:…`, `user:…`, `addr:…`) in fixed one-minute windows, in a bounded
/// cache: a flood of made-up usernames evicts old entries instead of growing memory.
///
/// An attempt is reserved (counted) *before* the credentials are checked, atomically per key,
/// and refunded when it succeeds: parallel guesses cannot all pass a check made before any of
/// them failed.
pub(crate) struct Limiter {
    limit: u32,
    windows: moka::sync::Cache<String, (Instant, u32)>,
}

/// The keys one attempt counts against, with each key's limit.
pub(crate) struct Keys(Vec<(String, u32)>);

impl Limiter {
    pub(crate) fn new(limit: u32) -> Self {
        Limiter {
            limit,
            windows: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(WINDOW)
                .build(),
        }
    }

    /// The keys of a password attempt: the (username, client) pair and the client at the
    /// limit, the username alone at [`PER_USER_FACTOR`] times it.
    fn password_keys(&self, user: &str, client: &str) -> Keys {
        Keys(vec![
            (format!("pair:{user}@{client}"), self.limit),
            (
                format!("user:{user}"),
                self.limit.saturating_mul(PER_USER_FACTOR),
            ),
            (format!("addr:{client}"), self.limit),
        ])
    }

    /// The keys of an attempt that names no user (API keys, OIDC starts): the client only,
    /// at `factor` times the limit.
    pub(crate) fn client_keys(&self, prefix: &str, client: &str, factor: u32) -> Keys {
        Keys(vec![(
            format!("{prefix}:{client}"),
            self.limit.saturating_mul(factor),
        )])
    }

    /// Adds `delta` (+1 or -1) to the window of `key`, returning the window after the change.
    fn add(&self, key: &str, up: bool) -> (Instant, u32) {
        self.windows
            .entry(key.to_owned())
            .and_upsert_with(|old| match old.map(|e| e.into_value()) {
                Some((start, n)) if start.elapsed() < WINDOW => (
                    start,
                    if up {
                        n.saturating_add(1)
                    } else {
                        n.saturating_sub(1)
                    },
                ),
                _ => (Instant::now(), u32::from(up)),
            })
            .into_value()
    }

    /// Counts one attempt against every key; when any key is over its limit, takes the
    /// attempt back and gives the seconds to wait.
    pub(crate) fn reserve(&self, keys: &Keys) -> Result<(), u64> {
        let mut wait = None;
        for (key, limit) in &keys.0 {
            let (start, n) = self.add(key, true);
            if n > *limit {
                let left = WINDOW.saturating_sub(start.elapsed()).as_secs().max(1);
                wait = Some(wait.map_or(left, |w: u64| w.max(left)));
            }
        }
        match wait {
            None => Ok(()),
            Some(w) => {
                self.refund(keys);
                Err(w)
            }
        }
    }

    /// Takes back an attempt that succeeded (or was refused by the limit).
    pub(crate) fn refund(&self, keys: &Keys) {
        for (key, _) in &keys.0 {
            self.add(key, false);
        }
    }
}

/// What the authenticator offers for the login page.
fn options(portal: &Portal) -> (Vec<String>, Vec<String>, Option<bool>) {
    let mut passwords = Vec::new();
    let mut keys = Vec::new();
    let mut email = None;
    for p in portal.authenticator.providers() {
        let info = p.info();
        match info.kind {
            "plain" if !passwords.contains(&info.realm) => passwords.push(info.realm.clone()),
            "ecmwf-api" | "efas-api" => {
                if !keys.contains(&info.realm) {
                    keys.push(info.realm.clone());
                }
                let takes_email = p.accepts(Scheme::EmailKey);
                email = Some(email.unwrap_or(false) || takes_email);
            }
            _ => {}
        }
    }
    (passwords, keys, email)
}

fn login_page(portal: &Portal, status: StatusCode, errors: &[String], username: &str) -> Response {
    let (passwords, _, api_key) = options(portal);
    let opts = LoginOptions {
        password_realms: &passwords,
        api_key,
        oidc: portal.oidc.as_ref().map(|o| o.name()),
    };
    pages::respond(status, pages::login(portal, &opts, errors, username))
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// A 403 for a POST that failed the origin or form-token check.
pub(crate) fn forbidden(portal: &Portal) -> Response {
    pages::respond(
        StatusCode::FORBIDDEN,
        pages::message(
            portal,
            None,
            "Request refused",
            "This form was not sent from this portal's page (or the page is too old). \
             Reload the page and try again.",
        ),
    )
}

/// The store (or a provider) is down: fail closed with a clear page.
pub(crate) fn unavailable(portal: &Portal) -> Response {
    pages::respond(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            portal,
            None,
            "Temporarily unavailable",
            "The login or token service is unavailable right now. Try again in a minute.",
        ),
    )
}

/// `GET /portal`: to the tokens when logged in, else to the login page.
pub(crate) async fn root(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    match session::current(&portal, &headers).await {
        Ok(Some(_)) => see_other(&portal.at("/tokens")),
        Ok(None) => see_other(&portal.at("/login")),
        Err(_) => unavailable(&portal),
    }
}

/// `GET /portal/login`.
pub(crate) async fn page(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    match session::current(&portal, &headers).await {
        Ok(Some(_)) => see_other(&portal.at("/tokens")),
        _ => login_page(&portal, StatusCode::OK, &[], ""),
    }
}

pub(crate) fn too_many(portal: &Portal, wait: u64) -> Response {
    let mut res = login_page(
        portal,
        StatusCode::TOO_MANY_REQUESTS,
        &[format!(
            "Too many login attempts. Try again in {wait} seconds."
        )],
        "",
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(wait));
    res
}

/// How one login attempt ended.
enum Outcome {
    In(Principal),
    Refused,
    Unavailable,
}

/// Runs `authorization` (limited to `realm`) through the authenticator, as the API would.
/// A scope-limited principal (an API token, a scoped access token) is a refusal: it must not
/// turn into a session that mints tokens.
async fn attempt(portal: &Portal, authorization: &str, realm: Option<&str>) -> Outcome {
    let mut headers = HeaderMap::new();
    let Ok(value) = HeaderValue::from_str(authorization) else {
        return Outcome::Refused;
    };
    headers.insert(AUTHORIZATION, value);
    if let Some(r) = realm {
        let Ok(r) = HeaderValue::from_str(r) else {
            return Outcome::Refused;
        };
        headers.insert(REALM_HEADER, r);
    }
    match portal.authenticator.authenticate(&headers).await {
        Ok(p) if p.token_id().is_none() && matches!(p.user().scopes, Scopes::All) => Outcome::In(p),
        Ok(_) => Outcome::Refused,
        Err(AuthError::Unavailable) => Outcome::Unavailable,
        Err(_) => Outcome::Refused,
    }
}

/// A session for `principal` and a redirect to the token list.
pub(crate) async fn logged_in(
    portal: &Portal,
    headers: &HeaderMap,
    principal: &Principal,
    how: &str,
    client: &str,
) -> Response {
    match session::start(portal, headers, principal).await {
        Ok(cookie) => {
            tracing::info!(
                target: "auth_o_tron::audit",
                event_name = "portal.login", user = %principal.username, realm = %principal.realm,
                method = how, client = %client,
            );
            let mut res = see_other(&portal.at("/tokens"));
            res.headers_mut().insert(SET_COOKIE, cookie);
            res
        }
        Err(e) => {
            tracing::warn!(event_name = "portal.store.failed", error = %e);
            unavailable(portal)
        }
    }
}

/// The username a failed login tried, for its audit line: at most 64 characters, control
/// characters escaped (a name with a newline cannot forge another line).
fn attempted(username: &str) -> String {
    let short: String = username.chars().take(64).collect();
    short.escape_debug().to_string()
}

/// `POST /portal/login`: username and password.
pub(crate) async fn password(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !guard::same_origin(&portal, &headers) {
        return forbidden(&portal);
    }
    let form = Form::parse(&body);
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    let client = client(addr.as_deref());
    let (realms, _, _) = options(&portal);
    let realm = match form.get("realm") {
        Some(r) => realms.iter().find(|x| *x == r),
        None if realms.len() == 1 => realms.first(),
        None => None,
    };
    let user = format!(
        "{}:{}",
        realm.map_or("", String::as_str),
        username.to_lowercase()
    );
    let keys = portal.limiter.password_keys(&user, &client);
    if let Err(wait) = portal.limiter.reserve(&keys) {
        return too_many(&portal, wait);
    }
    let outcome = match realm {
        Some(realm) if !username.is_empty() && !username.contains(':') && !password.is_empty() => {
            let basic = STANDARD.encode(format!("{username}:{password}"));
            attempt(&portal, &format!("Basic {basic}"), Some(realm)).await
        }
        _ => Outcome::Refused,
    };
    match outcome {
        Outcome::In(p) => {
            portal.limiter.refund(&keys);
            logged_in(&portal, &headers, &p, "password", &client).await
        }
        Outcome::Unavailable => {
            portal.limiter.refund(&keys);
            unavailable(&portal)
        }
        Outcome::Refused => {
            tracing::info!(
                target: "auth_o_tron::audit",
                event_name = "portal.login.failed", method = "password", client = %client,
                user = %attempted(&username),
            );
            login_page(
                &portal,
                StatusCode::UNAUTHORIZED,
                &[WRONG_PASSWORD.into()],
                &username,
            )
        }
    }
}

/// `POST /portal/login/key`: an API key, with an email for `EmailKey` providers.
pub(crate) async fn api_key(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !guard::same_origin(&portal, &headers) {
        return forbidden(&portal);
    }
    let form = Form::parse(&body);
    let key = form.get("key").unwrap_or("").trim();
    let email = form.get("email").unwrap_or("").trim();
    let client = client(addr.as_deref());
    let keys = portal.limiter.client_keys("addr", &client, 1);
    if let Err(wait) = portal.limiter.reserve(&keys) {
        return too_many(&portal, wait);
    }
    let (_, realms, _) = options(&portal);
    // One API-key realm: only its providers see the key (an API token, owned by the token
    // provider outside that realm, then goes to nobody). Several: the scope check refuses it.
    let realm = (realms.len() == 1).then(|| realms[0].as_str());
    let outcome = if key.is_empty() || realms.is_empty() {
        Outcome::Refused
    } else if email.is_empty() {
        attempt(&portal, &format!("Bearer {key}"), realm).await
    } else {
        attempt(&portal, &format!("EmailKey {email}:{key}"), realm).await
    };
    match outcome {
        Outcome::In(p) => {
            portal.limiter.refund(&keys);
            logged_in(&portal, &headers, &p, "api-key", &client).await
        }
        Outcome::Unavailable => {
            portal.limiter.refund(&keys);
            unavailable(&portal)
        }
        Outcome::Refused => {
            tracing::info!(
                target: "auth_o_tron::audit",
                event_name = "portal.login.failed", method = "api-key", client = %client,
            );
            login_page(&portal, StatusCode::UNAUTHORIZED, &[WRONG_KEY.into()], "")
        }
    }
}

/// `POST /portal/logout`: the session is deleted in the store, the cookie cleared.
pub(crate) async fn logout(
    State(portal): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !guard::same_origin(&portal, &headers) {
        return forbidden(&portal);
    }
    let form = Form::parse(&body);
    match session::current(&portal, &headers).await {
        Ok(Some(current)) => {
            if !guard::csrf_matches(form.get("csrf"), &current.session.csrf) {
                return forbidden(&portal);
            }
            let deleted = match portal.sessions() {
                Ok(s) => s.delete_session(&current.key).await,
                Err(e) => Err(e),
            };
            if deleted.is_err() {
                return unavailable(&portal);
            }
        }
        Ok(None) => {}
        Err(_) => return unavailable(&portal),
    }
    let mut res = see_other(&portal.at("/login"));
    res.headers_mut()
        .insert(SET_COOKIE, session::clear_cookie(&portal));
    res
}
