//! The logged-in pages: the token list and create form, rotate and revoke behind a
//! confirmation, and the administrators' list of every token. Every POST passes the origin
//! check and the session's form token; the operations are [`crate::token::manage`]'s.

// Early exits carry the page to answer with: a `Response` (128 bytes) once per request.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::login::{forbidden, see_other, unavailable};
use super::pages::{self, CreateForm, Viewer};
use super::session::{self, Current};
use super::{Form, Portal, Shared, client, guard};
use crate::token::StoreError;
use crate::token::manage::{self, Actor, CreateInput, Failure, Field};
use crate::token::store::{Owner, Session, TokenId, TokenRecord};

fn is_admin(portal: &Portal, s: &Session) -> bool {
    s.roles
        .iter()
        .any(|r| portal.settings.admin_roles.contains(r))
}

fn viewer<'a>(portal: &Portal, current: &'a Current) -> Viewer<'a> {
    Viewer {
        session: &current.session,
        admin: is_admin(portal, &current.session),
    }
}

fn actor<'a>(s: &'a Session, client: &'a str) -> Actor<'a> {
    Actor {
        owner: owner(s),
        via_token: None,
        limited: false,
        roles: &s.token_roles,
        attributes: &s.token_attributes,
        client,
    }
}

fn owner(s: &Session) -> Owner {
    Owner::new(s.username.clone(), s.realm.clone())
}

fn store_failed(portal: &Portal, e: &StoreError) -> Response {
    tracing::warn!(event_name = "portal.store.failed", error = %e);
    unavailable(portal)
}

/// The session of a page request, or the answer instead (to the login page when there is none).
async fn logged_in(portal: &Portal, headers: &HeaderMap) -> Result<Current, Response> {
    match session::current(portal, headers).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(see_other(&portal.at("/login"))),
        Err(e) => Err(store_failed(portal, &e)),
    }
}

/// The session of a form POST that passed the origin check and carries its form token.
async fn checked_post(
    portal: &Portal,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Current, Response> {
    if !guard::same_origin(portal, headers) {
        return Err(forbidden(portal));
    }
    let current = logged_in(portal, headers).await?;
    if !guard::csrf_matches(form.get("csrf"), &current.session.csrf) {
        return Err(forbidden(portal));
    }
    Ok(current)
}

fn message(
    portal: &Portal,
    current: &Current,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let v = viewer(portal, current);
    pages::respond(status, pages::message(portal, Some(&v), title, text))
}

async fn list_page(
    portal: &Portal,
    current: &Current,
    status: StatusCode,
    form: &CreateForm,
    errors: &[String],
) -> Response {
    let records = match portal.store.list(&owner(&current.session)).await {
        Ok(r) => r,
        Err(e) => return store_failed(portal, &e),
    };
    let nonce = match session::random_value() {
        Ok(n) => n,
        Err(e) => return store_failed(portal, &e),
    };
    let v = viewer(portal, current);
    let now = crate::token::last_used_now();
    pages::respond(
        status,
        pages::tokens(portal, &v, &records, now, form, errors, &nonce),
    )
}

/// `GET /portal/tokens`.
pub(crate) async fn list(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    match logged_in(&portal, &headers).await {
        Ok(current) => {
            list_page(
                &portal,
                &current,
                StatusCode::OK,
                &CreateForm::default(),
                &[],
            )
            .await
        }
        Err(r) => r,
    }
}

/// The lifetime in days the form asks for, or the error naming its field.
fn days(form: &CreateForm, now: i64) -> Result<Option<u32>, String> {
    if form.expires == "custom" {
        let Some(date) = crate::time::parse_date(form.date.trim()) else {
            return Err("Expiry date: must be a date (YYYY-MM-DD)".into());
        };
        let today = now - now.rem_euclid(86_400);
        if date <= today {
            return Err("Expiry date: must be after today".into());
        }
        return Ok(Some(
            u32::try_from((date - today) / 86_400).unwrap_or(u32::MAX),
        ));
    }
    if form.expires.is_empty() {
        return Ok(None);
    }
    form.expires
        .parse::<u32>()
        .map(Some)
        .map_err(|_| "Expires in: choose one of the options".into())
}

fn invalid_text(field: Field, why: &str, custom: bool) -> String {
    match field {
        Field::Name => format!("Name: {why}"),
        Field::Scopes => format!("Scopes: {why}"),
        Field::Lifetime if custom => format!("Expiry date: {why} days from today"),
        Field::Lifetime => format!("Expires in: {why} days"),
    }
}

fn created_page(portal: &Portal, current: &Current, c: &manage::Created) -> Response {
    let v = viewer(portal, current);
    pages::respond(
        StatusCode::CREATED,
        pages::created(portal, &v, &c.record, c.secret.expose()),
    )
}

/// `POST /portal/tokens`: create; the answer shows the secret once (status 201, no-store).
pub(crate) async fn create(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let current = match checked_post(&portal, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut values = CreateForm {
        name: form.get("name").unwrap_or("").to_owned(),
        expires: form.get("expires").unwrap_or("").to_owned(),
        date: form.get("date").unwrap_or("").to_owned(),
        chosen: Vec::new(),
    };
    let mut scopes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form.all() {
        if let Some(service) = k.strip_prefix("scope:") {
            scopes
                .entry(service.to_owned())
                .or_default()
                .push(v.to_owned());
            values.chosen.push((service.to_owned(), v.to_owned()));
        }
    }
    let nonce = form.get("nonce").filter(|n| session::is_random_value(n));
    let Some(nonce) = nonce else {
        return list_page(
            &portal,
            &current,
            StatusCode::BAD_REQUEST,
            &values,
            &["The form is incomplete. Fill it in again.".into()],
        )
        .await;
    };
    let now = crate::token::last_used_now();
    let days = match days(&values, now) {
        Ok(d) => d,
        Err(e) => {
            return list_page(&portal, &current, StatusCode::BAD_REQUEST, &values, &[e]).await;
        }
    };
    let client = client(addr.as_deref());
    let actor = actor(&current.session, &client);
    let input = CreateInput {
        name: &values.name,
        scopes: &scopes,
        days,
        nonce: Some(session::bound_nonce(&current.session.csrf, nonce)),
    };
    match manage::create(&*portal.store, &portal.tokens, &actor, input).await {
        Ok(c) => created_page(&portal, &current, &c),
        Err(Failure::Invalid(field, why)) => {
            let text = invalid_text(field, &why, values.expires == "custom");
            list_page(&portal, &current, StatusCode::BAD_REQUEST, &values, &[text]).await
        }
        Err(Failure::Replay) => message(
            &portal,
            &current,
            StatusCode::CONFLICT,
            "Already submitted",
            "This form was already submitted. No new token was created; your tokens are listed \
             on the tokens page.",
        ),
        Err(f) => other_failure(&portal, &current, f),
    }
}

fn other_failure(portal: &Portal, current: &Current, f: Failure) -> Response {
    match f {
        Failure::NotFound => message(
            portal,
            current,
            StatusCode::NOT_FOUND,
            "No such token",
            "This token does not exist, is not yours, or is no longer active.",
        ),
        Failure::ScopesGone(why) => message(
            portal,
            current,
            StatusCode::CONFLICT,
            "Cannot rotate",
            &format!(
                "This token's scopes are no longer all offered ({why}). Create a new token instead."
            ),
        ),
        Failure::Store(e) => store_failed(portal, &e),
        _ => unavailable(portal),
    }
}

fn parse_id(portal: &Portal, current: &Current, id: &str) -> Result<TokenId, Response> {
    TokenId::parse(id).ok_or_else(|| other_failure(portal, current, Failure::NotFound))
}

/// A checked POST about one of the caller's tokens (rotate, revoke): the session and the id,
/// or the answer instead.
async fn own_token_post(
    portal: &Portal,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<(Current, TokenId), Response> {
    let current = checked_post(portal, headers, &Form::parse(body)).await?;
    let id = parse_id(portal, &current, id)?;
    Ok((current, id))
}

/// `owner`'s active token `id`, or the answer instead.
async fn own_token(portal: &Portal, current: &Current, id: &str) -> Result<TokenRecord, Response> {
    let id = parse_id(portal, current, id)?;
    let now = crate::token::last_used_now();
    match portal.store.get(&owner(&current.session), &id).await {
        Ok(Some(r)) if r.state(now) == crate::token::TokenState::Active => Ok(r),
        Ok(_) => Err(other_failure(portal, current, Failure::NotFound)),
        Err(e) => Err(store_failed(portal, &e)),
    }
}

async fn confirm_own(
    portal: &Portal,
    headers: &HeaderMap,
    id: &str,
    verb: &str,
    explanation: &str,
) -> Response {
    let current = match logged_in(portal, headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let record = match own_token(portal, &current, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let v = viewer(portal, &current);
    let name = &record.name;
    let title = format!("{} {name}?", capitalised(verb));
    pages::respond(
        StatusCode::OK,
        pages::confirm(
            portal,
            &v,
            &title,
            explanation,
            &portal.at(&format!("/tokens/{}/{verb}", record.id)),
            &format!("Yes, {verb} {name}"),
            &portal.at("/tokens"),
        ),
    )
}

fn capitalised(verb: &str) -> String {
    let mut c = verb.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `GET /portal/tokens/{id}/rotate`.
pub(crate) async fn confirm_rotate(
    State(portal): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    confirm_own(
        &portal,
        &headers,
        &id,
        "rotate",
        "A new secret replaces this token's; the current one stops working at once. The name \
         and scopes stay.",
    )
    .await
}

/// `GET /portal/tokens/{id}/revoke`.
pub(crate) async fn confirm_revoke(
    State(portal): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    confirm_own(
        &portal,
        &headers,
        &id,
        "revoke",
        "The token stops working at once. This cannot be undone.",
    )
    .await
}

/// `POST /portal/tokens/{id}/rotate`: the new secret, once (201).
pub(crate) async fn rotate(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (current, id) = match own_token_post(&portal, &headers, &id, &body).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let client = client(addr.as_deref());
    let actor = actor(&current.session, &client);
    match manage::rotate(
        &*portal.store,
        &portal.tokens,
        &portal.authenticator,
        &actor,
        &id,
    )
    .await
    {
        Ok(c) => created_page(&portal, &current, &c),
        Err(f) => other_failure(&portal, &current, f),
    }
}

/// `POST /portal/tokens/{id}/revoke`: back to the list.
pub(crate) async fn revoke(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (current, id) = match own_token_post(&portal, &headers, &id, &body).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let client = client(addr.as_deref());
    let actor = actor(&current.session, &client);
    match manage::revoke(
        &*portal.store,
        &portal.authenticator,
        &actor,
        &actor.owner,
        &id,
    )
    .await
    {
        Ok(()) => see_other(&portal.at("/tokens")),
        Err(f) => other_failure(&portal, &current, f),
    }
}

/// The session of an administrator, or the answer instead (403 for others).
fn require_admin(portal: &Portal, current: &Current) -> Result<(), Response> {
    if is_admin(portal, &current.session) {
        Ok(())
    } else {
        Err(message(
            portal,
            current,
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Only administrators can see every user's tokens.",
        ))
    }
}

/// `GET /portal/admin`.
pub(crate) async fn admin(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    let current = match logged_in(&portal, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = require_admin(&portal, &current) {
        return r;
    }
    let records = match portal.sessions() {
        Ok(s) => s.all_tokens().await,
        Err(e) => Err(e),
    };
    match records {
        Ok(records) => {
            let v = viewer(&portal, &current);
            let now = crate::token::last_used_now();
            pages::respond(StatusCode::OK, pages::admin(&portal, &v, &records, now))
        }
        Err(e) => store_failed(&portal, &e),
    }
}

/// Any user's unrevoked token `id`, for an administrator.
async fn anyones_token(
    portal: &Portal,
    current: &Current,
    id: &str,
) -> Result<TokenRecord, Response> {
    require_admin(portal, current)?;
    let id = parse_id(portal, current, id)?;
    let all = match portal.sessions() {
        Ok(s) => s.all_tokens().await,
        Err(e) => Err(e),
    };
    match all {
        Ok(all) => all
            .into_iter()
            .find(|r| r.id == id && r.revoked_at.is_none())
            .ok_or_else(|| other_failure(portal, current, Failure::NotFound)),
        Err(e) => Err(store_failed(portal, &e)),
    }
}

/// `GET /portal/admin/{id}/revoke`.
pub(crate) async fn confirm_admin_revoke(
    State(portal): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let current = match logged_in(&portal, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let record = match anyones_token(&portal, &current, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let v = viewer(&portal, &current);
    let who = format!("{} of {}", record.name, record.owner.username);
    pages::respond(
        StatusCode::OK,
        pages::confirm(
            &portal,
            &v,
            &format!("Revoke {who}?"),
            &format!(
                "The token stops working at once. {} ({}) will see it as revoked. This is \
                 recorded in the audit log.",
                record.owner.username, record.owner.realm
            ),
            &portal.at(&format!("/admin/{}/revoke", record.id)),
            &format!("Yes, revoke {who}"),
            &portal.at("/admin"),
        ),
    )
}

/// `POST /portal/admin/{id}/revoke`: an audit line names the administrator and the owner.
pub(crate) async fn admin_revoke(
    State(portal): State<Shared>,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    let current = match checked_post(&portal, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let record = match anyones_token(&portal, &current, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let client = client(addr.as_deref());
    let actor = actor(&current.session, &client);
    match manage::revoke(
        &*portal.store,
        &portal.authenticator,
        &actor,
        &record.owner,
        &record.id,
    )
    .await
    {
        Ok(()) => see_other(&portal.at("/admin")),
        Err(f) => other_failure(&portal, &current, f),
    }
}
