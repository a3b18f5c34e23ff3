//! The `/tokens` JSON API: create, list, revoke and rotate the caller's own API tokens.
//!
//! Mount [`router`] under an [`AuthLayer`](crate::AuthLayer) built on the same
//! [`Authenticator`] that holds the [`TokenProvider`](super::TokenProvider): every route needs
//! an authenticated [`Principal`]. The secret of a token appears once, in the 201 answer of a
//! create or rotate (`Cache-Control: no-store`); lists show a hint. A request made with an API
//! token cannot create or rotate tokens (a limited credential must not mint a broader or
//! longer-lived one) and may revoke only itself. The store being down answers 503 (fail
//! closed). Every create, rotate and revoke writes one audit line (`auth_o_tron::audit`) with
//! who, the token id and the client address, never the secret.
//!
//! [`openapi`] is the OpenAPI 3.1 document of these routes, its schemas generated from the
//! request and answer types below; the sidecar serves it at `/tokens/openapi.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TokenSettings;
use super::manage::{self, Actor, CreateInput, Failure, Field};
use super::store::{Owner, StoreError, TokenId, TokenRecord, TokenStore};
use crate::{Authenticator, Principal};

pub use super::manage::MAX_NAME_CHARS;

/// The format characters of the Basic Multilingual Plane, for [`NAME_PATTERN`].
macro_rules! format_bmp {
    () => {
        "\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb"
    };
}

/// What [`MAX_NAME_CHARS`] and the control- and format-character rule allow, as an ECMA-262
/// pattern: no control character (`char::is_control`), no format character of the Basic
/// Multilingual Plane (`manage::FORMAT`; the few outside it, e.g. tag characters, need
/// surrogate pairs a character class cannot name: the server refuses them all the same), at
/// least one character that is not white space.
const NAME_PATTERN: &str = concat!(
    "^[^\\u0000-\\u001f\\u007f-\\u009f",
    format_bmp!(),
    "]*[^\\s\\u0000-\\u001f\\u007f-\\u009f",
    format_bmp!(),
    "][^\\u0000-\\u001f\\u007f-\\u009f",
    format_bmp!(),
    "]*$"
);

/// `POST /tokens`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A name for the owner's list (1 to 100 characters, not blank, no control or format characters).
    #[schemars(length(min = 1, max = 100), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Scopes per service, a subset of the catalogue, e.g. `{"polytope": ["read"]}`.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Lifetime in days (default and maximum set by the server).
    #[serde(default, deserialize_with = "whole_days")]
    pub expires_in_days: Option<u32>,
}

/// A whole number of days, also when written `7.0` (JSON Schema counts that as an integer);
/// numbers beyond `u32` saturate, so the lifetime check names the limit.
fn whole_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u32::try_from(u).unwrap_or(u32::MAX)));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(if f >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            f as u32
        })),
        _ => Err(D::Error::custom(format!(
            "{n} is not a whole, positive number of days"
        ))),
    }
}

/// A created or rotated token: the only answer that carries the secret (`Debug` hides it).
#[derive(Serialize, JsonSchema)]
pub struct CreatedToken {
    /// The token's id (for revoke and rotate).
    pub id: String,
    /// The secret. Shown once.
    pub token: String,
    /// Name.
    pub name: String,
    /// Scopes held.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("id", &self.id)
            .field("token", &"***")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One token in a list (never the secret).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Scopes held.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// Last use (coarse: about once per cache lifetime), RFC 3339.
    pub last_used_at: Option<String>,
    /// Revocation time, RFC 3339, for revoked tokens not yet pruned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Prefix and last four characters, e.g. `aot_…wxyz`.
    pub hint: String,
}

/// `GET /tokens`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenList {
    /// The caller's tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// Every error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the field for bad input.
    pub error: String,
}

struct ApiState {
    store: Arc<dyn TokenStore>,
    settings: TokenSettings,
    authenticator: Authenticator,
}

type Shared = Arc<ApiState>;

/// The `/tokens` routes over `store`. `authenticator` is the one that serves the tokens: its
/// cache is evicted before a revoke or rotate answers, so the old token fails at once here.
pub fn router(
    store: Arc<dyn TokenStore>,
    settings: TokenSettings,
    authenticator: &Authenticator,
) -> Router {
    let state = Arc::new(ApiState {
        store,
        settings,
        authenticator: authenticator.clone(),
    });
    Router::new()
        .route("/tokens", post(create).get(list))
        .route("/tokens/{id}", delete(revoke))
        .route("/tokens/{id}/rotate", post(rotate))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut res = (
        status,
        axum::Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A refusal before anything was done: status and message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn store_error(e: &StoreError) -> Response {
    tracing::warn!(event_name = "tokens.store.failed", error = %e);
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the token store is unavailable",
    )
}

fn no_store(status: StatusCode, body: impl Serialize) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// RFC 3339 (UTC, seconds) of Unix seconds.
pub(crate) fn rfc3339(t: i64) -> String {
    crate::time::rfc3339(t, None)
}

fn info(r: &TokenRecord) -> TokenInfo {
    TokenInfo {
        id: r.id.to_string(),
        name: r.name.clone(),
        scopes: r.scopes.clone(),
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        last_used_at: r.last_used_at.map(rfc3339),
        revoked_at: r.revoked_at.map(rfc3339),
        hint: r.hint.clone(),
    }
}

/// The client address for audit lines (the sidecar puts the proxy-aware one in `ConnectInfo`).
pub(crate) fn client(addr: Option<&ConnectInfo<SocketAddr>>) -> String {
    addr.map_or_else(|| "-".to_owned(), |a| a.0.ip().to_string())
}

/// Browsers send `Sec-Fetch-Site`; Basic credentials and cookies are sent by a browser on a
/// cross-site request too, so such requests are refused (scripts send no such header).
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let site = headers.get("sec-fetch-site")?.as_bytes();
    (site != b"same-origin" && site != b"none").then(|| {
        error(
            StatusCode::FORBIDDEN,
            "cross-site requests cannot manage tokens",
        )
    })
}

/// Rotate has no body, so a cross-site HTML form (which cannot send JSON, and which older
/// browsers send without `Sec-Fetch-Site`) could post to it: the content types a form can send
/// are refused.
fn form_typed(headers: &HeaderMap) -> Option<Response> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
    )
    .then(|| {
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "rotate takes no body; send none or application/json",
        )
    })
}

/// The JSON answer of a refused operation.
fn failure(f: Failure) -> Response {
    match f {
        Failure::Invalid(field, why) => {
            let field = match field {
                Field::Name => "name",
                Field::Scopes => "scopes",
                Field::Lifetime => "expires_in_days",
            };
            error(StatusCode::BAD_REQUEST, format!("{field}: {why}"))
        }
        Failure::Limited(what) => error(
            StatusCode::FORBIDDEN,
            format!(
                "a request made with an API token or another scope-limited credential cannot \
                 {what} tokens; authenticate directly (password or identity provider login)"
            ),
        ),
        Failure::NotOwnToken => error(
            StatusCode::FORBIDDEN,
            "a request made with an API token may revoke only that token",
        ),
        Failure::Replay => error(StatusCode::CONFLICT, "this request was already made"),
        Failure::NotFound => error(StatusCode::NOT_FOUND, "no such token"),
        Failure::ScopesGone(e) => error(
            StatusCode::CONFLICT,
            format!("this token's scopes are no longer all offered ({e}); create a new token"),
        ),
        Failure::Random => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the OS random source failed",
        ),
        Failure::Store(e) => store_error(&e),
    }
}

fn parse_create(headers: &HeaderMap, body: &[u8]) -> Result<CreateRequest, Refusal> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "body: Content-Type must be application/json".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let req: CreateRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body" } else { path.as_str() };
        // serde's own messages name unknown and missing fields.
        Refusal(StatusCode::BAD_REQUEST, format!("{field}: {}", e.inner()))
    })?;
    if let Err(e) = de.end() {
        return Err(Refusal(StatusCode::BAD_REQUEST, format!("body: {e}")));
    }
    Ok(req)
}

async fn create(
    State(state): State<Shared>,
    principal: Principal,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = cross_site(&headers) {
        return r;
    }
    let client = client(addr.as_deref());
    let actor = Actor::of(&principal, &client);
    // A token caller is refused before its body is looked at.
    if actor.via_token.is_some() || actor.limited {
        return failure(Failure::Limited("create"));
    }
    let req = match parse_create(&headers, &body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let input = CreateInput {
        name: &req.name,
        scopes: &req.scopes,
        days: req.expires_in_days,
        nonce: None,
    };
    match manage::create(&*state.store, &state.settings, &actor, input).await {
        Ok(c) => no_store(StatusCode::CREATED, created(&c.record, c.secret.expose())),
        Err(f) => failure(f),
    }
}

fn created(r: &TokenRecord, secret: &str) -> CreatedToken {
    CreatedToken {
        id: r.id.to_string(),
        token: secret.to_owned(),
        name: r.name.clone(),
        scopes: r.scopes.clone(),
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
    }
}

async fn list(State(state): State<Shared>, principal: Principal) -> Response {
    let owner = Owner::new(principal.username.clone(), principal.realm.clone());
    match state.store.list(&owner).await {
        Ok(records) => no_store(
            StatusCode::OK,
            TokenList {
                tokens: records.iter().map(info).collect(),
            },
        ),
        Err(e) => store_error(&e),
    }
}

async fn revoke(
    State(state): State<Shared>,
    principal: Principal,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = cross_site(&headers) {
        return r;
    }
    let Some(id) = TokenId::parse(&id) else {
        return failure(Failure::NotFound);
    };
    let client = client(addr.as_deref());
    let actor = Actor::of(&principal, &client);
    match manage::revoke(
        &*state.store,
        &state.authenticator,
        &actor,
        &actor.owner,
        &id,
    )
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(f) => failure(f),
    }
}

async fn rotate(
    State(state): State<Shared>,
    principal: Principal,
    addr: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = cross_site(&headers).or_else(|| form_typed(&headers)) {
        return r;
    }
    let client = client(addr.as_deref());
    let actor = Actor::of(&principal, &client);
    let Some(id) = TokenId::parse(&id) else {
        return failure(if actor.via_token.is_some() || actor.limited {
            Failure::Limited("rotate")
        } else {
            Failure::NotFound
        });
    };
    match manage::rotate(
        &*state.store,
        &state.settings,
        &state.authenticator,
        &actor,
        &id,
    )
    .await
    {
        Ok(c) => no_store(StatusCode::CREATED, created(&c.record, c.secret.expose())),
        Err(f) => failure(f),
    }
}

/// The OpenAPI 3.1 document of this API as `settings` configure it: the schemas come from the
/// request and answer types above (JSON Schema 2020-12, which OpenAPI 3.1 uses as is), with the
/// catalogue's services and scopes and the lifetime limit filled in, so a request the document
/// allows is one the API accepts.
pub fn openapi(settings: &TokenSettings) -> serde_json::Value {
    use serde_json::json;
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let reference = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    generator.subschema_for::<CreateRequest>();
    generator.subschema_for::<CreatedToken>();
    generator.subschema_for::<TokenList>();
    generator.subschema_for::<ErrorBody>();
    let mut schemas = generator.take_definitions(true);
    if let Some(create) = schemas.get_mut("CreateRequest") {
        let max_days = settings.max_lifetime.as_secs() / 86_400;
        create["properties"]["expires_in_days"]["minimum"] = json!(1);
        create["properties"]["expires_in_days"]["maximum"] = json!(max_days);
        let services: serde_json::Map<String, serde_json::Value> = settings
            .catalogue
            .all()
            .into_iter()
            .map(|(service, scopes)| {
                let items = json!({"type": "array", "items": {"enum": scopes}, "minItems": 1});
                (service, items)
            })
            .collect();
        create["properties"]["scopes"] = json!({
            "type": "object",
            "description": "Scopes per service, a subset of the catalogue.",
            "properties": services,
            "additionalProperties": false,
            "minProperties": 1,
        });
    }
    let body = |n: &str, d: &str| json!({"description": d, "content": {"application/json": {"schema": reference(n)}}});
    let err = |d: &str| body("ErrorBody", d);
    let common = |mut r: serde_json::Value| {
        r["401"] = err("not authenticated");
        r["403"] = err("forbidden");
        r["503"] = err("the token store or a provider is unavailable");
        r
    };
    let id_param = json!([{"name": "id", "in": "path", "required": true,
        "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "auth-o-tron API tokens", "version": env!("CARGO_PKG_VERSION")},
        "security": [{"bearer": []}, {"basic": []}],
        "paths": {
            "/tokens": {
                "post": {
                    "operationId": "createToken",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": reference("CreateRequest")}}},
                    "responses": common(json!({
                        "201": body("CreatedToken", "created; the secret is shown once"),
                        "400": err("bad input, naming the field"),
                        "415": err("not JSON"),
                    })),
                },
                "get": {
                    "operationId": "listTokens",
                    "responses": common(json!({"200": body("TokenList", "the caller's tokens")})),
                },
            },
            "/tokens/{id}": {
                "delete": {
                    "operationId": "revokeToken",
                    "parameters": id_param,
                    "responses": common(json!({
                        "204": {"description": "revoked"},
                        "404": err("unknown, someone else's or already revoked"),
                    })),
                },
            },
            "/tokens/{id}/rotate": {
                "post": {
                    "operationId": "rotateToken",
                    "parameters": id_param,
                    "responses": common(json!({
                        "201": body("CreatedToken", "a new secret; the old one stops working"),
                        "404": err("unknown, someone else's, revoked or expired"),
                        "409": err("a scope of the token is no longer in the catalogue, named"),
                    })),
                },
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    })
}
