//! The sidecar's HTTP routes: `/authenticate` (any method), `/whoami`, `/providers`,
//! `/augmenters`, `/health`, `/ready`, `/.well-known/jwks.json`, and the metrics router.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::config::{Built, Config};
use super::metrics::Metrics;
use super::peers::TrustGate;
use super::rules::Rules;
use crate::error::AuthError;
use crate::mint::MintedToken;
use crate::reject::Rejection;
use crate::{AuthLayer, Principal};

const X_AUTH_USERNAME: HeaderName = HeaderName::from_static("x-auth-username");
const X_AUTH_REALM: HeaderName = HeaderName::from_static("x-auth-realm");
const X_AUTH_ROLES: HeaderName = HeaderName::from_static("x-auth-roles");

struct AppState {
    rules: Rules,
    legacy_headers: bool,
    metrics: Metrics,
    providers: serde_json::Value,
    augmenters: serde_json::Value,
    jwks: Option<serde_json::Value>,
    auth: crate::Authenticator,
}

type Shared = Arc<AppState>;

fn result_label(error: &AuthError) -> &'static str {
    match error {
        AuthError::Missing => "no_auth_header",
        AuthError::Malformed(_) => "invalid_header",
        AuthError::Invalid => "all_failed",
        AuthError::Unavailable => "unavailable",
        AuthError::Forbidden(_) => "forbidden",
        // Not raised by the sidecar's own routes (its layer runs before every guard).
        AuthError::NoAuthLayer => "error",
    }
}

fn json(value: &serde_json::Value) -> Response {
    ([(CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// The decision for a request the layer authenticated. A plain function behind a
/// `service_fn`, not an axum handler: no extractor machinery and no boxed future per decision.
fn authenticate(state: &AppState, req: &Request) -> Response {
    let (Some(principal), Some(token)) = (
        req.extensions().get::<Principal>(),
        req.extensions().get::<MintedToken>(),
    ) else {
        // The layer always inserts both; fail closed if it ever does not.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication unavailable",
        )
            .into_response();
    };
    let decision = state.rules.decide(req.headers(), req.method(), principal);
    let target = decision.target.as_deref().unwrap_or("-");
    if let Some(denial) = &decision.denial {
        let error = AuthError::Forbidden(denial.forbidden());
        state
            .metrics
            .auth_requests
            .with_label_values(&["forbidden", &principal.realm])
            .inc();
        tracing::info!(
            target: "auth_o_tron::audit",
            event_name = "auth.decision", result = "forbidden", status = 403u16,
            user = %principal.username, realm = %principal.realm, provider = principal.provider(),
            method = %decision.method, path = target, host = decision.host.as_deref().unwrap_or("-"), reason = denial.reason(),
        );
        let challenge = state.auth.challenges().for_error(&error);
        return Rejection {
            error: &error,
            challenge,
            grpc: false,
        }
        .default_response()
        .map(axum::body::Body::from);
    }
    state
        .metrics
        .auth_requests
        .with_label_values(&["success", &principal.realm])
        .inc();
    tracing::info!(
        target: "auth_o_tron::audit",
        event_name = "auth.decision", result = "success", status = 200u16,
        user = %principal.username, realm = %principal.realm, provider = principal.provider(),
        method = %decision.method, path = target, host = decision.host.as_deref().unwrap_or("-"),
    );
    let mut res = Response::new(axum::body::Body::from("Authenticated successfully"));
    // Sized for every header of this answer, including the ones hyper and axum add: growing a
    // `HeaderMap` mid-response costs more than the whole authentication on a cache hit.
    *res.headers_mut() = HeaderMap::with_capacity(8);
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(AUTHORIZATION, token.bearer_header());
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.legacy_headers {
        // Values that cannot be header values, and roles that would split differently in a
        // comma-joined header, are left out (with a warning), never a panic. A header left
        // out is still sent, empty: proxies that copy the auth answer's headers then overwrite
        // a client's own copy instead of passing it on.
        let empty = || HeaderValue::from_static("");
        h.insert(
            X_AUTH_USERNAME,
            principal.legacy_username_header().unwrap_or_else(empty),
        );
        h.insert(
            X_AUTH_REALM,
            principal.legacy_realm_header().unwrap_or_else(empty),
        );
        h.insert(
            X_AUTH_ROLES,
            principal.legacy_roles_header().unwrap_or_else(empty),
        );
    }
    res
}

async fn whoami(principal: Principal) -> Response {
    let mut res = json(&serde_json::to_value(principal.user()).unwrap_or_default());
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn ready(State(state): State<Shared>) -> Response {
    if state.auth.providers().all(|p| p.is_ready()) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// The application router for `config`.
pub fn app(config: &Config, built: &Built, metrics: Metrics) -> Router {
    // What was built, not what the file says: the two cannot drift apart.
    let entry = |name: &str, kind: &str, realm: &str| serde_json::json!({"name": name, "type": kind, "realm": realm});
    let auth = &built.authenticator;
    let providers: Vec<_> = auth
        .providers()
        .map(|p| p.info())
        .map(|i| entry(&i.name, i.kind, &i.realm))
        .collect();
    let augmenters: Vec<_> = auth
        .augmenters()
        .map(|a| a.info())
        .map(|i| entry(&i.name, i.kind, &i.realm))
        .collect();
    let jwks = built
        .minter
        .key()
        .public_jwk()
        .map(|_| serde_json::to_value(built.minter.jwks()).unwrap_or_default());
    let state = Arc::new(AppState {
        rules: built.rules.clone(),
        legacy_headers: config.include_legacy_headers,
        metrics: metrics.clone(),
        providers: serde_json::json!({ "providers": providers }),
        augmenters: serde_json::json!({ "augmenters": augmenters }),
        jwks,
        auth: built.authenticator.clone(),
    });
    let audit_metrics = metrics.clone();
    let reject = move |r: &Rejection<'_>| -> http::Response<Bytes> {
        audit_metrics
            .auth_requests
            .with_label_values(&[result_label(r.error), "unknown"])
            .inc();
        tracing::info!(
            target: "auth_o_tron::audit",
            event_name = "auth.decision", result = result_label(r.error), status = r.error.status().as_u16(),
            reason = %r.error,
        );
        r.default_response()
    };
    let trusted = Arc::new(built.trusted.clone());
    let layer = AuthLayer::new(built.authenticator.clone())
        .with_rejection(reject)
        .mint(built.minter.clone());
    let mut router = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(layer.clone())
        .route_layer(tower::layer::layer_fn({
            let trusted = trusted.clone();
            move |s| TrustGate::new(s, trusted.clone())
        }))
        .route_service("/authenticate", {
            let state = state.clone();
            TrustGate::new(
                tower_layer::Layer::layer(
                    &layer,
                    tower::service_fn(move |req: Request| {
                        let res = authenticate(&state, &req);
                        std::future::ready(Ok::<_, std::convert::Infallible>(res))
                    }),
                ),
                trusted.clone(),
            )
        })
        .route(
            "/providers",
            get(|State(s): State<Shared>| async move { json(&s.providers) }),
        )
        .route(
            "/augmenters",
            get(|State(s): State<Shared>| async move { json(&s.augmenters) }),
        )
        .route("/health", get(|| async { "OK" }))
        .route("/ready", get(ready));

    if state.jwks.is_some() {
        router = router.route(
            "/.well-known/jwks.json",
            get(|State(s): State<Shared>| async move {
                let mut res = json(s.jwks.as_ref().unwrap_or(&serde_json::Value::Null));
                res.headers_mut().insert(
                    CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                res
            }),
        );
    }
    let mut router = router.with_state(state);
    if let Some(tokens) = &built.tokens {
        router = router.merge(tokens_app(tokens, built, &layer, &trusted));
    }
    router.layer(super::track::TrackLayer::new(metrics))
}

/// `/tokens` behind the same layer and trust gate as `/whoami`; `/tokens/openapi.json` is
/// public. The connection's peer is the audit lines' client address.
fn tokens_app(
    tokens: &super::config::BuiltTokens,
    built: &Built,
    layer: &AuthLayer<
        impl Fn(&Rejection<'_>) -> http::Response<Bytes> + Clone + Send + Sync + 'static,
    >,
    trusted: &Arc<super::peers::TrustedProxies>,
) -> Router {
    let store: Arc<dyn crate::token::TokenStore> = tokens.store.clone();
    let api = crate::token::api::router(store, tokens.settings.clone(), &built.authenticator);
    let trusted = trusted.clone();
    let openapi = crate::token::api::openapi(&tokens.settings);
    Router::new()
        .merge(api)
        .route_layer(layer.clone())
        .route_layer(tower::layer::layer_fn(move |s| {
            TrustGate::new(s, trusted.clone())
        }))
        .route_layer(axum::middleware::map_request(peer_as_connect_info))
        .route(
            "/tokens/openapi.json",
            get(move || std::future::ready(json(&openapi))),
        )
}

async fn peer_as_connect_info(mut req: Request) -> Request {
    if let Some(peer) = req.extensions().get::<super::peers::Peer>().copied() {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer.addr));
    }
    req
}

/// The metrics router: `/metrics` and `/health`.
pub fn metrics_app(metrics: Metrics) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Metrics>| async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    m.render(),
                )
            }),
        )
        .route("/health", get(|| async { "OK" }))
        .with_state(metrics)
}
