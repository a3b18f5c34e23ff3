//! The portal's HTML, with maud (every interpolation escaped): one layout, one function per
//! page. Accessibility: every input has a `<label for>`, scopes are grouped in fieldsets,
//! errors are listed at the top in a `role="alert"` box naming the field, tables have a
//! caption and header scopes, states are words (never colour alone), buttons name their token.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Portal;
use crate::token::store::{Session, TokenRecord, TokenState, UnixTime};

/// A page as an answer.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// Who is logged in, for the header.
pub(crate) struct Viewer<'a> {
    pub(crate) session: &'a Session,
    pub(crate) admin: bool,
}

pub(crate) fn layout(
    portal: &Portal,
    title: &str,
    viewer: Option<&Viewer<'_>>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – API tokens" }
                link rel="stylesheet" href=(portal.at("/static/portal.css"));
                script src=(portal.at("/static/portal.js")) defer {}
            }
            body {
                header {
                    span.brand { "API tokens" }
                    @if let Some(v) = viewer {
                        nav aria-label="Account" {
                            span { "Logged in as " strong { (v.session.username) } " (" (v.session.realm) ")" }
                            a href=(portal.at("/tokens")) { "Your tokens" }
                            @if v.admin {
                                a href=(portal.at("/admin")) { "All tokens" }
                            }
                            form method="post" action=(portal.at("/logout")) {
                                input type="hidden" name="csrf" value=(v.session.csrf);
                                button.secondary type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Errors at the top of a form.
pub(crate) fn alert(errors: &[String]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.alert role="alert" {
                @if errors.len() == 1 {
                    p { (errors[0]) }
                } @else {
                    p { "Please correct the following:" }
                    ul { @for e in errors { li { (e) } } }
                }
            }
        }
    }
}

/// What the login page offers.
pub(crate) struct LoginOptions<'a> {
    /// Realms of username/password providers (a choice when more than one).
    pub(crate) password_realms: &'a [String],
    /// An API-key provider exists; `true` when it takes an email too (EmailKey).
    pub(crate) api_key: Option<bool>,
    /// "Log in with {name}".
    pub(crate) oidc: Option<&'a str>,
}

pub(crate) fn login(
    portal: &Portal,
    options: &LoginOptions<'_>,
    errors: &[String],
    username: &str,
) -> Markup {
    let body = html! {
        h1 { "Log in" }
        (alert(errors))
        p { "Log in with the credentials you use for the API to manage your API tokens." }
        @if !options.password_realms.is_empty() {
            form method="post" action=(portal.at("/login")) {
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                @if options.password_realms.len() > 1 {
                    label for="realm" { "Realm" }
                    select #realm name="realm" {
                        @for r in options.password_realms { option value=(r) { (r) } }
                    }
                }
                div.actions { button type="submit" { "Log in" } }
            }
        }
        @if let Some(with_email) = options.api_key {
            @if !options.password_realms.is_empty() { p.or { "Or with an API key:" } }
            form method="post" action=(portal.at("/login/key")) {
                @if with_email {
                    label for="email" { "Email" }
                    input #email type="email" name="email" autocomplete="email";
                }
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" required;
                div.actions { button type="submit" { "Log in with API key" } }
            }
        }
        @if let Some(name) = options.oidc {
            p.or { "Or with your organisation's account:" }
            p { a.button href=(portal.at("/oidc/start")) { "Log in with " (name) } }
        }
    };
    layout(portal, "Log in", None, body)
}

fn date(t: UnixTime) -> Markup {
    let full = crate::time::rfc3339(t, None);
    html! { time datetime=(full) { (full.get(..10).unwrap_or(&full)) } }
}

fn last_used(t: Option<UnixTime>, now: UnixTime) -> Markup {
    match t {
        None => html! { "never" },
        Some(t) if now - t < 3600 => {
            let minutes = ((now - t).max(0) + 59) / 60;
            let minutes = minutes.max(1);
            let full = crate::time::rfc3339(t, None);
            html! { time datetime=(full) { "within the last " (minutes) @if minutes == 1 { " minute" } @else { " minutes" } } }
        }
        Some(t) => date(t),
    }
}

fn scopes(r: &TokenRecord) -> String {
    r.scopes
        .iter()
        .map(|(service, s)| format!("{service}: {}", s.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn expires(r: &TokenRecord, now: UnixTime) -> Markup {
    match r.state(now) {
        TokenState::Revoked => html! { span.state-bad { "revoked" } },
        TokenState::Expired => html! { span.state-bad { "expired" } },
        _ => date(r.expires_at),
    }
}

/// The create form's values (kept on a refused submission).
#[derive(Debug, Default)]
pub(crate) struct CreateForm {
    pub(crate) name: String,
    pub(crate) chosen: Vec<(String, String)>,
    pub(crate) expires: String,
    pub(crate) date: String,
}

/// "Your tokens": the list and the create form.
pub(crate) fn tokens(
    portal: &Portal,
    viewer: &Viewer<'_>,
    records: &[TokenRecord],
    now: UnixTime,
    form: &CreateForm,
    errors: &[String],
    nonce: &str,
) -> Markup {
    let default_days = portal.tokens.default_lifetime.as_secs() / 86_400;
    let max_days = portal.tokens.max_lifetime.as_secs() / 86_400;
    let presets: Vec<u64> = [7, 30, 60, 90]
        .into_iter()
        .filter(|d| *d <= max_days)
        .collect();
    let selected = if form.expires.is_empty() {
        if presets.contains(&default_days) {
            default_days.to_string()
        } else {
            presets.last().map_or("custom".into(), u64::to_string)
        }
    } else {
        form.expires.clone()
    };
    let body = html! {
        h1 { "Your tokens" }
        (alert(errors))
        @if records.is_empty() {
            p { "You have no tokens yet." }
        } @else {
            table {
                caption { "Your tokens" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                    th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { "Token" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for r in records {
                        tr {
                            th scope="row" { (r.name) }
                            td { (scopes(r)) }
                            td { (date(r.created_at)) }
                            td { (last_used(r.last_used_at, now)) }
                            td { (expires(r, now)) }
                            td { code { (r.hint) } }
                            td {
                                @if r.state(now) == TokenState::Active {
                                    a href=(portal.at(&format!("/tokens/{}/rotate", r.id))) { "Rotate " (r.name) }
                                    " "
                                    a href=(portal.at(&format!("/tokens/{}/revoke", r.id))) { "Revoke " (r.name) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 #create { "Create a token" }
        form method="post" action=(portal.at("/tokens")) {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            input type="hidden" name="nonce" value=(nonce);
            label for="name" { "Name" }
            input #name type="text" name="name" value=(form.name) maxlength="100" required aria-describedby="name-help";
            p.hint #name-help { "What the token is for, e.g. the machine or job that uses it." }
            @for (service, scopes) in portal.tokens.catalogue.all() {
                fieldset {
                    legend { (service) }
                    @for scope in &scopes {
                        @let id = format!("scope-{service}-{scope}");
                        @let checked = form.chosen.iter().any(|(s, c)| *s == service && c == scope);
                        span.check {
                            input id=(id) type="checkbox" name=(format!("scope:{service}")) value=(scope) checked[checked];
                            label for=(id) { (service) " " (scope) }
                        }
                    }
                }
            }
            label for="expires" { "Expires in" }
            select #expires name="expires" {
                @for d in &presets {
                    option value=(d) selected[selected == d.to_string()] { (d) " days" }
                }
                option value="custom" selected[selected == "custom"] { "Custom date" }
            }
            label for="expiry-date" { "Expiry date" }
            input #expiry-date type="date" name="date" value=(form.date) aria-describedby="date-help";
            p.hint #date-help { "Used with \"Custom date\"; at most " (max_days) " days from today." }
            div.actions { button type="submit" { "Create token" } }
        }
    };
    layout(portal, "Your tokens", Some(viewer), body)
}

/// The answer to a create or rotate: the secret, once.
pub(crate) fn created(
    portal: &Portal,
    viewer: &Viewer<'_>,
    record: &TokenRecord,
    secret: &str,
) -> Markup {
    let body = html! {
        h1 { "Token " (record.name) }
        section #created .box.created tabindex="-1" aria-labelledby="created-heading" {
            h2 #created-heading { "Copy this token now. It will not be shown again." }
            label for="secret" { "New token" }
            input #secret type="text" readonly value=(secret) autocomplete="off" spellcheck="false";
            div.actions {
                button #copy type="button" { "Copy" }
                span #copy-status aria-live="polite" {}
            }
            p { "Scopes: " (scopes(record)) ". Expires " (date(record.expires_at)) "." }
        }
        p { a href=(portal.at("/tokens")) { "Back to your tokens" } }
    };
    layout(portal, "New token", Some(viewer), body)
}

/// A confirmation with a POST form.
pub(crate) fn confirm(
    portal: &Portal,
    viewer: &Viewer<'_>,
    title: &str,
    explanation: &str,
    action: &str,
    button: &str,
    cancel: &str,
) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (explanation) }
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            div.actions {
                button.danger type="submit" { (button) }
                a href=(cancel) { "Cancel" }
            }
        }
    };
    layout(portal, title, Some(viewer), body)
}

/// "All tokens", for administrators.
pub(crate) fn admin(
    portal: &Portal,
    viewer: &Viewer<'_>,
    records: &[TokenRecord],
    now: UnixTime,
) -> Markup {
    let body = html! {
        h1 { "All tokens" }
        table {
            caption { "All tokens" }
            thead { tr {
                th scope="col" { "Owner" } th scope="col" { "Realm" } th scope="col" { "Name" }
                th scope="col" { "Scopes" } th scope="col" { "Created" } th scope="col" { "Last used" }
                th scope="col" { "Expires" } th scope="col" { "Token" } th scope="col" { "Actions" }
            } }
            tbody {
                @for r in records {
                    tr {
                        td { (r.owner.username) }
                        td { (r.owner.realm) }
                        th scope="row" { (r.name) }
                        td { (scopes(r)) }
                        td { (date(r.created_at)) }
                        td { (last_used(r.last_used_at, now)) }
                        td { (expires(r, now)) }
                        td { code { (r.hint) } }
                        td {
                            @if r.revoked_at.is_none() {
                                a href=(portal.at(&format!("/admin/{}/revoke", r.id))) { "Revoke " (r.name) " of " (r.owner.username) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(portal, "All tokens", Some(viewer), body)
}

/// A short page with a heading and a message (errors, replays).
pub(crate) fn message(
    portal: &Portal,
    viewer: Option<&Viewer<'_>>,
    title: &str,
    text: &str,
) -> Markup {
    let back = if viewer.is_some() {
        "/tokens"
    } else {
        "/login"
    };
    let body = html! {
        h1 { (title) }
        div.alert role="alert" { p { (text) } }
        p { a href=(portal.at(back)) { @if viewer.is_some() { "Back to your tokens" } @else { "Log in" } } }
    };
    layout(portal, title, viewer, body)
}
