//! `Log in with <IdP>`: the OpenID Connect authorization code flow with PKCE (S256), `state`
//! and `nonce`. The login in progress (nonce and code verifier) is kept in the token store
//! under the SHA-256 of its `state` for ten minutes and taken once, so the callback may land on
//! any replica. The ID token is validated by a [`JwtProvider`] (the `jwt` provider's JWKS and
//! claim checks: signature, `iss` = issuer, `aud` = client id, `exp`), then its `nonce` is
//! compared, then the realm's augmenters run as for any login.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::login::{see_other, unavailable};
use super::pages::{self, LoginOptions};
use super::{Form, OidcSettings, Portal, PortalError, Shared, client, session};
use crate::provider::jwks::KeySource;
use crate::provider::jwt::{JwtProvider, JwtSettings};
use crate::user::Scopes;
use crate::{Principal, User};

/// How many more OpenID Connect starts than failed logins a client may make per minute.
const START_FACTOR: u32 = 4;

/// How long a started login may take.
const LOGIN_TTL: i64 = 600;

/// The configured IdP, its endpoints (discovered on first use) and the ID token validator.
pub(crate) struct Oidc {
    settings: OidcSettings,
    verifier: JwtProvider,
    endpoints: OnceCell<(String, String)>,
}

impl Oidc {
    pub(crate) fn new(settings: OidcSettings) -> Result<Self, PortalError> {
        let jwt = JwtSettings {
            issuer: Some(settings.issuer.clone()),
            audience: Some(vec![settings.client_id.clone()]),
            username_claim: Some(vec![settings.username_claim.clone()]),
            // A fresh ID token is used once, here: no cache.
            cache_ttl: Duration::ZERO,
            ..JwtSettings::default()
        };
        let verifier = JwtProvider::new(
            "portal-oidc",
            settings.realm.clone(),
            KeySource::Discovery(settings.issuer.clone()),
            settings.client.clone(),
            jwt,
        )
        .map_err(|e| PortalError::Oidc(e.to_string()))?;
        Ok(Oidc {
            settings,
            verifier,
            endpoints: OnceCell::new(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    /// `authorization_endpoint` and `token_endpoint`, discovered once (retried after a failure).
    async fn endpoints(&self) -> Option<&(String, String)> {
        self.endpoints
            .get_or_try_init(|| async {
                let mut found = self
                    .settings
                    .client
                    .discover(
                        &self.settings.issuer,
                        &["authorization_endpoint", "token_endpoint"],
                    )
                    .await?;
                let token = found.pop().unwrap_or_default();
                let authorize = found.pop().unwrap_or_default();
                Ok::<_, crate::provider::ProviderError>((authorize, token))
            })
            .await
            .inspect_err(|e| tracing::warn!(event_name = "portal.oidc.discovery", error = %e))
            .ok()
    }
}

/// The callback URL registered at the IdP: built only from `public_origin` (which [`router`]
/// requires with OIDC), never from the request's `Host` (DNS rebinding would pick it).
///
/// [`router`]: super::router
fn redirect_uri(portal: &Portal) -> Option<String> {
    let origin = portal.settings.public_origin.as_ref()?;
    Some(format!("{origin}{}", portal.at("/oidc/callback")))
}

fn refused(portal: &Portal, status: StatusCode, text: &str) -> Response {
    let opts = LoginOptions {
        password_realms: &[],
        api_key: None,
        oidc: portal.oidc.as_ref().map(Oidc::name),
    };
    pages::respond(status, pages::login(portal, &opts, &[text.to_owned()], ""))
}

/// `GET /portal/oidc/start`: to the IdP's authorization endpoint.
pub(crate) async fn start(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let Some(oidc) = &portal.oidc else {
        return see_other(&portal.at("/login"));
    };
    // Each start stores a login state: limited per client like logins, never given back (a
    // state lives ten minutes whatever happens next).
    let keys = portal
        .limiter
        .client_keys("oidc", &client(addr.as_deref()), START_FACTOR);
    if let Err(wait) = portal.limiter.reserve(&keys) {
        return super::login::too_many(&portal, wait);
    }
    let (Some((authorize, _)), Some(redirect)) = (oidc.endpoints().await, redirect_uri(&portal))
    else {
        return unavailable(&portal);
    };
    let values = (
        session::random_value(),
        session::random_value(),
        session::random_value(),
    );
    let (Ok(state), Ok(nonce), Ok(verifier)) = values else {
        return unavailable(&portal);
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let data = serde_json::json!({"nonce": nonce, "verifier": verifier, "redirect": redirect});
    let stored = match portal.sessions() {
        Ok(s) => {
            let now = crate::token::last_used_now();
            s.put_login(&session::key_of(&state), &data.to_string(), now + LOGIN_TTL)
                .await
        }
        Err(e) => Err(e),
    };
    if stored.is_err() {
        return unavailable(&portal);
    }
    let Ok(mut url) = url::Url::parse(authorize) else {
        return unavailable(&portal);
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.settings.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut res = see_other(url.as_str());
    res.headers_mut().insert(
        SET_COOKIE,
        session::login_binding(&portal, &state, Some(LOGIN_TTL)),
    );
    res
}

/// `GET /portal/oidc/callback?code=…&state=…`.
pub(crate) async fn callback(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(oidc) = &portal.oidc else {
        return see_other(&portal.at("/login"));
    };
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let state = query.get("state").filter(|s| session::is_random_value(s));
    let Some(state) = state else {
        return refused(
            &portal,
            StatusCode::BAD_REQUEST,
            "This login link is not valid. Log in again.",
        );
    };
    // Only the browser that started this login may finish it.
    if !super::guard::csrf_matches(session::login_state(&portal, &headers), state) {
        return refused(
            &portal,
            StatusCode::BAD_REQUEST,
            "This login was started in another browser or has expired. Log in again.",
        );
    }
    let taken = match portal.sessions() {
        Ok(s) => {
            s.take_login(&session::key_of(state), crate::token::last_used_now())
                .await
        }
        Err(e) => Err(e),
    };
    let data = match taken {
        Ok(Some(d)) => d,
        Ok(None) => {
            return refused(
                &portal,
                StatusCode::BAD_REQUEST,
                "This login has expired or was already used. Log in again.",
            );
        }
        Err(_) => return unavailable(&portal),
    };
    if query.get("error").is_some() {
        return refused(
            &portal,
            StatusCode::UNAUTHORIZED,
            "The identity provider refused the login.",
        );
    }
    let Some(code) = query.get("code") else {
        return refused(
            &portal,
            StatusCode::BAD_REQUEST,
            "This login link is not valid. Log in again.",
        );
    };
    let data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
    let field = |k: &str| {
        data.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    match exchange(
        oidc,
        code,
        field("verifier"),
        field("redirect"),
        field("nonce"),
    )
    .await
    {
        Ok(Some(user)) => {
            let base = (user.roles.clone(), user.attributes.clone());
            let user = portal.authenticator.augment_user(user).await;
            let principal = Principal::augmented(user, "portal-oidc", None, Some(base));
            let res = super::login::logged_in(
                &portal,
                &headers,
                &principal,
                "oidc",
                &client(addr.as_deref()),
            )
            .await;
            continue_page(&portal, res)
        }
        Ok(None) => refused(
            &portal,
            StatusCode::UNAUTHORIZED,
            "The identity provider refused the login.",
        ),
        Err(()) => unavailable(&portal),
    }
}

/// The answer to a successful callback: the session cookie is set on a page of ours that
/// moves on to the tokens itself (a meta refresh, and a link without it). A redirect would not
/// do: the navigation began at the IdP, so the browser would not send the new `SameSite=Strict`
/// cookie with it and the user would land on the login page.
fn continue_page(portal: &Portal, login: Response) -> Response {
    if login.status() != StatusCode::SEE_OTHER {
        return login;
    }
    let tokens = portal.at("/tokens");
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0;url={tokens}"));
                title { "Logged in – API tokens" }
                link rel="stylesheet" href=(portal.at("/static/portal.css"));
            }
            body { main {
                h1 { "Logged in" }
                p { a href=(tokens) { "Continue to your tokens" } }
            } }
        }
    };
    let mut res = pages::respond(StatusCode::OK, page);
    for (name, value) in login.headers() {
        if name == SET_COOKIE {
            res.headers_mut().append(SET_COOKIE, value.clone());
        }
    }
    res.headers_mut()
        .append(SET_COOKIE, session::login_binding(portal, "", None));
    res
}

/// The code for an ID token, validated: the user, `None` if refused, `Err` if the IdP could
/// not be asked.
async fn exchange(
    oidc: &Oidc,
    code: &str,
    verifier: &str,
    redirect: &str,
    nonce: &str,
) -> Result<Option<User>, ()> {
    let Some((_, token_endpoint)) = oidc.endpoints().await else {
        return Err(());
    };
    let client = &oidc.settings.client;
    let request = client
        .inner()
        .post(token_endpoint)
        .basic_auth(
            &oidc.settings.client_id,
            Some(oidc.settings.client_secret.expose()),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]);
    // Once: a code is single-use, and a repeated exchange would burn it.
    let res = client
        .send_once("OIDC token endpoint", request)
        .await
        .map_err(|e| tracing::warn!(event_name = "portal.oidc.token", error = %e))?;
    if res.status.is_client_error() {
        tracing::info!(
            event_name = "portal.oidc.refused",
            status = res.status.as_u16()
        );
        return Ok(None);
    }
    if !res.status.is_success() {
        tracing::warn!(
            event_name = "portal.oidc.token",
            status = res.status.as_u16()
        );
        return Err(());
    }
    let body: serde_json::Value = res.json("OIDC token endpoint").map_err(|_| ())?;
    let Some(id_token) = body.get("id_token").and_then(serde_json::Value::as_str) else {
        return Err(());
    };
    let identity = match oidc.verifier.check_id_token(id_token).await {
        Ok(i) => i,
        Err(crate::provider::ProviderError::Invalid(why)) => {
            tracing::info!(event_name = "portal.oidc.id_token", reason = %why);
            return Ok(None);
        }
        Err(_) => return Err(()),
    };
    let mut user = identity.user;
    // The nonce ties the ID token to this browser's login; it is no attribute of the user.
    if nonce.is_empty() || user.attributes.remove("nonce").as_deref() != Some(nonce) {
        tracing::info!(
            event_name = "portal.oidc.id_token",
            reason = "nonce mismatch"
        );
        return Ok(None);
    }
    // A login, not a delegated access token: the user acts with every scope.
    user.scopes = Scopes::All;
    Ok(Some(user))
}
